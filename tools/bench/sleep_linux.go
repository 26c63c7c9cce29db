//go:build linux

package bench

import (
	"errors"
	"fmt"
	"runtime"

	"golang.org/x/sys/unix"
)

// spinBelowNs is the remaining wait under which the pacer spins on the clock instead of
// sleeping: a sleep cannot end sooner than the machine's wake-up latency (on the 2-vCPU
// VM, p50 35-42 us with idle vCPUs halting, 14-21 us with /dev/cpu_dma_latency held at 0;
// docs/benchmarks.md), so spinning only the last couple of microseconds costs almost no CPU.
const spinBelowNs = 2_000

// lockPacerThread pins the calling goroutine to its OS thread and sets that thread's
// timer slack to 1 ns, so clock_nanosleep wakes when asked rather than up to 50 us later.
// The caller must be the pacer goroutine; it keeps the thread until it returns.
func lockPacerThread() error {
	runtime.LockOSThread()
	if err := unix.Prctl(unix.PR_SET_TIMERSLACK, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("prctl(PR_SET_TIMERSLACK, 1): %w", err)
	}
	return nil
}

// sleepUntil waits until CLOCK_MONOTONIC reaches deadlineNs with clock_nanosleep on an
// absolute deadline (no drift from computing a relative wait), spinning the last
// spinBelowNs. It never uses a Go timer: those overshoot by about 1 ms here.
func sleepUntil(deadlineNs int64) {
	for {
		rem := deadlineNs - MonoNowNs()
		if rem <= 0 {
			return
		}
		if rem <= spinBelowNs {
			for MonoNowNs() < deadlineNs {
			}
			return
		}
		ts := unix.NsecToTimespec(deadlineNs - spinBelowNs)
		err := unix.ClockNanosleep(unix.CLOCK_MONOTONIC, unix.TIMER_ABSTIME, &ts, nil)
		if err != nil && !errors.Is(err, unix.EINTR) {
			panic("BUG: clock_nanosleep: " + err.Error())
		}
	}
}
