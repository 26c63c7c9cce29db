package testkit

import (
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
)

// Seed returns the seed of a randomized test: RINGMQ_SEED when set, else a fresh one. It
// logs the seed with the variable that replays it, so a failure is reproducible.
func Seed(tb testing.TB) uint64 {
	tb.Helper()
	seed := rand.Uint64()
	if s := os.Getenv("RINGMQ_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			tb.Fatalf("RINGMQ_SEED=%q: %v", s, err)
		}
		seed = v
	}
	tb.Logf("seed %d (replay with RINGMQ_SEED=%d)", seed, seed)
	return seed
}
