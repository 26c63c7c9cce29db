//go:build linux && (amd64 || arm64 || riscv64 || loong64 || ppc64le)

package iouring

import (
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The kernel ABI (include/uapi/linux/io_uring.h), only the parts this package uses.

// mmap offsets of the three shared regions.
const (
	offSQRing = 0
	offCQRing = 0x8000000
	offSQEs   = 0x10000000
)

// io_uring_enter flags.
const enterGetEvents = 1 << 0

// io_uring_register opcodes.
const (
	regBuffers        = 0
	regUnregBuffers   = 1
	regFiles          = 2
	regUnregFiles     = 3
	regProbe          = 8
	probeOpsMax       = 256 // io_uring_probe ops[] entries we ask for
	probeOpSupported  = 1 << 0
	featSingleMmap    = 1 << 0
	featNoDrop        = 1 << 1
	sqeBytes          = 64
	cqeBytes          = 16
	sizeofProbeHeader = 16
	sizeofProbeOp     = 8
)

// sqringOffsets is struct io_sqring_offsets.
type sqringOffsets struct {
	head, tail, ringMask, ringEntries, flags, dropped, array, resv1 uint32
	userAddr                                                        uint64
}

// cqringOffsets is struct io_cqring_offsets.
type cqringOffsets struct {
	head, tail, ringMask, ringEntries, overflow, cqes, flags, resv1 uint32
	userAddr                                                        uint64
}

// params is struct io_uring_params.
type params struct {
	sqEntries, cqEntries, flags, sqThreadCPU, sqThreadIdle, features, wqFd uint32
	resv                                                                   [3]uint32
	sqOff                                                                  sqringOffsets
	cqOff                                                                  cqringOffsets
}

// sqe is struct io_uring_sqe (64 bytes).
type sqe struct {
	opcode      uint8
	flags       uint8
	ioprio      uint16
	fd          int32
	off         uint64
	addr        uint64
	len         uint32
	opFlags     uint32 // rw_flags, fsync_flags, ...
	userData    uint64
	bufIndex    uint16
	personality uint16
	fileIndex   int32
	addr3       uint64
	pad         uint64
}

// cqe is struct io_uring_cqe (16 bytes).
type cqe struct {
	userData uint64
	res      int32
	flags    uint32
}

// Compile-time checks that the Go structs match the kernel's sizes.
var (
	_ [unsafe.Sizeof(params{}) - 120]byte
	_ [120 - unsafe.Sizeof(params{})]byte
	_ [unsafe.Sizeof(sqe{}) - sqeBytes]byte
	_ [sqeBytes - unsafe.Sizeof(sqe{})]byte
	_ [unsafe.Sizeof(cqe{}) - cqeBytes]byte
	_ [cqeBytes - unsafe.Sizeof(cqe{})]byte
	_ [unsafe.Sizeof(Iovec{}) - unsafe.Sizeof(unix.Iovec{})]byte
	_ [unsafe.Sizeof(unix.Iovec{}) - unsafe.Sizeof(Iovec{})]byte
)

func sysSetup(entries uint32, p *params) (int, syscall.Errno) {
	fd, _, errno := unix.Syscall(unix.SYS_IO_URING_SETUP, uintptr(entries), uintptr(unsafe.Pointer(p)), 0)
	return int(fd), errno
}

// sysEnter is io_uring_enter without a signal mask. Syscall (not RawSyscall) so the Go
// scheduler hands the P to another thread while this one waits in the kernel.
func sysEnter(fd int, toSubmit, minComplete uint32, flags uint32) (int, syscall.Errno) {
	n, _, errno := unix.Syscall6(unix.SYS_IO_URING_ENTER, uintptr(fd), uintptr(toSubmit), uintptr(minComplete), uintptr(flags), 0, 0)
	return int(n), errno
}

func sysRegister(fd int, opcode uint32, arg unsafe.Pointer, nrArgs uint32) syscall.Errno {
	_, _, errno := unix.Syscall6(unix.SYS_IO_URING_REGISTER, uintptr(fd), uintptr(opcode), uintptr(arg), uintptr(nrArgs), 0, 0)
	return errno
}
