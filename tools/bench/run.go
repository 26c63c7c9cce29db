package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Run limits and defaults.
const (
	// MaxInFlightPerProducer bounds sends awaiting an answer per producer. At the limit the
	// pacer waits for an answer; the wait shows up as publish delay, as in OMB.
	MaxInFlightPerProducer = 8192
	// DefaultDrainTimeout bounds the wait for outstanding acks and consumer catch-up after
	// the last scheduled send.
	DefaultDrainTimeout = 10 * time.Second
	// DefaultReportInterval is the progress and result-array period (OMB: 10 s).
	DefaultReportInterval = 10 * time.Second
	// searchStartRatePerSec is where the maximum-rate search starts without --rate.
	searchStartRatePerSec = 1000
)

// Config describes one run.
type Config struct {
	Workload *Workload
	Driver   Driver
	// RatePerSec, when > 0, replaces producerRate with this fixed rate (also for a
	// workload that asks for the maximum-rate search).
	RatePerSec float64
	// Duration overrides testDurationMinutes when > 0.
	Duration time.Duration
	// Warmup overrides warmupDurationMinutes when WarmupSet.
	Warmup    time.Duration
	WarmupSet bool
	// ReportInterval overrides DefaultReportInterval when > 0 (tests use short ones).
	ReportInterval time.Duration
	// DrainTimeout overrides DefaultDrainTimeout when > 0.
	DrainTimeout time.Duration
	Progress     io.Writer // progress lines; nil for none
	HDRLog       io.Writer // HdrHistogram interval log; nil for none
	Seed         uint64    // payload randomness and topic names; 0 picks one
}

// run is the state of one Run. Counters are atomics because acks, consumer messages and
// the reporter touch them from different goroutines.
type run struct {
	cfg       Config
	w         *Workload
	topics    []string
	pool      *payloadPool
	producers []*producerState
	consumers []Consumer
	consMu    sync.Mutex // guards consumers while the backlog mode starts them late

	pub, delay, e2e *latencyRecorder

	sent, acked, errs, received, foreign atomic.Int64
	consumeErrs                          atomic.Int64
	// measured counts only messages intended at or after measureNs, so the result's
	// counts are exact however the warm-up boundary cuts through messages in flight.
	measureNs               atomic.Int64
	measured                struct{ sent, acked, errs, received, notSent atomic.Int64 }
	lastErr, lastConsumeErr atomic.Pointer[string]

	rateNow     atomic.Uint64 // current target rate, float64 bits (reporting only)
	abort       chan struct{} // closed when the pacer must stop at once (context cancelled)
	ended       chan struct{} // closed when the schedule's end time passes
	stoppedAtNs atomic.Int64  // intended time of the first message not sent after an abort
	abortOnce   sync.Once
}

// producerState is one producer: the driver's handle, its key chooser, its send buffer
// (pacer-owned) and its in-flight semaphore. It is the Completion of its own sends.
type producerState struct {
	r        *run
	index    int
	p        Producer
	keys     *keyChooser
	sentN    uint64 // messages this producer sent (pacer-owned)
	buf      []byte
	msg      Message
	inflight chan struct{}
}

// Done records the publish latency from the intended send time carried in the token.
func (ps *producerState) Done(token uint64, err error) {
	now := MonoNowNs()
	<-ps.inflight
	inMeasure := int64(token) >= ps.r.measureNs.Load()
	if err != nil {
		ps.r.noteError(err, inMeasure)
		return
	}
	ps.r.acked.Add(1)
	if inMeasure {
		ps.r.measured.acked.Add(1)
	}
	ps.r.pub.record(now - int64(token))
}

func (r *run) noteError(err error, inMeasure bool) {
	r.errs.Add(1)
	if inMeasure {
		r.measured.errs.Add(1)
	}
	s := err.Error()
	r.lastErr.Store(&s)
}

// sink is every consumer's Sink: end-to-end latency from the payload's intended time.
type sink struct{ r *run }

func (s sink) Received(payload []byte, recvNs int64) {
	intended, _, ok := ReadPayloadStamp(payload)
	if !ok {
		s.r.foreign.Add(1)
		return
	}
	s.r.received.Add(1)
	if intended >= s.r.measureNs.Load() {
		s.r.measured.received.Add(1)
	}
	s.r.e2e.record(recvNs - intended)
}

func (s sink) ConsumeError(err error) {
	s.r.consumeErrs.Add(1)
	msg := err.Error()
	s.r.lastConsumeErr.Store(&msg)
}

// Run executes one workload against cfg.Driver: create topics, start consumers and
// producers, pace the sends open loop through warm-up and measurement, drain, report.
// Errors from set-up (unreachable system, topic creation) come before any load.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	r, err := newRun(cfg)
	if err != nil {
		return nil, err
	}
	if err := cfg.Driver.CreateTopics(ctx, r.topics, r.w.PartitionsPerTopic); err != nil {
		return nil, fmt.Errorf("create topics: %w", err)
	}
	defer r.closeClients()
	if r.w.ConsumerBacklogSizeGB == 0 {
		if err := r.startConsumers(ctx); err != nil {
			return nil, err
		}
	}
	if err := r.openProducers(ctx); err != nil {
		return nil, err
	}
	return r.execute(ctx)
}

func newRun(cfg Config) (*run, error) {
	w := cfg.Workload
	if w == nil || cfg.Driver == nil {
		return nil, errors.New("run: workload and driver are required")
	}
	if err := w.Validate(); err != nil {
		return nil, err
	}
	if cfg.RatePerSec < 0 || cfg.RatePerSec > MaxRatePerSec {
		return nil, fmt.Errorf("%w: rate %g msg/s, want up to %d (the pacer's limit)", ErrWorkload, cfg.RatePerSec, MaxRatePerSec)
	}
	if cfg.Seed == 0 {
		cfg.Seed = rand.Uint64() | 1
	}
	pool, err := newPayloadPool(w, cfg.Seed)
	if err != nil {
		return nil, err
	}
	r := &run{
		cfg: cfg, w: w, pool: pool, abort: make(chan struct{}), ended: make(chan struct{}),
		pub: newLatencyRecorder("publish"), delay: newLatencyRecorder("publish-delay"), e2e: newLatencyRecorder("end-to-end"),
	}
	r.topics = topicNames(w.Name, w.Topics, cfg.Seed)
	return r, nil
}

// topicNames makes fresh topic names (RocketMQ and NATS safe: [A-Za-z0-9_-]) so every run
// starts on empty queues.
func topicNames(workload string, n int, seed uint64) []string {
	var b strings.Builder
	for _, c := range workload {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_':
			b.WriteRune(c)
		default:
			b.WriteByte('_')
		}
	}
	base := b.String()
	if len(base) > 40 {
		base = base[:40]
	}
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("rb_%s_%06x_%d", base, seed&0xFFFFFF, i)
	}
	return names
}

func (r *run) openProducers(ctx context.Context) error {
	for t, topic := range r.topics {
		for i := 0; i < r.w.ProducersPerTopic; i++ {
			p, err := r.cfg.Driver.NewProducer(ctx, topic, i)
			if err != nil {
				return fmt.Errorf("open producer %d of %s: %w", i, topic, err)
			}
			limit := MaxInFlightPerProducer
			if l, ok := p.(InFlightLimiter); ok {
				limit = min(limit, max(l.MaxInFlight(), 1))
			}
			r.producers = append(r.producers, &producerState{
				r: r, index: t*r.w.ProducersPerTopic + i, p: p,
				keys:     newKeyChooser(r.w.KeyDistributor, r.w.PartitionsPerTopic),
				buf:      make([]byte, r.w.MessageSize),
				inflight: make(chan struct{}, limit),
			})
		}
	}
	return nil
}

// startConsumers opens topics x subscriptions x consumerPerSubscription consumers;
// consumer j of a subscription owns the partitions p with p mod consumerPerSubscription == j.
func (r *run) startConsumers(ctx context.Context) error {
	r.consMu.Lock()
	defer r.consMu.Unlock()
	for _, topic := range r.topics {
		for s := 0; s < r.w.SubscriptionsPerTopic; s++ {
			sub := fmt.Sprintf("%s_sub%d", topic, s)
			for j := 0; j < r.w.ConsumerPerSubscription; j++ {
				spec := ConsumerSpec{Topic: topic, Subscription: sub, Index: j}
				for p := j; p < r.w.PartitionsPerTopic; p += r.w.ConsumerPerSubscription {
					spec.Partitions = append(spec.Partitions, p)
				}
				if len(spec.Partitions) == 0 {
					continue // more consumers than partitions: this one would idle
				}
				c, err := r.cfg.Driver.NewConsumer(ctx, spec, sink{r})
				if err != nil {
					return fmt.Errorf("open consumer %d of %s: %w", j, sub, err)
				}
				r.consumers = append(r.consumers, c)
			}
		}
	}
	return nil
}

func (r *run) closeClients() {
	for _, p := range r.producers {
		_ = p.p.Close()
	}
	r.consMu.Lock()
	defer r.consMu.Unlock()
	for _, c := range r.consumers {
		_ = c.Close()
	}
}

// phases returns the warm-up and measurement durations after command-line overrides.
func (r *run) phases() (warmup, measure time.Duration) {
	warmup, measure = r.w.WarmupDuration(), r.w.TestDuration()
	if r.cfg.WarmupSet {
		warmup = r.cfg.Warmup
	}
	if r.cfg.Duration > 0 {
		measure = r.cfg.Duration
	}
	return warmup, measure
}

// initialRate is the fixed rate, or where the search starts.
func (r *run) initialRate() (rate float64, search bool) {
	if r.cfg.RatePerSec > 0 {
		return r.cfg.RatePerSec, false
	}
	if r.w.ProducerRate > 0 {
		return r.w.ProducerRate, false
	}
	return searchStartRatePerSec, true
}
