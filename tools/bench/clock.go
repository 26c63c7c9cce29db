package bench

import "time"

// The generator's clock is CLOCK_MONOTONIC in nanoseconds: the clock clock_nanosleep
// sleeps against and the one payload stamps carry. Reading it through time.Since (the
// runtime's vDSO clock, which is CLOCK_MONOTONIC on Linux) costs tens of nanoseconds;
// monoBaseNs, measured once at start, maps the runtime's reading onto the kernel's.
var (
	clockEpoch = time.Now()
	monoBaseNs = calibrateMonotonic()
)

// MonoNowNs returns CLOCK_MONOTONIC in nanoseconds.
func MonoNowNs() int64 { return monoBaseNs + int64(time.Since(clockEpoch)) }
