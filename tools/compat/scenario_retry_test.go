package compat

import (
	"strings"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
)

// retryDelays is the configured table: a retry after reconsume n waits level 3+n, so the
// back-offs are 1 s, 2 s, 3 s.
var retryDelays = []time.Duration{time.Second, time.Second, time.Second, 2 * time.Second, 3 * time.Second}

const retryConf = "messageDelayLevel=1s 1s 1s 2s 3s"

// TestRetryAndDeadLetter: a clustering consumer with WithMaxReconsumeTimes(2) returns
// ConsumeRetryLater for the "fail" series always and for the "once" series the first
// time only; the "ok" series succeeds at once.
//   - "ok": delivered once, ReconsumeTimes 0.
//   - "once": delivered twice, ReconsumeTimes 0 then 1, the second 1 s (level 3) after
//     the first; never in the DLQ.
//   - "fail": delivered three times, ReconsumeTimes 0, 1, 2, 1 s (level 3) then 2 s
//     (level 4) apart, each time under the original topic and MsgId (the client restores
//     the topic from RETRY_TOPIC); then it lands in %DLQ%<group>, where a consumer of
//     another group reads each exactly once with body and properties as sent.
func TestRetryAndDeadLetter(t *testing.T) {
	t.Parallel()
	c := startClusterConf(t, retryConf)
	const (
		topic = "compat-retry"
		group = "compat-retry-g"
		slack = 1500 * time.Millisecond
	)
	c.createTopic(topic, defaultQueues)
	r := newRecorder()
	c.startConsumer(r, consumerSpec{group: group, name: "retry", topic: topic,
		opts: []consumer.Option{consumer.WithMaxReconsumeTimes(2)},
		handle: func(msgs []*primitive.MessageExt) consumer.ConsumeResult {
			for _, m := range msgs {
				id := m.GetProperty(propID)
				if strings.HasPrefix(id, "fail-") || strings.HasPrefix(id, "once-") && m.ReconsumeTimes == 0 {
					return consumer.ConsumeRetryLater
				}
			}
			return consumer.ConsumeSuccess
		}})
	p := c.newProducer()
	l := newLedger()
	ok := sendIDs(t, p, l, topic, "ok", 10, nil)
	once := sendIDs(t, p, l, topic, "once", 10, nil)
	fail := sendIDs(t, p, l, topic, "fail", 10, nil)

	wantTimes := map[string]int{}
	for _, id := range ok {
		wantTimes[id] = 1
	}
	for _, id := range once {
		wantTimes[id] = 2
	}
	for _, id := range fail {
		wantTimes[id] = 3
	}
	total := 10*1 + 10*2 + 10*3
	r.waitCount(t, "deliveries and retries", total, 30*time.Second, nil)
	dlq := "%DLQ%" + group
	c.waitRoute(dlq, 0) // created by the first dead letter
	all := r.quiet(time.Second, nil)

	seq := map[string][]got{}
	for _, g := range all {
		seq[g.id] = append(seq[g.id], g)
	}
	for id, n := range wantTimes {
		s := seq[id]
		if len(s) != n {
			t.Errorf("%s: delivered %d times, want %d", id, len(s), n)
			continue
		}
		for k, g := range s {
			if g.reconsume != int32(k) || g.topic != topic || g.msgID != s[0].msgID {
				t.Errorf("%s delivery %d: reconsumeTimes %d topic %s msgId %s, want %d %s %s", id, k, g.reconsume, g.topic, g.msgID, k, topic, s[0].msgID)
			}
			if k == 0 {
				continue
			}
			// The retry is due at the send-back's store time plus the delay, and store times
			// have millisecond resolution: the store time can read up to 1 ms before the
			// consumer's nanosecond receive time of the delivery that was sent back.
			backoff, want := g.at.Sub(s[k-1].at), retryDelays[2+k-1]
			if backoff < want-time.Millisecond || backoff > want+slack {
				t.Errorf("%s: retry %d came %v after the previous delivery, want %v .. %v", id, k, backoff.Round(time.Millisecond), want, want+slack)
			}
		}
	}
	if len(seq) != len(wantTimes) {
		t.Errorf("deliveries of %d distinct messages, want %d", len(seq), len(wantTimes))
	}

	// The dead letters, read by a consumer of another group.
	d := newRecorder()
	c.startConsumer(d, consumerSpec{group: "compat-retry-dlq-reader", name: "dlq", topic: dlq})
	gs := d.waitCount(t, "dead letters", len(fail), 30*time.Second, nil)
	checkOnce(t, "dead letters", d.quiet(time.Second, nil), fail)
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, g := range gs {
		if g.topic != dlq {
			t.Errorf("dead letter %s: topic %q, want %q", g.id, g.topic, dlq)
		}
		if diff := l.compare(g.msg); diff != "" {
			t.Errorf("dead letter %s differs from what was sent: %s", g.id, diff)
		}
		if rt := g.msg.GetProperty(primitive.PropertyRetryTopic); rt != topic {
			t.Errorf("dead letter %s: RETRY_TOPIC %q, want %q", g.id, rt, topic)
		}
	}
}
