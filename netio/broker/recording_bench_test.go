package broker

import (
	"bytes"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/ringmq/ringmq/engine"
	"github.com/ringmq/ringmq/engine/meta"
	"github.com/ringmq/ringmq/perf"
)

// Shape of BenchmarkSyncSendRecording: closed-loop connections per broker, and the length of
// one round (one b.Loop iteration runs one round on each broker).
const (
	recBenchConns         = 8
	recBenchRoundDuration = 500 * time.Millisecond
	recBenchWarmDuration  = 300 * time.Millisecond
	recBenchBodyBytes     = 1024
)

// BenchmarkSyncSendRecording measures what stage recording (Config.Recorder) costs
// synchronous sends (the producer waits for each answer): two brokers in this process, A
// and B, each on its own store in the same directory and each driven by recBenchConns
// closed-loop connections sending 1 KiB SEND_MESSAGE over loopback. One iteration (use
// -benchtime Nx: N round pairs) runs one round on each, so both arms see the same load on
// this shared machine:
//
//	sched=together   A and B at the same time, for the same 500 ms (whatever else runs
//	                 hits both alike: the arm to read on a loaded machine)
//	sched=alternate  A then B, the order swapped every pair (each broker alone on the CPUs;
//	                 readable only on a quiet machine)
//
// A=on,B=off is the comparison; A=off,B=off is the A/A control, whose ratio is the
// set-up's own bias and noise (A is created first). flush=sync is the durable send the
// targets are stated for; flush=async (ack after the append) leaves the CPU as the only
// shared resource, so the recorder's CPU cost is not hidden behind fdatasync.
//
// Metrics per arm: sends/s over all its rounds and p50/p99 (us) of all its sends; tpA/B
// is the median over pairs of the pair's throughput ratio, p99A-B-us the difference of
// the arms' p99s; load1 is the 1-minute load average. allocs/op are per round pair and are
// the client goroutines' (TestSendPathAllocs proves the send path allocates nothing).
func BenchmarkSyncSendRecording(b *testing.B) {
	for _, flush := range []struct {
		name string
		mode engine.FlushMode
	}{{"sync", engine.SyncFlush}, {"async", engine.AsyncFlush}} {
		for _, arms := range []struct {
			name       string
			aRec, bRec bool
		}{{"A=on,B=off", true, false}, {"A=off,B=off", false, false}} {
			for _, sched := range []string{"together", "alternate"} {
				b.Run("flush="+flush.name+"/"+arms.name+"/sched="+sched, func(b *testing.B) {
					benchRecording(b, flush.mode, arms.aRec, arms.bRec, sched == "together")
				})
			}
		}
	}
}

func benchRecording(b *testing.B, mode engine.FlushMode, aRec, bRec, together bool) {
	dir := b.TempDir()
	armA := startRecArm(b, "A", dir+"/A", mode, aRec)
	armB := startRecArm(b, "B", dir+"/B", mode, bRec)
	for _, a := range []*recArm{armA, armB} { // pools, segments, connections, index
		if err := a.round(recBenchWarmDuration); err != nil {
			b.Fatalf("warm-up of %s: %v", a.name, err)
		}
		a.reset()
	}
	load0 := loadAverage1()
	var ratios, p99Diffs []float64
	b.ReportAllocs()
	pair := 0
	for b.Loop() {
		order := [2]*recArm{armA, armB}
		if pair%2 == 1 {
			order = [2]*recArm{armB, armA}
		}
		pair++
		if together {
			if err := runTogether(order, recBenchRoundDuration); err != nil {
				b.Fatal(err)
			}
		} else {
			for _, a := range order {
				if err := a.round(recBenchRoundDuration); err != nil {
					b.Fatalf("%s: %v", a.name, err)
				}
			}
		}
		ratios = append(ratios, armA.lastSendsPerSec/armB.lastSendsPerSec)
		p99Diffs = append(p99Diffs, float64(armA.lastP99Ns-armB.lastP99Ns)/1e3)
	}
	b.StopTimer()
	for _, a := range []*recArm{armA, armB} {
		b.ReportMetric(a.sendsPerSec(), a.name+"-sends/s")
		b.ReportMetric(float64(a.total.ValueAtQuantile(50))/1e3, a.name+"-p50-us")
		b.ReportMetric(float64(a.total.ValueAtQuantile(99))/1e3, a.name+"-p99-us")
	}
	b.ReportMetric(median(ratios), "tpA/B")
	b.ReportMetric(float64(armA.total.ValueAtQuantile(99)-armB.total.ValueAtQuantile(99))/1e3, "p99A-B-us")
	b.ReportMetric((load0+loadAverage1())/2, "load1")
	if len(ratios) > 0 {
		b.Logf("%d pairs of %v: tpA/B median %.3f (min %.3f, max %.3f); pair p99 A-B median %.0f us (min %.0f, max %.0f)",
			len(ratios), recBenchRoundDuration, median(ratios), slices.Min(ratios), slices.Max(ratios),
			median(p99Diffs), slices.Min(p99Diffs), slices.Max(p99Diffs))
	}
}

// recArm is one broker of BenchmarkSyncSendRecording with its closed-loop clients.
type recArm struct {
	name    string
	clients []*rawClient
	hists   []*hdrhistogram.Histogram // per client, this round
	errs    []error                   // per client, this round
	endNs   []int64                   // per client: when it finished this round, ns after the start
	total   *hdrhistogram.Histogram   // every measured send
	sends   int64                     // measured sends
	elapsed time.Duration             // measured rounds

	lastSendsPerSec float64 // the last round's
	lastP99Ns       int64
}

// startRecArm serves a broker flushing in mode under dir, with a running recorder when recording,
// creates its topic and connects its clients.
func startRecArm(b *testing.B, name, dir string, mode engine.FlushMode, recording bool) *recArm {
	var rec *perf.Recorder
	if recording {
		rec = perf.NewRecorder(perf.RecorderConfig{})
		rec.Start()
		b.Cleanup(func() { rec.Close() }) // after the broker's own cleanup (LIFO)
	}
	opt := func(c *Config, ec *engine.Config) { c.Recorder, ec.FlushMode = rec, mode }
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	tb := startBroker(b, dir, nil, opt)
	createTopic(b, tb.dial(nil), "REC", 1, meta.PermRW)
	frame := sendFrame("REC", bytes.Repeat([]byte{'x'}, recBenchBodyBytes))
	a := &recArm{name: name, total: perf.NewHdr()}
	for range recBenchConns {
		a.clients = append(a.clients, dialRaw(b, tb.addr.String(), frame))
		a.hists = append(a.hists, perf.NewHdr())
	}
	a.errs = make([]error, recBenchConns)
	a.endNs = make([]int64, recBenchConns)
	return a
}

// start runs every client until deadline, each on its own goroutine in wg.
func (a *recArm) start(wg *sync.WaitGroup, t0, deadline time.Time) {
	for i, c := range a.clients {
		wg.Go(func() {
			a.errs[i] = c.sendUntil(deadline, a.hists[i])
			a.endNs[i] = int64(time.Since(t0))
		})
	}
}

// finish folds the round's per-client histograms into the arm's figures.
func (a *recArm) finish() error {
	if err := errorsFirst(a.errs); err != nil {
		return err
	}
	round := perf.NewHdr()
	for _, h := range a.hists {
		round.Merge(h)
		h.Reset()
	}
	el := time.Duration(slices.Max(a.endNs))
	a.total.Merge(round)
	a.sends += round.TotalCount()
	a.elapsed += el
	a.lastSendsPerSec = float64(round.TotalCount()) / el.Seconds()
	a.lastP99Ns = round.ValueAtQuantile(99)
	return nil
}

// round runs one round of this arm alone.
func (a *recArm) round(d time.Duration) error {
	var wg sync.WaitGroup
	t0 := time.Now()
	a.start(&wg, t0, t0.Add(d))
	wg.Wait()
	return a.finish()
}

// runTogether runs one round of both arms at the same time.
func runTogether(arms [2]*recArm, d time.Duration) error {
	var wg sync.WaitGroup
	t0 := time.Now()
	for _, a := range arms {
		a.start(&wg, t0, t0.Add(d))
	}
	wg.Wait()
	for _, a := range arms {
		if err := a.finish(); err != nil {
			return fmt.Errorf("%s: %w", a.name, err)
		}
	}
	return nil
}

// reset forgets the warm-up.
func (a *recArm) reset() {
	a.total.Reset()
	a.sends, a.elapsed = 0, 0
}

func (a *recArm) sendsPerSec() float64 {
	if a.elapsed <= 0 {
		return 0
	}
	return float64(a.sends) / a.elapsed.Seconds()
}

// sendUntil sends closed-loop until deadline, recording each send's latency (ns) into h.
func (c *rawClient) sendUntil(deadline time.Time, h *hdrhistogram.Histogram) error {
	for t0 := time.Now(); t0.Before(deadline); t0 = time.Now() {
		hdr, err := c.roundTrip()
		if err != nil {
			return err
		}
		if !bytes.Contains(hdr, codeOK) {
			return fmt.Errorf("send failed: %s", hdr)
		}
		if err := h.RecordValue(int64(time.Since(t0))); err != nil {
			return err
		}
	}
	return nil
}

func errorsFirst(errs []error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// loadAverage1 is the 1-minute load average (Linux; 0 where /proc/loadavg is missing).
func loadAverage1() float64 {
	raw, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f, _, _ := strings.Cut(string(raw), " ")
	v, _ := strconv.ParseFloat(f, 64)
	return v
}
