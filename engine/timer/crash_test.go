package timer

import (
	"errors"
	"math/rand/v2"
	"slices"
	"syscall"
	"testing"

	"github.com/ringmq/ringmq/flush/vfs"
	"github.com/ringmq/ringmq/internal/testkit"
)

// crashModel is what a crash test knows: every entry Add acknowledged must survive any
// crash; entries of a failed Add may or may not.
type crashModel struct {
	acked     map[int64]Entry // by queue offset
	attempted map[int64]Entry
	committed int64   // the last DeliveredMs a Commit acknowledged
	tried     []int64 // DeliveredMs of the Commits that failed since
	high      int64   // the latest DeliveredMs tried
	nextQO    int64
	deleted   bool // a delivered segment was deleted at some point
}

// testSegmentBytes: 16 entries a segment, so rounds cross and delete segments.
const testSegmentBytes = 16 * EntrySizeBytes

// TestCrashRecovery runs rounds of random Add and Commit calls on a file system that
// fails a random write or fsync now and then, crashes at a random point keeping a random
// prefix of the un-synced writes, reopens, and checks that every acknowledged entry of a
// slot not yet delivered is in its slot's chain exactly once and nothing else is. The
// calls keep the service's contract: DeliveredMs moves forward or back by at most one
// slot, and entries go into slots from one slot before it. Each round continues on the
// recovered wheel, so recovery itself is crashed too. Replay with RINGMQ_SEED.
func TestCrashRecovery(t *testing.T) {
	seed := testkit.Seed(t)
	rng := rand.New(rand.NewPCG(seed, seed*31+7))
	rounds := 300
	if testing.Short() {
		rounds = 50
	}
	mem := vfs.NewMem()
	const s0 = 1_700_000_000_000
	m := &crashModel{acked: map[int64]Entry{}, attempted: map[int64]Entry{}, committed: 0, high: s0}
	for round := range rounds {
		in := vfs.NewInjector()
		if rng.IntN(3) == 0 {
			ops := []vfs.Op{vfs.OpWrite, vfs.OpSync}
			files := []string{logName, wheelName, checkpointName}
			in.Add(vfs.Rule{Op: ops[rng.IntN(2)], PathContains: files[rng.IntN(3)], Nth: 1 + rng.IntN(6), Err: syscall.EIO})
		}
		w, rec, err := Open(Config{Dir: testDir, FS: vfs.NewFaulty(mem, in), PrecisionMs: 100, MaxDelayMs: 2000, SegmentBytes: testSegmentBytes})
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
				d := m.high - 100 + int64(rng.IntN(400))
				m.high = max(m.high, d)
				if err := w.Commit(d); err == nil {
					m.committed, m.tried = d, m.tried[:0]
				} else if errors.Is(err, ErrFailed) || in.Fired() > 0 {
					m.tried = append(m.tried, d)
					break
				} else {
					m.committed, m.tried = d, m.tried[:0] // written; deleting a segment failed
				}
				continue
			}
			es := make([]Entry, 1+rng.IntN(20))
			for i := range es {
				es[i] = entryAt(w, m.nextQO, m.high+int64(rng.IntN(2500)))
				m.attempted[m.nextQO] = es[i]
				m.nextQO++
			}
			if err := w.Add(es); err != nil {
				if in.Fired() == 0 {
					t.Fatalf("round %d (seed %d): add failed with no fault injected: %v", round, seed, err)
				}
				break
			}
			for _, e := range es {
				m.acked[e.QueueOffset] = e
			}
		}
		w.Close()
		mem = mem.CrashKeeping(rng.Uint64())
	}
	t.Logf("%d rounds, %d entries acknowledged of %d attempted", rounds, len(m.acked), len(m.attempted))
	if !m.deleted {
		t.Errorf("no delivered segment was ever deleted: the test did not exercise deletion")
	}
}

// verify checks a recovered wheel against the model.
func (m *crashModel) verify(t *testing.T, w *Wheel, rec Recovered, round int, seed uint64) {
	t.Helper()
	const s0 = 1_700_000_000_000
	if w.log.first() > 0 {
		m.deleted = true
	}
	// Slots before DeliveredMs are delivered (their entries may be in deleted segments):
	// the service reads from DeliveredMs on, and takes later-linked entries of earlier
	// slots from the recovered tail.
	from := w.SlotOf(rec.Checkpoint.DeliveredMs)
	seen := map[int64]bool{}
	for s := max(int64(s0)-100, from); s < m.high+2600; s += 100 {
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
	for qo, e := range m.acked {
		if e.SlotMs < from {
			continue // delivered
		}
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
