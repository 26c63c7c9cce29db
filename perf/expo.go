package perf

import (
	"bytes"
	"io"
	"math"
	"runtime/metrics"
	"strconv"
)

// Prometheus text exposition (format 0.0.4) of a Recorder and a Registry. Histogram buckets:
//
//	latency (seconds): 50us 100us 250us 500us 1ms 2.5ms 5ms 10ms 25ms 50ms 100ms 250ms 500ms
//	                   1s 2.5s 5s 10s 60s +Inf
//	bytes:             512 1Ki 4Ki 16Ki 64Ki 256Ki 1Mi 4Mi 16Mi 64Mi +Inf
//	count:             1 2 4 ... 4096 +Inf
//
// Request end-to-end histograms take their le="0.001" and le="0.01" buckets from the exact SLO
// counters; every other bucket is read off the HdrHistogram counts, exact to the histogram's
// resolution (0.1% of the value, 512 ns below 1 ms) and conservative: a value is counted under a
// bound only when every value of its HDR bucket is within the bound, so a bucket never makes
// latency look better than it was.

var (
	latencyBoundsSec = []float64{0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
		0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 60}
	bytesBounds = []float64{512, 1 << 10, 4 << 10, 16 << 10, 64 << 10, 256 << 10, 1 << 20, 4 << 20,
		16 << 20, 64 << 20}
	countBounds = []float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096}
)

// Indexes of the SLO bounds in latencyBoundsSec.
const (
	bound1msIdx  = 4
	bound10msIdx = 7
)

// recorderMetricNames are the names WritePrometheus emits for a Recorder; a Registry refuses
// them.
var recorderMetricNames = map[string]bool{
	"ringmq_requests_total": true, "ringmq_requests_within_1ms_total": true,
	"ringmq_requests_within_10ms_total": true, "ringmq_request_bytes_total": true,
	"ringmq_request_duration_seconds": true, "ringmq_request_stage_duration_seconds": true,
	"ringmq_slow_requests_total": true, "ringmq_slow_requests_dropped_total": true,
	"ringmq_stamp_order_errors_total": true, "ringmq_go_gc_pause_seconds": true,
	"ringmq_go_sched_latency_seconds": true, "ringmq_go_goroutines": true,
	"ringmq_go_heap_objects_bytes": true,
}

// promWriter accumulates exposition text.
type promWriter struct {
	buf bytes.Buffer
	num []byte
}

func (p *promWriter) header(name, help, typ string) {
	p.buf.WriteString("# HELP ")
	p.buf.WriteString(name)
	p.buf.WriteByte(' ')
	p.buf.WriteString(help)
	p.buf.WriteString("\n# TYPE ")
	p.buf.WriteString(name)
	p.buf.WriteByte(' ')
	p.buf.WriteString(typ)
	p.buf.WriteByte('\n')
}

func (p *promWriter) sample(name, labels string, v float64) {
	p.buf.WriteString(name)
	if labels != "" {
		p.buf.WriteByte('{')
		p.buf.WriteString(labels)
		p.buf.WriteByte('}')
	}
	p.buf.WriteByte(' ')
	p.num = formatFloat(p.num[:0], v)
	p.buf.Write(p.num)
	p.buf.WriteByte('\n')
}

func formatFloat(dst []byte, v float64) []byte {
	switch {
	case math.IsInf(v, 1):
		return append(dst, "+Inf"...)
	case math.IsInf(v, -1):
		return append(dst, "-Inf"...)
	case math.IsNaN(v):
		return append(dst, "NaN"...)
	}
	return strconv.AppendFloat(dst, v, 'g', -1, 64)
}

// histogram writes the _bucket, _sum and _count lines of one histogram series; cum[i] is the
// count <= bounds[i].
func (p *promWriter) histogram(name, labels string, bounds []float64, cum []uint64, count uint64, sum float64) {
	sep := ""
	if labels != "" {
		sep = ","
	}
	for i, b := range bounds {
		p.sample(name+"_bucket", labels+sep+`le="`+string(formatFloat(nil, b))+`"`, float64(cum[i]))
	}
	p.sample(name+"_bucket", labels+sep+`le="+Inf"`, float64(count))
	p.sample(name+"_sum", labels, sum)
	p.sample(name+"_count", labels, float64(count))
}

// cumulative folds HDR counts (internal units) into cumulative counts at bounds (exported units,
// internal = exported * scale). It returns the count and the sum (exported units) from bucket
// midpoints.
func cumulative(counts []int64, bounds []float64, scale float64) (cum []uint64, count uint64, sum float64) {
	cum = make([]uint64, len(bounds))
	j := 0
	var run uint64
	for i, c := range counts {
		if c == 0 {
			continue
		}
		lo, hi := float64(histLowestValue(i)), float64(histHighestValue(i))
		for j < len(bounds) && hi > bounds[j]*scale {
			cum[j] = run
			j++
		}
		run += uint64(c)
		sum += float64(c) * (lo + hi) / 2 / scale
	}
	for ; j < len(bounds); j++ {
		cum[j] = run
	}
	return cum, run, sum
}

// monotone makes cum non-decreasing and count at least its last bucket, after exact counters
// read at a slightly different moment were patched in.
func monotone(cum []uint64, count uint64) uint64 {
	for i := 1; i < len(cum); i++ {
		cum[i] = max(cum[i], cum[i-1])
	}
	return max(count, cum[len(cum)-1])
}

// WritePrometheus writes the recorder's and the registry's metrics in Prometheus text format.
// Either may be nil.
func WritePrometheus(w io.Writer, rec *Recorder, reg *Registry) error {
	var p promWriter
	if rec != nil {
		rec.writePrometheus(&p)
	}
	if reg != nil {
		reg.writePrometheus(&p)
	}
	_, err := w.Write(p.buf.Bytes())
	return err
}

func (r *Recorder) writePrometheus(p *promWriter) {
	type codeSnap struct {
		ci  int
		slo sloCounts
	}
	var codes []codeSnap
	for ci := range r.codes {
		if r.codes[ci].hists[0].Load() != nil {
			codes = append(codes, codeSnap{ci, r.codes[ci].loadSLO()})
		}
	}
	counters := []struct {
		name, help string
		get        func(sloCounts) int64
	}{
		{"ringmq_requests_total", "Requests recorded, by request code.", func(s sloCounts) int64 { return s.Total }},
		{"ringmq_requests_within_1ms_total", "Requests whose end-to-end latency was at most 1 ms (exact).", func(s sloCounts) int64 { return s.Le1ms }},
		{"ringmq_requests_within_10ms_total", "Requests whose end-to-end latency was at most 10 ms (exact).", func(s sloCounts) int64 { return s.Le10ms }},
		{"ringmq_request_bytes_total", "Message body bytes of recorded requests.", func(s sloCounts) int64 { return s.Bytes }},
	}
	for _, c := range counters {
		p.header(c.name, c.help, "counter")
		for _, cs := range codes {
			p.sample(c.name, codeLabel(cs.ci), float64(c.get(cs.slo)))
		}
	}
	dense := make([]int64, histCountsLen)
	p.header("ringmq_request_duration_seconds", "End-to-end request latency (first stamp to response written), by request code.", "histogram")
	for _, cs := range codes {
		r.codes[cs.ci].hists[0].Load().loadInto(dense)
		cum, count, sum := cumulative(dense, latencyBoundsSec, 1e9)
		cum[bound1msIdx], cum[bound10msIdx] = uint64(cs.slo.Le1ms), uint64(cs.slo.Le10ms)
		count = monotone(cum, count)
		p.histogram("ringmq_request_duration_seconds", codeLabel(cs.ci), latencyBoundsSec, cum, count, sum)
	}
	p.header("ringmq_request_stage_duration_seconds", "Time from the previous stage passed to this stage, by request code and stage.", "histogram")
	for _, cs := range codes {
		for st := StageDecoded; st < NumStages; st++ {
			h := r.codes[cs.ci].hists[st].Load()
			if h == nil {
				continue
			}
			h.loadInto(dense)
			cum, count, sum := cumulative(dense, latencyBoundsSec, 1e9)
			p.histogram("ringmq_request_stage_duration_seconds", codeLabel(cs.ci)+`,stage="`+st.String()+`"`, latencyBoundsSec, cum, count, sum)
		}
	}
	p.header("ringmq_slow_requests_total", "Requests slower than the slow-request threshold.", "counter")
	p.sample("ringmq_slow_requests_total", "", float64(r.SlowTotal()))
	p.header("ringmq_slow_requests_dropped_total", "Slow requests not kept in the slow-request log because their slot was busy.", "counter")
	p.sample("ringmq_slow_requests_dropped_total", "", float64(r.SlowDropped()))
	p.header("ringmq_stamp_order_errors_total", "Stage durations that came out negative (stamps out of order), recorded as 0, by the stage stamped too early.", "counter")
	for st := StageDecoded; st < NumStages; st++ {
		p.sample("ringmq_stamp_order_errors_total", `stage="`+st.String()+`"`, float64(r.StampOrderErrorsInto(st)))
	}
}

func codeLabel(ci int) string { return `code="` + codeTable[ci].name + `"` }

func (g *Registry) writePrometheus(p *promWriter) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, fn := range g.mu.onScrape {
		fn()
	}
	dense := make([]int64, histCountsLen)
	for _, f := range g.sortedFamiliesLocked() {
		p.header(f.name, f.help, f.typ)
		for _, s := range f.series {
			if s.histFn != nil {
				h := s.histFn()
				if len(h.Bounds) != len(h.Cumulative) {
					panic("BUG: perf: histogram " + f.name + ": Bounds and Cumulative differ in length")
				}
				p.histogram(f.name, s.labels, h.Bounds, h.Cumulative, h.Count, h.Sum)
				continue
			}
			if s.hist == nil {
				p.sample(f.name, s.labels, s.fn())
				continue
			}
			bounds, scale := latencyBoundsSec, 1e9
			switch s.hist.unit {
			case UnitBytes:
				bounds, scale = bytesBounds, 1000
			case UnitCount:
				bounds, scale = countBounds, 1000
			}
			s.hist.h.loadInto(dense)
			cum, count, sum := cumulative(dense, bounds, scale)
			p.histogram(f.name, s.labels, bounds, cum, count, sum)
		}
	}
	g.writeRuntimeLocked(p)
}

// writeRuntimeLocked exports the Go runtime's GC pauses, scheduling latency, goroutines and heap.
func (g *Registry) writeRuntimeLocked(p *promWriter) {
	metrics.Read(g.mu.rt)
	for _, s := range g.mu.rt {
		switch s.Name {
		case rtGCPauses, rtSchedLatencies:
			if s.Value.Kind() != metrics.KindFloat64Histogram {
				continue
			}
			name, help := "ringmq_go_gc_pause_seconds", "Stop-the-world GC pauses (runtime/metrics "+rtGCPauses+"; _sum estimated from bucket midpoints)."
			if s.Name == rtSchedLatencies {
				name, help = "ringmq_go_sched_latency_seconds", "Time goroutines spent runnable before running (runtime/metrics "+rtSchedLatencies+"; _sum estimated from bucket midpoints)."
			}
			cum, count, sum := rebucket(s.Value.Float64Histogram(), latencyBoundsSec)
			p.header(name, help, "histogram")
			p.histogram(name, "", latencyBoundsSec, cum, count, sum)
		case rtGoroutines:
			if s.Value.Kind() == metrics.KindUint64 {
				p.header("ringmq_go_goroutines", "Live goroutines.", "gauge")
				p.sample("ringmq_go_goroutines", "", float64(s.Value.Uint64()))
			}
		case rtHeapBytes:
			if s.Value.Kind() == metrics.KindUint64 {
				p.header("ringmq_go_heap_objects_bytes", "Bytes of live and not-yet-swept heap objects.", "gauge")
				p.sample("ringmq_go_heap_objects_bytes", "", float64(s.Value.Uint64()))
			}
		}
	}
}
