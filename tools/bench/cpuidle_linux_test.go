//go:build linux

package bench

import (
	"encoding/binary"
	"os"
	"strings"
	"testing"
)

// readCPULatencyTarget reads the system-wide PM QoS CPU latency target (us) through its own
// open of the device (an open adds a request at the default, which does not lower the target).
func readCPULatencyTarget(t *testing.T) int32 {
	t.Helper()
	f, err := os.Open(cpuDMALatencyPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var b [4]byte
	if _, err := f.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return int32(binary.NativeEndian.Uint32(b[:]))
}

// TestCPUIdlePollHold: off means not requested; on, as root, the request is held (the
// system-wide target reads back 0 through a second open) until Release; without root the
// status says why it is not held.
func TestCPUIdlePollHold(t *testing.T) {
	off := HoldCPUIdlePoll(false)
	if off.Status.Requested || off.Status.Held || !strings.Contains(off.Status.String(), "--cpu-idle-poll=false") {
		t.Fatalf("off: %+v %q", off.Status, off.Status)
	}
	if err := off.Release(); err != nil {
		t.Fatal(err)
	}
	h := HoldCPUIdlePoll(true)
	defer h.Release()
	if !h.Status.Requested {
		t.Fatalf("on: not requested: %+v", h.Status)
	}
	if !h.Status.Held {
		if h.Status.Reason == "" {
			t.Fatalf("not held and no reason: %+v", h.Status)
		}
		if os.Geteuid() == 0 {
			if _, err := os.Stat(cpuDMALatencyPath); err == nil {
				t.Fatalf("root, %s present, but not held: %s", cpuDMALatencyPath, h.Status.Reason)
			}
		}
		t.Skipf("cpu idle poll not held here: %s", h.Status.Reason)
	}
	if h.Status.LatencyUs != 0 || !strings.HasPrefix(h.Status.String(), "held: ") {
		t.Fatalf("held: %+v %q, want latency 0", h.Status, h.Status)
	}
	if got := readCPULatencyTarget(t); got != 0 {
		t.Fatalf("system CPU latency target while held = %d us, want 0", got)
	}
	if err := h.Release(); err != nil {
		t.Fatal(err)
	}
	if err := h.Release(); err != nil {
		t.Fatalf("second Release: %v", err)
	}
}
