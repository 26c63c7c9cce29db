package engine

import (
	"fmt"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ringmq/ringmq/engine/record"
	"github.com/ringmq/ringmq/flush/vfs"
	"github.com/ringmq/ringmq/perf"
)

// doneWaiter signals each completion on a buffered channel (no allocation).
type doneWaiter struct{ ch chan error }

func (w *doneWaiter) Done(_ *PutResult, err error) { w.ch <- err }

func benchMessage(bodyBytes int) *Message {
	props := record.AppendProperty(nil, record.PropTags, "tagA")
	props = record.AppendProperty(props, record.PropKeys, "order-1")
	props = record.AppendProperty(props, record.PropUniqKey, "C0000202398A00000000682018f00001")
	return &Message{Topic: "BenchTopic", QueueID: 1, BornTimestampMs: 1, BornHost: testHost,
		Body: make([]byte, bodyBytes), Properties: props}
}

// TestAppendAllocs proves the append path allocates nothing in steady state.
func TestAppendAllocs(t *testing.T) {
	for _, mode := range []FlushMode{SyncFlush, AsyncFlush} {
		t.Run(mode.String(), func(t *testing.T) {
			// The OS file system: vfs.Mem copies every write, which would count here.
			cfg := testConfig(vfs.OS{}, mode)
			cfg.Dir = t.TempDir()
			cfg.SegmentSizeBytes = 8 << 20
			// File sizes that do not roll during the test (a roll allocates its file).
			cfg.CQEntriesPerFile, cfg.IndexSlotsPerFile, cfg.IndexEntriesPerFile = 300000, 1<<16, 1<<20
			s := openStore(t, cfg)
			defer s.Close()
			m := benchMessage(1024)
			w := &doneWaiter{ch: make(chan error, 1)}
			var res PutResult
			appendOne := func() {
				if err := s.Append(m, &res, w); err != nil {
					t.Fatal(err)
				}
				if err := <-w.ch; err != nil {
					t.Fatal(err)
				}
			}
			for range 100 { // warm up: the queue's offset entry, pools
				appendOne()
			}
			if allocs := testing.AllocsPerRun(200, appendOne); allocs != 0 {
				t.Fatalf("Append allocates %v times per call, want 0", allocs)
			}
			batch := []Message{*m, *m, *m, *m}
			results := make([]PutResult, len(batch))
			appendBatch := func() {
				if err := s.AppendBatch(batch, results, w); err != nil {
					t.Fatal(err)
				}
				if err := <-w.ch; err != nil {
					t.Fatal(err)
				}
			}
			appendBatch()
			if allocs := testing.AllocsPerRun(100, appendBatch); allocs != 0 {
				t.Fatalf("AppendBatch allocates %v times per call, want 0", allocs)
			}
		})
	}
}

// TestGetMessagesAllocs proves a pull allocates nothing once its GetResult has grown.
func TestGetMessagesAllocs(t *testing.T) {
	cfg := testConfig(vfs.OS{}, SyncFlush)
	cfg.Dir = t.TempDir()
	s := openStore(t, cfg)
	defer s.Close()
	putN(t, s, "G", 0, 0, 64)
	var r GetResult
	var f MessageFilter = tagFilter{[]string{"t1", "t2"}}
	get := func() {
		if err := s.GetMessages("G", 0, 3, 32, 1<<20, f, &r); err != nil || r.Status != Found {
			t.Fatalf("%v %v", r.Status, err)
		}
		r.Release()
	}
	get()
	if allocs := testing.AllocsPerRun(200, get); allocs != 0 {
		t.Fatalf("GetMessages allocates %v times per call, want 0", allocs)
	}
}

// BenchmarkAppend measures one 1 KiB append until its waiter hears back, one appender
// (latency) and many (group commit), per flush mode, on the in-memory and OS file
// systems.
func BenchmarkAppend(b *testing.B) {
	for _, mode := range []FlushMode{AsyncFlush, SyncFlush} {
		for _, fsName := range []string{"mem", "os"} {
			for _, par := range []int{1, 16} {
				b.Run(fmt.Sprintf("%s/%s/appenders=%d", mode, fsName, par), func(b *testing.B) {
					benchAppend(b, mode, fsName, par)
				})
			}
		}
	}
}

func benchAppend(b *testing.B, mode FlushMode, fsName string, par int) {
	var cfg Config
	if fsName == "os" {
		cfg = testConfig(vfs.OS{}, mode)
		cfg.Dir = b.TempDir()
	} else {
		cfg = testConfig(vfs.NewMem(), mode)
	}
	cfg.SegmentSizeBytes = 64 << 20
	cfg.CQEntriesPerFile = 300000
	cfg.IndexSlotsPerFile, cfg.IndexEntriesPerFile = 1<<16, 1<<20
	s := openStore(b, cfg)
	defer s.Close()
	// Let the allocator pre-write the next two segments before timing: on a 2-CPU
	// machine it would otherwise compete with the appends being measured.
	for deadline := time.Now().Add(30 * time.Second); s.Stats().SegmentsAllocated < 3 && time.Now().Before(deadline); {
		runtime.Gosched()
	}
	m := benchMessage(1024)
	b.SetBytes(int64(record.Size(len(m.Body), len(m.Topic), len(m.Properties))))
	b.ReportAllocs()
	b.SetParallelism(par)
	warm := &doneWaiter{ch: make(chan error, 1)}
	var res PutResult
	for range 100 {
		if err := s.Append(m, &res, warm); err != nil {
			b.Fatal(err)
		}
		<-warm.ch
	}
	var mu sync.Mutex
	var latNs []int64
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		w := &doneWaiter{ch: make(chan error, 1)}
		var res PutResult
		mine := make([]int64, 0, b.N)
		for pb.Next() {
			start := perf.Now()
			if err := s.Append(m, &res, w); err != nil {
				b.Fatal(err)
			}
			if err := <-w.ch; err != nil {
				b.Fatal(err)
			}
			mine = append(mine, perf.Now()-start)
		}
		mu.Lock()
		latNs = append(latNs, mine...)
		mu.Unlock()
	})
	b.StopTimer()
	slices.Sort(latNs)
	for _, q := range []struct {
		name string
		p    float64
	}{{"p50-us", 0.50}, {"p99-us", 0.99}, {"p99.9-us", 0.999}} {
		if len(latNs) > 0 {
			b.ReportMetric(float64(latNs[int(q.p*float64(len(latNs)-1))])/1e3, q.name)
		}
	}
}

// BenchmarkGetMessages measures one pull of 32 messages of 1 KiB (views, no copy),
// without a filter and with a tag filter that passes one message in three.
func BenchmarkGetMessages(b *testing.B) {
	cfg := testConfig(vfs.OS{}, AsyncFlush)
	cfg.Dir = b.TempDir()
	cfg.SegmentSizeBytes, cfg.CQEntriesPerFile = 64<<20, 300000
	cfg.IndexSlotsPerFile, cfg.IndexEntriesPerFile = 1<<16, 1<<20
	s := openStore(b, cfg)
	defer s.Close()
	const n = 4096
	for i := 0; i < n; i++ {
		m := msg("G", 0, i)
		m.Body = make([]byte, 1024)
		if _, err := s.Put(m); err != nil {
			b.Fatal(err)
		}
	}
	waitVisible(b, s, "G", 0, n)
	for _, tc := range []struct {
		name string
		f    MessageFilter
	}{{"filter=none", nil}, {"filter=tag", tagFilter{[]string{"t1"}}}} {
		b.Run(tc.name, func(b *testing.B) {
			var r GetResult
			b.ReportAllocs()
			off := int64(0)
			for b.Loop() {
				if err := s.GetMessages("G", 0, off, 32, 256<<10, tc.f, &r); err != nil || r.Status != Found {
					b.Fatalf("%v %v", r.Status, err)
				}
				off = r.NextBeginOffset % (n - 200)
				r.Release()
			}
		})
	}
}
