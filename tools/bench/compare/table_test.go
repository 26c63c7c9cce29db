package main

import (
	"bytes"
	"math"
	"strings"
	"testing"

	"github.com/ringmq/ringmq/tools/bench"
)

func TestMedianAndSpread(t *testing.T) {
	tests := []struct {
		v          []float64
		median     float64
		spreadText string
	}{
		{[]float64{3}, 3, "3"},
		{[]float64{5, 1}, 3, "3 [1-5]"},
		{[]float64{9, 1, 4}, 4, "4 [1-9]"},
		{[]float64{math.NaN(), 7, 5}, 6, "6 [5-7]"},
	}
	for _, tc := range tests {
		if got := median(tc.v); got != tc.median {
			t.Errorf("median(%v) = %g, want %g", tc.v, got, tc.median)
		}
		if got := spread(tc.v, "%.0f"); got != tc.spreadText {
			t.Errorf("spread(%v) = %q, want %q", tc.v, got, tc.spreadText)
		}
	}
}

// TestPrintTable: one table with a row per system and a ratio line per workload.
func TestPrintTable(t *testing.T) {
	mk := func(rate, p99 float64) *bench.Result {
		return &bench.Result{PublishRate: rate, Publish: bench.LatencySummary{Count: 1,
			PercentileUs: map[string]float64{"50": p99 / 2, "99": p99}}}
	}
	rows := []row{
		{workload: "reference", system: "ringmq", results: []*bench.Result{mk(10000, 400), mk(10000, 600)}},
		{workload: "reference", system: "nats", results: []*bench.Result{mk(2000, 2000), mk(2000, 2000)}},
	}
	machine := &bench.MachineFloor{RatePerSec: 10000, WakeLateness: bench.LatencySummary{Count: 1,
		PercentileUs: map[string]float64{"50": 31, "99": 777}}}
	rows = append(rows, row{workload: "reference", system: "floor (machine)", results: []*bench.Result{{Machine: machine}}})
	rows = append(rows, row{workload: "max", system: "ringmq", results: []*bench.Result{mk(100, 1)}},
		row{workload: "max", system: "nats", results: []*bench.Result{mk(0, 1)}})
	var out bytes.Buffer
	idle := bench.CPUIdlePoll{Requested: true, Reason: "not root (test)"}
	printTable(&out, &options{runs: 2, natsVersion: "nats-server: v2.12.15", idle: idle}, rows)
	text := out.String()
	for _, want := range []string{"reference     ringmq", "500 [400-600]", "reference     nats", "throughput x5.00", "pub p99 x0.25",
		"max           throughput x inf", "cpu idle poll: not held: not root (test)", "reference     floor (machine) 10000", "777", "31"} {
		if !strings.Contains(text, want) {
			t.Errorf("table lacks %q:\n%s", want, text)
		}
	}
}
