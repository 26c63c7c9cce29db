package main

// Reading a queue from an offset with PULL_MESSAGE (no suspend, no commit), and sending one
// message with SEND_MESSAGE: what dlq list and dlq resend use.

import (
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/ringmq/ringmq/engine/record"
	"github.com/ringmq/ringmq/netio/remoting"
)

// ctlGroup is the consumer and producer group ringmqctl names in its pulls and sends.
const ctlGroup = "ringmqctl"

// pullBatchMsgs is how many records one PULL_MESSAGE asks for.
const pullBatchMsgs = 32

// pullSysFlagSubscription is PullSysFlag's SUBSCRIPTION bit: the pull carries its own
// subscription ("*"). Without it a Java broker looks up the group's subscription from its
// heartbeats and answers SUBSCRIPTION_NOT_EXIST for a group that sends none, as ringmqctl.
// SUSPEND (0x2) and COMMIT_OFFSET (0x1) stay clear: answer at once, commit nothing.
const pullSysFlagSubscription = 0x4

// readQueue returns up to maxMsgs records of topic's queue from offset on, pulling until
// the queue has no more (or the broker stops moving forward). Each pull moves the offset
// forward or ends the loop, so it ends.
func (c *conn) readQueue(addr, topic string, queueID int, offset int64, maxMsgs int) ([]record.View, error) {
	var out []record.View
	for len(out) < maxMsgs {
		ext := map[string]string{
			"consumerGroup": ctlGroup, "topic": topic, "queueId": strconv.Itoa(queueID),
			"queueOffset": strconv.FormatInt(offset, 10), "maxMsgNums": strconv.Itoa(min(pullBatchMsgs, maxMsgs-len(out))),
			"sysFlag": strconv.Itoa(pullSysFlagSubscription), "commitOffset": "0", "suspendTimeoutMillis": "0",
			"subscription": "*", "subVersion": "0", "expressionType": "TAG",
		}
		resp, err := c.call(addr, remoting.ReqPullMessage, ext, nil,
			remoting.RespPullNotFound, remoting.RespPullRetryImmediately, remoting.RespPullOffsetMoved)
		if err != nil {
			return nil, err
		}
		next, err := resp.ExtInt64("nextBeginOffset")
		if err != nil {
			return nil, fmt.Errorf("PULL_MESSAGE %s/%d at %d: %w", topic, queueID, offset, err)
		}
		switch resp.Code {
		case remoting.RespPullNotFound:
			return out, nil
		case remoting.RespSuccess:
			vs, err := decodeRecords(resp.Body)
			if err != nil {
				return nil, fmt.Errorf("PULL_MESSAGE %s/%d at %d: %w", topic, queueID, offset, err)
			}
			out = append(out, vs[:min(len(vs), maxMsgs-len(out))]...)
		}
		if next <= offset { // an offset past the end, or no progress: done
			return out, nil
		}
		offset = next
	}
	return out, nil
}

// sendTarget is one writable queue of a topic on a master.
type sendTarget struct {
	broker, addr string
	queueID      int
}

// writableQueues lists topic's writable queues on masters, by broker name then queue.
func (c *conn) writableQueues(topic string) ([]sendTarget, error) {
	r, err := c.route(topic)
	if err != nil {
		return nil, err
	}
	sort.Slice(r.QueueDatas, func(i, j int) bool { return r.QueueDatas[i].BrokerName < r.QueueDatas[j].BrokerName })
	var out []sendTarget
	for _, q := range r.QueueDatas {
		addr := r.masterOf(q.BrokerName)
		if q.Perm&2 == 0 || addr == "" {
			continue
		}
		for id := range q.WriteQueueNums {
			out = append(out, sendTarget{broker: q.BrokerName, addr: addr, queueID: id})
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("topic %q has no writable queue on a master", topic)
	}
	return out, nil
}

// sendResult is what a SEND_MESSAGE answer says.
type sendResult struct {
	Status      string `json:"status"`
	Topic       string `json:"topic"`
	Broker      string `json:"broker"`
	QueueID     int32  `json:"queueId"`
	QueueOffset int64  `json:"queueOffset"`
	OffsetMsgID string `json:"offsetMsgId"`
}

// sendStatus names the answer codes a producer counts as sent.
var sendStatus = map[int16]string{
	remoting.RespSuccess:           "SEND_OK",
	remoting.RespFlushDiskTimeout:  "FLUSH_DISK_TIMEOUT",
	remoting.RespFlushSlaveTimeout: "FLUSH_SLAVE_TIMEOUT",
	remoting.RespSlaveNotAvailable: "SLAVE_NOT_AVAILABLE",
}

// send stores one message on t with SEND_MESSAGE and the V1 header the Go client sends
// (PROTOCOL.md §2.2).
func (c *conn) send(t sendTarget, topic string, flag, sysFlag int32, props, body []byte) (sendResult, error) {
	ext := map[string]string{
		"producerGroup": ctlGroup, "topic": topic, "queueId": strconv.Itoa(t.queueID),
		"sysFlag": strconv.Itoa(int(sysFlag)), "bornTimestamp": strconv.FormatInt(time.Now().UnixMilli(), 10),
		"flag": strconv.Itoa(int(flag)), "properties": string(props), "reconsumeTimes": "0",
		"unitMode": "false", "maxReconsumeTimes": "0", "batch": "false",
		"defaultTopic": "TBW102", "defaultTopicQueueNums": "4",
	}
	resp, err := c.call(t.addr, remoting.ReqSendMessage, ext, body,
		remoting.RespFlushDiskTimeout, remoting.RespFlushSlaveTimeout, remoting.RespSlaveNotAvailable)
	if err != nil {
		return sendResult{}, err
	}
	res := sendResult{Status: sendStatus[resp.Code], Topic: topic, Broker: t.broker, OffsetMsgID: resp.ExtString("msgId")}
	if res.QueueID, err = resp.ExtInt32("queueId"); err != nil {
		return res, fmt.Errorf("SEND_MESSAGE answer of %s: %w", t.addr, err)
	}
	if res.QueueOffset, err = resp.ExtInt64("queueOffset"); err != nil {
		return res, fmt.Errorf("SEND_MESSAGE answer of %s: %w", t.addr, err)
	}
	return res, nil
}
