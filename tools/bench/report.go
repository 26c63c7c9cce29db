package bench

import (
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

// IntervalResult is one report interval (10 s by default).
type IntervalResult struct {
	ElapsedSec       float64        `json:"elapsedSec"`
	PublishRate      float64        `json:"publishRate"`
	PublishErrorRate float64        `json:"publishErrorRate"`
	ConsumeRate      float64        `json:"consumeRate"`
	Backlog          int64          `json:"backlog"`
	Publish          LatencySummary `json:"publish"`
	PublishDelay     LatencySummary `json:"publishDelay"`
	EndToEnd         LatencySummary `json:"endToEnd"`
}

// Result is the outcome of one run: the measurement phase only (warm-up excluded). The
// counts are of messages whose intended send time falls in the measurement phase.
// Latencies are in microseconds here; OMBResult converts to OMB's units.
type Result struct {
	Workload          string  `json:"workload"`
	Driver            string  `json:"driver"`
	MessageSize       int     `json:"messageSize"`
	Topics            int     `json:"topics"`
	Partitions        int     `json:"partitions"`
	ProducersPerTopic int     `json:"producersPerTopic"`
	ConsumersPerTopic int     `json:"consumersPerTopic"`
	FlushDiskType     string  `json:"flushDiskType,omitempty"`
	TargetRate        float64 `json:"targetRate"` // 0: maximum-rate search
	FinalTargetRate   float64 `json:"finalTargetRate"`
	DurationSec       float64 `json:"durationSec"`

	Sent    int64 `json:"sent"`
	Acked   int64 `json:"acked"`
	Errors  int64 `json:"errors"`
	Unacked int64 `json:"unacked"` // sent but neither acked nor failed by the end of the drain
	// NotSent were due in the measurement phase but never sent: the in-flight limit held
	// the pacer until the schedule ended (the system fell that far behind).
	NotSent  int64 `json:"notSent"`
	Received int64 `json:"received"`
	Foreign  int64 `json:"foreign"` // consumed messages without a ringmq-bench stamp
	// LastError is the text of the last failed send, if any.
	LastError string `json:"lastError,omitempty"`
	// ConsumeErrors counts failed fetches; LastConsumeError is the last one's text.
	ConsumeErrors    int64  `json:"consumeErrors"`
	LastConsumeError string `json:"lastConsumeError,omitempty"`

	PublishRate  float64          `json:"publishRate"` // acked msg/s over the measurement phase
	ConsumeRate  float64          `json:"consumeRate"`
	Publish      LatencySummary   `json:"publish"`
	PublishDelay LatencySummary   `json:"publishDelay"`
	EndToEnd     LatencySummary   `json:"endToEnd"`
	Intervals    []IntervalResult `json:"intervals"`

	// Floor is the null driver's run at the same rate: the generator's own share.
	Floor *Result `json:"floor,omitempty"`
	// Machine is the pacer alone at the same rate: the machine's wake-up jitter.
	Machine *MachineFloor `json:"machineFloor,omitempty"`
	// CPUIdlePoll says whether /dev/cpu_dma_latency was held at 0 during the run.
	CPUIdlePoll *CPUIdlePoll `json:"cpuIdlePoll,omitempty"`

	hists struct{ pub, delay, e2e *hdr.Histogram }
}

func (rep *reporter) result(endNs int64) *Result {
	r, w := rep.r, rep.r.w
	c := r.counters()
	secs := float64(endNs-rep.measureNs) / 1e9
	rate, _ := r.initialRate()
	if w.ProducerRate == 0 && r.cfg.RatePerSec == 0 {
		rate = 0
	}
	res := &Result{
		Workload: w.Name, Driver: r.cfg.Driver.Name(), MessageSize: w.MessageSize, Topics: w.Topics,
		Partitions: w.PartitionsPerTopic, ProducersPerTopic: w.ProducersPerTopic,
		ConsumersPerTopic: w.SubscriptionsPerTopic * w.ConsumerPerSubscription, FlushDiskType: w.FlushDiskType,
		TargetRate: rate, FinalTargetRate: math.Float64frombits(r.rateNow.Load()), DurationSec: secs,
		Sent: r.measured.sent.Load(), Acked: r.measured.acked.Load(), Errors: r.measured.errs.Load(),
		Unacked: c.sent - c.acked - c.errs, NotSent: r.measured.notSent.Load(), Received: r.measured.received.Load(), Foreign: r.foreign.Load(),
		Publish: summarize(rep.totPub), PublishDelay: summarize(rep.totDelay), EndToEnd: summarize(rep.totE2E),
		Intervals: rep.intervals,
	}
	if secs > 0 {
		res.PublishRate = float64(res.Acked) / secs
		res.ConsumeRate = float64(res.Received) / secs
	}
	if s := r.lastErr.Load(); s != nil {
		res.LastError = *s
	}
	res.ConsumeErrors = r.consumeErrs.Load()
	if s := r.lastConsumeErr.Load(); s != nil {
		res.LastConsumeError = *s
	}
	res.hists.pub, res.hists.delay, res.hists.e2e = rep.totPub, rep.totDelay, rep.totE2E
	return res
}

// trimFloat prints a number without trailing zeros: 99.9, 50, 0.125.
func trimFloat(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

// progressLine is the 10-second line: rate, errors, backlog, p99s.
func progressLine(phase string, ir IntervalResult, targetRate float64, msgSize int) string {
	tag := fmt.Sprintf("[%6.1fs]", ir.ElapsedSec)
	if phase != "" {
		tag += " " + phase
	}
	line := fmt.Sprintf("%s pub %9.1f msg/s %7.2f MiB/s (target %.0f) err %.1f/s | cons %9.1f msg/s backlog %d | pub p99 %s max %s ms | delay p99 %s ms",
		tag, ir.PublishRate, ir.PublishRate*float64(msgSize)/(1<<20), targetRate, ir.PublishErrorRate,
		ir.ConsumeRate, ir.Backlog, ms(ir.Publish.P(99)), ms(ir.Publish.MaxUs), ms(ir.PublishDelay.P(99)))
	if ir.EndToEnd.Count > 0 {
		line += fmt.Sprintf(" | e2e p99 %s ms", ms(ir.EndToEnd.P(99)))
	}
	return line
}

// ms formats microseconds as milliseconds with 3 decimals.
func ms(us float64) string { return strconv.FormatFloat(us/1e3, 'f', 3, 64) }

// tablePercentiles are the columns of the final table.
var tablePercentiles = []float64{50, 75, 95, 99, 99.6, 99.9, 99.99, 99.996}

// WriteTable prints the final table: one row per metric, latencies in microseconds, with
// the null-driver floor beside each row when the result has one.
func (res *Result) WriteTable(w io.Writer) {
	if res.Driver == MachineDriverName {
		res.writeMachineTable(w)
		return
	}
	fmt.Fprintf(w, "\n%s on %s: %d topic(s) x %d partitions, %d B, %d producer(s)/topic, %d consumer(s)/topic, %.1f s measured\n",
		res.Workload, res.Driver, res.Topics, res.Partitions, res.MessageSize, res.ProducersPerTopic, res.ConsumersPerTopic, res.DurationSec)
	if res.CPUIdlePoll != nil {
		fmt.Fprintf(w, "cpu idle poll: %s\n", res.CPUIdlePoll)
	}
	fmt.Fprintf(w, "publish %.1f msg/s (%.2f MiB/s), consume %.1f msg/s; sent %d acked %d errors %d unacked %d not sent %d received %d\n",
		res.PublishRate, res.PublishRate*float64(res.MessageSize)/(1<<20), res.ConsumeRate, res.Sent, res.Acked, res.Errors,
		res.Unacked, res.NotSent, res.Received)
	if res.LastError != "" {
		fmt.Fprintf(w, "last send error: %s\n", res.LastError)
	}
	if res.ConsumeErrors > 0 {
		fmt.Fprintf(w, "consume errors: %d, last: %s\n", res.ConsumeErrors, res.LastConsumeError)
	}
	writeHeaderRow(w)
	rows := []struct {
		name      string
		s, floorS *LatencySummary
	}{{"publish", &res.Publish, nil}, {"publish delay", &res.PublishDelay, nil}, {"end-to-end", &res.EndToEnd, nil}}
	if res.Floor != nil {
		rows[0].floorS, rows[1].floorS, rows[2].floorS = &res.Floor.Publish, &res.Floor.PublishDelay, &res.Floor.EndToEnd
	}
	for i, row := range rows {
		writeRow(w, row.name, row.s)
		if row.floorS != nil {
			writeRow(w, "  floor (null driver)", row.floorS)
		}
		if i == 1 && res.Machine != nil { // wake lateness reads like publish delay
			writeRow(w, "  floor (machine)", &res.Machine.WakeLateness)
		}
	}
	res.Machine.writeSpinRow(w)
}

func writeHeaderRow(w io.Writer) {
	var hdrRow strings.Builder
	fmt.Fprintf(&hdrRow, "%-22s", "latency (us)")
	for _, p := range tablePercentiles {
		fmt.Fprintf(&hdrRow, " %9s", "p"+trimFloat(p))
	}
	fmt.Fprintf(&hdrRow, " %9s %8s %8s", "max", "<=1ms", "<=10ms")
	fmt.Fprintln(w, hdrRow.String())
}

// writeMachineTable is the table of a machine floor run alone (--driver timer).
func (res *Result) writeMachineTable(w io.Writer) {
	m := res.Machine
	fmt.Fprintf(w, "\nmachine floor (%s): the pacer alone at %.0f wake-ups/s, %.1f s measured, nothing sent\n",
		res.Workload, m.RatePerSec, m.DurationSec)
	if res.CPUIdlePoll != nil {
		fmt.Fprintf(w, "cpu idle poll: %s\n", res.CPUIdlePoll)
	}
	writeHeaderRow(w)
	writeRow(w, "wake lateness", &m.WakeLateness)
	m.writeSpinRow(w)
}

// writeSpinRow prints the spin probe's gaps, if one ran.
func (m *MachineFloor) writeSpinRow(w io.Writer) {
	if m == nil || m.SpinProbe == nil {
		return
	}
	sp := m.SpinProbe
	writeRow(w, "  spin gaps (machine)", &sp.Gaps)
	fmt.Fprintf(w, "  (spin probe: %.1f s, gaps over %.0f us: %.1f/s, %.3f%% of the time the thread did not run)\n",
		sp.DurationSec, sp.ThresholdUs, sp.GapsPerSec, sp.LostFraction*100)
}

func writeRow(w io.Writer, name string, s *LatencySummary) {
	if s.Count == 0 {
		fmt.Fprintf(w, "%-22s (no samples)\n", name)
		return
	}
	fmt.Fprintf(w, "%-22s", name)
	for _, p := range tablePercentiles {
		fmt.Fprintf(w, " %9.0f", s.P(p))
	}
	fmt.Fprintf(w, " %9.0f %7.3f%% %7.4f%%\n", s.MaxUs, s.Under1ms*100, s.Under10ms*100)
}

// DurationValue is the measured duration as a time.Duration.
func (res *Result) DurationValue() time.Duration {
	return time.Duration(res.DurationSec * float64(time.Second))
}
