package perf

import (
	"testing"
	"time"
)

func TestEvidenceIsGatheredOffThePath(t *testing.T) {
	r := NewRecorder(RecorderConfig{SlowLogSize: 4})
	before := sendStamps(Now(), 400_000)
	r.Record(CodeSendMessage, &before, 1, "early", 0) // before the source: gets none
	var queries []EvidenceQuery
	r.SetEvidenceSource(func(q EvidenceQuery) []Evidence {
		queries = append(queries, q)
		ev := make([]Evidence, maxEvidence+5) // more than kept
		for i := range ev {
			ev[i] = Evidence{Kind: "fdatasync", StartNs: q.StartNs, EndNs: q.EndNs, Detail: q.Topic}
		}
		return ev
	})
	slow := sendStamps(Now(), 300_000)
	r.Record(CodeSendMessageV2, &slow, 10, "orders", 2)
	fast := sendStamps(Now(), 1_000)
	r.Record(CodeSendMessageV2, &fast, 10, "orders", 2)
	if len(queries) != 0 {
		t.Fatalf("the source was called on the request path")
	}
	r.CollectEvidence()
	r.CollectEvidence() // nothing new: no second query
	if len(queries) != 1 {
		t.Fatalf("queries: got %d, want 1 (the one slow request after SetEvidenceSource)", len(queries))
	}
	q := queries[0]
	if q.StartNs != slow.At[StageRead] || q.EndNs != slow.At[StageWritten] || q.Topic != "orders" ||
		q.QueueID != 2 || q.Code != CodeSendMessageV2 || q.EndMonoNs-q.StartMonoNs != q.EndNs-q.StartNs {
		t.Fatalf("query: got %+v for stamps %v", q, slow.At)
	}
	got := r.SlowRequests()
	if len(got) != 2 || len(got[0].Evidence) != maxEvidence || got[0].Evidence[0].Detail != "orders" || len(got[1].Evidence) != 0 {
		t.Fatalf("evidence: got %d requests, newest with %d items, oldest with %d; want 2, %d, 0",
			len(got), len(got[0].Evidence), len(got[1].Evidence), maxEvidence)
	}
}

func TestKernelMonotonicMatchesClock(t *testing.T) {
	for range 5 {
		ns := Now()
		mono := kernelMonotonicNs()
		if d := mono - KernelMonotonicNs(ns); d < 0 || d > int64(time.Millisecond) {
			t.Fatalf("CLOCK_MONOTONIC %d read after Now, KernelMonotonicNs gives %d: off by %d ns", mono, KernelMonotonicNs(ns), d)
		}
		if FromKernelMonotonicNs(KernelMonotonicNs(ns)) != ns {
			t.Fatalf("FromKernelMonotonicNs does not invert KernelMonotonicNs")
		}
	}
	if w := WallTime(Now()); time.Since(w) < 0 || time.Since(w) > time.Second {
		t.Fatalf("WallTime(Now()) = %v, now is %v", w, time.Now())
	}
}
