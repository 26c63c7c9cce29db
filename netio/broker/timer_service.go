package broker

import (
	"errors"
	"path"
	"sync"
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
	timerMaxRounds    = 64                     // enqueue rounds per wake-up
	timerMaxIdle      = time.Second            // re-check at least this often
	timerRetryFailed  = 3 * time.Second        // after a failed read, link or re-put
	timerLookahead    = 200 * time.Millisecond // read a slot this long before it starts
	timerFullWait     = 50 * time.Millisecond  // with a full heap, try loading again after
	timerIdleCommit   = 10 * time.Minute       // an idle wheel's read position is written this often
)

// timerService delivers timer messages (docs/timer.md) with two goroutines, so that the
// fdatasyncs of the wheel never delay a due message:
//
//   - the wheel goroutine (runWheel) owns the on-disk wheel (engine/timer): it links the
//     messages parked in rmq_sys_wheel_timer queue 0 into it (enqueue), reads each slot's
//     chain into the heap a little before the slot starts (load), and records the
//     progress (commit);
//   - the delivery goroutine (runDelivery) owns the re-puts: at each message's exact due
//     time it appends it to its REAL_TOPIC / REAL_QID, in batches that each wait once for
//     durability, several batches in flight.
//
// They share only mu: the min-heap of loaded entries by due time, and per slot the count
// of its entries not yet durably re-put; no lock is held across a system call. Delivery
// is at least once: a crash between a re-put and the commit that covers it delivers that
// message again.
type timerService struct {
	b    *Broker
	wake chan struct{} // capacity 1: a parked message arrived (wheel goroutine)
	kick chan struct{} // capacity 1: the heap got entries (delivery goroutine)
	mu   struct {
		sync.Mutex
		heap    timerHeap
		pending map[int64]int // slot start -> its entries in the heap or in flight
	}
	deliveryStopped chan struct{}

	// The wheel goroutine's.
	w          *timer.Wheel
	loadedUpTo int64 // slots starting before it are in the heap or delivered
	committed  struct{ deliveredMs, enqueue, logBytes, loaded int64 }
	loaded     int64     // entries read from slots into the heap, ever (this run)
	failedAt   time.Time // the last failure; the steps back off timerRetryFailed
	res        engine.GetResult
	links      []timer.Entry
	slotBuf    []timer.Entry

	// The delivery goroutine's.
	done            chan *reputBatch // batches whose appends all finished (capacity timerMaxInFlight)
	free            []*reputBatch
	inFlight        int
	deliverFailedAt time.Time
	props           []byte
	msg             engine.Message
}

// reputBatch is a batch of re-puts in flight: the appends' Done calls count down, and the
// last one hands the batch back to the delivery goroutine.
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
	t := &timerService{b: b, w: w, wake: make(chan struct{}, 1), kick: make(chan struct{}, 1),
		deliveryStopped: make(chan struct{}), done: make(chan *reputBatch, timerMaxInFlight)}
	t.mu.pending = map[int64]int{}
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
			t.pushLocked(e) // no goroutine runs yet
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
func (t *timerService) onArrival() { signal(t.wake) }

func (t *timerService) kickDelivery() { signal(t.kick) }

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// pushLocked puts e in the heap and counts it against its slot; t.mu is held.
func (t *timerService) pushLocked(e timer.Entry) {
	t.mu.heap.push(e)
	t.mu.pending[e.SlotMs]++
}

func timeMin(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// resetTimer re-arms tm to fire at next.
func resetTimer(tm *time.Timer, next time.Time) {
	if !tm.Stop() {
		select {
		case <-tm.C:
		default:
		}
	}
	tm.Reset(max(time.Until(next), 0))
}

// runWheel is the wheel goroutine. On stop it waits for the delivery goroutine, so that
// its last commit counts every re-put that became durable.
func (t *timerService) runWheel(stop <-chan struct{}) {
	tm := time.NewTimer(0)
	defer tm.Stop()
	for {
		select {
		case <-stop:
			<-t.deliveryStopped
			t.commit()
			return
		case <-t.wake:
		case <-tm.C:
		}
		resetTimer(tm, t.step(stop))
	}
}

// step links, loads and commits until nothing is left to do now (bounded) and returns
// when it is next needed.
func (t *timerService) step(stop <-chan struct{}) time.Time {
	if !t.failedAt.IsZero() && time.Since(t.failedAt) < timerRetryFailed {
		return t.failedAt.Add(timerRetryFailed)
	}
	t.failedAt = time.Time{}
	for range timerMaxRounds {
		t.load()
		if t.enqueue() == 0 || !t.failedAt.IsZero() {
			break
		}
		select {
		case <-stop:
			return time.Now()
		default:
		}
	}
	full := t.load()
	t.commit()
	if !t.failedAt.IsZero() {
		return t.failedAt.Add(timerRetryFailed)
	}
	if full { // the heap holds timerMaxHeap entries: try again once some are delivered
		return time.Now().Add(timerFullWait)
	}
	return timeMin(time.Now().Add(timerMaxIdle), time.UnixMilli(t.loadedUpTo).Add(-timerLookahead))
}

func (t *timerService) fail(what string, err error) {
	t.b.log.Error("timer service: "+what+"; retrying", "err", err)
	t.failedAt = time.Now()
}

// load reads the chains of the slots that start within timerLookahead, oldest first
// (after a downtime: every slot since the checkpoint, at once), into the heap. It reports
// whether it stopped because the heap is full.
func (t *timerService) load() (full bool) {
	horizon := nowMs() + timerLookahead.Milliseconds()
	loaded := false
	for t.loadedUpTo <= horizon {
		t.mu.Lock()
		full = len(t.mu.heap) >= timerMaxHeap
		t.mu.Unlock()
		if full {
			break
		}
		var err error
		t.slotBuf, err = t.w.ReadSlot(t.loadedUpTo, t.slotBuf[:0])
		if err != nil {
			t.fail("cannot read a wheel slot", err)
			break
		}
		t.mu.Lock()
		for _, e := range t.slotBuf {
			t.pushLocked(e)
		}
		t.mu.Unlock()
		t.loaded += int64(len(t.slotBuf))
		loaded = loaded || len(t.slotBuf) > 0
		t.loadedUpTo += t.w.PrecisionMs()
	}
	if loaded {
		t.kickDelivery()
	}
	return full
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
	for i, rec := range t.res.Records {
		v, err := record.Decode(rec)
		if err != nil {
			t.b.log.Error("timer service: skipping a parked record that does not decode", "queue_offset", offset+int64(i), "err", err)
			t.w.Skip(offset + int64(i))
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
	t.mu.Lock()
	for _, e := range t.links {
		if e.SlotMs < t.loadedUpTo {
			t.pushLocked(e)
		}
	}
	t.mu.Unlock()
	t.kickDelivery()
	return len(t.res.Records)
}

// commit records the progress when it moved: every slot before the oldest one with
// messages still in the heap or in flight (or before the next slot to read) is delivered.
func (t *timerService) commit() {
	delivered := t.loadedUpTo
	t.mu.Lock()
	idle := len(t.mu.pending) == 0
	for slot := range t.mu.pending {
		delivered = min(delivered, slot)
	}
	t.mu.Unlock()
	c := &t.committed
	unchanged := t.w.EnqueueOffset() == c.enqueue && t.w.LogBytes() == c.logBytes
	if delivered == c.deliveredMs && unchanged {
		return
	}
	// With no timer messages the read position still moves every slot, and writing it
	// would cost an fdatasync a second on the disk the commit log shares. It may lag:
	// nothing was linked or loaded since the last commit, so the slots it skips are
	// empty and a restart re-reads them for nothing. A commit every timerIdleCommit
	// bounds that re-reading.
	if idle && unchanged && t.loaded == c.loaded && delivered-c.deliveredMs < timerIdleCommit.Milliseconds() {
		return
	}
	if err := t.w.Commit(delivered); err != nil {
		t.fail("cannot write the wheel's checkpoint or delete delivered log segments", err)
		return
	}
	c.deliveredMs, c.enqueue, c.logBytes, c.loaded = delivered, t.w.EnqueueOffset(), t.w.LogBytes(), t.loaded
}

// runDelivery is the delivery goroutine. On stop it waits for the batches in flight (each
// finishes within syncFlushTimeout).
func (t *timerService) runDelivery(stop <-chan struct{}) {
	defer close(t.deliveryStopped)
	tm := time.NewTimer(0)
	defer tm.Stop()
	for {
		select {
		case <-stop:
			for t.inFlight > 0 {
				t.finished(<-t.done)
			}
			return
		case <-t.kick:
		case <-tm.C:
		case r := <-t.done:
			t.finished(r)
		}
		resetTimer(tm, t.deliver())
	}
}

// deliver re-puts every due message of the heap, in batches that each wait once for
// durability, up to timerMaxInFlight batches at a time (a batch's appends do not wait for
// the fdatasync of the one before). It returns when it is next needed.
func (t *timerService) deliver() time.Time {
	idle := time.Now().Add(timerMaxIdle)
	if !t.deliverFailedAt.IsZero() {
		if time.Since(t.deliverFailedAt) < timerRetryFailed {
			return t.deliverFailedAt.Add(timerRetryFailed)
		}
		t.deliverFailedAt = time.Time{}
	}
	for len(t.free) > 0 {
		r := t.free[len(t.free)-1]
		r.entries = r.entries[:0]
		now := nowMs()
		t.mu.Lock()
		for len(t.mu.heap) > 0 && len(r.entries) < timerDeliverBatch && t.mu.heap[0].DeliverMs <= now {
			r.entries = append(r.entries, t.mu.heap.pop())
		}
		next := idle
		if len(t.mu.heap) > 0 {
			next = timeMin(next, time.UnixMilli(t.mu.heap[0].DeliverMs))
		}
		t.mu.Unlock()
		if len(r.entries) == 0 {
			return next
		}
		t.free = t.free[:len(t.free)-1]
		t.inFlight++
		r.err.Store(nil)
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
	return idle // every batch is in flight: a finished one wakes the goroutine
}

// finished takes back a batch whose appends all finished: its messages are delivered, or,
// if one failed, the whole batch goes back to the heap (at least once).
func (t *timerService) finished(r *reputBatch) {
	t.inFlight--
	t.free = append(t.free, r)
	errp := r.err.Load()
	t.mu.Lock()
	for _, e := range r.entries {
		if errp != nil {
			t.mu.heap.push(e)
		} else if t.mu.pending[e.SlotMs]--; t.mu.pending[e.SlotMs] <= 0 {
			delete(t.mu.pending, e.SlotMs)
		}
	}
	t.mu.Unlock()
	if errp != nil {
		t.b.log.Error("timer service: re-put failed; retrying", "err", *errp)
		t.deliverFailedAt = time.Now()
	}
}

// reput appends the parked message of e to its real topic and queue; w hears when it is
// durable. A message that cannot be delivered (gone from the commit log, no
// REAL_TOPIC, topic deleted) is dropped with a log line and counts as delivered: w hears
// at once. An error means w will not hear.
func (t *timerService) reput(e *timer.Entry, res *engine.PutResult, w engine.Waiter) error {
	rec, release, err := t.b.store.ReadRecord(e.CommitLogOffset)
	if err != nil {
		if errors.Is(err, engine.ErrNotFound) {
			t.b.log.Error("timer service: parked message gone from the commit log; dropped", "offset", e.CommitLogOffset, "err", err)
			w.Done(nil, nil)
			return nil
		}
		return err
	}
	defer release() // Append copies the record's body
	m := t.reputMessage(e, rec)
	if m == nil {
		w.Done(nil, nil)
		return nil
	}
	return t.b.store.Append(m, res, w)
}

// reputMessage builds the message that delivers e from its parked record, or nil when it
// is to be dropped. The message's body aliases rec.
func (t *timerService) reputMessage(e *timer.Entry, rec []byte) *engine.Message {
	b := t.b
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
	t.msg = engine.Message{
		Topic: tc.TopicName, QueueID: min(qid, int32(max(tc.QueueNums()-1, 0))), Flag: v.Flag(), SysFlag: v.SysFlag(),
		BornTimestampMs: v.BornTimestampMs(), BornHost: v.BornHost(), ReconsumeTimes: v.ReconsumeTimes(),
		PreparedTransactionOffset: v.PreparedTransactionOffset(), Body: v.Body(), Properties: t.props,
	}
	return &t.msg
}

// close closes the wheel; both goroutines have stopped.
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
