//go:build !linux

package bench

// calibrateMonotonic: off Linux the generator's clock is the runtime's monotonic clock
// with an arbitrary origin; stamps are then only comparable inside one process.
func calibrateMonotonic() int64 { return 0 }
