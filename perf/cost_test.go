package perf

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/ringmq/ringmq/internal/testkit"
)

// fsyncP50 is the median of n 4 KiB pwrite+fdatasync (testkit.FsyncSamples) under dir.
func fsyncP50(b *testing.B, dir string, n int) time.Duration {
	samples := testkit.FsyncSamples(b, dir, n)
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

// BenchmarkRecordCacheCold measures Record as a broker sees it: between two requests other work
// has pushed the histograms' lines out of L1/L2. Each iteration sweeps 64 KiB of a 4 MiB buffer
// (a different part each time), then times one Record of a send whose stamps come from a
// realistic spread, and, as the timer's own floor, an empty pair of clock reads. Medians of the
// per-call times are robust to the noise of a shared machine: "record-p50-ns" is the median
// Record time minus the median empty pair, "record-p99-ns" the same at the 99th percentile.
func BenchmarkRecordCacheCold(b *testing.B) {
	const sweepBytes, bufBytes = 64 << 10, 4 << 20
	buf := make([]byte, bufBytes)
	rng := rand.New(rand.NewPCG(1, 2))
	stamps := make([]Stamps, 1024)
	for i := range stamps {
		t := int64(1000)
		for _, st := range [...]Stage{StageRead, StageDecoded, StageQueued, StageAppended, StageFlushSubmitted, StageDurable, StageWritten} {
			stamps[i].At[st] = t
			t += int64(1000 + rng.ExpFloat64()*40_000)
		}
	}
	r := NewRecorder(RecorderConfig{})
	recNs := make([]int64, 0, 1<<16)
	emptyNs := make([]int64, 0, 1<<16)
	var sink byte
	i := 0
	for b.Loop() {
		part := buf[(i*sweepBytes)%bufBytes:][:sweepBytes]
		for j := 0; j < len(part); j += 64 {
			part[j]++
			sink += part[j]
		}
		t0 := Now()
		r.Record(CodeSendMessageV2, &stamps[i%len(stamps)], 1024, "orders", int32(i%8))
		t1 := Now()
		t2 := Now()
		if len(recNs) < cap(recNs) {
			recNs, emptyNs = append(recNs, t1-t0), append(emptyNs, Now()-t2)
		}
		i++
	}
	slices.Sort(recNs)
	slices.Sort(emptyNs)
	at := func(s []int64, q float64) float64 { return float64(s[int(q*float64(len(s)-1))]) }
	b.ReportMetric(at(recNs, 0.5)-at(emptyNs, 0.5), "record-p50-ns")
	b.ReportMetric(at(recNs, 0.99)-at(emptyNs, 0.99), "record-p99-ns")
	_ = sink
}
