package bench

// The maximum-rate search (producerRate: 0). Every searchWindowNs of schedule time the
// pacer asks rateSearch for the next rate. The rate grows geometrically while the system
// keeps up; when it falls behind, the rate drops to 90% of what the system actually
// completed in the window (never below half the rate) and growth restarts slowly.
// "Keeps up" means: the pacer is less than searchMaxPendingSec behind its schedule (the
// in-flight limit holds it back when the system is slow), sends awaiting an answer stay
// under that much of the rate (or are shrinking), consumers lag by less than
// searchMaxConsumerLagSec, and no send failed. When the pacer was late, the schedule is
// restarted at the current time, so the probe's backlog does not pin the rate down for
// many windows; the intended times of a search run are therefore not a fixed schedule,
// and its latency percentiles (which include the probing overloads) describe the search,
// not a steady state. The result's publish rate over the measurement phase is the
// maximum sustainable rate found.
const (
	searchWindowNs          = 1_000_000_000
	searchMaxPendingSec     = 0.05
	searchMaxConsumerLagSec = 0.5
	searchMinRatePerSec     = 10
	searchFirstStep         = 0.1
	searchMaxStep           = 1.0
	searchMinPending        = 100 // absolute slack at low rates
)

// searchSample is the counters the search looks at, read at a window's end, and how far
// the pacer is behind its schedule (the in-flight limit holds it back when the system
// cannot keep up, so a slow system shows as lateness as much as as pending sends).
type searchSample struct {
	sent, done, errs, received int64
	lateNs                     int64
}

type rateSearch struct {
	rate          float64
	step          float64
	subscriptions int // expected deliveries per message
	last          searchSample
	lastPending   int64
	lastLag       int64
}

func newRateSearch(startRate float64, subscriptions int) *rateSearch {
	return &rateSearch{rate: startRate, step: searchFirstStep, subscriptions: subscriptions}
}

// next returns the rate for the coming window given the counters now and the window's
// length in seconds, and whether the schedule must restart at the current time.
func (s *rateSearch) next(now searchSample, windowSec float64) (rate float64, restart bool) {
	pending := now.sent - now.done
	lag := now.done*int64(s.subscriptions) - now.received
	// What the system accepted: failed sends (SYSTEM_BUSY) are completions but not capacity.
	ackedRate := float64((now.done-now.errs)-(s.last.done-s.last.errs)) / windowSec
	maxPending := max(int64(searchMinPending), int64(s.rate*searchMaxPendingSec))
	maxLag := max(int64(searchMinPending), int64(s.rate*float64(s.subscriptions)*searchMaxConsumerLagSec))
	late := now.lateNs > int64(searchMaxPendingSec*1e9)
	behind := late || (pending > maxPending && pending >= s.lastPending) ||
		(s.subscriptions > 0 && lag > maxLag && lag >= s.lastLag) ||
		now.errs > s.last.errs
	if behind {
		// 90% of what completed, but never below half the rate: a one-second stall of the
		// system should not throw the search back to nothing.
		s.rate = max(searchMinRatePerSec, min(s.rate, ackedRate)*0.9, s.rate*0.5)
		s.step = searchFirstStep
	} else if pending <= maxPending {
		s.rate = min(MaxRatePerSec, s.rate*(1+s.step))
		s.step = min(searchMaxStep, s.step*2)
	}
	s.last, s.lastPending, s.lastLag = now, pending, lag
	return s.rate, late
}
