//go:build linux && (amd64 || arm64 || riscv64 || loong64 || ppc64le)

package iouring

import (
	"fmt"
	"sync/atomic"
	"unsafe"
)

// Each prepare call fills one SQE; nothing reaches the kernel before Submit or
// SubmitAndWait (or before backpressure submits it). fd is a descriptor, or a
// registered file index when flags has FlagFixedFile. c receives the result. The
// memory passed (buffers, iovecs and the buffers they point to) must not be
// touched by the caller until c.Done; the ring keeps it referenced until then.
// An error comes only from io_uring_enter during backpressure.

// Nop prepares an operation that does nothing (IORING_OP_NOP).
func (r *Ring) Nop(flags Flags, c *Completion) error {
	s, err := r.getSQE(c, nil, flags)
	if err != nil {
		return err
	}
	s.opcode = uint8(OpNop)
	s.fd = -1
	return nil
}

// Write prepares a write of buf at offBytes (IORING_OP_WRITE).
func (r *Ring) Write(fd int32, buf []byte, offBytes uint64, flags Flags, c *Completion) error {
	return r.prepRW(OpWrite, fd, buf, offBytes, flags, 0, c)
}

// Read prepares a read into buf from offBytes (IORING_OP_READ). A read past the end
// of the file completes with fewer bytes than len(buf), or 0.
func (r *Ring) Read(fd int32, buf []byte, offBytes uint64, flags Flags, c *Completion) error {
	return r.prepRW(OpRead, fd, buf, offBytes, flags, 0, c)
}

// WriteFixed prepares a write from registered buffer bufIndex; buf must lie inside
// that buffer (IORING_OP_WRITE_FIXED).
func (r *Ring) WriteFixed(fd int32, buf []byte, bufIndex uint16, offBytes uint64, flags Flags, c *Completion) error {
	r.checkFixed(buf, bufIndex)
	return r.prepRW(OpWriteFixed, fd, buf, offBytes, flags, bufIndex, c)
}

// ReadFixed prepares a read into registered buffer bufIndex (IORING_OP_READ_FIXED).
func (r *Ring) ReadFixed(fd int32, buf []byte, bufIndex uint16, offBytes uint64, flags Flags, c *Completion) error {
	r.checkFixed(buf, bufIndex)
	return r.prepRW(OpReadFixed, fd, buf, offBytes, flags, bufIndex, c)
}

// Writev prepares a vectored write of iov at offBytes (IORING_OP_WRITEV).
func (r *Ring) Writev(fd int32, iov []Iovec, offBytes uint64, flags Flags, c *Completion) error {
	return r.prepVec(OpWritev, fd, iov, offBytes, flags, c)
}

// Readv prepares a vectored read into iov from offBytes (IORING_OP_READV).
func (r *Ring) Readv(fd int32, iov []Iovec, offBytes uint64, flags Flags, c *Completion) error {
	return r.prepVec(OpReadv, fd, iov, offBytes, flags, c)
}

// Fsync prepares an fsync, or an fdatasync with fsyncFlags FsyncDatasync
// (IORING_OP_FSYNC). Combine with FlagLink on the write before it, or FlagDrain on
// the fsync itself, to order it after writes.
func (r *Ring) Fsync(fd int32, fsyncFlags uint32, flags Flags, c *Completion) error {
	s, err := r.getSQE(c, nil, flags)
	if err != nil {
		return err
	}
	s.opcode = uint8(OpFsync)
	s.fd = fd
	s.opFlags = fsyncFlags
	return nil
}

// Fallocate prepares fallocate(fd, mode, offBytes, lenBytes) (IORING_OP_FALLOCATE).
func (r *Ring) Fallocate(fd int32, mode uint32, offBytes, lenBytes uint64, flags Flags, c *Completion) error {
	s, err := r.getSQE(c, nil, flags)
	if err != nil {
		return err
	}
	s.opcode = uint8(OpFallocate)
	s.fd = fd
	s.off = offBytes
	s.addr = lenBytes
	s.len = mode
	return nil
}

// SetLastRWFlags sets the RWF_* flags (for example RWFDsync) of the operation
// prepared last, which must be a read or a write not yet submitted.
func (r *Ring) SetLastRWFlags(rwFlags uint32) {
	if r.prepTail == atomic.LoadUint32(r.sqTail) {
		panic("BUG: iouring: SetLastRWFlags with no operation prepared")
	}
	s := &r.sqes[(r.prepTail-1)&r.sqMask]
	switch Op(s.opcode) {
	case OpRead, OpWrite, OpReadv, OpWritev, OpReadFixed, OpWriteFixed:
		s.opFlags = rwFlags
	default:
		panic(fmt.Sprintf("BUG: iouring: SetLastRWFlags on opcode %d", s.opcode))
	}
}

func (r *Ring) prepRW(op Op, fd int32, buf []byte, offBytes uint64, flags Flags, bufIndex uint16, c *Completion) error {
	var p unsafe.Pointer
	if len(buf) > 0 {
		p = unsafe.Pointer(&buf[0])
	}
	return r.prepAddr(op, fd, p, uint32(len(buf)), offBytes, flags, bufIndex, c)
}

func (r *Ring) prepVec(op Op, fd int32, iov []Iovec, offBytes uint64, flags Flags, c *Completion) error {
	if len(iov) == 0 || len(iov) > MaxIovecs {
		panic(fmt.Sprintf("BUG: iouring: %d iovecs (want 1..%d)", len(iov), MaxIovecs))
	}
	return r.prepAddr(op, fd, unsafe.Pointer(&iov[0]), uint32(len(iov)), offBytes, flags, 0, c)
}

// prepAddr prepares op on fd with addr p and length n (bytes, or iovecs for the
// vectored ops); p is kept alive until the completion is reaped.
func (r *Ring) prepAddr(op Op, fd int32, p unsafe.Pointer, n uint32, offBytes uint64, flags Flags, bufIndex uint16, c *Completion) error {
	s, err := r.getSQE(c, p, flags)
	if err != nil {
		return err
	}
	s.opcode = uint8(op)
	s.fd = fd
	s.addr = uint64(uintptr(p))
	s.len = n
	s.off = offBytes
	s.bufIndex = bufIndex
	return nil
}

// checkFixed panics unless buf lies inside registered buffer bufIndex.
func (r *Ring) checkFixed(buf []byte, bufIndex uint16) {
	if int(bufIndex) >= len(r.fixedBufs) {
		panic(fmt.Sprintf("BUG: iouring: fixed buffer %d not registered (have %d)", bufIndex, len(r.fixedBufs)))
	}
	reg := r.fixedBufs[bufIndex]
	if len(buf) == 0 {
		return
	}
	lo, hi := uintptr(unsafe.Pointer(&reg[0])), uintptr(unsafe.Pointer(&reg[0]))+uintptr(len(reg))
	p := uintptr(unsafe.Pointer(&buf[0]))
	if p < lo || p+uintptr(len(buf)) > hi {
		panic(fmt.Sprintf("BUG: iouring: buffer is outside fixed buffer %d", bufIndex))
	}
}
