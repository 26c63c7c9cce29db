package broker

import (
	"encoding/binary"
	"fmt"

	"github.com/ringmq/ringmq/engine"
	"github.com/ringmq/ringmq/engine/meta"
	"github.com/ringmq/ringmq/engine/record"
	"github.com/ringmq/ringmq/netio/remoting"
)

// MaxBatchMessages bounds the messages of one SEND_BATCH_MESSAGE (the store's bound).
const MaxBatchMessages = engine.MaxBatchMessages

// A batch body is the concatenation of client-encoded messages (PROTOCOL.md §2.3):
//
//	+-----------+-----------+-------------+----------+-----------+------+-------------+-------+
//	| totalSize | magic = 0 | bodyCRC = 0 | flag     | bodyLen   | body | propsLen    | props |
//	| int32     | int32     | int32       | int32    | int32     |      | int16       |       |
//	+-----------+-----------+-------------+----------+-----------+------+-------------+-------+
//	totalSize = 22 + bodyLen + propsLen
const batchElemFixedBytes = 22

// batchElem is one decoded element: views into the request body.
type batchElem struct {
	flag  int32
	body  []byte
	props []byte
}

// nextBatchElem splits the first element off a batch body.
func nextBatchElem(b []byte) (e batchElem, rest []byte, err error) {
	if len(b) < batchElemFixedBytes {
		return e, nil, fmt.Errorf("batch element of %d bytes is shorter than its %d-byte header", len(b), batchElemFixedBytes)
	}
	be := binary.BigEndian
	total := int64(int32(be.Uint32(b[0:])))
	if total < batchElemFixedBytes || total > int64(len(b)) {
		return e, nil, fmt.Errorf("batch element size %d outside %d..%d", total, batchElemFixedBytes, len(b))
	}
	e.flag = int32(be.Uint32(b[12:]))
	bodyLen := int64(int32(be.Uint32(b[16:])))
	if bodyLen < 0 || 20+bodyLen+2 > total {
		return e, nil, fmt.Errorf("batch element body length %d does not fit its size %d", bodyLen, total)
	}
	e.body = b[20 : 20+bodyLen]
	p := 20 + bodyLen
	propsLen := int64(be.Uint16(b[p:]))
	if p+2+propsLen != total {
		return e, nil, fmt.Errorf("batch element properties length %d does not fit its size %d", propsLen, total)
	}
	e.props = b[p+2 : total]
	return e, b[total:], nil
}

// prepareBatch decodes a SEND_BATCH_MESSAGE body into s.msgs (one store record each, the
// wrapper's topic and queue, each element's flag, body and properties plus CLUSTER).
func (b *Broker) prepareBatch(s *sendState, c *remoting.Conn, req *remoting.Command, h *sendHeader, tc *meta.TopicConfig) (int16, string) {
	if len(req.Body) > b.cfg.MaxMessageSizeBytes {
		return remoting.RespMessageIllegal, fmt.Sprintf("batch body %d bytes is over the maximum message size %d", len(req.Body), b.cfg.MaxMessageSizeBytes)
	}
	if _, ok := retryGroup(tc.TopicName); ok {
		return remoting.RespMessageIllegal, "batch messages cannot be sent to a retry topic"
	}
	queueID, code, remark := b.pickQueue(tc, h.queueID)
	if code != remoting.RespSuccess {
		return code, remark
	}
	// First pass: count and size, so one buffer holds every element's properties and the
	// views into it stay valid.
	n, propsBytes := 0, 0
	for rest := req.Body; len(rest) > 0; n++ {
		e, r, err := nextBatchElem(rest)
		if err != nil {
			return remoting.RespMessageIllegal, "bad batch body: " + err.Error()
		}
		if n == MaxBatchMessages {
			return remoting.RespMessageIllegal, fmt.Sprintf("batch has more than %d messages", MaxBatchMessages)
		}
		if delayLevelOf(e.props) > 0 || isHalf(e.props) {
			return remoting.RespMessageIllegal, "batch messages cannot be delayed or transactional"
		}
		if _, isTimer, _ := timerDeliverMs(e.props, 0); isTimer {
			return remoting.RespMessageIllegal, "batch messages cannot carry a delivery time (TIMER_DELIVER_MS, TIMER_DELAY_SEC, TIMER_DELAY_MS): send them one by one"
		}
		propsBytes += len(e.props) + 1 + len(record.PropCluster) + len(b.cfg.BrokerClusterName) + 2 // +1: a missing last 0x02 is added
		rest = r
	}
	if n == 0 {
		return remoting.RespMessageIllegal, "empty batch"
	}
	if cap(s.batchBuf) < propsBytes {
		s.batchBuf = make([]byte, 0, propsBytes)
	}
	used := 0 // bytes of s.batchBuf holding earlier elements' properties
	s.results = growResults(s.results, n)
	d := destination{topic: tc.TopicName, queueID: queueID}
	born := c.RemoteAddr()
	for rest := req.Body; len(rest) > 0; {
		e, r, _ := nextBatchElem(rest)
		rest = r
		// The capacity was sized above, so this appends in place after the earlier elements.
		props := b.buildProps(s.batchBuf[used:used], e.props, &d)
		used += len(props)
		if len(props) > record.MaxPropertiesLen {
			return remoting.RespMessageIllegal, fmt.Sprintf("batch element properties %d bytes are over %d", len(props), record.MaxPropertiesLen)
		}
		s.msgs = append(s.msgs, engine.Message{
			Topic: tc.TopicName, QueueID: queueID, Flag: e.flag, SysFlag: h.sysFlag &^ record.SysFlagTxMask,
			BornTimestampMs: h.bornTimestampMs, BornHost: born, ReconsumeTimes: h.reconsumeTimes,
			Body: e.body, Properties: props,
		})
	}
	s.kind, s.topic, s.queueID, s.bodyBytes = kindBatch, tc.TopicName, queueID, len(req.Body)
	return remoting.RespSuccess, ""
}

func growResults(r []engine.PutResult, n int) []engine.PutResult {
	if cap(r) < n {
		return make([]engine.PutResult, n)
	}
	r = r[:n]
	clear(r)
	return r
}
