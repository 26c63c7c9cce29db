package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"
)

// TestSpinGapsReduce: readings closer than the threshold are not gaps; longer ones are
// counted with their length, and the lost fraction is their sum over the span.
func TestSpinGapsReduce(t *testing.T) {
	g := newSpinGaps(20_000)
	now := int64(1_000_000)
	start := now
	step := func(d int64) { g.observe(now, now+d); now += d }
	for range 1000 {
		step(50) // a spinning thread: readings tens of ns apart
	}
	step(20_000) // exactly the threshold: not a gap
	step(100_000)
	step(2_000_000)
	step(30_000)
	g.spanNs = now - start
	sp := g.summary()
	if sp.Gaps.Count != 3 {
		t.Fatalf("gaps = %d, want 3 (100 us, 2 ms, 30 us)", sp.Gaps.Count)
	}
	if got := sp.Gaps.MaxUs; math.Abs(got-2000) > 2 {
		t.Fatalf("max gap = %g us, want 2000 (to 3 digits)", got)
	}
	wantLost := float64(2_130_000) / float64(g.spanNs)
	if math.Abs(sp.LostFraction-wantLost) > 1e-9 {
		t.Fatalf("lost fraction = %g, want %g", sp.LostFraction, wantLost)
	}
	if sp.ThresholdUs != 20 || math.Abs(sp.GapsPerSec-3/sp.DurationSec) > 1e-6 {
		t.Fatalf("threshold %g us, %g gaps/s over %g s", sp.ThresholdUs, sp.GapsPerSec, sp.DurationSec)
	}
	if line := sp.line(); !strings.Contains(line, "3 gaps over 20 us") {
		t.Fatalf("line %q lacks the gap count", line)
	}
}

// TestMachineFloorCounts: the pacer alone records exactly one wake-up per scheduled time
// of the measurement phase (rate x duration), none of the warm-up's, and prints progress.
func TestMachineFloorCounts(t *testing.T) {
	var progress bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	m, err := MeasureMachineFloor(ctx, MachineConfig{RatePerSec: 2000, Duration: 500 * time.Millisecond,
		Warmup: 100 * time.Millisecond, SpinProbe: 50 * time.Millisecond, ReportInterval: 200 * time.Millisecond, Progress: &progress})
	if err != nil {
		t.Fatal(err)
	}
	if m.WakeLateness.Count != 1000 || m.DurationSec != 0.5 || m.RatePerSec != 2000 {
		t.Fatalf("got %d wake-ups over %g s at %g/s, want 1000 over 0.5 s at 2000/s", m.WakeLateness.Count, m.DurationSec, m.RatePerSec)
	}
	if m.SpinProbe == nil || m.SpinProbe.DurationSec < 0.05 {
		t.Fatalf("spin probe: %+v, want one of >= 50 ms", m.SpinProbe)
	}
	out := progress.String()
	for _, want := range []string{"spin probe: ", "] machine warmup ", "] machine "} {
		if !strings.Contains(out, want) {
			t.Fatalf("progress lacks %q:\n%s", want, out)
		}
	}
}

// TestMachineFloorBadInput: no rate or no duration is an error before anything runs.
func TestMachineFloorBadInput(t *testing.T) {
	ctx := context.Background()
	for _, c := range []MachineConfig{{RatePerSec: 0, Duration: time.Second}, {RatePerSec: MaxRatePerSec + 1, Duration: time.Second},
		{RatePerSec: 100, Duration: 0}, {RatePerSec: math.NaN(), Duration: time.Second}} {
		if _, err := MeasureMachineFloor(ctx, c); err == nil {
			t.Errorf("%+v: no error", c)
		}
	}
	w := testWorkload(t)
	w.ProducerRate = 0
	if _, err := MachineRate(w, 0); err == nil {
		t.Error("MachineRate without any rate: no error")
	}
	if r, err := MachineRate(w, 250); err != nil || r != 250 {
		t.Errorf("MachineRate(--rate 250) = %g, %v", r, err)
	}
}

// TestMachineFloorReported: the machine row and the idle-poll status appear in the final
// table and in the OMB-shaped JSON (ringmqMachineFloor, ringmqCpuIdlePoll).
func TestMachineFloorReported(t *testing.T) {
	res := runNull(t, testWorkload(t), nil)
	m, err := MeasureMachineFloor(context.Background(), MachineConfig{RatePerSec: 1000, Duration: 200 * time.Millisecond,
		SpinProbe: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	res.Machine = m
	idle := CPUIdlePoll{Requested: true, Reason: "not root (test)", LatencyUs: -1}
	res.CPUIdlePoll = &idle
	var tbl bytes.Buffer
	res.WriteTable(&tbl)
	for _, want := range []string{"cpu idle poll: not held: not root (test)", "  floor (machine)", "  spin gaps (machine)"} {
		if !strings.Contains(tbl.String(), want) {
			t.Fatalf("table lacks %q:\n%s", want, tbl.String())
		}
	}
	b, err := json.Marshal(res.OMB())
	if err != nil {
		t.Fatal(err)
	}
	var o struct {
		Machine struct {
			RatePerSec float64 `json:"ratePerSec"`
			Wake       struct {
				Count int64              `json:"count"`
				P     map[string]float64 `json:"percentileUs"`
			} `json:"wakeLateness"`
			Spin *struct {
				DurationSec float64 `json:"durationSec"`
			} `json:"spinProbe"`
		} `json:"ringmqMachineFloor"`
		Idle *CPUIdlePoll `json:"ringmqCpuIdlePoll"`
	}
	if err := json.Unmarshal(b, &o); err != nil {
		t.Fatal(err)
	}
	if o.Machine.RatePerSec != 1000 || o.Machine.Wake.Count != 200 || o.Machine.Wake.P["99.9"] <= 0 || o.Machine.Spin == nil {
		t.Fatalf("ringmqMachineFloor = %+v, want rate 1000, 200 wake-ups, a p99.9 and the spin probe", o.Machine)
	}
	if o.Idle == nil || *o.Idle != idle {
		t.Fatalf("ringmqCpuIdlePoll = %+v, want %+v", o.Idle, idle)
	}

	// A machine floor alone (--driver timer) prints only its own rows.
	alone := MachineResult(testWorkload(t), m, idle)
	tbl.Reset()
	alone.WriteTable(&tbl)
	if s := tbl.String(); !strings.Contains(s, "wake lateness") || strings.Contains(s, "publish") {
		t.Fatalf("machine-alone table:\n%s", s)
	}
}
