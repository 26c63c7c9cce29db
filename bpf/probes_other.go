//go:build !linux || !(386 || amd64)

package bpf

import (
	"errors"
	"runtime"

	"github.com/ringmq/ringmq/perf"
)

// ErrUnsupportedPlatform is every probe's load error outside linux/amd64 (the probes are
// compiled for x86-64 only: syscall numbers and pt_regs offsets).
var ErrUnsupportedPlatform = errors.New("eBPF probes are built for linux/amd64 only, not " + runtime.GOOS + "/" + runtime.GOARCH)

func prepare() error { return ErrUnsupportedPlatform }

func loadProbe(probeDef, Config, *eventRing) (probeImpl, error) { return nil, ErrUnsupportedPlatform }

func describeErr(err error) string { return err.Error() }

// IsUnavailable reports whether err means the host cannot run the probe.
func IsUnavailable(err error) bool { return errors.Is(err, ErrUnsupportedPlatform) }

// monoNowNs is perf's own mapping here: no probe runs on this platform.
func monoNowNs() int64 { return perf.KernelMonotonicNs(perf.Now()) }
