package bench

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
)

// Every payload starts with a header that the consumer reads to compute end-to-end latency:
//
//	+--------+------------------------+------------------+-------------+---- ... ----+
//	| magic  | intended send time     | sequence         | producer    | filler      |
//	| u32 BE | i64 BE, CLOCK_MONOTONIC| u64 BE, global   | u32 BE      | (workload's |
//	| "RMQB" | nanoseconds            | message number   | index       |  payload)   |
//	+--------+------------------------+------------------+-------------+---- ... ----+
//	0        4                        12                 20            24
//
// The time is the intended (scheduled) send time, so end-to-end latency is coordinated-
// omission free like publish latency. CLOCK_MONOTONIC is shared by all processes on one
// machine, so a consumer in another process on the same host can read it too.
const (
	PayloadHeaderBytes = 24
	payloadMagic       = 0x524D5142 // "RMQB"
)

// keyCount is the number of distinct keys KEY_ROUND_ROBIN and RANDOM_NANO draw from.
const keyCount = 10_000

// StampPayload writes the header into p (len(p) >= PayloadHeaderBytes).
func StampPayload(p []byte, intendedNs int64, seq uint64, producer uint32) {
	binary.BigEndian.PutUint32(p[0:], payloadMagic)
	binary.BigEndian.PutUint64(p[4:], uint64(intendedNs))
	binary.BigEndian.PutUint64(p[12:], seq)
	binary.BigEndian.PutUint32(p[20:], producer)
}

// ReadPayloadStamp returns the intended send time a payload carries; ok is false when p
// is not a ringmq-bench payload (too short or another magic).
func ReadPayloadStamp(p []byte) (intendedNs int64, seq uint64, ok bool) {
	if len(p) < PayloadHeaderBytes || binary.BigEndian.Uint32(p) != payloadMagic {
		return 0, 0, false
	}
	return int64(binary.BigEndian.Uint64(p[4:])), binary.BigEndian.Uint64(p[12:]), true
}

// payloadPool holds the bodies producers copy before stamping: the payload file's bytes,
// or randomizedPayloadPoolSize bodies whose first randomBytesRatio part is random.
type payloadPool struct {
	bodies [][]byte
}

// newPayloadPool builds the pool for w; seed makes random payloads reproducible.
func newPayloadPool(w *Workload, seed uint64) (*payloadPool, error) {
	if w.PayloadFile != "" {
		path := w.PayloadFile
		if !filepath.IsAbs(path) && w.Dir != "" {
			path = filepath.Join(w.Dir, path)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("%w: payloadFile: %v", ErrWorkload, err)
		}
		if len(b) != w.MessageSize {
			return nil, fmt.Errorf("%w: payloadFile %s has %d bytes, messageSize says %d", ErrWorkload, path, len(b), w.MessageSize)
		}
		return &payloadPool{bodies: [][]byte{b}}, nil
	}
	rng := rand.New(rand.NewPCG(seed, seed^0x9E3779B97F4A7C15))
	n := 1
	ratio := 1.0
	if w.UseRandomizedPayloads {
		n, ratio = w.RandomizedPayloadPoolSize, w.RandomBytesRatio
	}
	pool := &payloadPool{bodies: make([][]byte, n)}
	for i := range pool.bodies {
		b := make([]byte, w.MessageSize)
		randomBytes := int(float64(len(b)) * ratio)
		for j := 0; j < randomBytes; j++ {
			b[j] = byte(rng.Uint32())
		}
		pool.bodies[i] = b
	}
	return pool, nil
}

func (p *payloadPool) body(seq uint64) []byte { return p.bodies[seq%uint64(len(p.bodies))] }

// keyChooser implements the key distributors and maps a message to a partition.
type keyChooser struct {
	kind         string
	keys         []string
	keyPartition []int // FNV-1a(key) mod partitions, computed once
	partitions   int
}

func newKeyChooser(kind string, partitions int) *keyChooser {
	k := &keyChooser{kind: kind, partitions: partitions}
	if kind != KeyNone {
		k.keys = make([]string, keyCount)
		k.keyPartition = make([]int, keyCount)
		for i := range k.keys {
			k.keys[i] = "key-" + strconv.Itoa(i)
			h := fnv.New32a()
			h.Write([]byte(k.keys[i]))
			k.keyPartition[i] = int(h.Sum32() % uint32(partitions))
		}
	}
	return k
}

// choose returns the key ("" for NO_KEY) and partition of message number n of a producer.
// Without a key, partitions are used round robin; with one, the partition is a hash of it.
func (k *keyChooser) choose(n uint64, nowNs int64) (key string, partition int) {
	var i uint64
	switch k.kind {
	case KeyRoundRobin:
		i = n % keyCount
	case KeyRandomNano:
		i = uint64(nowNs) % keyCount
	default:
		return "", int(n % uint64(k.partitions))
	}
	return k.keys[i], k.keyPartition[i]
}
