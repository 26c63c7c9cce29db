package perf

import (
	"bytes"
	"fmt"
	"math"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// parseExposition parses text with Prometheus' own parser, failing the test on any error.
func parseExposition(t *testing.T, text []byte) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(text))
	if err != nil {
		t.Fatalf("exposition does not parse: %v\n%s", err, text)
	}
	for name, f := range fams {
		if f.GetHelp() == "" {
			t.Errorf("%s: no HELP", name)
		}
		if !strings.HasPrefix(name, "ringmq_") {
			t.Errorf("%s: no ringmq_ prefix", name)
		}
	}
	return fams
}

func labelValue(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// bucketAt returns the cumulative count of h at upper bound le.
func bucketAt(t *testing.T, h *dto.Histogram, le float64) uint64 {
	t.Helper()
	for _, b := range h.GetBucket() {
		if b.GetUpperBound() == le {
			return b.GetCumulativeCount()
		}
	}
	t.Fatalf("no bucket le=%v", le)
	return 0
}

func TestPrometheusExposition(t *testing.T) {
	rec := NewRecorder(RecorderConfig{})
	// 90 sends at 600 us, 9 at 5 ms, 1 at 20 ms; exactly-1ms boundary cases.
	for i := range 100 {
		lat := int64(600_000)
		switch {
		case i == 99:
			lat = 20_000_000
		case i >= 90:
			lat = 5_000_000
		}
		var s Stamps
		s.At[StageRead], s.At[StageDurable], s.At[StageWritten] = 1_000, 1_000+lat/2, 1_000+lat
		rec.Record(CodeSendMessageV2, &s, 1000, "t", 0)
	}
	var edge Stamps
	edge.At[StageRead], edge.At[StageWritten] = 1, 1+SLOFastNs
	rec.Record(CodeSendMessage, &edge, 1, "t", 0)
	edge.At[StageWritten]++
	rec.Record(CodeSendMessage, &edge, 1, "t", 0)

	reg := NewRegistry()
	reg.RegisterGauge("ringmq_store_unflushed_bytes", "Bytes appended but not yet durable.", func() float64 { return 4096 })
	busy := reg.Counter("ringmq_rejected_requests_total", "Requests rejected, by reason.", Label{"reason", "SYSTEM_BUSY"})
	reg.Counter("ringmq_rejected_requests_total", "Requests rejected, by reason.", Label{"reason", "FLUSH_DISK_TIMEOUT"})
	busy.Add(3)
	fsync := reg.Histogram("ringmq_fdatasync_duration_seconds", "fdatasync latency.", UnitSeconds, Label{"backend", "pwrite"})
	fsync.Record(100_000)
	fsync.Record(2_000_000)
	batch := reg.Histogram("ringmq_flush_batch_bytes", "Bytes per group commit.", UnitBytes)
	batch.Record(300)
	batch.Record(70_000)

	var snap struct{ unflushedAgeNs int64 }
	scrapes := 0
	reg.OnScrape(func() { scrapes++; snap.unflushedAgeNs = 1_500_000_000 })
	reg.RegisterGauge("ringmq_store_unflushed_age_seconds", "Age of the oldest unflushed byte.", func() float64 { return float64(snap.unflushedAgeNs) / 1e9 })
	var log2 [24]uint64
	log2[6], log2[7], log2[13] = 5, 3, 1 // 64-128 us, 128-256 us, 8.2-16.4 ms
	reg.RegisterHistogramFunc("ringmq_flush_sync_duration_seconds", "Flusher's write+fdatasync latency.", func() HistogramSnapshot {
		return Log2MicrosHistogram(log2[:], 2_000_000)
	})

	var buf bytes.Buffer
	if err := WritePrometheus(&buf, rec, reg); err != nil {
		t.Fatal(err)
	}
	fams := parseExposition(t, buf.Bytes())

	var e2e *dto.Histogram
	for _, m := range fams["ringmq_request_duration_seconds"].GetMetric() {
		if labelValue(m, "code") == "SEND_MESSAGE_V2" {
			e2e = m.GetHistogram()
		}
	}
	if e2e == nil {
		t.Fatalf("no SEND_MESSAGE_V2 e2e histogram")
	}
	for _, c := range []struct {
		le   float64
		want uint64
	}{{0.0005, 0}, {0.001, 90}, {0.005, 90}, {0.01, 99}, {0.025, 100}} {
		if got := bucketAt(t, e2e, c.le); got != c.want {
			t.Errorf("e2e bucket le=%v: got %d, want %d", c.le, got, c.want)
		}
	}
	wantSum := (90*600e-6 + 9*5e-3 + 20e-3)
	if e2e.GetSampleCount() != 100 || math.Abs(e2e.GetSampleSum()-wantSum)/wantSum > 0.002 {
		t.Errorf("e2e count/sum: got %d/%v, want 100/%v", e2e.GetSampleCount(), e2e.GetSampleSum(), wantSum)
	}
	for _, m := range fams["ringmq_request_duration_seconds"].GetMetric() {
		if labelValue(m, "code") == "SEND_MESSAGE" {
			if got := bucketAt(t, m.GetHistogram(), 0.001); got != 1 {
				t.Errorf("SEND_MESSAGE le=0.001 (exactly 1 ms and 1 ms + 1 ns): got %d, want 1", got)
			}
		}
	}
	want := map[string]float64{
		`ringmq_requests_total{code="SEND_MESSAGE_V2"}`:             100,
		`ringmq_requests_within_1ms_total{code="SEND_MESSAGE_V2"}`:  90,
		`ringmq_requests_within_10ms_total{code="SEND_MESSAGE_V2"}`: 99,
		`ringmq_rejected_requests_total{reason="SYSTEM_BUSY"}`:      3,
		`ringmq_store_unflushed_bytes`:                              4096,
	}
	for series, v := range want {
		if !strings.Contains(buf.String(), fmt.Sprintf("%s %v\n", series, v)) {
			t.Errorf("missing %s %v", series, v)
		}
	}
	fs := fams["ringmq_fdatasync_duration_seconds"].GetMetric()[0].GetHistogram()
	if bucketAt(t, fs, 0.001) != 1 || fs.GetSampleCount() != 2 {
		t.Errorf("fdatasync histogram: got %v", fs)
	}
	bb := fams["ringmq_flush_batch_bytes"].GetMetric()[0].GetHistogram()
	if bucketAt(t, bb, 512) != 1 || bucketAt(t, bb, 65536) != 1 || bucketAt(t, bb, 262144) != 2 {
		t.Errorf("batch bytes histogram: got %v", bb)
	}
	if scrapes != 1 || !strings.Contains(buf.String(), "ringmq_store_unflushed_age_seconds 1.5\n") {
		t.Errorf("OnScrape: got %d calls; want 1 and the gauge reading its snapshot", scrapes)
	}
	l2 := fams["ringmq_flush_sync_duration_seconds"].GetMetric()[0].GetHistogram()
	if bucketAt(t, l2, 128e-6) != 5 || bucketAt(t, l2, 256e-6) != 8 || l2.GetSampleCount() != 9 || l2.GetSampleSum() != 0.002 {
		t.Errorf("log2 histogram: got %v", l2)
	}
	for _, name := range []string{"ringmq_request_stage_duration_seconds", "ringmq_go_gc_pause_seconds",
		"ringmq_go_sched_latency_seconds", "ringmq_go_goroutines"} {
		if fams[name] == nil {
			t.Errorf("missing family %s", name)
		}
	}
}

func TestRegistryRejectsMisuse(t *testing.T) {
	for name, f := range map[string]func(g *Registry){
		"no prefix":      func(g *Registry) { g.RegisterGauge("store_bytes", "h", func() float64 { return 0 }) },
		"counter suffix": func(g *Registry) { g.Counter("ringmq_rejected", "h") },
		"gauge _total":   func(g *Registry) { g.RegisterGauge("ringmq_x_total", "h", func() float64 { return 0 }) },
		"recorder name":  func(g *Registry) { g.Counter("ringmq_requests_total", "h") },
		"le label":       func(g *Registry) { g.Counter("ringmq_x_total", "h", Label{"le", "1"}) },
		"duplicate": func(g *Registry) {
			g.Counter("ringmq_x_total", "h")
			g.Counter("ringmq_x_total", "h")
		},
		"help differs": func(g *Registry) {
			g.Counter("ringmq_x_total", "h", Label{"a", "1"})
			g.Counter("ringmq_x_total", "other", Label{"a", "2"})
		},
	} {
		func() {
			defer func() {
				if r := recover(); r == nil || !strings.HasPrefix(fmt.Sprint(r), "BUG:") {
					t.Errorf("%s: got panic %v, want a BUG: panic", name, r)
				}
			}()
			f(NewRegistry())
		}()
	}
}

func TestRegistryUpdatesAllocateNothing(t *testing.T) {
	g := NewRegistry()
	c := g.Counter("ringmq_x_total", "h")
	h := g.Histogram("ringmq_y_seconds", "h", UnitSeconds)
	if a := testing.AllocsPerRun(1000, func() { c.Inc(); h.Record(12345) }); a != 0 {
		t.Fatalf("Counter.Inc + Histogram.Record: got %v allocs, want 0", a)
	}
}
