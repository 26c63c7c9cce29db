//go:build linux && (amd64 || arm64 || riscv64 || loong64 || ppc64le)

package flush

import (
	"fmt"
	"os"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ringmq/ringmq/perf"
)

// Durable-commit benchmarks: each op appends size bytes to a pre-written
// (zero-filled, fsynced) file and makes them durable, wrapping at the file's end.
// Besides ns/op they report p50/p99/p99.9 per op in microseconds from uringLatHist.
// The goroutine is locked to its thread, as a flusher should be.
//
//	go test -run '^$' -bench 'WriteSync' -count=5 ./flush/

const (
	uringBenchFileBytes = 32 << 20
	// uringLatHistMaxMicros bounds the histogram; slower ops count in the last bucket.
	uringLatHistMaxMicros = 100_000
)

var uringBenchSizes = []int{1000, 1 << 10, 4 << 10, 64 << 10, 1 << 20}

// uringLatHist is a 1 µs-resolution latency histogram with a fixed bucket array, so
// recording allocates nothing.
type uringLatHist struct {
	counts [uringLatHistMaxMicros + 1]uint32
	total  uint64
}

func (h *uringLatHist) record(ns int64) {
	us := min(ns/1000, uringLatHistMaxMicros)
	h.counts[us]++
	h.total++
}

// quantileMicros returns the smallest bucket with at least q of the samples at or below it.
func (h *uringLatHist) quantileMicros(q float64) float64 {
	want := uint64(q*float64(h.total) + 0.5)
	seen := uint64(0)
	for us, c := range h.counts {
		if seen += uint64(c); seen >= want && seen > 0 {
			return float64(us)
		}
	}
	return uringLatHistMaxMicros
}

func (h *uringLatHist) report(b *testing.B) {
	b.ReportMetric(h.quantileMicros(0.50), "p50-us")
	b.ReportMetric(h.quantileMicros(0.99), "p99-us")
	b.ReportMetric(h.quantileMicros(0.999), "p99.9-us")
}

func BenchmarkWriteSync(b *testing.B) {
	for _, size := range uringBenchSizes {
		b.Run(fmt.Sprintf("backend=raw-pwrite/size=%dB", size), func(b *testing.B) {
			benchUringRawPwrite(b, size)
		})
		for _, name := range []string{"pwrite", "uring", "uring-direct", "uring-direct-dsync"} {
			b.Run(fmt.Sprintf("backend=%s/size=%dB", name, size), func(b *testing.B) {
				benchUringBackend(b, name, size)
			})
		}
	}
}

// benchUringRawPwrite is the baseline: plain unix.Pwrite + unix.Fdatasync.
func benchUringRawPwrite(b *testing.B, size int) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	f, err := os.OpenFile(uringPrewritten(b, uringBenchFileBytes), os.O_RDWR, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	fd := int(f.Fd())
	buf := make([]byte, size)
	h := new(uringLatHist)
	b.SetBytes(int64(size))
	b.ReportAllocs()
	off := int64(0)
	for b.Loop() {
		start := perf.Now()
		if _, err := unix.Pwrite(fd, buf, off); err != nil {
			b.Fatal(err)
		}
		if err := unix.Fdatasync(fd); err != nil {
			b.Fatal(err)
		}
		h.record(perf.Now() - start)
		if off += int64(size); off+int64(size) > uringBenchFileBytes {
			off = 0
		}
	}
	h.report(b)
}

func benchUringBackend(b *testing.B, name string, size int) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	be := newUringBackend(b, name, Options{})
	w := uringOpenWriter(b, be, uringPrewritten(b, uringBenchFileBytes))
	bufs := [][]byte{make([]byte, size)}
	h := new(uringLatHist)
	b.SetBytes(int64(size))
	b.ReportAllocs()
	off := int64(0)
	for b.Loop() {
		start := perf.Now()
		if err := w.WriteSync(bufs, off); err != nil {
			b.Fatal(err)
		}
		h.record(perf.Now() - start)
		if off += int64(size); off+int64(size) > uringBenchFileBytes {
			off = 0
		}
	}
	h.report(b)
}

// BenchmarkWriteSyncSideBySide runs one commit of each backend per iteration, in
// turn, on its own pre-written file, so every backend sees the same machine load
// at the same moments; on a noisy machine its per-backend percentiles compare
// better than separate sub-benchmarks. ns/op is one round of all backends.
func BenchmarkWriteSyncSideBySide(b *testing.B) {
	names := []string{"raw-pwrite", "pwrite", "uring", "uring-direct", "uring-direct-dsync"}
	for _, size := range []int{1000, 4 << 10, 64 << 10} {
		b.Run(fmt.Sprintf("size=%dB", size), func(b *testing.B) {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			commits := make([]func(off int64) error, len(names))
			for i, name := range names {
				commits[i] = uringBenchCommitter(b, name, size)
			}
			hists := make([]uringLatHist, len(names))
			b.SetBytes(int64(size * len(names)))
			b.ReportAllocs()
			off := int64(0)
			for b.Loop() {
				for i, commit := range commits {
					start := perf.Now()
					if err := commit(off); err != nil {
						b.Fatalf("%s: %v", names[i], err)
					}
					hists[i].record(perf.Now() - start)
				}
				if off += int64(size); off+int64(size) > uringBenchFileBytes {
					off = 0
				}
			}
			for i, name := range names {
				b.ReportMetric(hists[i].quantileMicros(0.50), name+"-p50-us")
				b.ReportMetric(hists[i].quantileMicros(0.99), name+"-p99-us")
				b.ReportMetric(hists[i].quantileMicros(0.999), name+"-p99.9-us")
			}
		})
	}
}

// uringBenchCommitter returns a function that durably writes size bytes at an
// offset of its own pre-written file, through the named backend or raw syscalls.
func uringBenchCommitter(b *testing.B, name string, size int) func(off int64) error {
	buf := make([]byte, size)
	path := uringPrewritten(b, uringBenchFileBytes)
	if name == "raw-pwrite" {
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { f.Close() })
		fd := int(f.Fd())
		return func(off int64) error {
			if _, err := unix.Pwrite(fd, buf, off); err != nil {
				return err
			}
			return unix.Fdatasync(fd)
		}
	}
	w := uringOpenWriter(b, newUringBackend(b, name, Options{}), path)
	bufs := [][]byte{buf}
	return func(off int64) error { return w.WriteSync(bufs, off) }
}
