package broker

import (
	"github.com/ringmq/ringmq/netio/remoting"
)

// queueRef is the (group,) topic and queue an offset request names.
type queueRef struct {
	group   string
	topic   string
	queueID int32
}

func parseQueueRef(req *remoting.Command, needGroup bool) (queueRef, error) {
	q := queueRef{topic: req.ExtString("topic")}
	if needGroup {
		q.group = req.ExtString("consumerGroup")
	}
	id, err := extInt64Required(req, "queueId")
	if err != nil {
		return q, err
	}
	q.queueID = int32(id)
	return q, nil
}

// handleQueryOffset serves QUERY_CONSUMER_OFFSET (14). A group with no committed offset
// gets QUERY_NOT_FOUND, except on a queue that still starts at offset 0: there it gets
// SUCCESS offset 0, so a brand-new group consumes from the start (Java's rule, PROTOCOL.md
// §2.7; Java also requires the first message to be in memory, see docs/differences.md).
func (b *Broker) handleQueryOffset(c *remoting.Conn, req *remoting.Command) {
	q, err := parseQueueRef(req, true)
	if err != nil {
		b.replyError(c, req, remoting.RespSystemError, "bad query offset request: "+err.Error())
		return
	}
	off, ok := b.meta.QueryOffset(q.topic, q.group, q.queueID)
	if !ok {
		if b.store.MinOffset(q.topic, q.queueID) > 0 {
			b.replyError(c, req, remoting.RespQueryNotFound, "Not found, V3_0_6_SNAPSHOT maybe this group consumer boot first")
			return
		}
		off = 0
	}
	r := c.NewResponse()
	r.Code = remoting.RespSuccess
	r.AddExtInt("offset", off)
	c.Reply(req, r)
}

// handleUpdateOffset serves UPDATE_CONSUMER_OFFSET (15); the Go client sends it "oneway"
// without the oneway flag, and the answer is harmless.
func (b *Broker) handleUpdateOffset(c *remoting.Conn, req *remoting.Command) {
	q, err := parseQueueRef(req, true)
	if err != nil {
		b.replyError(c, req, remoting.RespSystemError, "bad update offset request: "+err.Error())
		return
	}
	off, err := extInt64Required(req, "commitOffset")
	if err != nil || q.group == "" || q.topic == "" {
		b.replyError(c, req, remoting.RespSystemError, "bad update offset request: consumerGroup, topic, queueId and commitOffset are required")
		return
	}
	if err := b.meta.CommitOffset(q.topic, q.group, q.queueID, off); err != nil {
		b.replyError(c, req, remoting.RespSystemBusy, err.Error())
		return
	}
	b.replyOK(c, req)
}

// handleQueueOffset serves GET_MAX_OFFSET (30), GET_MIN_OFFSET (31),
// SEARCH_OFFSET_BY_TIMESTAMP (29) and GET_EARLIEST_MSG_STORETIME (32). The Go client does
// not check the code of 29/30, so `offset` is always present.
func (b *Broker) handleQueueOffset(c *remoting.Conn, req *remoting.Command) {
	q, err := parseQueueRef(req, false)
	if err != nil {
		b.replyError(c, req, remoting.RespSystemError, "bad offset request: "+err.Error())
		return
	}
	r := c.NewResponse()
	r.Code = remoting.RespSuccess
	switch req.Code {
	case remoting.ReqGetMaxOffset:
		r.AddExtInt("offset", b.store.MaxOffset(q.topic, q.queueID))
	case remoting.ReqGetMinOffset:
		r.AddExtInt("offset", b.store.MinOffset(q.topic, q.queueID))
	case remoting.ReqSearchOffsetByTimestamp:
		ts, err := extInt64Required(req, "timestamp")
		if err != nil {
			r.Code = remoting.RespSystemError
			r.SetRemark("bad search offset request: " + err.Error())
			r.AddExtInt("offset", 0)
			break
		}
		r.AddExtInt("offset", b.store.OffsetByTime(q.topic, q.queueID, ts))
	case remoting.ReqGetEarliestMsgStoreTime:
		ts, err := b.store.EarliestStoreTime(q.topic, q.queueID)
		if err != nil {
			r.Code = remoting.RespSystemError
			r.SetRemark("earliest store time: " + err.Error())
			break
		}
		r.AddExtInt("timestamp", ts)
	}
	c.Reply(req, r)
}
