package commitlog

import (
	"errors"
	"io"
	"syscall"
	"testing"
	"time"

	"github.com/ringmq/ringmq/flush/vfs"
	"github.com/ringmq/ringmq/internal/testkit"
)

const seg0 = "00000000000000000000"

// failAfterAcks appends acked records, programs the fault, and checks that the
// waiter in flight and every later append fail with ErrStoreFailed wrapping want; a
// reopen then recovers every acked record.
func failAfterAcks(t *testing.T, rule vfs.Rule, want error) {
	seed := testkit.Seed(t)
	mem := vfs.NewMem()
	in := vfs.NewInjector()
	cfg := testConfig(vfs.NewFaulty(mem, in), true)
	cfg.SegmentSizeBytes = 1 << 20
	l, err := Open(cfg, 0)
	if err != nil {
		t.Fatal(err)
	}
	acked := appendN(t, l, seed, 40, 1)
	in.Add(rule)
	w := newTestWaiter()
	if _, err := l.Append(&testRec{id: 100, size: 500}, w); err != nil {
		t.Fatalf("append before the failure is seen: %v", err)
	}
	werr := w.wait(t)
	if !errors.Is(werr, ErrStoreFailed) || !errors.Is(werr, want) {
		t.Fatalf("waiter: got %v, want ErrStoreFailed wrapping %v", werr, want)
	}
	for i := range 3 {
		_, err := l.Append(&testRec{id: 200 + uint64(i), size: 100}, newTestWaiter())
		if !errors.Is(err, ErrStoreFailed) || !errors.Is(err, want) {
			t.Fatalf("append after the failure: got %v, want ErrStoreFailed wrapping %v", err, want)
		}
	}
	fired := in.Fired()
	if err := l.Close(); !errors.Is(err, ErrStoreFailed) {
		t.Fatalf("close: got %v, want ErrStoreFailed", err)
	}
	if in.Fired() != fired {
		t.Fatalf("the failed operation was retried (%d faults, then %d)", fired, in.Fired())
	}
	// Reopen (after a crash, and without one): everything acked is there.
	for _, fs := range []*vfs.Mem{mem.Crash(), mem} {
		cfg.FS = fs
		l, err := Open(cfg, 0)
		if err != nil {
			t.Fatalf("reopen: %v", err)
		}
		verifyRecovered(t, l, acked, seed)
		more := appendN(t, l, seed+1, 5, 1000)
		readAll(t, l, more)
		l.Close()
	}
}

func TestFsyncFailureIsSticky(t *testing.T) {
	failAfterAcks(t, vfs.Rule{Op: vfs.OpSync, PathContains: seg0, Nth: 1, Err: syscall.EIO}, syscall.EIO)
}

func TestWriteEIOIsSticky(t *testing.T) {
	failAfterAcks(t, vfs.Rule{Op: vfs.OpWrite, PathContains: seg0, Nth: 1, Err: syscall.EIO}, syscall.EIO)
}

func TestShortWriteIsSticky(t *testing.T) {
	failAfterAcks(t, vfs.Rule{Op: vfs.OpWrite, PathContains: seg0, Nth: 1, ShortBytes: 100}, io.ErrShortWrite)
}

// TestDiskFullThenSpaceReturns: ENOSPC on the flusher's write fails the waiters in
// flight and the appends with ErrDiskFull; appends resume by themselves when space
// returns, and the refused bytes are rewritten.
func TestDiskFullThenSpaceReturns(t *testing.T) {
	seed := testkit.Seed(t)
	mem := vfs.NewMem()
	in := vfs.NewInjector()
	cfg := testConfig(vfs.NewFaulty(mem, in), true)
	cfg.SegmentSizeBytes = 1 << 20
	l, err := Open(cfg, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	acked := appendN(t, l, seed, 20, 1)
	in.SetNoSpace(true)
	w := newTestWaiter()
	if _, err := l.Append(&testRec{id: 100, size: 500}, w); err != nil && !errors.Is(err, ErrDiskFull) {
		t.Fatalf("append: %v", err)
	} else if err == nil {
		if werr := w.wait(t); !errors.Is(werr, ErrDiskFull) {
			t.Fatalf("waiter: got %v, want ErrDiskFull", werr)
		}
	}
	pollUntil(t, "appends refused with ErrDiskFull", 5*time.Second, func() bool {
		_, err := l.Append(&testRec{id: 101, size: 100}, newTestWaiter())
		return errors.Is(err, ErrDiskFull)
	})
	if st := l.Stats(); st.DiskFull == "" {
		t.Fatal("Stats.DiskFull empty while appends are refused")
	}
	// Reads keep working.
	readAll(t, l, acked)

	in.SetNoSpace(false)
	var resumed []appended
	pollUntil(t, "appends to resume", 5*time.Second, func() bool {
		r := &testRec{id: 102, size: 300}
		w := newTestWaiter()
		if _, err := l.Append(r, w); err != nil {
			return false
		}
		if err := w.wait(t); err != nil {
			t.Fatalf("waiter after space returned: %v", err)
		}
		resumed = append(resumed, appended{r.id, r.off, r.size})
		return true
	})
	readAll(t, l, acked)
	readAll(t, l, resumed)
	if st := l.Stats(); st.DiskFull != "" {
		t.Fatalf("Stats.DiskFull = %q after space returned", st.DiskFull)
	}
	l.Close()
	cfg.FS = mem.Crash()
	l2, err := Open(cfg, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	verifyRecovered(t, l2, append(acked, resumed...), seed)
}

// TestDiskRatioDeletesOldestThenRefuses: over DiskMaxUsedSpaceRatio the oldest
// segments go first; with nothing left to delete appends fail with ErrDiskFull and
// resume once the disk grows.
func TestDiskRatioDeletesOldestThenRefuses(t *testing.T) {
	seed := testkit.Seed(t)
	mem := vfs.NewMem()
	cfg := testConfig(mem, true)
	cfg.DiskMaxUsedSpaceRatio = 50
	l, err := Open(cfg, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	mem.SetCapacity(16 * 64 << 10) // 16 segments; over 8 the janitor deletes
	appendN(t, l, seed, 400, 1)    // about 10 segments
	pollUntil(t, "old segments deleted", 5*time.Second, func() bool { return l.Stats().SegmentsDeleted > 0 })
	if l.MinOffset() == 0 {
		t.Fatal("MinOffset still 0 after deletion")
	}
	if _, _, err := l.Read(0, 100); !errors.Is(err, ErrOutOfRange) {
		t.Fatalf("read of a deleted segment: got %v, want ErrOutOfRange", err)
	}
	mem.SetCapacity(4 * 64 << 10) // even the active + ready segments are over 50%
	pollUntil(t, "appends refused", 5*time.Second, func() bool {
		_, err := l.Append(&testRec{id: 9000, size: 100}, nil)
		return errors.Is(err, ErrDiskFull)
	})
	mem.SetCapacity(1 << 30)
	pollUntil(t, "appends to resume", 5*time.Second, func() bool {
		_, err := l.Append(&testRec{id: 9001, size: 100}, nil)
		return err == nil
	})
}

// TestRetentionWaitsForPinnedReads: a segment past FileReservedTime is deleted at
// DeleteWhenHour, but only after its views are released.
func TestRetentionWaitsForPinnedReads(t *testing.T) {
	seed := testkit.Seed(t)
	mem := vfs.NewMem()
	cfg := testConfig(mem, true)
	cfg.FileReservedTime = time.Nanosecond
	cfg.DeleteWhenHour = 3
	defer wallClock.Store(nil)
	midnight := func() time.Time { return time.Date(2026, 1, 1, 0, 0, 0, 0, time.Local) }
	wallClock.Store(&midnight) // not the delete hour yet
	l, err := Open(cfg, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	recs := appendN(t, l, seed, 100, 1)
	b, release, err := l.Read(recs[0].off, recs[0].size)
	if err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(48 * time.Hour)
	deleteHour := func() time.Time { return time.Date(later.Year(), later.Month(), later.Day(), 3, 0, 0, 0, time.Local) }
	wallClock.Store(&deleteHour)
	pollUntil(t, "the oldest segment to leave the log", 5*time.Second, func() bool { return l.MinOffset() > 0 })
	if _, err := mem.Stat("/data/commitlog/" + seg0); err != nil {
		t.Fatalf("segment removed while a read pins it: %v", err)
	}
	if err := checkRecord(b, recs[0].id, recs[0].size); err != nil {
		t.Fatalf("pinned view changed: %v", err)
	}
	release()
	pollUntil(t, "the segment file to be removed", 5*time.Second, func() bool {
		_, err := mem.Stat("/data/commitlog/" + seg0)
		return err != nil
	})
	// The deleted segment is reused by the allocator for a later segment.
	appendN(t, l, seed+1, 200, 1000)
	if l.Stats().SegmentsRecycled == 0 {
		t.Fatal("no segment recycled")
	}
}
