package bench

import (
	"sync"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

// Histograms record nanoseconds from 1 us to 60 s with 3 significant digits (HdrHistogram's
// convention for interval logs: values in ns, interval max printed in ms). Longer latencies
// are clamped to 60 s; they are counted, never dropped.
const (
	histLowestNs  = 1_000
	histHighestNs = 60_000_000_000
	histDigits    = 3

	slo1msNs  = 1_000_000
	slo10msNs = 10_000_000
)

func newHistogram() *hdr.Histogram { return hdr.New(histLowestNs, histHighestNs, histDigits) }

// latencyRecorder collects one latency metric from any goroutine. Writers take mu for a
// few tens of nanoseconds; the reporter swaps the interval histogram out every tick.
type latencyRecorder struct {
	name string // tag in the HDR log
	mu   struct {
		sync.Mutex
		interval *hdr.Histogram
	}
	spare *hdr.Histogram // owned by the reporter between swaps
}

func newLatencyRecorder(name string) *latencyRecorder {
	r := &latencyRecorder{name: name, spare: newHistogram()}
	r.mu.interval = newHistogram()
	return r
}

// record adds one latency in nanoseconds; negative values (a clock step) count as 0.
func (r *latencyRecorder) record(ns int64) {
	ns = min(max(ns, 0), histHighestNs)
	r.mu.Lock()
	_ = r.mu.interval.RecordValue(ns) // cannot fail: ns is clamped into range
	r.mu.Unlock()
}

// swap hands the current interval histogram to the caller (the reporter) and starts an
// empty one. The returned histogram stays valid until the next swap.
func (r *latencyRecorder) swap() *hdr.Histogram {
	r.spare.Reset()
	r.mu.Lock()
	h := r.mu.interval
	r.mu.interval = r.spare
	r.mu.Unlock()
	r.spare = h
	return h
}

// Percentiles reported everywhere: OMB's set plus the two the project's SLO names
// (99.6% under 1 ms, 99.996% under 10 ms).
var reportPercentiles = []float64{50, 75, 95, 99, 99.6, 99.9, 99.99, 99.996, 99.999}

// LatencySummary is a histogram reduced to the reported figures, in microseconds.
type LatencySummary struct {
	Count        int64              `json:"count"`
	AvgUs        float64            `json:"avgUs"`
	PercentileUs map[string]float64 `json:"percentileUs"` // "50", "99.6", ... -> us
	MaxUs        float64            `json:"maxUs"`
	Under1ms     float64            `json:"under1msFraction"`
	Under10ms    float64            `json:"under10msFraction"`
}

// percentileKey is the map key for a percentile: "99.6", "99.996", "50".
func percentileKey(p float64) string { return trimFloat(p) }

func summarize(h *hdr.Histogram) LatencySummary {
	s := LatencySummary{Count: h.TotalCount(), PercentileUs: make(map[string]float64, len(reportPercentiles))}
	if s.Count == 0 {
		return s
	}
	s.AvgUs = h.Mean() / 1e3
	s.MaxUs = float64(h.Max()) / 1e3
	// One pass over the counts for all percentiles (ValueAtQuantile walks them once per
	// percentile) and one for both SLO fractions: the reporter does this for every metric
	// every interval on the generator's CPUs (BenchmarkSummarize).
	ps := append([]float64(nil), reportPercentiles...) // ValueAtPercentiles sorts its argument
	for p, v := range h.ValueAtPercentiles(ps) {
		s.PercentileUs[percentileKey(p)] = float64(v) / 1e3
	}
	s.Under1ms, s.Under10ms = fractionsAtOrBelow(h, slo1msNs, slo10msNs)
	return s
}

// fractionsAtOrBelow is the share of recorded values <= limitANs and <= limitBNs
// (limitANs < limitBNs), to the histogram's precision: values in a limit's bucket count
// as at or below it.
func fractionsAtOrBelow(h *hdr.Histogram, limitANs, limitBNs int64) (a, b float64) {
	total := h.TotalCount()
	if total == 0 {
		return 0, 0
	}
	var belowA, belowB int64
	for _, bar := range h.Distribution() {
		if bar.From > limitBNs {
			break
		}
		if bar.From <= limitANs {
			belowA += bar.Count
		}
		belowB += bar.Count
	}
	return float64(belowA) / float64(total), float64(belowB) / float64(total)
}

// P returns percentile p in microseconds (0 when p was not computed).
func (s LatencySummary) P(p float64) float64 { return s.PercentileUs[percentileKey(p)] }
