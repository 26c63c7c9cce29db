package engine

import (
	"fmt"
	"math"
	"net/netip"
	"strings"
	"time"
	"unsafe"

	"github.com/ringmq/ringmq/engine/commitlog"
	"github.com/ringmq/ringmq/engine/record"
)

// Message is what the broker asks to store. The store fills QueueOffset,
// PhysicalOffset, StoreTimestamp and StoreHost (in PutResult and the record).
type Message struct {
	Topic                     string
	QueueID                   int32
	Flag                      int32
	SysFlag                   int32
	BornTimestampMs           int64
	BornHost                  netip.AddrPort
	ReconsumeTimes            int32
	PreparedTransactionOffset int64
	Body                      []byte // stored as is (zlib when SysFlag bit 0)
	Properties                []byte // "k\x01v\x02..." exactly as stored
}

// PutResult is where an append landed.
type PutResult struct {
	PhysicalOffset   int64
	SizeBytes        int32
	QueueOffset      int64
	StoreTimestampMs int64
	// OffsetMsgID is storeHost ip(4) | port(4) | physical offset(8), big-endian;
	// record.AppendOffsetMsgIDHex makes the wire form.
	OffsetMsgID [16]byte
	// FlushSubmittedNs and DurableNs are perf.Now() stamps from the flusher (0 under
	// ASYNC_FLUSH), for the latency stages.
	FlushSubmittedNs, DurableNs int64
}

// Waiter learns the outcome of an append. Done is called exactly once: from the
// flusher goroutine when the bytes are durable (SYNC_FLUSH) or right after the append
// (ASYNC_FLUSH), or with an error. It must not block. res is the *PutResult the
// caller passed to Append (for a batch, &res[0]).
type Waiter interface {
	Done(res *PutResult, err error)
}

// storeClockMs stamps records; tests replace it (before opening a store) to control
// store times.
var storeClockMs = func() int64 { return time.Now().UnixMilli() }

type queueKey struct {
	topic   string
	queueID int32
}

// isTxHalfOrRollback reports RocketMQ's transaction types that take no queue offset
// and get no consume-queue entry (prepared and rollback).
func isTxHalfOrRollback(sysFlag int32) bool {
	t := sysFlag & record.SysFlagTxMask
	return t == record.SysFlagTxPrepared || t == record.SysFlagTxRollback
}

// appendOp is one Append or AppendBatch in flight: the commit-log encoders and the
// waiter adapter. Pooled, so the append path allocates nothing.
type appendOp struct {
	s    *Store
	msgs []Message // the batch (or one message)
	res  []PutResult
	w    Waiter
	encs []msgEncoder
	ifcs []commitlog.Encoder
	// assigned by encoder 0 under the append lock
	baseOffset int64
	encoded    bool
}

type msgEncoder struct {
	op    *appendOp
	i     int
	sizeB int
}

func (e *msgEncoder) Size() int { return e.sizeB }

// Encode runs under the commit log's append lock.
func (e *msgEncoder) Encode(dst []byte, phys int64) {
	op := e.op
	m := &op.msgs[e.i]
	if e.i == 0 {
		op.baseOffset = op.s.takeQueueOffsets(m, len(op.msgs), phys)
		op.encoded = true
	}
	qo := int64(0)
	if !isTxHalfOrRollback(m.SysFlag) {
		qo = op.baseOffset + int64(e.i)
	}
	nowMs := storeClockMs()
	h := record.Header{
		QueueID: m.QueueID, Flag: m.Flag, QueueOffset: qo, PhysicalOffset: phys,
		SysFlag: m.SysFlag, BornTimestampMs: m.BornTimestampMs, BornHost: m.BornHost,
		StoreTimestampMs: nowMs, StoreHost: op.s.cfg.StoreHost,
		ReconsumeTimes: m.ReconsumeTimes, PreparedTransactionOffset: m.PreparedTransactionOffset,
	}
	record.EncodeInto(dst, &h, m.Topic, m.Body, m.Properties)
	r := &op.res[e.i]
	r.PhysicalOffset, r.SizeBytes, r.QueueOffset, r.StoreTimestampMs = phys, int32(e.sizeB), qo, nowMs
	r.OffsetMsgID = record.OffsetMsgID(op.s.cfg.StoreHost, phys)
	r.FlushSubmittedNs, r.DurableNs = 0, 0
}

// Durable is the commit log's completion (flush.Waiter).
func (op *appendOp) Durable(flushSubmittedNs, durableNs int64, err error) {
	res, w, s := &op.res[0], op.w, op.s
	res.FlushSubmittedNs, res.DurableNs = flushSubmittedNs, durableNs
	for i := 1; i < len(op.res); i++ {
		op.res[i].FlushSubmittedNs, op.res[i].DurableNs = flushSubmittedNs, durableNs
	}
	s.putOp(op)
	w.Done(res, err)
}

// getOp takes an appendOp from the free list. The list is a channel, not a
// sync.Pool: ops are freed on the flusher goroutine and taken on appenders', and a
// sync.Pool's per-P caches would miss (and allocate) on every such hand-over.
func (s *Store) getOp(n int) *appendOp {
	var op *appendOp
	select {
	case op = <-s.freeOps:
	default:
		op = &appendOp{s: s}
	}
	if cap(op.encs) < n {
		op.encs = make([]msgEncoder, n)
		op.ifcs = make([]commitlog.Encoder, n)
		for i := range op.encs {
			op.encs[i] = msgEncoder{op: op, i: i}
			op.ifcs[i] = &op.encs[i]
		}
	}
	op.encs, op.ifcs = op.encs[:n], op.ifcs[:n]
	return op
}

func (s *Store) putOp(op *appendOp) {
	op.msgs, op.res, op.w, op.encoded = nil, nil, nil, false
	if cap(op.encs) > maxPooledBatch {
		return // a big batch's op is left to the GC
	}
	select {
	case s.freeOps <- op:
	default: // the list is full
	}
}

// takeQueueOffsets returns the next queue offset of m's queue and reserves n of them
// (none for transaction half/rollback records). Under the append lock.
func (s *Store) takeQueueOffsets(m *Message, n int, phys int64) int64 {
	if isTxHalfOrRollback(m.SysFlag) {
		return 0
	}
	s.offMu.Lock()
	if len(s.deleteCuts) > 0 {
		if c := s.deleteCuts[m.Topic]; c != nil && c.phys == math.MaxInt64 {
			c.phys = phys // the first record of the topic after DeleteTopic
		}
	}
	k := queueKey{m.Topic, m.QueueID}
	base, ok := s.nextOffsets[k]
	if !ok {
		k.topic = strings.Clone(m.Topic) // the caller's string may alias a reused buffer
	}
	s.nextOffsets[k] = base + int64(n)
	s.offMu.Unlock()
	return base
}

// untakeQueueOffsets gives back offsets taken by an append that then failed, if no
// later append took offsets of the same queue (else the gap stays: consumers skip it).
func (s *Store) untakeQueueOffsets(m *Message, base int64, n int) {
	if isTxHalfOrRollback(m.SysFlag) {
		return
	}
	s.offMu.Lock()
	k := queueKey{m.Topic, m.QueueID}
	if s.nextOffsets[k] == base+int64(n) {
		s.nextOffsets[k] = base
	}
	s.offMu.Unlock()
}

// validTopic is RocketMQ's ^[%|a-zA-Z0-9_-]+$, at most 127 bytes.
func validTopic(t string) bool {
	if len(t) == 0 || len(t) > record.MaxTopicLen {
		return false
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '%' || c == '|' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func (s *Store) checkMessage(m *Message) error {
	switch {
	case !validTopic(m.Topic):
		return fmt.Errorf("%w: topic %q", ErrMessageIllegal, m.Topic)
	case m.QueueID < 0:
		return fmt.Errorf("%w: queue id %d", ErrMessageIllegal, m.QueueID)
	case len(m.Body) > s.cfg.MaxMessageSizeBytes:
		return fmt.Errorf("%w: body of %d bytes over the maximum %d", ErrMessageIllegal, len(m.Body), s.cfg.MaxMessageSizeBytes)
	case len(m.Properties) > record.MaxPropertiesLen:
		return fmt.Errorf("%w: properties of %d bytes over %d", ErrMessageIllegal, len(m.Properties), record.MaxPropertiesLen)
	}
	return nil
}

// Append encodes m into the commit log (one append) and returns; w.Done reports
// durability. It allocates nothing in steady state. When it returns an error w is not
// called: ErrMessageIllegal, ErrBusy, ErrDiskFull, ErrStoreFailed, ErrClosed.
func (s *Store) Append(m *Message, res *PutResult, w Waiter) error {
	if err := s.checkMessage(m); err != nil {
		return err
	}
	op := s.getOp(1)
	op.msgs, op.res, op.w = unsafe.Slice(m, 1), unsafe.Slice(res, 1), w
	op.encs[0].sizeB = record.Size(len(m.Body), len(m.Topic), len(m.Properties))
	return s.appendOp(op)
}

// AppendBatch stores msgs (same topic and queue) as consecutive records with
// consecutive queue offsets in one append and one durability wait; res[i] is filled
// per message and w.Done is called once with &res[0].
func (s *Store) AppendBatch(msgs []Message, res []PutResult, w Waiter) error {
	if len(res) < len(msgs) {
		panic(fmt.Sprintf("BUG: engine.AppendBatch: %d results for %d messages", len(res), len(msgs)))
	}
	if len(msgs) == 0 || len(msgs) > MaxBatchMessages {
		return fmt.Errorf("%w: batch of %d messages (want 1..%d)", ErrMessageIllegal, len(msgs), MaxBatchMessages)
	}
	op := s.getOp(len(msgs))
	for i := range msgs {
		m := &msgs[i]
		if err := s.checkMessage(m); err != nil {
			s.putOp(op)
			return err
		}
		if m.Topic != msgs[0].Topic || m.QueueID != msgs[0].QueueID {
			s.putOp(op)
			return fmt.Errorf("%w: batch mixes queues %s/%d and %s/%d", ErrMessageIllegal, msgs[0].Topic, msgs[0].QueueID, m.Topic, m.QueueID)
		}
		op.encs[i].sizeB = record.Size(len(m.Body), len(m.Topic), len(m.Properties))
	}
	op.msgs, op.res, op.w = msgs, res[:len(msgs)], w
	return s.appendOp(op)
}

func (s *Store) appendOp(op *appendOp) error {
	if s.closing.Load() {
		s.putOp(op)
		return ErrClosed
	}
	var err error
	if len(op.ifcs) == 1 {
		_, err = s.log.Append(op.ifcs[0], op)
	} else {
		_, err = s.log.AppendBatch(op.ifcs, op)
	}
	if err != nil { // op was not handed to the flusher: still ours
		m := &op.msgs[0]
		if op.encoded {
			s.untakeQueueOffsets(m, op.baseOffset, len(op.msgs))
		}
		err = fmt.Errorf("engine: append to %s/%d: %w", m.Topic, m.QueueID, err)
		s.putOp(op)
		return err
	}
	return nil // op belongs to the flusher now (or is back in the pool)
}

// chanWaiter is Put's waiter.
type chanWaiter struct{ done chan error }

func (c *chanWaiter) Done(_ *PutResult, err error) { c.done <- err }

// Put appends m and waits for the outcome: the blocking convenience for tests and
// tools (it allocates).
func (s *Store) Put(m *Message) (PutResult, error) {
	var res PutResult
	w := &chanWaiter{done: make(chan error, 1)}
	if err := s.Append(m, &res, w); err != nil {
		return res, err
	}
	return res, <-w.done
}
