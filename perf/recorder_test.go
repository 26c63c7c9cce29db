package perf

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// sendStamps returns the stamps of a durable send that starts at base and spends stepNs in each
// stage of a SYNC_FLUSH path (no replication).
func sendStamps(base, stepNs int64) Stamps {
	var s Stamps
	t := base
	for _, st := range []Stage{StageRead, StageDecoded, StageQueued, StageAppended,
		StageFlushSubmitted, StageDurable, StageWritten} {
		s.At[st] = t
		t += stepNs
	}
	return s
}

func counts(r *Recorder, code int16, st Stage) []int64 {
	dst := make([]int64, histCountsLen)
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.denseLocked(dst, codeIndex(code), st, 0, true) {
		return nil
	}
	return dst
}

func TestRecordStagesAndSLO(t *testing.T) {
	r := NewRecorder(RecorderConfig{})
	fast := sendStamps(1_000_000, 100_000) // 6 steps of 100 us: 600 us end to end
	slow := sendStamps(5_000_000, 1_000_000)
	for range 10 {
		r.Record(CodeSendMessageV2, &fast, 4096, "orders", 3)
	}
	r.Record(CodeSendMessageV2, &slow, 1024, "orders", 1)

	e2e := toHdr(counts(r, CodeSendMessageV2, 0))
	if got, want := e2e.TotalCount(), int64(11); got != want {
		t.Fatalf("e2e count: got %d, want %d", got, want)
	}
	if got := e2e.ValueAtQuantile(50); !e2e.ValuesAreEquivalent(got, 600_000) {
		t.Fatalf("e2e p50: got %d ns, want ~600000", got)
	}
	durable := toHdr(counts(r, CodeSendMessageV2, StageDurable))
	if got := durable.Max(); !durable.ValuesAreEquivalent(got, 1_000_000) {
		t.Fatalf("durable max: got %d ns, want ~1000000", got)
	}
	if c := counts(r, CodeSendMessageV2, StageReplicated); c != nil && toHdr(c).TotalCount() != 0 {
		t.Fatalf("replicated: got %d values, want 0 (no stage passed)", toHdr(c).TotalCount())
	}
	// written follows durable directly: the skipped replicated stage is bridged.
	if got := toHdr(counts(r, CodeSendMessageV2, StageWritten)).TotalCount(); got != 11 {
		t.Fatalf("written: got %d values, want 11", got)
	}
	c := &r.codes[codeIndex(CodeSendMessageV2)]
	got := c.loadSLO()
	want := sloCounts{Total: 11, Le1ms: 10, Le10ms: 11, Bytes: 10*4096 + 1024}
	if got != want {
		t.Fatalf("SLO counters: got %+v, want %+v", got, want)
	}
	slowReqs := r.SlowRequests()
	if len(slowReqs) != 1 {
		t.Fatalf("slow requests: got %d, want 1", len(slowReqs))
	}
	sr := slowReqs[0]
	if sr.Topic != "orders" || sr.QueueID != 1 || sr.SizeBytes != 1024 || sr.TotalNs != 6_000_000 ||
		sr.CodeName != "SEND_MESSAGE_V2" || sr.StageNs(StageDurable) != 1_000_000 || len(sr.Stages) != 7 {
		t.Fatalf("slow request: got %+v", sr)
	}
}

func TestSLOBoundariesAreExact(t *testing.T) {
	r := NewRecorder(RecorderConfig{})
	for _, d := range []int64{SLOFastNs, SLOFastNs + 1, SLOSlowNs, SLOSlowNs + 1} {
		var s Stamps
		s.At[StageRead], s.At[StageWritten] = 1, 1+d
		r.Record(CodeSendMessage, &s, 0, "t", 0)
	}
	got := r.codes[codeIndex(CodeSendMessage)].loadSLO()
	if got.Total != 4 || got.Le1ms != 1 || got.Le10ms != 3 {
		t.Fatalf("SLO counters: got %+v, want total 4, le_1ms 1, le_10ms 3", got)
	}
}

func TestRecordOddStamps(t *testing.T) {
	r := NewRecorder(RecorderConfig{})
	var none Stamps
	r.Record(CodeSendMessage, &none, 0, "", -1)
	if r.Unstamped() != 1 {
		t.Fatalf("unstamped: got %d, want 1", r.Unstamped())
	}
	var back Stamps
	back.At[StageRead], back.At[StageDecoded], back.At[StageWritten] = 100, 50, 200
	r.Record(CodeSendMessage, &back, 0, "", -1)
	if r.StampOrderErrors() != 1 || r.StampOrderErrorsInto(StageDecoded) != 1 {
		t.Fatalf("order errors: got %d (%d into decoded), want 1 into decoded", r.StampOrderErrors(), r.StampOrderErrorsInto(StageDecoded))
	}
	r.Record(12345, &back, 0, "", -1)
	if got := toHdr(counts(r, 12345, 0)).TotalCount(); got != 1 {
		t.Fatalf("unknown code under other: got %d, want 1", got)
	}
	if CodeName(12345) != "other" {
		t.Fatalf("CodeName(12345): got %q, want other", CodeName(12345))
	}
}

func TestRecordAllocatesNothing(t *testing.T) {
	r := NewRecorder(RecorderConfig{SlowThreshold: time.Microsecond})
	s := sendStamps(1000, 300_000) // slow: exercises the slow ring too
	r.Record(CodePullMessage, &s, 1, "warm", 0)
	allocs := testing.AllocsPerRun(1000, func() {
		r.Record(CodeSendMessageV2, &s, 4096, "orders", 3)
		r.Record(CodePullMessage, &s, 1, "orders", 3)
	})
	if allocs != 0 {
		t.Fatalf("Record allocates: got %v allocs/run, want 0", allocs)
	}
}

func TestSlowRingKeepsNewest(t *testing.T) {
	r := NewRecorder(RecorderConfig{SlowLogSize: 8, SlowThreshold: time.Microsecond})
	long := strings.Repeat("x", 200)
	for i := range 20 {
		s := sendStamps(int64(1000+i), 10_000)
		r.Record(CodeSendMessage, &s, i, fmt.Sprintf("t%d", i), int32(i))
	}
	s := sendStamps(1000, 10_000)
	r.Record(CodeSendMessage, &s, 99, long, 0)
	got := r.SlowRequests()
	if len(got) != 8 {
		t.Fatalf("entries: got %d, want 8", len(got))
	}
	if !got[0].TopicTruncated || len(got[0].Topic) != topicMaxBytes || got[0].Seq != 20 {
		t.Fatalf("newest entry: got seq %d topic len %d truncated %v", got[0].Seq, len(got[0].Topic), got[0].TopicTruncated)
	}
	if got[1].Topic != "t19" || got[7].Topic != "t13" {
		t.Fatalf("order: got %q .. %q, want t19 .. t13", got[1].Topic, got[7].Topic)
	}
}

func TestRecordConcurrent(t *testing.T) {
	r := NewRecorder(RecorderConfig{SlowLogSize: 16, SlowThreshold: 500 * time.Microsecond})
	const workers, perWorker = 4, 5000
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range perWorker {
				s := sendStamps(int64(1000+i), int64(10_000*(1+(i+w)%200)))
				r.Record(CodeSendMessageV2, &s, 100, "c", int32(w))
			}
		})
	}
	done := make(chan struct{})
	readerDone := make(chan error, 1)
	go func() { // reads while the writers write: at most 2000 rounds, ends with the writers
		for i := range 2000 {
			select {
			case <-done:
				readerDone <- nil
				return
			default:
			}
			for _, sr := range r.SlowRequests() {
				if sr.Topic != "c" || sr.TotalNs <= 500_000 {
					readerDone <- fmt.Errorf("torn slow entry %+v", sr)
					return
				}
			}
			if i%20 == 0 {
				r.Rotate()
			}
		}
		readerDone <- nil
	}()
	wg.Wait()
	close(done)
	if err := <-readerDone; err != nil {
		t.Fatal(err)
	}
	if got := r.codes[codeIndex(CodeSendMessageV2)].loadSLO().Total; got != workers*perWorker {
		t.Fatalf("total: got %d, want %d", got, workers*perWorker)
	}
	if got := toHdr(counts(r, CodeSendMessageV2, 0)).TotalCount(); got != workers*perWorker {
		t.Fatalf("e2e count: got %d, want %d", got, workers*perWorker)
	}
}

func BenchmarkRecord(b *testing.B) {
	r := NewRecorder(RecorderConfig{})
	s := sendStamps(1000, 50_000)
	b.ReportAllocs()
	for b.Loop() {
		r.Record(CodeSendMessageV2, &s, 4096, "orders", 3)
	}
}

func BenchmarkRecordParallel(b *testing.B) {
	r := NewRecorder(RecorderConfig{})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := int64(0)
		for pb.Next() {
			i++
			s := sendStamps(1000, 20_000+(i%64)*1000)
			r.Record(CodeSendMessageV2, &s, 4096, "orders", int32(i%8))
		}
	})
}

func BenchmarkNow(b *testing.B) {
	var sink int64
	for b.Loop() {
		sink += Now()
	}
	_ = sink
}

func TestCodeTable(t *testing.T) {
	for i, c := range codeTable {
		if i == codeOther {
			continue
		}
		if got := codeIndex(c.code); got != i {
			t.Errorf("codeIndex(%d %s): got %d, want %d", c.code, c.name, got, i)
		}
	}
	for _, code := range []int16{0, -1, 1, 12, 200, 311, 32767} {
		if got := codeIndex(code); got != codeOther {
			t.Errorf("codeIndex(%d): got %d, want other (%d)", code, got, codeOther)
		}
	}
}
