package bpf

import (
	"fmt"
	"slices"
	"strings"

	"github.com/ringmq/ringmq/perf"
)

// Cause is what a slow request's kernel evidence points at most: the kind of event that
// overlapped the request for the longest time.
type Cause uint8

// Causes, in the order of the ringmq_slow_request_cause_total series.
const (
	CauseNone      Cause = iota // no kernel event overlapped the request
	CauseSync                   // an fdatasync/fsync (block time inside it is part of it)
	CauseBlock                  // block I/O outside any traced sync call
	CauseUring                  // an io_uring request
	CauseRunq                   // waiting for a CPU
	CausePageFault              // page faults only
	numCauses
)

var causeNames = [numCauses]string{"none", "fdatasync", "block_io", "io_uring", "runq_delay", "page_fault"}

func (c Cause) String() string { return causeNames[c] }

// minOverlapNs is the shortest overlap with the request that makes an event evidence: shorter
// ones cannot explain a request over the slow threshold (1 ms by default) and would crowd out the
// ones that do.
const minOverlapNs = 20_000

// maxEvidenceItems bounds the evidence per request (perf keeps at most 16).
const maxEvidenceItems = 16

// ioUringOpNames names the io_uring opcodes ringmq uses (linux/io_uring.h).
var ioUringOpNames = map[uint16]string{
	0: "nop", 1: "readv", 2: "writev", 3: "fsync", 4: "read_fixed", 5: "write_fixed",
	17: "fallocate", 22: "read", 23: "write",
}

// explain turns the events that overlap a request window [startMonoNs, endMonoNs] into
// evidence, longest overlap first, page faults last, and names the main cause. Evidence times
// are on the perf.Now clock: CLOCK_MONOTONIC minus monoOffsetNs. events may be in any order.
func explain(events []Event, startMonoNs, endMonoNs, monoOffsetNs int64) ([]perf.Evidence, Cause) {
	type item struct {
		ev        perf.Evidence
		overlapNs int64
		cause     Cause
	}
	var items []item
	usedBlock := make([]bool, len(events))
	overlap := func(e *Event) int64 {
		return min(e.EndMonoNs, endMonoNs) - max(e.StartMonoNs, startMonoNs)
	}
	add := func(e *Event, kind, detail string, cause Cause) {
		items = append(items, item{
			ev: perf.Evidence{Kind: kind, Detail: detail,
				StartNs: e.StartMonoNs - monoOffsetNs, EndNs: e.EndMonoNs - monoOffsetNs},
			overlapNs: overlap(e), cause: cause,
		})
	}
	// Sync calls first: block requests their thread submitted inside them are part of them.
	blocksByTid := map[uint32][]int{}
	for i := range events {
		if events[i].Kind == KindBlock {
			blocksByTid[events[i].Tid] = append(blocksByTid[events[i].Tid], i)
		}
	}
	for i := range events {
		e := &events[i]
		if e.Kind != KindSync || overlap(e) < minOverlapNs {
			continue
		}
		add(e, syncName(e.Op), syncDetail(events, i, blocksByTid[e.Tid], usedBlock), CauseSync)
	}
	faults := map[uint32]int{}
	var faultFirst, faultLast int64
	for i := range events {
		e := &events[i]
		switch {
		case e.Kind == KindFault && e.StartMonoNs >= startMonoNs && e.StartMonoNs <= endMonoNs:
			if len(faults) == 0 || e.StartMonoNs < faultFirst {
				faultFirst = e.StartMonoNs
			}
			faultLast = max(faultLast, e.StartMonoNs)
			faults[e.Tid]++
		case overlap(e) < minOverlapNs:
		case e.Kind == KindBlock && !usedBlock[i]:
			add(e, "block_io", fmt.Sprintf("block %s %s, %s (tid %d)",
				blockOpName(e.Op), fmtNs(e.DurationNs()), fmtBytes(int64(e.Bytes)), e.Tid), CauseBlock)
		case e.Kind == KindUring:
			add(e, "io_uring", fmt.Sprintf("io_uring %s %s (res %d, user_data %#x, tid %d)",
				uringOpName(e.Op), fmtNs(e.DurationNs()), e.Res, e.Arg, e.Tid), CauseUring)
		case e.Kind == KindRunq:
			add(e, "runq_delay", fmt.Sprintf("run-queue wait %s on tid %d (cpu %d)",
				fmtNs(e.DurationNs()), e.Tid, e.Op), CauseRunq)
		}
	}
	slices.SortStableFunc(items, func(a, b item) int { return cmpInt64(b.overlapNs, a.overlapNs) })
	cause := CauseNone
	if len(items) > 0 {
		cause = items[0].cause
	}
	out := make([]perf.Evidence, 0, min(len(items)+1, maxEvidenceItems))
	for _, it := range items[:min(len(items), maxEvidenceItems-1)] {
		out = append(out, it.ev)
	}
	if len(faults) > 0 {
		if cause == CauseNone {
			cause = CausePageFault
		}
		out = append(out, perf.Evidence{Kind: "page_fault", Detail: faultDetail(faults),
			StartNs: faultFirst - monoOffsetNs, EndNs: faultLast - monoOffsetNs})
	}
	return out, cause
}

// syncDetail describes sync call events[i] with the block requests its thread submitted while
// inside it (blocks: the indexes of that thread's block events), and marks those as used. Block
// time is the time at least one request of the op was in flight (requests overlap), so it never
// exceeds the call's own time by much.
func syncDetail(events []Event, i int, blocks []int, usedBlock []bool) string {
	s := &events[i]
	var spans [numBlockOps][][2]int64
	var writeBytes int64
	for _, j := range blocks {
		b := &events[j]
		if b.StartMonoNs < s.StartMonoNs || b.StartMonoNs > s.EndMonoNs {
			continue
		}
		usedBlock[j] = true
		op := min(b.Op, BlockOther)
		spans[op] = append(spans[op], [2]int64{b.StartMonoNs, b.EndMonoNs})
		if op == BlockWrite {
			writeBytes += int64(b.Bytes)
		}
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "%s %s (fd %d, tid %d", syncName(s.Op), fmtNs(s.DurationNs()), s.Arg, s.Tid)
	if s.Res != 0 {
		fmt.Fprintf(&sb, ", returned %d", s.Res)
	}
	sb.WriteString(")")
	sep := ", of which "
	for _, op := range []uint16{BlockFlush, BlockWrite, BlockRead, BlockDiscard, BlockOther} {
		n := len(spans[op])
		if n == 0 {
			continue
		}
		fmt.Fprintf(&sb, "%sblock %s %s", sep, blockOpNames[op], fmtNs(unionNs(spans[op])))
		if op == BlockWrite {
			fmt.Fprintf(&sb, " (%s in %d request%s)", fmtBytes(writeBytes), n, plural(n))
		} else if n > 1 {
			fmt.Fprintf(&sb, " (%d requests)", n)
		}
		sep = ", "
	}
	return sb.String()
}

// unionNs returns the length of the union of the intervals [start, end]; it sorts spans.
func unionNs(spans [][2]int64) int64 {
	slices.SortFunc(spans, func(a, b [2]int64) int { return cmpInt64(a[0], b[0]) })
	var total, curStart, curEnd int64
	for i, sp := range spans {
		if i == 0 || sp[0] > curEnd {
			total += curEnd - curStart
			curStart, curEnd = sp[0], sp[1]
			continue
		}
		curEnd = max(curEnd, sp[1])
	}
	return total + curEnd - curStart
}

func faultDetail(byTid map[uint32]int) string {
	tids := make([]uint32, 0, len(byTid))
	total := 0
	for tid, n := range byTid {
		tids = append(tids, tid)
		total += n
	}
	slices.SortFunc(tids, func(a, b uint32) int { return byTid[b] - byTid[a] })
	var sb strings.Builder
	fmt.Fprintf(&sb, "%d page fault%s (", total, plural(total))
	for i, tid := range tids[:min(len(tids), 4)] {
		if i > 0 {
			sb.WriteString(", ")
		}
		fmt.Fprintf(&sb, "tid %d: %d", tid, byTid[tid])
	}
	if len(tids) > 4 {
		fmt.Fprintf(&sb, ", %d more threads", len(tids)-4)
	}
	sb.WriteString(")")
	return sb.String()
}

func syncName(op uint16) string {
	if op < numSyncOps {
		return syncOpNames[op]
	}
	return fmt.Sprintf("sync(%d)", op)
}

func blockOpName(op uint16) string { return blockOpNames[min(op, BlockOther)] }

func uringOpName(op uint16) string {
	if n, ok := ioUringOpNames[op]; ok {
		return n
	}
	return fmt.Sprintf("op %d", op)
}

// fmtNs renders a duration for a reader: "3.2 ms", "850 us".
func fmtNs(ns int64) string {
	if ns >= 1_000_000 {
		return fmt.Sprintf("%.1f ms", float64(ns)/1e6)
	}
	return fmt.Sprintf("%d us", ns/1000)
}

func fmtBytes(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d B", n)
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func cmpInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
