package perf

import (
	"time"

	"golang.org/x/sys/unix"
)

// epoch anchors Now; time.Since reads the monotonic clock without allocating.
var epoch = time.Now()

// epochMonoNs is CLOCK_MONOTONIC (the clock eBPF's bpf_ktime_get_ns reads) at epoch.
var epochMonoNs = measureEpochMonoNs()

// epochSamples is how many bracketed reads measureEpochMonoNs takes.
const epochSamples = 32

// measureEpochMonoNs reads CLOCK_MONOTONIC between two reads of Now, 32 times, and keeps
// the tightest bracket: a single pair can be split by a preemption (seen: >100 us on a
// loaded machine), which would shift every eBPF event against every request stamp.
func measureEpochMonoNs() int64 {
	bestWidth, best := int64(1<<62), int64(0)
	for range epochSamples {
		before := int64(time.Since(epoch))
		mono := kernelMonotonicNs()
		after := int64(time.Since(epoch))
		if w := after - before; w < bestWidth {
			bestWidth, best = w, mono-(before+w/2)
		}
	}
	return best
}

// Now returns monotonic nanoseconds since process start. It is cheap (vDSO
// clock_gettime) and never goes backwards; use it for every latency stamp.
// It is never 0 after the first nanosecond, so 0 can mean "not stamped".
func Now() int64 { return int64(time.Since(epoch)) }

// WallTime converts a Now value into wall-clock time (for display and log timestamps only).
func WallTime(ns int64) time.Time { return epoch.Add(time.Duration(ns)) }

// KernelMonotonicNs converts a Now value into CLOCK_MONOTONIC nanoseconds, the clock kernel
// tracepoints and bpf_ktime_get_ns use, so eBPF events can be matched to request stamps.
func KernelMonotonicNs(ns int64) int64 { return ns + epochMonoNs }

// FromKernelMonotonicNs is the inverse of KernelMonotonicNs.
func FromKernelMonotonicNs(monoNs int64) int64 { return monoNs - epochMonoNs }

func kernelMonotonicNs() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		panic("BUG: clock_gettime(CLOCK_MONOTONIC): " + err.Error())
	}
	return ts.Nano()
}
