// Package crash is ringmq's real-process crash test: a child process appends through
// engine.Store with SYNC_FLUSH on the OS file system and prints every acknowledged
// message; the parent kills it with SIGKILL at a random moment, reopens the store and
// checks that every acknowledged message is there byte for byte, that the consume
// queues and the index were rebuilt, and that queue offsets continue without a gap.
//
// The child is the test binary itself, re-executed with RINGMQ_CRASH_CHILD=<dir>
// (TestMain runs RunChild then). Its protocol on stdout, one line per event:
//
//	READY                                    the store is open
//	ACK <queue> <queueOffset> <phys> <seed>  an fdatasync covered the message
//
// where the message is Message(<queue>, <seed>) (deterministic from the seed).
//
// The child runs one appender goroutine per queue (Queues of them); their acks reach
// stdout through one printer, so lines never interleave. An ACK line is printed only
// after its Waiter reported success, so a line the parent read is a durability claim.
// RunChild returns when an appender stops, with its append error (the parent then sees
// the child exit before it was killed and fails the test); a malformed line is an error
// from ParseAck.
package crash

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"os"

	"github.com/ringmq/ringmq/engine"
	"github.com/ringmq/ringmq/engine/record"
	"github.com/ringmq/ringmq/flush/vfs"
)

// Queues is how many queues the child writes (topic CrashT<i%2>, queue id i).
const Queues = 4

// maxBodyBytes bounds the generated bodies.
const maxBodyBytes = 3000

// StoreConfig is the store both processes open.
func StoreConfig(dir string) engine.Config {
	return engine.Config{
		Dir: dir, FS: vfs.OS{}, FlushMode: engine.SyncFlush,
		SegmentSizeBytes: 1 << 20, MaxMessageSizeBytes: 64 << 10,
		StoreHost: netip.MustParseAddrPort("127.0.0.1:10911"), CQEntriesPerFile: 1000,
		IndexSlotsPerFile: 4099, IndexEntriesPerFile: 20000,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
}

// QueueOf returns the topic and queue id of queue i.
func QueueOf(i int) (string, int32) { return fmt.Sprintf("CrashT%d", i%2), int32(i) }

// Message is the message with this seed for queue i.
func Message(i int, seed uint64) *engine.Message {
	topic, qid := QueueOf(i)
	rng := rand.New(rand.NewPCG(seed, uint64(i)))
	body := make([]byte, 1+rng.IntN(maxBodyBytes))
	for j := range body {
		body[j] = byte(rng.Uint32())
	}
	props := record.AppendProperty(nil, record.PropTags, fmt.Sprintf("tag%d", seed%5))
	props = record.AppendProperty(props, record.PropKeys, fmt.Sprintf("key-%d", seed))
	props = record.AppendProperty(props, record.PropUniqKey, UniqKey(i, seed))
	return &engine.Message{Topic: topic, QueueID: qid, BornTimestampMs: int64(seed),
		BornHost: netip.MustParseAddrPort("192.0.2.9:4000"), Body: body, Properties: props}
}

// UniqKey is the UNIQ_KEY of Message(i, seed).
func UniqKey(i int, seed uint64) string { return fmt.Sprintf("U%d-%016X", i, seed) }

type ack struct {
	queue int
	res   engine.PutResult
	seed  uint64
}

type chanWaiter struct{ ch chan error }

func (w *chanWaiter) Done(_ *engine.PutResult, err error) { w.ch <- err }

// RunChild opens the store in dir and appends until killed; runSeed makes each run's
// message seeds unique. It returns only on a failure.
func RunChild(dir string, runSeed uint64) error {
	s, err := engine.Open(StoreConfig(dir))
	if err != nil {
		return err
	}
	out := bufio.NewWriter(os.Stdout)
	acks := make(chan ack, 4*Queues)
	fmt.Fprintln(out, "READY")
	if err := out.Flush(); err != nil {
		return err
	}
	errs := make(chan error, Queues)
	for i := 0; i < Queues; i++ {
		go func(i int) { errs <- appendLoop(s, i, runSeed, acks) }(i)
	}
	for {
		select {
		case err := <-errs:
			return err
		case a := <-acks:
			fmt.Fprintf(out, "ACK %d %d %d %d\n", a.queue, a.res.QueueOffset, a.res.PhysicalOffset, a.seed)
			if err := out.Flush(); err != nil { // unbuffered in effect: an ACK printed is an ACK seen
				return err
			}
		}
	}
}

// appendLoop appends queue i's messages one by one, and sometimes as a batch of 2 or
// 3, waiting for each acknowledgement.
func appendLoop(s *engine.Store, i int, runSeed uint64, acks chan<- ack) error {
	w := &chanWaiter{ch: make(chan error, 1)}
	rng := rand.New(rand.NewPCG(runSeed, uint64(i)+100))
	msgs := make([]engine.Message, 3)
	results := make([]engine.PutResult, 3)
	for n := uint64(0); n < 1<<16; n += 4 {
		seed := runSeed<<24 | uint64(i)<<20 | n
		batch := 1
		if rng.IntN(4) == 0 {
			batch = 2 + rng.IntN(2)
		}
		for k := 0; k < batch; k++ {
			msgs[k] = *Message(i, seed+uint64(k))
		}
		var err error
		if batch == 1 {
			err = s.Append(&msgs[0], &results[0], w)
		} else {
			err = s.AppendBatch(msgs[:batch], results[:batch], w)
		}
		if err == nil {
			err = <-w.ch
		}
		if err != nil {
			return fmt.Errorf("queue %d: %w", i, err)
		}
		for k := 0; k < batch; k++ {
			acks <- ack{queue: i, res: results[k], seed: seed + uint64(k)}
		}
	}
	return fmt.Errorf("queue %d: seed space used up", i)
}

// ParseAck parses an ACK line.
func ParseAck(line string) (queue int, queueOffset, phys int64, seed uint64, err error) {
	if _, err = fmt.Sscanf(line, "ACK %d %d %d %d", &queue, &queueOffset, &phys, &seed); err != nil {
		return 0, 0, 0, 0, fmt.Errorf("parse %q: %w", line, err)
	}
	return queue, queueOffset, phys, seed, nil
}
