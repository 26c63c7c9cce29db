//go:build linux && (amd64 || arm64 || riscv64 || loong64 || ppc64le)

package iouring

import (
	"fmt"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Ring is one io_uring instance. It has one owner goroutine and is not safe for
// concurrent use (see the package doc).
type Ring struct {
	fd       int
	features uint32

	// Submission side. sqHead is written by the kernel; sqTail is published by us.
	sqHead, sqTail *uint32
	sqMask         uint32
	sqEntries      uint32
	sqes           []sqe
	prepTail       uint32 // SQEs prepared locally; published up to here on submit
	chainOpen      bool   // the last prepared SQE has FlagLink
	chainStart     uint32 // index of the first SQE of the open chain

	// Completion side. cqTail is written by the kernel; cqHead by us.
	cqHead, cqTail *uint32
	cqMask         uint32
	cqes           []cqe

	// In-flight table: one slot per prepared, not yet reaped operation; the slot
	// number is the SQE's user_data. Its size (the CQ size) bounds the operations in
	// flight, so the CQ can never overflow.
	slots []slot
	free  []uint32 // stack of free slot numbers

	ringMem, cqMem, sqeMem []byte

	probe      [probeOpsMax / 8]byte // bit per supported opcode
	fixedBufs  [][]byte              // registered buffers, referenced so the GC keeps them
	fixedFiles int                   // number of registered files
}

// slot is an operation in flight: the caller's record and the memory the kernel
// reads or writes, referenced here so the GC cannot free it before the CQE.
type slot struct {
	c    *Completion
	keep unsafe.Pointer
}

// New sets up a ring with entries SQ entries (0 means DefaultEntries; rounded up to
// a power of two by the kernel) and probes the opcodes the kernel supports. Where
// io_uring cannot be used, the error wraps ErrNotSupported and says why.
func New(entries uint32) (*Ring, error) {
	if entries == 0 {
		entries = DefaultEntries
	}
	if entries > MaxEntries {
		return nil, fmt.Errorf("iouring: new: %d entries exceeds MaxEntries %d", entries, MaxEntries)
	}
	var p params
	fd, errno := sysSetup(entries, &p)
	if errno != 0 {
		return nil, setupError(errno)
	}
	r := &Ring{fd: fd, features: p.features}
	if err := r.mapRings(&p); err != nil {
		r.unmap()
		unix.Close(fd)
		return nil, err
	}
	r.slots = make([]slot, p.cqEntries)
	r.free = make([]uint32, 0, p.cqEntries)
	for i := int(p.cqEntries) - 1; i >= 0; i-- {
		r.free = append(r.free, uint32(i))
	}
	r.loadProbe()
	return r, nil
}

// mapRings maps the SQ ring, CQ ring (one mapping with IORING_FEAT_SINGLE_MMAP) and
// the SQE array, and points the ring's fields into them.
func (r *Ring) mapRings(p *params) error {
	sqBytes := int(p.sqOff.array + p.sqEntries*4)
	cqBytes := int(p.cqOff.cqes + p.cqEntries*cqeBytes)
	single := p.features&featSingleMmap != 0
	if single {
		sqBytes = max(sqBytes, cqBytes)
	}
	var err error
	prot, flags := unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE
	if r.ringMem, err = unix.Mmap(r.fd, offSQRing, sqBytes, prot, flags); err != nil {
		return fmt.Errorf("iouring: mmap sq ring: %w", err)
	}
	r.cqMem = r.ringMem
	if !single {
		if r.cqMem, err = unix.Mmap(r.fd, offCQRing, cqBytes, prot, flags); err != nil {
			return fmt.Errorf("iouring: mmap cq ring: %w", err)
		}
	}
	if r.sqeMem, err = unix.Mmap(r.fd, offSQEs, int(p.sqEntries)*sqeBytes, prot, flags); err != nil {
		return fmt.Errorf("iouring: mmap sqes: %w", err)
	}
	sq, cq := unsafe.Pointer(&r.ringMem[0]), unsafe.Pointer(&r.cqMem[0])
	r.sqHead = (*uint32)(unsafe.Add(sq, p.sqOff.head))
	r.sqTail = (*uint32)(unsafe.Add(sq, p.sqOff.tail))
	r.sqMask = *(*uint32)(unsafe.Add(sq, p.sqOff.ringMask))
	r.sqEntries = p.sqEntries
	r.sqes = unsafe.Slice((*sqe)(unsafe.Pointer(&r.sqeMem[0])), p.sqEntries)
	// The SQ array maps ring positions to SQE indexes; identity, written once.
	array := unsafe.Slice((*uint32)(unsafe.Add(sq, p.sqOff.array)), p.sqEntries)
	for i := range array {
		array[i] = uint32(i)
	}
	r.prepTail = atomic.LoadUint32(r.sqTail)
	r.cqHead = (*uint32)(unsafe.Add(cq, p.cqOff.head))
	r.cqTail = (*uint32)(unsafe.Add(cq, p.cqOff.tail))
	r.cqMask = *(*uint32)(unsafe.Add(cq, p.cqOff.ringMask))
	r.cqes = unsafe.Slice((*cqe)(unsafe.Add(cq, p.cqOff.cqes)), p.cqEntries)
	return nil
}

func (r *Ring) unmap() {
	if r.sqeMem != nil {
		unix.Munmap(r.sqeMem)
	}
	if r.cqMem != nil && len(r.cqMem) > 0 && &r.cqMem[0] != &r.ringMem[0] {
		unix.Munmap(r.cqMem)
	}
	if r.ringMem != nil {
		unix.Munmap(r.ringMem)
	}
	r.sqeMem, r.cqMem, r.ringMem = nil, nil, nil
}

// Close submits what is prepared, waits for every operation in flight (the kernel
// would otherwise keep using caller memory after the ring is gone), unregisters
// and closes the ring.
func (r *Ring) Close() error {
	if r.fd < 0 {
		return nil
	}
	if r.chainOpen {
		panic("BUG: iouring: Close with an open link chain (last SQE has FlagLink)")
	}
	waitErr := r.drainAll()
	r.unmap()
	err := unix.Close(r.fd)
	r.fd = -1
	r.fixedBufs = nil
	if waitErr != nil {
		return waitErr
	}
	if err != nil {
		return fmt.Errorf("iouring: close: %w", err)
	}
	return nil
}

func (r *Ring) drainAll() error {
	for r.InFlight() > 0 {
		if _, err := r.SubmitAndWait(1); err != nil {
			return fmt.Errorf("iouring: close: wait for in-flight: %w", err)
		}
	}
	return nil
}

// Features returns the IORING_FEAT_* bits the kernel reported at setup.
func (r *Ring) Features() uint32 { return r.features }

// SQEntries returns the submission queue size.
func (r *Ring) SQEntries() int { return int(r.sqEntries) }

// MaxInFlight returns the most operations that can be prepared and not yet reaped;
// preparing more makes the ring submit and wait for completions first.
func (r *Ring) MaxInFlight() int { return len(r.slots) }

// InFlight returns the operations prepared and not yet reaped.
func (r *Ring) InFlight() int { return len(r.slots) - len(r.free) }

// Supports reports whether the kernel supports op (IORING_REGISTER_PROBE at setup;
// false for every op on kernels without probing, before 5.6).
func (r *Ring) Supports(op Op) bool { return r.probe[op/8]&(1<<(op%8)) != 0 }

// getSQE returns a zeroed SQE with a slot bound to c and keep. When the SQ or the
// in-flight table is full it submits and waits for room first (backpressure).
func (r *Ring) getSQE(c *Completion, keep unsafe.Pointer, flags Flags) (*sqe, error) {
	if r.fd < 0 {
		panic("BUG: iouring: use of a closed Ring")
	}
	if c == nil {
		panic("BUG: iouring: nil *Completion")
	}
	for r.prepTail-atomic.LoadUint32(r.sqHead) >= r.sqEntries || len(r.free) == 0 {
		if err := r.makeRoom(); err != nil {
			return nil, err
		}
	}
	idx := r.prepTail & r.sqMask
	s := &r.sqes[idx]
	*s = sqe{}
	n := len(r.free) - 1
	sl := r.free[n]
	r.free = r.free[:n]
	r.slots[sl] = slot{c: c, keep: keep}
	*c = Completion{}
	s.userData = uint64(sl)
	s.flags = uint8(flags)
	if flags&FlagLink != 0 && !r.chainOpen {
		r.chainOpen, r.chainStart = true, r.prepTail
	} else if flags&FlagLink == 0 {
		r.chainOpen = false
	}
	r.prepTail++
	return s, nil
}

// makeRoom submits every prepared SQE except an open link chain (a chain split over
// two submissions would lose its link) and, when no slot is free, waits for one CQE.
func (r *Ring) makeRoom() error {
	upTo := r.prepTail
	if r.chainOpen {
		upTo = r.chainStart
	}
	waitNr := uint32(0)
	if len(r.free) == 0 || upTo == atomic.LoadUint32(r.sqHead) {
		waitNr = 1
	}
	if waitNr == 1 && r.InFlight()-int(r.prepTail-upTo) == 0 {
		panic("BUG: iouring: link chain longer than the SQ or the in-flight table")
	}
	return r.enter(upTo, waitNr)
}

// Submit publishes every prepared SQE to the kernel with one io_uring_enter and
// reaps whatever completions are already there. It returns the number submitted.
func (r *Ring) Submit() (int, error) { return r.SubmitAndWait(0) }

// SubmitAndWait publishes every prepared SQE and waits until at least waitNr
// completions have been reaped by this call, in one io_uring_enter when nothing
// interrupts it. It returns the number of SQEs submitted.
func (r *Ring) SubmitAndWait(waitNr int) (int, error) {
	if r.chainOpen {
		panic("BUG: iouring: submit with an open link chain (last SQE has FlagLink)")
	}
	if waitNr > r.InFlight() {
		panic("BUG: iouring: waiting for more completions than operations in flight")
	}
	before := atomic.LoadUint32(r.sqHead)
	err := r.enter(r.prepTail, uint32(waitNr))
	return int(atomic.LoadUint32(r.sqHead) - before), err
}

// enter publishes the SQ tail up to upTo and calls io_uring_enter until every SQE
// before upTo is consumed by the kernel and waitNr completions have been reaped.
// EINTR is retried; EAGAIN and EBUSY (kernel short of memory, CQ backlog) reap and
// wait for a completion, up to maxEnterRetries times without progress.
func (r *Ring) enter(upTo, waitNr uint32) error {
	atomic.StoreUint32(r.sqTail, upTo)
	got := r.reap()
	for retries := 0; ; {
		toSubmit := upTo - atomic.LoadUint32(r.sqHead)
		need, flags := uint32(0), uint32(0)
		if got < waitNr {
			need, flags = waitNr-got, enterGetEvents
		}
		if toSubmit == 0 && need == 0 {
			return nil
		}
		n, errno := sysEnter(r.fd, toSubmit, need, flags)
		reaped := r.reap()
		got += reaped
		switch {
		case errno == unix.EINTR:
			continue
		case errno == unix.EAGAIN || errno == unix.EBUSY:
			if reaped == 0 && r.submittedInFlight() > 0 {
				sysEnter(r.fd, 0, 1, enterGetEvents)
				got += r.reap()
			}
		case errno != 0:
			return fmt.Errorf("iouring: io_uring_enter: %w", errno)
		case n > 0 || reaped > 0:
			retries = 0
			continue
		}
		if retries++; retries > maxEnterRetries {
			return fmt.Errorf("iouring: io_uring_enter: no progress after %d tries: %w", maxEnterRetries, errOrAgain(errno))
		}
	}
}

func errOrAgain(errno syscall.Errno) error {
	if errno == 0 {
		return unix.EAGAIN
	}
	return errno
}

// submittedInFlight is the number of operations the kernel has consumed and not
// yet completed (or whose CQEs are not yet reaped).
func (r *Ring) submittedInFlight() int {
	return r.InFlight() - int(r.prepTail-atomic.LoadUint32(r.sqHead))
}

// reap copies every available CQE into its caller's Completion, frees its slot and
// returns how many it reaped.
func (r *Ring) reap() uint32 {
	head := atomic.LoadUint32(r.cqHead)
	tail := atomic.LoadUint32(r.cqTail)
	for h := head; h != tail; h++ {
		e := &r.cqes[h&r.cqMask]
		sl := e.userData
		if sl >= uint64(len(r.slots)) || r.slots[sl].c == nil {
			panic(fmt.Sprintf("BUG: iouring: CQE for unknown slot %d", sl))
		}
		c := r.slots[sl].c
		c.Res, c.CQEFlags, c.Done = e.res, e.flags, true
		r.slots[sl] = slot{}
		r.free = append(r.free, uint32(sl))
	}
	atomic.StoreUint32(r.cqHead, tail)
	return tail - head
}
