package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

// The machine floor is what the pacer's wake-ups cost on this machine with nothing else of
// the generator running: the same locked thread (lockPacerThread) and the same absolute
// clock_nanosleep (sleepUntil) at the same rate, sending nothing, recording how late each
// wake-up was. Beside a null-driver floor it separates "the machine cannot wake on time"
// from "the generator adds latency": the null floor's publish delay should be close to the
// machine row, and its publish latency minus its delay is the generator's ack path.

// MachineDriverName is the command line's name for a machine floor run alone.
const MachineDriverName = "timer"

// spinGapThresholdNs is the smallest gap the spin probe counts: a thread reading the clock
// in a loop sees consecutive readings tens of ns apart unless it was not running.
const spinGapThresholdNs = 20_000

// MachineConfig describes one machine floor measurement.
type MachineConfig struct {
	RatePerSec float64       // wake-ups per second (the run's rate)
	Duration   time.Duration // measured
	Warmup     time.Duration // paced but not recorded
	// SpinProbe, when > 0, first spins one locked thread on the clock for this long and
	// records every gap over 20 us: time the (v)CPU did not run the thread at all.
	SpinProbe      time.Duration
	ReportInterval time.Duration // progress lines; DefaultReportInterval when 0
	Progress       io.Writer     // nil for none
}

// MachineFloor is the result: wake lateness (actual wake-up minus due time) in the same
// histogram and percentiles as the run's latencies, and the spin probe's gaps if one ran.
type MachineFloor struct {
	RatePerSec   float64        `json:"ratePerSec"`
	DurationSec  float64        `json:"durationSec"`
	WakeLateness LatencySummary `json:"wakeLateness"`
	SpinProbe    *SpinProbe     `json:"spinProbe,omitempty"`
}

// SpinProbe summarizes the gaps a spinning thread saw.
type SpinProbe struct {
	DurationSec float64 `json:"durationSec"`
	ThresholdUs float64 `json:"thresholdUs"`
	// Gaps are the gaps' lengths; Gaps.Count is how many there were.
	Gaps       LatencySummary `json:"gaps"`
	GapsPerSec float64        `json:"gapsPerSec"`
	// LostFraction is the share of the probe's wall time spent in gaps (not running).
	LostFraction float64 `json:"lostFraction"`
}

// MeasureMachineFloor runs the spin probe (if asked), then paces empty wake-ups at the
// rate for warm-up + duration on a locked thread. Cancelling ctx ends it early with what
// was measured so far.
func MeasureMachineFloor(ctx context.Context, cfg MachineConfig) (*MachineFloor, error) {
	if !(cfg.RatePerSec > 0) || cfg.RatePerSec > MaxRatePerSec {
		return nil, fmt.Errorf("%w: machine floor rate %g msg/s, want (0, %d]", ErrWorkload, cfg.RatePerSec, MaxRatePerSec)
	}
	if cfg.Duration <= 0 || cfg.Warmup < 0 {
		return nil, fmt.Errorf("%w: machine floor needs a positive duration and a warm-up >= 0", ErrWorkload)
	}
	mf := &MachineFloor{RatePerSec: cfg.RatePerSec}
	if cfg.SpinProbe > 0 {
		sp, err := runSpinProbe(ctx, cfg.SpinProbe)
		if err != nil {
			return nil, err
		}
		mf.SpinProbe = sp
		if cfg.Progress != nil {
			fmt.Fprintln(cfg.Progress, sp.line())
		}
	}
	interval := cfg.ReportInterval
	if interval <= 0 {
		interval = DefaultReportInterval
	}
	// Wake-ups due in the warm-up and in the measurement go to separate recorders, so the
	// measured count is exact (rate x duration) wherever the report ticks fall.
	warm, rec := newLatencyRecorder("wake-lateness-warmup"), newLatencyRecorder("wake-lateness")
	startNs := MonoNowNs() + int64(10*time.Millisecond)
	measureNs := startNs + int64(cfg.Warmup)
	endNs := measureNs + int64(cfg.Duration)
	stop := make(chan struct{})
	stopped := make(chan int64, 1) // where the pacer stopped (endNs when not cancelled)
	errc := make(chan error, 1)
	go func() { errc <- paceEmpty(startNs, measureNs, endNs, cfg.RatePerSec, warm, rec, stop, stopped) }()
	total := newHistogram()
	measuring := cfg.Warmup <= 0
	next := startNs + int64(interval)
	if !measuring {
		next = min(next, measureNs)
	}
	timer := time.NewTimer(time.Duration(max(next-MonoNowNs(), 0)))
	defer timer.Stop()
	emit := func(now int64, phase string) {
		h := warm.swap()
		if measuring {
			h = rec.swap()
			total.Merge(h)
		}
		if cfg.Progress != nil {
			fmt.Fprintln(cfg.Progress, machineProgressLine(float64(now-startNs)/1e9, phase, summarize(h)))
		}
	}
	cancelled := ctx.Done()
	for {
		select {
		case err := <-errc:
			if err != nil {
				return nil, err
			}
			end := <-stopped
			now := MonoNowNs()
			phase := ""
			if !measuring {
				phase = "warmup"
			}
			emit(now, phase)
			mf.DurationSec = float64(max(min(end, endNs)-measureNs, 0)) / 1e9
			mf.WakeLateness = summarize(total)
			return mf, nil
		case <-cancelled:
			close(stop)
			cancelled = nil
		case <-timer.C:
			now := MonoNowNs()
			switch {
			case !measuring && now >= measureNs:
				emit(now, "warmup")
				measuring = true
				next = now + int64(interval)
			default:
				emit(now, "")
				next += int64(interval)
			}
			timer.Reset(time.Duration(max(next-MonoNowNs(), 0)))
		}
	}
}

// paceEmpty is the pacer loop with nothing to send: the same thread set-up and sleep, the
// lateness of each wake-up recorded where the pacer records publish delay.
func paceEmpty(startNs, measureNs, endNs int64, rate float64, warm, rec *latencyRecorder, stop <-chan struct{}, stopped chan<- int64) error {
	if err := lockPacerThread(); err != nil {
		return fmt.Errorf("machine floor: %w", err)
	}
	sched := newSchedule(startNs, rate)
	for i := uint64(0); ; i++ {
		due := sched.at(i)
		if due >= endNs {
			stopped <- endNs
			return nil
		}
		select {
		case <-stop:
			stopped <- due
			return nil
		default:
		}
		sleepUntil(due)
		late := MonoNowNs() - due
		if due >= measureNs {
			rec.record(late)
		} else {
			warm.record(late)
		}
	}
}

// runSpinProbe spins one locked thread on the clock for d and reduces the gaps.
func runSpinProbe(ctx context.Context, d time.Duration) (*SpinProbe, error) {
	done := make(chan *spinGaps, 1)
	errc := make(chan error, 1)
	go func() {
		if err := lockPacerThread(); err != nil {
			errc <- fmt.Errorf("spin probe: %w", err)
			return
		}
		g := newSpinGaps(spinGapThresholdNs)
		start := MonoNowNs()
		end := start + int64(d)
		prev := start
		for n := 0; ; n++ {
			now := MonoNowNs()
			g.observe(prev, now)
			prev = now
			if now >= end || (n&0xFFFF == 0 && ctx.Err() != nil) {
				g.spanNs = now - start
				done <- g
				return
			}
		}
	}()
	select {
	case err := <-errc:
		return nil, err
	case g := <-done:
		return g.summary(), nil
	}
}

// spinGaps reduces a spinning thread's clock readings to the gaps between them.
type spinGaps struct {
	thresholdNs int64
	hist        *hdr.Histogram
	lostNs      int64
	spanNs      int64
}

func newSpinGaps(thresholdNs int64) *spinGaps {
	return &spinGaps{thresholdNs: thresholdNs, hist: newHistogram()}
}

// observe takes two consecutive clock readings; a gap over the threshold is recorded.
func (g *spinGaps) observe(prevNs, nowNs int64) {
	gap := nowNs - prevNs
	if gap <= g.thresholdNs {
		return
	}
	g.lostNs += gap
	_ = g.hist.RecordValue(min(gap, histHighestNs))
}

func (g *spinGaps) summary() *SpinProbe {
	sp := &SpinProbe{DurationSec: float64(g.spanNs) / 1e9, ThresholdUs: float64(g.thresholdNs) / 1e3, Gaps: summarize(g.hist)}
	if g.spanNs > 0 {
		sp.GapsPerSec = float64(sp.Gaps.Count) / sp.DurationSec
		sp.LostFraction = float64(g.lostNs) / float64(g.spanNs)
	}
	return sp
}

func (sp *SpinProbe) line() string {
	if sp.Gaps.Count == 0 {
		return fmt.Sprintf("spin probe: %.1f s, no gap over %.0f us", sp.DurationSec, sp.ThresholdUs)
	}
	return fmt.Sprintf("spin probe: %.1f s, %d gaps over %.0f us (%.1f/s, %.3f%% of the time not running): p50 %s p99 %s max %s ms",
		sp.DurationSec, sp.Gaps.Count, sp.ThresholdUs, sp.GapsPerSec, sp.LostFraction*100,
		ms(sp.Gaps.P(50)), ms(sp.Gaps.P(99)), ms(sp.Gaps.MaxUs))
}

func machineProgressLine(elapsedSec float64, phase string, s LatencySummary) string {
	tag := fmt.Sprintf("[%6.1fs] machine", elapsedSec)
	if phase != "" {
		tag += " " + phase
	}
	if s.Count == 0 {
		return tag + " (no wake-ups)"
	}
	return fmt.Sprintf("%s %d wake-ups | wake late p50 %s p99 %s p99.9 %s max %s ms",
		tag, s.Count, ms(s.P(50)), ms(s.P(99)), ms(s.P(99.9)), ms(s.MaxUs))
}

// errNoMachineRate is returned when the machine floor has no rate to run at.
var errNoMachineRate = errors.New("the machine floor needs a fixed rate: give --rate or a workload with producerRate > 0")

// MachineRate picks the machine floor's rate for a standalone run: --rate, else the
// workload's producerRate.
func MachineRate(w *Workload, rate float64) (float64, error) {
	if rate > 0 {
		return rate, nil
	}
	if w.ProducerRate > 0 {
		return w.ProducerRate, nil
	}
	return 0, errNoMachineRate
}

// MachineResult wraps a machine floor run alone (--driver timer) as a Result, so it
// prints and writes JSON like any other: no messages, the floor under Machine.
func MachineResult(w *Workload, m *MachineFloor, idle CPUIdlePoll) *Result {
	return &Result{
		Workload: w.Name, Driver: MachineDriverName, MessageSize: w.MessageSize, Topics: w.Topics,
		Partitions: w.PartitionsPerTopic, ProducersPerTopic: w.ProducersPerTopic, TargetRate: m.RatePerSec,
		FinalTargetRate: m.RatePerSec, DurationSec: m.DurationSec, Machine: m, CPUIdlePoll: &idle,
	}
}
