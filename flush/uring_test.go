//go:build linux && (amd64 || arm64 || riscv64 || loong64 || ppc64le)

package flush

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ringmq/ringmq/flush/vfs"
	"github.com/ringmq/ringmq/iouring"
)

var uringSeed = flag.Uint64("uring.seed", 0, "seed for the uring backends' randomized tests (0: pick one)")

var uringBackendNames = []string{"uring", "uring-direct", "uring-direct-dsync"}

// newUringBackend builds a backend, skipping only when io_uring is unavailable.
func newUringBackend(t testing.TB, name string, opts Options) Backend {
	t.Helper()
	b, err := NewBackend(name, opts)
	if errors.Is(err, iouring.ErrNotSupported) {
		t.Skipf("%s: %v", name, err)
	}
	if err != nil {
		t.Fatalf("NewBackend(%s): %v", name, err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// uringPrewritten creates a zero-filled, fsynced file of sizeBytes, as segments are.
func uringPrewritten(t testing.TB, sizeBytes int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "segment")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(make([]byte, sizeBytes)); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	return path
}

func uringOpenWriter(t testing.TB, b Backend, path string) Writer {
	t.Helper()
	w, err := b.Open(vfs.OS{}, path)
	if err != nil {
		t.Fatalf("%s: Open(%s): %v", b.Name(), path, err)
	}
	t.Cleanup(func() { w.Close() })
	return w
}

func uringFill(b []byte, rng *rand.Rand) {
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
}

func uringWantFile(t testing.TB, path string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("file size: got %d, want %d", len(got), len(want))
	}
	if i := uringFirstDiff(got, want); i >= 0 {
		t.Fatalf("file differs from the model at byte %d: got %#x, want %#x", i, got[i], want[i])
	}
}

func uringFirstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return -1
}

func TestUringRoundTrip(t *testing.T) {
	for _, name := range uringBackendNames {
		t.Run(name, func(t *testing.T) {
			b := newUringBackend(t, name, Options{})
			path := uringPrewritten(t, 64<<10)
			w := uringOpenWriter(t, b, path)
			model := make([]byte, 64<<10)
			copy(model[10:], "hello, ")
			copy(model[17:], "ringmq")
			if err := w.WriteSync([][]byte{[]byte("hello, "), nil, []byte("ringmq")}, 10); err != nil {
				t.Fatal(err)
			}
			uringWantFile(t, path, model)
		})
	}
}

// Many commits of random sizes, buffer counts and kinds (WriteAt, WriteSync,
// Sync), mostly appends at unaligned offsets, some overwrites and a few past the
// end of the file; the file must equal the model byte for byte.
func TestUringManyUnalignedCommits(t *testing.T) {
	seed := *uringSeed
	if seed == 0 {
		seed = rand.Uint64()
	}
	t.Logf("seed %d (rerun with -uring.seed=%d)", seed, seed)
	for _, name := range uringBackendNames {
		t.Run(name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 1))
			b := newUringBackend(t, name, Options{MaxWriteBytes: 16 << 10, RingEntries: 8})
			const fileBytes = 1 << 20
			path := uringPrewritten(t, fileBytes)
			w := uringOpenWriter(t, b, path)
			model := make([]byte, fileBytes)
			off := int64(rng.IntN(5000))
			for i := range 300 {
				commitOff := off
				if rng.IntN(10) == 0 {
					commitOff = int64(rng.IntN(len(model)))
				}
				bufs := uringRandomBufs(rng, 1+rng.IntN(6), 1+rng.IntN(9000))
				end := commitOff + int64(len(bytes.Join(bufs, nil)))
				if end > int64(len(model)) {
					model = append(model, make([]byte, end-int64(len(model)))...)
				}
				copy(model[commitOff:], bytes.Join(bufs, nil))
				var err error
				switch rng.IntN(3) {
				case 0:
					err = w.WriteAt(bufs, commitOff)
				case 1:
					err = w.WriteSync(bufs, commitOff)
				default:
					if err = w.WriteAt(bufs, commitOff); err == nil {
						err = w.Sync()
					}
				}
				if err != nil {
					t.Fatalf("commit %d at %d: %v", i, commitOff, err)
				}
				if commitOff == off {
					off = end
				}
			}
			uringWantFile(t, path, model)
		})
	}
}

func uringRandomBufs(rng *rand.Rand, count, maxBytes int) [][]byte {
	bufs := make([][]byte, count)
	for i := range bufs {
		bufs[i] = make([]byte, rng.IntN(maxBytes))
		uringFill(bufs[i], rng)
	}
	return bufs
}

// uringNoFdFS is a file system whose files have no OS descriptor.
type uringNoFdFS struct{ vfs.FS }

func (uringNoFdFS) OpenReadWrite(name string) (vfs.File, error) {
	return uringNoFdFile{name: name}, nil
}

type uringNoFdFile struct {
	vfs.File
	name string
}

func (uringNoFdFile) Fd() (uintptr, bool)  { return 0, false }
func (uringNoFdFile) Size() (int64, error) { return 0, nil }
func (f uringNoFdFile) Name() string       { return f.name }
func (uringNoFdFile) Close() error         { return nil }
func (uringNoFdFile) WriteAt([]byte, int64) (int, error) {
	return 0, errors.New("uringNoFdFile: not writable")
}

func TestUringNeedsOSFile(t *testing.T) {
	for _, name := range uringBackendNames {
		b := newUringBackend(t, name, Options{})
		if _, err := b.Open(uringNoFdFS{}, "mem/segment"); !errors.Is(err, ErrNeedsOSFile) {
			t.Errorf("%s: Open of a file without Fd: got %v, want ErrNeedsOSFile", name, err)
		}
	}
}

// breakFile makes the writer's registered file slot empty, so every later
// operation completes with -EBADF: the way to make a real fdatasync fail.
func breakFile(t *testing.T, w Writer) {
	t.Helper()
	var r *iouring.Ring
	switch w := w.(type) {
	case *uringWriter:
		r = w.ring
	case *directWriter:
		r = w.ring
	}
	if err := r.UnregisterFiles(); err != nil {
		t.Fatal(err)
	}
	if err := r.RegisterFiles([]int32{-1}); err != nil {
		t.Fatal(err)
	}
}

// A failed fdatasync is returned, and every later call returns that same error.
func TestUringSyncErrorIsSticky(t *testing.T) {
	for _, name := range uringBackendNames {
		t.Run(name, func(t *testing.T) {
			b := newUringBackend(t, name, Options{})
			w := uringOpenWriter(t, b, uringPrewritten(t, 8192))
			if err := w.WriteSync([][]byte{[]byte("ok")}, 0); err != nil {
				t.Fatal(err)
			}
			breakFile(t, w)
			first := w.Sync()
			if !errors.Is(first, unix.EBADF) {
				t.Fatalf("Sync on a broken file: got %v, want EBADF", first)
			}
			for _, call := range []func() error{
				func() error { return w.WriteAt([][]byte{[]byte("x")}, 0) },
				func() error { return w.WriteSync([][]byte{[]byte("x")}, 0) },
				w.Sync,
			} {
				if err := call(); err != first {
					t.Fatalf("call after failed sync: got %v, want the first error %v", err, first)
				}
			}
		})
	}
}

// A short write in WriteSync (the file size limit cuts it) cancels the linked
// fdatasync; the Writer reports it as an error, never as success. RLIMIT_FSIZE is
// per process, so this test must not run in parallel with tests that write files
// (it is not t.Parallel, so no parallel test runs beside it); Go ignores SIGXFSZ.
func TestUringShortWriteIsAnError(t *testing.T) {
	for _, name := range uringBackendNames {
		t.Run(name, func(t *testing.T) {
			b := newUringBackend(t, name, Options{})
			path := uringPrewritten(t, 8192)
			w := uringOpenWriter(t, b, path)
			var old unix.Rlimit
			if err := unix.Getrlimit(unix.RLIMIT_FSIZE, &old); err != nil {
				t.Fatal(err)
			}
			lim := old
			lim.Cur = 12288
			if err := unix.Setrlimit(unix.RLIMIT_FSIZE, &lim); err != nil {
				t.Skipf("cannot lower RLIMIT_FSIZE: %v", err)
			}
			err := w.WriteSync([][]byte{make([]byte, 8192)}, 8192)
			unix.Setrlimit(unix.RLIMIT_FSIZE, &old)
			if err == nil {
				t.Fatal("WriteSync cut short by RLIMIT_FSIZE: got nil error")
			}
			if !errors.Is(err, io.ErrShortWrite) && !errors.Is(err, unix.EFBIG) {
				t.Fatalf("WriteSync cut short: got %v, want io.ErrShortWrite or EFBIG", err)
			}
			t.Logf("reported: %v", err)
			if err2 := w.Sync(); err2 != err {
				t.Fatalf("Sync after the short write: got %v, want the first error", err2)
			}
		})
	}
}

// The steady-state commit allocates nothing.
func TestUringWriteSyncAllocs(t *testing.T) {
	for _, name := range uringBackendNames {
		t.Run(name, func(t *testing.T) {
			b := newUringBackend(t, name, Options{})
			w := uringOpenWriter(t, b, uringPrewritten(t, 1<<20))
			bufs := [][]byte{make([]byte, 700), make([]byte, 300)}
			off := int64(0)
			allocs := testing.AllocsPerRun(50, func() {
				if err := w.WriteSync(bufs, off); err != nil {
					t.Fatal(err)
				}
				off += 1000
			})
			if allocs != 0 {
				t.Fatalf("allocations per WriteSync: got %v, want 0", allocs)
			}
		})
	}
}

func TestUringAdvanceIovecs(t *testing.T) {
	a, b := []byte("abc"), []byte("defgh")
	iov := make([]iouring.Iovec, 2)
	iouring.SetIovec(&iov[0], a)
	iouring.SetIovec(&iov[1], b)
	rest := uringAdvanceIovecs(iov, 4)
	if len(rest) != 1 || rest[0].Len != 4 || *rest[0].Base != 'e' {
		t.Fatalf("advance 4 of abc+defgh: got %d iovecs, first len %d", len(rest), rest[0].Len)
	}
	if rest = uringAdvanceIovecs(rest, 4); len(rest) != 0 {
		t.Fatalf("advance past the end: got %d iovecs, want 0", len(rest))
	}
}

func TestUringRejectsTooFewEntries(t *testing.T) {
	if _, err := NewBackend("uring", Options{RingEntries: 1}); err == nil {
		t.Fatal("uring with RingEntries 1: got nil error, want one (the linked pair needs 2)")
	}
}
