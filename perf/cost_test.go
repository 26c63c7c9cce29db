package perf

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// fsyncP50 times n 4 KiB pwrite+fdatasync into an already-written 1 MiB file under dir (the
// cheapest durable write there is, DESIGN.md) and returns the median.
func fsyncP50(b *testing.B, dir string, n int) time.Duration {
	f, err := os.Create(filepath.Join(dir, "fsync-floor"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	page := bytes.Repeat([]byte{'y'}, 4096)
	for off := int64(0); off < 1<<20; off += 4096 {
		if _, err := f.WriteAt(page, off); err != nil {
			b.Fatal(err)
		}
	}
	if err := f.Sync(); err != nil {
		b.Fatal(err)
	}
	samples := make([]time.Duration, 0, n)
	for i := range n {
		t0 := time.Now()
		if _, err := unix.Pwrite(int(f.Fd()), page, int64(i%256)*4096); err != nil {
			b.Fatal(err)
		}
		if err := unix.Fdatasync(int(f.Fd())); err != nil {
			b.Fatal(err)
		}
		samples = append(samples, time.Since(t0))
	}
	slices.Sort(samples)
	return samples[len(samples)/2]
}

// BenchmarkInstrumentationShare measures in one run what a durable send pays for being
// observed (seven Mark calls and one Record) and a 4 KiB pwrite+fdatasync, the floor of such a
// send, and reports the first as a share of the second.
func BenchmarkInstrumentationShare(b *testing.B) {
	floor := fsyncP50(b, b.TempDir(), 400)
	r := NewRecorder(RecorderConfig{})
	stages := [...]Stage{StageRead, StageDecoded, StageQueued, StageAppended, StageFlushSubmitted, StageDurable, StageWritten}
	b.ReportAllocs()
	for b.Loop() {
		var s Stamps
		for _, st := range stages {
			s.Mark(st)
		}
		r.Record(CodeSendMessageV2, &s, 1024, "orders", 1)
	}
	perOp := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	b.ReportMetric(float64(floor.Nanoseconds())/1e3, "fsync-p50-us")
	b.ReportMetric(100*perOp/float64(floor.Nanoseconds()), "%-of-fsync")
}
