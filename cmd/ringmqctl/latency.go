package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ringmq/ringmq/perf"
)

// Limits of `ringmqctl latency`.
const (
	latencyDefaultAdmin   = "127.0.0.1:10980"
	latencyMaxReportBytes = 8 << 20
)

// runLatency implements `ringmqctl latency [--admin HOST:PORT] [--window 1m] [--codes] [--json]`:
// the broker's latency report (its /api/latency) as tables in the terminal.
func runLatency(args []string) error { return latencyCmd(args, os.Stdout, os.Stderr) }

// latencyCmd is runLatency with its output streams; it has the signature of main.go's command
// table. Bad flags or arguments are explained on errOut and return errUsage.
func latencyCmd(args []string, out, errOut io.Writer) error {
	fs := flag.NewFlagSet("latency", flag.ContinueOnError)
	fs.SetOutput(errOut)
	admin := fs.String("admin", latencyDefaultAdmin, "the broker's admin HTTP address, HOST:PORT (its --admin-listen)")
	window := fs.String("window", "1m", "report window: 10s, 1m, 10m, all, or a duration up to 10m")
	byCode := fs.Bool("codes", false, "also print the stage table of every request code")
	asJSON := fs.Bool("json", false, "print the report as JSON instead of tables")
	timeout := fs.Duration("timeout", 5*time.Second, "HTTP timeout")
	fs.Usage = func() {
		fmt.Fprintln(errOut, "usage: ringmqctl latency [--admin HOST:PORT] [--window 1m] [--codes] [--json]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage // flag printed the error and the usage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(errOut, "ringmqctl latency: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return errUsage
	}
	rep, raw, err := fetchLatency(*admin, *window, *timeout)
	if err != nil {
		return err
	}
	if *asJSON {
		_, err := out.Write(raw)
		return err
	}
	return printLatency(out, rep, *byCode)
}

// fetchLatency GETs /api/latency from the admin server and decodes it.
func fetchLatency(admin, window string, timeout time.Duration) (*perf.LatencyReport, []byte, error) {
	u := "http://" + admin + "/api/latency?window=" + url.QueryEscape(window)
	c := &http.Client{Timeout: timeout}
	resp, err := c.Get(u)
	if err != nil {
		return nil, nil, fmt.Errorf("fetch %s: %w (is the broker's admin server on %s? see --admin)", u, err, admin)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, latencyMaxReportBytes+1))
	if err != nil {
		return nil, nil, fmt.Errorf("read %s: %w", u, err)
	}
	if len(raw) > latencyMaxReportBytes {
		return nil, nil, fmt.Errorf("%s: report larger than %d bytes", u, latencyMaxReportBytes)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, nil, fmt.Errorf("%s: %s: %s", u, resp.Status, strings.TrimSpace(string(raw)))
	}
	var rep perf.LatencyReport
	if err := json.Unmarshal(raw, &rep); err != nil {
		return nil, nil, fmt.Errorf("decode %s: %w", u, err)
	}
	if len(rep.Percentiles) == 0 {
		return nil, nil, errors.New("report without percentiles (not a ringmq admin server?)")
	}
	return &rep, raw, nil
}

// printLatency writes the report as tables: SLO, end to end per code, stages of the sends.
func printLatency(out io.Writer, rep *perf.LatencyReport, byCode bool) error {
	fmt.Fprintf(out, "ringmq latency  window %s (%.0f s covered)  %s requests  at %s\n",
		rep.Window, rep.WindowSeconds, groupDigits(rep.Overall.Count), rep.GeneratedAt.UTC().Format(time.RFC3339))

	s := rep.SendsSLO
	slo := latencyTable{head: []string{"SLO (sends)", "sends", "<= 1 ms", "<= 10 ms", "burn 1 ms", "burn 10 ms"}}
	slo.add("measured", groupDigits(s.Total), pct(s.FracWithin1ms, s.Total), pct(s.FracWithin10, s.Total),
		fmt.Sprintf("%.2f", s.Burn1ms), fmt.Sprintf("%.2f", s.Burn10ms))
	slo.add("target", "", fmt.Sprintf("%.3f%%", perf.SLOTargetWithin1ms*100),
		fmt.Sprintf("%.3f%%", perf.SLOTargetWithin10ms*100), "1.00", "1.00")
	tables := []*latencyTable{&slo}

	dists := func(title string) *latencyTable {
		t := &latencyTable{head: []string{title, "count"}}
		for _, p := range rep.Percentiles {
			t.head = append(t.head, pctLabel(p))
		}
		t.head = append(t.head, "mean")
		tables = append(tables, t)
		return t
	}
	e2e := dists("END TO END")
	e2e.dist("sends", rep.Sends)
	e2e.dist("all codes", rep.Overall)
	for _, c := range rep.Codes {
		e2e.dist(fmt.Sprintf("%s (%d)", c.Name, c.Code), c.E2E)
	}
	stages := dists("STAGES (sends)")
	for _, st := range rep.Stages {
		stages.dist(st.Stage, st.Dist)
	}
	if byCode {
		for _, c := range rep.Codes {
			t := dists("STAGES " + c.Name)
			for _, st := range c.Stages {
				t.dist(st.Stage, st.Dist)
			}
		}
	}
	for _, t := range tables {
		if err := t.write(out); err != nil {
			return err
		}
	}
	_, err := fmt.Fprintf(out, "\nslow requests since start: %d (%d not logged); stamp order errors: %d%s\n",
		rep.SlowTotal, rep.SlowDropped, rep.StampOrderErrors, byStage(rep.StampOrderErrorsByStage))
	return err
}

// latencyTable is one table: the first column left-aligned, the numbers right-aligned.
type latencyTable struct {
	head []string
	rows [][]string
}

func (t *latencyTable) add(cells ...string) { t.rows = append(t.rows, cells) }

func (t *latencyTable) dist(name string, d perf.Dist) {
	row := []string{name, groupDigits(d.Count)}
	for _, v := range d.Us {
		row = append(row, fmtLatencyUs(v, d.Count))
	}
	t.add(append(row, fmtLatencyUs(d.MeanUs, d.Count))...)
}

func (t *latencyTable) write(out io.Writer) error {
	nameWidth := len(t.head[0])
	for _, r := range t.rows {
		nameWidth = max(nameWidth, len(r[0]))
	}
	tw := tabwriter.NewWriter(out, 0, 8, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw)
	for _, r := range append([][]string{t.head}, t.rows...) {
		fmt.Fprintf(tw, "%-*s\t", nameWidth, r[0])
		fmt.Fprintln(tw, strings.Join(r[1:], "\t")+"\t")
	}
	return tw.Flush()
}

// byStage lists stamp order errors by stage, in stage order: " (into durable 3, written 1)".
func byStage(m map[string]int64) string {
	var parts []string
	for st := perf.StageDecoded; st < perf.NumStages; st++ {
		if n := m[st.String()]; n != 0 {
			parts = append(parts, fmt.Sprintf("%s %d", st, n))
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return " (into " + strings.Join(parts, ", ") + ")"
}

func pct(f float64, n int64) string {
	if n == 0 {
		return "-"
	}
	return fmt.Sprintf("%.3f%%", f*100)
}

func pctLabel(p float64) string {
	if p == 100 {
		return "max"
	}
	return "p" + strings.TrimSuffix(fmt.Sprintf("%g", p), ".0")
}

// fmtLatencyUs prints a latency in microseconds with a unit that keeps 3 significant digits.
func fmtLatencyUs(us float64, count int64) string {
	switch {
	case count == 0:
		return "-"
	case us < 10:
		return fmt.Sprintf("%.1fus", us)
	case us < 1000:
		return fmt.Sprintf("%.0fus", us)
	case us < 10_000:
		return fmt.Sprintf("%.2fms", us/1e3)
	case us < 1e6:
		return fmt.Sprintf("%.1fms", us/1e3)
	}
	return fmt.Sprintf("%.2fs", us/1e6)
}

func groupDigits(n int64) string {
	s := fmt.Sprint(n)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && c != '-' && (len(s)-i)%3 == 0 && s[i-1] != '-' {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}
