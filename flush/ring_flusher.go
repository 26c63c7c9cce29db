package flush

import (
	"fmt"
	"math/bits"
	"time"

	"github.com/ringmq/ringmq/perf"
)

// flushJob is one flush: what the flusher took under the lock.
type flushJob struct {
	from, to   int64  // write [from, to)
	durable    int64  // bytes below are durable already
	sync       bool   // fdatasync after writing
	head, tail uint64 // waiters queued when the job was taken and not yet dispatched
	reset      bool   // a write failed with ENOSPC since the last job: fresh Writers
}

// flushLoop is the flusher goroutine.
func (r *Ring) flushLoop() {
	defer r.done.Done()
	defer r.flusherExited.Done()
	var iov [2][]byte
	for {
		job, ok := r.nextJob()
		if !ok {
			return
		}
		if job.reset {
			r.sink.Reset()
		}
		submitNs := perf.Now()
		err := r.runJob(job, &iov)
		doneNs := perf.Now()
		r.finishJob(job, err, submitNs, doneNs)
	}
}

// nextJob waits for work; ok is false when the flusher should exit.
func (r *Ring) nextJob() (job flushJob, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for {
		if r.mu.err != nil {
			return job, false
		}
		unwritten := r.mu.written < r.mu.appended && !r.mu.writeNoSpace
		unsynced := r.mu.durable < r.mu.written
		if r.mu.closed && !unwritten && (!unsynced || r.mu.writeNoSpace) {
			return job, false
		}
		syncNow := r.cfg.Sync || r.mu.closed || r.mu.syncDue
		if unwritten || (unsynced && syncNow) {
			job = flushJob{from: r.mu.written, to: r.mu.appended, durable: r.mu.durable,
				sync: syncNow, head: r.dispatched, tail: r.mu.tail}
			if r.mu.writeNoSpace {
				job.to = job.from
			}
			job.reset, r.mu.needReset = r.mu.needReset, false
			r.mu.syncDue = false
			return job, true
		}
		r.mu.flusherIdle = true
		r.flusherCond.Wait()
	}
}

// runJob writes [from, to) one piece per segment, and syncs every segment holding
// bytes in [durable, to) if job.sync. It runs without locks.
func (r *Ring) runJob(job flushJob, iov *[2][]byte) error {
	if job.sync {
		// Segments written earlier but not synced yet (ASYNC_FLUSH), other than the
		// one the write below starts in, which WriteSync covers.
		for off := job.durable; off < job.from; {
			w, _, segEnd, err := r.sink.Segment(off)
			if err != nil {
				return err
			}
			if segEnd > job.from && job.from < job.to {
				break
			}
			if err := w.Sync(); err != nil {
				return err
			}
			off = segEnd
		}
	}
	for off := job.from; off < job.to; {
		w, fileOff, segEnd, err := r.sink.Segment(off)
		if err != nil {
			return err
		}
		end := min(job.to, segEnd)
		bufs := r.iovec(off, end, iov)
		if job.sync {
			err = w.WriteSync(bufs, fileOff)
		} else {
			err = w.WriteAt(bufs, fileOff)
		}
		if err != nil {
			return err
		}
		off = end
	}
	return nil
}

// iovec returns the ring bytes of [from, to) as one or two slices.
func (r *Ring) iovec(from, to int64, iov *[2][]byte) [][]byte {
	p := from % r.ringSize
	n := to - from
	if p+n <= r.ringSize {
		iov[0] = r.buf[p : p+n]
		return iov[:1]
	}
	iov[0] = r.buf[p:r.ringSize]
	iov[1] = r.buf[:p+n-r.ringSize]
	return iov[:2]
}

// finishJob publishes a flush's outcome and completes the waiters it covers.
func (r *Ring) finishJob(job flushJob, err error, submitNs, doneNs int64) {
	r.mu.Lock()
	var waiterErr error
	end := job.tail
	switch {
	case err != nil && errIsNoSpace(err):
		r.mu.writeNoSpace, r.mu.needReset = true, true
		if r.mu.diskFull == nil {
			r.mu.diskFull = fmt.Errorf("%w: write refused with ENOSPC: %v", ErrDiskFull, err)
		}
		waiterErr = r.mu.diskFull
	case err != nil:
		r.mu.err = StoreFailed(err)
		waiterErr = r.mu.err
		end = r.mu.tail
	default:
		r.mu.written = job.to
		r.released.Store(job.to)
		r.writtenA.Store(job.to)
		if job.sync {
			r.mu.durable = job.to
			r.durableA.Store(job.to)
			r.mu.lastSyncNs = doneNs
			r.mu.oldestNs = 0
			if r.mu.appended > job.to {
				r.mu.oldestNs = submitNs
			}
		}
		r.recordLocked(job, submitNs, doneNs)
	}
	r.setBlockedLocked()
	if r.mu.spaceWaiters > 0 {
		r.spaceCond.Broadcast()
	}
	written, durable := r.mu.written, r.mu.durable
	r.mu.Unlock()

	r.dispatched = end
	r.dispatch(completion{head: job.head, end: end, submitNs: submitNs, doneNs: doneNs, err: waiterErr})
	if err == nil {
		r.sink.Flushed(written, durable)
	}
}

// recordLocked updates the stats with a successful flush.
func (r *Ring) recordLocked(job flushJob, submitNs, doneNs int64) {
	st := &r.mu.stats
	n := job.to - job.from
	if n > 0 {
		st.Flushes++
		st.BytesWritten += uint64(n)
	}
	st.Last = FlushRecord{SubmittedNs: submitNs, BatchBytes: n}
	if !job.sync {
		return
	}
	lat := doneNs - submitNs
	st.Syncs++
	st.SyncNsTotal += lat
	st.SyncNsMax = max(st.SyncNsMax, lat)
	st.SyncLatencyUs[syncLatencyBucket(lat)]++
	st.Last.DurableNs = doneNs
	st.Last.Waiters = int(job.tail - job.head)
	st.WaitersDone += job.tail - job.head
}

// watch is the watcher goroutine: it times out waiters, marks ASYNC_FLUSH syncs due
// and bounds the ring-space wait. It runs every watchTick (milliseconds: a Go timer
// is fine at this scale, and nothing on the latency path waits for it).
func (r *Ring) watch() {
	defer r.done.Done()
	t := time.NewTicker(watchTick)
	defer t.Stop()
	for {
		select {
		case <-r.stopWatcher:
			return
		case <-t.C:
		}
		r.watchOnce(perf.Now())
	}
}

func (r *Ring) watchOnce(nowNs int64) {
	r.mu.Lock()
	if !r.cfg.Sync && r.mu.durable < r.mu.written && nowNs-r.mu.lastSyncNs >= int64(r.cfg.FlushInterval) {
		dirty := r.mu.written - r.mu.durable
		thorough := nowNs-r.mu.lastSyncNs >= thoroughIntervals*int64(r.cfg.FlushInterval)
		if dirty >= int64(r.cfg.FlushLeastPages)*pageBytes || thorough || r.mu.closed {
			r.mu.syncDue = true
			r.flusherCond.Signal()
		}
	}
	if r.mu.spaceWaiters > 0 {
		r.spaceCond.Broadcast()
	}
	n := 0
	if r.cfg.Sync {
		deadline := nowNs - int64(r.cfg.SyncTimeout)
		q := uint64(len(r.wq))
		for i := r.head.Load(); i != r.mu.tail && n < len(r.timedOut); i++ {
			e := &r.wq[i%q]
			if e.enqNs > deadline {
				break
			}
			if e.claimed.CompareAndSwap(false, true) {
				r.timedOut[n] = e.w
				n++
			}
		}
		r.mu.stats.Timeouts += uint64(n)
	}
	r.mu.Unlock()
	for i := range n {
		r.timedOut[i].Durable(0, 0, ErrFlushTimeout)
		r.timedOut[i] = nil
	}
}

// Stats returns a snapshot of the flusher's counters.
func (r *Ring) Stats() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.mu.stats
}

// Unflushed returns the bytes appended but not durable and the age of the oldest.
func (r *Ring) Unflushed() (bytes int64, oldestAgeNs int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	bytes = r.mu.appended - r.mu.durable
	if bytes > 0 && r.mu.oldestNs != 0 {
		oldestAgeNs = perf.Now() - r.mu.oldestNs
	}
	return bytes, oldestAgeNs
}

// Close refuses new appends, lets the flusher write and sync what was appended
// (unless the ring failed or the disk is full), and stops the goroutines. It returns
// the ring's failure, if any.
func (r *Ring) Close() error {
	r.appendMu.Lock()
	r.mu.Lock()
	r.mu.closed = true
	r.setBlockedLocked()
	r.flusherCond.Signal()
	r.mu.Unlock()
	r.appendMu.Unlock()
	r.flusherExited.Wait() // it exits once drained, failed, or stopped by a full disk
	r.stopCompleter()
	close(r.stopWatcher)
	r.done.Wait()
	r.mu.Lock()
	defer r.mu.Unlock()
	// Waiters still queued (a failure or a full disk stopped the flusher) get told.
	head := r.head.Load()
	err := r.mu.err
	if err == nil {
		err = ErrClosed
	}
	for i := head; i != r.mu.tail; i++ {
		e := &r.wq[i%uint64(len(r.wq))]
		if e.claimed.CompareAndSwap(false, true) {
			e.w.Durable(0, 0, err)
		}
	}
	r.head.Store(r.mu.tail)
	return r.mu.err
}

// syncLatencyBucket is the SyncLatencyUs bucket of a sync that took latNs: bucket i
// holds [2^i, 2^(i+1)) microseconds, bucket 0 also anything under 2 us.
func syncLatencyBucket(latNs int64) int {
	return min(max(bits.Len64(uint64(latNs/1000))-1, 0), SyncLatencyBuckets-1)
}
