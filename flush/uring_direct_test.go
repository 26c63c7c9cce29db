//go:build linux && (amd64 || arm64 || riscv64 || loong64 || ppc64le)

package flush

import (
	"bytes"
	"math/rand/v2"
	"os"
	"testing"
)

// O_DIRECT writes invalidate the page cache: a reader through an ordinary
// descriptor that had the old bytes cached sees the new ones after WriteSync.
func TestUringDirectPageCacheSeesWrites(t *testing.T) {
	forUringDirect(t, testDirectPageCacheSeesWrites)
}

func testDirectPageCacheSeesWrites(t *testing.T, name string) {
	b := newUringBackend(t, name, Options{})
	path := uringPrewritten(t, 64<<10)
	r, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got := make([]byte, 64<<10)
	if _, err := r.ReadAt(got, 0); err != nil { // uringFill the page cache with zeros
		t.Fatal(err)
	}
	w := uringOpenWriter(t, b, path)
	data := bytes.Repeat([]byte("ringmq!"), 3000)
	if err := w.WriteSync([][]byte{data}, 1234); err != nil {
		t.Fatal(err)
	}
	if _, err := r.ReadAt(got, 0); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got[1234:1234+len(data)], data) {
		t.Fatal("buffered reader does not see the O_DIRECT write")
	}
	if got[1233] != 0 || got[1234+len(data)] != 0 {
		t.Fatal("bytes around the write changed")
	}
}

// A writer opened on a file with data, writing inside blocks it has not seen,
// reads those blocks first: the bytes around the write are kept.
func TestUringDirectKeepsNeighbouringBytes(t *testing.T) {
	forUringDirect(t, testDirectKeepsNeighbouringBytes)
}

func testDirectKeepsNeighbouringBytes(t *testing.T, name string) {
	b := newUringBackend(t, name, Options{})
	path := uringPrewritten(t, 0)
	rng := rand.New(rand.NewPCG(7, 7))
	model := make([]byte, 50000)
	uringFill(model, rng)
	if err := os.WriteFile(path, model, 0o600); err != nil {
		t.Fatal(err)
	}
	w := uringOpenWriter(t, b, path)
	for _, c := range []struct{ off, n int }{{5000, 100}, {4095, 2}, {12000, 9000}, {49990, 10}} {
		data := make([]byte, c.n)
		uringFill(data, rng)
		copy(model[c.off:], data)
		if err := w.WriteSync([][]byte{data}, int64(c.off)); err != nil {
			t.Fatalf("write %d at %d: %v", c.n, c.off, err)
		}
	}
	uringWantFile(t, path, model)
}

// Writes past the end of the file leave it exactly as long as the data, as a
// pwrite would, although O_DIRECT writes whole blocks.
func TestUringDirectExtendsToExactSize(t *testing.T) { forUringDirect(t, testDirectExtendsToExactSize) }

func testDirectExtendsToExactSize(t *testing.T, name string) {
	b := newUringBackend(t, name, Options{})
	path := uringPrewritten(t, 5000)
	w := uringOpenWriter(t, b, path)
	model := make([]byte, 5000)
	for _, c := range []struct{ off, n int }{{4990, 20}, {5010, 3000}, {9000, 1}} {
		data := bytes.Repeat([]byte{byte(c.n)}, c.n)
		if c.off+c.n > len(model) {
			model = append(model, make([]byte, c.off+c.n-len(model))...)
		}
		copy(model[c.off:], data)
		if err := w.WriteSync([][]byte{data}, int64(c.off)); err != nil {
			t.Fatal(err)
		}
		uringWantFile(t, path, model)
	}
}

// Commits larger than MaxWriteBytes are split into rounds, and many buffers are
// gathered into one staging buffer.
func TestUringDirectSplitsLargeCommits(t *testing.T) { forUringDirect(t, testDirectSplitsLargeCommits) }

func testDirectSplitsLargeCommits(t *testing.T, name string) {
	b := newUringBackend(t, name, Options{MaxWriteBytes: 8192})
	path := uringPrewritten(t, 1<<20)
	w := uringOpenWriter(t, b, path)
	rng := rand.New(rand.NewPCG(3, 3))
	bufs := uringRandomBufs(rng, 40, 5000)
	model := make([]byte, 1<<20)
	copy(model[777:], bytes.Join(bufs, nil))
	if err := w.WriteSync(bufs, 777); err != nil {
		t.Fatal(err)
	}
	uringWantFile(t, path, model)
}

func TestUringDirectRejectsBadMaxWriteBytes(t *testing.T) {
	if _, err := NewBackend("uring-direct", Options{MaxWriteBytes: directMaxMaxWriteBytes + 1}); err == nil {
		t.Fatal("MaxWriteBytes over the maximum: got nil error")
	}
}

// forUringDirect runs a test against both O_DIRECT backends.
func forUringDirect(t *testing.T, test func(t *testing.T, name string)) {
	for _, name := range []string{"uring-direct", "uring-direct-dsync"} {
		t.Run(name, func(t *testing.T) { test(t, name) })
	}
}

// Small unaligned appends take the bytes past their end from the tail copy or
// the read-ahead window, not from a read per block.
func TestUringDirectAppendsReadAhead(t *testing.T) { forUringDirect(t, testDirectAppendsReadAhead) }

func testDirectAppendsReadAhead(t *testing.T, name string) {
	b := newUringBackend(t, name, Options{})
	path := uringPrewritten(t, 1<<20)
	w := uringOpenWriter(t, b, path)
	model := make([]byte, 1<<20)
	rng := rand.New(rand.NewPCG(5, 5))
	off := 0
	for off+1000 <= 600<<10 {
		data := make([]byte, 1000)
		uringFill(data, rng)
		copy(model[off:], data)
		if err := w.WriteSync([][]byte{data}, int64(off)); err != nil {
			t.Fatal(err)
		}
		off += 1000
	}
	uringWantFile(t, path, model)
	// The first append reads its block; every window then serves ~256 appends.
	if reads := w.(*directWriter).blockReads; reads > 1 {
		t.Fatalf("synchronous block reads for %d appends: got %d, want at most 1", off/1000, reads)
	}
}

// RWF_DSYNC covers only the writes that carry it: uring-direct-dsync sends an
// fdatasync exactly when an earlier WriteAt left bytes unsynced, and makes every
// round of a split WriteSync durable; uring-direct sends one per WriteSync.
func TestUringDirectSyncCoversEarlierWrites(t *testing.T) {
	steps := []struct {
		what    string
		sync    bool
		n       int
		wantDrn int // fdatasyncs sent so far, uring-direct
		wantDsy int // fdatasyncs sent so far, uring-direct-dsync
	}{
		{"WriteSync", true, 100, 1, 0},
		{"WriteAt", false, 100, 1, 0},
		{"WriteSync after a WriteAt", true, 100, 2, 1},
		{"WriteSync", true, 100, 3, 1},
		{"WriteSync split in rounds", true, 20000, 4, 1},
	}
	forUringDirect(t, func(t *testing.T, name string) {
		b := newUringBackend(t, name, Options{MaxWriteBytes: 8192})
		path := uringPrewritten(t, 1<<20)
		w := uringOpenWriter(t, b, path)
		model := make([]byte, 1<<20)
		rng := rand.New(rand.NewPCG(9, 9))
		off := 10
		for _, s := range steps {
			data := make([]byte, s.n)
			uringFill(data, rng)
			copy(model[off:], data)
			var err error
			if s.sync {
				err = w.WriteSync([][]byte{data}, int64(off))
			} else {
				err = w.WriteAt([][]byte{data}, int64(off))
			}
			if err != nil {
				t.Fatalf("%s: %v", s.what, err)
			}
			off += s.n
			want := s.wantDrn
			if name == "uring-direct-dsync" {
				want = s.wantDsy
			}
			if got := w.(*directWriter).fsyncs; got != want {
				t.Fatalf("after %s: fdatasyncs sent: got %d, want %d", s.what, got, want)
			}
		}
		uringWantFile(t, path, model)
	})
}
