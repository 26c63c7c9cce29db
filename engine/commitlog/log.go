package commitlog

import (
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ringmq/ringmq/flush"
)

// Log is an open commit log. See the package doc.
type Log struct {
	cfg          Config
	dir          string
	backend      flush.Backend
	ownBackend   bool
	ring         *flush.Ring
	recoveredEnd int64
	segSize      int64

	mu struct {
		sync.RWMutex
		segs     []*segment // sorted by start; the readable and writable segments
		ready    []*segment // pre-written, past the last of segs, sorted
		allocErr error      // the allocator's last failure (nil after a success)
		closed   bool
	}
	allocCond sync.Cond // on mu (its write lock): a segment became ready or allocation failed

	// fw is the flusher's cache of segments whose writer is open (flusher-owned).
	fw []*segment

	hooksMu   sync.Mutex
	onDurable atomic.Pointer[[]func(int64)]
	onWritten atomic.Pointer[[]func(int64)]

	disk diskState

	allocKick   chan struct{}
	janitorKick chan struct{}
	stop        chan struct{}
	bg          sync.WaitGroup

	segmentsAllocated atomic.Uint64
	segmentsDeleted   atomic.Uint64
	segmentsRecycled  atomic.Uint64
	allocWaits        atomic.Uint64
	allocWaitNs       atomic.Int64
}

// Open opens (creating if needed) the commit log in cfg.Dir/commitlog, recovers it and
// starts its flusher, allocator and janitor. Recovery scans from the segment holding
// checkpointOffset (the Store's last durable checkpoint; 0 scans everything) with
// cfg.Validate, truncates a torn tail and returns; RecoveredEnd tells where appends
// continue.
func Open(cfg Config, checkpointOffset int64) (*Log, error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	l := &Log{
		cfg:         cfg,
		dir:         filepath.Join(cfg.Dir, "commitlog"),
		backend:     cfg.Backend,
		segSize:     cfg.SegmentSizeBytes,
		allocKick:   make(chan struct{}, 1),
		janitorKick: make(chan struct{}, 1),
		stop:        make(chan struct{}),
	}
	l.allocCond.L = &l.mu
	if l.backend == nil {
		b, err := flush.NewBackend("pwrite", flush.Options{})
		if err != nil {
			return nil, err
		}
		l.backend, l.ownBackend = b, true
	}
	if err := cfg.FS.MkdirAll(l.dir, 0o755); err != nil {
		return nil, fmt.Errorf("commitlog: mkdir %s: %w", l.dir, err)
	}
	end, err := l.recover(checkpointOffset)
	if err != nil {
		l.closeSegments()
		return nil, fmt.Errorf("commitlog: recover %s: %w", l.dir, err)
	}
	l.recoveredEnd = end
	l.ring, err = flush.NewRing(flush.RingConfig{
		Sync:            cfg.Sync,
		SyncTimeout:     cfg.SyncTimeout,
		FlushInterval:   cfg.FlushInterval,
		FlushLeastPages: cfg.FlushLeastPages,
		MaxWaiters:      cfg.MaxWaiters,
		RingBytes:       cfg.MaxPendingBytes,
		MaxReserveBytes: cfg.MaxRecordBytes + 8,
	}, (*sink)(l), end)
	if err != nil {
		l.closeSegments()
		return nil, fmt.Errorf("commitlog: %w", err)
	}
	l.bg.Add(2)
	go l.allocator()
	go l.janitor()
	kick(l.allocKick)
	return l, nil
}

func kick(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// RecoveredEnd is the offset where the log continued after recovery.
func (l *Log) RecoveredEnd() int64 { return l.recoveredEnd }

// AppendedOffset is the end of the last appended record (not necessarily written or
// durable yet).
func (l *Log) AppendedOffset() int64 { return l.ring.AppendedOffset() }

// WrittenOffset is the end of the bytes written to the segment files: Read and Scan
// serve [MinOffset, WrittenOffset). Under SYNC_FLUSH it advances only after the
// fdatasync covering the bytes returned (together with DurableOffset), so reads never
// see bytes that are not durable; under ASYNC_FLUSH it runs ahead of DurableOffset.
func (l *Log) WrittenOffset() int64 { return l.ring.WrittenOffset() }

// DurableOffset is the end of the bytes an fdatasync covered.
func (l *Log) DurableOffset() int64 { return l.ring.DurableOffset() }

// MinOffset is the start of the oldest segment.
func (l *Log) MinOffset() int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if len(l.mu.segs) == 0 {
		return l.recoveredEnd
	}
	return l.mu.segs[0].start
}

// OnDurable registers fn, called by the flusher with the new durable offset after
// each flush that advanced it. fn must not block; it runs on the flusher goroutine.
func (l *Log) OnDurable(fn func(durableOffset int64)) { l.addHook(&l.onDurable, fn) }

// OnWritten registers fn, called by the flusher with the new written offset after
// each write (the bytes are readable with Read; under ASYNC_FLUSH not yet durable).
func (l *Log) OnWritten(fn func(writtenOffset int64)) { l.addHook(&l.onWritten, fn) }

func (l *Log) addHook(p *atomic.Pointer[[]func(int64)], fn func(int64)) {
	l.hooksMu.Lock()
	defer l.hooksMu.Unlock()
	var hooks []func(int64)
	if old := p.Load(); old != nil {
		hooks = append(hooks, *old...)
	}
	hooks = append(hooks, fn)
	p.Store(&hooks)
}

// sink is the Log as the flusher sees it (flush.Sink).
type sink Log

func (k *sink) Segment(off int64) (flush.Writer, int64, int64, error) {
	l := (*Log)(k)
	start := off - off%l.segSize
	for _, s := range l.fw {
		if s.start == start {
			return s.w, off - start, start + l.segSize, nil
		}
	}
	s := l.findSegment(start)
	if s == nil {
		return nil, 0, 0, fmt.Errorf("BUG: commitlog: no segment for offset %d", off)
	}
	if s.w == nil { // closed by Reset after ENOSPC
		w, err := l.backend.Open(l.cfg.FS, s.path)
		if err != nil {
			return nil, 0, 0, fmt.Errorf("reopen segment %s for writing: %w", s.path, err)
		}
		s.w = w
	}
	l.fw = append(l.fw, s)
	return s.w, off - start, start + l.segSize, nil
}

// Reset closes the flusher's writers (backends refuse everything after a failed
// write); Segment reopens them for the rewrite.
func (k *sink) Reset() {
	l := (*Log)(k)
	for _, s := range l.fw {
		if err := s.w.Close(); err != nil {
			l.cfg.Logger.Warn("commitlog: close segment writer", "path", s.path, "err", err)
		}
		s.w = nil
	}
	clear(l.fw)
	l.fw = l.fw[:0]
}

func (k *sink) Flushed(written, durable int64) {
	l := (*Log)(k)
	// Close the writers of segments the flusher is done with.
	keep := l.fw[:0]
	for _, s := range l.fw {
		if s.start+l.segSize <= durable && s.start+l.segSize <= written {
			if err := s.w.Close(); err != nil {
				l.cfg.Logger.Warn("commitlog: close segment writer", "path", s.path, "err", err)
			}
			s.w = nil
			continue
		}
		keep = append(keep, s)
	}
	clear(l.fw[len(keep):])
	l.fw = keep
	if hooks := l.onWritten.Load(); hooks != nil {
		for _, fn := range *hooks {
			fn(written)
		}
	}
	if hooks := l.onDurable.Load(); hooks != nil {
		for _, fn := range *hooks {
			fn(durable)
		}
	}
}

// findSegment returns the published segment starting at start, or nil.
func (l *Log) findSegment(start int64) *segment {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return findIn(l.mu.segs, start)
}

func findIn(segs []*segment, start int64) *segment {
	i := sort.Search(len(segs), func(i int) bool { return segs[i].start >= start })
	if i < len(segs) && segs[i].start == start {
		return segs[i]
	}
	return nil
}

// Stats returns a snapshot for metrics.
func (l *Log) Stats() Stats {
	st := Stats{
		AppendedOffset:    l.ring.AppendedOffset(),
		WrittenOffset:     l.ring.WrittenOffset(),
		DurableOffset:     l.ring.DurableOffset(),
		MinOffset:         l.MinOffset(),
		Flush:             l.ring.Stats(),
		SegmentsAllocated: l.segmentsAllocated.Load(),
		SegmentsDeleted:   l.segmentsDeleted.Load(),
		SegmentsRecycled:  l.segmentsRecycled.Load(),
		AllocatorWaits:    l.allocWaits.Load(),
		AllocatorWaitNs:   l.allocWaitNs.Load(),
	}
	st.UnflushedBytes, st.OldestUnflushedAgeNs = l.ring.Unflushed()
	l.mu.RLock()
	st.Segments = len(l.mu.segs)
	l.mu.RUnlock()
	if full, _, reason := l.ring.DiskFull(); full {
		st.DiskFull = reason.Error()
	}
	return st
}

// Close stops appends, writes and syncs what was appended (unless the log failed or
// the disk is full), stops the background goroutines and closes the files. Reads must
// have released their views. It returns the log's failure, if any.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.mu.closed {
		l.mu.Unlock()
		return ErrClosed
	}
	l.mu.closed = true
	l.allocCond.Broadcast()
	l.mu.Unlock()
	err := l.ring.Close()
	close(l.stop)
	l.bg.Wait()
	for _, s := range l.fw {
		if s.w != nil {
			s.w.Close()
			s.w = nil
		}
	}
	l.fw = nil
	if cerr := l.closeSegments(); err == nil {
		err = cerr
	}
	if l.ownBackend {
		l.backend.Close()
	}
	return err
}

// closeSegments closes every segment's files; only when nothing else runs.
func (l *Log) closeSegments() error {
	l.mu.Lock()
	segs := append(l.mu.segs, l.mu.ready...)
	l.mu.segs, l.mu.ready = nil, nil
	l.mu.Unlock()
	var errs []error
	for _, s := range segs {
		if s.pins.Load() != 0 {
			errs = append(errs, fmt.Errorf("commitlog: close: segment %s still has %d pinned reads", s.path, s.pins.Load()))
		}
		if s.w != nil {
			errs = append(errs, s.w.Close())
			s.w = nil
		}
		errs = append(errs, s.closeFiles())
	}
	return errors.Join(errs...)
}

// wallClock, if set, replaces time.Now for retention decisions (tests).
var wallClock atomic.Pointer[func() time.Time]

func timeNow() time.Time {
	if f := wallClock.Load(); f != nil {
		return (*f)()
	}
	return time.Now()
}
