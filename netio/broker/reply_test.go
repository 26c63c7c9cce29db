package broker

import (
	"strings"
	"testing"
	"time"

	"github.com/ringmq/ringmq/engine/record"
	"github.com/ringmq/ringmq/netio/remoting"
)

func TestRequestReply(t *testing.T) {
	tb := startBroker(t, "", nil)
	pushed := make(chan *remoting.Command, 1)
	requester := tb.dial(func(_ *remoting.Client, req *remoting.Command) {
		if req.Code == remoting.ReqPushReplyMessageToClient {
			pushed <- req.Clone()
		}
	})
	wantCode(t, invoke(t, requester, remoting.ReqHeartBeat, nil,
		[]byte(`{"clientID":"req1","producerDataSet":[{"groupName":"rpg"}],"consumerDataSet":[]}`)), remoting.RespSuccess)

	replier := tb.dial(nil)
	replyTopic := DefaultClusterName + "_REPLY_TOPIC"
	p := props("MSG_TYPE", "reply", "CORRELATION_ID", "corr-1", "REPLY_TO_CLIENT", "req1", "TTL", "3")
	fields := func(properties string) []remoting.Field {
		return ext("producerGroup", "replier", "topic", replyTopic, "queueId", "0", "sysFlag", "0",
			"bornTimestamp", "1700000000000", "flag", "0", "properties", properties, "reconsumeTimes", "0",
			"defaultTopic", "TBW102", "defaultTopicQueueNums", "4")
	}
	wantCode(t, invoke(t, replier, remoting.ReqSendReplyMessage, fields(p), []byte("the answer")), remoting.RespSuccess)
	select {
	case req := <-pushed:
		if string(req.Body) != "the answer" || req.ExtString("topic") != replyTopic ||
			!strings.Contains(req.ExtString("properties"), "corr-1") || req.ExtString("storeHost") != tb.addr.String() {
			t.Fatalf("pushed reply: %s", req)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no PUSH_REPLY_MESSAGE_TO_CLIENT within 5 s")
	}
	recs := records(t, pullWait(t, replier, pullOpts{group: "g", topic: replyTopic}).Body)
	if len(recs) != 1 {
		t.Fatalf("stored replies: %d, want 1", len(recs))
	}
	if c, _ := record.Property(recs[0].Properties(), "CORRELATION_ID"); string(c) != "corr-1" {
		t.Fatalf("stored reply properties: %q", recs[0].Properties())
	}
	// A requester that is not connected: refused, not stored.
	gone := props("MSG_TYPE", "reply", "CORRELATION_ID", "corr-2", "REPLY_TO_CLIENT", "nobody")
	wantCode(t, invoke(t, replier, remoting.ReqSendReplyMessage, fields(gone), []byte("lost")), remoting.RespSystemError)
}
