package bench

import (
	"context"
	"fmt"
	"math"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

// backlogCheckInterval is how often the backlog mode looks whether the backlog is built.
const backlogCheckInterval = time.Second

// reporter runs on Run's goroutine: at each report interval it swaps the interval
// histograms out, prints a progress line, and (in the measurement phase) merges them into
// the totals, appends the per-interval arrays and writes the HDR log.
type reporter struct {
	r                  *run
	startNs, measureNs int64
	interval           time.Duration
	timer              *time.Timer
	measuring          bool
	intervalStartNs    int64
	nextReportNs       int64
	last               counters
	totPub, totDelay   *hdr.Histogram
	totE2E             *hdr.Histogram
	intervals          []IntervalResult
	log                *hdrLog
	backlogPending     bool
}

type counters struct{ sent, acked, errs, received int64 }

func (r *run) counters() counters {
	return counters{sent: r.sent.Load(), acked: r.acked.Load(), errs: r.errs.Load(), received: r.received.Load()}
}

func newReporter(r *run, startNs, measureNs int64) *reporter {
	interval := r.cfg.ReportInterval
	if interval <= 0 {
		interval = DefaultReportInterval
	}
	rep := &reporter{
		r: r, startNs: startNs, measureNs: measureNs, interval: interval,
		measuring: measureNs <= startNs, intervalStartNs: startNs, nextReportNs: startNs + int64(interval),
		totPub: newHistogram(), totDelay: newHistogram(), totE2E: newHistogram(),
		backlogPending: r.w.ConsumerBacklogSizeGB > 0,
	}
	if r.cfg.HDRLog != nil {
		rep.log = &hdrLog{w: r.cfg.HDRLog}
	}
	rep.timer = time.NewTimer(rep.untilNextEvent(MonoNowNs()))
	return rep
}

// monoToWall converts a CLOCK_MONOTONIC reading to wall-clock time.
func monoToWall(ns int64) time.Time { return clockEpoch.Add(time.Duration(ns - monoBaseNs)) }

func (rep *reporter) writeLogHeader() error {
	if rep.log == nil {
		return nil
	}
	w := rep.r.w
	comment := fmt.Sprintf("ringmq-bench driver=%s workload=%s messageSize=%d values=ns", rep.r.cfg.Driver.Name(), w.Name, w.MessageSize)
	return rep.log.header(monoToWall(rep.measureNs), comment)
}

func (rep *reporter) untilNextEvent(now int64) time.Duration {
	next := rep.nextReportNs
	if !rep.measuring {
		next = min(next, rep.measureNs)
	}
	if rep.backlogPending {
		next = min(next, now+int64(backlogCheckInterval))
	}
	return time.Duration(max(next-now, 0))
}

// tick handles whatever is due: backlog release, the end of warm-up, a report.
func (rep *reporter) tick(ctx context.Context) error {
	now := MonoNowNs()
	if rep.backlogPending {
		if err := rep.checkBacklog(ctx); err != nil {
			return err
		}
	}
	switch {
	case !rep.measuring && now >= rep.measureNs:
		rep.emit(now, "warmup")
		rep.measuring = true
		rep.nextReportNs = now + int64(rep.interval)
	case now >= rep.nextReportNs:
		if err := rep.emitMeasured(now); err != nil {
			return err
		}
		rep.nextReportNs += int64(rep.interval)
	}
	rep.timer.Reset(rep.untilNextEvent(MonoNowNs()))
	return nil
}

// checkBacklog starts the consumers once the unconsumed bytes reach consumerBacklogSizeGB.
func (rep *reporter) checkBacklog(ctx context.Context) error {
	w := rep.r.w
	if rep.r.acked.Load()*int64(w.SubscriptionsPerTopic)*int64(w.MessageSize) < w.BacklogBytes() {
		return nil
	}
	rep.backlogPending = false
	if rep.r.cfg.Progress != nil {
		fmt.Fprintf(rep.r.cfg.Progress, "backlog of %.2f GiB built; starting consumers\n", w.ConsumerBacklogSizeGB)
	}
	return rep.r.startConsumers(ctx)
}

// emit closes the interval ending now and prints its progress line.
func (rep *reporter) emit(now int64, phase string) (IntervalResult, [3]*hdr.Histogram) {
	r := rep.r
	hs := [3]*hdr.Histogram{r.pub.swap(), r.delay.swap(), r.e2e.swap()}
	c := r.counters()
	secs := float64(now-rep.intervalStartNs) / 1e9
	ir := IntervalResult{
		ElapsedSec:       float64(now-rep.startNs) / 1e9,
		PublishRate:      float64(c.acked-rep.last.acked) / secs,
		PublishErrorRate: float64(c.errs-rep.last.errs) / secs,
		ConsumeRate:      float64(c.received-rep.last.received) / secs,
		Backlog:          max(c.acked*int64(r.w.SubscriptionsPerTopic)-c.received, 0),
		Publish:          summarize(hs[0]),
		PublishDelay:     summarize(hs[1]),
		EndToEnd:         summarize(hs[2]),
	}
	if r.cfg.Progress != nil {
		fmt.Fprintln(r.cfg.Progress, progressLine(phase, ir, math.Float64frombits(r.rateNow.Load()), r.w.MessageSize))
	}
	rep.last = c
	rep.intervalStartNs = now
	return ir, hs
}

// emitMeasured emits an interval of the measurement phase and keeps it.
func (rep *reporter) emitMeasured(now int64) error {
	from := rep.intervalStartNs
	ir, hs := rep.emit(now, "")
	rep.intervals = append(rep.intervals, ir)
	rep.totPub.Merge(hs[0])
	rep.totDelay.Merge(hs[1])
	rep.totE2E.Merge(hs[2])
	if rep.log == nil {
		return nil
	}
	for i, tag := range []string{"publish", "publish-delay", "end-to-end"} {
		if err := rep.log.interval(tag, monoToWall(from), time.Duration(now-from), hs[i]); err != nil {
			return err
		}
	}
	return nil
}

// finish closes the last interval (it ends after the drain) and builds the result.
func (rep *reporter) finish(endNs int64) (*Result, error) {
	rep.timer.Stop()
	now := MonoNowNs()
	if !rep.measuring { // the run ended during warm-up (cancelled)
		rep.emit(now, "warmup")
		rep.measuring = true
	} else if err := rep.emitMeasured(now); err != nil {
		return nil, err
	}
	return rep.result(endNs), nil
}
