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
	scheduleBatch       = 32              // records read per level per round
	scheduleMaxIdle     = time.Second     // re-check at least this often
	scheduleRetryFailed = 3 * time.Second // after a failed re-put
)

// scheduler delivers the messages parked in SCHEDULE_TOPIC_XXXX (DELAY messages and
// consumer retries) to their REAL_TOPIC / REAL_QID once their delay has passed, as Java's
// ScheduleMessageService does: one consume queue per level, read in order (a level's
// messages come due in store order), each re-put with DELAY removed, then the level's
// progress committed. It runs on one goroutine, never on a connection's reader: the due
// messages of a batch are appended together and the progress moves once they are durable. A crash after a re-put and before the
// progress is persisted delivers that message again: at least once, as in RocketMQ.
type scheduler struct {
	b       *Broker
	levels  []time.Duration
	wake    chan struct{} // capacity 1: a parked message arrived
	res     engine.GetResult
	results [scheduleBatch]engine.PutResult
	wait    putWaiter
	props   []byte
}

func newScheduler(b *Broker, levels []time.Duration) *scheduler {
	if len(levels) == 0 {
		levels = engine.DefaultDelayLevels
	}
	return &scheduler{b: b, levels: levels, wake: make(chan struct{}, 1)}
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
		next := time.Now().Add(scheduleMaxIdle)
		for level := 1; level <= len(s.levels); level++ {
			if due, ok := s.deliverLevel(level, stop); ok && due.Before(next) {
				next = due
			}
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(max(time.Until(next), time.Millisecond))
	}
}

// deliverLevel re-puts the due messages of one level and returns when the next one is due.
func (s *scheduler) deliverLevel(level int, stop <-chan struct{}) (time.Time, bool) {
	b, queueID := s.b, int32(level-1)
	offset, _ := b.meta.QueryOffset(TopicSchedule, scheduleProgressGroup, queueID)
	if offset < b.store.MinOffset(TopicSchedule, queueID) {
		offset = b.store.MinOffset(TopicSchedule, queueID)
	}
	for {
		if err := b.store.GetMessages(TopicSchedule, queueID, offset, scheduleBatch, DefaultMaxPullBytes, nil, &s.res); err != nil {
			b.log.Warn("delivery service: read failed", "level", level, "offset", offset, "err", err)
			return time.Now().Add(scheduleRetryFailed), true
		}
		if s.res.Status != engine.Found {
			s.res.Release()
			return time.Time{}, false
		}
		// Re-put every due message of the batch, then wait once: the appends share group
		// commits instead of paying one fdatasync each.
		var due time.Time
		next := offset
		s.wait.reset()
		for i, rec := range s.res.Records {
			v, err := record.Decode(rec)
			if err != nil {
				b.log.Error("delivery service: skipping a record that does not decode", "level", level, "err", err)
				next = max(next, offset+int64(i)+1)
				continue
			}
			at := time.UnixMilli(v.StoreTimestampMs()).Add(s.levels[min(level, len(s.levels))-1])
			if at.After(time.Now()) {
				due = at
				break
			}
			if err := s.deliver(v, &s.results[i]); err != nil {
				s.wait.fail(err)
				break
			}
			next = v.QueueOffset() + 1
		}
		s.res.Release()
		if err := s.wait.wait(); err != nil {
			// Some re-puts may be stored: the whole batch is delivered again (at least once).
			b.log.Warn("delivery service: re-put failed; retrying", "level", level, "err", err)
			return time.Now().Add(scheduleRetryFailed), true
		}
		if next != offset {
			offset = next
			if err := b.meta.CommitOffset(TopicSchedule, scheduleProgressGroup, queueID, offset); err != nil {
				b.log.Error("delivery service: cannot record progress", "err", err)
			}
		}
		if !due.IsZero() {
			return due, true
		}
		select {
		case <-stop:
			return time.Time{}, false
		default:
		}
	}
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
	m := engine.Message{
		Topic: tc.TopicName, QueueID: min(qid, int32(max(tc.QueueNums()-1, 0))), Flag: v.Flag(), SysFlag: v.SysFlag(),
		BornTimestampMs: v.BornTimestampMs(), BornHost: v.BornHost(), ReconsumeTimes: v.ReconsumeTimes(),
		PreparedTransactionOffset: v.PreparedTransactionOffset(), Body: v.Body(), Properties: s.props,
	}
	s.wait.add()
	if err := s.b.store.Append(&m, res, &s.wait); err != nil {
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
