package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/ringmq/ringmq/perf"
)

// externalRef matches anything in a page that would make the browser fetch from another host.
var externalRef = regexp.MustCompile(`(?i)((src|href|action)\s*=\s*["']?(https?:)?//|url\(\s*["']?(https?:)?//|@import|fetch\(\s*["'](https?:)?//|new\s+WebSocket)`)

// startServer starts an admin server on a free port for rec and reg and stops it with the test.
func startServer(t *testing.T, rec *perf.Recorder, reg *perf.Registry) string {
	t.Helper()
	s := New(Config{Listen: "127.0.0.1:0"}, rec, reg)
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return "http://" + s.Addr()
}

func get(t *testing.T, url string) (int, []byte, string) {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body, resp.Header.Get("Content-Type")
}

func TestEndpoints(t *testing.T) {
	rec := perf.NewRecorder(perf.RecorderConfig{})
	reg := perf.NewRegistry()
	reg.RegisterGauge("ringmq_store_unflushed_bytes", "Bytes appended, not yet durable.", func() float64 { return 123 })
	reg.Counter("ringmq_rejected_requests_total", "Rejected requests by reason.", perf.Label{Name: "reason", Value: "SYSTEM_BUSY"}).Add(2)
	synthLoad(t, rec, 1, 5000)
	rec.Rotate()
	synthLoad(t, rec, 2, 3000)
	base := startServer(t, rec, reg)

	code, body, ctype := get(t, base+"/metrics")
	if code != 200 || !strings.HasPrefix(ctype, "text/plain") {
		t.Fatalf("/metrics: got %d %s", code, ctype)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("/metrics does not parse: %v", err)
	}
	for _, name := range []string{"ringmq_requests_total", "ringmq_request_duration_seconds",
		"ringmq_request_stage_duration_seconds", "ringmq_store_unflushed_bytes", "ringmq_rejected_requests_total",
		"ringmq_go_gc_pause_seconds"} {
		if fams[name] == nil {
			t.Errorf("/metrics lacks %s", name)
		}
	}

	var rep perf.LatencyReport
	code, body, _ = get(t, base+"/api/latency?window=all")
	if code != 200 {
		t.Fatalf("/api/latency: got %d %s", code, body)
	}
	if err := json.Unmarshal(body, &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Overall.Count != 8000 || len(rep.Overall.Us) != len(perf.ReportPercentiles) {
		t.Fatalf("/api/latency all: got overall %+v, want 8000 requests", rep.Overall)
	}
	if p50 := rep.Sends.Us[0]; p50 < 100 || p50 > 400 {
		t.Fatalf("/api/latency: send p50 %v us, want the synthetic ~200 us", p50)
	}
	if code, body, _ = get(t, base+"/api/latency?window=10s"); code != 200 {
		t.Fatalf("/api/latency 10s: got %d %s", code, body)
	}
	json.Unmarshal(body, &rep)
	if rep.Overall.Count != 8000 { // one closed interval plus the open one
		t.Fatalf("/api/latency 10s: got %d requests, want 8000", rep.Overall.Count)
	}
	if code, body, _ = get(t, base+"/api/latency?window=forever"); code != 400 || !strings.Contains(string(body), "forever") {
		t.Fatalf("bad window: got %d %q, want 400 naming the value", code, body)
	}

	var slow SlowResponse
	code, body, _ = get(t, base+"/api/slow?limit=5")
	if code != 200 || json.Unmarshal(body, &slow) != nil {
		t.Fatalf("/api/slow: got %d %s", code, body)
	}
	if len(slow.Requests) != 5 || slow.Total < 5 || slow.Requests[0].TotalNs <= 1_000_000 || len(slow.Requests[0].Stages) == 0 {
		t.Fatalf("/api/slow: got %+v", slow)
	}
	if code, _, _ = get(t, base+"/api/slow?limit=0"); code != 400 {
		t.Fatalf("/api/slow?limit=0: got %d, want 400", code)
	}

	code, body, _ = get(t, base+"/api/hdr?window=all")
	if code != 200 {
		t.Fatalf("/api/hdr: got %d", code)
	}
	rd := hdrhistogram.NewHistogramLogReader(bytes.NewReader(body))
	var sends int64
	for range 100 {
		h, err := rd.NextIntervalHistogram()
		if err != nil {
			t.Fatal(err)
		}
		if h == nil {
			break
		}
		if h.Tag() == "sends.e2e" {
			sends = h.TotalCount()
		}
	}
	if sends != rep.Sends.Count {
		t.Fatalf("/api/hdr sends.e2e: got %d values, want %d", sends, rep.Sends.Count)
	}

	code, body, ctype = get(t, base+"/")
	if code != 200 || !strings.HasPrefix(ctype, "text/html") || !bytes.Contains(body, []byte(`id="spectrum"`)) {
		t.Fatalf("/: got %d %s", code, ctype)
	}
	if m := externalRef.Find(body); m != nil {
		t.Fatalf("dashboard loads an external asset: %s", m)
	}
	if code, _, _ = get(t, base+"/nope"); code != 404 {
		t.Fatalf("/nope: got %d, want 404", code)
	}
}

// TestServeWhileRecording scrapes every endpoint from several goroutines while requests are
// recorded and intervals close: run under -race, it checks the readers and the hot path share
// nothing unsynchronised.
func TestServeWhileRecording(t *testing.T) {
	rec := perf.NewRecorder(perf.RecorderConfig{SlowLogSize: 64})
	base := startServer(t, rec, perf.NewRegistry())
	done := make(chan struct{})
	recorded := make(chan struct{})
	go func() {
		defer close(recorded)
		for i := 0; i < 200; i++ {
			select {
			case <-done:
				return
			default:
			}
			synthLoad(t, rec, uint64(i), 200)
			if i%20 == 0 {
				rec.Rotate()
			}
		}
	}()
	errs := make(chan error, 4)
	for _, path := range []string{"/metrics", "/api/latency?window=1m", "/api/slow", "/api/hdr?window=10s"} {
		go func() {
			c := &http.Client{Timeout: 10 * time.Second}
			for range 10 {
				resp, err := c.Get(base + path)
				if err != nil {
					errs <- err
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					errs <- fmt.Errorf("%s: %d", path, resp.StatusCode)
					return
				}
			}
			errs <- nil
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	close(done)
	<-recorded
}
