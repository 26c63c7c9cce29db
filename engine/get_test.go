package engine

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/ringmq/ringmq/engine/record"
	"github.com/ringmq/ringmq/flush/vfs"
)

// tagFilter passes the messages whose TAGS is one of tags.
type tagFilter struct{ tags []string }

func (f tagFilter) MatchTagsCode(code int64) bool {
	for _, t := range f.tags {
		if record.TagsHash(t) == code {
			return true
		}
	}
	return false
}

func (f tagFilter) MatchProperties(props []byte) bool {
	v, _ := record.Property(props, record.PropTags)
	for _, t := range f.tags {
		if string(v) == t {
			return true
		}
	}
	return false
}

// collisionFilter passes every tags code (as a hash collision would) but checks exactly.
type collisionFilter struct{ tagFilter }

func (collisionFilter) MatchTagsCode(int64) bool { return true }

func putN(t testing.TB, s *Store, topic string, qid int32, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		if _, err := s.Put(msg(topic, qid, i)); err != nil {
			t.Fatal(err)
		}
	}
	waitVisible(t, s, topic, qid, int64(to))
}

func TestGetMessagesStatuses(t *testing.T) {
	s := openStore(t, testConfig(vfs.NewMem(), SyncFlush))
	defer s.Close()
	putN(t, s, "T", 0, 0, 20)
	recSize := func(i int) int {
		m := msg("T", 0, i)
		return record.Size(len(m.Body), len(m.Topic), len(m.Properties))
	}
	tests := []struct {
		name           string
		topic          string
		offset         int64
		maxNums        int
		maxBytes       int
		filter         MessageFilter
		status         GetStatus
		next           int64
		wantFirst, num int
	}{
		{"unknown queue", "Nope", 5, 32, 0, nil, NoMessageInQueue, 0, 0, 0},
		{"all", "T", 0, 32, 0, nil, Found, 20, 0, 20},
		{"max nums", "T", 3, 4, 0, nil, Found, 7, 3, 4},
		{"max bytes", "T", 2, 32, recSize(2) + recSize(3), nil, Found, 4, 2, 2},
		{"first always fits", "T", 2, 32, 1, nil, Found, 3, 2, 1},
		{"zero nums is one", "T", 2, 0, 0, nil, Found, 3, 2, 1},
		{"overflow one", "T", 20, 32, 0, nil, OffsetOverflowOne, 20, 0, 0},
		{"overflow badly", "T", 25, 32, 0, nil, OffsetOverflowBadly, 20, 0, 0},
		{"tag filter", "T", 0, 32, 0, tagFilter{[]string{"t1"}}, Found, 20, 1, 7},
		{"exact filter", "T", 0, 32, 0, collisionFilter{tagFilter{[]string{"t2"}}}, Found, 20, 2, 6},
		{"no match", "T", 0, 32, 0, tagFilter{[]string{"zzz"}}, NoMatchedMessage, 20, 0, 0},
		{"filter and max nums", "T", 0, 2, 0, tagFilter{[]string{"t1"}}, Found, 5, 1, 2},
	}
	var r GetResult
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := s.GetMessages(tc.topic, 0, tc.offset, tc.maxNums, tc.maxBytes, tc.filter, &r); err != nil {
				t.Fatal(err)
			}
			defer r.Release()
			if r.Status != tc.status || r.NextBeginOffset != tc.next || len(r.Records) != tc.num {
				t.Fatalf("got %v next %d records %d; want %v next %d records %d", r.Status, r.NextBeginOffset, len(r.Records), tc.status, tc.next, tc.num)
			}
			if tc.num > 0 {
				v, _ := record.Decode(r.Records[0])
				if v.QueueOffset() != int64(tc.wantFirst) {
					t.Fatalf("first record has queue offset %d, want %d", v.QueueOffset(), tc.wantFirst)
				}
			}
			if tc.topic == "T" && (r.MinOffset != 0 || r.MaxOffset != 20) {
				t.Fatalf("min/max %d/%d", r.MinOffset, r.MaxOffset)
			}
		})
	}
}

func TestGetMessagesEmptyAndTooSmall(t *testing.T) {
	s := openStore(t, testConfig(vfs.NewMem(), SyncFlush))
	defer s.Close()
	putN(t, s, "T", 0, 0, 30)
	// Retention: pretend the commit log now starts at record 12's offset.
	var r GetResult
	if err := s.GetMessages("T", 0, 12, 1, 0, nil, &r); err != nil {
		t.Fatal(err)
	}
	v, _ := record.Decode(r.Records[0])
	r.Release()
	done := make(chan error, 1)
	s.reqCh <- dispatchReq{kind: reqRetention, physMin: v.PhysicalOffset(), done: done}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := s.MinOffset("T", 0); got != 12 {
		t.Fatalf("min offset %d, want 12", got)
	}
	if err := s.GetMessages("T", 0, 3, 32, 0, nil, &r); err != nil {
		t.Fatal(err)
	}
	if r.Status != OffsetTooSmall || r.NextBeginOffset != 12 {
		t.Fatalf("got %v next %d", r.Status, r.NextBeginOffset)
	}
	// A queue emptied by retention past its end.
	done2 := make(chan error, 1)
	s.reqCh <- dispatchReq{kind: reqRetention, physMin: 1 << 40, done: done2}
	if err := <-done2; err != nil {
		t.Fatal(err)
	}
	if err := s.GetMessages("T", 0, 30, 32, 0, nil, &r); err != nil || r.Status != OffsetOverflowOne {
		t.Fatalf("got %v %v", r.Status, err)
	}
}

func TestAppendBatch(t *testing.T) {
	for _, mode := range []FlushMode{SyncFlush, AsyncFlush} {
		t.Run(mode.String(), func(t *testing.T) {
			s := openStore(t, testConfig(vfs.NewMem(), mode))
			defer s.Close()
			putN(t, s, "B", 2, 0, 3)
			msgs := make([]Message, 10)
			for i := range msgs {
				msgs[i] = *msg("B", 2, 3+i)
			}
			res := make([]PutResult, 10)
			w := &countWaiter{done: make(chan *PutResult, 2)}
			if err := s.AppendBatch(msgs, res, w); err != nil {
				t.Fatal(err)
			}
			if got := <-w.done; got != &res[0] {
				t.Fatal("Done not called with &res[0]")
			}
			for i, r := range res {
				if r.QueueOffset != int64(3+i) || (i > 0 && r.PhysicalOffset != res[i-1].PhysicalOffset+int64(res[i-1].SizeBytes)) {
					t.Fatalf("result %d: %+v", i, r)
				}
			}
			waitVisible(t, s, "B", 2, 13)
			if w.calls.Load() != 1 {
				t.Fatalf("Done called %d times", w.calls.Load())
			}
			bad := []Message{*msg("B", 2, 0), *msg("B", 3, 1)}
			if err := s.AppendBatch(bad, make([]PutResult, 2), w); !errors.Is(err, ErrMessageIllegal) {
				t.Fatalf("mixed batch: %v", err)
			}
		})
	}
}

func TestAppendIllegal(t *testing.T) {
	s := openStore(t, testConfig(vfs.NewMem(), SyncFlush))
	defer s.Close()
	tests := []*Message{
		{Topic: "", Body: []byte("x")},
		{Topic: "bad/topic", Body: []byte("x")},
		{Topic: string(make([]byte, 128)), Body: []byte("x")},
		{Topic: "T", QueueID: -1},
		{Topic: "T", Body: make([]byte, 8<<10+1)},
		{Topic: "T", Properties: make([]byte, 32768)},
	}
	for i, m := range tests {
		if _, err := s.Put(m); !errors.Is(err, ErrMessageIllegal) {
			t.Errorf("case %d: got %v, want ErrMessageIllegal", i, err)
		}
	}
	if _, err := s.Put(&Message{Topic: "%RETRY%g|x_y-1", Body: make([]byte, 8<<10)}); err != nil {
		t.Fatalf("legal message refused: %v", err)
	}
}

func TestOffsetByTimeAndEarliest(t *testing.T) {
	clock := int64(5000)
	old := storeClockMs
	storeClockMs = func() int64 { return clock }
	defer func() { storeClockMs = old }()
	s := openStore(t, testConfig(vfs.NewMem(), SyncFlush))
	defer s.Close()
	if _, err := s.EarliestStoreTime("T", 0); !errors.Is(err, ErrNotFound) {
		t.Fatalf("empty: %v", err)
	}
	for i := 0; i < 50; i++ { // record i stored at 5000 + 10*(i/2)
		clock = 5000 + 10*int64(i/2)
		if _, err := s.Put(msg("T", 0, i)); err != nil {
			t.Fatal(err)
		}
	}
	waitVisible(t, s, "T", 0, 50)
	tests := []struct{ ts, want int64 }{{0, 0}, {5000, 0}, {5001, 2}, {5010, 2}, {5125, 26}, {5240, 48}, {5241, 50}}
	for _, tc := range tests {
		if got := s.OffsetByTime("T", 0, tc.ts); got != tc.want {
			t.Errorf("OffsetByTime(%d) = %d, want %d", tc.ts, got, tc.want)
		}
	}
	if got := s.OffsetByTime("Nope", 0, 5000); got != 0 {
		t.Errorf("unknown queue: %d", got)
	}
	if ts, err := s.EarliestStoreTime("T", 0); err != nil || ts != 5000 {
		t.Fatalf("earliest %d %v", ts, err)
	}
}

func TestQueryByKeyAndReadRecord(t *testing.T) {
	clock := int64(1_000_000)
	old := storeClockMs
	storeClockMs = func() int64 { clock++; return clock }
	defer func() { storeClockMs = old }()
	s := openStore(t, testConfig(vfs.NewMem(), SyncFlush))
	defer s.Close()
	var res []PutResult
	for i := 0; i < 100; i++ { // 100 records * 3 keys: several index files of 64 entries
		r, err := s.Put(msg(fmt.Sprintf("Q%d", i%2), 0, i))
		if err != nil {
			t.Fatal(err)
		}
		res = append(res, r)
	}
	waitVisible(t, s, "Q1", 0, 50)
	waitVisible(t, s, "Q0", 0, 50)
	got, err := s.QueryByKey("Q1", "k37", 10, 0, 1<<62)
	if err != nil || len(got) != 1 || got[0] != res[37].PhysicalOffset {
		t.Fatalf("k37: %v %v", got, err)
	}
	if got, _ := s.QueryByKey("Q0", "k37", 10, 0, 1<<62); len(got) != 0 {
		t.Fatalf("k37 in the wrong topic: %v", got)
	}
	got, _ = s.QueryByKey("Q0", "common", 100, 0, 1<<62)
	if len(got) != 50 || got[0] != res[98].PhysicalOffset || got[49] != res[0].PhysicalOffset {
		t.Fatalf("common: %d results, first %v", len(got), got[:min(3, len(got))])
	}
	got, _ = s.QueryByKey("Q0", "common", 5, res[10].StoreTimestampMs, res[20].StoreTimestampMs)
	if len(got) != 5 || got[0] != res[20].PhysicalOffset {
		t.Fatalf("time range: %v", got)
	}
	got, _ = s.QueryByKey("Q1", "UQ1-0-41", 3, 0, 1<<62)
	if len(got) != 1 || got[0] != res[41].PhysicalOffset {
		t.Fatalf("uniq key: %v", got)
	}
	b, release, err := s.ReadRecord(res[41].PhysicalOffset)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := record.Decode(b); v.QueueOffset() != 20 || string(v.Topic()) != "Q1" {
		t.Fatalf("read record: %+v", v.Header())
	}
	release()
	for _, off := range []int64{res[41].PhysicalOffset + 1, -5, 1 << 40} {
		if _, _, err := s.ReadRecord(off); !errors.Is(err, ErrNotFound) {
			t.Fatalf("ReadRecord(%d): %v", off, err)
		}
	}
}

func TestDeleteTopic(t *testing.T) {
	s := openStore(t, testConfig(vfs.NewMem(), SyncFlush))
	defer s.Close()
	putN(t, s, "D", 0, 0, 5)
	putN(t, s, "D", 1, 0, 5)
	putN(t, s, "K", 0, 0, 5)
	if fmt.Sprint(s.Topics()) != "[D K]" || fmt.Sprint(s.QueueIDs("D")) != "[0 1]" {
		t.Fatalf("topics %v queues %v", s.Topics(), s.QueueIDs("D"))
	}
	if err := s.DeleteTopic("D"); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(s.Topics()) != "[K]" || s.MaxOffset("D", 0) != 0 {
		t.Fatalf("after delete: %v max %d", s.Topics(), s.MaxOffset("D", 0))
	}
	res, err := s.Put(msg("D", 0, 0))
	if err != nil || res.QueueOffset != 0 {
		t.Fatalf("re-created topic starts at %d (%v)", res.QueueOffset, err)
	}
	waitVisible(t, s, "D", 0, 1)
}

// codeFilter records the tags codes it is asked about.
type codeFilter struct{ codes *[]int64 }

func (f codeFilter) MatchTagsCode(c int64) bool { *f.codes = append(*f.codes, c); return true }
func (codeFilter) MatchProperties([]byte) bool  { return true }

func TestScheduleTopicTagsCode(t *testing.T) {
	old := storeClockMs
	storeClockMs = func() int64 { return 100_000 }
	defer func() { storeClockMs = old }()
	s := openStore(t, testConfig(vfs.NewMem(), SyncFlush))
	defer s.Close()
	for i, delay := range []string{"3", "99", "x"} {
		m := &Message{Topic: ScheduleTopic, QueueID: 2, Body: []byte("b"), Properties: record.AppendProperty(nil, record.PropDelay, delay)}
		if _, err := s.Put(m); err != nil {
			t.Fatal(err)
		}
		waitVisible(t, s, ScheduleTopic, 2, int64(i+1))
	}
	var codes []int64
	var r GetResult
	if err := s.GetMessages(ScheduleTopic, 2, 0, 8, 0, codeFilter{&codes}, &r); err != nil {
		t.Fatal(err)
	}
	r.Release()
	want := []int64{100_000 + 10_000, 100_000 + 2*3600_000, 100_000} // level 3 = 10 s, 99 clamps to 2 h
	if fmt.Sprint(codes) != fmt.Sprint(want) {
		t.Fatalf("tags codes %v, want %v", codes, want)
	}
}

// TestSyncVisibleOnlyWhenDurable checks, at every arrival, that what consumers can see
// is durable.
func TestSyncVisibleOnlyWhenDurable(t *testing.T) {
	s := openStore(t, testConfig(vfs.NewMem(), SyncFlush))
	defer s.Close()
	bad := make(chan string, 1)
	s.SetArrivalListener(func(topic string, qid int32, maxOff int64) {
		q := s.cqs.Get(topic, qid)
		e, err := q.Entry(maxOff - 1)
		if err != nil || e.PhysicalOffset+int64(e.SizeBytes) > s.log.DurableOffset() {
			select {
			case bad <- fmt.Sprintf("%s/%d max %d visible past the durable offset %d (%v)", topic, qid, maxOff, s.log.DurableOffset(), err):
			default:
			}
		}
	})
	var wg sync.WaitGroup
	for a := 0; a < 4; a++ {
		wg.Add(1)
		go func(a int) {
			defer wg.Done()
			for i := 0; i < 100; i++ {
				if _, err := s.Put(msg("V", int32(a), i)); err != nil {
					t.Error(err)
					return
				}
			}
		}(a)
	}
	wg.Wait()
	s.SetArrivalListener(nil)
	select {
	case why := <-bad:
		t.Fatal(why)
	default:
	}
}

// TestDeleteTopicUnderLoad deletes a topic while a producer keeps sending to it: the
// sends after the deletion form a fresh queue from offset 0 with every message
// readable, whatever the order in which the dispatcher meets them and the deletion.
// The producer is bounded: deleteRacingSends race with the deletion, then it waits for
// DeleteTopic to return (an unbounded producer could keep a slow dispatcher, e.g. under
// -race on a loaded machine, from ever reaching the deletion), then sends
// deleteAfterSends more.
func TestDeleteTopicUnderLoad(t *testing.T) {
	const (
		deleteAt          = 20
		deleteRacingSends = 500
		deleteAfterSends  = 50
	)
	for round := 0; round < 5; round++ {
		s := openStore(t, testConfig(vfs.NewMem(), SyncFlush))
		var res []PutResult
		done := make(chan struct{})
		deleting, deleted := make(chan struct{}), make(chan struct{})
		go func() {
			defer close(done)
			for i := 0; i < deleteAt+deleteRacingSends+deleteAfterSends; i++ {
				switch i {
				case deleteAt:
					close(deleting)
				case deleteAt + deleteRacingSends:
					<-deleted
				}
				r, err := s.Put(msg("X", 0, i))
				if err != nil {
					t.Error(err)
					return
				}
				res = append(res, r)
			}
		}()
		<-deleting
		if err := s.DeleteTopic("X"); err != nil {
			t.Fatal(err)
		}
		close(deleted)
		<-done
		k := len(res) - 1
		for k > 0 && res[k].QueueOffset != 0 {
			k--
		}
		after := res[k:]
		waitVisible(t, s, "X", 0, int64(len(after)))
		if got := s.MaxOffset("X", 0); got != int64(len(after)) {
			t.Fatalf("round %d: max offset %d, want %d", round, got, len(after))
		}
		var r GetResult
		for i, want := range after {
			if err := s.GetMessages("X", 0, int64(i), 1, 0, nil, &r); err != nil || r.Status != Found {
				t.Fatalf("round %d: offset %d: %v %v", round, i, r.Status, err)
			}
			if v := mustDecode(t, r.Records[0]); v.PhysicalOffset() != want.PhysicalOffset {
				t.Fatalf("round %d: offset %d holds %d, want %d", round, i, v.PhysicalOffset(), want.PhysicalOffset)
			}
			r.Release()
		}
		_ = s.Close()
	}
}
