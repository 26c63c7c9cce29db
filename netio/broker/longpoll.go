package broker

import (
	"container/heap"
	"sync"
	"time"

	"github.com/ringmq/ringmq/netio/remoting"
	"github.com/ringmq/ringmq/perf"
)

// longPoll holds empty pulls (PULL_NOT_FOUND with the SUSPEND flag) until a message
// arrives in their queue or their hold time ends, as Java's PullRequestHoldService does,
// but woken by the store's arrival listener at once rather than by a 5 s re-check.
//
// A held pull is in exactly one place: the table (by queue, and in the deadline heap), the
// ready list, or the goroutine answering it. onArrival runs on the store's dispatcher
// goroutine and only moves entries and signals; run (one goroutine) re-runs the pulls and
// answers them, and answers expired ones. mu is never held across a store read or a reply.
type longPoll struct {
	b    *Broker
	max  int
	wake chan struct{} // capacity 1: "the ready list or the earliest deadline changed"
	mu   struct {
		sync.Mutex
		byQueue map[pullKey][]*pullState
		byTime  deadlineHeap
		ready   []*pullState
		closed  bool
	}
}

type pullKey struct {
	topic   string
	queueID int32
}

type holdResult uint8

const (
	holdOK     holdResult = iota
	holdFull              // MaxHeldPulls reached
	holdClosed            // shutting down: answer now
)

func newLongPoll(b *Broker, maxHeld int) *longPoll {
	lp := &longPoll{b: b, max: maxHeld, wake: make(chan struct{}, 1)}
	lp.mu.byQueue = make(map[pullKey][]*pullState)
	return lp
}

// hold parks p until a message arrives past p.offset or deadlineNs passes.
func (lp *longPoll) hold(p *pullState, deadlineNs int64) holdResult {
	p.deadlineNs = deadlineNs
	// Once p is in the table another goroutine may answer and recycle it: read it first.
	k, offset := pullKey{p.topic, p.queueID}, p.offset
	lp.mu.Lock()
	switch {
	case lp.mu.closed:
		lp.mu.Unlock()
		return holdClosed
	case len(lp.mu.byTime) >= lp.max:
		lp.mu.Unlock()
		return holdFull
	}
	lp.mu.byQueue[k] = append(lp.mu.byQueue[k], p)
	heap.Push(&lp.mu.byTime, p)
	earliest := lp.mu.byTime[0] == p
	lp.mu.Unlock()
	if earliest {
		lp.signal()
	}
	// A message that arrived between the empty read and the insertion above found no one
	// to wake: look once more.
	if maxOffset := lp.b.store.MaxOffset(k.topic, k.queueID); maxOffset > offset {
		lp.onArrival(k.topic, k.queueID, maxOffset)
	}
	return holdOK
}

// onArrival is the store's arrival listener: queue (topic, queueID) now ends at maxOffset.
// It must not block: it moves the pulls waiting for an offset below maxOffset to the
// ready list and signals run.
func (lp *longPoll) onArrival(topic string, queueID int32, maxOffset int64) {
	k := pullKey{topic, queueID}
	lp.mu.Lock()
	waiting := lp.mu.byQueue[k]
	if len(waiting) == 0 {
		lp.mu.Unlock()
		return
	}
	kept := waiting[:0]
	moved := false
	for _, p := range waiting {
		if p.offset < maxOffset {
			heap.Remove(&lp.mu.byTime, p.heapIdx)
			lp.mu.ready = append(lp.mu.ready, p)
			moved = true
		} else {
			kept = append(kept, p)
		}
	}
	clear(waiting[len(kept):])
	if len(kept) == 0 {
		delete(lp.mu.byQueue, k)
	} else {
		lp.mu.byQueue[k] = kept
	}
	lp.mu.Unlock()
	if moved {
		lp.signal()
	}
}

func (lp *longPoll) signal() {
	select {
	case lp.wake <- struct{}{}:
	default:
	}
}

// run answers ready and expired pulls until stop is closed.
func (lp *longPoll) run(stop <-chan struct{}) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var batch []*pullState
	for {
		select {
		case <-stop:
			return
		case <-lp.wake:
		case <-timer.C:
		}
		var nextNs int64
		batch, nextNs = lp.collect(batch[:0], perf.Now())
		for i, p := range batch {
			lp.answer(p)
			batch[i] = nil
		}
		d := time.Hour
		if nextNs > 0 {
			d = time.Duration(nextNs - perf.Now())
		}
		timer.Reset(max(d, 0))
	}
}

// collect moves expired pulls to the ready list and takes the whole list. nextNs is the
// earliest deadline still held (0 when none).
func (lp *longPoll) collect(into []*pullState, nowNs int64) ([]*pullState, int64) {
	lp.mu.Lock()
	defer lp.mu.Unlock()
	for len(lp.mu.byTime) > 0 && lp.mu.byTime[0].deadlineNs <= nowNs {
		p := heap.Pop(&lp.mu.byTime).(*pullState)
		lp.removeFromQueueLocked(p)
		lp.mu.ready = append(lp.mu.ready, p)
	}
	into = append(into, lp.mu.ready...)
	clear(lp.mu.ready)
	lp.mu.ready = lp.mu.ready[:0]
	var nextNs int64
	if len(lp.mu.byTime) > 0 {
		nextNs = lp.mu.byTime[0].deadlineNs
	}
	return into, nextNs
}

func (lp *longPoll) removeFromQueueLocked(p *pullState) {
	k := pullKey{p.topic, p.queueID}
	list := lp.mu.byQueue[k]
	for i, q := range list {
		if q == p {
			copy(list[i:], list[i+1:])
			list[len(list)-1] = nil
			list = list[:len(list)-1]
			break
		}
	}
	if len(list) == 0 {
		delete(lp.mu.byQueue, k)
	} else {
		lp.mu.byQueue[k] = list
	}
}

// answer re-runs a held pull without suspending and writes its answer.
func (lp *longPoll) answer(p *pullState) {
	code := lp.b.runPull(p)
	lp.b.answerPull(p, code)
}

// shutdown answers every held pull now with SERVICE_NOT_AVAILABLE and makes later holds
// fail with holdClosed. Not PULL_NOT_FOUND: the client re-pulls at once on 19, and that
// pull, in flight when the connection closes, is never answered, so the Go client waits
// out its 30 s pull timeout; on 14 it waits 3 s and pulls from the restarted broker.
func (lp *longPoll) shutdown() {
	lp.mu.Lock()
	lp.mu.closed = true
	all := append([]*pullState(nil), lp.mu.ready...)
	lp.mu.ready = nil
	for _, p := range lp.mu.byTime {
		all = append(all, p)
	}
	lp.mu.byTime = nil
	clear(lp.mu.byQueue)
	lp.mu.Unlock()
	for _, p := range all {
		p.heapIdx = -1
		lp.b.answerPull(p, remoting.RespServiceNotAvailable)
	}
}

// held returns the number of pulls held (for tests and metrics).
func (lp *longPoll) held() int {
	lp.mu.Lock()
	defer lp.mu.Unlock()
	return len(lp.mu.byTime)
}

// deadlineHeap orders held pulls by deadline; each knows its index for Remove.
type deadlineHeap []*pullState

func (h deadlineHeap) Len() int           { return len(h) }
func (h deadlineHeap) Less(i, j int) bool { return h[i].deadlineNs < h[j].deadlineNs }
func (h deadlineHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].heapIdx, h[j].heapIdx = i, j
}
func (h *deadlineHeap) Push(x any) {
	p := x.(*pullState)
	p.heapIdx = len(*h)
	*h = append(*h, p)
}
func (h *deadlineHeap) Pop() any {
	old := *h
	p := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	p.heapIdx = -1
	return p
}
