package bench

import (
	"math/big"
	"testing"
)

// exactDue is start + round(i * 1e9 / rate) in exact rational arithmetic.
func exactDue(start int64, i uint64, rate float64) int64 {
	q := new(big.Rat).SetInt(new(big.Int).Mul(new(big.Int).SetUint64(i), big.NewInt(1e9)))
	q.Quo(q, new(big.Rat).SetFloat64(rate))
	q.Add(q, big.NewRat(1, 2))
	return start + new(big.Int).Quo(q.Num(), q.Denom()).Int64()
}

// TestScheduleNoDrift: intended times come from the segment base, so after millions of
// messages at a rate whose period is not a whole number of nanoseconds, the schedule is
// still within 1 ns of the exact one (adding a rounded period would drift by ~0.33 ns
// per message at 3 msg/s, milliseconds over a week).
func TestScheduleNoDrift(t *testing.T) {
	const start = int64(1_000_000_000)
	for _, rate := range []float64{3, 7, 1000, 30_000, 333_333} {
		s := newSchedule(start, rate)
		week := uint64(rate * 7 * 24 * 3600) // the longest run a workload may ask for
		for _, i := range []uint64{0, 1, 2, 999, 1_000_003, week / 3, week} {
			got, want := s.at(i), exactDue(start, i, rate)
			if d := got - want; d < -1 || d > 1 {
				t.Fatalf("rate %g: at(%d) = %d, want %d (off by %d ns)", rate, i, got, want, d)
			}
		}
		// Consecutive gaps are the period rounded either way, never accumulating.
		period := 1e9 / rate
		for i := uint64(1); i < 10_000; i++ {
			gap := float64(s.at(i) - s.at(i-1))
			if gap < period-1 || gap > period+1 {
				t.Fatalf("rate %g: gap %d->%d = %g ns, want %g +- 1", rate, i-1, i, gap, period)
			}
		}
	}
}

// TestScheduleRateChange: a new rate starts where the old schedule was, without a jump.
func TestScheduleRateChange(t *testing.T) {
	s := newSchedule(0, 1000) // 1 ms period
	before := s.at(500)
	s.setRate(500, 4000) // 250 us period from message 500
	if got := s.at(500); got != before {
		t.Fatalf("at(500) after setRate = %d, want %d (continuous)", got, before)
	}
	if got, want := s.at(504), before+1_000_000; got != want {
		t.Fatalf("at(504) = %d, want %d", got, want)
	}
	if got, want := before, int64(500_000_000); got != want {
		t.Fatalf("at(500) at 1000 msg/s = %d, want %d", got, want)
	}
}

// TestRateSearch: the search grows while the system keeps up and backs off to what was
// completed when it falls behind.
func TestRateSearch(t *testing.T) {
	s := newRateSearch(1000, 0)
	r1, _ := s.next(searchSample{sent: 1000, done: 1000}, 1)
	if r1 <= 1000 {
		t.Fatalf("kept up: rate %g, want > 1000", r1)
	}
	r2, _ := s.next(searchSample{sent: 2000, done: 2000}, 1)
	if r2 <= r1 {
		t.Fatalf("kept up again: rate %g, want > %g", r2, r1)
	}
	// Only 900 of ~1100 completed in the window, pending grew to 200.
	r3, _ := s.next(searchSample{sent: 3100, done: 2900}, 1)
	if r3 != 810 {
		t.Fatalf("fell behind: rate %g, want 810 (90%% of the completion rate)", r3)
	}
	// A stall (nothing completed) halves the rate instead of dropping it to nothing.
	r4, _ := s.next(searchSample{sent: 3910, done: 2900}, 1)
	if r4 != r3/2 {
		t.Fatalf("stall: rate %g, want %g (half)", r4, r3/2)
	}
	// Failed sends back off to 90% of what was acked (errors are not capacity).
	s2 := newRateSearch(1000, 0)
	if r, _ := s2.next(searchSample{sent: 1000, done: 1000, errs: 300}, 1); r != 630 {
		t.Fatalf("errors: rate %g, want 630 (90%% of the 700 acked)", r)
	}
	// A pacer held late by the in-flight limit backs off and restarts the schedule.
	s4 := newRateSearch(1000, 0)
	if r, restart := s4.next(searchSample{sent: 900, done: 900, lateNs: 2e8}, 1); r >= 1000 || !restart {
		t.Fatalf("late pacer: rate %g restart %v, want < 1000 and a restart", r, restart)
	}
	// Consumers lagging backs off too.
	s3 := newRateSearch(1000, 1)
	if r, _ := s3.next(searchSample{sent: 1000, done: 1000, received: 100}, 1); r >= 1000 {
		t.Fatalf("consumer lag: rate %g, want < 1000", r)
	}
}
