package broker

import (
	"fmt"

	"github.com/ringmq/ringmq/engine"
	"github.com/ringmq/ringmq/engine/meta"
	"github.com/ringmq/ringmq/engine/record"
	"github.com/ringmq/ringmq/netio/remoting"
)

// sendBackRequest is CONSUMER_SEND_MSG_BACK's header (PROTOCOL.md §2.8).
type sendBackRequest struct {
	group             string
	offset            int64
	delayLevel        int64
	originMsgID       string
	maxReconsumeTimes int64 // -1: the group's retryMaxTimes
}

func parseSendBack(req *remoting.Command) (sendBackRequest, error) {
	r := sendBackRequest{group: req.ExtString("group"), originMsgID: req.ExtString("originMsgId")}
	var err error
	if r.offset, err = extInt64Required(req, "offset"); err != nil {
		return r, err
	}
	if r.delayLevel, err = extInt64(req, "delayLevel", 0); err != nil {
		return r, err
	}
	if r.maxReconsumeTimes, err = extInt64(req, "maxReconsumeTimes", -1); err != nil {
		return r, err
	}
	if r.group == "" {
		return r, fmt.Errorf("field group: %w", errHeaderMissing)
	}
	return r, nil
}

// handleSendBack serves CONSUMER_SEND_MSG_BACK (36): the message at the given commit-log
// offset is stored again for group, in %RETRY%<group> after a delay of level
// 3+reconsumeTimes (or the level asked for), or in %DLQ%<group> once it was consumed
// maxReconsumeTimes times or the client asks for the DLQ (delayLevel < 0). Body, flag,
// properties (UNIQ_KEY, so the client's MsgId stays), born host and time are kept;
// RETRY_TOPIC and ORIGIN_MESSAGE_ID record where it came from; reconsumeTimes grows by one.
func (b *Broker) handleSendBack(c *remoting.Conn, req *remoting.Command) {
	sb, err := parseSendBack(req)
	if err != nil {
		b.replyError(c, req, remoting.RespSystemError, "bad send back request: "+err.Error())
		return
	}
	g, _, err := b.meta.EnsureGroup(sb.group)
	if err != nil {
		b.replyError(c, req, remoting.RespSystemBusy, err.Error())
		return
	}
	if sb.maxReconsumeTimes < 0 {
		sb.maxReconsumeTimes = int64(g.RetryMaxTimes)
	}
	rec, release, err := b.store.ReadRecord(sb.offset)
	if err != nil {
		b.replyError(c, req, remoting.RespSystemError, fmt.Sprintf("look message by offset %d failed: %v", sb.offset, err))
		return
	}
	defer release() // Append copies the record before it returns
	v, err := record.Decode(rec)
	if err != nil {
		b.replyError(c, req, remoting.RespSystemError, fmt.Sprintf("message at offset %d does not decode: %v", sb.offset, err))
		return
	}
	s := b.sends.get(req)
	if s == nil {
		b.replyError(c, req, remoting.RespSystemBusy, "[REJECTREQUEST]system busy: too many sends waiting for the disk")
		return
	}
	d, code, remark := b.sendBackDestination(&sb, &g, v.ReconsumeTimes())
	if code != remoting.RespSuccess {
		b.sends.put(s)
		b.replyError(c, req, code, remark)
		return
	}
	s.props = b.buildProps(s.props, v.Properties(), &d)
	s.props = appendOrigin(s.props, v, &sb)
	if len(s.props) > record.MaxPropertiesLen {
		b.sends.put(s)
		b.replyError(c, req, remoting.RespMessageIllegal, "properties too long after adding the retry properties")
		return
	}
	s.kind, s.topic, s.queueID, s.bodyBytes = kindSendBack, d.topic, d.queueID, len(v.Body())
	s.msg = engine.Message{
		Topic: d.topic, QueueID: d.queueID, Flag: v.Flag(), SysFlag: v.SysFlag(),
		BornTimestampMs: v.BornTimestampMs(), BornHost: v.BornHost(), ReconsumeTimes: v.ReconsumeTimes() + 1,
		Body: v.Body(), Properties: s.props,
	}
	b.appendAndAnswer(s, c, req)
}

// sendBackDestination picks the retry (parked in the schedule topic) or DLQ destination.
func (b *Broker) sendBackDestination(sb *sendBackRequest, g *meta.GroupConfig, reconsumeTimes int32) (destination, int16, string) {
	if int64(reconsumeTimes) >= sb.maxReconsumeTimes || sb.delayLevel < 0 {
		dlq := DLQGroupPrefix + sb.group
		if _, err := b.ensureSystemTopic(dlq, dlqQueueNums); err != nil {
			return destination{}, remoting.RespSystemError, err.Error()
		}
		return destination{topic: dlq, queueID: 0, drop: dropDelay | dropReal}, remoting.RespSuccess, ""
	}
	retry := RetryGroupPrefix + sb.group
	if _, err := b.ensureSystemTopic(retry, max(g.RetryQueueNums, 1)); err != nil {
		return destination{}, remoting.RespSystemError, err.Error()
	}
	level := int32(sb.delayLevel)
	if level == 0 {
		level = retryDelayLevel0 + reconsumeTimes
	}
	level = min(level, MaxDelayLevel)
	if _, err := b.ensureSystemTopic(TopicSchedule, scheduleQueueNums); err != nil {
		return destination{}, remoting.RespSystemError, err.Error()
	}
	return destination{topic: TopicSchedule, queueID: level - 1, realTopic: retry, realQueueID: 0,
		parked: true, delayLevel: level}, remoting.RespSuccess, ""
}

// appendOrigin adds RETRY_TOPIC (the first topic) and ORIGIN_MESSAGE_ID (the first id)
// unless the message already carries them from an earlier send-back.
func appendOrigin(props []byte, v record.View, sb *sendBackRequest) []byte {
	orig := v.Properties()
	if _, ok := record.Property(orig, record.PropRetryTopic); !ok {
		props = appendProp(props, record.PropRetryTopic, v.Topic())
	}
	if _, ok := record.Property(orig, record.PropOriginMessageID); !ok {
		switch uniq, hasUniq := record.Property(orig, record.PropUniqKey); {
		case sb.originMsgID != "":
			props = appendPropString(props, record.PropOriginMessageID, sb.originMsgID)
		case hasUniq:
			props = appendProp(props, record.PropOriginMessageID, uniq)
		default:
			id := record.OffsetMsgID(v.StoreHost(), v.PhysicalOffset())
			props = appendProp(props, record.PropOriginMessageID, record.AppendOffsetMsgIDHex(nil, id))
		}
	}
	return props
}
