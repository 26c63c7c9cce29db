package commitlog

import (
	"errors"
	"testing"

	"github.com/ringmq/ringmq/flush/vfs"
	"github.com/ringmq/ringmq/internal/testkit"
)

type appended struct {
	id   uint64
	off  int64
	size int
}

// appendN appends n records of random sizes and waits for each (sync mode).
func appendN(t *testing.T, l *Log, seed uint64, n int, firstID uint64) []appended {
	t.Helper()
	rng := newRand(seed)
	var out []appended
	for i := range n {
		r := &testRec{id: firstID + uint64(i), size: minTestRecord + rng.IntN(3000)}
		w := newTestWaiter()
		off, err := l.Append(r, w)
		if err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
		if off != r.off {
			t.Fatalf("append returned offset %d, Encode got %d", off, r.off)
		}
		if err := w.wait(t); err != nil {
			t.Fatalf("waiter %d: %v", i, err)
		}
		out = append(out, appended{r.id, off, r.size})
	}
	return out
}

func readAll(t *testing.T, l *Log, recs []appended) {
	t.Helper()
	for _, a := range recs {
		b, release, err := l.Read(a.off, a.size)
		if err != nil {
			t.Fatalf("read id %d at %d: %v", a.id, a.off, err)
		}
		if err := checkRecord(b, a.id, a.size); err != nil {
			t.Fatalf("read id %d at %d: %v", a.id, a.off, err)
		}
		release()
	}
}

func TestAppendReadReopen(t *testing.T) {
	seed := testkit.Seed(t)
	fs := vfs.NewMem()
	l, err := Open(testConfig(fs, true), 0)
	if err != nil {
		t.Fatal(err)
	}
	recs := appendN(t, l, seed, 300, 1)
	if got, want := l.DurableOffset(), recs[len(recs)-1].off+int64(recs[len(recs)-1].size); got != want {
		t.Fatalf("durable offset %d, want %d", got, want)
	}
	readAll(t, l, recs)
	end := l.AppendedOffset()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	l, err = Open(testConfig(fs, true), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if l.RecoveredEnd() != end {
		t.Fatalf("recovered end %d, want %d", l.RecoveredEnd(), end)
	}
	readAll(t, l, recs)
	i := 0
	err = l.Scan(0, func(off int64, rec []byte) bool {
		if off != recs[i].off {
			t.Fatalf("scan record %d at %d, want %d", i, off, recs[i].off)
		}
		if err := checkRecord(rec, recs[i].id, recs[i].size); err != nil {
			t.Fatal(err)
		}
		i++
		return true
	})
	if err != nil || i != len(recs) {
		t.Fatalf("scan: %d records, err %v; want %d", i, err, len(recs))
	}
	more := appendN(t, l, seed+1, 50, 1000)
	readAll(t, l, more)
}

func TestRecordSizeLimits(t *testing.T) {
	l, err := Open(testConfig(vfs.NewMem(), true), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for _, size := range []int{0, 8<<10 + 1} {
		if _, err := l.Append(&testRec{size: size}, nil); !errors.Is(err, ErrRecordSize) {
			t.Fatalf("append of %d bytes: got %v, want ErrRecordSize", size, err)
		}
	}
	if _, err := l.Append(&testRec{id: 1, size: 8 << 10}, nil); err != nil {
		t.Fatalf("append of the maximum size: %v", err)
	}
}
