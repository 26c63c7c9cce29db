package timer

import (
	"errors"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/ringmq/ringmq/flush/vfs"
)

const testDir = "/store/timer"

// testConfig: 100 ms slots, 2 s horizon (40 slots).
func testConfig(fsys vfs.FS) Config {
	return Config{Dir: testDir, FS: fsys, PrecisionMs: 100, MaxDelayMs: 2000}
}

func mustOpen(t *testing.T, cfg Config) (*Wheel, Recovered) {
	t.Helper()
	w, rec, err := Open(cfg)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { w.Close() })
	return w, rec
}

// entryAt makes the entry of queue offset qo due at deliverMs, in its own slot.
func entryAt(w *Wheel, qo, deliverMs int64) Entry {
	return Entry{SlotMs: w.SlotOf(deliverMs), DeliverMs: deliverMs, QueueOffset: qo, CommitLogOffset: 1000 + qo*100, SizeBytes: int32(100 + qo%7)}
}

// slotQueueOffsets returns the sorted queue offsets of a slot's chain.
func slotQueueOffsets(t *testing.T, w *Wheel, slotMs int64) []int64 {
	t.Helper()
	es, err := w.ReadSlot(slotMs, nil)
	if err != nil {
		t.Fatalf("read slot %d: %v", slotMs, err)
	}
	var qos []int64
	for _, e := range es {
		if e.SlotMs != slotMs {
			t.Fatalf("slot %d returned an entry of slot %d", slotMs, e.SlotMs)
		}
		qos = append(qos, e.QueueOffset)
	}
	slices.Sort(qos)
	return qos
}

// Entries added in several batches come back from their slot's chain, each once, with
// every field; slots that got nothing are empty.
func TestAddReadSlotChains(t *testing.T) {
	w, _ := mustOpen(t, testConfig(vfs.NewMem()))
	const base = 1_700_000_000_000
	want := map[int64][]int64{}
	byQO := map[int64]Entry{}
	qo := int64(0)
	for batch := range 5 {
		var es []Entry
		for i := range 7 {
			e := entryAt(w, qo, base+int64((i*37+batch*11)%1500))
			es = append(es, e)
			want[e.SlotMs] = append(want[e.SlotMs], qo)
			byQO[qo] = e
			qo++
		}
		if err := w.Add(es); err != nil {
			t.Fatal(err)
		}
	}
	if got := w.EnqueueOffset(); got != qo {
		t.Fatalf("enqueue offset %d, want %d", got, qo)
	}
	for s := int64(base) - 200; s < base+1700; s += 100 {
		es, err := w.ReadSlot(s, nil)
		if err != nil {
			t.Fatal(err)
		}
		var got []int64
		for _, e := range es {
			if e != byQO[e.QueueOffset] {
				t.Fatalf("slot %d: got %+v, want %+v", s, e, byQO[e.QueueOffset])
			}
			got = append(got, e.QueueOffset)
		}
		slices.Sort(got)
		if !slices.Equal(got, want[s]) {
			t.Fatalf("slot %d: got queue offsets %v, want %v", s, got, want[s])
		}
	}
}

// A slot index is reused two horizons later: the old chain is not mistaken for the new
// slot's, and linking into the new slot starts a fresh chain.
func TestWrapAround(t *testing.T) {
	w, _ := mustOpen(t, testConfig(vfs.NewMem()))
	const s0 = 1_700_000_000_000
	turn := w.slots * w.PrecisionMs() // 4 s: same index
	if err := w.Add([]Entry{entryAt(w, 0, s0+10), entryAt(w, 1, s0+20)}); err != nil {
		t.Fatal(err)
	}
	if got := slotQueueOffsets(t, w, s0+turn); len(got) != 0 {
		t.Fatalf("slot one turn later holds %v before anything was linked into it", got)
	}
	if err := w.Add([]Entry{entryAt(w, 2, s0+turn+5)}); err != nil {
		t.Fatal(err)
	}
	if got := slotQueueOffsets(t, w, s0+turn); !slices.Equal(got, []int64{2}) {
		t.Fatalf("slot one turn later: %v, want [2]", got)
	}
	if got := slotQueueOffsets(t, w, s0); len(got) != 0 {
		t.Fatalf("the reused slot still answers for its old time: %v", got)
	}
}

// Commit and reopen: the checkpoint comes back, nothing is in the tail, the chains are
// intact; entries added after the last commit come back as the tail, linked.
func TestReopen(t *testing.T) {
	mem := vfs.NewMem()
	w, rec := mustOpen(t, testConfig(mem))
	if rec.Checkpoint != (Checkpoint{}) || len(rec.Tail) != 0 {
		t.Fatalf("new wheel recovered %+v", rec)
	}
	const s0 = 1_700_000_000_000
	if err := w.Add([]Entry{entryAt(w, 0, s0), entryAt(w, 1, s0+50)}); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(s0 - 100); err != nil {
		t.Fatal(err)
	}
	if err := w.Add([]Entry{entryAt(w, 2, s0+60)}); err != nil {
		t.Fatal(err)
	}
	w.Close()
	w2, rec := mustOpen(t, testConfig(mem))
	if rec.Checkpoint.DeliveredMs != s0-100 || rec.Checkpoint.EnqueueOffset != 2 || rec.Checkpoint.LogPos != 2*EntrySizeBytes {
		t.Fatalf("checkpoint %+v", rec.Checkpoint)
	}
	if len(rec.Tail) != 1 || rec.Tail[0].QueueOffset != 2 {
		t.Fatalf("tail %+v, want the entry of queue offset 2", rec.Tail)
	}
	if w2.EnqueueOffset() != 3 {
		t.Fatalf("enqueue offset %d, want 3", w2.EnqueueOffset())
	}
	if got := slotQueueOffsets(t, w2, s0); !slices.Equal(got, []int64{0, 1, 2}) {
		t.Fatalf("slot after reopen: %v", got)
	}
	w2.Close()
	if _, _, err := Open(Config{Dir: testDir, FS: mem, PrecisionMs: 100, MaxDelayMs: 4000}); err == nil || !strings.Contains(err.Error(), "slots") {
		t.Fatalf("open with another horizon: %v, want an error naming the slot count", err)
	}
}

// A torn or garbage tail of the timer log is cut at the first entry that does not verify;
// everything before it stays linked.
func TestTornTail(t *testing.T) {
	for _, tc := range []struct {
		name    string
		garbage []byte
	}{
		{"half entry", make([]byte, EntrySizeBytes/2)},
		{"zero entry", make([]byte, EntrySizeBytes)},
		{"bad crc", []byte(strings.Repeat("x", EntrySizeBytes+3))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mem := vfs.NewMem()
			w, _ := mustOpen(t, testConfig(mem))
			const s0 = 1_700_000_000_000
			if err := w.Add([]Entry{entryAt(w, 0, s0), entryAt(w, 1, s0+10)}); err != nil {
				t.Fatal(err)
			}
			end := w.LogBytes()
			if _, err := w.log.writeAt(tc.garbage, end, nil); err != nil {
				t.Fatal(err)
			}
			w.Close()
			w2, rec := mustOpen(t, testConfig(mem))
			if w2.LogBytes() != end || len(rec.Tail) != 2 {
				t.Fatalf("log %d bytes, tail %d entries; want %d bytes and the 2 whole entries", w2.LogBytes(), len(rec.Tail), end)
			}
			if got := slotQueueOffsets(t, w2, s0); !slices.Equal(got, []int64{0, 1}) {
				t.Fatalf("slot: %v", got)
			}
			if err := w2.Add([]Entry{entryAt(w2, 2, s0+20)}); err != nil {
				t.Fatal(err)
			}
			if got := slotQueueOffsets(t, w2, s0); !slices.Equal(got, []int64{0, 1, 2}) {
				t.Fatalf("slot after an add past the cut: %v", got)
			}
		})
	}
}

// A failed fdatasync stops the wheel: later writes are refused until it is reopened.
func TestFailedSyncStops(t *testing.T) {
	in := vfs.NewInjector()
	w, _ := mustOpen(t, testConfig(vfs.NewFaulty(vfs.NewMem(), in)))
	in.Add(vfs.Rule{Op: vfs.OpSync, PathContains: wheelName, Nth: 1, Err: syscall.EIO})
	if err := w.Add([]Entry{entryAt(w, 0, 1_700_000_000_000)}); !errors.Is(err, syscall.EIO) {
		t.Fatalf("add with a failing wheel sync: %v, want EIO", err)
	}
	if err := w.Add([]Entry{entryAt(w, 1, 1_700_000_000_000)}); !errors.Is(err, ErrFailed) {
		t.Fatalf("add after the failure: %v, want ErrFailed", err)
	}
	if err := w.Commit(0); !errors.Is(err, ErrFailed) {
		t.Fatalf("commit after the failure: %v, want ErrFailed", err)
	}
}
