package perf

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// feed records n sends of e2e latency latNs (7 stamps) and n pulls.
func feed(r *Recorder, n int, latNs int64) {
	for i := range n {
		s := sendStamps(int64(1000+i), latNs/6)
		r.Record(CodeSendMessageV2, &s, 4096, "orders", int32(i%4))
		var p Stamps
		p.At[StageRead], p.At[StageDecoded], p.At[StageWritten] = 1000, 2000, 1000+latNs*100
		r.Record(CodePullMessage, &p, 0, "orders", 0)
	}
}

func TestWindows(t *testing.T) {
	r := NewRecorder(RecorderConfig{WindowIntervals: 3})
	feed(r, 100, 600_000) // interval 1
	r.Rotate()
	feed(r, 200, 6_000_000) // interval 2
	r.Rotate()
	feed(r, 300, 30_000_000) // interval 3
	r.Rotate()
	feed(r, 400, 120_000) // interval 4 (closed), evicts interval 1 from the ring
	r.Rotate()
	feed(r, 7, 120_000) // open interval

	cases := []struct {
		window          string
		sends, within1  int64
		within10, maxUs float64
	}{
		{"10s", 407, 407, 407, 120},
		{"20s", 707, 407, 407, 30_000},
		{"30s", 907, 407, 607, 30_000},
		{"all", 1007, 507, 707, 30_000},
	}
	for _, c := range cases {
		rep, err := r.Report(c.window)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Sends.Count != c.sends || rep.SendsSLO.Total != c.sends || rep.SendsSLO.Within1ms != c.within1 ||
			float64(rep.SendsSLO.Within10ms) != c.within10 {
			t.Errorf("window %s: got count %d, SLO %+v; want count %d, within 1 ms %d, within 10 ms %v",
				c.window, rep.Sends.Count, rep.SendsSLO, c.sends, c.within1, c.within10)
		}
		if got := rep.Sends.Us[len(rep.Sends.Us)-1]; !closeUs(got, c.maxUs) {
			t.Errorf("window %s: max got %v us, want ~%v", c.window, got, c.maxUs)
		}
		if rep.Overall.Count != 2*c.sends {
			t.Errorf("window %s: overall count got %d, want %d", c.window, rep.Overall.Count, 2*c.sends)
		}
	}
	if _, err := r.Report("40s"); err == nil {
		t.Fatalf("window longer than the ring: got no error")
	}
	rep, _ := r.Report("30s")
	if len(rep.Series) != 3 || rep.Series[0].Sends != 200 || rep.Series[2].Sends != 400 {
		t.Fatalf("series: got %+v, want 3 intervals of 200, 300, 400 sends", rep.Series)
	}
	if got := rep.Series[1].SendsP99Us; !closeUs(got, 30_000) {
		t.Fatalf("series p99: got %v us, want ~30000", got)
	}
	if len(rep.Stages) != 6 || rep.Stages[0].Stage != "decoded" || rep.Stages[5].Stage != "written" {
		t.Fatalf("send stages: got %+v", rep.Stages)
	}
	last := rep.Spectrum[len(rep.Spectrum)-1]
	if last.Percentile != 100 || last.InvTail != float64(rep.Sends.Count) {
		t.Fatalf("spectrum end: got %+v", last)
	}
}

func TestHdrLogRoundTrip(t *testing.T) {
	r := NewRecorder(RecorderConfig{})
	path := filepath.Join(t.TempDir(), "latency.hlog")
	if err := r.OpenHdrLog(path); err != nil {
		t.Fatal(err)
	}
	feed(r, 50, 500_000)
	r.Rotate()
	feed(r, 70, 2_000_000)
	if err := r.Close(); err != nil { // writes the open interval
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"#[StartTime: ", "#[BaseTime: ", `"StartTimestamp","Interval_Length","Interval_Max","Interval_Compressed_Histogram"`, "Tag=SEND_MESSAGE_V2.e2e,0.000,"} {
		if !strings.Contains(string(raw), want) {
			t.Fatalf("log lacks %q:\n%s", want, raw)
		}
	}
	got := map[string][]int64{}
	rd := hdrhistogram.NewHistogramLogReader(bytes.NewReader(raw))
	for range 1000 {
		h, err := rd.NextIntervalHistogram()
		if err != nil {
			t.Fatal(err)
		}
		if h == nil {
			break
		}
		got[h.Tag()] = append(got[h.Tag()], h.TotalCount())
		if h.Tag() == "sends.e2e" && h.StartTimeMs() < WallTime(0).UnixMilli()-1000 {
			t.Fatalf("interval start %d ms is before the process started", h.StartTimeMs())
		}
	}
	for tag, want := range map[string][]int64{
		"SEND_MESSAGE_V2.e2e": {50, 70}, "SEND_MESSAGE_V2.durable": {50, 70},
		"PULL_MESSAGE.e2e": {50, 70}, "sends.e2e": {50, 70},
	} {
		if !slicesEqual(got[tag], want) {
			t.Errorf("tag %s: got counts %v, want %v", tag, got[tag], want)
		}
	}
}

func TestHdrWindow(t *testing.T) {
	r := NewRecorder(RecorderConfig{})
	feed(r, 30, 800_000)
	var buf bytes.Buffer
	if err := r.WriteHdrWindow(&buf, "all"); err != nil {
		t.Fatal(err)
	}
	rd := hdrhistogram.NewHistogramLogReader(&buf)
	seen := 0
	for range 100 {
		h, err := rd.NextIntervalHistogram()
		if err != nil {
			t.Fatal(err)
		}
		if h == nil {
			break
		}
		seen++
		if h.TotalCount() != 30 {
			t.Errorf("tag %s: got %d values, want 30", h.Tag(), h.TotalCount())
		}
	}
	// send: e2e + 6 stages; pull: e2e + decoded + written; sends.e2e.
	if seen != 11 {
		t.Fatalf("histograms: got %d, want 11", seen)
	}
}

func slicesEqual(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// closeUs reports whether got is want to the histogram's resolution: 3 digits, and 1 us at the
// bottom (values are counted in 512 ns units below 1 ms).
func closeUs(got, want float64) bool { return math.Abs(got-want) <= math.Max(want*0.001, 1) }

func TestHdrLogIsBounded(t *testing.T) {
	const maxBytes = 4 << 10
	r := NewRecorder(RecorderConfig{HdrLogMaxBytes: maxBytes})
	path := filepath.Join(t.TempDir(), "latency.hlog")
	if err := r.OpenHdrLog(path); err != nil {
		t.Fatal(err)
	}
	total := 0
	for i := range 12 {
		feed(r, 10+i, int64(300_000+i*50_000))
		total += 10 + i
		r.Rotate()
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	// Both files are whole logs; together they hold the newest intervals.
	var seen int64
	for _, p := range []string{path + ".1", path} {
		raw, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if len(raw) > 2*maxBytes {
			t.Fatalf("%s: %d bytes, bound %d (+ one interval)", p, len(raw), maxBytes)
		}
		rd := hdrhistogram.NewHistogramLogReader(bytes.NewReader(raw))
		for range 10000 {
			h, err := rd.NextIntervalHistogram()
			if err != nil {
				t.Fatalf("%s: %v", p, err)
			}
			if h == nil {
				break
			}
			if h.Tag() == "sends.e2e" {
				seen += h.TotalCount()
			}
		}
	}
	if seen == 0 || seen >= int64(total) {
		t.Fatalf("sends in the two files: got %d, want some but not all %d (older files are dropped)", seen, total)
	}
}
