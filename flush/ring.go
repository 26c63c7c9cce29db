package flush

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ringmq/ringmq/perf"
)

// Ring is the group commit: appenders copy records into an in-memory ring, one
// flusher goroutine drains it into a Sink (the commit log's segment files).
//
// # Group commit (SYNC_FLUSH)
//
// An append reserves bytes at the ring's end, encodes into them, and queues its
// Waiter with a target offset (the end of its bytes). The flusher sleeps on a
// condition variable (no timer: a Go timer would add a millisecond) and is signalled by
// the first append that finds it idle. When it wakes it takes everything appended
// since its last flush, [written, appended), and issues ONE write per segment the range
// touches (a vectored write of two buffers when the range wraps the ring) followed by
// ONE fdatasync (Writer.WriteSync). Every waiter queued when it took the range shares
// that fdatasync; appends arriving during it queue up and form the next group, so the
// group grows with the load and the disk's latency by itself, with no batching delay.
// Waiters are completed in order, each with the flush's submit and durable times.
//
//	ring (RingBytes, a physical offset maps to offset % RingBytes):
//	+--------------------+=====================+---------------------+....overflow....+
//	| free               | being written       | appended, next group| free           |
//	+--------------------+=====================+---------------------+................+
//	                     ^written              ^flush snapshot       ^appended
//
// A reservation that crosses the ring's end is encoded contiguously into an overflow
// area past it, then copied to the ring's start, so Encoders always get one slice.
//
// # ASYNC_FLUSH
//
// Waiters complete inside Commit. The flusher still writes eagerly (so readers of the
// file see the bytes soon: the equivalent of RocketMQ's mmap write), but runs fdatasync
// only every FlushInterval when at least FlushLeastPages pages are dirty, or when any
// are and ten intervals passed (flushCommitLogThoroughInterval). Stats report the bytes
// not yet durable and the age of the oldest: the loss window.
//
// # Failures
//
// A failed write or fdatasync is never retried (after a failed fdatasync the page
// cache may have dropped the dirty pages, so a second one could succeed without the
// bytes being on disk: fsyncgate). The Ring fails: every queued waiter and every later
// append gets an error matching ErrStoreFailed and the cause. ENOSPC from a write is
// different: the bytes were never acknowledged and are still in the ring, so the Ring
// marks the disk full (ErrDiskFull to the queued waiters and to new appends) and
// rewrites the same range once ClearDiskFull is called.
//
// # Bounds
//
// MaxWaiters waiters may be queued and RingBytes bytes may be appended but not yet
// written; past the first Begin returns ErrBusy, past the second Reserve waits for the
// flusher up to MaxSpaceWait and then returns ErrBusy. A waiter not durable after
// SyncTimeout is completed with ErrFlushTimeout by a watcher goroutine; its bytes stay
// queued and may still become durable.
//
// # Concurrency
//
// Begin, Reserve, Commit and Abort form one append and are serialised by an append
// lock that Begin takes and Commit or Abort release. No lock is held across a system
// call: the flusher snapshots the range under the state lock, writes without it.
type Ring struct {
	cfg      RingConfig
	sink     Sink
	buf      []byte
	ringSize int64

	appendMu    sync.Mutex
	reserved    int64 // end of reserved bytes; appender-owned (under appendMu)
	pendingWrap int   // bytes of the last reservation still in the overflow area
	startNs     int64 // perf.Now() at Begin, for the space wait bound

	released  atomic.Int64  // ring space below this offset is free (== written)
	head      atomic.Uint64 // first queued waiter; advanced by the flusher under mu
	blocked   atomic.Bool   // mu.err, mu.diskFull or mu.closed is set
	durableA  atomic.Int64
	writtenA  atomic.Int64
	appendedA atomic.Int64

	wq []waitEntry // waiter queue, MaxWaiters slots, index % len
	// dispatched is the index up to which waiters were handed to a completion
	// (flusher-owned). head lags it while the completer works: a job must start at
	// dispatched, never at head, or it would hand out slots twice (and, once reused,
	// complete a later waiter before its bytes are durable).
	dispatched uint64

	mu struct {
		sync.Mutex
		appended     int64
		written      int64
		durable      int64
		tail         uint64
		err          error // sticky: ErrStoreFailed
		diskFull     error // ErrDiskFull with the reason
		writeNoSpace bool  // diskFull came from a write: rewrite after ClearDiskFull
		needReset    bool  // the next job starts with Sink.Reset
		closed       bool
		flusherIdle  bool
		spaceWaiters int
		syncDue      bool
		lastSyncNs   int64
		oldestNs     int64 // perf.Now() of the oldest byte not durable (0: none)
		stats        Stats
		// Groups of waiters handed to the completer (ring_complete.go).
		cq             [maxQueuedCompletions]completion
		cqHead, cqTail uint64
		completerIdle  bool
		completerStop  bool
	}
	flusherCond   sync.Cond // on mu
	spaceCond     sync.Cond // on mu
	completerCond sync.Cond // on mu: the completer waits for groups
	cqSpaceCond   sync.Cond // on mu: the flusher waits for room in cq

	timedOut        []Waiter // watcher scratch, len maxTimeoutsPerTick
	stopWatcher     chan struct{}
	flusherExited   sync.WaitGroup
	completerExited sync.WaitGroup
	done            sync.WaitGroup
}

// RingConfig configures a Ring.
type RingConfig struct {
	Sync            bool
	SyncTimeout     time.Duration
	FlushInterval   time.Duration
	FlushLeastPages int
	// MaxWaiters bounds queued SYNC_FLUSH waiters.
	MaxWaiters int
	// RingBytes bounds bytes appended but not yet written to the file.
	RingBytes int64
	// MaxReserveBytes bounds one Reserve (the overflow area's size).
	MaxReserveBytes int
	// MaxSpaceWait bounds how long Reserve waits for ring space (default 1 s).
	MaxSpaceWait time.Duration
	// InlineCompletions is how many waiters of a group the flusher completes itself
	// before handing the rest to the completer goroutine (default 2; see
	// ring_complete.go). Negative means none.
	InlineCompletions int
}

// Sink is what the Ring drains into: a log split into segment files.
type Sink interface {
	// Segment returns the Writer of the segment holding physical offset off, off's
	// offset inside that file, and the physical offset at which the segment ends. It
	// is called by the flusher only, for offsets appended before.
	Segment(off int64) (w Writer, fileOffBytes int64, segEndOffset int64, err error)
	// Flushed is called by the flusher after each flush with the new written and
	// durable offsets. It must not block for long.
	Flushed(writtenOffset, durableOffset int64)
	// Reset is called before the flusher rewrites a range a write refused with
	// ENOSPC: Writers are sticky after any failure, so the Sink must hand out fresh
	// ones from then on.
	Reset()
}

type waitEntry struct {
	w       Waiter
	target  int64
	enqNs   int64
	claimed atomic.Bool
}

const (
	pageBytes          = 4096
	watchTick          = 5 * time.Millisecond
	maxTimeoutsPerTick = 1024
	thoroughIntervals  = 10
)

// NewRing returns a Ring whose next byte goes at startOffset, and starts its flusher
// and watcher goroutines.
func NewRing(cfg RingConfig, sink Sink, startOffset int64) (*Ring, error) {
	if cfg.MaxWaiters <= 0 || cfg.RingBytes <= 0 || cfg.MaxReserveBytes <= 0 || cfg.SyncTimeout <= 0 || cfg.FlushInterval <= 0 {
		return nil, fmt.Errorf("flush: RingConfig needs positive MaxWaiters, RingBytes, MaxReserveBytes, SyncTimeout, FlushInterval: %+v", cfg)
	}
	if cfg.RingBytes < int64(cfg.MaxReserveBytes) {
		return nil, fmt.Errorf("flush: RingBytes %d below MaxReserveBytes %d", cfg.RingBytes, cfg.MaxReserveBytes)
	}
	if cfg.MaxSpaceWait <= 0 {
		cfg.MaxSpaceWait = time.Second
	}
	switch {
	case cfg.InlineCompletions == 0:
		cfg.InlineCompletions = defaultInlineCompletions
	case cfg.InlineCompletions < 0:
		cfg.InlineCompletions = 0
	}
	r := &Ring{
		cfg:         cfg,
		sink:        sink,
		buf:         make([]byte, cfg.RingBytes+int64(cfg.MaxReserveBytes)),
		ringSize:    cfg.RingBytes,
		reserved:    startOffset,
		wq:          make([]waitEntry, cfg.MaxWaiters),
		timedOut:    make([]Waiter, maxTimeoutsPerTick),
		stopWatcher: make(chan struct{}),
	}
	r.mu.appended, r.mu.written, r.mu.durable = startOffset, startOffset, startOffset
	r.mu.lastSyncNs = perf.Now()
	r.released.Store(startOffset)
	r.durableA.Store(startOffset)
	r.writtenA.Store(startOffset)
	r.appendedA.Store(startOffset)
	r.flusherCond.L = &r.mu
	r.spaceCond.L = &r.mu
	r.completerCond.L = &r.mu
	r.cqSpaceCond.L = &r.mu
	r.done.Add(3)
	r.flusherExited.Add(1)
	r.completerExited.Add(1)
	go r.flushLoop()
	go func() { defer r.completerExited.Done(); r.completer() }()
	go r.watch()
	return r, nil
}

// AppendedOffset, WrittenOffset and DurableOffset read the ring's progress without
// locking: the end of appended bytes, of bytes written to the file, and of bytes an
// fdatasync covered.
func (r *Ring) AppendedOffset() int64 { return r.appendedA.Load() }
func (r *Ring) WrittenOffset() int64  { return r.writtenA.Load() }
func (r *Ring) DurableOffset() int64  { return r.durableA.Load() }

// Err returns why appends are refused (nil if they are not).
func (r *Ring) Err() error {
	if !r.blocked.Load() {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.blockedErrLocked()
}

func (r *Ring) blockedErrLocked() error {
	switch {
	case r.mu.err != nil:
		return r.mu.err
	case r.mu.closed:
		return ErrClosed
	case r.mu.diskFull != nil:
		return r.mu.diskFull
	}
	return nil
}

func (r *Ring) setBlockedLocked() {
	r.blocked.Store(r.mu.err != nil || r.mu.closed || r.mu.diskFull != nil)
}

// SetDiskFull refuses appends with reason (which should wrap ErrDiskFull) until
// ClearDiskFull. Queued waiters are not affected.
func (r *Ring) SetDiskFull(reason error) {
	r.mu.Lock()
	if r.mu.diskFull == nil {
		r.mu.diskFull = reason
	}
	r.setBlockedLocked()
	r.mu.Unlock()
}

// ClearDiskFull lets appends resume, and the flusher rewrite a range a write refused
// with ENOSPC.
func (r *Ring) ClearDiskFull() {
	r.mu.Lock()
	r.mu.diskFull, r.mu.writeNoSpace = nil, false
	r.setBlockedLocked()
	r.flusherCond.Signal()
	r.mu.Unlock()
}

// DiskFull reports whether appends are refused for lack of space, and why.
func (r *Ring) DiskFull() (full bool, writeNoSpace bool, reason error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.mu.diskFull != nil, r.mu.writeNoSpace, r.mu.diskFull
}

// Begin starts an append: it takes the append lock and returns the offset of the
// next byte. It fails (and releases the lock) when appends are refused, or with
// ErrBusy when withWaiter and MaxWaiters waiters are queued.
func (r *Ring) Begin(withWaiter bool) (offset int64, err error) {
	r.appendMu.Lock()
	if r.blocked.Load() {
		if err := r.Err(); err != nil {
			r.appendMu.Unlock()
			return 0, err
		}
	}
	if withWaiter && r.cfg.Sync {
		r.mu.Lock()
		full := r.mu.tail-r.head.Load() >= uint64(len(r.wq))
		r.mu.Unlock()
		if full {
			r.appendMu.Unlock()
			return 0, fmt.Errorf("%w: %d waiters queued (MaxWaiters)", ErrBusy, len(r.wq))
		}
	}
	r.startNs = 0
	return r.reserved, nil
}

// Reserve returns the next n bytes (n <= MaxReserveBytes) for the caller to fill
// before Commit. It waits while the ring is full, up to MaxSpaceWait, then returns
// ErrBusy. On error the caller must Abort.
func (r *Ring) Reserve(n int) ([]byte, error) {
	if n <= 0 || n > r.cfg.MaxReserveBytes {
		panic(fmt.Sprintf("BUG: flush: Reserve(%d) outside 1..%d", n, r.cfg.MaxReserveBytes))
	}
	r.fixWrap()
	if r.reserved+int64(n)-r.released.Load() > r.ringSize {
		if err := r.waitSpace(n); err != nil {
			return nil, err
		}
	}
	p := r.reserved % r.ringSize
	r.reserved += int64(n)
	if over := p + int64(n) - r.ringSize; over > 0 {
		r.pendingWrap = int(over)
	}
	return r.buf[p : p+int64(n) : p+int64(n)], nil
}

// fixWrap copies the part of the last reservation that went into the overflow area
// to the ring's start.
func (r *Ring) fixWrap() {
	if r.pendingWrap > 0 {
		copy(r.buf[:r.pendingWrap], r.buf[r.ringSize:r.ringSize+int64(r.pendingWrap)])
		r.pendingWrap = 0
	}
}

func (r *Ring) waitSpace(n int) error {
	if r.startNs == 0 {
		r.startNs = perf.Now()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.mu.spaceWaiters++
	defer func() { r.mu.spaceWaiters-- }()
	for r.reserved+int64(n)-r.released.Load() > r.ringSize {
		if err := r.blockedErrLocked(); err != nil {
			return err
		}
		if perf.Now()-r.startNs > int64(r.cfg.MaxSpaceWait) {
			return fmt.Errorf("%w: %d bytes not yet written for %v (RingBytes)", ErrBusy, r.reserved-r.released.Load(), r.cfg.MaxSpaceWait)
		}
		r.flusherCond.Signal()
		r.spaceCond.Wait()
	}
	return nil
}

// Abort ends an append without publishing its reservations.
func (r *Ring) Abort() {
	r.pendingWrap = 0
	r.reserved = r.appendedA.Load()
	r.appendMu.Unlock()
}

// Commit publishes the reserved bytes, queues w (under SYNC_FLUSH) and ends the
// append. Under ASYNC_FLUSH w (if not nil) is completed before Commit returns. On
// error nothing is published and w is not called.
func (r *Ring) Commit(w Waiter) error {
	r.fixWrap()
	end := r.reserved
	r.mu.Lock()
	if err := r.blockedErrLocked(); err != nil && (r.mu.err != nil || r.mu.closed) {
		r.mu.Unlock()
		r.reserved = r.appendedA.Load()
		r.appendMu.Unlock()
		return err
	}
	if r.mu.appended == r.mu.durable {
		r.mu.oldestNs = perf.Now()
	}
	r.mu.appended = end
	r.appendedA.Store(end)
	if w != nil && r.cfg.Sync {
		if r.mu.tail-r.head.Load() >= uint64(len(r.wq)) {
			panic("BUG: flush: Commit with a waiter after Begin(false)")
		}
		e := &r.wq[r.mu.tail%uint64(len(r.wq))]
		e.w, e.target, e.enqNs = w, end, perf.Now()
		e.claimed.Store(false)
		r.mu.tail++
	}
	if r.mu.flusherIdle {
		r.mu.flusherIdle = false
		r.flusherCond.Signal()
	}
	r.mu.Unlock()
	r.appendMu.Unlock()
	if w != nil && !r.cfg.Sync {
		w.Durable(0, 0, nil)
	}
	return nil
}

// errIsNoSpace reports whether a write failed for lack of space.
func errIsNoSpace(err error) bool { return errors.Is(err, syscall.ENOSPC) }
