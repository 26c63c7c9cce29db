package perf

import (
	"cmp"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// topicMaxBytes bounds the topic kept per slow request; RocketMQ topics are at most 127 bytes.
// A longer topic is cut and reported with TopicTruncated.
const (
	topicWords    = 16
	topicMaxBytes = topicWords * 8
)

// slowSlot is one entry of the slow-request ring. Every field is an atomic so that a reader
// racing a writer sees either value, never a torn one; seq tells the reader whether the slot was
// rewritten while it read (a seqlock):
//
//	seq = 0        empty
//	seq = 2g+1     generation g is being written
//	seq = 2g+2     holds generation g (the g-th slow request since start)
type slowSlot struct {
	seq       atomic.Uint64
	at        [NumStages]atomic.Int64
	code      atomic.Int32
	queueID   atomic.Int32
	sizeBytes atomic.Int64
	topicLen  atomic.Uint32 // bytes of topic, before truncation
	topic     [topicWords]atomic.Uint64
}

// slowRing keeps the last len(slots) slow requests. Writers claim a generation with one atomic
// add and the slot with a compare-and-swap; they never wait. A writer that finds its slot being
// written, or already holding a newer generation, drops its entry and counts it.
type slowRing struct {
	next    atomic.Uint64 // generations handed out
	dropped atomic.Int64
	slots   []slowSlot
}

func (r *slowRing) init(n int) { r.slots = make([]slowSlot, n) }

func (r *slowRing) add(code int16, s *Stamps, sizeBytes int, topic string, queueID int32) {
	g := r.next.Add(1) - 1
	slot := &r.slots[g%uint64(len(r.slots))]
	old := slot.seq.Load()
	if old&1 == 1 || old > 2*g+1 || !slot.seq.CompareAndSwap(old, 2*g+1) {
		r.dropped.Add(1)
		return
	}
	for i := range s.At {
		slot.at[i].Store(s.At[i])
	}
	slot.code.Store(int32(code))
	slot.queueID.Store(queueID)
	slot.sizeBytes.Store(int64(sizeBytes))
	slot.topicLen.Store(uint32(min(len(topic), 1<<31)))
	for w := range topicWords {
		var word uint64
		for b := range 8 {
			if i := w*8 + b; i < len(topic) {
				word |= uint64(topic[i]) << (8 * b)
			}
		}
		slot.topic[w].Store(word)
	}
	slot.seq.Store(2*g + 2)
}

// SlowRequest is one entry of the slow-request log.
type SlowRequest struct {
	Seq            uint64           `json:"seq"` // the Seq-th slow request since start
	Time           time.Time        `json:"time"`
	Code           int16            `json:"code"`
	CodeName       string           `json:"code_name"`
	Topic          string           `json:"topic"`
	TopicTruncated bool             `json:"topic_truncated,omitempty"`
	QueueID        int32            `json:"queue_id"`
	SizeBytes      int64            `json:"size_bytes"`
	TotalNs        int64            `json:"total_ns"` // first stamp to last stamp
	At             [NumStages]int64 `json:"-"`        // raw stamps, perf.Now clock
	Stages         []SlowStage      `json:"stages"`   // stages passed, in order
	Evidence       []Evidence       `json:"evidence"`
	stageDurations [NumStages]int64 // duration into each stage, 0 when not passed
}

// SlowStage is one stage a slow request passed: how long it took to get there from the stage
// before.
type SlowStage struct {
	Stage     string `json:"stage"`
	AtNs      int64  `json:"at_ns"`      // offset from the first stamp
	DeltaNs   int64  `json:"delta_ns"`   // time since the previous stage passed
	StageEnum Stage  `json:"stage_enum"` // numeric Stage
}

// StageNs returns how long the request took to reach stage st from the stage before it (0 when
// st was not passed or is the first stage).
func (s *SlowRequest) StageNs(st Stage) int64 { return s.stageDurations[st] }

// Evidence is a kernel event (or anything else a probe saw) that overlapped a slow request and
// may explain it. Times are on the perf.Now clock.
type Evidence struct {
	Kind    string `json:"kind"` // e.g. "block_io", "fdatasync", "runq_delay", "page_fault"
	StartNs int64  `json:"start_ns"`
	EndNs   int64  `json:"end_ns"`
	Detail  string `json:"detail"`
}

// EvidenceQuery describes one slow request to an EvidenceSource.
type EvidenceQuery struct {
	StartNs, EndNs         int64 // perf.Now clock
	StartMonoNs, EndMonoNs int64 // the same on CLOCK_MONOTONIC (bpf_ktime_get_ns)
	Code                   int16
	Topic                  string
	QueueID                int32
}

// EvidenceSource returns the events that overlapped a slow request, at most a handful (the
// recorder keeps at most maxEvidence). It is called off the request path, from the recorder's
// own goroutine, once per slow request, shortly (within evidencePoll) after it was recorded.
type EvidenceSource func(q EvidenceQuery) []Evidence

const (
	maxEvidence  = 16
	evidencePoll = 100 * time.Millisecond
)

// evidenceState holds the evidence gathered per slow-ring generation.
type evidenceState struct {
	src       atomic.Pointer[EvidenceSource]
	collectMu sync.Mutex // one CollectEvidence at a time
	mu        struct {
		sync.Mutex
		done  uint64 // generations below done have been looked up
		seq   []uint64
		items [][]Evidence
	}
}

func (e *evidenceState) init(n int) {
	e.mu.seq = make([]uint64, n)
	e.mu.items = make([][]Evidence, n)
}

// SetEvidenceSource installs the function that explains slow requests (nil removes it). Requests
// recorded before it was set get no evidence.
func (r *Recorder) SetEvidenceSource(src EvidenceSource) {
	if src == nil {
		r.evid.src.Store(nil)
		return
	}
	r.evid.mu.Lock()
	r.evid.mu.done = r.slow.next.Load()
	r.evid.mu.Unlock()
	r.evid.src.Store(&src)
}

// CollectEvidence asks the evidence source about every slow request recorded since the last
// call. The recorder's goroutine (Start) calls it every 100 ms; /api/slow calls it before
// answering so the list is current. Calls are serialised; it never blocks Record.
func (r *Recorder) CollectEvidence() {
	srcp := r.evid.src.Load()
	if srcp == nil {
		return
	}
	r.evid.collectMu.Lock()
	defer r.evid.collectMu.Unlock()
	r.evid.mu.Lock()
	from := r.evid.mu.done
	r.evid.mu.Unlock()
	to := r.slow.next.Load()
	if n := uint64(len(r.slow.slots)); to-from > n {
		from = to - n
	}
	for _, req := range r.slowEntries(from) {
		ev := (*srcp)(EvidenceQuery{
			StartNs: req.At[firstStage(req.At)], EndNs: req.At[lastStage(req.At)],
			StartMonoNs: KernelMonotonicNs(req.At[firstStage(req.At)]),
			EndMonoNs:   KernelMonotonicNs(req.At[lastStage(req.At)]),
			Code:        req.Code, Topic: req.Topic, QueueID: req.QueueID,
		})
		if len(ev) > maxEvidence {
			ev = ev[:maxEvidence]
		}
		r.evid.mu.Lock()
		i := req.Seq % uint64(len(r.evid.mu.seq))
		r.evid.mu.seq[i], r.evid.mu.items[i] = req.Seq, slices.Clone(ev)
		r.evid.mu.Unlock()
	}
	r.evid.mu.Lock()
	r.evid.mu.done = max(r.evid.mu.done, to)
	r.evid.mu.Unlock()
}

func firstStage(at [NumStages]int64) Stage {
	for st := range NumStages {
		if at[st] != 0 {
			return st
		}
	}
	return 0
}

func lastStage(at [NumStages]int64) Stage {
	for st := NumStages - 1; st > 0; st-- {
		if at[st] != 0 {
			return st
		}
	}
	return 0
}

// slowEntries returns the consistent entries of generation >= from, oldest first.
func (r *Recorder) slowEntries(from uint64) []SlowRequest {
	out := make([]SlowRequest, 0, 16)
	for i := range r.slow.slots {
		slot := &r.slow.slots[i]
		s1 := slot.seq.Load()
		if s1 == 0 || s1&1 == 1 || s1/2-1 < from {
			continue
		}
		var req SlowRequest
		for st := range req.At {
			req.At[st] = slot.at[st].Load()
		}
		req.Code = int16(slot.code.Load())
		req.QueueID = slot.queueID.Load()
		req.SizeBytes = slot.sizeBytes.Load()
		n := int(slot.topicLen.Load())
		var buf [topicMaxBytes]byte
		for w := range topicWords {
			word := slot.topic[w].Load()
			for b := range 8 {
				buf[w*8+b] = byte(word >> (8 * b))
			}
		}
		if slot.seq.Load() != s1 {
			continue // rewritten while we read it
		}
		req.TopicTruncated = n > topicMaxBytes
		req.Topic = string(buf[:min(n, topicMaxBytes)])
		req.Seq = s1/2 - 1
		req.fill()
		out = append(out, req)
	}
	slices.SortFunc(out, func(a, b SlowRequest) int { return cmp.Compare(a.Seq, b.Seq) })
	return out
}

// fill derives the display fields from At and Code.
func (s *SlowRequest) fill() {
	s.CodeName = CodeName(s.Code)
	first := firstStage(s.At)
	s.Time = WallTime(s.At[first])
	prev := s.At[first]
	s.Stages = s.Stages[:0]
	for st := first; st < NumStages; st++ {
		t := s.At[st]
		if t == 0 {
			continue
		}
		d := max(t-prev, 0)
		if st != first {
			s.stageDurations[st] = d
		}
		s.Stages = append(s.Stages, SlowStage{Stage: st.String(), StageEnum: st, AtNs: t - s.At[first], DeltaNs: d})
		prev = t
	}
	s.TotalNs = max(prev-s.At[first], 0)
}

// SlowRequests returns the slow-request log, newest first, with any evidence gathered so far.
func (r *Recorder) SlowRequests() []SlowRequest {
	out := r.slowEntries(0)
	slices.Reverse(out)
	r.evid.mu.Lock()
	defer r.evid.mu.Unlock()
	for i := range out {
		j := out[i].Seq % uint64(len(r.evid.mu.seq))
		if r.evid.mu.seq[j] == out[i].Seq && r.evid.mu.items[j] != nil {
			out[i].Evidence = slices.Clone(r.evid.mu.items[j])
		}
		if out[i].Evidence == nil {
			out[i].Evidence = []Evidence{}
		}
	}
	return out
}

// SlowDropped returns how many slow requests were not logged because their ring slot was busy.
func (r *Recorder) SlowDropped() int64 { return r.slow.dropped.Load() }

// SlowTotal returns how many slow requests were seen since start (logged or dropped).
func (r *Recorder) SlowTotal() uint64 { return r.slow.next.Load() }
