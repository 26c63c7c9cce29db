//go:build linux && (amd64 || arm64 || riscv64 || loong64 || ppc64le)

package iouring

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// newTestRing sets up a ring, skipping only when io_uring is unavailable here.
func newTestRing(t testing.TB, entries uint32) *Ring {
	t.Helper()
	r, err := New(entries)
	if errors.Is(err, ErrNotSupported) {
		t.Skipf("io_uring unavailable: %v", err)
	}
	if err != nil {
		t.Fatalf("New(%d): %v", entries, err)
	}
	t.Cleanup(func() {
		if err := r.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return r
}

func tempFile(t testing.TB, sizeBytes int64) *os.File {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(t.TempDir(), "f"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if sizeBytes > 0 {
		if err := f.Truncate(sizeBytes); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = seed + byte(i*7)
	}
	return b
}

// wait submits and waits for n completions, failing the test on error.
func wait(t testing.TB, r *Ring, n int) {
	t.Helper()
	if _, err := r.SubmitAndWait(n); err != nil {
		t.Fatalf("SubmitAndWait(%d): %v", n, err)
	}
}

func wantRes(t testing.TB, what string, c *Completion, want int32) {
	t.Helper()
	if !c.Done {
		t.Fatalf("%s: not done", what)
	}
	if c.Res != want {
		t.Fatalf("%s: got res %d (%v), want %d", what, c.Res, c.Err(), want)
	}
}

func TestNop(t *testing.T) {
	r := newTestRing(t, 8)
	var cs [5]Completion
	for i := range cs {
		if err := r.Nop(0, &cs[i]); err != nil {
			t.Fatal(err)
		}
	}
	wait(t, r, len(cs))
	for i := range cs {
		wantRes(t, "nop", &cs[i], 0)
	}
	if got := r.InFlight(); got != 0 {
		t.Fatalf("InFlight after reap: got %d, want 0", got)
	}
}

func TestWriteReadRoundTrip(t *testing.T) {
	r := newTestRing(t, 8)
	f := tempFile(t, 0)
	fd := int32(f.Fd())
	data := pattern(5000, 1)
	var cw, cr Completion
	if err := r.Write(fd, data, 100, 0, &cw); err != nil {
		t.Fatal(err)
	}
	wait(t, r, 1)
	wantRes(t, "write", &cw, int32(len(data)))
	got := make([]byte, len(data))
	if err := r.Read(fd, got, 100, 0, &cr); err != nil {
		t.Fatal(err)
	}
	wait(t, r, 1)
	wantRes(t, "read", &cr, int32(len(data)))
	if !bytes.Equal(got, data) {
		t.Fatal("read back differs from written")
	}
}

func TestWritevReadv(t *testing.T) {
	r := newTestRing(t, 8)
	f := tempFile(t, 0)
	fd := int32(f.Fd())
	parts := [][]byte{pattern(10, 1), pattern(4096, 2), pattern(333, 3)}
	iov := make([]Iovec, len(parts))
	for i, p := range parts {
		SetIovec(&iov[i], p)
	}
	var cw, cr Completion
	if err := r.Writev(fd, iov, 7, 0, &cw); err != nil {
		t.Fatal(err)
	}
	wait(t, r, 1)
	wantRes(t, "writev", &cw, 10+4096+333)
	back := [][]byte{make([]byte, 4000), make([]byte, 439)}
	riov := make([]Iovec, 2)
	SetIovec(&riov[0], back[0])
	SetIovec(&riov[1], back[1])
	if err := r.Readv(fd, riov, 7, 0, &cr); err != nil {
		t.Fatal(err)
	}
	wait(t, r, 1)
	wantRes(t, "readv", &cr, 4439)
	if !bytes.Equal(append(back[0], back[1]...), bytes.Join(parts, nil)) {
		t.Fatal("readv bytes differ from writev bytes")
	}
}

func TestLinkedWriteFdatasync(t *testing.T) {
	r := newTestRing(t, 8)
	f := tempFile(t, 1<<20)
	fd := int32(f.Fd())
	data := pattern(4096, 9)
	iov := []Iovec{{}}
	SetIovec(&iov[0], data)
	var cw, cs Completion
	if err := r.Writev(fd, iov, 8192, FlagLink, &cw); err != nil {
		t.Fatal(err)
	}
	if err := r.Fsync(fd, FsyncDatasync, 0, &cs); err != nil {
		t.Fatal(err)
	}
	n, err := r.SubmitAndWait(2)
	if err != nil || n != 2 {
		t.Fatalf("SubmitAndWait(2): got %d, %v; want 2, nil", n, err)
	}
	wantRes(t, "writev", &cw, 4096)
	wantRes(t, "fdatasync", &cs, 0)
}

// A short read (past EOF) breaks its link chain: the linked operations complete
// with -ECANCELED. The same holds for a short write.
func TestShortReadCancelsLink(t *testing.T) {
	r := newTestRing(t, 8)
	f := tempFile(t, 1000)
	fd := int32(f.Fd())
	buf := make([]byte, 4096)
	var cr, cn1, cn2 Completion
	if err := r.Read(fd, buf, 600, FlagLink, &cr); err != nil {
		t.Fatal(err)
	}
	r.Nop(FlagLink, &cn1)
	r.Nop(0, &cn2)
	wait(t, r, 3)
	wantRes(t, "short read", &cr, 400)
	wantRes(t, "linked nop 1", &cn1, -int32(unix.ECANCELED))
	wantRes(t, "linked nop 2", &cn2, -int32(unix.ECANCELED))
	var ce Completion
	r.Read(fd, buf, 5000, 0, &ce)
	wait(t, r, 1)
	wantRes(t, "read at EOF", &ce, 0)
}

// FlagDrain orders an operation after everything submitted before it: a read
// drained behind many writes sees all of them.
func TestDrain(t *testing.T) {
	r := newTestRing(t, 16)
	f := tempFile(t, 0)
	fd := int32(f.Fd())
	const n, blockBytes = 12, 4096
	var cw [n]Completion
	data := pattern(n*blockBytes, 5)
	for i := range n {
		if err := r.Write(fd, data[i*blockBytes:(i+1)*blockBytes], uint64(i*blockBytes), 0, &cw[i]); err != nil {
			t.Fatal(err)
		}
	}
	var cs, cr Completion
	r.Fsync(fd, FsyncDatasync, FlagDrain, &cs)
	got := make([]byte, len(data))
	r.Read(fd, got, 0, FlagDrain, &cr)
	wait(t, r, n+2)
	for i := range cw {
		wantRes(t, "write", &cw[i], blockBytes)
	}
	wantRes(t, "drained fdatasync", &cs, 0)
	wantRes(t, "drained read", &cr, int32(len(data)))
	if !bytes.Equal(got, data) {
		t.Fatal("drained read did not see every write")
	}
}

func TestFixedBuffersAndFiles(t *testing.T) {
	r := newTestRing(t, 8)
	f := tempFile(t, 0)
	mem, err := unix.Mmap(-1, 0, 2*4096, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(mem)
	if err := r.RegisterBuffers([][]byte{mem[:4096], mem[4096:]}); err != nil {
		t.Fatal(err)
	}
	if err := r.RegisterFiles([]int32{int32(f.Fd())}); err != nil {
		t.Fatal(err)
	}
	copy(mem[:4096], pattern(4096, 3))
	var cw, cr Completion
	if err := r.WriteFixed(0, mem[100:4000], 0, 50, FlagFixedFile, &cw); err != nil {
		t.Fatal(err)
	}
	wait(t, r, 1)
	wantRes(t, "write fixed", &cw, 3900)
	if err := r.ReadFixed(0, mem[4096:4096+3900], 1, 50, FlagFixedFile, &cr); err != nil {
		t.Fatal(err)
	}
	wait(t, r, 1)
	wantRes(t, "read fixed", &cr, 3900)
	if !bytes.Equal(mem[4096:4096+3900], mem[100:4000]) {
		t.Fatal("fixed read differs from fixed write")
	}
	if err := r.UnregisterFiles(); err != nil {
		t.Fatal(err)
	}
	if err := r.UnregisterBuffers(); err != nil {
		t.Fatal(err)
	}
}

func TestBadFdCompletesWithEBADF(t *testing.T) {
	r := newTestRing(t, 8)
	var c Completion
	r.Write(1<<20, []byte("x"), 0, 0, &c)
	wait(t, r, 1)
	wantRes(t, "write to bad fd", &c, -int32(unix.EBADF))
	if !errors.Is(c.Err(), syscall.EBADF) {
		t.Fatalf("Err: got %v, want EBADF", c.Err())
	}
}

// More operations than SQ entries and in-flight slots: preparing never fails, the
// ring submits and waits for room.
func TestSQFullBackpressure(t *testing.T) {
	r := newTestRing(t, 4)
	f := tempFile(t, 0)
	fd := int32(f.Fd())
	const n = 100
	cs := make([]Completion, n)
	data := pattern(n, 1)
	for i := range n {
		if err := r.Write(fd, data[i:i+1], uint64(i), 0, &cs[i]); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
		if got := r.InFlight(); got > r.MaxInFlight() {
			t.Fatalf("InFlight %d exceeds MaxInFlight %d", got, r.MaxInFlight())
		}
	}
	wait(t, r, r.InFlight())
	for i := range cs {
		wantRes(t, "write", &cs[i], 1)
	}
	got := make([]byte, n)
	if _, err := f.ReadAt(got, 0); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("file content after %d writes differs (err %v)", n, err)
	}
}

// A link chain is held back when backpressure submits, so the chain still breaks
// as a unit: the short read cancels both NOPs behind it.
func TestBackpressureKeepsChainWhole(t *testing.T) {
	r := newTestRing(t, 4)
	f := tempFile(t, 10)
	fd := int32(f.Fd())
	var pre [3]Completion
	for i := range pre {
		r.Nop(0, &pre[i])
	}
	buf := make([]byte, 100)
	var cr, c1, c2 Completion
	r.Read(fd, buf, 0, FlagLink, &cr)
	r.Nop(FlagLink, &c1) // SQ full here: the 3 NOPs are submitted, the chain is not
	r.Nop(0, &c2)
	wait(t, r, r.InFlight())
	wantRes(t, "short read", &cr, 10)
	wantRes(t, "chained nop 1", &c1, -int32(unix.ECANCELED))
	wantRes(t, "chained nop 2", &c2, -int32(unix.ECANCELED))
}

func TestChainLongerThanSQPanics(t *testing.T) {
	r := newTestRing(t, 2)
	cs := make([]Completion, 8)
	defer func() {
		if recover() == nil {
			t.Fatal("want a BUG panic for a chain longer than the SQ")
		}
		r.chainOpen = false
		r.Nop(0, &cs[7])
		wait(t, r, r.InFlight())
	}()
	for i := range cs {
		r.Nop(FlagLink, &cs[i])
	}
}

func TestFallocate(t *testing.T) {
	r := newTestRing(t, 4)
	f := tempFile(t, 0)
	var c Completion
	r.Fallocate(int32(f.Fd()), 0, 0, 1<<20, 0, &c)
	wait(t, r, 1)
	wantRes(t, "fallocate", &c, 0)
	st, err := f.Stat()
	if err != nil || st.Size() != 1<<20 {
		t.Fatalf("size after fallocate: got %d (%v), want %d", st.Size(), err, 1<<20)
	}
}

func TestProbe(t *testing.T) {
	r := newTestRing(t, 4)
	for _, op := range []Op{OpNop, OpReadv, OpWritev, OpFsync, OpReadFixed, OpWriteFixed, OpFallocate, OpRead, OpWrite} {
		if !r.Supports(op) {
			t.Errorf("Supports(%d): got false on kernel with io_uring, want true", op)
		}
	}
	if r.Supports(Op(250)) {
		t.Error("Supports(250): got true, want false")
	}
	if r.Features()&featNoDrop == 0 {
		t.Log("kernel lacks IORING_FEAT_NODROP")
	}
}

func TestCloseWaitsForInFlight(t *testing.T) {
	r, err := New(4)
	if errors.Is(err, ErrNotSupported) {
		t.Skip(err)
	}
	f := tempFile(t, 0)
	var cs [6]Completion
	for i := range cs {
		r.Write(int32(f.Fd()), []byte{byte(i)}, uint64(i), 0, &cs[i])
	}
	if _, err := r.Submit(); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	for i := range cs {
		wantRes(t, "write before close", &cs[i], 1)
	}
}

// One prepare+submit+wait cycle allocates nothing.
func TestNoAllocationPerOperation(t *testing.T) {
	r := newTestRing(t, 8)
	f := tempFile(t, 1<<16)
	fd := int32(f.Fd())
	data := pattern(512, 1)
	iov := []Iovec{{}}
	SetIovec(&iov[0], data)
	var cw, cs, cn Completion
	allocs := testing.AllocsPerRun(200, func() {
		r.Writev(fd, iov, 0, FlagLink, &cw)
		r.Fsync(fd, FsyncDatasync, 0, &cs)
		r.Nop(0, &cn)
		if _, err := r.SubmitAndWait(3); err != nil || cs.Res != 0 {
			t.Fatalf("cycle: %v res %d", err, cs.Res)
		}
	})
	if allocs != 0 {
		t.Fatalf("allocations per cycle: got %v, want 0", allocs)
	}
	runtime.KeepAlive(data)
}

func TestExplainSetup(t *testing.T) {
	tests := []struct {
		errno       syscall.Errno
		sysctl      string
		want        string
		unavailable bool
	}{
		{unix.ENOSYS, "0", "no io_uring", true},
		{unix.EPERM, "2", "io_uring_disabled=2", true},
		{unix.EPERM, "1", "io_uring_group", true},
		{unix.EPERM, "0", "seccomp", true},
		{unix.EPERM, "", "unreadable", true},
		{unix.ENOMEM, "0", "RLIMIT_MEMLOCK", false},
		{unix.EINVAL, "0", "parameters", false},
	}
	for _, tt := range tests {
		reason, unavailable := explainSetup(tt.errno, tt.sysctl)
		if !bytes.Contains([]byte(reason), []byte(tt.want)) || unavailable != tt.unavailable {
			t.Errorf("explainSetup(%v, %q): got %q, %v; want it to mention %q, %v",
				tt.errno, tt.sysctl, reason, unavailable, tt.want, tt.unavailable)
		}
	}
	err := error(&UnavailableError{Errno: unix.EPERM, Reason: "x"})
	if !errors.Is(err, ErrNotSupported) || !errors.Is(err, unix.EPERM) {
		t.Errorf("UnavailableError %v: want errors.Is ErrNotSupported and EPERM", err)
	}
}

func TestNewRejectsTooManyEntries(t *testing.T) {
	if _, err := New(MaxEntries + 1); err == nil {
		t.Fatal("New(MaxEntries+1): got nil error")
	}
}
