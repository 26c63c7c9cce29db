package main

import (
	"fmt"
	"io"
	"math"
	"sort"
	"strings"

	"github.com/ringmq/ringmq/tools/bench"
)

// row is one system's runs of one workload.
type row struct {
	workload, system string
	results          []*bench.Result
}

func collect(rs []*bench.Result, f func(*bench.Result) float64) []float64 {
	v := make([]float64, len(rs))
	for i, r := range rs {
		v[i] = f(r)
	}
	return v
}

// median of the numbers in v (NaN entries, runs without samples, are left out).
func median(v []float64) float64 {
	s := numbers(v)
	if len(s) == 0 {
		return math.NaN()
	}
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// numbers returns v without NaNs, sorted.
func numbers(v []float64) []float64 {
	s := make([]float64, 0, len(v))
	for _, x := range v {
		if !math.IsNaN(x) {
			s = append(s, x)
		}
	}
	sort.Float64s(s)
	return s
}

// spread formats the median of v with its range when there is more than one run.
func spread(v []float64, format string) string {
	s := numbers(v)
	m := num(median(s), format)
	if len(s) < 2 {
		return m
	}
	return fmt.Sprintf("%s ["+format+"-"+format+"]", m, s[0], s[len(s)-1])
}

// column is one figure of the table: how to read it from a result and whether it is a
// latency (ratios of latencies: smaller is better for ringmq).
type column struct {
	title string
	get   func(*bench.Result) float64
}

// pub and e2e read a percentile; NaN when the run has no such samples (no consumers).
func pub(p float64) func(*bench.Result) float64 {
	return func(r *bench.Result) float64 { return valueOrNaN(r.Publish, r.Publish.P(p)) }
}

func e2e(p float64) func(*bench.Result) float64 {
	return func(r *bench.Result) float64 { return valueOrNaN(r.EndToEnd, r.EndToEnd.P(p)) }
}

func valueOrNaN(s bench.LatencySummary, v float64) float64 {
	if s.Count == 0 {
		return math.NaN()
	}
	return v
}

// num prints a figure, "-" for NaN.
func num(v float64, format string) string {
	if math.IsNaN(v) {
		return "-"
	}
	return fmt.Sprintf(format, v)
}

var columns = []column{
	{"pub p50", pub(50)}, {"pub p99", pub(99)}, {"pub p99.6", pub(99.6)}, {"pub p99.9", pub(99.9)},
	{"pub p99.99", pub(99.99)}, {"pub p99.996", pub(99.996)},
	{"pub max", func(r *bench.Result) float64 { return valueOrNaN(r.Publish, r.Publish.MaxUs) }},
	{"e2e p50", e2e(50)}, {"e2e p99", e2e(99)}, {"e2e p99.9", e2e(99.9)},
}

// printTable prints the one table: per workload a row per system (medians, spread of
// throughput and publish p99 over the runs), the generator floor, and the ratios.
// "failed" counts sends that errored, were never answered, or were never sent because
// the system held the in-flight limit until the schedule ended.
func printTable(w io.Writer, o *options, rows []row) {
	mode := fmt.Sprintf("%d A/B pair(s) per workload", o.runs)
	if o.quick {
		mode = "QUICK (sanity only, not a result)"
	}
	fmt.Fprintf(w, "\n==== ringmq vs NATS JetStream (%s, sync_interval: always), %s; latencies in us, medians [min-max] ====\n",
		o.natsVersion, mode)
	fmt.Fprintf(w, "cpu idle poll: %s\n", o.idle)
	fmt.Fprintln(w, "floor (machine): the pacer alone at the floor's rate, nothing sent; its pub columns are wake-up lateness")
	var b strings.Builder
	fmt.Fprintf(&b, "%-13s %-15s %-26s %-22s", "workload", "system", "acked msg/s", "pub p99")
	for _, c := range columns {
		if c.title != "pub p99" {
			fmt.Fprintf(&b, " %11s", c.title)
		}
	}
	fmt.Fprintf(&b, " %9s %9s %8s", "pub<=1ms", "pub<=10ms", "failed")
	fmt.Fprintln(w, b.String())
	byWorkload := make(map[string]map[string]row)
	var order []string
	for _, r := range rows {
		if byWorkload[r.workload] == nil {
			byWorkload[r.workload] = make(map[string]row)
			order = append(order, r.workload)
		}
		byWorkload[r.workload][r.system] = r
		printRow(w, r)
	}
	fmt.Fprintln(w, "\nratios ringmq / nats (throughput: higher is better; latency: lower is better)")
	for _, wl := range order {
		rm, nt := byWorkload[wl]["ringmq"], byWorkload[wl]["nats"]
		var rb strings.Builder
		fmt.Fprintf(&rb, "%-13s throughput %s", wl, ratioText(ratio(rm, nt, func(r *bench.Result) float64 { return r.PublishRate })))
		for _, c := range columns {
			fmt.Fprintf(&rb, "  %s %s", c.title, ratioText(ratio(rm, nt, c.get)))
		}
		fmt.Fprintln(w, rb.String())
	}
}

func printRow(w io.Writer, r row) {
	rate := collect(r.results, func(x *bench.Result) float64 { return x.PublishRate })
	if r.results[0].Machine != nil { // the machine floor: its wake lateness in the pub columns
		m := r.results[0].Machine
		rate = []float64{m.RatePerSec}
		r.results = []*bench.Result{{Publish: m.WakeLateness}}
	}
	p99 := collect(r.results, pub(99))
	fmt.Fprintf(w, "%-13s %-15s %-26s %-22s", r.workload, r.system, spread(rate, "%.0f"), spread(p99, "%.0f"))
	for _, c := range columns {
		if c.title != "pub p99" {
			fmt.Fprintf(w, " %11s", num(median(collect(r.results, c.get)), "%.0f"))
		}
	}
	under1 := median(collect(r.results, func(x *bench.Result) float64 { return x.Publish.Under1ms * 100 }))
	under10 := median(collect(r.results, func(x *bench.Result) float64 { return x.Publish.Under10ms * 100 }))
	errs := collect(r.results, func(x *bench.Result) float64 { return float64(x.Errors + x.Unacked + x.NotSent) })
	fmt.Fprintf(w, " %8.3f%% %8.4f%% %8.0f\n", under1, under10, median(errs))
}

func ratio(a, b row, f func(*bench.Result) float64) float64 {
	x, y := median(collect(a.results, f)), median(collect(b.results, f))
	if math.IsNaN(x) || math.IsNaN(y) || (x == 0 && y == 0) {
		return math.NaN()
	}
	return x / y // +Inf when nats did nothing
}

// ratioText prints a ratio: "-" when undefined, "inf" when nats had zero.
func ratioText(v float64) string {
	if math.IsInf(v, 1) {
		return "x inf"
	}
	return num(v, "x%.2f")
}
