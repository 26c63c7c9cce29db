package commitlog

import (
	"errors"
	"math/rand/v2"
	"os"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ringmq/ringmq/flush/vfs"
	"github.com/ringmq/ringmq/internal/testkit"
)

// Crash tests: random workloads on vfs.Mem, a crash (Mem.Crash / CrashKeeping) at a
// random point while appenders run, recovery, and the check that every acknowledged
// record is intact and nothing corrupt is returned. RINGMQ_SEED replays one run;
// RINGMQ_CRASH_ITERS sets the number of iterations (default 12).

func crashIters() int {
	if s := os.Getenv("RINGMQ_CRASH_ITERS"); s != "" {
		if n, err := strconv.Atoi(s); err == nil && n > 0 {
			return n
		}
	}
	return 12
}

// ackLog collects the records whose waiter reported success.
type ackLog struct {
	mu   sync.Mutex
	recs []appended
}

func (a *ackLog) add(r appended) {
	a.mu.Lock()
	a.recs = append(a.recs, r)
	a.mu.Unlock()
}

func (a *ackLog) snapshot() []appended {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]appended(nil), a.recs...)
}

// workload runs appenders until stop is closed.
type workload struct {
	l      *Log
	acks   *ackLog
	all    *ackLog // every appended record (acked or not), for ASYNC checks
	nextID *atomic.Uint64
	sync   bool
	budget *atomic.Int64 // appends left for all writers: bounds an iteration's work
}

func (w *workload) run(seed uint64, stop <-chan struct{}) {
	rng := newRand(seed)
	for {
		select {
		case <-stop:
			return
		default:
		}
		if w.budget.Add(-1) < 0 {
			return
		}
		nb := 1 + rng.IntN(3)
		recs := make([]*testRec, nb)
		encs := make([]Encoder, nb)
		for i := range recs {
			size := minTestRecord + rng.IntN(4000)
			if rng.IntN(10) == 0 {
				size = minTestRecord + rng.IntN(8<<10-minTestRecord)
			}
			recs[i] = &testRec{id: w.nextID.Add(1), size: size}
			encs[i] = recs[i]
		}
		wt := newTestWaiter()
		var err error
		if nb == 1 {
			_, err = w.l.Append(recs[0], wt)
		} else {
			_, err = w.l.AppendBatch(encs, wt)
		}
		if err != nil {
			return // closed or failed: the test decides what is expected
		}
		for _, r := range recs {
			w.all.add(appended{r.id, r.off, r.size})
		}
		<-wt.ch
		if wt.err == nil {
			for _, r := range recs {
				w.acks.add(appended{r.id, r.off, r.size})
			}
		}
	}
}

func TestCrashRecoverSync(t *testing.T)  { testCrash(t, true) }
func TestCrashRecoverAsync(t *testing.T) { testCrash(t, false) }

func testCrash(t *testing.T, syncMode bool) {
	seed := testkit.Seed(t)
	rng := newRand(seed)
	iters := crashIters()
	if testing.Short() {
		iters = 3
	}
	for it := range iters {
		crashRound(t, rng.Uint64(), syncMode, it)
	}
}

// crashRound opens a fresh log and runs three crash/recover cycles on it.
func crashRound(t *testing.T, seed uint64, syncMode bool, it int) {
	rng := newRand(seed)
	fs := vfs.NewMem()
	cfg := testConfig(fs, syncMode)
	cfg.SegmentSizeBytes = []int64{64 << 10, 128 << 10, 1 << 20}[rng.IntN(3)]
	cfg.MaxPendingBytes = []int64{32 << 10, 256 << 10}[rng.IntN(2)]
	var required []appended // acked before some crash: must survive all later ones
	nextID := &atomic.Uint64{}
	for cycle := range 3 {
		l, err := Open(cfg, checkpointFor(rng, required, cfg.SegmentSizeBytes))
		if err != nil {
			t.Fatalf("iteration %d cycle %d (round seed %d): open: %v", it, cycle, seed, err)
		}
		verifyRecovered(t, l, required, seed)
		acks, all := &ackLog{}, &ackLog{}
		stop := make(chan struct{})
		var wg sync.WaitGroup
		writers := 1 + rng.IntN(6)
		target := 20 + rng.IntN(400)
		budget := &atomic.Int64{}
		budget.Store(int64(2 * target)) // batches of 1-3: the target is reached
		for i := range writers {
			wg.Add(1)
			wseed := rng.Uint64() + uint64(i)
			go func() {
				defer wg.Done()
				(&workload{l: l, acks: acks, all: all, nextID: nextID, sync: syncMode, budget: budget}).run(wseed, stop)
			}()
		}
		pollUntil(t, "appends", 20*time.Second, func() bool { return len(all.snapshot()) >= target })
		var ackedBefore []appended
		if syncMode {
			ackedBefore = acks.snapshot()
		} else {
			ackedBefore = durableBelow(all.snapshot(), l.DurableOffset())
		}
		var crashed *vfs.Mem
		if rng.IntN(2) == 0 {
			crashed = fs.Crash()
		} else {
			crashed = fs.CrashKeeping(rng.Uint64())
		}
		close(stop)
		wg.Wait()
		l.Close()
		required = append(required, ackedBefore...)
		fs = crashed
		cfg.FS = fs
	}
	l, err := Open(cfg, 0)
	if err != nil {
		t.Fatalf("iteration %d final open (round seed %d): %v", it, seed, err)
	}
	verifyRecovered(t, l, required, seed)
	l.Close()
}

// durableBelow returns the records entirely below durable.
func durableBelow(recs []appended, durable int64) []appended {
	var out []appended
	for _, r := range recs {
		if r.off+int64(r.size) <= durable {
			out = append(out, r)
		}
	}
	return out
}

// checkpointFor picks 0 or the start of the segment of a required record.
func checkpointFor(rng *rand.Rand, required []appended, segSize int64) int64 {
	if len(required) == 0 || rng.IntN(2) == 0 {
		return 0
	}
	r := required[rng.IntN(len(required))]
	return r.off - r.off%segSize
}

// verifyRecovered checks every required record reads back intact and a full scan
// returns only valid records, each once.
func verifyRecovered(t *testing.T, l *Log, required []appended, seed uint64) {
	t.Helper()
	for _, a := range required {
		b, release, err := l.Read(a.off, a.size)
		if err != nil {
			t.Fatalf("round seed %d: acknowledged record %d at %d (size %d) lost: %v (recovered end %d)", seed, a.id, a.off, a.size, err, l.RecoveredEnd())
		}
		err = checkRecord(b, a.id, a.size)
		release()
		if err != nil {
			t.Fatalf("round seed %d: acknowledged record %d at %d corrupt: %v", seed, a.id, a.off, err)
		}
	}
	seen := map[uint64]int64{}
	var last int64 = -1
	err := l.Scan(l.MinOffset(), func(off int64, rec []byte) bool {
		if off <= last {
			t.Fatalf("round seed %d: scan went back from %d to %d", seed, last, off)
		}
		last = off
		if _, err := testValidate(rec); err != nil {
			t.Fatalf("round seed %d: scan returned a corrupt record at %d: %v", seed, off, err)
		}
		id := uint64(rec[12])<<56 | uint64(rec[13])<<48 | uint64(rec[14])<<40 | uint64(rec[15])<<32 |
			uint64(rec[16])<<24 | uint64(rec[17])<<16 | uint64(rec[18])<<8 | uint64(rec[19])
		if prev, dup := seen[id]; dup {
			t.Fatalf("round seed %d: record %d at %d and %d", seed, id, prev, off)
		}
		seen[id] = off
		return true
	})
	if err != nil {
		var ce *CorruptError
		if errors.As(err, &ce) {
			t.Fatalf("round seed %d: scan: %v", seed, err)
		}
		t.Fatalf("round seed %d: scan: %v", seed, err)
	}
	ids := make([]uint64, 0, len(required))
	for _, a := range required {
		if off, ok := seen[a.id]; !ok || off != a.off {
			t.Fatalf("round seed %d: acknowledged record %d at %d missing from scan", seed, a.id, a.off)
		}
		ids = append(ids, a.id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
}
