//go:build linux && (amd64 || arm64 || riscv64 || loong64 || ppc64le)

package flush

import (
	"errors"
	"fmt"
	"io"
	"sync"
	"unsafe"

	"github.com/ringmq/ringmq/flush/vfs"
	"github.com/ringmq/ringmq/iouring"
)

// The uring backend: each commit is one io_uring submission, a WRITEV of the
// caller's buffers linked (IOSQE_IO_LINK) to an FSYNC(IORING_FSYNC_DATASYNC), sent
// and waited for with one io_uring_enter.
//
//	SQ: [ WRITEV fd#0 iov[0..k) off  LINK ] -> [ FSYNC fd#0 DATASYNC ]
//	     io_uring_enter(to_submit=2, min_complete=2, GETEVENTS)
//	CQ: [ res=bytes ] [ res=0 ]      or, on a short or failed write,
//	    [ res<bytes ] [ res=-ECANCELED ]  -> error, the Writer stops
//
// Each Writer owns a ring (one owner goroutine, like the Writer itself) with the
// file registered as fixed file 0. A failed or short write, or a failed fdatasync,
// is returned and also remembered: every later call returns that first error
// (a failed fdatasync is never retried; see DESIGN.md, durability contract).
// WriteAt alone resubmits the rest of a short write, up to uringMaxShortRetries.

const (
	// uringDefaultEntries is the ring size when Options.RingEntries is 0.
	uringDefaultEntries = 64
	// uringMaxShortRetries bounds the resubmissions of a short WriteAt.
	uringMaxShortRetries = 8
)

func init() {
	register("uring", func(opts Options) (Backend, error) {
		b := &uringBackend{entries: uringEntries(opts)}
		if b.entries < 2 {
			return nil, fmt.Errorf("RingEntries %d: a commit's linked writev+fdatasync needs at least 2", b.entries)
		}
		return b, probeUring(b.entries, iouring.OpWritev, iouring.OpFsync)
	})
}

func uringEntries(opts Options) uint32 {
	if opts.RingEntries == 0 {
		return uringDefaultEntries
	}
	return opts.RingEntries
}

// probeUring sets up a ring once so that a backend fails at construction, with the
// reason, rather than at the first Open; and checks that the kernel has the ops.
func probeUring(entries uint32, ops ...iouring.Op) error {
	r, err := iouring.New(entries)
	if err != nil {
		return err
	}
	defer r.Close()
	for _, op := range ops {
		if !r.Supports(op) {
			return fmt.Errorf("io_uring opcode %d not supported by this kernel: %w", op, iouring.ErrNotSupported)
		}
	}
	return nil
}

type uringBackend struct {
	entries uint32
	mu      struct {
		sync.Mutex
		closed bool
	}
}

func (b *uringBackend) Name() string { return "uring" }

// Close marks the backend closed; each Writer owns its ring and releases it in
// its own Close.
func (b *uringBackend) Close() error {
	b.mu.Lock()
	b.mu.closed = true
	b.mu.Unlock()
	return nil
}

var errUringBackendClosed = errors.New("flush: backend closed")

func (b *uringBackend) isClosed() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.mu.closed
}

func (b *uringBackend) Open(fs vfs.FS, path string) (Writer, error) {
	if b.isClosed() {
		return nil, fmt.Errorf("flush: uring: open %s: %w", path, errUringBackendClosed)
	}
	f, err := fs.OpenReadWrite(path)
	if err != nil {
		return nil, fmt.Errorf("flush: uring: open %s: %w", path, err)
	}
	fd, ok := f.Fd()
	if !ok {
		f.Close()
		return nil, fmt.Errorf("flush: uring: open %s: %w", path, ErrNeedsOSFile)
	}
	ring, err := newUringFileRing(b.entries, int32(fd))
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("flush: uring: open %s: %w", path, err)
	}
	return &uringWriter{f: f, ring: ring, iov: make([]iouring.Iovec, 0, iouring.MaxIovecs)}, nil
}

// newUringFileRing sets up a ring with fd registered as fixed file 0.
func newUringFileRing(entries uint32, fd int32) (*iouring.Ring, error) {
	ring, err := iouring.New(entries)
	if err != nil {
		return nil, err
	}
	if err := ring.RegisterFiles([]int32{fd}); err != nil {
		ring.Close()
		return nil, err
	}
	return ring, nil
}

type uringWriter struct {
	f      vfs.File
	ring   *iouring.Ring
	iov    []iouring.Iovec // one WRITEV's iovecs, at most iouring.MaxIovecs
	write  iouring.Completion
	sync   iouring.Completion
	failed error // the first write or sync error; every later call returns it
}

func (w *uringWriter) fail(err error) error {
	w.failed = err
	return err
}

// WriteAt writes bufs at offBytes, one WRITEV per iouring.MaxIovecs buffers.
func (w *uringWriter) WriteAt(bufs [][]byte, offBytes int64) error {
	if w.failed != nil {
		return w.failed
	}
	for len(bufs) > 0 {
		used, n := w.fillIovecs(bufs)
		if err := w.writeAll(offBytes, n); err != nil {
			return w.fail(err)
		}
		bufs, offBytes = bufs[used:], offBytes+int64(n)
	}
	return nil
}

// WriteSync writes bufs and fdatasyncs in one submission when they fit one WRITEV;
// more buffers than that are written first with WriteAt, the rest linked to the sync.
func (w *uringWriter) WriteSync(bufs [][]byte, offBytes int64) error {
	if w.failed != nil {
		return w.failed
	}
	used, n := w.fillIovecs(bufs)
	for used < len(bufs) {
		if err := w.writeAll(offBytes, n); err != nil {
			return w.fail(err)
		}
		bufs, offBytes = bufs[used:], offBytes+int64(n)
		used, n = w.fillIovecs(bufs)
	}
	if n == 0 {
		return w.Sync()
	}
	if err := w.ring.Writev(0, w.iov, uint64(offBytes), iouring.FlagFixedFile|iouring.FlagLink, &w.write); err != nil {
		return w.fail(fmt.Errorf("flush: uring: writev %s: %w", w.f.Name(), err))
	}
	if err := w.ring.Fsync(0, iouring.FsyncDatasync, iouring.FlagFixedFile, &w.sync); err != nil {
		return w.fail(fmt.Errorf("flush: uring: fdatasync %s: %w", w.f.Name(), err))
	}
	if _, err := w.ring.SubmitAndWait(2); err != nil {
		return w.fail(fmt.Errorf("flush: uring: writev+fdatasync %s: %w", w.f.Name(), err))
	}
	if err := uringResultErr("uring: writev", w.f.Name(), offBytes, &w.write, n); err != nil {
		return w.fail(fmt.Errorf("%w (the linked fdatasync did not run: %v)", err, w.sync.Err()))
	}
	if err := w.sync.Err(); err != nil {
		return w.fail(fmt.Errorf("flush: uring: fdatasync %s: %w", w.f.Name(), err))
	}
	return nil
}

// Sync is one FSYNC(DATASYNC).
func (w *uringWriter) Sync() error {
	if w.failed != nil {
		return w.failed
	}
	if err := w.ring.Fsync(0, iouring.FsyncDatasync, iouring.FlagFixedFile, &w.sync); err != nil {
		return w.fail(fmt.Errorf("flush: uring: fdatasync %s: %w", w.f.Name(), err))
	}
	if _, err := w.ring.SubmitAndWait(1); err != nil {
		return w.fail(fmt.Errorf("flush: uring: fdatasync %s: %w", w.f.Name(), err))
	}
	if err := w.sync.Err(); err != nil {
		return w.fail(fmt.Errorf("flush: uring: fdatasync %s: %w", w.f.Name(), err))
	}
	return nil
}

// Close releases the ring (after its in-flight operations) and closes the file.
func (w *uringWriter) Close() error {
	rerr := w.ring.Close()
	ferr := w.f.Close()
	if rerr != nil {
		return fmt.Errorf("flush: uring: close %s: %w", w.f.Name(), rerr)
	}
	if ferr != nil {
		return fmt.Errorf("flush: uring: close %s: %w", w.f.Name(), ferr)
	}
	return nil
}

// fillIovecs points w.iov at the non-empty buffers of bufs, at most MaxIovecs, and
// returns how many of bufs it consumed and their total bytes.
func (w *uringWriter) fillIovecs(bufs [][]byte) (used int, totalBytes int) {
	w.iov = w.iov[:0]
	for used < len(bufs) && len(w.iov) < iouring.MaxIovecs {
		if b := bufs[used]; len(b) > 0 {
			w.iov = append(w.iov, iouring.Iovec{})
			iouring.SetIovec(&w.iov[len(w.iov)-1], b)
			totalBytes += len(b)
		}
		used++
	}
	return used, totalBytes
}

// writeAll submits w.iov as one WRITEV and resubmits the rest of a short write.
func (w *uringWriter) writeAll(offBytes int64, totalBytes int) error {
	iov := w.iov
	for tries := 0; totalBytes > 0; tries++ {
		if tries > uringMaxShortRetries {
			return fmt.Errorf("flush: uring: writev %s at %d: %d bytes left after %d short writes: %w",
				w.f.Name(), offBytes, totalBytes, uringMaxShortRetries, io.ErrShortWrite)
		}
		if err := w.ring.Writev(0, iov, uint64(offBytes), iouring.FlagFixedFile, &w.write); err != nil {
			return fmt.Errorf("flush: uring: writev %s: %w", w.f.Name(), err)
		}
		if _, err := w.ring.SubmitAndWait(1); err != nil {
			return fmt.Errorf("flush: uring: writev %s: %w", w.f.Name(), err)
		}
		if w.write.Res < 0 {
			return uringResultErr("uring: writev", w.f.Name(), offBytes, &w.write, totalBytes)
		}
		n := int(w.write.Res)
		iov = uringAdvanceIovecs(iov, uint64(n))
		offBytes, totalBytes = offBytes+int64(n), totalBytes-n
	}
	return nil
}

// uringAdvanceIovecs drops the first n bytes from iov, in place.
func uringAdvanceIovecs(iov []iouring.Iovec, n uint64) []iouring.Iovec {
	for len(iov) > 0 && n >= iov[0].Len {
		n -= iov[0].Len
		iov = iov[1:]
	}
	if n > 0 {
		iov[0].Base = (*byte)(unsafe.Add(unsafe.Pointer(iov[0].Base), n))
		iov[0].Len -= n
	}
	return iov
}

// uringResultErr turns a write completion into an error: a negative result is the
// errno, fewer bytes than wantBytes is a short write.
func uringResultErr(op, name string, offBytes int64, c *iouring.Completion, wantBytes int) error {
	if err := c.Err(); err != nil {
		return fmt.Errorf("flush: %s %s at %d: %w", op, name, offBytes, err)
	}
	if int(c.Res) != wantBytes {
		return fmt.Errorf("flush: %s %s at %d: wrote %d of %d bytes: %w", op, name, offBytes, c.Res, wantBytes, io.ErrShortWrite)
	}
	return nil
}
