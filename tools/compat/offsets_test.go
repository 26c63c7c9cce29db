package compat

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	rocketmq "github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
)

// TestPullConsumerExplicitOffsets: the v2.1.2 pull consumer's PullFrom reads a queue
// from an explicit offset: exactly the messages stored at offsets [from, from+n), in
// order, with the next offset and the queue's bounds; an offset past the end is
// answered OFFSET_ILLEGAL with the end as the next offset (RocketMQ's PULL_OFFSET_MOVED).
func TestPullConsumerExplicitOffsets(t *testing.T) {
	c := startCluster(t, clusterOptions{})
	const (
		topic  = "compat-pull"
		queues = 2
		total  = 100
	)
	mqs := c.createTopic(topic, queues)
	l := newLedger()
	p := c.newProducer()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for i := range total {
		m, s := newTestMsg(topic, "pull", i)
		if err := sendSync(ctx, p, l, m, s); err != nil {
			t.Fatal(err)
		}
	}
	// byQueue[q][offset] = id, from the send results.
	byQueue := map[int]map[int64]string{}
	for _, id := range l.acked() {
		s := l.sent[id]
		if byQueue[s.queueID] == nil {
			byQueue[s.queueID] = map[int64]string{}
		}
		byQueue[s.queueID][s.queueOff] = id
	}

	pc, err := rocketmq.NewPullConsumer(
		consumer.WithNameServer([]string{c.namesrvAddr}),
		consumer.WithGroupName("compat-pull-g"),
		consumer.WithInstance(instance("pull")),
	)
	if err != nil {
		t.Fatalf("new pull consumer: %v", err)
	}
	if err := pc.Subscribe(topic, consumer.MessageSelector{}); err != nil {
		t.Fatal(err)
	}
	if err := pc.Start(); err != nil {
		t.Fatalf("start pull consumer: %v", err)
	}
	defer pc.Shutdown()

	for _, mq := range mqs {
		count := int64(len(byQueue[mq.QueueId]))
		if count < 20 {
			t.Fatalf("queue %d got %d messages, want at least 20 (round-robin over %d queues)", mq.QueueId, count, queues)
		}
		for _, from := range []int64{0, 7, count - 5} {
			const n = 10
			res, err := pc.PullFrom(ctx, mq, from, n)
			if err != nil {
				t.Fatalf("PullFrom(queue %d, offset %d): %v", mq.QueueId, from, err)
			}
			want := min(n, count-from)
			if res.Status != primitive.PullFound {
				t.Fatalf("PullFrom(queue %d, offset %d): status %v, want FOUND", mq.QueueId, from, res.Status)
			}
			msgs := res.GetMessageExts()
			if int64(len(msgs)) != want || res.NextBeginOffset != from+want ||
				res.MinOffset != 0 || res.MaxOffset != count {
				t.Fatalf("PullFrom(queue %d, offset %d, %d): got %d messages, next %d, min %d, max %d; want %d, %d, 0, %d",
					mq.QueueId, from, n, len(msgs), res.NextBeginOffset, res.MinOffset, res.MaxOffset, want, from+want, count)
			}
			for i, m := range msgs {
				off := from + int64(i)
				if m.QueueOffset != off || m.GetProperty(propID) != byQueue[mq.QueueId][off] {
					t.Errorf("queue %d message %d: offset %d id %s, want offset %d id %s",
						mq.QueueId, i, m.QueueOffset, m.GetProperty(propID), off, byQueue[mq.QueueId][off])
				}
				l.deliver("pull", m)
			}
		}
		res, err := pc.PullFrom(ctx, mq, count+5, 10)
		if err != nil {
			t.Fatalf("PullFrom past the end of queue %d: %v", mq.QueueId, err)
		}
		if res.Status != primitive.PullOffsetIllegal || res.NextBeginOffset != count {
			t.Errorf("PullFrom(queue %d, offset %d): status %v next %d, want OFFSET_ILLEGAL next %d",
				mq.QueueId, count+5, res.Status, res.NextBeginOffset, count)
		}
	}
	l.mu.Lock()
	bad := l.bad
	l.mu.Unlock()
	if len(bad) > 0 {
		t.Errorf("pulled messages differ from what was sent: %v", bad)
	}
}

// TestOffsetsSurviveRestart: a push consumer consumes everything and shuts down; the
// offsets the broker then holds for the group are read (ringmqctl offsets); the broker
// is restarted (SIGTERM, exit status 0, same data); the same group then receives every
// message sent after the restart exactly once, and of the messages before it exactly
// the uncommitted tail of each queue (offsets from the committed one to the end), once.
//
// The tail is usually empty: the client commits every 5 s and at shutdown, but its
// shutdown commit is a oneway request written just before it closes the connection,
// so the last commit may not arrive.
func TestOffsetsSurviveRestart(t *testing.T) { testOffsetsAcrossRestart(t, false) }

// TestOffsetsSurviveBrokerKill: as TestOffsetsSurviveRestart, but the broker is
// SIGKILLed once the offsets read are in its offset file (config/consumerOffset.json,
// RocketMQ's layout, written every 5 s), so the same exact outcome is required.
func TestOffsetsSurviveBrokerKill(t *testing.T) { testOffsetsAcrossRestart(t, true) }

func testOffsetsAcrossRestart(t *testing.T, kill bool) {
	c := startCluster(t, clusterOptions{})
	const (
		topic = "compat-offsets"
		group = "compat-offsets-g"
	)
	c.createTopic(topic, defaultQueues)
	l := newLedger()
	p := c.newProducer()
	first := sendSeries(t, p, l, topic, "before", 200)

	pc := c.newPushConsumer(group, "first", topic, l)
	l.waitReceived(t, first, 30*time.Second)
	l.checkExact(t, first)
	if err := pc.Shutdown(); err != nil {
		t.Fatalf("consumer shutdown: %v", err)
	}
	committed, maxOffsets := c.committedOffsets(group, topic)
	anyCommitted := false
	for q, off := range committed {
		if off > maxOffsets[q] {
			t.Fatalf("queue %d: committed offset %d past the max offset %d", q, off, maxOffsets[q])
		}
		anyCommitted = anyCommitted || off > 0
	}
	if !anyCommitted {
		t.Fatalf("no offset committed for %s after consuming 200 messages: %v", group, committed)
	}

	if kill {
		c.waitOffsetsPersisted(topic, group, committed)
	}
	c.restartBroker(kill)

	// The new messages land in every queue after the old ones; a queue is pulled in
	// order, so once they have all arrived every redelivery of an old one has too.
	second := sendSeries(t, p, l, topic, "after", 100)
	c.newPushConsumer(group, "second", topic, l)
	l.waitReceived(t, second, 30*time.Second)
	l.checkExact(t, second)

	again := map[int][]int64{} // queue -> old offsets delivered twice, sorted
	l.mu.Lock()
	var wrong []string
	for _, id := range first {
		s := l.sent[id]
		switch n := l.delivered[id]; {
		case n == 2:
			again[s.queueID] = append(again[s.queueID], s.queueOff)
		case n != 1 && len(wrong) < 10:
			wrong = append(wrong, fmt.Sprintf("%s (queue %d offset %d) delivered %d times", id, s.queueID, s.queueOff, n))
		}
	}
	l.mu.Unlock()
	for q, offs := range again {
		slices.Sort(offs)
		from, end := offs[0], maxOffsets[q]
		contiguous := int64(len(offs)) == end-from && offs[len(offs)-1] == end-1
		switch {
		case !contiguous:
			wrong = append(wrong, fmt.Sprintf("queue %d: old offsets %v delivered again, want a contiguous tail ending at %d", q, offs, end-1))
		case from != committed[q]:
			wrong = append(wrong, fmt.Sprintf("queue %d: redelivery from offset %d, want the committed %d", q, from, committed[q]))
		}
	}
	for q, off := range committed {
		if off < maxOffsets[q] && len(again[q]) == 0 {
			wrong = append(wrong, fmt.Sprintf("queue %d: committed %d of %d, but nothing delivered again", q, off, maxOffsets[q]))
		}
	}
	if len(wrong) > 0 {
		t.Errorf("after the restart (committed offsets before it %v, max %v):\n%s",
			committed, maxOffsets, strings.Join(wrong, "\n"))
	}
	t.Logf("committed offsets before the restart %v of %v; old offsets delivered again per queue: %v",
		committed, maxOffsets, again)
}

// waitOffsetsPersisted waits until the broker's offset file holds want for topic@group
// (RocketMQ's config/consumerOffset.json: {"offsetTable":{"topic@group":{"0":42}}}).
func (c *cluster) waitOffsetsPersisted(topic, group string, want map[int]int64) {
	c.t.Helper()
	path := filepath.Join(c.dir, "store", "config", "consumerOffset.json")
	waitFor(c.t, 30*time.Second, "offsets in "+path, func() error {
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		var f struct {
			OffsetTable map[string]map[string]int64 `json:"offsetTable"`
		}
		if err := json.Unmarshal(b, &f); err != nil {
			return fmt.Errorf("%w in %q", err, b)
		}
		got := f.OffsetTable[topic+"@"+group]
		for q, off := range want {
			if off >= 0 && got[strconv.Itoa(q)] != off {
				return fmt.Errorf("file has %v, want %v", got, want)
			}
		}
		return nil
	})
}

// sendSeries sync-sends n messages of a series, failing the test on any error.
func sendSeries(t testing.TB, p rocketmq.Producer, l *ledger, topic, series string, n int) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ids := make([]string, 0, n)
	for i := range n {
		m, s := newTestMsg(topic, series, i)
		if err := sendSync(ctx, p, l, m, s); err != nil {
			t.Fatalf("%v", fmt.Errorf("series %s: %w", series, err))
		}
		ids = append(ids, s.id)
	}
	return ids
}
