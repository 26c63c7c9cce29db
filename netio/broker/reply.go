package broker

import (
	"fmt"
	"strconv"

	"github.com/ringmq/ringmq/engine/record"
	"github.com/ringmq/ringmq/netio/remoting"
)

// Request-reply (RocketMQ 4.6+): a requester sends a message with CORRELATION_ID,
// REPLY_TO_CLIENT (its client id) and TTL; the replier answers with SEND_REPLY_MESSAGE
// (324, V1 header names; 325, V2) to "<cluster>_REPLY_TOPIC"; the broker pushes the reply
// to the requester's connection as PUSH_REPLY_MESSAGE_TO_CLIENT (326) and stores it.

// replyTopicSuffix makes the reply topic of a cluster: "<cluster>_REPLY_TOPIC".
const replyTopicSuffix = "_REPLY_TOPIC"

// Property keys of request-reply.
const (
	propReplyToClient = "REPLY_TO_CLIENT"
	propCorrelationID = "CORRELATION_ID"
)

// replyTopic is this cluster's reply topic.
func (b *Broker) replyTopic() string { return b.cfg.BrokerClusterName + replyTopicSuffix }

// handleSendReply serves SEND_REPLY_MESSAGE (324) and SEND_REPLY_MESSAGE_V2 (325): the reply
// is pushed to the requester at once, then stored and answered like a send once durable.
// A reply whose requester is not connected is answered SYSTEM_ERROR and not stored.
func (b *Broker) handleSendReply(c *remoting.Conn, req *remoting.Command) {
	var h sendHeader
	if err := parseSendHeader(req, req.Code == remoting.ReqSendReplyMessageV2, &h); err != nil {
		b.replyError(c, req, remoting.RespSystemError, "bad reply request: "+err.Error())
		return
	}
	clientID, ok := record.Property(h.properties, propReplyToClient)
	if !ok || len(clientID) == 0 {
		b.replyError(c, req, remoting.RespMessageIllegal, "reply message without "+propReplyToClient)
		return
	}
	to, ok := b.clients.connOfClient(string(clientID))
	if !ok {
		b.replyError(c, req, remoting.RespSystemError, fmt.Sprintf("push reply message fail: the requester %s is not connected to this broker", clientID))
		return
	}
	if err := to.SendRequestOneway(remoting.ReqPushReplyMessageToClient, b.pushReplyExt(c, &h), req.Body); err != nil {
		b.replyError(c, req, remoting.RespSystemError, fmt.Sprintf("push reply message to %s failed: %v", clientID, err))
		return
	}
	b.handleSend(c, req)
}

// pushReplyExt is PUSH_REPLY_MESSAGE_TO_CLIENT's header (Java ReplyMessageRequestHeader).
func (b *Broker) pushReplyExt(c *remoting.Conn, h *sendHeader) []remoting.Field {
	f := func(k string, v []byte) remoting.Field { return remoting.Field{Key: []byte(k), Value: v} }
	i32 := func(v int32) []byte { return strconv.AppendInt(nil, int64(v), 10) }
	return []remoting.Field{
		f("producerGroup", h.producerGroup), f("topic", h.topic), f("defaultTopic", h.defaultTopic),
		f("defaultTopicQueueNums", i32(h.defaultTopicQueueNums)), f("queueId", i32(max(h.queueID, 0))),
		f("sysFlag", i32(h.sysFlag)), f("bornTimestamp", strconv.AppendInt(nil, h.bornTimestampMs, 10)),
		f("flag", i32(h.flag)), f("properties", h.properties), f("reconsumeTimes", i32(h.reconsumeTimes)),
		f("unitMode", []byte("false")), f("bornHost", []byte(c.RemoteAddr().String())),
		f("storeHost", []byte(b.storeHost.String())), f("storeTimestamp", strconv.AppendInt(nil, nowMs(), 10)),
	}
}
