package bpf

import (
	"encoding/binary"
	"reflect"
	"strings"
	"testing"

	"github.com/ringmq/ringmq/perf"
)

const ms = 1_000_000

func TestExplain(t *testing.T) {
	const tid = 812
	cases := []struct {
		name       string
		events     []Event
		start, end int64
		wantCause  Cause
		wantKinds  []string
		wantDetail []string // substrings of the details, in order
	}{
		{
			name:  "nothing",
			start: 10 * ms, end: 12 * ms,
			wantCause: CauseNone, wantKinds: []string{},
		},
		{
			name: "fdatasync with its flush and write",
			events: []Event{
				{Kind: KindSync, Op: SyncFdatasync, StartMonoNs: 10 * ms, EndMonoNs: 13*ms + 200_000, Tid: tid, Arg: 7},
				{Kind: KindBlock, Op: BlockWrite, StartMonoNs: 10*ms + 10_000, EndMonoNs: 10*ms + 210_000, Tid: tid, Bytes: 65536},
				{Kind: KindBlock, Op: BlockWrite, StartMonoNs: 10*ms + 20_000, EndMonoNs: 10*ms + 220_000, Tid: tid, Bytes: 65536},
				{Kind: KindBlock, Op: BlockFlush, StartMonoNs: 10*ms + 300_000, EndMonoNs: 13*ms + 200_000, Tid: tid},
				{Kind: KindBlock, Op: BlockWrite, StartMonoNs: 11 * ms, EndMonoNs: 12 * ms, Tid: 999, Bytes: 4096},
			},
			start: 9 * ms, end: 14 * ms,
			wantCause: CauseSync,
			wantKinds: []string{"fdatasync", "block_io"},
			wantDetail: []string{
				"fdatasync 3.2 ms (fd 7, tid 812), of which block flush 2.9 ms, block write 210 us (128 KiB in 2 requests)",
				"block write 1.0 ms, 4 KiB (tid 999)",
			},
		},
		{
			name: "run-queue wait and page faults; short events left out",
			events: []Event{
				{Kind: KindRunq, StartMonoNs: 10 * ms, EndMonoNs: 11*ms + 400_000, Tid: tid, Op: 1},
				{Kind: KindRunq, StartMonoNs: 11 * ms, EndMonoNs: 11*ms + 5_000, Tid: tid},
				{Kind: KindFault, StartMonoNs: 10*ms + 1, EndMonoNs: 10*ms + 1, Tid: tid},
				{Kind: KindFault, StartMonoNs: 10*ms + 2, EndMonoNs: 10*ms + 2, Tid: tid},
				{Kind: KindFault, StartMonoNs: 10*ms + 3, EndMonoNs: 10*ms + 3, Tid: 815},
				{Kind: KindFault, StartMonoNs: 20 * ms, EndMonoNs: 20 * ms, Tid: 815}, // after the request
			},
			start: 10 * ms, end: 12 * ms,
			wantCause:  CauseRunq,
			wantKinds:  []string{"runq_delay", "page_fault"},
			wantDetail: []string{"run-queue wait 1.4 ms on tid 812 (cpu 1)", "3 page faults (tid 812: 2, tid 815: 1)"},
		},
		{
			name: "page faults only",
			events: []Event{
				{Kind: KindFault, StartMonoNs: 11 * ms, EndMonoNs: 11 * ms, Tid: tid},
			},
			start: 10 * ms, end: 12 * ms,
			wantCause: CausePageFault, wantKinds: []string{"page_fault"}, wantDetail: []string{"1 page fault (tid 812: 1)"},
		},
		{
			name: "io_uring fsync longer than a block write",
			events: []Event{
				{Kind: KindBlock, Op: BlockWrite, StartMonoNs: 10 * ms, EndMonoNs: 10*ms + 500_000, Tid: 900, Bytes: 1536},
				{Kind: KindUring, Op: 3, StartMonoNs: 10 * ms, EndMonoNs: 12 * ms, Tid: 901, Arg: 0x2a, Res: 0},
			},
			start: 9 * ms, end: 13 * ms,
			wantCause:  CauseUring,
			wantKinds:  []string{"io_uring", "block_io"},
			wantDetail: []string{"io_uring fsync 2.0 ms (res 0, user_data 0x2a, tid 901)", "block write 500 us, 1536 B (tid 900)"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, cause := explain(c.events, c.start, c.end, 0)
			if cause != c.wantCause {
				t.Errorf("cause: got %v, want %v", cause, c.wantCause)
			}
			kinds := []string{}
			for _, e := range got {
				kinds = append(kinds, e.Kind)
			}
			if !reflect.DeepEqual(kinds, c.wantKinds) {
				t.Fatalf("kinds: got %v, want %v (%+v)", kinds, c.wantKinds, got)
			}
			for i, want := range c.wantDetail {
				if got[i].Detail != want {
					t.Errorf("detail %d: got %q, want %q", i, got[i].Detail, want)
				}
			}
			for _, e := range got {
				if e.EndNs < e.StartNs {
					t.Errorf("evidence %+v ends before it starts", e)
				}
			}
		})
	}
}

func TestExplainTimesOnPerfClock(t *testing.T) {
	const offsetNs = 5_000_000_000
	start := perf.Now() + offsetNs
	got, _ := explain([]Event{{Kind: KindSync, StartMonoNs: start, EndMonoNs: start + 2*ms}}, start, start+3*ms, offsetNs)
	if len(got) != 1 || got[0].StartNs != start-offsetNs || got[0].EndNs-got[0].StartNs != 2*ms {
		t.Fatalf("got %+v, want one item from %d lasting 2 ms", got, start-offsetNs)
	}
}

// TestMonoOffset checks perf's CLOCK_MONOTONIC offset, which the probes' events are
// matched against request stamps with.
func TestMonoOffset(t *testing.T) {
	off := perf.KernelMonotonicNs(0)
	a := perf.Now()
	m := monoNowNs()
	b := perf.Now()
	if m-off < a-50_000 || m-off > b+50_000 {
		t.Fatalf("clock_gettime %d - offset %d = %d, outside the perf.Now bracket [%d, %d] (+-50 us)", m, off, m-off, a, b)
	}
}

func TestExplainBounded(t *testing.T) {
	var evs []Event
	for i := range 100 {
		evs = append(evs, Event{Kind: KindRunq, StartMonoNs: int64(i) * ms, EndMonoNs: int64(i+1) * ms, Tid: uint32(i)})
		evs = append(evs, Event{Kind: KindFault, StartMonoNs: int64(i) * ms, EndMonoNs: int64(i) * ms, Tid: uint32(i)})
	}
	got, _ := explain(evs, 0, 100*ms, 0)
	if len(got) != maxEvidenceItems || got[len(got)-1].Kind != "page_fault" ||
		!strings.HasPrefix(got[len(got)-1].Detail, "100 page faults (") {
		t.Fatalf("got %d items, last %+v; want %d, the page faults last", len(got), got[len(got)-1], maxEvidenceItems)
	}
}

func TestUnionNs(t *testing.T) {
	cases := []struct {
		spans [][2]int64
		want  int64
	}{
		{[][2]int64{{0, 10}}, 10},
		{[][2]int64{{0, 10}, {5, 15}}, 15},
		{[][2]int64{{20, 30}, {0, 10}}, 20},
		{[][2]int64{{0, 100}, {10, 20}, {30, 40}}, 100},
	}
	for _, c := range cases {
		if got := unionNs(c.spans); got != c.want {
			t.Errorf("unionNs(%v): got %d, want %d", c.spans, got, c.want)
		}
	}
}

func TestDecodeEvent(t *testing.T) {
	b := make([]byte, eventSize)
	le := binary.LittleEndian
	le.PutUint64(b[0:], 100)
	le.PutUint64(b[8:], 250)
	le.PutUint64(b[16:], 0xdead)
	le.PutUint32(b[24:], 812)
	le.PutUint16(b[28:], uint16(KindSync))
	le.PutUint16(b[30:], SyncFsync)
	le.PutUint32(b[32:], uint32(0xffffffff)) // -1
	le.PutUint32(b[36:], 4096)
	got, err := decodeEvent(b)
	want := Event{StartMonoNs: 100, EndMonoNs: 250, Arg: 0xdead, Tid: 812, Kind: KindSync, Op: SyncFsync, Res: -1, Bytes: 4096}
	if err != nil || got != want {
		t.Fatalf("got %+v, %v; want %+v", got, err, want)
	}
	if _, err := decodeEvent(b[:eventSize-1]); err == nil {
		t.Fatal("short record decoded without error")
	}
}

func TestEventRing(t *testing.T) {
	r := newEventRing(4)
	for i := range int64(6) { // events 2..5 stay
		r.add(Event{StartMonoNs: i * ms, EndMonoNs: i*ms + ms/2, Tid: uint32(i)})
	}
	got := r.overlapping(nil, 3*ms+ms/4, 4*ms+ms/4)
	if len(got) != 2 || got[0].Tid != 4 || got[1].Tid != 3 {
		t.Fatalf("overlapping: got %+v, want tids 4, 3", got)
	}
	evs, total := r.since(nil, 0)
	if total != 6 || len(evs) != 4 || evs[0].Tid != 2 || evs[3].Tid != 5 {
		t.Fatalf("since(0): got %d events %+v, total %d; want tids 2..5, total 6", len(evs), evs, total)
	}
	if evs, _ := r.since(nil, 5); len(evs) != 1 || evs[0].Tid != 5 {
		t.Fatalf("since(5): got %+v, want tid 5", evs)
	}
}

func TestOpenValidates(t *testing.T) {
	for _, cfg := range []Config{{EventRingSize: MaxEventRingSize + 1}, {Probes: []string{"kprobe"}}, {PID: -1}} {
		if s, err := Open(cfg); err == nil {
			s.Close()
			t.Errorf("Open(%+v): no error", cfg)
		}
	}
}

// BenchmarkEvidence measures one evidence lookup for a 2 ms request in a full ring of the
// default size, filled as a loaded broker fills it: every 100 us one fdatasync with two block
// requests, a run-queue wait and a page fault (50000 events per second).
func BenchmarkEvidence(b *testing.B) {
	s := &Set{ring: newEventRing(DefaultEventRingSize)}
	var t int64
	for s.ring.addedTotal() < DefaultEventRingSize {
		t += 100_000
		s.ring.add(Event{Kind: KindBlock, Op: BlockWrite, StartMonoNs: t, EndMonoNs: t + 30_000, Tid: 1, Bytes: 8192})
		s.ring.add(Event{Kind: KindBlock, Op: BlockFlush, StartMonoNs: t + 31_000, EndMonoNs: t + 80_000, Tid: 1})
		s.ring.add(Event{Kind: KindSync, StartMonoNs: t, EndMonoNs: t + 90_000, Tid: 1})
		s.ring.add(Event{Kind: KindRunq, StartMonoNs: t + 10_000, EndMonoNs: t + 60_000, Tid: 2})
		s.ring.add(Event{Kind: KindFault, StartMonoNs: t + 5_000, EndMonoNs: t + 5_000, Tid: 3})
	}
	q := perf.EvidenceQuery{StartNs: t - 3*ms, EndNs: t - 1*ms}
	b.ReportAllocs()
	for b.Loop() {
		if ev := s.Evidence(q); len(ev) == 0 {
			b.Fatal("no evidence")
		}
	}
}
