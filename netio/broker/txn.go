package broker

import (
	"fmt"
	"strconv"
	"sync"

	"github.com/ringmq/ringmq/engine"
	"github.com/ringmq/ringmq/engine/record"
	"github.com/ringmq/ringmq/netio/remoting"
)

// END_TRANSACTION commitOrRollback values.
const (
	txUnknown  = 0
	txCommit   = 8
	txRollback = 12
)

// Tags of the op records in RMQ_SYS_TRANS_OP_HALF_TOPIC (body: a half queue offset).
const (
	opTag      = "d" // the half message is committed or rolled back (Java's REMOVETAG)
	opCheckTag = "c" // one CHECK_TRANSACTION_STATE was sent for it (ringmq's; txcheck.go)
)

// endTxRequest is END_TRANSACTION's header (PROTOCOL.md §2.9).
type endTxRequest struct {
	producerGroup    string
	tranStateOffset  int64
	commitLogOffset  int64
	commitOrRollback int64
}

// handleEndTransaction serves END_TRANSACTION (37): commit stores the half message again in
// its real topic and queue (visible to consumers from then on), rollback leaves it; both
// write an op record to RMQ_SYS_TRANS_OP_HALF_TOPIC (tag "d", body = the half message's
// queue offset) for the transaction check service. State 0 (unknown) is ignored, as Java
// does. The Go client sends this oneway: the answer is for other clients and tests.
func (b *Broker) handleEndTransaction(c *remoting.Conn, req *remoting.Command) {
	var et endTxRequest
	var err error
	et.producerGroup = req.ExtString("producerGroup")
	if et.tranStateOffset, err = extInt64Required(req, "tranStateTableOffset"); err == nil {
		if et.commitLogOffset, err = extInt64Required(req, "commitLogOffset"); err == nil {
			et.commitOrRollback, err = extInt64Required(req, "commitOrRollback")
		}
	}
	if err != nil {
		b.replyError(c, req, remoting.RespSystemError, "bad end transaction request: "+err.Error())
		return
	}
	switch et.commitOrRollback {
	case txUnknown:
		b.replyOK(c, req)
		return
	case txCommit, txRollback:
	default:
		b.replyError(c, req, remoting.RespSystemError, fmt.Sprintf("commitOrRollback %d is not 0, 8 or 12", et.commitOrRollback))
		return
	}
	rec, release, err := b.store.ReadRecord(et.commitLogOffset)
	if err != nil {
		b.replyError(c, req, remoting.RespSystemError, fmt.Sprintf("find prepared transaction message at offset %d failed: %v", et.commitLogOffset, err))
		return
	}
	defer release()
	v, code, remark := checkHalf(rec, &et)
	if code != remoting.RespSuccess {
		b.replyError(c, req, code, remark)
		return
	}
	if !b.resolved.claim(v.QueueOffset()) {
		b.replyOK(c, req) // already committed or rolled back: answer again, store nothing
		return
	}
	if et.commitOrRollback == txRollback {
		b.writeOpRecord(v.QueueOffset())
		b.replyOK(c, req)
		return
	}
	b.commitHalf(c, req, v, &et)
}

// checkHalf verifies that rec is the half message END_TRANSACTION names (Java's checks).
func checkHalf(rec []byte, et *endTxRequest) (record.View, int16, string) {
	v, err := record.Decode(rec)
	if err != nil {
		return v, remoting.RespSystemError, "the prepared message does not decode: " + err.Error()
	}
	pg, _ := record.Property(v.Properties(), record.PropProducerGroup)
	switch {
	case string(v.Topic()) != TopicTransHalf:
		return v, remoting.RespSystemError, fmt.Sprintf("the message at offset %d is not a half message (topic %s)", et.commitLogOffset, v.Topic())
	case string(pg) != et.producerGroup:
		return v, remoting.RespSystemError, "the producer group differs from the prepared message's"
	case v.QueueOffset() != et.tranStateOffset:
		return v, remoting.RespSystemError, "the transaction state table offset differs"
	case v.PhysicalOffset() != et.commitLogOffset:
		return v, remoting.RespSystemError, "the commit log offset differs"
	}
	return v, remoting.RespSuccess, ""
}

// commitHalf stores the committed message in its real topic and answers when durable.
func (b *Broker) commitHalf(c *remoting.Conn, req *remoting.Command, v record.View, et *endTxRequest) {
	props := v.Properties()
	realTopic, ok1 := record.Property(props, record.PropRealTopic)
	realQID, ok2 := record.Property(props, record.PropRealQueueID)
	qid, err := parseInt32(realQID)
	if !ok1 || !ok2 || err != nil {
		b.replyError(c, req, remoting.RespSystemError, "the prepared message has no REAL_TOPIC/REAL_QID")
		return
	}
	tc, ok := b.meta.TopicBytes(realTopic)
	if !ok {
		b.resolved.release(v.QueueOffset())
		b.replyError(c, req, remoting.RespTopicNotExist, fmt.Sprintf("topic[%s] of the transaction no longer exists", realTopic))
		return
	}
	s := b.sends.get(req)
	if s == nil {
		b.resolved.release(v.QueueOffset())
		b.replyError(c, req, remoting.RespSystemBusy, "[REJECTREQUEST]system busy: too many sends waiting for the disk")
		return
	}
	// Committed: no TRAN_MSG, REAL_* only if a DELAY parks it again.
	s.batchBuf = appendPropsExcept(s.batchBuf[:0], props, dropTranMsg|dropReal)
	sysFlag := v.SysFlag()&^record.SysFlagTxMask | record.SysFlagTxCommit
	d, sysFlag := routeSpecial(tc.TopicName, qid, sysFlag, s.batchBuf)
	s.props = b.buildProps(s.props, s.batchBuf, &d)
	if d.parked {
		if _, err := b.ensureSystemTopic(d.topic, parkedQueueNums(d.topic)); err != nil {
			b.sends.put(s)
			b.resolved.release(v.QueueOffset())
			b.replyError(c, req, remoting.RespSystemError, err.Error())
			return
		}
	}
	s.kind, s.topic, s.queueID, s.bodyBytes = kindEndTx, tc.TopicName, qid, len(v.Body())
	s.msg = engine.Message{
		Topic: d.topic, QueueID: d.queueID, Flag: v.Flag(), SysFlag: sysFlag,
		BornTimestampMs: v.BornTimestampMs(), BornHost: v.BornHost(), ReconsumeTimes: v.ReconsumeTimes(),
		PreparedTransactionOffset: et.commitLogOffset, Body: v.Body(), Properties: s.props,
	}
	halfQueueOffset := v.QueueOffset()
	if !b.appendAndAnswer(s, c, req) {
		b.resolved.release(halfQueueOffset) // not stored: a later answer may commit it
		return
	}
	b.writeOpRecord(halfQueueOffset)
}

// writeOpRecord marks the half message at halfQueueOffset resolved. It is appended right
// behind a commit (so one flush covers both) and its durability is not waited for: a lost
// op record makes the check service look for the commit in the real topic (txcheck.go),
// or, for a rollback, ask the producer again.
func (b *Broker) writeOpRecord(halfQueueOffset int64) {
	if _, err := b.ensureSystemTopic(TopicTransOpHalf, 1); err != nil {
		b.log.Warn("transaction op record: create topic failed", "err", err)
		return
	}
	m := b.opMessage(opTag, halfQueueOffset)
	if err := b.store.Append(&m, new(engine.PutResult), discardWaiter{}); err != nil {
		b.log.Warn("transaction op record not written", "halfQueueOffset", halfQueueOffset, "err", err)
	}
}

// opMessage is an op record with tag about the half message at halfQueueOffset.
func (b *Broker) opMessage(tag string, halfQueueOffset int64) engine.Message {
	var props []byte
	props = appendPropString(props, record.PropTags, tag)
	props = appendPropString(props, record.PropCluster, b.cfg.BrokerClusterName)
	return engine.Message{
		Topic: TopicTransOpHalf, QueueID: 0, BornHost: b.storeHost, BornTimestampMs: nowMs(),
		Body: strconv.AppendInt(nil, halfQueueOffset, 10), Properties: props,
	}
}

// discardWaiter ignores the outcome of an append nobody answers for.
type discardWaiter struct{}

func (discardWaiter) Done(*engine.PutResult, error) {}

// maxResolvedTx bounds the half messages remembered as resolved in this run.
const maxResolvedTx = 1 << 16

// resolvedTx remembers which half messages (by queue offset) END_TRANSACTION already
// committed or rolled back in this run, so a second answer (a check racing the producer's
// own END_TRANSACTION) does not store the message twice. FIFO-bounded; safe for
// concurrent use. Across restarts the op records are the memory (txcheck.go).
type resolvedTx struct {
	mu struct {
		sync.Mutex
		set  map[int64]struct{}
		ring [maxResolvedTx]int64
		next int
		n    int
	}
}

// claim marks q resolved and reports whether this call was the first to.
func (r *resolvedTx) claim(q int64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.mu.set == nil {
		r.mu.set = make(map[int64]struct{})
	}
	if _, ok := r.mu.set[q]; ok {
		return false
	}
	if r.mu.n == maxResolvedTx {
		delete(r.mu.set, r.mu.ring[r.mu.next])
	} else {
		r.mu.n++
	}
	r.mu.ring[r.mu.next] = q
	r.mu.next = (r.mu.next + 1) % maxResolvedTx
	r.mu.set[q] = struct{}{}
	return true
}

// release forgets q (its commit could not be stored, so a later answer may retry it).
func (r *resolvedTx) release(q int64) {
	r.mu.Lock()
	delete(r.mu.set, q)
	r.mu.Unlock()
}
