package bench

import (
	"context"
	"fmt"
	"math"
	"time"
)

// execute runs the pacer (on its own locked OS thread) and the reporter until the
// schedule ends, then drains and builds the result.
func (r *run) execute(ctx context.Context) (*Result, error) {
	warmup, measure := r.phases()
	rate, search := r.initialRate()
	r.rateNow.Store(math.Float64bits(rate))

	// The first send is due a little after now so set-up work does not count as delay.
	startNs := MonoNowNs() + int64(10*time.Millisecond)
	measureNs := startNs + int64(warmup)
	endNs := measureNs + int64(measure)

	r.measureNs.Store(measureNs)
	rep := newReporter(r, startNs, measureNs)
	if err := rep.writeLogHeader(); err != nil {
		return nil, err
	}
	stopWatch := context.AfterFunc(ctx, r.stopPacer)
	defer stopWatch()
	// A pacer waiting for an in-flight slot must still stop when the schedule ends.
	endTimer := time.AfterFunc(time.Duration(endNs-MonoNowNs()), func() { close(r.ended) })
	defer endTimer.Stop()

	paceErr := make(chan error, 1)
	go func() { paceErr <- r.pace(startNs, endNs, rate, search) }()
	var perr error
	for done := false; !done; {
		select {
		case perr = <-paceErr:
			done = true
		case <-rep.timer.C:
			if err := rep.tick(ctx); err != nil {
				r.stopPacer()
				<-paceErr
				return nil, err
			}
		}
	}
	if perr != nil {
		return nil, perr
	}
	r.drain()
	if at := r.stoppedAtNs.Load(); at != 0 {
		endNs = max(min(endNs, at), measureNs) // cancelled: measured until the stop
	}
	return rep.finish(endNs)
}

// stopPacer makes the pacer return at its next message (context cancelled or a reporter
// error); safe to call more than once.
func (r *run) stopPacer() { r.abortOnce.Do(func() { close(r.abort) }) }

// pace sends messages on the schedule from startNs until endNs. Message i goes to
// producer i mod P, so each producer sends on its own fixed schedule at rate/P. The
// intended time travels in the token (for publish latency) and in the payload (for
// end-to-end latency); the gap to the actual send is the publish delay.
func (r *run) pace(startNs, endNs int64, rate float64, search bool) error {
	if err := lockPacerThread(); err != nil {
		return fmt.Errorf("pacer: %w", err)
	}
	sched := newSchedule(startNs, rate)
	var rs *rateSearch
	if search {
		rs = newRateSearch(rate, r.w.SubscriptionsPerTopic)
	}
	nextWindowNs := startNs + searchWindowNs
	for i := uint64(0); ; i++ {
		due := sched.at(i)
		if rs != nil && due >= nextWindowNs {
			now := MonoNowNs()
			sample := r.searchSample()
			sample.lateNs = now - sched.at(i)
			rate, restart := rs.next(sample, float64(searchWindowNs)/1e9)
			sched.setRate(i, rate)
			if restart {
				sched.baseNs = now
				nextWindowNs = now
			}
			r.rateNow.Store(math.Float64bits(sched.ratePerSec))
			nextWindowNs += searchWindowNs
			due = sched.at(i)
		}
		if due >= endNs {
			return nil
		}
		select {
		case <-r.abort:
			r.stoppedAtNs.Store(due)
			return nil
		default:
		}
		sleepUntil(due)
		switch r.dispatch(i, due) {
		case dispatchAborted:
			r.stoppedAtNs.Store(due)
			return nil
		case dispatchEnded:
			r.countNotSent(&sched, i, endNs)
			return nil
		}
	}
}

// countNotSent counts the messages from i on that were due in the measurement phase
// but not sent because the in-flight limit held the pacer until the schedule ended.
func (r *run) countNotSent(sched *schedule, i uint64, endNs int64) {
	measureNs := r.measureNs.Load()
	var n int64
	for ; sched.at(i) < endNs; i++ {
		if sched.at(i) >= measureNs {
			n++
		}
	}
	r.measured.notSent.Add(n)
}

type dispatchResult int

const (
	dispatchSent    dispatchResult = iota
	dispatchAborted                // context cancelled or a reporter error
	dispatchEnded                  // the schedule ended while waiting for an in-flight slot
)

// dispatch sends message i, due at due, through producer i mod P: wait for an in-flight
// slot, stamp the payload, send. It allocates nothing (TestDispatchAllocs).
func (r *run) dispatch(i uint64, due int64) dispatchResult {
	ps := r.producers[i%uint64(len(r.producers))]
	select {
	case ps.inflight <- struct{}{}: // a free slot: send, even if late (the delay says how late)
	default:
		select { // at the limit: wait, unless the run stops or its schedule ends meanwhile
		case ps.inflight <- struct{}{}:
		case <-r.abort:
			return dispatchAborted
		case <-r.ended:
			return dispatchEnded
		}
	}
	key, partition := ps.keys.choose(ps.sentN, due)
	ps.sentN++
	copy(ps.buf, r.pool.body(i))
	StampPayload(ps.buf, due, i, uint32(ps.index))
	ps.msg = Message{Partition: partition, Key: key, Payload: ps.buf, Token: uint64(due)}
	actual := MonoNowNs()
	r.sent.Add(1)
	inMeasure := due >= r.measureNs.Load()
	if inMeasure {
		r.measured.sent.Add(1)
	}
	if err := ps.p.SendAsync(&ps.msg, ps); err != nil {
		<-ps.inflight
		r.noteError(err, inMeasure)
	}
	r.delay.record(actual - due)
	return dispatchSent
}

func (r *run) searchSample() searchSample {
	acked, errs := r.acked.Load(), r.errs.Load()
	return searchSample{sent: r.sent.Load(), done: acked + errs, errs: errs, received: r.received.Load()}
}

// drain waits, at most the drain timeout (even after a cancel, so a stopped run still
// accounts for what it sent), until every send is answered and consumers have received
// every acknowledged message. It polls counters every drainPollInterval.
const drainPollInterval = 5 * time.Millisecond

func (r *run) drain() {
	timeout := r.cfg.DrainTimeout
	if timeout <= 0 {
		timeout = DefaultDrainTimeout
	}
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	poll := time.NewTicker(drainPollInterval)
	defer poll.Stop()
	for !r.drained() {
		select {
		case <-deadline.C:
			return
		case <-poll.C:
		}
	}
}

func (r *run) drained() bool {
	if r.acked.Load()+r.errs.Load() < r.sent.Load() {
		return false
	}
	r.consMu.Lock()
	consuming := len(r.consumers) > 0
	r.consMu.Unlock()
	if !consuming {
		return true
	}
	return r.received.Load() >= r.acked.Load()*int64(r.w.SubscriptionsPerTopic)
}
