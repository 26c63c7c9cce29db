package timer

import (
	"math/rand/v2"
	"slices"
	"syscall"
	"testing"

	"github.com/ringmq/ringmq/flush/vfs"
)

// crashModel is what a crash test knows: every entry Add acknowledged must survive any
// crash; entries of a failed Add may or may not.
type crashModel struct {
	acked     map[int64]Entry // by queue offset
	attempted map[int64]Entry
	committed int64   // the last DeliveredMs a Commit acknowledged
	tried     []int64 // DeliveredMs of the Commits that failed since
	nextQO    int64
}

// TestCrashRecovery runs rounds of random Add and Commit calls on a file system that
// fails a random write or fsync now and then, crashes at a random point keeping a random
// prefix of the un-synced writes, reopens, and checks that every acknowledged entry is in
// its slot's chain exactly once and nothing else is. Each round continues on the
// recovered wheel, so recovery itself is crashed too. Replay with RINGMQ_SEED.
func TestCrashRecovery(t *testing.T) {
	seed := testSeed(t)
	rng := rand.New(rand.NewPCG(seed, seed*31+7))
	rounds := 300
	if testing.Short() {
		rounds = 50
	}
	mem := vfs.NewMem()
	m := &crashModel{acked: map[int64]Entry{}, attempted: map[int64]Entry{}, committed: 0}
	const s0 = 1_700_000_000_000
	for round := range rounds {
		in := vfs.NewInjector()
		if rng.IntN(3) == 0 {
			ops := []vfs.Op{vfs.OpWrite, vfs.OpSync}
			files := []string{logName, wheelName, checkpointName}
			in.Add(vfs.Rule{Op: ops[rng.IntN(2)], PathContains: files[rng.IntN(3)], Nth: 1 + rng.IntN(6), Err: syscall.EIO})
		}
		w, rec, err := Open(Config{Dir: testDir, FS: vfs.NewFaulty(mem, in), PrecisionMs: 100, MaxDelayMs: 2000})
		if err != nil {
			if in.Fired() > 0 {
				mem = mem.CrashKeeping(rng.Uint64())
				continue // recovery's own writes failed: it runs again next round
			}
			t.Fatalf("round %d (seed %d): open: %v", round, seed, err)
		}
		m.verify(t, w, rec, round, seed)
		for range rng.IntN(8) {
			if rng.IntN(4) == 0 {
				d := s0 + int64(rng.IntN(3000))
				if err := w.Commit(d); err == nil {
					m.committed, m.tried = d, m.tried[:0]
				} else {
					m.tried = append(m.tried, d)
				}
				continue
			}
			es := make([]Entry, 1+rng.IntN(20))
			for i := range es {
				es[i] = entryAt(w, m.nextQO, s0+int64(rng.IntN(3000)))
				m.attempted[m.nextQO] = es[i]
				m.nextQO++
			}
			if err := w.Add(es); err == nil {
				for _, e := range es {
					m.acked[e.QueueOffset] = e
				}
			} else if in.Fired() == 0 {
				t.Fatalf("round %d (seed %d): add failed with no fault injected: %v", round, seed, err)
			}
		}
		w.Close()
		mem = mem.CrashKeeping(rng.Uint64())
	}
	t.Logf("%d rounds, %d entries acknowledged of %d attempted", rounds, len(m.acked), len(m.attempted))
}

// verify checks a recovered wheel against the model.
func (m *crashModel) verify(t *testing.T, w *Wheel, rec Recovered, round int, seed uint64) {
	t.Helper()
	const s0 = 1_700_000_000_000
	seen := map[int64]bool{}
	for s := int64(s0); s < s0+3000; s += 100 {
		es, err := w.ReadSlot(s, nil)
		if err != nil {
			t.Fatalf("round %d (seed %d): read slot %d: %v", round, seed, s, err)
		}
		for _, e := range es {
			want, ok := m.attempted[e.QueueOffset]
			if !ok || want != e {
				t.Fatalf("round %d (seed %d): slot %d holds %+v, never written (want %+v)", round, seed, s, e, want)
			}
			if seen[e.QueueOffset] {
				t.Fatalf("round %d (seed %d): queue offset %d twice in the wheel", round, seed, e.QueueOffset)
			}
			seen[e.QueueOffset] = true
		}
	}
	maxAcked := int64(-1)
	for qo := range m.acked {
		if !seen[qo] {
			t.Fatalf("round %d (seed %d): acknowledged entry %+v lost", round, seed, m.acked[qo])
		}
		maxAcked = max(maxAcked, qo)
	}
	for qo := range seen {
		if _, ok := m.acked[qo]; !ok {
			m.acked[qo] = m.attempted[qo] // recovered: from now on it must stay
		}
	}
	if w.EnqueueOffset() <= maxAcked {
		t.Fatalf("round %d (seed %d): enqueue offset %d, but %d was acknowledged", round, seed, w.EnqueueOffset(), maxAcked)
	}
	// The checkpoint is the last acknowledged commit or a failed one after it (a failed
	// fsync may still have reached the disk), never an older one.
	if got := rec.Checkpoint.DeliveredMs; got != m.committed && !slices.Contains(m.tried, got) {
		t.Fatalf("round %d (seed %d): delivered %d recovered, the last acknowledged commit was %d (failed since: %v)", round, seed, got, m.committed, m.tried)
	}
	m.committed, m.tried = rec.Checkpoint.DeliveredMs, m.tried[:0]
	if want := (w.LogBytes() - rec.Checkpoint.LogPos) / EntrySizeBytes; int64(len(rec.Tail)) != want {
		t.Fatalf("round %d (seed %d): tail of %d entries, the log holds %d past the checkpoint", round, seed, len(rec.Tail), want)
	}
}
