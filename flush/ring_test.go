package flush

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ringmq/ringmq/flush/vfs"
	"github.com/ringmq/ringmq/internal/testkit"
)

// memSink is a Sink of fixed-size segment files on a vfs.Mem, written through the
// pwrite backend; gate, if set, holds every write until it is closed.
type memSink struct {
	fs      *vfs.Mem
	segSize int64
	mu      sync.Mutex
	writers map[int64]Writer
	gate    chan struct{}
	resets  atomic.Int32
}

func newMemSink(t *testing.T, segSize int64, segments int) *memSink {
	t.Helper()
	s := &memSink{fs: vfs.NewMem(), segSize: segSize, writers: map[int64]Writer{}}
	if err := s.fs.MkdirAll("/seg", 0o755); err != nil {
		t.Fatal(err)
	}
	b, _ := NewBackend("pwrite", Options{})
	for i := range segments {
		path := fmt.Sprintf("/seg/%d", i)
		f, err := s.fs.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteAt(make([]byte, segSize), 0); err != nil {
			t.Fatal(err)
		}
		f.Close()
		w, err := b.Open(s.fs, path)
		if err != nil {
			t.Fatal(err)
		}
		s.writers[int64(i)*segSize] = &gatedWriter{Writer: w, s: s}
	}
	return s
}

type gatedWriter struct {
	Writer
	s *memSink
}

func (g *gatedWriter) WriteSync(bufs [][]byte, off int64) error {
	g.s.mu.Lock()
	gate := g.s.gate
	g.s.mu.Unlock()
	if gate != nil {
		<-gate
	}
	return g.Writer.WriteSync(bufs, off)
}

func (s *memSink) Segment(off int64) (Writer, int64, int64, error) {
	start := off - off%s.segSize
	w := s.writers[start]
	if w == nil {
		return nil, 0, 0, fmt.Errorf("no segment at %d", start)
	}
	return w, off - start, start + s.segSize, nil
}
func (s *memSink) Flushed(int64, int64) {}
func (s *memSink) Reset()               { s.resets.Add(1) }

// contents returns the bytes of [0, n) across the segments.
func (s *memSink) contents(t *testing.T, n int64) []byte {
	t.Helper()
	out := make([]byte, 0, n)
	for start := int64(0); start < n; start += s.segSize {
		f, err := s.fs.Open(fmt.Sprintf("/seg/%d", start/s.segSize))
		if err != nil {
			t.Fatal(err)
		}
		b := make([]byte, min(s.segSize, n-start))
		if _, err := f.ReadAt(b, 0); err != nil {
			t.Fatal(err)
		}
		f.Close()
		out = append(out, b...)
	}
	return out
}

func pattern(off int64) byte { return byte(off ^ off>>9) }

type seqWaiter struct {
	end    int64
	seq    int64
	err    error
	calls  atomic.Int32
	done   chan struct{}
	ring   *Ring
	durAt  int64 // DurableOffset seen at completion
	durSet bool  // durAt was taken by a wrapper
	global *atomic.Int64
}

func (w *seqWaiter) Durable(_, _ int64, err error) {
	if w.calls.Add(1) != 1 {
		panic("BUG: waiter completed twice")
	}
	if !w.durSet {
		w.durAt = w.ring.DurableOffset()
	}
	w.err, w.seq = err, w.global.Add(1)
	close(w.done)
}

func waitDone(t *testing.T, w *seqWaiter) {
	select {
	case <-w.done:
	case <-time.After(10 * time.Second):
		panic("waiter not completed in 10 s")
	}
}

func syncConfig() RingConfig {
	return RingConfig{Sync: true, SyncTimeout: 10 * time.Second, FlushInterval: 10 * time.Millisecond,
		FlushLeastPages: 1, MaxWaiters: 4096, RingBytes: 64 << 10, MaxReserveBytes: 8 << 10}
}

// appendOne appends n pattern bytes and returns the waiter.
func appendOne(t *testing.T, r *Ring, n int, global *atomic.Int64) (*seqWaiter, error) {
	w := &seqWaiter{done: make(chan struct{}), ring: r, global: global}
	off, err := r.Begin(true)
	if err != nil {
		return nil, err
	}
	dst, err := r.Reserve(n)
	if err != nil {
		r.Abort()
		return nil, err
	}
	for i := range dst {
		dst[i] = pattern(off + int64(i))
	}
	w.end = off + int64(n)
	return w, r.Commit(w)
}

// TestGroupCommitConcurrent: many writers share fdatasyncs; every waiter completes
// once, successfully, in offset order, after the durable offset covered it; the file
// holds exactly the appended bytes, across ring wraps and segment boundaries.
func TestGroupCommitConcurrent(t *testing.T) {
	seed := testkit.Seed(t)
	const writers, perWriter = 64, 60
	sink := newMemSink(t, 256<<10, 16)
	r, err := NewRing(syncConfig(), sink, 0)
	if err != nil {
		t.Fatal(err)
	}
	var global atomic.Int64
	var mu sync.Mutex
	var all []*seqWaiter
	var wg sync.WaitGroup
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, uint64(i)))
			for range perWriter {
				w, err := appendOne(t, r, 1+rng.IntN(2000), &global)
				if err != nil {
					t.Errorf("append: %v", err)
					return
				}
				waitDone(t, w)
				mu.Lock()
				all = append(all, w)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	end := r.AppendedOffset()
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].end < all[j].end })
	for i, w := range all {
		if w.err != nil || w.durAt < w.end {
			t.Fatalf("waiter to %d: err %v, durable %d at completion", w.end, w.err, w.durAt)
		}
		if i > 0 && w.seq < all[i-1].seq {
			t.Fatalf("waiter to %d completed before waiter to %d", w.end, all[i-1].end)
		}
	}
	st := r.Stats()
	if st.Syncs >= uint64(len(all)) {
		t.Fatalf("%d fdatasyncs for %d appends: no group commit", st.Syncs, len(all))
	}
	t.Logf("%d appends, %d flushes, %d fdatasyncs", len(all), st.Flushes, st.Syncs)
	got := sink.contents(t, end)
	for i, b := range got {
		if b != pattern(int64(i)) {
			t.Fatalf("byte %d is %d, want %d", i, b, pattern(int64(i)))
		}
	}
}

// TestSyncTimeoutAndBusy: with the disk stuck, a waiter times out (exactly once, the
// bytes stay queued and become durable later), past MaxWaiters Begin is busy, and a
// full ring makes Reserve busy after MaxSpaceWait.
func TestSyncTimeoutAndBusy(t *testing.T) {
	sink := newMemSink(t, 64<<10, 2)
	sink.gate = make(chan struct{})
	cfg := syncConfig()
	cfg.SyncTimeout, cfg.MaxWaiters, cfg.RingBytes, cfg.MaxReserveBytes = 30*time.Millisecond, 3, 16<<10, 4<<10
	cfg.MaxSpaceWait = 20 * time.Millisecond
	r, err := NewRing(cfg, sink, 0)
	if err != nil {
		t.Fatal(err)
	}
	var global atomic.Int64
	var ws []*seqWaiter
	for range 3 {
		w, err := appendOne(t, r, 4<<10, &global)
		if err != nil {
			t.Fatal(err)
		}
		ws = append(ws, w)
	}
	if _, err := r.Begin(true); !errors.Is(err, ErrBusy) {
		t.Fatalf("Begin past MaxWaiters: got %v, want ErrBusy", err)
	}
	if _, err := r.Begin(false); err != nil {
		t.Fatal(err)
	}
	r.Reserve(4 << 10) // fills the ring (12 KiB queued + 4 KiB)
	if _, err := r.Reserve(4 << 10); !errors.Is(err, ErrBusy) {
		t.Fatalf("Reserve on a full ring: got %v, want ErrBusy", err)
	}
	r.Abort()
	for _, w := range ws {
		waitDone(t, w)
		if !errors.Is(w.err, ErrFlushTimeout) {
			t.Fatalf("waiter: got %v, want ErrFlushTimeout", w.err)
		}
	}
	close(sink.gate)
	deadline := time.Now().Add(5 * time.Second)
	for r.DurableOffset() != 12<<10 {
		if time.Now().After(deadline) {
			t.Fatalf("durable offset %d, want %d", r.DurableOffset(), 12<<10)
		}
		time.Sleep(time.Millisecond)
	}
	if st := r.Stats(); st.Timeouts != 3 {
		t.Fatalf("Stats.Timeouts = %d, want 3", st.Timeouts)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestAsyncFlushPolicy: under ASYNC_FLUSH waiters complete at once, the bytes become
// durable within about FlushInterval, and Unflushed shows the window meanwhile.
func TestAsyncFlushPolicy(t *testing.T) {
	sink := newMemSink(t, 64<<10, 2)
	cfg := syncConfig()
	cfg.Sync, cfg.FlushInterval, cfg.FlushLeastPages = false, 50*time.Millisecond, 1
	r, err := NewRing(cfg, sink, 0)
	if err != nil {
		t.Fatal(err)
	}
	var global atomic.Int64
	w, err := appendOne(t, r, 5000, &global)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-w.done:
	default:
		t.Fatal("ASYNC_FLUSH waiter not completed by Commit")
	}
	if n, _ := r.Unflushed(); n != 5000 && r.DurableOffset() == 0 {
		t.Fatalf("Unflushed = %d bytes, want 5000", n)
	}
	deadline := time.Now().Add(5 * time.Second)
	for r.DurableOffset() != 5000 {
		if time.Now().After(deadline) {
			t.Fatalf("not durable after 5 s (durable %d)", r.DurableOffset())
		}
		time.Sleep(time.Millisecond)
	}
	if n, age := r.Unflushed(); n != 0 || age != 0 {
		t.Fatalf("Unflushed = %d bytes, age %d ns after the flush; want 0, 0", n, age)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
}

// slowWaiter takes its time in Durable, so the completer lags the flusher.
type slowWaiter struct{ seqWaiter }

func (w *slowWaiter) Durable(a, b int64, err error) {
	w.durAt, w.durSet = w.ring.DurableOffset(), true
	for t0 := time.Now(); time.Since(t0) < 20*time.Microsecond; {
	}
	w.seqWaiter.Durable(a, b, err)
}

// TestCompleterLagKeepsSlots: with a completer slower than the flusher and a small
// waiter queue, slots are never handed out twice: no waiter completes before the
// durable offset covers it, and 2 x writers <= MaxWaiters never see ErrBusy.
func TestCompleterLagKeepsSlots(t *testing.T) {
	const writers, perWriter = 16, 150
	sink := newMemSink(t, 1<<20, 4)
	cfg := syncConfig()
	cfg.MaxWaiters = 2 * writers // a slot frees after its group's last completion
	r, err := NewRing(cfg, sink, 0)
	if err != nil {
		t.Fatal(err)
	}
	var global atomic.Int64
	var wg sync.WaitGroup
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range perWriter {
				w := &slowWaiter{seqWaiter{done: make(chan struct{}), ring: r, global: &global}}
				off, err := r.Begin(true)
				if err != nil {
					t.Errorf("Begin: %v", err)
					return
				}
				dst, _ := r.Reserve(100)
				for i := range dst {
					dst[i] = pattern(off + int64(i))
				}
				w.end = off + 100
				if err := r.Commit(w); err != nil {
					t.Errorf("Commit: %v", err)
					return
				}
				waitDone(t, &w.seqWaiter)
				if w.err != nil || w.durAt < w.end {
					t.Errorf("waiter to %d completed with %v at durable offset %d", w.end, w.err, w.durAt)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
}
