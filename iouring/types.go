package iouring

import (
	"errors"
	"syscall"
)

// Limits. Every queue in this package has one of these as its maximum.
const (
	// MaxEntries bounds the submission queue size New accepts. The completion queue
	// is twice as large (the kernel's default), and so is the in-flight table.
	MaxEntries = 4096
	// DefaultEntries is the SQ size used when New is given 0.
	DefaultEntries = 64
	// MaxIovecs is the most iovecs one READV/WRITEV may carry (the kernel's IOV_MAX).
	MaxIovecs = 1024
	// maxEnterRetries bounds how often one call retries io_uring_enter on EAGAIN or
	// EBUSY without any completion arriving before it gives up with the error.
	maxEnterRetries = 1000
)

// Op is an io_uring opcode (enum io_uring_op).
type Op uint8

// The opcodes this package prepares, plus a few more that Supports can be asked about.
const (
	OpNop        Op = 0
	OpReadv      Op = 1
	OpWritev     Op = 2
	OpFsync      Op = 3
	OpReadFixed  Op = 4
	OpWriteFixed Op = 5
	OpFallocate  Op = 17
	OpRead       Op = 22
	OpWrite      Op = 23
)

// Flags are SQE flags (IOSQE_*).
type Flags uint8

const (
	// FlagFixedFile: the fd argument is an index into the files registered with
	// RegisterFiles, not a descriptor.
	FlagFixedFile Flags = 1 << 0
	// FlagDrain: the operation starts only after every operation submitted before it
	// has completed, and operations submitted after it wait for it.
	FlagDrain Flags = 1 << 1
	// FlagLink: the next prepared operation starts only after this one succeeded; if
	// this one fails or is short, the rest of the chain completes with -ECANCELED.
	FlagLink Flags = 1 << 2
)

// FsyncDatasync makes Fsync an fdatasync (IORING_FSYNC_DATASYNC).
const FsyncDatasync uint32 = 1 << 0

// RWFDsync (RWF_DSYNC) makes one write behave as if the file were opened O_DSYNC:
// it completes once its data (and the metadata needed to read it) is durable.
const RWFDsync uint32 = 0x2

// Iovec is struct iovec. Base is a Go pointer, so an Iovec keeps its buffer alive.
type Iovec struct {
	Base *byte
	Len  uint64
}

// SetIovec points v at b.
func SetIovec(v *Iovec, b []byte) {
	v.Len = uint64(len(b))
	v.Base = nil
	if len(b) > 0 {
		v.Base = &b[0]
	}
}

// Completion is a caller-owned completion record. The caller passes a *Completion
// with each prepared operation; when the operation's CQE is reaped, the ring writes
// the result into it and sets Done. The record must not be reused before Done.
type Completion struct {
	// Res is the operation's result: bytes transferred, 0, or a negated errno.
	Res int32
	// CQEFlags are the CQE's flags.
	CQEFlags uint32
	// Done is set when the result has been written.
	Done bool
}

// Err returns nil for a non-negative result and the errno for a negative one.
func (c *Completion) Err() error {
	if c.Res >= 0 {
		return nil
	}
	return syscall.Errno(-c.Res)
}

// ErrNotSupported is wrapped by every error that means io_uring cannot be used here:
// a non-Linux build, a kernel without io_uring, io_uring disabled by sysctl, or a
// seccomp filter. Callers fall back to another I/O path on errors.Is(err, ErrNotSupported).
var ErrNotSupported = errors.New("iouring: io_uring is not available")

// UnavailableError says why io_uring_setup failed and what to do about it.
type UnavailableError struct {
	Errno  syscall.Errno
	Reason string
}

func (e *UnavailableError) Error() string {
	return "iouring: io_uring_setup: " + e.Errno.Error() + ": " + e.Reason
}

// Unwrap lets errors.Is match both ErrNotSupported and the errno.
func (e *UnavailableError) Unwrap() []error { return []error{ErrNotSupported, e.Errno} }
