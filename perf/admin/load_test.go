package admin

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/ringmq/ringmq/perf"
)

// synthLoad records n requests with realistic stage costs into rec: SYNC_FLUSH sends whose
// fdatasync (shared by a group commit) dominates, with a rare slow disk, a few pulls and
// heartbeats. It is deterministic for a seed and takes no wall-clock time: stamps are synthetic
// values on the perf.Now clock, spaced as a 20k/s stream would be.
func synthLoad(t testing.TB, rec *perf.Recorder, seed uint64, n int) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 7))
	logn := func(medianNs, sigma float64) int64 {
		return int64(medianNs * math.Exp(sigma*rng.NormFloat64()))
	}
	base := perf.Now()
	for i := range n {
		t0 := base + int64(i)*50_000
		var s perf.Stamps
		switch {
		case i%50 == 7:
			s.At[perf.StageRead] = t0
			s.At[perf.StageDecoded] = t0 + logn(6_000, 0.3)
			s.At[perf.StageWritten] = s.At[perf.StageDecoded] + logn(40_000, 0.8)
			rec.Record(perf.CodePullMessage, &s, 0, "orders", int32(i%8))
			continue
		case i%200 == 3:
			s.At[perf.StageRead] = t0
			s.At[perf.StageDecoded] = t0 + logn(4_000, 0.3)
			s.At[perf.StageWritten] = s.At[perf.StageDecoded] + logn(8_000, 0.3)
			rec.Record(perf.CodeHeartBeat, &s, 0, "", -1)
			continue
		}
		fsync := logn(110_000, 0.25)
		if rng.IntN(400) == 0 { // a slow disk moment
			fsync = logn(2_500_000, 0.6)
		}
		if rng.IntN(20_000) == 0 {
			fsync = logn(14_000_000, 0.2)
		}
		t := t0
		for _, step := range []struct {
			st perf.Stage
			ns int64
		}{
			{perf.StageRead, 0},
			{perf.StageDecoded, logn(7_000, 0.3)},
			{perf.StageQueued, logn(3_000, 0.4)},
			{perf.StageAppended, logn(9_000, 0.5)},
			{perf.StageFlushSubmitted, int64(rng.IntN(120_000))},
			{perf.StageDurable, fsync},
			{perf.StageWritten, logn(15_000, 0.4)},
		} {
			t += step.ns
			s.At[step.st] = t
		}
		code := perf.CodeSendMessageV2
		if i%3 == 0 {
			code = perf.CodeSendMessage
		}
		topics := [...]string{"orders", "payments", "audit"}
		rec.Record(code, &s, 512+rng.IntN(8192), topics[i%3], int32(i%8))
	}
}
