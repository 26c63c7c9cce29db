package bench

import (
	"math/rand/v2"
	"testing"
)

// filledHistogram is a 10-s interval at 10,000 msg/s: 100,000 latencies spread from 10 us
// to ~100 ms, as a loaded run produces.
func filledHistogram() *latencyRecorder {
	rec := newLatencyRecorder("b")
	rng := rand.New(rand.NewPCG(1, 2))
	for range 100_000 {
		rec.record(int64(10_000 * (1 + rng.ExpFloat64()*rng.ExpFloat64()*50)))
	}
	return rec
}

// BenchmarkSummarize is the reporter's work per metric per report interval (3 metrics per
// tick, plus the totals at the end), which runs beside the pacer on the same CPUs.
func BenchmarkSummarize(b *testing.B) {
	h := filledHistogram().swap()
	b.ReportAllocs()
	for b.Loop() {
		_ = summarize(h)
	}
}

// TestSummarizeMatchesHistogram: the one-pass summary gives HdrHistogram's own
// ValueAtQuantile for every percentile and the SLO fractions counted bucket by bucket.
func TestSummarizeMatchesHistogram(t *testing.T) {
	h := filledHistogram().swap()
	s := summarize(h)
	if s.Count != 100_000 {
		t.Fatalf("count %d, want 100000", s.Count)
	}
	for _, p := range reportPercentiles {
		if got, want := s.P(p), float64(h.ValueAtQuantile(p))/1e3; got != want {
			t.Errorf("p%g = %g us, want %g", p, got, want)
		}
	}
	var under1, under10 int64
	for _, b := range h.Distribution() {
		if b.From <= slo1msNs {
			under1 += b.Count
		}
		if b.From <= slo10msNs {
			under10 += b.Count
		}
	}
	if s.Under1ms != float64(under1)/1e5 || s.Under10ms != float64(under10)/1e5 || !(s.Under1ms < s.Under10ms && s.Under10ms < 1) {
		t.Errorf("fractions %g %g, want %g %g (and 0 < a < b < 1)", s.Under1ms, s.Under10ms, float64(under1)/1e5, float64(under10)/1e5)
	}
}
