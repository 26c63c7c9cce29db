package commitlog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringmq/ringmq/flush"
	"github.com/ringmq/ringmq/flush/vfs"
	"github.com/ringmq/ringmq/perf"
)

// Benchmarks on the real disk (b.TempDir, which is on the data file system here).
// Run: go test -run '^$' -bench . -count 5 ./engine/commitlog/
// The raw baselines run in the same invocation, so ratios compare like with like.

const benchRecBytes = 1024

// benchRec is a 1 KiB record: a copy of a template with the header the log needs.
type benchRec struct{ tmpl []byte }

func newBenchRec(size int) *benchRec {
	b := make([]byte, size)
	binary.BigEndian.PutUint32(b, uint32(size))
	binary.BigEndian.PutUint32(b[4:], testMagic)
	for i := 8; i < size; i++ {
		b[i] = byte(i)
	}
	return &benchRec{tmpl: b}
}

func (r *benchRec) Size() int                  { return len(r.tmpl) }
func (r *benchRec) Encode(dst []byte, _ int64) { copy(dst, r.tmpl) }

func benchValidate(b []byte) (int, error) {
	if len(b) < 8 || binary.BigEndian.Uint32(b[4:]) != testMagic {
		return 0, errors.New("bad record")
	}
	return int(binary.BigEndian.Uint32(b)), nil
}

// chanWaiter is a reusable waiter: one per writer goroutine, no allocation per append.
// It keeps the flush's times of the last completion.
type chanWaiter struct {
	ch                  chan error
	submitNs, durableNs int64
}

func (w *chanWaiter) Durable(submitNs, durableNs int64, err error) {
	w.submitNs, w.durableNs = submitNs, durableNs
	w.ch <- err
}

// latencies collects samples (bounded) and reports percentiles in microseconds.
type latencies struct{ ns []int64 }

func newLatencies() *latencies { return &latencies{ns: make([]int64, 0, 1<<20)} }

func (l *latencies) add(ns int64) {
	if len(l.ns) < cap(l.ns) {
		l.ns = append(l.ns, ns)
	}
}

func (l *latencies) report(b *testing.B, all ...*latencies) {
	var ns []int64
	for _, x := range append(all, l) {
		ns = append(ns, x.ns...)
	}
	if len(ns) == 0 {
		return
	}
	slices.Sort(ns)
	at := func(p float64) float64 { return float64(ns[min(len(ns)-1, int(p*float64(len(ns))))]) / 1e3 }
	b.ReportMetric(at(0.50), "p50-us")
	b.ReportMetric(at(0.99), "p99-us")
	b.ReportMetric(at(0.999), "p99.9-us")
}

// p50 reports the median of the samples as metric unit.
func (l *latencies) p50(b *testing.B, unit string) {
	if len(l.ns) == 0 {
		return
	}
	slices.Sort(l.ns)
	b.ReportMetric(float64(l.ns[len(l.ns)/2])/1e3, unit)
}

// BenchmarkRawPwriteFdatasync is the baseline: one thread, pwrite of size bytes at
// sequential offsets of a pre-written 256 MiB file, then fdatasync.
func BenchmarkRawPwriteFdatasync(b *testing.B) {
	for _, size := range []int{1 << 10, 4 << 10, 32 << 10, 64 << 10, 128 << 10, 256 << 10, 1 << 20} {
		b.Run(fmt.Sprintf("size=%dK", size>>10), func(b *testing.B) {
			const fileBytes = 256 << 20
			f := prewrittenFile(b, fileBytes)
			defer f.Close()
			buf := make([]byte, size)
			lat := newLatencies()
			b.SetBytes(int64(size))
			b.ReportAllocs()
			var off int64
			for b.Loop() {
				t0 := perf.Now()
				if _, err := unix.Pwrite(int(f.Fd()), buf, off); err != nil {
					b.Fatal(err)
				}
				if err := unix.Fdatasync(int(f.Fd())); err != nil {
					b.Fatal(err)
				}
				lat.add(perf.Now() - t0)
				off = (off + int64(size)) % fileBytes
			}
			lat.report(b)
		})
	}
}

func prewrittenFile(b *testing.B, n int) *os.File {
	f, err := os.Create(filepath.Join(b.TempDir(), "raw"))
	if err != nil {
		b.Fatal(err)
	}
	chunk := make([]byte, 1<<20)
	for off := 0; off < n; off += len(chunk) {
		if _, err := f.WriteAt(chunk, int64(off)); err != nil {
			b.Fatal(err)
		}
	}
	if err := f.Sync(); err != nil {
		b.Fatal(err)
	}
	return f
}

// openBenchLog opens a log on the real disk and waits until the allocator has its
// ready segments, so pre-writing does not compete with the measurement.
func openBenchLog(b *testing.B, backend string, sync bool, segBytes int64) *Log {
	be, err := flush.NewBackend(backend, flush.Options{})
	if err != nil {
		b.Skipf("backend %s: %v", backend, err)
	}
	l, err := Open(Config{
		FS: vfs.OS{}, Dir: b.TempDir(), SegmentSizeBytes: segBytes, Backend: be, Sync: sync,
		Logger: quietLogger(), Validate: benchValidate, DiskMaxUsedSpaceRatio: 95,
	}, 0)
	if err != nil {
		be.Close()
		if errors.Is(err, flush.ErrNeedsOSFile) {
			b.Skip(err)
		}
		b.Fatal(err)
	}
	b.Cleanup(func() { l.Close(); be.Close() })
	deadline := time.Now().Add(2 * time.Minute)
	for l.Stats().SegmentsAllocated < 1+readySegments {
		if time.Now().After(deadline) {
			b.Fatal("allocator did not pre-write its segments in 2 minutes")
		}
		time.Sleep(time.Millisecond)
	}
	return l
}

// BenchmarkSyncLatency: one writer, SYNC_FLUSH, 1 KiB, append to durable, per
// backend.
func BenchmarkSyncLatency(b *testing.B) {
	for _, name := range flush.BackendNames() {
		b.Run("backend="+name, func(b *testing.B) {
			l := openBenchLog(b, name, true, 256<<20)
			rec := newBenchRec(benchRecBytes)
			w := &chanWaiter{ch: make(chan error, 1)}
			lat, wake, io, ret := newLatencies(), newLatencies(), newLatencies(), newLatencies()
			b.SetBytes(benchRecBytes)
			b.ReportAllocs()
			for b.Loop() {
				t0 := perf.Now()
				if _, err := l.Append(rec, w); err != nil {
					b.Fatal(err)
				}
				if err := <-w.ch; err != nil {
					b.Fatal(err)
				}
				t1 := perf.Now()
				lat.add(t1 - t0)
				wake.add(w.submitNs - t0) // append to flush submitted (includes a flush in progress)
				io.add(w.durableNs - w.submitNs)
				ret.add(t1 - w.durableNs) // fdatasync returned to the appender running again
			}
			lat.report(b)
			wake.p50(b, "p50-submit-us")
			io.p50(b, "p50-io-us")
			ret.p50(b, "p50-return-us")
		})
	}
}

// BenchmarkSyncConcurrent: N writers, SYNC_FLUSH, 1 KiB, each waits for durability
// before its next append. ns/op is one writer's append-to-durable time; acks/s and
// MB/s are the total over all writers; p50/p99/p99.9 are over all writers' appends.
func BenchmarkSyncConcurrent(b *testing.B) {
	for _, name := range flush.BackendNames() {
		for _, writers := range []int{1, 8, 64, 256} {
			b.Run(fmt.Sprintf("backend=%s/writers=%d", name, writers), func(b *testing.B) {
				benchConcurrent(b, name, writers)
			})
		}
	}
}

func benchConcurrent(b *testing.B, backend string, writers int) {
	l := openBenchLog(b, backend, true, 256<<20)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	lats := make([]*latencies, writers)
	var acks atomic.Int64
	var failed atomic.Pointer[error]
	// writers-1 background writers; the benchmark goroutine is the last one, so no
	// harness channel sits between an ack and the next append.
	for i := range writers - 1 {
		lats[i] = &latencies{ns: make([]int64, 0, 1<<16)}
		wg.Add(1)
		go func() {
			defer wg.Done()
			rec := newBenchRec(benchRecBytes)
			w := &chanWaiter{ch: make(chan error, 1)}
			for {
				select {
				case <-stop:
					return
				default:
				}
				t0 := perf.Now()
				if err := appendWait(l, rec, w); err != nil {
					fail := err
					failed.Store(&fail)
					return
				}
				lats[i].add(perf.Now() - t0)
				acks.Add(1)
			}
		}()
	}
	lats[writers-1] = newLatencies()
	rec := newBenchRec(benchRecBytes)
	w := &chanWaiter{ch: make(chan error, 1)}
	st0 := l.Stats().Flush
	acks0 := acks.Load()
	b.ReportAllocs()
	for b.Loop() {
		t0 := perf.Now()
		if err := appendWait(l, rec, w); err != nil {
			b.Fatal(err)
		}
		lats[writers-1].add(perf.Now() - t0)
		if p := failed.Load(); p != nil {
			b.Fatal(*p)
		}
	}
	total := float64(acks.Load()-acks0) + float64(b.N)
	secs := b.Elapsed().Seconds()
	st := l.Stats().Flush
	close(stop)
	wg.Wait()
	b.ReportMetric(float64(l.Stats().AllocatorWaits), "alloc-waits")
	b.ReportMetric(total/secs, "acks/s")
	b.ReportMetric(total*benchRecBytes/secs/1e6, "MB/s")
	if syncs := st.Syncs - st0.Syncs; syncs > 0 {
		b.ReportMetric(float64(st.BytesWritten-st0.BytesWritten)/float64(syncs)/1024, "KiB/flush")
	}
	lats[0].report(b, lats[1:]...)
}

// appendWait appends rec and waits for its waiter.
func appendWait(l *Log, rec *benchRec, w *chanWaiter) error {
	if _, err := l.Append(rec, w); err != nil {
		return err
	}
	return <-w.ch
}

// BenchmarkAsyncAppend: one goroutine, ASYNC_FLUSH, 1 KiB appends.
func BenchmarkAsyncAppend(b *testing.B) {
	l := openBenchLog(b, "pwrite", false, 256<<20)
	rec := newBenchRec(benchRecBytes)
	b.SetBytes(benchRecBytes)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := l.Append(rec, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	st := l.Stats()
	b.ReportMetric(float64(st.AllocatorWaits), "alloc-waits")
}
