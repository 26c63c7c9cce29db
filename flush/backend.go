package flush

import (
	"errors"

	"github.com/ringmq/ringmq/flush/vfs"
)

// Backend is how appended bytes reach the disk. ringmq has three, chosen by name
// (the broker.conf key ioBackend, flag --io-backend):
//
//	pwrite        pwritev + fdatasync, through any vfs.FS (the only one the in-memory and
//	              fault-injecting file systems support, so crash tests use it).
//	uring         one io_uring submission per commit: WRITEV linked (IOSQE_IO_LINK) to
//	              FSYNC(IORING_FSYNC_DATASYNC); the file needs a real descriptor.
//	uring-direct  O_DIRECT writes from 4 KiB-aligned registered buffers, the partial
//	              tail block rewritten on each commit, several writes in flight, then one
//	              drained (IOSQE_IO_DRAIN) fdatasync.
//
// A Backend opens Writers, one per segment file. A Writer has one user at a time (the
// flusher goroutine); it is not safe for concurrent use.
type Backend interface {
	// Name returns the backend's name as used in configuration.
	Name() string
	// Open opens an existing, pre-written segment file for writing.
	Open(fs vfs.FS, path string) (Writer, error)
	// Close releases the backend's resources (rings, registered buffers).
	Close() error
}

// Writer writes one segment file.
type Writer interface {
	// WriteAt writes the buffers, in order, at consecutive offsets starting at offBytes.
	// The bytes are not durable until a Sync or WriteSync that follows returns nil.
	WriteAt(bufs [][]byte, offBytes int64) error
	// Sync makes every byte written so far durable (fdatasync).
	Sync() error
	// WriteSync is WriteAt followed by Sync, submitted together where the backend can
	// (a linked io_uring submission). It returns once both are done or one failed.
	WriteSync(bufs [][]byte, offBytes int64) error
	// Close closes the file. It does not sync.
	Close() error
}

// ErrNeedsOSFile is returned by Backend.Open when the backend needs a real file
// descriptor and the file system is in-memory.
var ErrNeedsOSFile = errors.New("flush: backend needs a file of the OS file system")
