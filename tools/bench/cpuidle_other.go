//go:build !linux

package bench

func holdCPULatencyZero() (release func() error, latencyUs int32, reason string) {
	return nil, -1, "missing (/dev/cpu_dma_latency is Linux's PM QoS device)"
}
