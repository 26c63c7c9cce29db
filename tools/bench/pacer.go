package bench

import "math"

// schedule holds the intended send times of an open-loop run. Message i of the current
// rate segment is due at
//
//	baseNs + round((i - baseIndex) * 1e9 / ratePerSec)
//
// computed from the segment's base every time, never by adding periods, so rounding
// never accumulates into drift. A rate change (the maximum-rate search) starts a new
// segment at the intended time of the next message, so the schedule stays continuous.
type schedule struct {
	baseNs     int64
	baseIndex  uint64
	ratePerSec float64
}

func newSchedule(startNs int64, ratePerSec float64) schedule {
	if !(ratePerSec > 0) {
		panic("BUG: schedule rate must be positive")
	}
	return schedule{baseNs: startNs, ratePerSec: ratePerSec}
}

// at returns the intended send time of message i (i >= the segment's base index).
func (s *schedule) at(i uint64) int64 {
	return s.baseNs + int64(math.Round(float64(i-s.baseIndex)*1e9/s.ratePerSec))
}

// setRate starts a new segment at message i with the given rate.
func (s *schedule) setRate(i uint64, ratePerSec float64) {
	if !(ratePerSec > 0) {
		panic("BUG: schedule rate must be positive")
	}
	s.baseNs, s.baseIndex, s.ratePerSec = s.at(i), i, ratePerSec
}
