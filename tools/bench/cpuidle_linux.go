//go:build linux

package bench

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// holdCPULatencyZero opens /dev/cpu_dma_latency and writes 0 as a binary s32 (the kernel
// also takes a hex string, but the 4-byte form is unambiguous). The request lives as long as
// the file stays open. It reads the system-wide target back (-1 if that fails).
func holdCPULatencyZero() (release func() error, latencyUs int32, reason string) {
	f, err := os.OpenFile(cpuDMALatencyPath, os.O_RDWR, 0)
	if err != nil {
		switch {
		case errors.Is(err, fs.ErrPermission):
			return nil, -1, fmt.Sprintf("not root (open %s: permission denied)", cpuDMALatencyPath)
		case errors.Is(err, fs.ErrNotExist):
			return nil, -1, fmt.Sprintf("missing (%s does not exist: kernel without PM QoS device)", cpuDMALatencyPath)
		default:
			return nil, -1, err.Error()
		}
	}
	var zero [4]byte
	if _, err := f.Write(zero[:]); err != nil {
		f.Close()
		return nil, -1, fmt.Sprintf("write 0 to %s: %v", cpuDMALatencyPath, err)
	}
	latencyUs = -1
	var cur [4]byte
	if n, _ := f.ReadAt(cur[:], 0); n == 4 {
		latencyUs = int32(binary.NativeEndian.Uint32(cur[:]))
	}
	return f.Close, latencyUs, ""
}
