package engine

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"sync/atomic"
	"testing"

	"github.com/ringmq/ringmq/engine/record"
	"github.com/ringmq/ringmq/flush/vfs"
)

var testHost = netip.MustParseAddrPort("10.0.0.7:10911")

func testConfig(fs vfs.FS, mode FlushMode) Config {
	return Config{
		Dir: "/store", FS: fs, SegmentSizeBytes: 64 << 10, FlushMode: mode,
		MaxMessageSizeBytes: 8 << 10, StoreHost: testHost, CQEntriesPerFile: 16,
		IndexSlotsPerFile: 31, IndexEntriesPerFile: 64,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
}

func openStore(t testing.TB, cfg Config) *Store {
	t.Helper()
	s, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// msg builds message i of a queue: body "body-<i>" padded, tag "t<i%3>", keys "k<i> common".
func msg(topic string, qid int32, i int) *Message {
	props := record.AppendProperty(nil, record.PropTags, fmt.Sprintf("t%d", i%3))
	props = record.AppendProperty(props, record.PropKeys, fmt.Sprintf("k%d common", i))
	props = record.AppendProperty(props, record.PropUniqKey, fmt.Sprintf("U%s-%d-%d", topic, qid, i))
	return &Message{Topic: topic, QueueID: qid, BornTimestampMs: 1000 + int64(i),
		BornHost: netip.MustParseAddrPort("192.0.2.1:5000"), Body: []byte(fmt.Sprintf("body-%d-%s", i, bytes.Repeat([]byte("x"), i%50))), Properties: props}
}

func TestPutGetBasic(t *testing.T) {
	for _, mode := range []FlushMode{SyncFlush, AsyncFlush} {
		t.Run(mode.String(), func(t *testing.T) {
			s := openStore(t, testConfig(vfs.NewMem(), mode))
			defer s.Close()
			for i := 0; i < 40; i++ {
				res, err := s.Put(msg("T1", 1, i))
				if err != nil {
					t.Fatal(err)
				}
				if res.QueueOffset != int64(i) {
					t.Fatalf("queue offset %d, want %d", res.QueueOffset, i)
				}
			}
			waitVisible(t, s, "T1", 1, 40)
			var r GetResult
			if err := s.GetMessages("T1", 1, 0, 32, 1<<20, nil, &r); err != nil {
				t.Fatal(err)
			}
			if r.Status != Found || len(r.Records) != 32 || r.NextBeginOffset != 32 {
				t.Fatalf("status %v records %d next %d", r.Status, len(r.Records), r.NextBeginOffset)
			}
			for i, b := range r.Records {
				v, err := record.Decode(b)
				if err != nil || !bytes.Equal(v.Body(), msg("T1", 1, i).Body) || v.QueueOffset() != int64(i) {
					t.Fatalf("record %d: %v %q", i, err, v.Body())
				}
			}
			r.Release()
		})
	}
}

// waitVisible waits until the queue's max offset reaches n, using the arrival listener.
func waitVisible(t testing.TB, s *Store, topic string, qid int32, n int64) {
	t.Helper()
	ch := make(chan struct{}, 1)
	s.SetArrivalListener(func(tp string, q int32, maxOff int64) {
		select {
		case ch <- struct{}{}:
		default:
		}
	})
	defer s.SetArrivalListener(nil)
	for s.MaxOffset(topic, qid) < n {
		<-ch
	}
}

type countWaiter struct {
	calls atomic.Int32
	done  chan *PutResult
}

func (w *countWaiter) Done(res *PutResult, err error) {
	w.calls.Add(1)
	if err != nil {
		panic(err)
	}
	w.done <- res
}
