package perf

import (
	"fmt"
	"math"
	"slices"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// ReportPercentiles are the percentiles every distribution in a LatencyReport carries, in order;
// 100 is the maximum. 99.6 and 99.996 are the SLO's points.
var ReportPercentiles = []float64{50, 90, 99, 99.6, 99.9, 99.99, 99.996, 100}

// SLO targets: fraction of durable sends within 1 ms and within 10 ms.
const (
	SLOTargetWithin1ms  = 0.996
	SLOTargetWithin10ms = 0.99996
)

// LatencyReport is what /api/latency serves and `ringmqctl latency` prints.
type LatencyReport struct {
	Window           string          `json:"window"`
	WindowSeconds    float64         `json:"window_seconds"` // time actually covered
	IntervalSeconds  float64         `json:"interval_seconds"`
	GeneratedAt      time.Time       `json:"generated_at"`
	Percentiles      []float64       `json:"percentiles"`
	Overall          Dist            `json:"overall"`   // end to end, all codes
	Sends            Dist            `json:"sends"`     // end to end, send codes: the SLO population
	SendsSLO         SLO             `json:"sends_slo"` // SLO of the send codes
	Stages           []StageDist     `json:"stages"`    // send codes, per stage entered
	Codes            []CodeReport    `json:"codes"`     // codes that saw requests in the window
	Spectrum         []SpectrumPoint `json:"spectrum"`  // sends, end to end
	Series           []SeriesPoint   `json:"series"`    // closed intervals, oldest first
	SlowTotal        uint64          `json:"slow_total"`
	SlowDropped      int64           `json:"slow_dropped"`
	StampOrderErrors int64           `json:"stamp_order_errors"`
	// StampOrderErrorsByStage counts them by the stage stamped earlier than the one before it.
	StampOrderErrorsByStage map[string]int64 `json:"stamp_order_errors_by_stage,omitempty"`
}

// Dist is one latency distribution: Us[i] is the value at Percentiles[i], in microseconds.
type Dist struct {
	Count  int64     `json:"count"`
	Us     []float64 `json:"us"`
	MeanUs float64   `json:"mean_us"`
}

// StageDist is the distribution of the time taken to enter one stage.
type StageDist struct {
	Stage string `json:"stage"`
	Dist
}

// SLO is the SLO counters over a window and what they mean against the targets. Burn is the
// fraction of requests over the threshold divided by the fraction allowed: 1 spends the error
// budget exactly at the rate the target allows.
type SLO struct {
	Total         int64   `json:"total"`
	Within1ms     int64   `json:"within_1ms"`
	Within10ms    int64   `json:"within_10ms"`
	FracWithin1ms float64 `json:"frac_within_1ms"`
	FracWithin10  float64 `json:"frac_within_10ms"`
	Burn1ms       float64 `json:"burn_1ms"`
	Burn10ms      float64 `json:"burn_10ms"`
}

// CodeReport is one request code's share of a report.
type CodeReport struct {
	Code           int16       `json:"code"`
	Name           string      `json:"name"`
	E2E            Dist        `json:"e2e"`
	Stages         []StageDist `json:"stages"`
	SLO            SLO         `json:"slo"`
	Bytes          int64       `json:"bytes"`
	RequestsPerSec float64     `json:"requests_per_sec"`
	BytesPerSec    float64     `json:"bytes_per_sec"`
}

// SpectrumPoint is one point of the percentile spectrum: InvTail = 1/(1-p).
type SpectrumPoint struct {
	Percentile float64 `json:"p"`
	InvTail    float64 `json:"inv_tail"`
	Us         float64 `json:"us"`
}

// SeriesPoint is one closed interval.
type SeriesPoint struct {
	EndUnixMs     int64   `json:"end_unix_ms"`
	Seconds       float64 `json:"seconds"`
	Requests      int64   `json:"requests"` // all codes
	Sends         int64   `json:"sends"`
	SendsWithin1  int64   `json:"sends_within_1ms"`
	SendsWithin10 int64   `json:"sends_within_10ms"`
	SendBytes     int64   `json:"send_bytes"`
	SendsP99Us    float64 `json:"sends_p99_us"`
	SendsMaxUs    float64 `json:"sends_max_us"`
}

// ParseWindow turns "10s", "1m", "10m", any Go duration, or "all" into a number of intervals
// (-1 for all time). "" means "1m".
func (r *Recorder) ParseWindow(s string) (int, error) {
	switch s {
	case "all":
		return -1, nil
	case "":
		s = "1m"
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("parse window %q: want a duration like 10s, 1m, 10m or \"all\"", s)
	}
	k := int((int64(d) + r.intervalNs - 1) / r.intervalNs)
	if k > r.cfg.WindowIntervals {
		return 0, fmt.Errorf("parse window %q: longer than the %v kept", s, time.Duration(r.intervalNs*int64(r.cfg.WindowIntervals)))
	}
	return k, nil
}

// Report builds the latency report for window (see ParseWindow).
func (r *Recorder) Report(window string) (*LatencyReport, error) {
	k, err := r.ParseWindow(window)
	if err != nil {
		return nil, err
	}
	if window == "" {
		window = "1m"
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	all := k < 0
	n, startNs := r.windowSpanLocked(k)
	now := Now()
	if all {
		startNs = 0
	}
	rep := &LatencyReport{
		Window: window, WindowSeconds: float64(now-startNs) / 1e9,
		IntervalSeconds: float64(r.intervalNs) / 1e9, GeneratedAt: time.Now(),
		Percentiles: ReportPercentiles, SlowTotal: r.SlowTotal(), SlowDropped: r.SlowDropped(),
		StampOrderErrors: r.StampOrderErrors(),
	}
	for st := StageDecoded; st < NumStages; st++ {
		if n := r.StampOrderErrorsInto(st); n != 0 {
			if rep.StampOrderErrorsByStage == nil {
				rep.StampOrderErrorsByStage = map[string]int64{}
			}
			rep.StampOrderErrorsByStage[st.String()] = n
		}
	}
	b := reportBuilder{overall: make([]int64, histCountsLen), sends: make([]int64, histCountsLen), dense: make([]int64, histCountsLen)}
	var sendSLO sloCounts
	for ci := range codeTable {
		cr, ok := r.codeReportLocked(&b, ci, n, all, rep.WindowSeconds)
		if !ok {
			continue
		}
		rep.Codes = append(rep.Codes, cr)
		if codeTable[ci].send {
			sendSLO = sendSLO.plus(r.sloLocked(ci, n, all))
		}
	}
	rep.Overall = distOf(toHdr(b.overall))
	sendsHdr := toHdr(b.sends)
	rep.Sends = distOf(sendsHdr)
	rep.Spectrum = spectrum(sendsHdr)
	rep.SendsSLO = sloOf(sendSLO)
	for st := StageDecoded; st < NumStages; st++ {
		if c := b.sendStages[st]; c != nil {
			rep.Stages = append(rep.Stages, StageDist{Stage: st.String(), Dist: distOf(toHdr(c))})
		}
	}
	rep.Series = r.seriesLocked()
	return rep, nil
}

// reportBuilder holds the dense arrays one report merges into.
type reportBuilder struct {
	overall, sends, dense []int64
	sendStages            [NumStages][]int64
}

func addInto(dst, src []int64) {
	for i, v := range src {
		dst[i] += v
	}
}

// codeReportLocked builds code ci's report and merges its counts into b. ok is false when the
// code saw no request in the window.
func (r *Recorder) codeReportLocked(b *reportBuilder, ci, n int, all bool, seconds float64) (cr CodeReport, ok bool) {
	if !r.denseLocked(b.dense, ci, 0, n, all) {
		return cr, false
	}
	e2e := toHdr(b.dense)
	if e2e.TotalCount() == 0 {
		return cr, false
	}
	addInto(b.overall, b.dense)
	send := codeTable[ci].send
	if send {
		addInto(b.sends, b.dense)
	}
	slo := r.sloLocked(ci, n, all)
	cr = CodeReport{Code: codeTable[ci].code, Name: codeTable[ci].name, E2E: distOf(e2e), SLO: sloOf(slo), Bytes: slo.Bytes}
	if seconds > 0 {
		cr.RequestsPerSec, cr.BytesPerSec = float64(slo.Total)/seconds, float64(slo.Bytes)/seconds
	}
	for st := StageDecoded; st < NumStages; st++ {
		if !r.denseLocked(b.dense, ci, st, n, all) {
			continue
		}
		h := toHdr(b.dense)
		if h.TotalCount() == 0 {
			continue
		}
		cr.Stages = append(cr.Stages, StageDist{Stage: st.String(), Dist: distOf(h)})
		if send {
			if b.sendStages[st] == nil {
				b.sendStages[st] = make([]int64, histCountsLen)
			}
			addInto(b.sendStages[st], b.dense)
		}
	}
	return cr, true
}

func distOf(h *hdrhistogram.Histogram) Dist {
	d := Dist{Count: h.TotalCount(), Us: make([]float64, len(ReportPercentiles))}
	if d.Count == 0 {
		return d
	}
	for i, p := range ReportPercentiles {
		d.Us[i] = float64(h.ValueAtQuantile(p)) / 1e3
	}
	d.MeanUs = h.Mean() / 1e3
	return d
}

func sloOf(s sloCounts) SLO {
	o := SLO{Total: s.Total, Within1ms: s.Le1ms, Within10ms: s.Le10ms}
	if s.Total > 0 {
		o.FracWithin1ms = float64(s.Le1ms) / float64(s.Total)
		o.FracWithin10 = float64(s.Le10ms) / float64(s.Total)
		o.Burn1ms = (1 - o.FracWithin1ms) / (1 - SLOTargetWithin1ms)
		o.Burn10ms = (1 - o.FracWithin10) / (1 - SLOTargetWithin10ms)
	}
	return o
}

// spectrum samples h at ten points per decade of 1/(1-p), up to where the tail holds a single
// value, then the maximum.
func spectrum(h *hdrhistogram.Histogram) []SpectrumPoint {
	total := h.TotalCount()
	if total == 0 {
		return []SpectrumPoint{}
	}
	var out []SpectrumPoint
	for k := 0; k <= 70; k++ {
		inv := math.Pow(10, float64(k)/10)
		if inv > float64(total) {
			break
		}
		p := 100 * (1 - 1/inv)
		v := h.ValueAtQuantile(p)
		if k == 0 {
			v = h.Min() // ValueAtQuantile(0) is the histogram's floor, not the smallest value
		}
		out = append(out, SpectrumPoint{Percentile: p, InvTail: inv, Us: float64(v) / 1e3})
	}
	out = append(out, SpectrumPoint{Percentile: 100, InvTail: math.Max(float64(total), 1), Us: float64(h.Max()) / 1e3})
	return out
}

// seriesLocked summarises every closed interval in the ring, oldest first.
func (r *Recorder) seriesLocked() []SeriesPoint {
	w := &r.mu.win
	n := int(min(w.closed, uint64(len(w.ring))))
	out := make([]SeriesPoint, 0, n)
	var pairs []sparsePair
	for j := n; j >= 1; j-- {
		iv := &w.ring[(w.closed-uint64(j))%uint64(len(w.ring))]
		pt := SeriesPoint{EndUnixMs: WallTime(iv.endNs).UnixMilli(), Seconds: float64(iv.endNs-iv.startNs) / 1e9}
		pairs = pairs[:0]
		for ci := range codeTable {
			pt.Requests += iv.slo[ci].Total
			if !codeTable[ci].send {
				continue
			}
			pt.Sends += iv.slo[ci].Total
			pt.SendsWithin1 += iv.slo[ci].Le1ms
			pt.SendsWithin10 += iv.slo[ci].Le10ms
			pt.SendBytes += iv.slo[ci].Bytes
			sp := &iv.hists[ci][0]
			for k, idx := range sp.idx {
				pairs = append(pairs, sparsePair{idx, sp.n[k]})
			}
		}
		pt.SendsP99Us, pt.SendsMaxUs = sparseP99Max(pairs)
		out = append(out, pt)
	}
	return out
}

type sparsePair struct {
	idx int32
	n   int64
}

// sparseP99Max returns the 99th percentile and the maximum (microseconds, highest equivalent
// values as hdrhistogram reports them) of a bag of (index, count) pairs.
func sparseP99Max(pairs []sparsePair) (p99Us, maxUs float64) {
	if len(pairs) == 0 {
		return 0, 0
	}
	slices.SortFunc(pairs, func(a, b sparsePair) int { return int(a.idx) - int(b.idx) })
	var total int64
	for _, p := range pairs {
		total += p.n
	}
	want := int64(0.99*float64(total) + 0.5)
	var run int64
	p99 := -1
	for _, p := range pairs {
		run += p.n
		if run >= want && p99 < 0 {
			p99 = int(p.idx)
		}
	}
	return float64(histHighestValue(p99)) / 1e3, float64(histHighestValue(int(pairs[len(pairs)-1].idx))) / 1e3
}
