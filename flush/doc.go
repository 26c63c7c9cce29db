// Package flush decides when appended bytes become durable: the group commit, the
// SYNC_FLUSH / ASYNC_FLUSH policy, and the I/O backends behind them.
//
// # Pieces
//
//   - Backend / Writer (backend.go): how bytes reach one file. "pwrite" (pwrite.go:
//     pwritev + fdatasync through a vfs.File, the only backend the in-memory and
//     fault-injecting file systems support), "uring" and "uring-direct*" (uring*.go).
//     A Writer is sticky: after a failed write or sync it returns that error forever.
//   - Ring (ring.go, ring_flusher.go, ring_complete.go): the group commit. Appenders
//     encode into an in-memory ring; one flusher goroutine writes everything appended
//     since its last flush with one (vectored) write per segment and one fdatasync,
//     and completes every waiter that flush covers. The commit log drives it through
//     the Sink interface (its segment files).
//   - Waiter (waiter.go): how an append learns it is durable, without a channel or an
//     allocation per request.
//
// # Contract
//
//   - SYNC_FLUSH: a Waiter gets Durable(submitNs, durableNs, nil) only after an
//     fdatasync covering its bytes returned success; waiters complete in offset order.
//   - ASYNC_FLUSH: a Waiter completes inside Commit; the bytes are written at once and
//     made durable every FlushInterval (when FlushLeastPages pages are dirty, or any
//     after ten intervals). Unflushed reports the bytes at risk and their age.
//   - A failed write or fdatasync is never retried: the Ring fails and every waiter
//     and later append gets an error matching ErrStoreFailed and the cause. ENOSPC from
//     a write only marks the disk full (ErrDiskFull): the bytes stay in the ring and
//     are rewritten once ClearDiskFull is called.
//   - Bounds: MaxWaiters queued waiters and RingBytes unwritten bytes (ErrBusy past
//     them), SyncTimeout per waiter (ErrFlushTimeout; the bytes may still become
//     durable), 64 groups queued for the completer.
//
// # Concurrency
//
// Ring.Begin/Reserve/Commit/Abort form one append under the ring's append lock; all
// other Ring methods are safe for concurrent use. No lock is held across a system
// call. Goroutines per Ring: flusher, completer, watcher (5 ms tick, for timeouts and
// the ASYNC interval); the flusher sleeps on a sync.Cond, never on a timer.
//
// docs/durability.md describes the whole contract; docs/backends.md the measured
// backends and the default.
package flush
