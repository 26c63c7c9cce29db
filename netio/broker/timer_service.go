package broker

import (
	"errors"
	"path"
	"sync/atomic"
	"time"

	"github.com/ringmq/ringmq/engine"
	"github.com/ringmq/ringmq/engine/record"
	"github.com/ringmq/ringmq/engine/timer"
)

// Timer service bounds.
const (
	timerEnqueueBatch = 512                    // parked messages linked per Add (3 fdatasyncs)
	timerDeliverBatch = 256                    // re-puts per durability wait
	timerMaxInFlight  = 8                      // re-put batches appended and not yet durable
	timerMaxHeap      = 1 << 20                // entries held in memory; loading pauses past it
	timerMaxRounds    = 64                     // enqueue/deliver rounds per wake-up
	timerMaxIdle      = time.Second            // re-check at least this often
	timerRetryFailed  = 3 * time.Second        // after a failed read, link or re-put
	timerLookahead    = 200 * time.Millisecond // read a slot this long before it starts
)

// timerService delivers timer messages (docs/timer.md). One goroutine owns it and the
// wheel: an enqueue step links the messages parked in rmq_sys_wheel_timer queue 0 into
// the on-disk wheel (engine/timer); a load step reads each slot's chain into a min-heap by
// exact due time a little before the slot starts; a deliver step re-puts every message
// whose time has come to its REAL_TOPIC / REAL_QID, a batch sharing one durability wait;
// a commit step records the progress. Delivery is at least once: a crash between a re-put
// and the commit that covers it delivers that message again.
type timerService struct {
	b          *Broker
	w          *timer.Wheel
	wake       chan struct{} // capacity 1: a parked message arrived
	heap       timerHeap
	pending    map[int64]int // slot start -> its entries in the heap or in flight
	loadedUpTo int64         // slots starting before it are in the heap or delivered
	committed  struct{ deliveredMs, enqueue, logBytes int64 }
	failedAt   time.Time // the last failure; the steps back off timerRetryFailed
	res        engine.GetResult
	links      []timer.Entry
	slotBuf    []timer.Entry
	done       chan *reputBatch // batches whose appends all finished (capacity timerMaxInFlight)
	free       []*reputBatch
	inFlight   int
	props      []byte
}

// reputBatch is a batch of re-puts in flight: the appends' Done calls count down, and the
// last one hands the batch back to the service goroutine.
type reputBatch struct {
	entries []timer.Entry
	results [timerDeliverBatch]engine.PutResult
	left    atomic.Int32
	err     atomic.Pointer[error]
	done    chan<- *reputBatch
}

// Done implements engine.Waiter; it runs on the flusher goroutine and never blocks.
func (r *reputBatch) Done(_ *engine.PutResult, err error) {
	if err != nil {
		r.err.CompareAndSwap(nil, &err)
	}
	if r.left.Add(-1) == 0 {
		r.done <- r
	}
}

// newTimerService opens the wheel under StoreDir/timer and recovers its state.
func newTimerService(b *Broker) (*timerService, error) {
	w, rec, err := timer.Open(timer.Config{
		Dir: path.Join(b.cfg.StoreDir, "timer"), FS: b.cfg.FS,
		PrecisionMs: b.cfg.TimerPrecision.Milliseconds(), MaxDelayMs: b.cfg.TimerMaxDelay.Milliseconds(),
	})
	if err != nil {
		return nil, err
	}
	t := &timerService{b: b, w: w, wake: make(chan struct{}, 1), pending: map[int64]int{},
		done: make(chan *reputBatch, timerMaxInFlight)}
	for range timerMaxInFlight {
		t.free = append(t.free, &reputBatch{done: t.done})
	}
	t.loadedUpTo = rec.Checkpoint.DeliveredMs
	if t.loadedUpTo == 0 {
		t.loadedUpTo = w.SlotOf(nowMs())
	}
	// Tail entries linked into a slot the service had already read before the crash are
	// delivered from memory; the others are found when their slot is read.
	for _, e := range rec.Tail {
		if e.SlotMs < t.loadedUpTo {
			t.push(e)
		}
	}
	t.committed.deliveredMs = rec.Checkpoint.DeliveredMs
	t.committed.enqueue, t.committed.logBytes = rec.Checkpoint.EnqueueOffset, rec.Checkpoint.LogPos
	if len(rec.Tail) > 0 || rec.Checkpoint.DeliveredMs != 0 {
		b.log.Info("timer wheel recovered", "delivered_up_to", time.UnixMilli(rec.Checkpoint.DeliveredMs).UTC(),
			"relinked", len(rec.Tail), "enqueue_offset", w.EnqueueOffset())
	}
	return t, nil
}

// onArrival is called from the store's arrival listener; it never blocks.
func (t *timerService) onArrival() {
	select {
	case t.wake <- struct{}{}:
	default:
	}
}

func (t *timerService) run(stop <-chan struct{}) {
	tm := time.NewTimer(0)
	defer tm.Stop()
	for {
		select {
		case <-stop:
			for t.inFlight > 0 { // each finishes within syncFlushTimeout
				t.finished(<-t.done)
			}
			t.commit()
			return
		case <-t.wake:
		case <-tm.C:
		case r := <-t.done:
			t.finished(r)
		}
		next := t.step(stop)
		if !tm.Stop() {
			select {
			case <-tm.C:
			default:
			}
		}
		tm.Reset(max(time.Until(next), 0))
	}
}

// step runs the steps until nothing is left to do now (bounded) and returns when it is
// next needed.
func (t *timerService) step(stop <-chan struct{}) time.Time {
	if !t.failedAt.IsZero() && time.Since(t.failedAt) < timerRetryFailed {
		return t.failedAt.Add(timerRetryFailed)
	}
	t.failedAt = time.Time{}
	for range timerMaxRounds {
		t.load()
		t.deliver()
		linked := t.enqueue()
		if linked == 0 || !t.failedAt.IsZero() {
			break
		}
		select {
		case <-stop:
			return time.Now()
		default:
		}
	}
	t.load()
	t.deliver()
	t.commit()
	if !t.failedAt.IsZero() {
		return t.failedAt.Add(timerRetryFailed)
	}
	next := time.Now().Add(timerMaxIdle)
	if at := time.UnixMilli(t.loadedUpTo).Add(-timerLookahead); at.Before(next) {
		next = at
	}
	if len(t.heap) > 0 && len(t.free) > 0 { // with no free batch, a finished one wakes us
		if at := time.UnixMilli(t.heap[0].DeliverMs); at.Before(next) {
			next = at
		}
	}
	return next
}

func (t *timerService) fail(what string, err error) {
	t.b.log.Error("timer service: "+what+"; retrying", "err", err)
	t.failedAt = time.Now()
}

// push puts e in the heap and counts it against its slot.
func (t *timerService) push(e timer.Entry) {
	t.heap.push(e)
	t.pending[e.SlotMs]++
}

// load reads the chains of the slots that start within timerLookahead, oldest first
// (after a downtime: every slot since the checkpoint, at once).
func (t *timerService) load() {
	horizon := nowMs() + timerLookahead.Milliseconds()
	for t.loadedUpTo <= horizon && len(t.heap) < timerMaxHeap {
		var err error
		t.slotBuf, err = t.w.ReadSlot(t.loadedUpTo, t.slotBuf[:0])
		if err != nil {
			t.fail("cannot read a wheel slot", err)
			return
		}
		for _, e := range t.slotBuf {
			t.push(e)
		}
		t.loadedUpTo += t.w.PrecisionMs()
	}
}

// enqueue links the next batch of parked messages into the wheel and returns how many.
// Messages due in a slot already read go to the heap too, linked into the last slot read
// so that the checkpoint keeps that slot undelivered until they are.
func (t *timerService) enqueue() int {
	now := nowMs()
	prec, maxDelay := t.w.PrecisionMs(), t.w.MaxDelayMs()
	// While the slots read lag more than a horizon (catching up after a long downtime), a
	// new link could land on the index of an old slot not read yet: wait for the catch-up.
	if t.loadedUpTo <= now-maxDelay+prec {
		return 0
	}
	offset := t.w.EnqueueOffset()
	if err := t.b.store.GetMessages(TopicTimer, 0, offset, timerEnqueueBatch, 4*DefaultMaxPullBytes, nil, &t.res); err != nil {
		t.fail("cannot read rmq_sys_wheel_timer", err)
		return 0
	}
	defer t.res.Release()
	switch t.res.Status {
	case engine.Found:
	case engine.OffsetTooSmall, engine.OffsetOverflowBadly:
		t.b.log.Error("timer service: rmq_sys_wheel_timer does not hold the next offset; skipping", "offset", offset, "next", t.res.NextBeginOffset)
		t.w.Skip(t.res.NextBeginOffset - 1)
		return 0
	default:
		return 0
	}
	t.links = t.links[:0]
	lastRead := t.loadedUpTo - prec
	for _, rec := range t.res.Records {
		v, err := record.Decode(rec)
		if err != nil {
			t.b.log.Error("timer service: skipping a parked record that does not decode", "err", err)
			continue
		}
		due, ok := parsePropInt(v.Properties(), propTimerOutMs)
		if !ok || due.err != nil {
			t.b.log.Error("timer service: skipping a parked message without TIMER_OUT_MS", "queue_offset", v.QueueOffset())
			t.w.Skip(v.QueueOffset())
			continue
		}
		slot := min(max(t.w.SlotOf(due.n), lastRead), t.w.SlotOf(now+maxDelay))
		t.links = append(t.links, timer.Entry{SlotMs: slot, DeliverMs: due.n, QueueOffset: v.QueueOffset(),
			CommitLogOffset: v.PhysicalOffset(), SizeBytes: v.TotalSize()})
	}
	if err := t.w.Add(t.links); err != nil {
		t.fail("cannot link parked messages into the wheel", err)
		return 0
	}
	for _, e := range t.links {
		if e.SlotMs < t.loadedUpTo {
			t.push(e)
		}
	}
	return len(t.res.Records)
}

// deliver re-puts every message of the heap that is due, in batches that each wait once
// for durability, up to timerMaxInFlight batches at a time (the appends of the next batch
// do not wait for the fdatasync of the previous one). A batch's slots count down when it
// is durable (finished).
func (t *timerService) deliver() {
	for len(t.heap) > 0 && t.heap[0].DeliverMs <= nowMs() && len(t.free) > 0 {
		select {
		case r := <-t.done:
			t.finished(r)
		default:
		}
		r := t.free[len(t.free)-1]
		t.free = t.free[:len(t.free)-1]
		r.entries = r.entries[:0]
		r.err.Store(nil)
		for len(t.heap) > 0 && len(r.entries) < timerDeliverBatch && t.heap[0].DeliverMs <= nowMs() {
			r.entries = append(r.entries, t.heap.pop())
		}
		t.inFlight++
		r.left.Store(1) // held until every append is handed over
		for i := range r.entries {
			r.left.Add(1)
			if err := t.reput(&r.entries[i], &r.results[i], r); err != nil {
				r.left.Add(-1)
				r.err.CompareAndSwap(nil, &err)
				break
			}
		}
		r.Done(nil, nil)
	}
}

// finished takes back a batch whose appends all finished: its messages are delivered, or,
// if one failed, the whole batch goes back to the heap (at least once).
func (t *timerService) finished(r *reputBatch) {
	t.inFlight--
	if errp := r.err.Load(); errp != nil {
		for _, e := range r.entries {
			t.heap.push(e)
		}
		t.fail("re-put failed", *errp)
	} else {
		for _, e := range r.entries {
			if t.pending[e.SlotMs]--; t.pending[e.SlotMs] <= 0 {
				delete(t.pending, e.SlotMs)
			}
		}
	}
	t.free = append(t.free, r)
}

// reput appends the parked message of e to its real topic and queue; w hears when it is
// durable. A message that cannot be delivered (gone from the commit log, no
// REAL_TOPIC, topic deleted) is dropped with a log line and counts as delivered.
func (t *timerService) reput(e *timer.Entry, res *engine.PutResult, w engine.Waiter) error {
	b := t.b
	rec, release, err := b.store.ReadRecord(e.CommitLogOffset)
	if err != nil {
		if errors.Is(err, engine.ErrNotFound) {
			b.log.Error("timer service: parked message gone from the commit log; dropped", "offset", e.CommitLogOffset, "err", err)
			return nil
		}
		return err
	}
	defer release()
	v, err := record.Decode(rec)
	if err != nil || string(v.Topic()) != TopicTimer || v.QueueOffset() != e.QueueOffset {
		b.log.Error("timer service: the wheel points at a record that is not its parked message; dropped", "offset", e.CommitLogOffset)
		return nil
	}
	props := v.Properties()
	realTopic, ok1 := record.Property(props, record.PropRealTopic)
	realQID, ok2 := record.Property(props, record.PropRealQueueID)
	qid, err := parseInt32(realQID)
	if !ok1 || !ok2 || err != nil {
		b.log.Error("timer service: dropping a parked message without REAL_TOPIC/REAL_QID", "offset", e.CommitLogOffset)
		return nil
	}
	tc, ok := b.meta.TopicBytes(realTopic)
	if !ok {
		b.log.Warn("timer service: the real topic no longer exists; message dropped", "topic", string(realTopic))
		return nil
	}
	t.props = appendPropsExcept(t.props[:0], props, dropTimerOut)
	m := engine.Message{
		Topic: tc.TopicName, QueueID: min(qid, int32(max(tc.QueueNums()-1, 0))), Flag: v.Flag(), SysFlag: v.SysFlag(),
		BornTimestampMs: v.BornTimestampMs(), BornHost: v.BornHost(), ReconsumeTimes: v.ReconsumeTimes(),
		PreparedTransactionOffset: v.PreparedTransactionOffset(), Body: v.Body(), Properties: t.props,
	}
	return b.store.Append(&m, res, w)
}

// commit records the progress when it moved: every slot before the oldest one with
// messages still in the heap (or before the next slot to read) is delivered.
func (t *timerService) commit() {
	delivered := t.loadedUpTo
	for slot := range t.pending {
		delivered = min(delivered, slot)
	}
	c := &t.committed
	if delivered == c.deliveredMs && t.w.EnqueueOffset() == c.enqueue && t.w.LogBytes() == c.logBytes {
		return
	}
	if err := t.w.Commit(delivered); err != nil {
		t.fail("cannot write the wheel's checkpoint", err)
		return
	}
	c.deliveredMs, c.enqueue, c.logBytes = delivered, t.w.EnqueueOffset(), t.w.LogBytes()
}

// close closes the wheel; the service has stopped.
func (t *timerService) close() error { return t.w.Close() }

// timerHeap is a binary min-heap of entries by due time (then queue offset: store
// order); typed, so pushes and pops do not box entries.
type timerHeap []timer.Entry

func (h timerHeap) less(i, j int) bool {
	if h[i].DeliverMs != h[j].DeliverMs {
		return h[i].DeliverMs < h[j].DeliverMs
	}
	return h[i].QueueOffset < h[j].QueueOffset
}

func (h *timerHeap) push(e timer.Entry) {
	*h = append(*h, e)
	q := *h
	for i := len(q) - 1; i > 0; {
		parent := (i - 1) / 2
		if !q.less(i, parent) {
			break
		}
		q[i], q[parent] = q[parent], q[i]
		i = parent
	}
}

func (h *timerHeap) pop() timer.Entry {
	q := *h
	top := q[0]
	n := len(q) - 1
	q[0] = q[n]
	q = q[:n]
	for i := 0; ; {
		l, small := 2*i+1, i
		if l < n && q.less(l, small) {
			small = l
		}
		if r := l + 1; r < n && q.less(r, small) {
			small = r
		}
		if small == i {
			break
		}
		q[i], q[small] = q[small], q[i]
		i = small
	}
	*h = q
	return top
}
