package flush

// Completing waiters off the flusher's critical path.
//
// Calling Durable on a waiter usually wakes a goroutine (a few microseconds each on
// this kind of machine). Done by the flusher, the completions of a group of 30 would
// delay the next flush by about as long as its fdatasync. So the flusher completes at
// most InlineCompletions waiters itself (a lone writer pays no extra hand-off) and
// hands the rest of the group to the completer goroutine, then starts the next flush
// at once. Order is kept: the flusher completes inline only when the completer has
// nothing queued, and the completer takes groups in flush order.

// completion is a range of waiters to complete with one flush's outcome.
type completion struct {
	head, end        uint64
	submitNs, doneNs int64
	err              error
}

// maxQueuedCompletions bounds the groups handed to the completer; past it the
// flusher waits for the completer.
const maxQueuedCompletions = 64

// defaultInlineCompletions is RingConfig.InlineCompletions's default.
const defaultInlineCompletions = 2

// dispatch completes c's waiters: the first InlineCompletions inline when the
// completer is idle, the rest through the completer. Only the flusher calls it.
func (r *Ring) dispatch(c completion) {
	if c.head == c.end {
		return
	}
	r.mu.Lock()
	if r.mu.cqTail == r.mu.cqHead {
		n := min(c.end-c.head, uint64(r.cfg.InlineCompletions))
		r.mu.Unlock()
		r.completeRange(c.head, c.head+n, c)
		c.head += n
		r.mu.Lock()
		r.head.Store(c.head)
		if c.head == c.end {
			r.mu.Unlock()
			return
		}
	}
	for r.mu.cqTail-r.mu.cqHead == maxQueuedCompletions {
		r.cqSpaceCond.Wait()
	}
	r.mu.cq[r.mu.cqTail%maxQueuedCompletions] = c
	r.mu.cqTail++
	if r.mu.completerIdle {
		r.mu.completerIdle = false
		r.completerCond.Signal()
	}
	r.mu.Unlock()
}

// completer is the completer goroutine; it exits when stopped with nothing queued.
func (r *Ring) completer() {
	defer r.done.Done()
	for {
		r.mu.Lock()
		for r.mu.cqTail == r.mu.cqHead && !r.mu.completerStop {
			r.mu.completerIdle = true
			r.completerCond.Wait()
		}
		r.mu.completerIdle = false
		if r.mu.cqTail == r.mu.cqHead {
			r.mu.Unlock()
			return
		}
		c := r.mu.cq[r.mu.cqHead%maxQueuedCompletions]
		r.mu.Unlock()
		r.completeRange(c.head, c.end, c)
		r.mu.Lock()
		r.head.Store(c.end)
		r.mu.cq[r.mu.cqHead%maxQueuedCompletions] = completion{}
		r.mu.cqHead++
		r.cqSpaceCond.Signal()
		r.mu.Unlock()
	}
}

// completeRange calls Durable on the waiters [from, to) not claimed by the watcher.
func (r *Ring) completeRange(from, to uint64, c completion) {
	n := uint64(len(r.wq))
	for i := from; i != to; i++ {
		e := &r.wq[i%n]
		if e.claimed.CompareAndSwap(false, true) {
			e.w.Durable(c.submitNs, c.doneNs, c.err)
		}
	}
}

// stopCompleter lets the completer drain its queue and waits until it exited.
func (r *Ring) stopCompleter() {
	r.mu.Lock()
	r.mu.completerStop = true
	r.completerCond.Signal()
	r.mu.Unlock()
	r.completerExited.Wait()
}
