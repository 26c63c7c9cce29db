//go:build linux && (amd64 || arm64 || riscv64 || loong64 || ppc64le)

package iouring

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// loadProbe asks the kernel which opcodes it supports (IORING_REGISTER_PROBE, 5.6+).
// On older kernels the probe fails and Supports answers false for everything.
func (r *Ring) loadProbe() {
	var buf [sizeofProbeHeader + probeOpsMax*sizeofProbeOp]byte
	if errno := sysRegister(r.fd, regProbe, unsafe.Pointer(&buf[0]), probeOpsMax); errno != 0 {
		return
	}
	opsLen := int(buf[1])
	for i := 0; i < opsLen && i < probeOpsMax; i++ {
		op := buf[sizeofProbeHeader+i*sizeofProbeOp:]
		if flags := uint16(op[2]) | uint16(op[3])<<8; flags&probeOpSupported != 0 {
			r.probe[op[0]/8] |= 1 << (op[0] % 8)
		}
	}
}

// RegisterBuffers registers bufs as fixed buffers for ReadFixed/WriteFixed
// (IORING_REGISTER_BUFFERS); buffer i is index i. The kernel pins the pages and
// charges them to RLIMIT_MEMLOCK. The ring keeps bufs referenced until
// UnregisterBuffers or Close; the caller must not free (munmap) them before that.
func (r *Ring) RegisterBuffers(bufs [][]byte) error {
	if r.fixedBufs != nil {
		panic("BUG: iouring: RegisterBuffers while buffers are registered")
	}
	iov := make([]Iovec, len(bufs))
	total := 0
	for i, b := range bufs {
		if len(b) == 0 {
			panic("BUG: iouring: RegisterBuffers with an empty buffer")
		}
		SetIovec(&iov[i], b)
		total += len(b)
	}
	if errno := sysRegister(r.fd, regBuffers, unsafe.Pointer(&iov[0]), uint32(len(iov))); errno != 0 {
		hint := ""
		if errno == unix.ENOMEM {
			var lim unix.Rlimit
			unix.Getrlimit(unix.RLIMIT_MEMLOCK, &lim)
			hint = fmt.Sprintf(" (registered buffers count against RLIMIT_MEMLOCK, now %d bytes: raise ulimit -l or register less)", lim.Cur)
		}
		return fmt.Errorf("iouring: register %d buffers of %d bytes: %w%s", len(bufs), total, errno, hint)
	}
	r.fixedBufs = bufs
	return nil
}

// UnregisterBuffers drops the registered buffers. Nothing may be in flight.
func (r *Ring) UnregisterBuffers() error {
	if r.InFlight() > 0 {
		panic("BUG: iouring: UnregisterBuffers with operations in flight")
	}
	if errno := sysRegister(r.fd, regUnregBuffers, nil, 0); errno != 0 {
		return fmt.Errorf("iouring: unregister buffers: %w", errno)
	}
	r.fixedBufs = nil
	return nil
}

// RegisterFiles registers fds as fixed files (IORING_REGISTER_FILES): with
// FlagFixedFile, the fd argument of a prepare call is an index into fds.
func (r *Ring) RegisterFiles(fds []int32) error {
	if len(fds) == 0 {
		panic("BUG: iouring: RegisterFiles with no files")
	}
	if errno := sysRegister(r.fd, regFiles, unsafe.Pointer(&fds[0]), uint32(len(fds))); errno != 0 {
		return fmt.Errorf("iouring: register %d files: %w", len(fds), errno)
	}
	r.fixedFiles = len(fds)
	return nil
}

// UnregisterFiles drops the registered files. Nothing may be in flight.
func (r *Ring) UnregisterFiles() error {
	if r.InFlight() > 0 {
		panic("BUG: iouring: UnregisterFiles with operations in flight")
	}
	if errno := sysRegister(r.fd, regUnregFiles, nil, 0); errno != 0 {
		return fmt.Errorf("iouring: unregister files: %w", errno)
	}
	r.fixedFiles = 0
	return nil
}
