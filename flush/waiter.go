package flush

import (
	"errors"
	"fmt"
)

// Waiter is told when the bytes of one append are durable, or why they will not be
// acknowledged. The caller embeds it in its own request object, so completing a
// waiter allocates nothing: there is no channel per request.
//
// Durable is called exactly once per append that was accepted (Append returned nil),
// from the flusher goroutine, the timeout watcher or, under ASYNC_FLUSH, from Append
// itself. It must not block: hand the result to another goroutine and return.
//
//   - err == nil: an fdatasync covering the bytes returned success (SYNC_FLUSH), or the
//     bytes are in the log buffer (ASYNC_FLUSH, where both times are 0).
//   - flushSubmittedNs is the perf.Now() at which the flush carrying the bytes was
//     submitted; durableNs the perf.Now() at which its fdatasync returned.
type Waiter interface {
	Durable(flushSubmittedNs, durableNs int64, err error)
}

// Errors a waiter or an append can get. The broker maps them to response codes.
var (
	// ErrBusy: a bound (waiters or bytes in flight) is reached; SYSTEM_BUSY.
	ErrBusy = errors.New("flush: busy: too many appends in flight")
	// ErrFlushTimeout: no fdatasync covered the bytes within SyncTimeout;
	// FLUSH_DISK_TIMEOUT. The bytes stay in the log and may still become durable.
	ErrFlushTimeout = errors.New("flush: sync flush timeout")
	// ErrStoreFailed wraps the first failed write or fdatasync. Every waiter in flight
	// and every later append gets it until the store is reopened; it is never retried.
	ErrStoreFailed = errors.New("flush: store failed, reopen required")
	// ErrDiskFull: the disk is full (ENOSPC, or use over the configured ratio).
	// Appends resume by themselves when space returns.
	ErrDiskFull = errors.New("flush: disk full")
	// ErrClosed: the log is closed.
	ErrClosed = errors.New("flush: closed")
)

// storeFailed wraps cause so that errors.Is matches both ErrStoreFailed and cause.
type storeFailed struct{ cause error }

func (e *storeFailed) Error() string { return fmt.Sprintf("%v: %v", ErrStoreFailed, e.cause) }
func (e *storeFailed) Unwrap() []error {
	return []error{ErrStoreFailed, e.cause}
}

// StoreFailed returns an error matching both ErrStoreFailed and cause.
func StoreFailed(cause error) error { return &storeFailed{cause: cause} }
