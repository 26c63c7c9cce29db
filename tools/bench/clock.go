package bench

import (
	"os"
	"runtime"
	"time"
)

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

// SetDefaultGOMAXPROCS gives the generator twice as many Ps as CPUs unless the GOMAXPROCS
// environment variable says otherwise: the pacer's locked thread holds a P whenever it
// runs, and with only one P per CPU a returning pacer often waits for a P behind the
// goroutines reading acks (measured on 2 vCPUs: floor p99.9 2.1-2.4 ms with 4 Ps against
// 3.2-72 ms with 2, same load).
func SetDefaultGOMAXPROCS() {
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(2 * runtime.NumCPU())
	}
}
