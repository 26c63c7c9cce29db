package perf

import (
	"fmt"
	"math"
	"regexp"
	"runtime/metrics"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// Registry holds the metrics other packages export besides the request histograms: gauges and
// counters read through functions at scrape time (store stats, queue depths), counters and
// histograms owned here (rejections by reason, fdatasync latency, flush batch sizes) and the Go
// runtime's GC pause and scheduling latency histograms.
//
// Registration happens at start-up and panics with "BUG:" on a bad or duplicate name. Reading
// (WritePrometheus) is safe concurrently with everything; Counter and Histogram are lock-free and
// allocation-free to update. Functions given to RegisterGauge and RegisterCounter are called at
// every scrape, from the scraping goroutine: they must be cheap and must not block.
type Registry struct {
	mu struct {
		sync.Mutex
		families map[string]*family
		onScrape []func()
		rt       []metrics.Sample // runtime metrics, reused between scrapes
	}
}

// Label is one Prometheus label of a registered series.
type Label struct{ Name, Value string }

// family is one metric name with its HELP, TYPE and series.
type family struct {
	name, help, typ string
	series          []*series
}

type series struct {
	labels string // rendered `a="b",c="d"`, "" for none
	fn     func() float64
	hist   *Histogram
	histFn func() HistogramSnapshot
}

// HistogramSnapshot is a histogram kept elsewhere, handed over at scrape time:
// Cumulative[i] values were <= Bounds[i] (ascending upper bounds in the exported unit, +Inf
// implied), Count values in all, summing to Sum.
type HistogramSnapshot struct {
	Bounds     []float64
	Cumulative []uint64
	Count      uint64
	Sum        float64
}

// HistUnit says what a registered Histogram records and how it is exported.
type HistUnit uint8

const (
	// UnitSeconds: Record takes nanoseconds; exported in seconds with the latency buckets
	// (which include 0.001 and 0.01). Range 1 us .. 60 s.
	UnitSeconds HistUnit = iota
	// UnitBytes: Record takes bytes; exported in bytes, buckets 512 B .. 64 MiB. Range 1 B .. 60 MB,
	// 3 significant digits.
	UnitBytes
	// UnitCount: Record takes a count (e.g. requests per group commit); buckets 1 .. 4096.
	UnitCount
)

// Histogram is a registered histogram: lock-free, allocation-free Record.
type Histogram struct {
	unit HistUnit
	h    atomicHist
}

// Record counts one value: nanoseconds for UnitSeconds, bytes or a count otherwise.
func (h *Histogram) Record(v int64) {
	if h.unit != UnitSeconds {
		v *= 1000 // counted in thousandths so small sizes keep 3 digits
	}
	h.h.record(v)
}

// Snapshot returns the counts so far as an hdrhistogram (values in the recording unit x1000 for
// UnitBytes and UnitCount, nanoseconds for UnitSeconds).
func (h *Histogram) Snapshot() *hdrhistogram.Histogram {
	counts := make([]int64, histCountsLen)
	h.h.loadInto(counts)
	return toHdr(counts)
}

// Counter is a registered monotonic counter owned by the caller: lock-free, allocation-free.
type Counter struct{ v atomic.Int64 }

// Inc adds one.
func (c *Counter) Inc() { c.v.Add(1) }

// Add adds n, which must not be negative.
func (c *Counter) Add(n int64) {
	if n < 0 {
		panic("BUG: perf: Counter.Add of a negative value")
	}
	c.v.Add(n)
}

// Load returns the current value.
func (c *Counter) Load() int64 { return c.v.Load() }

// NewRegistry returns a registry holding the Go runtime metrics.
func NewRegistry() *Registry {
	g := &Registry{}
	g.mu.families = make(map[string]*family)
	g.mu.rt = []metrics.Sample{
		{Name: rtGCPauses}, {Name: rtSchedLatencies}, {Name: rtGoroutines}, {Name: rtHeapBytes},
	}
	return g
}

var (
	metricNameRE = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*$`)
	labelNameRE  = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)
)

// RegisterGauge registers a gauge read through fn at every scrape.
func (g *Registry) RegisterGauge(name, help string, fn func() float64, labels ...Label) {
	if fn == nil {
		panic("BUG: perf: RegisterGauge " + name + " with nil fn")
	}
	g.add(name, help, "gauge", &series{fn: fn}, labels)
}

// RegisterCounter registers a counter read through fn at every scrape; fn must never decrease.
// The name must end in _total.
func (g *Registry) RegisterCounter(name, help string, fn func() float64, labels ...Label) {
	if fn == nil {
		panic("BUG: perf: RegisterCounter " + name + " with nil fn")
	}
	g.add(name, help, "counter", &series{fn: fn}, labels)
}

// Counter registers and returns a counter the caller increments, e.g.
// Counter("ringmq_rejected_requests_total", "...", Label{"reason", "SYSTEM_BUSY"}).
func (g *Registry) Counter(name, help string, labels ...Label) *Counter {
	c := &Counter{}
	g.add(name, help, "counter", &series{fn: func() float64 { return float64(c.Load()) }}, labels)
	return c
}

// Histogram registers and returns a histogram the caller records into, e.g.
// Histogram("ringmq_fdatasync_duration_seconds", "...", UnitSeconds).
func (g *Registry) Histogram(name, help string, unit HistUnit, labels ...Label) *Histogram {
	if unit > UnitCount {
		panic("BUG: perf: Histogram " + name + " with invalid unit")
	}
	h := &Histogram{unit: unit}
	g.add(name, help, "histogram", &series{hist: h}, labels)
	return h
}

// RegisterHistogramFunc registers a histogram kept by someone else (e.g. the flusher's log2
// fdatasync buckets, see Log2MicrosHistogram), read through fn at every scrape.
func (g *Registry) RegisterHistogramFunc(name, help string, fn func() HistogramSnapshot, labels ...Label) {
	if fn == nil {
		panic("BUG: perf: RegisterHistogramFunc " + name + " with nil fn")
	}
	g.add(name, help, "histogram", &series{histFn: fn}, labels)
}

// OnScrape registers fn to run at the start of every scrape, before any gauge, counter or
// histogram function: the place to take one snapshot (say engine.Store.Stats) that many
// registered functions then read. fn and those functions all run under the registry's lock, one
// scrape at a time, so they may share the snapshot without further synchronisation.
func (g *Registry) OnScrape(fn func()) {
	if fn == nil {
		panic("BUG: perf: OnScrape with nil fn")
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.mu.onScrape = append(g.mu.onScrape, fn)
}

// Log2MicrosHistogram converts a histogram of log2 microsecond buckets (bucket i counts values
// in [2^i, 2^(i+1)) us, bucket 0 also those under 1 us) and the values' sum in nanoseconds into
// a HistogramSnapshot in seconds, with upper bounds 2^(i+1) us.
func Log2MicrosHistogram(counts []uint64, sumNs int64) HistogramSnapshot {
	h := HistogramSnapshot{Bounds: make([]float64, len(counts)), Cumulative: make([]uint64, len(counts))}
	for i, c := range counts {
		h.Count += c
		h.Bounds[i] = float64(uint64(1)<<(i+1)) / 1e6
		h.Cumulative[i] = h.Count
	}
	h.Sum = float64(sumNs) / 1e9
	return h
}

func (g *Registry) add(name, help, typ string, s *series, labels []Label) {
	checkName(name, typ)
	s.labels = renderLabels(labels)
	g.mu.Lock()
	defer g.mu.Unlock()
	f := g.mu.families[name]
	if f == nil {
		f = &family{name: name, help: help, typ: typ}
		g.mu.families[name] = f
	}
	if f.typ != typ || f.help != help {
		panic(fmt.Sprintf("BUG: perf: metric %s registered as %s %q and as %s %q", name, f.typ, f.help, typ, help))
	}
	for _, old := range f.series {
		if old.labels == s.labels {
			panic(fmt.Sprintf("BUG: perf: metric %s{%s} registered twice", name, s.labels))
		}
	}
	f.series = append(f.series, s)
}

func checkName(name, typ string) {
	switch {
	case !metricNameRE.MatchString(name):
		panic("BUG: perf: invalid metric name " + name)
	case recorderMetricNames[name]:
		panic("BUG: perf: metric name " + name + " is the recorder's")
	case !strings.HasPrefix(name, "ringmq_"):
		panic("BUG: perf: metric " + name + " lacks the ringmq_ prefix")
	case typ == "counter" && !strings.HasSuffix(name, "_total"):
		panic("BUG: perf: counter " + name + " must end in _total")
	case typ != "counter" && strings.HasSuffix(name, "_total"):
		panic("BUG: perf: " + typ + " " + name + " must not end in _total")
	}
}

// renderLabels renders labels as `a="b",c="d"` in the given order.
func renderLabels(labels []Label) string {
	var b strings.Builder
	for i, l := range labels {
		if !labelNameRE.MatchString(l.Name) || strings.HasPrefix(l.Name, "__") || l.Name == "le" {
			panic("BUG: perf: invalid label name " + l.Name)
		}
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(l.Name)
		b.WriteString(`="`)
		b.WriteString(escapeLabelValue(l.Value))
		b.WriteByte('"')
	}
	return b.String()
}

var labelValueEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)

func escapeLabelValue(v string) string { return labelValueEscaper.Replace(v) }

// sortedFamilies returns the families by name. g.mu must be held.
func (g *Registry) sortedFamiliesLocked() []*family {
	out := make([]*family, 0, len(g.mu.families))
	for _, f := range g.mu.families {
		out = append(out, f)
	}
	slices.SortFunc(out, func(a, b *family) int { return strings.Compare(a.name, b.name) })
	return out
}

// Runtime metrics exported by every registry.
const (
	rtGCPauses       = "/sched/pauses/total/gc:seconds"
	rtSchedLatencies = "/sched/latencies:seconds"
	rtGoroutines     = "/sched/goroutines:goroutines"
	rtHeapBytes      = "/memory/classes/heap/objects:bytes"
)

// rebucket folds a runtime Float64Histogram into cumulative counts at bounds (upper bounds in
// seconds). A runtime bucket is counted under the first bound its upper edge does not exceed,
// so the result can only overstate latency. It also returns the total count and a sum estimated
// from bucket midpoints (the runtime does not keep a sum).
func rebucket(h *metrics.Float64Histogram, bounds []float64) (cum []uint64, count uint64, sum float64) {
	cum = make([]uint64, len(bounds))
	for i, c := range h.Counts {
		if c == 0 {
			continue
		}
		lo, hi := h.Buckets[i], h.Buckets[i+1]
		count += c
		mid := lo
		if !math.IsInf(hi, 1) && !math.IsInf(lo, -1) {
			mid = (lo + hi) / 2
		} else if math.IsInf(lo, -1) {
			mid = hi
		}
		sum += float64(c) * mid
		for j, b := range bounds {
			if hi <= b {
				cum[j] += c
			}
		}
	}
	return cum, count, sum
}
