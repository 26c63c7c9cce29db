package crash

import (
	"bufio"
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ringmq/ringmq/engine"
	"github.com/ringmq/ringmq/engine/record"
)

const childEnv = "RINGMQ_CRASH_CHILD"

// TestMain turns the test binary into the child when RINGMQ_CRASH_CHILD names a store
// directory.
func TestMain(m *testing.M) {
	if dir := os.Getenv(childEnv); dir != "" {
		runSeed, _ := strconv.ParseUint(os.Getenv(childEnv+"_SEED"), 10, 64)
		err := RunChild(dir, runSeed)
		fmt.Fprintln(os.Stderr, "crash child:", err)
		os.Exit(3)
	}
	os.Exit(m.Run())
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

type ackRec struct {
	queue int
	qoff  int64
	phys  int64
	seed  uint64
}

// TestKill9 runs the child RINGMQ_CRASH_RUNS times (24 by default) on one store
// directory, kills it with SIGKILL after a random delay, and checks after every other
// run (so that the child itself also recovers from crashes) that every message it ever
// acknowledged is stored byte for byte.
func TestKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("real-process crash test")
	}
	seed := rand.Uint64()
	if v, err := strconv.ParseUint(os.Getenv("RINGMQ_SEED"), 10, 64); err == nil {
		seed = v
	}
	t.Logf("seed %d (RINGMQ_SEED=%d replays the kill schedule)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, 7))
	dir := t.TempDir()
	runs := envInt("RINGMQ_CRASH_RUNS", 24)
	var acked []ackRec
	startedAt := time.Now()
	for run := 1; run <= runs; run++ {
		delay := time.Duration(rng.IntN(300)) * time.Millisecond
		got, ready := runChild(t, dir, uint64(run), delay)
		acked = append(acked, got...)
		t.Logf("run %d: killed after %v, ready=%v, %d acks (%d in all)", run, delay, ready, len(got), len(acked))
		if run%2 == 0 || run == runs {
			verify(t, dir, acked)
		}
	}
	t.Logf("%d runs in %v", runs, time.Since(startedAt))
}

// runChild starts the child, collects its ACK lines and kills it after delay.
func runChild(t *testing.T, dir string, runSeed uint64, delay time.Duration) ([]ackRec, bool) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+dir, fmt.Sprintf("%s_SEED=%d", childEnv, runSeed))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	kill := time.AfterFunc(delay, func() { _ = cmd.Process.Signal(syscall.SIGKILL) })
	defer kill.Stop()
	var acks []ackRec
	ready := false
	sc := bufio.NewScanner(stdout)
	for sc.Scan() { // until the kill closes the pipe
		line := sc.Text()
		switch {
		case line == "READY":
			ready = true
		case strings.HasPrefix(line, "ACK "):
			q, qoff, phys, seed, err := ParseAck(line)
			if err != nil {
				t.Fatal(err)
			}
			acks = append(acks, ackRec{q, qoff, phys, seed})
		}
	}
	err = cmd.Wait()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("child ended by itself (%v): %s", err, stderr.String())
	}
	return acks, ready
}

// verify opens the store and checks every acknowledged message, the index and the
// queue offsets.
func verify(t *testing.T, dir string, acked []ackRec) {
	t.Helper()
	s, err := engine.Open(StoreConfig(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}()
	var r engine.GetResult
	for i, a := range acked {
		topic, qid := QueueOf(a.queue)
		if err := s.GetMessages(topic, qid, a.qoff, 1, 0, nil, &r); err != nil {
			t.Fatal(err)
		}
		if r.Status != engine.Found {
			t.Fatalf("ack %d (%s/%d offset %d): %v, max %d", i, topic, qid, a.qoff, r.Status, r.MaxOffset)
		}
		checkRecord(t, r.Records[0], a)
		r.Release()
		b, release, err := s.ReadRecord(a.phys)
		if err != nil {
			t.Fatalf("ack %d: ReadRecord(%d): %v", i, a.phys, err)
		}
		checkRecord(t, b, a)
		release()
		if i%97 == 0 || i == len(acked)-1 {
			offs, err := s.QueryByKey(topic, UniqKey(a.queue, a.seed), 4, 0, 1<<62)
			if err != nil || len(offs) != 1 || offs[0] != a.phys {
				t.Fatalf("ack %d: index gives %v (%v), want [%d]", i, offs, err, a.phys)
			}
		}
	}
	for q := 0; q < Queues; q++ { // every offset below max is a valid message of the queue
		topic, qid := QueueOf(q)
		for off := s.MinOffset(topic, qid); off < s.MaxOffset(topic, qid); off = r.NextBeginOffset {
			if err := s.GetMessages(topic, qid, off, 32, 0, nil, &r); err != nil || r.Status != engine.Found {
				t.Fatalf("%s/%d at %d: %v %v", topic, qid, off, r.Status, err)
			}
			for k, b := range r.Records {
				v, err := record.Check(b, mustPhys(t, b))
				if err != nil || v.QueueOffset() != off+int64(k) || string(v.Topic()) != topic {
					t.Fatalf("%s/%d at %d: %v", topic, qid, off+int64(k), err)
				}
			}
			r.Release()
		}
	}
}

func mustPhys(t *testing.T, b []byte) int64 {
	v, err := record.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	return v.PhysicalOffset()
}

func checkRecord(t *testing.T, b []byte, a ackRec) {
	t.Helper()
	want := Message(a.queue, a.seed)
	v, err := record.Check(b, a.phys)
	if err != nil {
		t.Fatalf("record of %+v: %v", a, err)
	}
	if v.QueueOffset() != a.qoff || string(v.Topic()) != want.Topic || v.QueueID() != want.QueueID ||
		!bytes.Equal(v.Body(), want.Body) || !bytes.Equal(v.Properties(), want.Properties) || v.BornTimestampMs() != want.BornTimestampMs {
		t.Fatalf("record of %+v differs from what was acknowledged", a)
	}
}
