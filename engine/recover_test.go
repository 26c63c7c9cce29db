package engine

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"testing"

	"github.com/ringmq/ringmq/engine/commitlog"
	"github.com/ringmq/ringmq/engine/consumequeue"
	"github.com/ringmq/ringmq/engine/record"
	"github.com/ringmq/ringmq/flush/vfs"
	"github.com/ringmq/ringmq/internal/testkit"
)

// verifyQueue checks that every offset of topic/qid in [0, n) holds message i of msg().
func verifyQueue(t testing.TB, s *Store, topic string, qid int32, n int) {
	t.Helper()
	var r GetResult
	for off := int64(0); off < int64(n); {
		if err := s.GetMessages(topic, qid, off, 32, 0, nil, &r); err != nil {
			t.Fatal(err)
		}
		if r.Status != Found {
			t.Fatalf("%s/%d at %d: %v (max %d)", topic, qid, off, r.Status, r.MaxOffset)
		}
		for _, b := range r.Records {
			v, err := record.Check(b, mustDecode(t, b).PhysicalOffset())
			want := msg(topic, qid, int(off))
			if err != nil || v.QueueOffset() != off || !bytes.Equal(v.Body(), want.Body) || !bytes.Equal(v.Properties(), want.Properties) {
				t.Fatalf("%s/%d at %d: %v body %q", topic, qid, off, err, v.Body())
			}
			off++
		}
		r.Release()
	}
}

func mustDecode(t testing.TB, b []byte) record.View {
	v, err := record.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestReopenAfterCleanClose(t *testing.T) {
	fsys := []struct {
		name string
		fs   vfs.FS
		dir  string
	}{{"mem", vfs.NewMem(), "/store"}, {"os", vfs.OS{}, t.TempDir()}}
	for _, f := range fsys {
		t.Run(f.name, func(t *testing.T) {
			cfg := testConfig(f.fs, SyncFlush)
			cfg.Dir = f.dir
			s := openStore(t, cfg)
			putN(t, s, "A", 0, 0, 150) // several 64 KiB segments, CQ files and index files
			putN(t, s, "B", 3, 0, 7)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if _, err := f.fs.Stat(filepath.Join(f.dir, abortName)); err == nil {
				t.Fatal("abort marker left after Close")
			}
			s2 := openStore(t, cfg)
			defer s2.Close()
			if s2.recovery.RecoveredFromCrash || s2.recovery.CheckpointMissing {
				t.Fatalf("clean reopen reported %+v", s2.recovery)
			}
			verifyQueue(t, s2, "A", 0, 150)
			verifyQueue(t, s2, "B", 3, 7)
			res, err := s2.Put(msg("A", 0, 150))
			if err != nil || res.QueueOffset != 150 {
				t.Fatalf("offsets continue at %d (%v)", res.QueueOffset, err)
			}
			if got, _ := s2.QueryByKey("B", "k5", 5, 0, 1<<62); len(got) != 1 {
				t.Fatalf("index after reopen: %v", got)
			}
		})
	}
}

// ackSet records what appenders were told was stored.
type ackSet struct {
	mu   sync.Mutex
	acks map[queueKey][]int64 // queue offsets acked, per queue
}

type ackWaiter struct {
	set *ackSet
	key queueKey
	ch  chan struct{}
}

func (w *ackWaiter) Done(res *PutResult, err error) {
	if err == nil {
		w.set.mu.Lock()
		w.set.acks[w.key] = append(w.set.acks[w.key], res.QueueOffset)
		w.set.mu.Unlock()
	}
	w.ch <- struct{}{}
}

// maxWorkloadMessages bounds each appender of crashWorkload.
const maxWorkloadMessages = 3000

// crashWorkload runs appenders on a few queues until stop closes.
func crashWorkload(s *Store, acks *ackSet, seed uint64, stop chan struct{}, wg *sync.WaitGroup) {
	for a := 0; a < 3; a++ {
		wg.Add(1)
		go func(a int) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, uint64(a)))
			key := queueKey{fmt.Sprintf("C%d", a%2), int32(a)}
			w := &ackWaiter{set: acks, key: key, ch: make(chan struct{}, 1)}
			for i := 0; i < maxWorkloadMessages; i++ {
				select {
				case <-stop:
					return
				default:
				}
				var res PutResult
				if rng.IntN(4) == 0 {
					msgs := []Message{*msg(key.topic, key.queueID, i), *msg(key.topic, key.queueID, i+1)}
					if s.AppendBatch(msgs, make([]PutResult, 2), w) != nil {
						return
					}
					<-w.ch
					i++
					continue
				}
				if s.Append(msg(key.topic, key.queueID, i), &res, w) != nil {
					return
				}
				<-w.ch
			}
		}(a)
	}
}

func TestCrashRecoverySync(t *testing.T) {
	seed := testkit.Seed(t)
	rng := rand.New(rand.NewPCG(seed, 1))
	for iter := 0; iter < 4; iter++ {
		mem := vfs.NewMem()
		cfg := testConfig(mem, SyncFlush)
		cfg.CheckpointInterval = 20e6 // 20 ms: checkpoints land mid-run
		s := openStore(t, cfg)
		acks := &ackSet{acks: map[queueKey][]int64{}}
		stop := make(chan struct{})
		var wg sync.WaitGroup
		crashWorkload(s, acks, seed+uint64(iter), stop, &wg)
		waitVisible(t, s, "C0", 0, int64(30+rng.IntN(200)))
		acks.mu.Lock()
		acked := map[queueKey]int{}
		for k, v := range acks.acks {
			acked[k] = len(v)
		}
		acks.mu.Unlock()
		var crashed *vfs.Mem
		if iter%2 == 0 {
			crashed = mem.Crash()
		} else {
			crashed = mem.CrashKeeping(seed + uint64(iter))
		}
		close(stop)
		wg.Wait()
		_ = s.Close()

		s2 := openStore(t, testConfig(crashed, SyncFlush))
		if !s2.recovery.RecoveredFromCrash {
			t.Fatal("crash not detected")
		}
		for k, n := range acked {
			// acks of a queue come in offset order, so [0, n) were all acked
			if got := s2.MaxOffset(k.topic, k.queueID); got < int64(n) {
				t.Fatalf("iter %d: %s/%d has %d messages, %d were acked", iter, k.topic, k.queueID, got, n)
			}
			verifyQueue(t, s2, k.topic, k.queueID, int(s2.MaxOffset(k.topic, k.queueID)))
			if n > 0 {
				uniq := fmt.Sprintf("U%s-%d-%d", k.topic, k.queueID, n-1)
				if got, err := s2.QueryByKey(k.topic, uniq, 3, 0, 1<<62); err != nil || len(got) != 1 {
					t.Fatalf("iter %d: index lost %s: %v %v", iter, uniq, got, err)
				}
			}
			next := s2.MaxOffset(k.topic, k.queueID)
			if res, err := s2.Put(msg(k.topic, k.queueID, int(next))); err != nil || res.QueueOffset != next {
				t.Fatalf("iter %d: next offset %d, want %d (%v)", iter, res.QueueOffset, next, err)
			}
		}
		if err := s2.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestCrashRecoveryAsyncConsistent(t *testing.T) {
	seed := testkit.Seed(t)
	mem := vfs.NewMem()
	cfg := testConfig(mem, AsyncFlush)
	cfg.FlushInterval = 2e6
	cfg.CheckpointInterval = 3e6
	s := openStore(t, cfg)
	acks := &ackSet{acks: map[queueKey][]int64{}}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	crashWorkload(s, acks, seed, stop, &wg)
	waitVisible(t, s, "C0", 0, 300)
	crashed := mem.CrashKeeping(seed)
	close(stop)
	wg.Wait()
	_ = s.Close()
	s2 := openStore(t, testConfig(crashed, AsyncFlush))
	defer s2.Close()
	for a := 0; a < 3; a++ { // whatever survived is a consistent prefix
		topic, qid := fmt.Sprintf("C%d", a%2), int32(a)
		verifyQueue(t, s2, topic, qid, int(s2.MaxOffset(topic, qid)))
	}
}

func TestTornTailTruncated(t *testing.T) {
	mem := vfs.NewMem()
	cfg := testConfig(mem, SyncFlush)
	s := openStore(t, cfg)
	putN(t, s, "T", 0, 0, 10)
	last, err := s.Put(msg("T", 0, 10))
	if err != nil {
		t.Fatal(err)
	}
	waitVisible(t, s, "T", 0, 11)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	seg := filepath.Join(cfg.Dir, "commitlog", commitlog.SegmentName(last.PhysicalOffset-last.PhysicalOffset%cfg.SegmentSizeBytes))
	f, err := mem.OpenReadWrite(seg)
	if err != nil {
		t.Fatal(err)
	}
	// Tear the last record: zero its second half, as a crash mid-write would.
	pos := last.PhysicalOffset%cfg.SegmentSizeBytes + int64(last.SizeBytes)/2
	if _, err := f.WriteAt(make([]byte, last.SizeBytes/2+1), pos); err != nil {
		t.Fatal(err)
	}
	_ = f.Sync()
	_ = f.Close()
	s2 := openStore(t, cfg)
	defer s2.Close()
	if got := s2.MaxOffset("T", 0); got != 10 {
		t.Fatalf("max offset %d after the torn tail, want 10", got)
	}
	if s2.recovery.CommitLogEnd != last.PhysicalOffset {
		t.Fatalf("log ends at %d, want %d", s2.recovery.CommitLogEnd, last.PhysicalOffset)
	}
	verifyQueue(t, s2, "T", 0, 10)
	res, err := s2.Put(msg("T", 0, 10))
	if err != nil || res.QueueOffset != 10 || res.PhysicalOffset != last.PhysicalOffset {
		t.Fatalf("re-append: %+v %v", res, err)
	}
}

func TestRebuildWithoutCheckpoint(t *testing.T) {
	mem := vfs.NewMem()
	cfg := testConfig(mem, SyncFlush)
	s := openStore(t, cfg)
	putN(t, s, "R", 1, 0, 60)
	_ = s.Close()
	// A corrupt checkpoint and lost consume queues: everything is rebuilt from the log.
	f, _ := mem.Create(filepath.Join(cfg.Dir, checkpointName))
	_, _ = f.WriteAt(bytes.Repeat([]byte("garbage!"), 16), 0)
	_ = f.Close()
	for _, name := range []string{"00000000000000000000", "00000000000000000320", "00000000000000000640"} {
		_ = mem.Remove(filepath.Join(cfg.Dir, "consumequeue", "R", "1", name))
	}
	s2 := openStore(t, cfg)
	defer s2.Close()
	if !s2.recovery.CheckpointMissing || s2.recovery.ReplayedRecords != 60 {
		t.Fatalf("recovery %+v", s2.recovery)
	}
	verifyQueue(t, s2, "R", 1, 60)
}

func TestTypedCorruption(t *testing.T) {
	mem := vfs.NewMem()
	cfg := testConfig(mem, SyncFlush)
	s := openStore(t, cfg)
	res, err := s.Put(msg("T", 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	seg := filepath.Join(cfg.Dir, "commitlog", commitlog.SegmentName(0))
	f, _ := mem.OpenReadWrite(seg)
	_, _ = f.WriteAt([]byte{'#'}, res.PhysicalOffset+record.FixedSizeBytes-3) // inside the body
	_ = f.Close()
	_, _, err = s.ReadRecord(res.PhysicalOffset)
	var ce *commitlog.CorruptError
	if !errors.As(err, &ce) || ce.File != seg || ce.OffBytes != res.PhysicalOffset {
		t.Fatalf("got %v, want a *commitlog.CorruptError for %s", err, seg)
	}
	_ = s.Close()
	// A consume-queue file whose name is not an offset.
	bad := filepath.Join(cfg.Dir, "consumequeue", "T", "0", "junk")
	if err := mem.MkdirAll(filepath.Dir(bad), 0o755); err != nil {
		t.Fatal(err)
	}
	g, err := mem.Create(bad)
	if err != nil {
		t.Fatal(err)
	}
	_ = g.Close()
	_, err = Open(cfg)
	var cqe *consumequeue.CorruptError
	if !errors.As(err, &cqe) || cqe.File != bad {
		t.Fatalf("got %v, want a *consumequeue.CorruptError for %s", err, bad)
	}
}
