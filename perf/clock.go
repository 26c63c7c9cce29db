package perf

import (
	"time"

	"golang.org/x/sys/unix"
)

// epoch anchors Now; time.Since reads the monotonic clock without allocating.
var epoch = time.Now()

// epochMonoNs is CLOCK_MONOTONIC (the clock eBPF's bpf_ktime_get_ns reads) at epoch, to within
// the few tens of nanoseconds between the two reads below.
var epochMonoNs = kernelMonotonicNs() - int64(time.Since(epoch))

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
