package bpf

import (
	"encoding/binary"
	"fmt"
	"sync"
)

// Kind says which probe saw an event.
type Kind uint16

// Event kinds; the values are the EV_* constants of include/ringmq.h.
const (
	KindBlock Kind = 1 // a block request, start (submit) to done
	KindSync  Kind = 2 // an fdatasync or fsync call, enter to exit
	KindUring Kind = 3 // an io_uring request, submit to CQE posted
	KindFault Kind = 4 // a user page fault (a point: StartMonoNs == EndMonoNs)
	KindRunq  Kind = 5 // a run-queue wait, runnable to switched in
)

// Block op classes (Event.Op of a KindBlock event, and the block histogram keys).
const (
	BlockRead uint16 = iota
	BlockWrite
	BlockFlush // an empty PREFLUSH write (what fdatasync sends) or REQ_OP_FLUSH
	BlockDiscard
	BlockOther
	numBlockOps
)

var blockOpNames = [numBlockOps]string{"read", "write", "flush", "discard", "other"}

// Sync calls (Event.Op of a KindSync event, and the sync histogram keys).
const (
	SyncFdatasync uint16 = 0
	SyncFsync     uint16 = 1
	numSyncOps           = 2
)

var syncOpNames = [numSyncOps]string{"fdatasync", "fsync"}

// Event is one kernel event of the broker's process, as a probe reported it.
type Event struct {
	StartMonoNs int64  // CLOCK_MONOTONIC (bpf_ktime_get_ns)
	EndMonoNs   int64  // == StartMonoNs for page faults
	Arg         uint64 // block: sector; sync: fd; io_uring: user_data; fault: address
	Tid         uint32 // the submitting, calling, faulting or waiting thread
	Kind        Kind
	Op          uint16 // block: op class; sync: SyncFdatasync/SyncFsync; io_uring: opcode; fault: error code; runq: cpu
	Res         int32  // sync: return value; io_uring: CQE result
	Bytes       uint32 // block: request size
}

// eventSize is sizeof(struct rq_event).
const eventSize = 40

// DurationNs is how long the event lasted.
func (e *Event) DurationNs() int64 { return e.EndMonoNs - e.StartMonoNs }

// decodeEvent parses one struct rq_event (little-endian).
func decodeEvent(b []byte) (Event, error) {
	if len(b) < eventSize {
		return Event{}, fmt.Errorf("decode event: %d bytes, want %d", len(b), eventSize)
	}
	le := binary.LittleEndian
	return Event{
		StartMonoNs: int64(le.Uint64(b[0:])),
		EndMonoNs:   int64(le.Uint64(b[8:])),
		Arg:         le.Uint64(b[16:]),
		Tid:         le.Uint32(b[24:]),
		Kind:        Kind(le.Uint16(b[28:])),
		Op:          le.Uint16(b[30:]),
		Res:         int32(le.Uint32(b[32:])),
		Bytes:       le.Uint32(b[36:]),
	}, nil
}

// eventRing keeps the most recent events of all probes. Each probe's reader goroutine adds
// events in the order its ring buffer delivers them (about end-time order); queries copy out the
// ones overlapping a window. The lock is held only to copy events in or out, never across a
// system call.
type eventRing struct {
	mu struct {
		sync.Mutex
		buf   []Event
		added uint64 // events added since start; buf[(added-1)%len] is the newest
	}
}

func newEventRing(n int) *eventRing {
	r := &eventRing{}
	r.mu.buf = make([]Event, n)
	return r
}

func (r *eventRing) add(ev Event) {
	r.mu.Lock()
	r.mu.buf[r.mu.added%uint64(len(r.mu.buf))] = ev
	r.mu.added++
	r.mu.Unlock()
}

// added returns how many events were ever added.
func (r *eventRing) addedTotal() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.mu.added
}

// orderSlackNs is how far out of end-time order the ring may hold events: each probe emits at
// an event's end, so one probe's events are in end order, but different probes' readers deliver
// at slightly different times (goroutine scheduling on a loaded machine). Overlap scans look this
// far before the window.
const orderSlackNs = 100_000_000

// overlapping appends to dst the events that overlap [startMonoNs, endMonoNs] (points inside it
// included), newest first, and returns dst. It stops at the first event that ended more than
// orderSlackNs before the window.
func (r *eventRing) overlapping(dst []Event, startMonoNs, endMonoNs int64) []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := uint64(len(r.mu.buf))
	for i := uint64(0); i < min(n, r.mu.added); i++ {
		ev := &r.mu.buf[(r.mu.added-1-i)%n]
		if ev.EndMonoNs < startMonoNs-orderSlackNs {
			break
		}
		if ev.EndMonoNs >= startMonoNs && ev.StartMonoNs <= endMonoNs {
			dst = append(dst, *ev)
		}
	}
	return dst
}

// since appends the events added after the first `from` ones (those still in the ring) to
// dst, oldest first, and returns dst and the new total.
func (r *eventRing) since(dst []Event, from uint64) ([]Event, uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := uint64(len(r.mu.buf))
	if r.mu.added-from > n {
		from = r.mu.added - n
	}
	for g := from; g < r.mu.added; g++ {
		dst = append(dst, r.mu.buf[g%n])
	}
	return dst, r.mu.added
}
