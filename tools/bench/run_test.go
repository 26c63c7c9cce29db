package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

// testWorkload is 1 topic x 4 partitions, 2 producers, 1 subscription, 1000 msg/s, 1 s.
func testWorkload(t *testing.T) *Workload {
	t.Helper()
	w, err := ParseWorkload([]byte(`
name: unit
topics: 1
partitionsPerTopic: 4
messageSize: 128
subscriptionsPerTopic: 1
producersPerTopic: 2
producerRate: 1000
keyDistributor: KEY_ROUND_ROBIN
testDurationMinutes: 0.0167
warmupDurationMinutes: 0
`))
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// runNull runs w against the null-inproc driver for 1 s with 250 ms report intervals.
func runNull(t *testing.T, w *Workload, hdrLog io.Writer) *Result {
	t.Helper()
	return runDriver(t, "null-inproc", DriverOptions{}, w, hdrLog)
}

func runDriver(t *testing.T, driver string, o DriverOptions, w *Workload, hdrLog io.Writer) *Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	d, err := OpenDriver(ctx, driver, o)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	res, err := Run(ctx, Config{Workload: w, Driver: d, Duration: time.Second, ReportInterval: 250 * time.Millisecond,
		DrainTimeout: 5 * time.Second, HDRLog: hdrLog, Seed: 42})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return res
}

// TestNullRunCounts: 1 s at 1000 msg/s schedules exactly 1000 sends; every one is acked
// and consumed once, and every latency sample is recorded.
func TestNullRunCounts(t *testing.T) {
	res := runNull(t, testWorkload(t), nil)
	if res.Sent != 1000 || res.Acked != 1000 || res.Errors != 0 || res.Unacked != 0 || res.Received != 1000 {
		t.Fatalf("got sent %d acked %d errors %d unacked %d received %d, want 1000/1000/0/0/1000",
			res.Sent, res.Acked, res.Errors, res.Unacked, res.Received)
	}
	if res.Publish.Count != 1000 || res.PublishDelay.Count != 1000 || res.EndToEnd.Count != 1000 {
		t.Fatalf("samples: publish %d delay %d e2e %d, want 1000 each", res.Publish.Count, res.PublishDelay.Count, res.EndToEnd.Count)
	}
	if len(res.Intervals) < 4 {
		t.Fatalf("intervals: %d, want at least 4 of 250 ms", len(res.Intervals))
	}
	if p := res.Publish.P(50); !(p > 0) {
		t.Fatalf("publish p50 = %g us, want > 0", p)
	}
}

// TestOMBJSONShape: the JSON carries OMB TestResult's field names (and ringmq's
// additions) with the right JSON types.
func TestOMBJSONShape(t *testing.T) {
	res := runNull(t, testWorkload(t), nil)
	b, err := json.Marshal(res.OMB())
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	numbers := []string{"messageSize", "topics", "partitions", "producersPerTopic", "consumersPerTopic"}
	arrays := []string{"publishRate", "publishErrorRate", "consumeRate", "backlog"}
	for _, metric := range []string{"publishLatency", "publishDelayLatency", "endToEndLatency"} {
		for _, suffix := range []string{"Avg", "50pct", "75pct", "95pct", "99pct", "999pct", "9999pct", "99999pct", "Max"} {
			arrays = append(arrays, metric+suffix)
			numbers = append(numbers, "aggregated"+strings.ToUpper(metric[:1])+metric[1:]+suffix)
		}
	}
	numbers = append(numbers, "aggregatedPublishLatency996pct", "aggregatedPublishLatency99996pct",
		"publishUnder1msFraction", "publishUnder10msFraction")
	for _, k := range numbers {
		if _, ok := m[k].(float64); !ok {
			t.Errorf("field %q: got %T, want a number", k, m[k])
		}
	}
	for _, k := range arrays {
		if a, ok := m[k].([]any); !ok || len(a) == 0 {
			t.Errorf("field %q: got %v, want a non-empty array", k, m[k])
		}
	}
	for _, k := range []string{"aggregatedPublishLatencyQuantiles", "aggregatedPublishDelayLatencyQuantiles", "aggregatedEndToEndLatencyQuantiles"} {
		q, ok := m[k].(map[string]any)
		if !ok || q["99.9"] == nil || q["50.0"] == nil {
			t.Errorf("field %q: got %v, want a map with keys 50.0 and 99.9", k, m[k])
		}
	}
	if m["workload"] != "unit" || m["driver"] != "null-inproc" {
		t.Errorf("workload/driver: got %v/%v", m["workload"], m["driver"])
	}
	// Units: publish latency in ms, publish delay in us.
	o := res.OMB()
	if got, want := o.AggregatedPublishLatency50pct, res.Publish.P(50)/1e3; got != want {
		t.Errorf("aggregatedPublishLatency50pct = %g, want %g (ms)", got, want)
	}
	if got, want := o.AggregatedPublishDelayLatency50pct, int64(res.PublishDelay.P(50)); got != want {
		t.Errorf("aggregatedPublishDelayLatency50pct = %d, want %d (us)", got, want)
	}
	path := filepath.Join(t.TempDir(), "r.json")
	if err := res.WriteJSON(path); err != nil {
		t.Fatal(err)
	}
}

// TestHDRLogDecodes: the interval log reads back with HdrHistogram's log reader and its
// intervals add up to the run's samples.
func TestHDRLogDecodes(t *testing.T) {
	var log bytes.Buffer
	res := runNull(t, testWorkload(t), &log)
	text := log.String()
	rd := hdr.NewHistogramLogReader(strings.NewReader(text))
	var total int64
	var lines int
	for {
		h, err := rd.NextIntervalHistogram()
		if err != nil {
			t.Fatalf("decode interval %d: %v", lines, err)
		}
		if h == nil {
			break
		}
		lines++
		total += h.TotalCount()
	}
	want := res.Publish.Count + res.PublishDelay.Count + res.EndToEnd.Count
	if lines != 3*len(res.Intervals) || total != want {
		t.Fatalf("log: %d intervals with %d samples, want %d with %d", lines, total, 3*len(res.Intervals), want)
	}
	if !strings.Contains(text, "Tag=publish,") || !strings.Contains(text, "#[StartTime: ") {
		t.Fatalf("log lacks tags or start time:\n%.300s", text)
	}
}

// TestNullRemotingRun: the null driver runs the ringmq driver (route lookup, topic
// creation, SEND_MESSAGE via InvokeAsync, PULL_MESSAGE long polls with decoded records)
// against the in-process remoting responder; every message is acked and consumed once.
func TestNullRemotingRun(t *testing.T) {
	w := testWorkload(t)
	res := runDriver(t, "null", DriverOptions{}, w, nil)
	if res.Sent != 1000 || res.Acked != 1000 || res.Errors != 0 || res.Received != 1000 || res.ConsumeErrors != 0 {
		t.Fatalf("got sent %d acked %d errors %d (%s) received %d consume errors %d (%s), want 1000/1000/0/1000/0",
			res.Sent, res.Acked, res.Errors, res.LastError, res.Received, res.ConsumeErrors, res.LastConsumeError)
	}
	if res.EndToEnd.Count != 1000 {
		t.Fatalf("end-to-end samples: %d, want 1000", res.EndToEnd.Count)
	}
}

// TestBacklogMode: with consumerBacklogSizeGB the consumers start only once that many
// bytes are waiting, then catch up: everything is still consumed once.
func TestBacklogMode(t *testing.T) {
	w := testWorkload(t)
	w.ConsumerBacklogSizeGB = 64000.0 / (1 << 30)        // 500 messages of 128 B
	res := runDriver(t, "null", DriverOptions{}, w, nil) // keeps messages for late consumers
	if res.Acked != 1000 || res.Received != 1000 {
		t.Fatalf("got acked %d received %d, want 1000/1000", res.Acked, res.Received)
	}
	// The first message waited until 500 were sent (~0.5 s at 1000 msg/s).
	if res.EndToEnd.MaxUs < 300_000 {
		t.Fatalf("end-to-end max %g us, want >= 300 ms (the first messages waited for the backlog)", res.EndToEnd.MaxUs)
	}
}

// TestCancelStopsRun: cancelling the context stops the pacer; the result covers only
// what was scheduled before the stop.
func TestCancelStopsRun(t *testing.T) {
	d, err := OpenDriver(context.Background(), "null-inproc", DriverOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	res, err := Run(ctx, Config{Workload: testWorkload(t), Driver: d, Duration: time.Minute, Seed: 3})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if res.Sent == 0 || res.Sent >= 1000 || res.DurationSec >= 1 {
		t.Fatalf("got sent %d over %.2f s, want a few hundred over under 1 s", res.Sent, res.DurationSec)
	}
	if res.Acked+res.Errors != res.Sent {
		t.Fatalf("acked %d + errors %d != sent %d", res.Acked, res.Errors, res.Sent)
	}
}
