package broker

import (
	"sync"
	"time"

	"github.com/ringmq/ringmq/engine"
	"github.com/ringmq/ringmq/engine/record"
)

// scheduleProgressGroup is the pseudo consumer group under which the delivery service's
// progress per delay level (queue L-1 of SCHEDULE_TOPIC_XXXX) is kept in the offset table,
// so it is persisted with the consumer offsets (Java keeps it in delayOffset.json).
const scheduleProgressGroup = "%SCHEDULE%"

// Delivery service bounds.
const (
	scheduleBatch       = 32                // records read at once
	scheduleMaxPerRound = 8 * scheduleBatch // appends per level per round, before its one durability wait
	scheduleMaxIdle     = time.Second       // re-check at least this often
	scheduleRetryFailed = 3 * time.Second   // after a failed read or re-put
	// scheduleMaxRounds bounds the rounds run back to back before the loop looks at stop
	// and its wake channel again (scheduleMaxRounds * scheduleMaxPerRound records per level).
	scheduleMaxRounds = 64
)

// scheduler delivers the messages parked in SCHEDULE_TOPIC_XXXX (DELAY messages and
// consumer retries) to their REAL_TOPIC / REAL_QID once their delay has passed, as Java's
// ScheduleMessageService does: one consume queue per level, read in order (a level's
// messages come due in store order), each re-put with DELAY removed, then the level's
// progress committed. It runs on one goroutine, never on a connection's reader.
//
// The delivery contract: a message parked at store time T (milliseconds, as recorded) at
// level L is re-put not before T + 1 ms + delay(L): the record keeps only the millisecond,
// so the end of that millisecond is the earliest instant that is after the real store
// instant + the delay. Java re-puts from T + delay; the extra millisecond is what makes
// "not before" hold against the real store instant.
//
// The work goes in rounds (round): each level that has something due, or whose next due
// time is not known, has its due messages appended, at most scheduleMaxPerRound of them;
// then the round waits once for all of its appends to be durable (they share group
// commits) and moves each level's progress. A level with a backlog therefore never holds
// another level's due messages back by more than scheduleMaxPerRound appends (no
// durability wait between them), and a backlog, such as the one an fsync stall leaves,
// costs one durability wait per scheduleMaxPerRound messages of every level together, not
// one per batch of 32 of each level. A level whose first pending message is known to be due later is not
// read at all until then: the wake-ups that parked messages cause (one per arrival in
// SCHEDULE_TOPIC_XXXX) cost a read only for the levels that had nothing pending. A crash
// after a re-put and before the progress is persisted delivers that message again: at
// least once, as in RocketMQ.
type scheduler struct {
	b      *Broker
	levels []time.Duration
	wake   chan struct{} // capacity 1: a parked message arrived
	res    engine.GetResult
	wait   putWaiter
	props  []byte
	msg    engine.Message // the re-put being appended
	lv     []levelState   // by level-1
}

// levelState is the delivery service's view of one level between rounds.
type levelState struct {
	// nextDue is when the level's first pending message is due; zero when not known (the
	// level was empty at its last read, or has not been read yet).
	nextDue time.Time
	// from and to are this round's batch: the progress before it and after the records it
	// delivered (or skipped); to is committed once the round's appends are durable.
	from, to int64
	// read: the level was read this round; full: it stopped at scheduleMaxPerRound, so
	// more may be due at once.
	read, full bool
	results    []engine.PutResult // scheduleMaxPerRound, made at the level's first read
}

func newScheduler(b *Broker, levels []time.Duration) *scheduler {
	if len(levels) == 0 {
		levels = engine.DefaultDelayLevels
	}
	return &scheduler{b: b, levels: levels, wake: make(chan struct{}, 1), lv: make([]levelState, len(levels))}
}

// onArrival is called from the store's arrival listener; it never blocks.
func (s *scheduler) onArrival() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *scheduler) run(stop <-chan struct{}) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-stop:
			return
		case <-s.wake:
		case <-timer.C:
		}
		var next time.Time
		more := false
		for range scheduleMaxRounds {
			if next, more = s.round(time.Now()); !more || stopping(stop) {
				break
			}
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		if more {
			next = time.Now() // a backlog: go on after a look at stop and wake
		}
		timer.Reset(time.Until(next))
	}
}

func stopping(stop <-chan struct{}) bool {
	select {
	case <-stop:
		return true
	default:
		return false
	}
}

// round appends the due messages of every level that has something due (or may have),
// at most scheduleMaxPerRound each, waits once for the appends to be durable and commits
// the levels' progress. It returns when the next round is needed at the latest, and
// whether a level was cut off at scheduleMaxPerRound (so the next round is due now).
func (s *scheduler) round(now time.Time) (time.Time, bool) {
	next := now.Add(scheduleMaxIdle)
	s.wait.reset()
	failed := false
	for level := 1; level <= len(s.lv); level++ {
		st := &s.lv[level-1]
		st.read, st.full = false, false
		if !st.nextDue.IsZero() && st.nextDue.After(now) {
			next = earlier(next, st.nextDue)
			st.from, st.to = 0, 0
			continue
		}
		if failed {
			st.from, st.to = 0, 0 // the round stopped appending; read it next round
			continue
		}
		failed = s.readLevel(level, st, now)
		if !st.nextDue.IsZero() {
			next = earlier(next, st.nextDue)
		}
	}
	if err := s.wait.wait(); err != nil {
		// Some re-puts may be stored: every batch of the round is delivered again (at least once).
		s.b.log.Warn("delivery service: re-put failed; retrying", "err", err)
		retry := now.Add(scheduleRetryFailed)
		for i := range s.lv {
			if st := &s.lv[i]; st.read {
				st.nextDue, st.full = retry, false
			}
		}
		return earlier(next, retry), false
	}
	more := false
	for i := range s.lv {
		st := &s.lv[i]
		if st.to != st.from {
			if err := s.b.meta.CommitOffset(TopicSchedule, scheduleProgressGroup, int32(i), st.to); err != nil {
				s.b.log.Error("delivery service: cannot record progress", "err", err)
			}
		}
		more = more || st.full
	}
	return next, more
}

func earlier(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// readLevel appends the messages of level that are due at now, from its progress on, at
// most scheduleMaxPerRound of them (s.wait hears when they are durable). It sets
// st.from/st.to to the progress before and after them, st.nextDue to the due time of the
// first message not yet due (zero when the level ran out; the retry time after a failed
// read), and st.full when it stopped at scheduleMaxPerRound. It reports whether an append
// failed (the error went to s.wait).
func (s *scheduler) readLevel(level int, st *levelState, now time.Time) (appendFailed bool) {
	b, queueID := s.b, int32(level-1)
	offset, _ := b.meta.QueryOffset(TopicSchedule, scheduleProgressGroup, queueID)
	offset = max(offset, b.store.MinOffset(TopicSchedule, queueID))
	st.from, st.to, st.nextDue, st.read = offset, offset, time.Time{}, true
	if st.results == nil {
		st.results = make([]engine.PutResult, scheduleMaxPerRound)
	}
	delay := s.levels[min(level, len(s.levels))-1]
	n := 0
	for n < scheduleMaxPerRound {
		more, failed := s.readBatch(level, st, delay, now, &n)
		if failed {
			return true
		}
		if !more {
			return false
		}
	}
	st.full = true
	return false
}

// readBatch reads up to one batch of level at st.to and appends its due messages, using
// st.results from *n on. It reports whether every record read was due (so the next batch
// may be), and whether an append failed.
func (s *scheduler) readBatch(level int, st *levelState, delay time.Duration, now time.Time, n *int) (more, appendFailed bool) {
	b, queueID, start := s.b, int32(level-1), st.to
	if err := b.store.GetMessages(TopicSchedule, queueID, start, min(scheduleBatch, scheduleMaxPerRound-*n), DefaultMaxPullBytes, nil, &s.res); err != nil {
		b.log.Warn("delivery service: read failed", "level", level, "offset", start, "err", err)
		st.nextDue = now.Add(scheduleRetryFailed)
		return false, false
	}
	defer s.res.Release()
	if s.res.Status != engine.Found {
		return false, false
	}
	for i, rec := range s.res.Records {
		v, err := record.Decode(rec)
		if err != nil {
			b.log.Error("delivery service: skipping a record that does not decode", "level", level, "err", err)
			st.to = max(st.to, start+int64(i)+1)
			continue
		}
		if at := dueTime(v.StoreTimestampMs(), delay); at.After(now) {
			st.nextDue = at
			return false, false
		}
		if err := s.deliver(v, &st.results[*n]); err != nil {
			s.wait.fail(err)
			return false, true
		}
		*n++
		st.to = v.QueueOffset() + 1
	}
	return true, false
}

// dueTime is when a message stored at storeMs (as recorded, truncated to the millisecond)
// with delay d may be delivered: the end of its store millisecond + d, so never before
// the real store instant + d.
func dueTime(storeMs int64, d time.Duration) time.Time {
	return time.UnixMilli(storeMs + 1).Add(d)
}

// deliver appends a due parked message to its real topic and queue; s.wait hears when it
// is durable. A message that cannot be delivered (no REAL_TOPIC, topic gone) is dropped
// with a log line and counts as delivered.
func (s *scheduler) deliver(v record.View, res *engine.PutResult) error {
	props := v.Properties()
	realTopic, ok1 := record.Property(props, record.PropRealTopic)
	realQID, ok2 := record.Property(props, record.PropRealQueueID)
	qid, err := parseInt32(realQID)
	if !ok1 || !ok2 || err != nil {
		s.b.log.Error("delivery service: dropping a parked message without REAL_TOPIC/REAL_QID", "offset", v.PhysicalOffset())
		return nil
	}
	tc, ok := s.b.meta.TopicBytes(realTopic)
	if !ok {
		s.b.log.Warn("delivery service: the real topic no longer exists; message dropped", "topic", string(realTopic))
		return nil
	}
	s.props = appendPropsExcept(s.props[:0], props, dropDelay|dropReal)
	s.props = appendProp(s.props, record.PropRealTopic, realTopic)
	s.props = appendProp(s.props, record.PropRealQueueID, realQID)
	// The store encodes the message before Append returns, so one scheduler-owned
	// Message serves every re-put (a local one would escape: no allocation per message).
	s.msg = engine.Message{
		Topic: tc.TopicName, QueueID: min(qid, int32(max(tc.QueueNums()-1, 0))), Flag: v.Flag(), SysFlag: v.SysFlag(),
		BornTimestampMs: v.BornTimestampMs(), BornHost: v.BornHost(), ReconsumeTimes: v.ReconsumeTimes(),
		PreparedTransactionOffset: v.PreparedTransactionOffset(), Body: v.Body(), Properties: s.props,
	}
	s.wait.add()
	if err := s.b.store.Append(&s.msg, res, &s.wait); err != nil {
		s.wait.done()
		return err
	}
	return nil
}

// putWaiter waits for a set of appends: Add before each Append, Done from the store.
type putWaiter struct {
	wg sync.WaitGroup
	mu struct {
		sync.Mutex
		err error
	}
}

func (w *putWaiter) reset() { w.mu.err = nil }
func (w *putWaiter) add()   { w.wg.Add(1) }
func (w *putWaiter) done()  { w.wg.Done() }

// fail records an error that stopped the batch.
func (w *putWaiter) fail(err error) {
	w.mu.Lock()
	if w.mu.err == nil {
		w.mu.err = err
	}
	w.mu.Unlock()
}

// Done implements engine.Waiter.
func (w *putWaiter) Done(_ *engine.PutResult, err error) {
	if err != nil {
		w.fail(err)
	}
	w.wg.Done()
}

// wait returns once every append added is durable (or failed), with the first error.
func (w *putWaiter) wait() error {
	w.wg.Wait()
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.mu.err
}
