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
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ringmq/ringmq/perf"
	"github.com/ringmq/ringmq/perf/admin"
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
	adminAddr := fs.String("admin", latencyDefaultAdmin, "the broker's admin HTTP address, HOST:PORT (its --admin-listen)")
	window := fs.String("window", "1m", "report window: 10s, 1m, 10m, all, or a duration up to 10m")
	byCode := fs.Bool("codes", false, "also print the stage table of every request code")
	asJSON := fs.Bool("json", false, "print the report as JSON instead of tables")
	slowN := fs.Int("slow", 0, "also print the newest `N` slow requests with their stage breakdown (at most 1000)")
	timeout := fs.Duration("timeout", 5*time.Second, "HTTP timeout")
	fs.Usage = func() {
		fmt.Fprintln(errOut, "usage: ringmqctl latency [--admin HOST:PORT] [--window 1m] [--codes] [--slow N] [--json]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage // flag printed the error and the usage
	}
	if fs.NArg() > 0 || *slowN < 0 || *slowN > 1000 {
		if fs.NArg() > 0 {
			fmt.Fprintf(errOut, "ringmqctl latency: unexpected argument %q\n", fs.Arg(0))
		} else {
			fmt.Fprintf(errOut, "ringmqctl latency: --slow %d: want 0..1000\n", *slowN)
		}
		fs.Usage()
		return errUsage
	}
	rep, raw, err := fetchLatency(*adminAddr, *window, *timeout)
	if err != nil {
		return err
	}
	if *asJSON {
		_, err := out.Write(raw)
		return err
	}
	if err := printLatency(out, rep, *byCode); err != nil || *slowN == 0 {
		return err
	}
	var slow admin.SlowResponse
	if _, err := getAdminJSON(*adminAddr, "/api/slow?limit="+strconv.Itoa(*slowN), *timeout, &slow); err != nil {
		return err
	}
	return printSlow(out, &slow)
}

// printSlow writes the slow requests, newest first, one line each with the stages they spent
// time in and the evidence gathered for them.
func printSlow(out io.Writer, slow *admin.SlowResponse) error {
	fmt.Fprintf(out, "\nSLOW REQUESTS over %s: %d since start, %d kept, %d not logged\n",
		fmtLatencyUs(slow.ThresholdUs, 1), slow.Total, slow.Kept, slow.Dropped)
	t := latencyTable{head: []string{"time", "code", "topic", "queue", "size", "total", "stages (time to enter each) | evidence"}, freeLast: true}
	for _, r := range slow.Requests {
		var stages []string
		for i, st := range r.Stages {
			if i == 0 {
				continue // the first stage passed: the request's start
			}
			stages = append(stages, st.Stage+" "+fmtLatencyUs(float64(st.DeltaNs)/1e3, 1))
		}
		for _, ev := range r.Evidence {
			stages = append(stages, "| "+ev.Kind+" "+fmtLatencyUs(float64(ev.EndNs-ev.StartNs)/1e3, 1)+" "+ev.Detail)
		}
		t.add(r.Time.UTC().Format("15:04:05.000000"), r.CodeName, r.Topic, strconv.Itoa(int(r.QueueID)),
			strconv.FormatInt(r.SizeBytes, 10), fmtLatencyUs(float64(r.TotalNs)/1e3, 1), strings.Join(stages, ", "))
	}
	return t.write(out)
}

// fetchLatency GETs /api/latency from the admin server and decodes it.
func fetchLatency(adminAddr, window string, timeout time.Duration) (*perf.LatencyReport, []byte, error) {
	var rep perf.LatencyReport
	raw, err := getAdminJSON(adminAddr, "/api/latency?window="+url.QueryEscape(window), timeout, &rep)
	if err != nil {
		return nil, nil, err
	}
	if len(rep.Percentiles) == 0 {
		return nil, nil, errors.New("report without percentiles (not a ringmq admin server?)")
	}
	return &rep, raw, nil
}

// getAdminJSON GETs path from the admin server at adminAddr and decodes the JSON answer into v.
func getAdminJSON(adminAddr, path string, timeout time.Duration, v any) ([]byte, error) {
	u := "http://" + adminAddr + path
	c := &http.Client{Timeout: timeout}
	resp, err := c.Get(u)
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w (is the broker's admin server on %s? see --admin)", u, err, adminAddr)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, latencyMaxReportBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", u, err)
	}
	if len(raw) > latencyMaxReportBytes {
		return nil, fmt.Errorf("%s: answer larger than %d bytes", u, latencyMaxReportBytes)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s: %s", u, resp.Status, strings.TrimSpace(string(raw)))
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return nil, fmt.Errorf("decode %s: %w", u, err)
	}
	return raw, nil
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
	// freeLast leaves the last column out of the alignment: free text, left as written.
	freeLast bool
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
		if t.freeLast {
			last := len(r) - 1
			fmt.Fprintln(tw, strings.Join(r[1:last], "\t")+"\t  "+r[last])
			continue
		}
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
