package bench

import "fmt"

// CPUIdlePoll says whether the run held the CPUs out of deep idle (PM QoS
// /dev/cpu_dma_latency = 0) and, when it did not, why. On this kind of VM (cpuidle driver
// haltpoll, guest_halt_poll_ns=0) an idle vCPU halts, and every timer or wake-up interrupt
// then needs the host to schedule the vCPU again: tens of microseconds at p50, milliseconds
// in the tail. With the request held at 0 the governor only uses the POLL state.
type CPUIdlePoll struct {
	Requested bool `json:"requested"`
	Held      bool `json:"held"`
	// LatencyUs is the system-wide CPU latency target read back while held (0 expected;
	// -1 when it could not be read back).
	LatencyUs int32 `json:"latencyUs"`
	// Reason says why it is not held ("off", "not root", "missing", ...); empty when held.
	Reason string `json:"reason,omitempty"`
}

// String is the header line's text.
func (s CPUIdlePoll) String() string {
	switch {
	case !s.Requested:
		return "not held (--cpu-idle-poll=false): idle vCPUs may halt"
	case s.Held && s.LatencyUs >= 0:
		return fmt.Sprintf("held: %s = 0 (system target now %d us), idle vCPUs poll", cpuDMALatencyPath, s.LatencyUs)
	case s.Held:
		return fmt.Sprintf("held: %s = 0, idle vCPUs poll", cpuDMALatencyPath)
	default:
		return "not held: " + s.Reason
	}
}

// cpuDMALatencyPath is the PM QoS CPU latency device: a request written to it stays in
// force while the file is open, and closing it (or exiting) withdraws it.
const cpuDMALatencyPath = "/dev/cpu_dma_latency"

// CPUIdleHold is a held PM QoS request; Release withdraws it.
type CPUIdleHold struct {
	release func() error
	Status  CPUIdlePoll
}

// Release withdraws the request (a no-op when nothing is held); safe to call more than once.
func (h *CPUIdleHold) Release() error {
	if h == nil || h.release == nil {
		return nil
	}
	f := h.release
	h.release = nil
	return f()
}

// HoldCPUIdlePoll asks for a CPU latency of 0 us for as long as the hold is not released,
// when want is set and the device can be opened. It never fails the run: the status says
// whether it is held, and why not.
func HoldCPUIdlePoll(want bool) *CPUIdleHold {
	if !want {
		return &CPUIdleHold{Status: CPUIdlePoll{Reason: "off (--cpu-idle-poll=false)", LatencyUs: -1}}
	}
	release, latencyUs, reason := holdCPULatencyZero()
	st := CPUIdlePoll{Requested: true, Held: release != nil, LatencyUs: latencyUs, Reason: reason}
	return &CPUIdleHold{release: release, Status: st}
}
