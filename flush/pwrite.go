package flush

import (
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/ringmq/ringmq/flush/vfs"
)

func init() { register("pwrite", func(Options) (Backend, error) { return pwriteBackend{}, nil }) }

// pwriteBackend writes with pwritev(2) when the file has a descriptor and with
// vfs.File.WriteAt otherwise, and syncs with File.Sync (fdatasync).
type pwriteBackend struct{}

func (pwriteBackend) Name() string { return "pwrite" }
func (pwriteBackend) Close() error { return nil }

func (pwriteBackend) Open(fs vfs.FS, path string) (Writer, error) {
	f, err := fs.OpenReadWrite(path)
	if err != nil {
		return nil, fmt.Errorf("pwrite: open %s: %w", path, err)
	}
	w := &pwriteWriter{f: f}
	if fd, ok := f.Fd(); ok {
		w.fd, w.hasFd = int(fd), true
	}
	return w, nil
}

// pwriteWriter is sticky: after a failed write or sync it returns that error forever.
type pwriteWriter struct {
	f     vfs.File
	fd    int
	hasFd bool
	err   error
}

func (w *pwriteWriter) WriteAt(bufs [][]byte, offBytes int64) error {
	if w.err != nil {
		return w.err
	}
	var err error
	if w.hasFd {
		err = w.pwritev(bufs, offBytes)
	} else {
		for _, b := range bufs {
			if _, err = w.f.WriteAt(b, offBytes); err != nil {
				break
			}
			offBytes += int64(len(b))
		}
	}
	if err != nil {
		w.err = fmt.Errorf("pwrite %s: %w", w.f.Name(), err)
	}
	return w.err
}

// pwritev writes bufs at off, resuming after short writes and EINTR.
func (w *pwriteWriter) pwritev(bufs [][]byte, off int64) error {
	if len(bufs) == 1 {
		return w.pwriteAll(bufs[0], off)
	}
	for len(bufs) > 0 {
		if len(bufs[0]) == 0 {
			bufs = bufs[1:]
			continue
		}
		n, err := unix.Pwritev(w.fd, bufs, off)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		if n == 0 {
			return unix.EIO
		}
		off += int64(n)
		for n > 0 {
			if n >= len(bufs[0]) {
				n -= len(bufs[0])
				bufs = bufs[1:]
				continue
			}
			// A partial buffer: write its rest on its own (rare; keeps bufs unmodified).
			rest := bufs[0][n:]
			if err := w.pwriteAll(rest, off); err != nil {
				return err
			}
			off += int64(len(rest))
			bufs, n = bufs[1:], 0
		}
	}
	return nil
}

func (w *pwriteWriter) pwriteAll(b []byte, off int64) error {
	for len(b) > 0 {
		n, err := unix.Pwrite(w.fd, b, off)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		if n == 0 {
			return unix.EIO
		}
		b, off = b[n:], off+int64(n)
	}
	return nil
}

func (w *pwriteWriter) Sync() error {
	if w.err != nil {
		return w.err
	}
	if err := w.f.Sync(); err != nil {
		w.err = fmt.Errorf("fdatasync %s: %w", w.f.Name(), err)
	}
	return w.err
}

func (w *pwriteWriter) WriteSync(bufs [][]byte, offBytes int64) error {
	if err := w.WriteAt(bufs, offBytes); err != nil {
		return err
	}
	return w.Sync()
}

func (w *pwriteWriter) Close() error { return w.f.Close() }
