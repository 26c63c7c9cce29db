//go:build !linux

package bench

import "errors"

// The pacer needs Linux: clock_nanosleep on an absolute deadline and PR_SET_TIMERSLACK.
func lockPacerThread() error {
	return errors.New("the ringmq-bench pacer needs Linux (clock_nanosleep, PR_SET_TIMERSLACK)")
}

func sleepUntil(deadlineNs int64) { panic("BUG: sleepUntil without lockPacerThread") }
