package broker

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/ringmq/ringmq/engine"
	"github.com/ringmq/ringmq/engine/meta"
	"github.com/ringmq/ringmq/engine/record"
	"github.com/ringmq/ringmq/netio/remoting"
	"github.com/ringmq/ringmq/perf"
)

// Response ext values every successful send carries (Java's defaults).
const (
	defaultRegion = "DefaultRegion"
	traceOn       = "true"
)

// sendKind says how a finished append is answered.
type sendKind uint8

const (
	kindSend     sendKind = iota // SEND_MESSAGE(_V2): msgId, queueId, queueOffset, ...
	kindBatch                    // SEND_BATCH_MESSAGE: comma-joined msgIds
	kindSendBack                 // CONSUMER_SEND_MSG_BACK: bare SUCCESS
	kindEndTx                    // END_TRANSACTION commit: bare SUCCESS
)

// Phases of a sendState between the reader goroutine (which calls Append) and the store's
// Done (which may run before Append returns, under ASYNC_FLUSH, or on the flusher
// goroutine at any time after): whichever of the two comes second answers.
const (
	phaseAppending int32 = iota
	phaseAppended        // Append returned first: Done answers
	phaseDone            // Done ran first: the reader answers after Append returns
)

// sendState is one append in flight. It is pooled: it carries the request from the reader
// goroutine through the store's Done to the response's release hook, and back to the pool.
// It implements engine.Waiter.
type sendState struct {
	b         *Broker
	conn      *remoting.Conn
	opaque    int32
	code      int16 // request code, for the recorder
	kind      sendKind
	msg       engine.Message
	res       engine.PutResult
	msgs      []engine.Message   // batch
	results   []engine.PutResult // batch
	props     []byte             // stored properties (single message)
	batchBuf  []byte             // stored properties of every batch element
	txID      []byte             // transactionId to answer (UNIQ_KEY of a half message)
	idBuf     []byte             // msgId hex
	topic     string             // the topic the client sent to, for the recorder
	queueID   int32
	bodyBytes int
	phase     atomic.Int32
	err       error
	stamps    perf.Stamps
	written   func() // s.release bound once, so OnWritten allocates nothing
}

// sendPool recycles sendStates and bounds sends in flight.
type sendPool struct {
	b        *Broker
	pool     sync.Pool
	inflight atomic.Int64
	max      int64
}

func (p *sendPool) init(b *Broker) {
	p.b = b
	p.max = int64(b.cfg.MaxInFlightSends)
	p.pool.New = func() any {
		s := &sendState{b: b}
		s.written = s.release
		return s
	}
}

// get returns a clean state for req (its stamps so far: read and decoded, marked by the
// server), or nil when MaxInFlightSends are in flight.
func (p *sendPool) get(req *remoting.Command) *sendState {
	if p.inflight.Add(1) > p.max {
		p.inflight.Add(-1)
		return nil
	}
	s := p.pool.Get().(*sendState)
	s.code, s.stamps = req.Code, req.Stamps
	return s
}

// Pooled buffers larger than these are dropped rather than kept (a rare 4 MiB batch must
// not pin 4 MiB in every pooled state).
const (
	maxPooledBufBytes = 64 << 10
	maxPooledBatch    = 256
)

func (p *sendPool) put(s *sendState) {
	s.conn, s.err, s.txID, s.topic = nil, nil, s.txID[:0], ""
	s.msg = engine.Message{}
	clear(s.msgs)
	s.msgs = s.msgs[:0]
	s.results = s.results[:0]
	if cap(s.msgs) > maxPooledBatch {
		s.msgs, s.results = nil, nil
	}
	if cap(s.batchBuf) > maxPooledBufBytes {
		s.batchBuf = nil
	}
	if cap(s.idBuf) > maxPooledBufBytes {
		s.idBuf = nil
	}
	s.kind, s.queueID, s.bodyBytes = kindSend, 0, 0
	s.stamps.Reset()
	p.pool.Put(s)
	p.inflight.Add(-1)
}

// release runs when the response was written (or dropped with its connection); the
// server's OnWritten hook has recorded the stamps by then (see Broker.recordWritten).
func (s *sendState) release() { s.b.sends.put(s) }

// handleSend serves SEND_MESSAGE (10), SEND_MESSAGE_V2 (310) and SEND_BATCH_MESSAGE (320).
func (b *Broker) handleSend(c *remoting.Conn, req *remoting.Command) {
	s := b.sends.get(req)
	if s == nil {
		b.replyError(c, req, remoting.RespSystemBusy, "[REJECTREQUEST]system busy: too many sends waiting for the disk")
		return
	}
	var h sendHeader
	if err := parseSendHeader(req, usesV2Names(req.Code), &h); err != nil {
		b.sends.put(s)
		b.replyError(c, req, remoting.RespSystemError, "bad send request: "+err.Error())
		return
	}
	tc, code, remark := b.sendTopic(c, &h)
	if code == remoting.RespSuccess {
		if req.Code == remoting.ReqSendBatchMessage || h.batch {
			code, remark = b.prepareBatch(s, c, req, &h, tc)
		} else {
			code, remark = b.prepareSingle(s, c, req, &h, tc)
		}
	}
	if code != remoting.RespSuccess {
		b.sends.put(s)
		b.replyError(c, req, code, remark)
		return
	}
	b.appendAndAnswer(s, c, req)
}

// usesV2Names reports whether a send request code carries the one-letter V2 header.
func usesV2Names(code int16) bool {
	switch code {
	case remoting.ReqSendMessageV2, remoting.ReqSendBatchMessage, remoting.ReqSendReplyMessageV2:
		return true
	}
	return false
}

// sendTopic validates the target topic of a send and creates it when allowed.
func (b *Broker) sendTopic(c *remoting.Conn, h *sendHeader) (*meta.TopicConfig, int16, string) {
	tc, ok := b.meta.TopicBytes(h.topic)
	if !ok {
		// Only names that are not in the table need the check: every topic in it is valid.
		if !meta.ValidTopicNameBytes(h.topic) {
			return nil, remoting.RespMessageIllegal, fmt.Sprintf("the topic %q is illegal: 1..127 characters of [%%|a-zA-Z0-9_-]", h.topic)
		}
		var err error
		tc, err = b.autoCreateTopic(c, h)
		if err != nil {
			return nil, remoting.RespTopicNotExist, err.Error()
		}
	}
	if notAllowedSend(tc.TopicName) {
		return nil, remoting.RespNoPermission, "sending to topic " + tc.TopicName + " is forbidden"
	}
	if !tc.Writable() {
		return nil, remoting.RespNoPermission, "the topic " + tc.TopicName + " is not writable (perm " + fmt.Sprint(tc.Perm) + ")"
	}
	return tc, remoting.RespSuccess, ""
}

// autoCreateTopic creates a topic a producer sent to before it existed: retry topics
// always, others from the default topic (TBW102) when AutoCreateTopicEnable is set.
func (b *Broker) autoCreateTopic(c *remoting.Conn, h *sendHeader) (*meta.TopicConfig, error) {
	name := string(h.topic)
	if _, ok := retryGroup(name); ok {
		return b.ensureSystemTopic(name, retryQueueNums)
	}
	if !b.cfg.AutoCreateTopicEnable {
		return nil, fmt.Errorf("topic[%s] not exist, apply first please (autoCreateTopicEnable is false)", name)
	}
	def, ok := b.meta.TopicBytes(h.defaultTopic)
	if !ok || def.Perm&meta.PermInherit == 0 {
		return nil, fmt.Errorf("topic[%s] not exist and the default topic %q does not exist or does not allow inheriting", name, h.defaultTopic)
	}
	queues := int(h.defaultTopicQueueNums)
	if queues <= 0 || queues > def.WriteQueueNums {
		queues = def.WriteQueueNums
	}
	tc, created, err := b.meta.CreateTopicIfAbsent(meta.TopicConfig{
		TopicName: name, ReadQueueNums: queues, WriteQueueNums: queues, Perm: def.Perm &^ meta.PermInherit,
	})
	if err != nil {
		return nil, fmt.Errorf("auto-create topic %s: %w", name, err)
	}
	if created {
		b.log.Info("auto-created topic on send", "topic", name, "queues", queues, "producer", c.RemoteAddr())
		if err := b.topicsChanged(); err != nil {
			b.log.Error("auto-created topic not yet on disk; the periodic write retries", "topic", name, "err", err)
		}
	}
	return tc, nil
}

// pickQueue checks or chooses the queue of a send.
func (b *Broker) pickQueue(tc *meta.TopicConfig, queueID int32) (int32, int16, string) {
	if queueID < 0 {
		n := uint32(max(tc.WriteQueueNums, 1))
		return int32(b.queuePick.Add(1) % n), remoting.RespSuccess, ""
	}
	if int(queueID) >= tc.QueueNums() {
		return 0, remoting.RespSystemError, fmt.Sprintf("request queueId[%d] is illegal: topic %s has %d queues", queueID, tc.TopicName, tc.QueueNums())
	}
	return queueID, remoting.RespSuccess, ""
}

// prepareSingle fills s.msg for SEND_MESSAGE(_V2).
func (b *Broker) prepareSingle(s *sendState, c *remoting.Conn, req *remoting.Command, h *sendHeader, tc *meta.TopicConfig) (int16, string) {
	if len(req.Body) > b.cfg.MaxMessageSizeBytes {
		return remoting.RespMessageIllegal, fmt.Sprintf("message body %d bytes is over the maximum message size %d", len(req.Body), b.cfg.MaxMessageSizeBytes)
	}
	if len(h.properties) > record.MaxPropertiesLen {
		return remoting.RespMessageIllegal, fmt.Sprintf("message properties %d bytes are over %d", len(h.properties), record.MaxPropertiesLen)
	}
	queueID, code, remark := b.pickQueue(tc, h.queueID)
	if code != remoting.RespSuccess {
		return code, remark
	}
	topic := tc.TopicName
	if group, ok := retryGroup(topic); ok {
		if t, q, toDLQ, err := b.retryOrDLQ(group, h); err != nil {
			return remoting.RespSystemError, err.Error()
		} else if toDLQ {
			topic, queueID = t, q
		}
	}
	d, sysFlag := routeSpecial(topic, queueID, h.sysFlag, h.properties)
	if code, remark := b.routeTimer(&d, h.properties, nowMs()); code != remoting.RespSuccess {
		return code, remark
	}
	s.props = b.buildProps(s.props, h.properties, &d)
	if len(s.props) > record.MaxPropertiesLen {
		return remoting.RespMessageIllegal, fmt.Sprintf("message properties %d bytes (with the broker's) are over %d", len(s.props), record.MaxPropertiesLen)
	}
	if d.half {
		if uniq, ok := record.Property(h.properties, record.PropUniqKey); ok {
			s.txID = append(s.txID[:0], uniq...)
		}
		if pg, ok := record.Property(h.properties, record.PropProducerGroup); ok {
			b.clients.rememberTxProducer(pg, c)
		}
	}
	if d.parked {
		if _, err := b.ensureSystemTopic(d.topic, parkedQueueNums(d.topic)); err != nil {
			return remoting.RespSystemError, err.Error()
		}
	}
	if req.Code == remoting.ReqSendMessage || req.Code == remoting.ReqSendMessageV2 {
		if requester, ok := record.Property(h.properties, propReplyToClient); ok {
			b.clients.rememberRequester(requester, c) // a request of request-reply
		}
	}
	s.kind, s.topic, s.queueID, s.bodyBytes = kindSend, tc.TopicName, queueID, len(req.Body)
	s.msg = engine.Message{
		Topic: d.topic, QueueID: d.queueID, Flag: h.flag, SysFlag: sysFlag,
		BornTimestampMs: h.bornTimestampMs, BornHost: c.RemoteAddr(), ReconsumeTimes: h.reconsumeTimes,
		Body: req.Body, Properties: s.props,
	}
	return remoting.RespSuccess, ""
}

func parkedQueueNums(topic string) int {
	if topic == TopicSchedule {
		return scheduleQueueNums
	}
	return 1
}

// retryOrDLQ applies Java's rule to a message sent to %RETRY%<group>: once its
// reconsumeTimes reaches the group's maximum it goes to %DLQ%<group> instead.
func (b *Broker) retryOrDLQ(group string, h *sendHeader) (string, int32, bool, error) {
	maxTimes := int32(meta.DefaultRetryMaxTimes)
	// The Go client sends maxReconsumeTimes "0" on every send: only a positive value counts.
	if h.hasMaxReconsumeTimes && h.maxReconsumeTimes > 0 {
		maxTimes = h.maxReconsumeTimes
	} else if g, ok := b.meta.Group(group); ok {
		maxTimes = int32(g.RetryMaxTimes)
	}
	if h.reconsumeTimes < maxTimes {
		return "", 0, false, nil
	}
	dlq := DLQGroupPrefix + group
	if _, err := b.ensureSystemTopic(dlq, dlqQueueNums); err != nil {
		return "", 0, false, err
	}
	return dlq, 0, true, nil
}

// appendAndAnswer hands s to the store and answers now (synchronous error) or later
// (from Done, or here when Done ran inside Append). It reports whether the store took it.
func (b *Broker) appendAndAnswer(s *sendState, c *remoting.Conn, req *remoting.Command) bool {
	s.conn, s.opaque = c, req.Opaque
	s.phase.Store(phaseAppending)
	s.stamps.Mark(perf.StageQueued)
	var err error
	if s.kind == kindBatch {
		err = b.store.AppendBatch(s.msgs, s.results, s)
	} else {
		err = b.store.Append(&s.msg, &s.res, s)
	}
	if err != nil { // Done will not be called
		code, remark := storeErrorCode(err)
		b.sends.put(s)
		b.replyError(c, req, code, remark)
		return false
	}
	s.stamps.Mark(perf.StageAppended)
	if !s.phase.CompareAndSwap(phaseAppending, phaseAppended) {
		s.answer() // Done already ran
	}
	return true
}

// Done implements engine.Waiter: the append is durable (err == nil) or failed.
// It runs on the flusher goroutine (or inside Append) and never blocks.
func (s *sendState) Done(res *engine.PutResult, err error) {
	s.err = err
	if res != nil && res != &s.res && s.kind != kindBatch {
		s.res = *res
	}
	if s.phase.CompareAndSwap(phaseAppending, phaseDone) {
		return // the reader answers once Append returned
	}
	s.answer()
}

// answer writes the response of a finished append.
func (s *sendState) answer() {
	first := &s.res
	if s.kind == kindBatch && len(s.results) > 0 {
		first = &s.results[0]
	}
	if first.FlushSubmittedNs != 0 {
		s.stamps.MarkAt(perf.StageFlushSubmitted, first.FlushSubmittedNs)
	}
	if first.DurableNs != 0 {
		s.stamps.MarkAt(perf.StageDurable, first.DurableNs)
	}
	r := s.conn.NewResponse()
	code, remark := storeErrorCode(s.err)
	r.Code = code
	if remark != "" {
		r.SetRemark(remark)
	}
	if code == remoting.RespSuccess || code == remoting.RespFlushDiskTimeout {
		s.addSendExt(r, first)
	}
	r.RequestCode, r.Stamps, r.Topic, r.QueueID = s.code, s.stamps, s.topic, s.queueID
	r.OnWritten(s.written)
	s.conn.ReplyTo(s.opaque, r)
}

func (s *sendState) addSendExt(r *remoting.Response, first *engine.PutResult) {
	switch s.kind {
	case kindSend:
		s.idBuf = record.AppendOffsetMsgIDHex(s.idBuf[:0], first.OffsetMsgID)
	case kindBatch:
		s.idBuf = s.idBuf[:0]
		for i := range s.results {
			if i > 0 {
				s.idBuf = append(s.idBuf, ',')
			}
			s.idBuf = record.AppendOffsetMsgIDHex(s.idBuf, s.results[i].OffsetMsgID)
		}
	default:
		return
	}
	r.AddExt("msgId", s.idBuf)
	r.AddExtInt("queueId", int64(s.queueID))
	r.AddExtInt("queueOffset", first.QueueOffset)
	if len(s.txID) > 0 {
		r.AddExt("transactionId", s.txID)
	}
	r.AddExtString(record.PropMsgRegion, defaultRegion)
	r.AddExtString(record.PropTraceOn, traceOn)
}

// storeErrorCode maps a store error to the response code of DESIGN.md's durability
// contract, with a remark saying why (nil -> SUCCESS).
func storeErrorCode(err error) (int16, string) {
	switch {
	case err == nil:
		return remoting.RespSuccess, ""
	case errors.Is(err, engine.ErrFlushTimeout):
		return remoting.RespFlushDiskTimeout, "flush disk timeout: " + err.Error()
	case errors.Is(err, engine.ErrDiskFull):
		return remoting.RespServiceNotAvailable, "service not available: disk full, writes resume when space returns: " + err.Error()
	case errors.Is(err, engine.ErrStoreFailed):
		return remoting.RespServiceNotAvailable, "service not available: the store failed a write or fsync and refuses writes until restart: " + err.Error()
	case errors.Is(err, engine.ErrBusy):
		return remoting.RespSystemBusy, "[REJECTREQUEST]system busy: " + err.Error()
	case errors.Is(err, engine.ErrMessageIllegal):
		return remoting.RespMessageIllegal, "message illegal: " + err.Error()
	default:
		return remoting.RespSystemError, "store error: " + err.Error()
	}
}
