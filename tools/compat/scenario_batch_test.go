package compat

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
)

// TestBatchSend: p.SendSync(ctx, m1, ..., mN) (SEND_BATCH_MESSAGE, 320) with 1,000 small
// messages and then 250 messages of 16,000 bytes (4,000,000 body bytes, just under the
// 4 MiB limit). Each batch lands in one queue; its send result names the first queue
// offset and one offset message id per element. An orderly consumer receives every
// element exactly once, in send order, each at offset first+i with the i-th offset
// message id of the result and the element's own body and properties.
func TestBatchSend(t *testing.T) {
	t.Parallel()
	c := startCluster(t, clusterOptions{})
	const topic = "compat-batch"
	c.createTopic(topic, defaultQueues)
	r := newRecorder()
	c.startConsumer(r, consumerSpec{group: "compat-batch-g", name: "batch", topic: topic,
		opts: []consumer.Option{consumer.WithConsumerOrder(true), consumer.WithPullBatchSize(32)}})
	p := c.newProducer()

	batches := []struct {
		series   string
		n        int
		bodySize int // 0 = newTestMsg's small body
	}{
		{"small", 1000, 0},
		{"large", 250, 16000},
	}
	for _, b := range batches {
		start := time.Now()
		msgs := make([]*primitive.Message, b.n)
		ids := make([]string, b.n)
		bodies := map[string]string{}
		for i := range b.n {
			m, s := newTestMsg(topic, b.series, i)
			if b.bodySize > 0 {
				m.Body = []byte(fmt.Sprintf("%s-%06d|%s", b.series, i, strings.Repeat("b", b.bodySize-14-len(b.series))))
			}
			msgs[i], ids[i], bodies[s.id] = m, s.id, string(m.Body)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		res, err := p.SendSync(ctx, msgs...)
		cancel()
		if err != nil {
			t.Fatalf("batch %s (%d messages): %v", b.series, b.n, err)
		}
		offIDs := strings.Split(res.OffsetMsgID, ",")
		if res.Status != primitive.SendOK || len(offIDs) != b.n {
			t.Fatalf("batch %s: status %v with %d offset msg ids, want SEND_OK and %d", b.series, res.Status, len(offIDs), b.n)
		}
		q, first := res.MessageQueue.QueueId, res.QueueOffset
		gs := r.waitCount(t, "batch "+b.series, b.n, 30*time.Second, func(g got) bool {
			return strings.HasPrefix(g.id, b.series+"-")
		})
		checkOnce(t, "batch "+b.series, gs, ids)
		for i, g := range gs {
			switch {
			case g.id != ids[i]:
				t.Fatalf("batch %s: delivery %d is %s, want %s (send order)", b.series, i, g.id, ids[i])
			case g.queueID != q || g.queueOff != first+int64(i):
				t.Fatalf("batch %s: %s at queue %d offset %d, want queue %d offset %d", b.series, g.id, g.queueID, g.queueOff, q, first+int64(i))
			case g.offsetID != offIDs[i]:
				t.Fatalf("batch %s: %s has offset msg id %s, the send result's %d-th is %s", b.series, g.id, g.offsetID, i, offIDs[i])
			case string(g.msg.Body) != bodies[g.id]:
				t.Fatalf("batch %s: %s body differs (%d bytes, want %d)", b.series, g.id, len(g.msg.Body), len(bodies[g.id]))
			case g.msg.GetProperty("user-prop-i") != fmt.Sprint(i) || g.msg.GetTags() != fmt.Sprintf("tag%d", i%3):
				t.Fatalf("batch %s: %s properties %v", b.series, g.id, g.msg.GetProperties())
			}
		}
		t.Logf("batch %s: %d messages to queue %d offsets %d..%d, consumed in order in %v",
			b.series, b.n, q, first, first+int64(b.n)-1, time.Since(start).Round(time.Millisecond))
	}
}
