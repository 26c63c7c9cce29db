package bench

import (
	"encoding/json"
	"fmt"
	"os"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

// OMBResult has the field names and units of OpenMessaging Benchmark's TestResult, so
// OMB's charts and scripts read ringmq-bench output: publish and end-to-end latencies in
// milliseconds (doubles), publish delay in microseconds (integers), rates in msg/s, one
// array element per report interval. ringmq's additions follow the OMB fields.
type OMBResult struct {
	Workload          string `json:"workload"`
	Driver            string `json:"driver"`
	MessageSize       int64  `json:"messageSize"`
	Topics            int    `json:"topics"`
	Partitions        int    `json:"partitions"`
	ProducersPerTopic int    `json:"producersPerTopic"`
	ConsumersPerTopic int    `json:"consumersPerTopic"`

	PublishRate      []float64 `json:"publishRate"`
	PublishErrorRate []float64 `json:"publishErrorRate"`
	ConsumeRate      []float64 `json:"consumeRate"`
	Backlog          []int64   `json:"backlog"`

	PublishLatencyAvg      []float64 `json:"publishLatencyAvg"`
	PublishLatency50pct    []float64 `json:"publishLatency50pct"`
	PublishLatency75pct    []float64 `json:"publishLatency75pct"`
	PublishLatency95pct    []float64 `json:"publishLatency95pct"`
	PublishLatency99pct    []float64 `json:"publishLatency99pct"`
	PublishLatency999pct   []float64 `json:"publishLatency999pct"`
	PublishLatency9999pct  []float64 `json:"publishLatency9999pct"`
	PublishLatency99999pct []float64 `json:"publishLatency99999pct"`
	PublishLatencyMax      []float64 `json:"publishLatencyMax"`

	PublishDelayLatencyAvg      []float64 `json:"publishDelayLatencyAvg"`
	PublishDelayLatency50pct    []int64   `json:"publishDelayLatency50pct"`
	PublishDelayLatency75pct    []int64   `json:"publishDelayLatency75pct"`
	PublishDelayLatency95pct    []int64   `json:"publishDelayLatency95pct"`
	PublishDelayLatency99pct    []int64   `json:"publishDelayLatency99pct"`
	PublishDelayLatency999pct   []int64   `json:"publishDelayLatency999pct"`
	PublishDelayLatency9999pct  []int64   `json:"publishDelayLatency9999pct"`
	PublishDelayLatency99999pct []int64   `json:"publishDelayLatency99999pct"`
	PublishDelayLatencyMax      []int64   `json:"publishDelayLatencyMax"`

	AggregatedPublishLatencyAvg      float64 `json:"aggregatedPublishLatencyAvg"`
	AggregatedPublishLatency50pct    float64 `json:"aggregatedPublishLatency50pct"`
	AggregatedPublishLatency75pct    float64 `json:"aggregatedPublishLatency75pct"`
	AggregatedPublishLatency95pct    float64 `json:"aggregatedPublishLatency95pct"`
	AggregatedPublishLatency99pct    float64 `json:"aggregatedPublishLatency99pct"`
	AggregatedPublishLatency999pct   float64 `json:"aggregatedPublishLatency999pct"`
	AggregatedPublishLatency9999pct  float64 `json:"aggregatedPublishLatency9999pct"`
	AggregatedPublishLatency99999pct float64 `json:"aggregatedPublishLatency99999pct"`
	AggregatedPublishLatencyMax      float64 `json:"aggregatedPublishLatencyMax"`

	AggregatedPublishDelayLatencyAvg      float64 `json:"aggregatedPublishDelayLatencyAvg"`
	AggregatedPublishDelayLatency50pct    int64   `json:"aggregatedPublishDelayLatency50pct"`
	AggregatedPublishDelayLatency75pct    int64   `json:"aggregatedPublishDelayLatency75pct"`
	AggregatedPublishDelayLatency95pct    int64   `json:"aggregatedPublishDelayLatency95pct"`
	AggregatedPublishDelayLatency99pct    int64   `json:"aggregatedPublishDelayLatency99pct"`
	AggregatedPublishDelayLatency999pct   int64   `json:"aggregatedPublishDelayLatency999pct"`
	AggregatedPublishDelayLatency9999pct  int64   `json:"aggregatedPublishDelayLatency9999pct"`
	AggregatedPublishDelayLatency99999pct int64   `json:"aggregatedPublishDelayLatency99999pct"`
	AggregatedPublishDelayLatencyMax      int64   `json:"aggregatedPublishDelayLatencyMax"`

	AggregatedPublishLatencyQuantiles      map[string]float64 `json:"aggregatedPublishLatencyQuantiles"`
	AggregatedPublishDelayLatencyQuantiles map[string]int64   `json:"aggregatedPublishDelayLatencyQuantiles"`

	EndToEndLatencyAvg      []float64 `json:"endToEndLatencyAvg"`
	EndToEndLatency50pct    []float64 `json:"endToEndLatency50pct"`
	EndToEndLatency75pct    []float64 `json:"endToEndLatency75pct"`
	EndToEndLatency95pct    []float64 `json:"endToEndLatency95pct"`
	EndToEndLatency99pct    []float64 `json:"endToEndLatency99pct"`
	EndToEndLatency999pct   []float64 `json:"endToEndLatency999pct"`
	EndToEndLatency9999pct  []float64 `json:"endToEndLatency9999pct"`
	EndToEndLatency99999pct []float64 `json:"endToEndLatency99999pct"`
	EndToEndLatencyMax      []float64 `json:"endToEndLatencyMax"`

	AggregatedEndToEndLatencyQuantiles map[string]float64 `json:"aggregatedEndToEndLatencyQuantiles"`

	AggregatedEndToEndLatencyAvg      float64 `json:"aggregatedEndToEndLatencyAvg"`
	AggregatedEndToEndLatency50pct    float64 `json:"aggregatedEndToEndLatency50pct"`
	AggregatedEndToEndLatency75pct    float64 `json:"aggregatedEndToEndLatency75pct"`
	AggregatedEndToEndLatency95pct    float64 `json:"aggregatedEndToEndLatency95pct"`
	AggregatedEndToEndLatency99pct    float64 `json:"aggregatedEndToEndLatency99pct"`
	AggregatedEndToEndLatency999pct   float64 `json:"aggregatedEndToEndLatency999pct"`
	AggregatedEndToEndLatency9999pct  float64 `json:"aggregatedEndToEndLatency9999pct"`
	AggregatedEndToEndLatency99999pct float64 `json:"aggregatedEndToEndLatency99999pct"`
	AggregatedEndToEndLatencyMax      float64 `json:"aggregatedEndToEndLatencyMax"`

	// ringmq's additions: the SLO percentiles and fractions, and the run's counts.
	AggregatedPublishLatency996pct    float64    `json:"aggregatedPublishLatency996pct"`
	AggregatedPublishLatency99996pct  float64    `json:"aggregatedPublishLatency99996pct"`
	PublishUnder1msFraction           float64    `json:"publishUnder1msFraction"`
	PublishUnder10msFraction          float64    `json:"publishUnder10msFraction"`
	AggregatedEndToEndLatency996pct   float64    `json:"aggregatedEndToEndLatency996pct"`
	AggregatedEndToEndLatency99996pct float64    `json:"aggregatedEndToEndLatency99996pct"`
	EndToEndUnder1msFraction          float64    `json:"endToEndUnder1msFraction"`
	EndToEndUnder10msFraction         float64    `json:"endToEndUnder10msFraction"`
	AggregatedPublishRate             float64    `json:"aggregatedPublishRate"`
	AggregatedConsumeRate             float64    `json:"aggregatedConsumeRate"`
	Run                               RunCounts  `json:"ringmqRun"`
	Floor                             *OMBResult `json:"ringmqGeneratorFloor,omitempty"`
	// MachineFloor is the pacer alone at the same rate (wake lateness, in us like the
	// summaries it is made of); CPUIdlePoll whether /dev/cpu_dma_latency was held at 0.
	MachineFloor *MachineFloor `json:"ringmqMachineFloor,omitempty"`
	CPUIdlePoll  *CPUIdlePoll  `json:"ringmqCpuIdlePoll,omitempty"`
}

// RunCounts are the totals behind the rates.
type RunCounts struct {
	TargetRate      float64 `json:"targetRate"`
	FinalTargetRate float64 `json:"finalTargetRate"`
	DurationSec     float64 `json:"durationSec"`
	FlushDiskType   string  `json:"flushDiskType,omitempty"`
	Sent            int64   `json:"sent"`
	Acked           int64   `json:"acked"`
	Errors          int64   `json:"errors"`
	Unacked         int64   `json:"unacked"`
	NotSent         int64   `json:"notSent"`
	Received        int64   `json:"received"`
	LastError       string  `json:"lastError,omitempty"`
	ConsumeErrors   int64   `json:"consumeErrors"`
}

// quantileLadder is the percentile list of the aggregated quantile maps.
var quantileLadder = []float64{1, 5, 10, 25, 50, 75, 90, 95, 99, 99.5, 99.6, 99.9, 99.95, 99.99, 99.996, 99.999, 100}

// OMB converts the result to OMB's TestResult shape.
func (res *Result) OMB() *OMBResult {
	o := &OMBResult{
		Workload: res.Workload, Driver: res.Driver, MessageSize: int64(res.MessageSize), Topics: res.Topics,
		Partitions: res.Partitions, ProducersPerTopic: res.ProducersPerTopic, ConsumersPerTopic: res.ConsumersPerTopic,
		AggregatedPublishRate: res.PublishRate, AggregatedConsumeRate: res.ConsumeRate,
		Run: RunCounts{TargetRate: res.TargetRate, FinalTargetRate: res.FinalTargetRate, DurationSec: res.DurationSec,
			FlushDiskType: res.FlushDiskType, Sent: res.Sent, Acked: res.Acked, Errors: res.Errors, Unacked: res.Unacked, NotSent: res.NotSent,
			Received: res.Received, LastError: res.LastError, ConsumeErrors: res.ConsumeErrors},
	}
	o.fillIntervals(res.Intervals)
	p, d, e := res.Publish, res.PublishDelay, res.EndToEnd
	o.AggregatedPublishLatencyAvg, o.AggregatedPublishLatency50pct, o.AggregatedPublishLatency75pct = p.AvgUs/1e3, p.P(50)/1e3, p.P(75)/1e3
	o.AggregatedPublishLatency95pct, o.AggregatedPublishLatency99pct, o.AggregatedPublishLatency999pct = p.P(95)/1e3, p.P(99)/1e3, p.P(99.9)/1e3
	o.AggregatedPublishLatency9999pct, o.AggregatedPublishLatency99999pct, o.AggregatedPublishLatencyMax = p.P(99.99)/1e3, p.P(99.999)/1e3, p.MaxUs/1e3
	o.AggregatedPublishDelayLatencyAvg, o.AggregatedPublishDelayLatency50pct = d.AvgUs, int64(d.P(50))
	o.AggregatedPublishDelayLatency75pct, o.AggregatedPublishDelayLatency95pct = int64(d.P(75)), int64(d.P(95))
	o.AggregatedPublishDelayLatency99pct, o.AggregatedPublishDelayLatency999pct = int64(d.P(99)), int64(d.P(99.9))
	o.AggregatedPublishDelayLatency9999pct, o.AggregatedPublishDelayLatency99999pct = int64(d.P(99.99)), int64(d.P(99.999))
	o.AggregatedPublishDelayLatencyMax = int64(d.MaxUs)
	o.AggregatedEndToEndLatencyAvg, o.AggregatedEndToEndLatency50pct, o.AggregatedEndToEndLatency75pct = e.AvgUs/1e3, e.P(50)/1e3, e.P(75)/1e3
	o.AggregatedEndToEndLatency95pct, o.AggregatedEndToEndLatency99pct, o.AggregatedEndToEndLatency999pct = e.P(95)/1e3, e.P(99)/1e3, e.P(99.9)/1e3
	o.AggregatedEndToEndLatency9999pct, o.AggregatedEndToEndLatency99999pct, o.AggregatedEndToEndLatencyMax = e.P(99.99)/1e3, e.P(99.999)/1e3, e.MaxUs/1e3
	o.AggregatedPublishLatency996pct, o.AggregatedPublishLatency99996pct = p.P(99.6)/1e3, p.P(99.996)/1e3
	o.PublishUnder1msFraction, o.PublishUnder10msFraction = p.Under1ms, p.Under10ms
	o.AggregatedEndToEndLatency996pct, o.AggregatedEndToEndLatency99996pct = e.P(99.6)/1e3, e.P(99.996)/1e3
	o.EndToEndUnder1msFraction, o.EndToEndUnder10msFraction = e.Under1ms, e.Under10ms
	o.AggregatedPublishLatencyQuantiles = quantilesMs(res.hists.pub)
	o.AggregatedEndToEndLatencyQuantiles = quantilesMs(res.hists.e2e)
	o.AggregatedPublishDelayLatencyQuantiles = make(map[string]int64)
	for k, v := range quantilesMs(res.hists.delay) {
		o.AggregatedPublishDelayLatencyQuantiles[k] = int64(v * 1e3)
	}
	if res.Floor != nil {
		o.Floor = res.Floor.OMB()
	}
	o.MachineFloor, o.CPUIdlePoll = res.Machine, res.CPUIdlePoll
	return o
}

func (o *OMBResult) fillIntervals(ivs []IntervalResult) {
	ns := func(s LatencySummary) []float64 {
		return []float64{s.AvgUs, s.P(50), s.P(75), s.P(95), s.P(99), s.P(99.9), s.P(99.99), s.P(99.999), s.MaxUs}
	}
	for _, iv := range ivs {
		o.PublishRate = append(o.PublishRate, iv.PublishRate)
		o.PublishErrorRate = append(o.PublishErrorRate, iv.PublishErrorRate)
		o.ConsumeRate = append(o.ConsumeRate, iv.ConsumeRate)
		o.Backlog = append(o.Backlog, iv.Backlog)
		msPtrs := []*[]float64{&o.PublishLatencyAvg, &o.PublishLatency50pct, &o.PublishLatency75pct, &o.PublishLatency95pct,
			&o.PublishLatency99pct, &o.PublishLatency999pct, &o.PublishLatency9999pct, &o.PublishLatency99999pct, &o.PublishLatencyMax}
		for i, v := range ns(iv.Publish) {
			*msPtrs[i] = append(*msPtrs[i], v/1e3)
		}
		e2ePtrs := []*[]float64{&o.EndToEndLatencyAvg, &o.EndToEndLatency50pct, &o.EndToEndLatency75pct, &o.EndToEndLatency95pct,
			&o.EndToEndLatency99pct, &o.EndToEndLatency999pct, &o.EndToEndLatency9999pct, &o.EndToEndLatency99999pct, &o.EndToEndLatencyMax}
		for i, v := range ns(iv.EndToEnd) {
			*e2ePtrs[i] = append(*e2ePtrs[i], v/1e3)
		}
		d := ns(iv.PublishDelay)
		o.PublishDelayLatencyAvg = append(o.PublishDelayLatencyAvg, d[0])
		usPtrs := []*[]int64{&o.PublishDelayLatency50pct, &o.PublishDelayLatency75pct, &o.PublishDelayLatency95pct,
			&o.PublishDelayLatency99pct, &o.PublishDelayLatency999pct, &o.PublishDelayLatency9999pct,
			&o.PublishDelayLatency99999pct, &o.PublishDelayLatencyMax}
		for i, v := range d[1:] {
			*usPtrs[i] = append(*usPtrs[i], int64(v))
		}
	}
}

// quantilesMs maps "99.9" -> value in ms over quantileLadder (empty for no samples).
func quantilesMs(h *hdr.Histogram) map[string]float64 {
	m := make(map[string]float64, len(quantileLadder))
	if h == nil || h.TotalCount() == 0 {
		return m
	}
	for _, q := range quantileLadder {
		m[javaDouble(q)] = float64(h.ValueAtQuantile(q)) / 1e6
	}
	return m
}

// javaDouble prints a percentile the way Jackson prints a Double map key ("50.0", "99.9").
func javaDouble(v float64) string {
	s := trimFloat(v)
	for _, c := range s {
		if c == '.' {
			return s
		}
	}
	return s + ".0"
}

// WriteJSON writes the OMB-shaped result to path.
func (res *Result) WriteJSON(path string) error {
	b, err := json.MarshalIndent(res.OMB(), "", "  ")
	if err != nil {
		return fmt.Errorf("encode result: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write result: %w", err)
	}
	return nil
}
