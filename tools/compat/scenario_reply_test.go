package compat

import (
	"context"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
)

// TestRequestReply: producer.Request (a send with CORRELATION_ID, REPLY_TO_CLIENT and
// TTL) to a topic whose consumer answers with consumer.CreateReplyMessage sent by its own
// producer (SEND_REPLY_MESSAGE, 324, to <cluster>_REPLY_TOPIC); the broker pushes the
// reply to the requester (PUSH_REPLY_MESSAGE_TO_CLIENT, 326). 20 requests in sequence
// each get their own reply (body and correlation id), each within a second. A request
// nobody answers fails after its 1 s TTL.
//
// Client workarounds: v2.1.2's CreateReplyMessage parses the reply body as properties
// (replayMessage.UnmarshalProperties(body)) and leaves the body empty, so the replier sets
// the body itself after calling it. And Request's context must outlive the call: the
// request goes out as an async send whose 3 s wait is derived from it, and the reply can
// arrive before the client has handled the send's answer; a context cancelled as soon
// as Request returns then ends that wait with no answer, and the client's callback
// dereferences the missing answer (a recovered nil-pointer panic in ProcessSendResponse).
// Request has its own timeout (its ttl argument), so the test passes
// context.Background().
func TestRequestReply(t *testing.T) {
	t.Parallel()
	c := startCluster(t, clusterOptions{})
	const (
		topic   = "compat-request"
		silent  = "compat-request-silent"
		perCall = 5 * time.Second
	)
	c.createTopic(topic, defaultQueues)
	c.createTopic(silent, defaultQueues)
	c.waitRoute(clusterName+"_REPLY_TOPIC", 0)
	replier := c.newProducer()
	var replyErrs lockedLog
	r := newRecorder()
	c.startConsumer(r, consumerSpec{group: topic + "-replier", name: "replier", topic: topic,
		handle: func(msgs []*primitive.MessageExt) consumer.ConsumeResult {
			for _, m := range msgs {
				reply, err := consumer.CreateReplyMessage(m, nil)
				if err != nil {
					replyErrs.add("%s: create reply: %v", m.GetProperty(propID), err)
					continue
				}
				reply.Body = []byte("reply to " + string(m.Body))
				reply.WithProperty(propID, "reply-"+m.GetProperty(propID))
				ctx, cancel := context.WithTimeout(context.Background(), perCall)
				if _, err := replier.SendSync(ctx, reply); err != nil {
					replyErrs.add("%s: send reply: %v", m.GetProperty(propID), err)
				}
				cancel()
			}
			return consumer.ConsumeSuccess
		}})
	requester := c.newProducer()
	for i := range 20 {
		m, s := newTestMsg(topic, "request", i)
		start := time.Now()
		reply, err := requester.Request(context.Background(), perCall, m)
		rtt := time.Since(start)
		if err != nil {
			t.Fatalf("request %s: %v after %v; replier errors: %s", s.id, err, rtt, replyErrs.String())
		}
		want := "reply to " + string(s.body)
		if string(reply.Body) != want || reply.GetProperty(propID) != "reply-"+s.id ||
			reply.GetProperty(primitive.PropertyCorrelationID) != m.GetProperty(primitive.PropertyCorrelationID) {
			t.Fatalf("request %s: reply body %q id %q correlation %q, want %q %q %q", s.id, reply.Body,
				reply.GetProperty(propID), reply.GetProperty(primitive.PropertyCorrelationID),
				want, "reply-"+s.id, m.GetProperty(primitive.PropertyCorrelationID))
		}
		if rtt > time.Second {
			t.Errorf("request %s: reply after %v, want within 1s", s.id, rtt)
		}
	}
	if gs := r.snapshot(nil); len(gs) != 20 {
		t.Errorf("replier saw %d requests, want 20", len(gs))
	}

	const ttl = time.Second
	m, _ := newTestMsg(silent, "unanswered", 0)
	start := time.Now()
	reply, err := requester.Request(context.Background(), ttl, m)
	if took := time.Since(start); err == nil || took < ttl || took > ttl+2*time.Second {
		t.Errorf("unanswered request: reply %v err %v after %v; want an error after %v", reply, err, took, ttl)
	} else {
		t.Logf("unanswered request: %v after %v", err, took.Round(time.Millisecond))
	}
}
