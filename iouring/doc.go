// Package iouring is ringmq's own io_uring ring, built directly on the io_uring_setup,
// io_uring_enter and io_uring_register system calls (golang.org/x/sys/unix). It is
// the kernel ring under the uring and uring-direct flush backends.
//
// # Contract
//
// A caller prepares operations (Write, Writev, Read, Readv, WriteFixed, ReadFixed,
// Fsync, Fallocate, Nop), each with a caller-owned *Completion, then calls
// SubmitAndWait(n): one io_uring_enter both submits everything prepared and waits
// for n completions. Reaped results are written into the callers' Completion
// records (Res = bytes or -errno, Done = true). Nothing is allocated per operation.
//
// Memory handed to the kernel (buffers, iovec arrays and the buffers they point
// to) is referenced from the ring's in-flight table until its CQE is reaped, so the
// garbage collector cannot free it; Go's heap does not move objects. The caller
// must not modify or reuse that memory, or the Completion, before Completion.Done.
//
// Backpressure: the SQ has SQEntries slots and the in-flight table MaxInFlight
// (the CQ size, twice the SQ) slots, so the CQ can never overflow. Preparing an
// operation when either is full submits what is prepared and, if needed, waits for
// a completion; it never fails for lack of room. An open link chain (the last
// prepared SQE has FlagLink) is held back from such a submission, since a chain
// split over two io_uring_enter calls loses its link; a chain must therefore fit
// in the SQ. io_uring_enter's EINTR is retried; EAGAIN and EBUSY reap and wait
// for a completion, up to a bounded number of tries.
//
// # Concurrency
//
// A Ring has one owner goroutine (in ringmq, a flusher) and is not safe for
// concurrent use. Completion task work is queued to the thread that submitted, so
// an owner that calls runtime.LockOSThread avoids cross-thread wakeups; this is
// recommended but not required (the ring does not use IORING_SETUP_SINGLE_ISSUER).
//
// # Errors
//
// New fails with an *UnavailableError wrapping ErrNotSupported when io_uring cannot
// be used: ENOSYS (old kernel), EPERM with the reason read from
// /proc/sys/kernel/io_uring_disabled (sysctl 2, or 1 for unprivileged users) or a
// seccomp filter. Builds for other systems compile and return ErrNotSupported.
// Per-operation errors arrive in Completion.Res; Completion.Err converts them.
// Programmer errors (a nil Completion, use after Close, a chain longer than the
// SQ, a buffer outside its registered buffer) panic with "BUG:".
//
// # Ring layout
//
// Three regions are mapped from the ring fd (the SQ and CQ rings share one mapping
// when the kernel reports IORING_FEAT_SINGLE_MMAP):
//
//	SQ ring (offset 0)                          SQE array (offset 0x10000000)
//	+------+------+------+-------+--------+     +--------------------------+
//	| head | tail | mask | flags | array  |     | sqe 0 (64 bytes)         |
//	+------+------+------+-------+--------+     | sqe 1                    |
//	  ^kernel  ^us                 |  identity  | ...                      |
//	                               +----------> | sqe entries-1            |
//	                                            +--------------------------+
//	CQ ring (offset 0x8000000, or the SQ mapping)
//	+------+------+------+----------+---------------------------------+
//	| head | tail | mask | overflow | cqe 0 | cqe 1 | ... (16 bytes)  |
//	+------+------+------+----------+---------------------------------+
//	  ^us    ^kernel
//
//	sqe: opcode u8 | flags u8 | ioprio u16 | fd i32 | off u64 | addr u64 |
//	     len u32 | op_flags u32 | user_data u64 | buf_index u16 | ... pad to 64
//	cqe: user_data u64 | res i32 | flags u32
//
// We write SQEs at prepTail & mask and publish the SQ tail with an atomic store
// (release) before io_uring_enter; the kernel advances the SQ head as it consumes
// them. The kernel writes CQEs and advances the CQ tail; we read it with an atomic
// load (acquire), copy each CQE's result to the Completion whose in-flight slot
// number is the CQE's user_data, and publish the CQ head with an atomic store.
package iouring
