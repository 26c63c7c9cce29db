package compat

// Test messages and the ledger that checks what consumers receive against what was sent.
// Every message carries a unique id in its body and in a user property, so a received
// message is matched to the one sent and compared field by field.

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	rocketmq "github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
)

const propID = "compat-id" // the user property that names a message

// sentMsg is what the producer sent, and where the broker said it went.
type sentMsg struct {
	id       string
	body     []byte
	tag      string
	keys     string // space-separated, as the client stores KEYS
	props    map[string]string
	msgID    string // SendResult.MsgID (UNIQ_KEY); "" for oneway
	offsetID string // SendResult.OffsetMsgID; "" for oneway
	queueID  int
	queueOff int64
	acked    bool // the send returned SEND_OK
}

// newTestMsg builds message number i of a series: body, tag, two keys and three user
// properties that differ per message.
func newTestMsg(topic, series string, i int) (*primitive.Message, *sentMsg) {
	id := fmt.Sprintf("%s-%06d", series, i)
	s := &sentMsg{
		id:   id,
		body: []byte(fmt.Sprintf("body of %s %s", id, strings.Repeat("x", i%97))),
		tag:  fmt.Sprintf("tag%d", i%3),
		keys: fmt.Sprintf("key-%s k%d", id, i%10),
		props: map[string]string{
			propID:        id,
			"series":      series,
			"user-prop-i": strconv.Itoa(i),
		},
	}
	m := primitive.NewMessage(topic, s.body)
	m.WithTag(s.tag)
	m.WithKeys(strings.Fields(s.keys))
	for k, v := range s.props {
		m.WithProperty(k, v)
	}
	return m, s
}

// ledger records sent messages and deliveries, and checks them.
type ledger struct {
	mu        sync.Mutex
	sent      map[string]*sentMsg
	delivered map[string]int                 // id -> times delivered
	by        map[string]map[string]struct{} // consumer -> ids it received
	queues    map[string]map[int]struct{}    // consumer -> queue ids it received from
	first     map[string]delivery            // id -> its first delivery
	bad       []string                       // mismatches found on delivery
	changed   chan struct{}                  // signalled (non-blocking) on every delivery
}

func newLedger() *ledger {
	return &ledger{
		sent:      map[string]*sentMsg{},
		delivered: map[string]int{},
		by:        map[string]map[string]struct{}{},
		queues:    map[string]map[int]struct{}{},
		first:     map[string]delivery{},
		changed:   make(chan struct{}, 1),
	}
}

// delivery is where a consumer saw a message.
type delivery struct {
	msgID, offsetID string
	queueID         int
	queueOff        int64
}

// addSent records s before it is sent (a consumer may see it before the send returns).
func (l *ledger) addSent(s *sentMsg) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sent[s.id] = s
}

// ack records the broker's answer to the send of id.
func (l *ledger) ack(id string, res *primitive.SendResult) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.sent[id]
	s.msgID, s.offsetID = res.MsgID, res.OffsetMsgID
	s.queueID, s.queueOff = res.MessageQueue.QueueId, res.QueueOffset
	s.acked = true
}

// acked returns the ids whose send returned SEND_OK, sorted.
func (l *ledger) acked() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var ids []string
	for id, s := range l.sent {
		if s.acked {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return ids
}

// deliver records msgs received by consumer who and compares each with what was sent.
func (l *ledger) deliver(who string, msgs ...*primitive.MessageExt) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, m := range msgs {
		id := m.GetProperty(propID)
		l.delivered[id]++
		if _, seen := l.first[id]; !seen {
			l.first[id] = delivery{msgID: m.MsgId, offsetID: m.OffsetMsgId, queueID: m.Queue.QueueId, queueOff: m.QueueOffset}
		}
		if l.by[who] == nil {
			l.by[who] = map[string]struct{}{}
			l.queues[who] = map[int]struct{}{}
		}
		l.by[who][id] = struct{}{}
		l.queues[who][m.Queue.QueueId] = struct{}{}
		if diff := l.compare(m); diff != "" && len(l.bad) < 20 {
			l.bad = append(l.bad, fmt.Sprintf("%s (msgId %s): %s", id, m.MsgId, diff))
		}
	}
	select {
	case l.changed <- struct{}{}:
	default:
	}
}

// compare returns how m differs from what was sent with its id ("" = identical).
func (l *ledger) compare(m *primitive.MessageExt) string {
	s, ok := l.sent[m.GetProperty(propID)]
	if !ok {
		// Oneway and async sends are recorded before they go out, so an unknown id is
		// a message nobody sent (or a corrupted property).
		return "not sent by this test"
	}
	var diffs []string
	if string(m.Body) != string(s.body) {
		diffs = append(diffs, fmt.Sprintf("body %q, want %q", m.Body, s.body))
	}
	if m.GetTags() != s.tag {
		diffs = append(diffs, fmt.Sprintf("tag %q, want %q", m.GetTags(), s.tag))
	}
	if m.GetKeys() != s.keys {
		diffs = append(diffs, fmt.Sprintf("keys %q, want %q", m.GetKeys(), s.keys))
	}
	for k, v := range s.props {
		if got := m.GetProperty(k); got != v {
			diffs = append(diffs, fmt.Sprintf("property %s=%q, want %q", k, got, v))
		}
	}
	return strings.Join(diffs, "; ")
}

// received counts the ids in want delivered at least times times.
func (l *ledger) received(want []string, times int) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, id := range want {
		if l.delivered[id] >= times {
			n++
		}
	}
	return n
}

// waitReceived waits until every id in want was delivered, or fails the test after
// timeout naming what is missing.
func (l *ledger) waitReceived(t testing.TB, want []string, timeout time.Duration) {
	t.Helper()
	l.waitDelivered(t, want, 1, timeout)
}

// waitDelivered waits until every id in want was delivered at least times times.
func (l *ledger) waitDelivered(t testing.TB, want []string, times int, timeout time.Duration) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for l.received(want, times) < len(want) {
		select {
		case <-l.changed:
		case <-deadline.C:
			l.mu.Lock()
			var missing []string
			for _, id := range want {
				if l.delivered[id] < times {
					missing = append(missing, id)
				}
			}
			l.mu.Unlock()
			sort.Strings(missing)
			t.Fatalf("after %v: %d of %d messages not delivered %d time(s); first missing: %s",
				timeout, len(missing), len(want), times, strings.Join(missing[:min(10, len(missing))], " "))
		}
	}
}

// duplicates returns the ids in want delivered more than once, with their counts.
func (l *ledger) duplicates(want []string) map[string]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	d := map[string]int{}
	for _, id := range want {
		if n := l.delivered[id]; n > 1 {
			d[id] = n
		}
	}
	return d
}

// checkExact fails the test on any mismatch, on any duplicate among want, and on any
// message delivered elsewhere than its send result said.
func (l *ledger) checkExact(t testing.TB, want []string) {
	t.Helper()
	l.checkOnce(t, want)
	l.checkWhere(t, want)
}

// checkOnce fails the test on any mismatch and on any duplicate among want.
func (l *ledger) checkOnce(t testing.TB, want []string) {
	t.Helper()
	l.mu.Lock()
	bad := append([]string(nil), l.bad...)
	l.mu.Unlock()
	if len(bad) > 0 {
		t.Errorf("%d received messages differ from what was sent:\n%s", len(bad), strings.Join(bad, "\n"))
	}
	if d := l.duplicates(want); len(d) > 0 {
		t.Errorf("%d messages delivered more than once (want exactly once), e.g. %v", len(d), firstOf(d, 10))
	}
}

// checkWhere fails the test when a delivered message's ids, queue or queue offset differ
// from its send result (for the sends that had one: sync and async).
func (l *ledger) checkWhere(t testing.TB, want []string) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var bad []string
	for _, id := range want {
		s, d := l.sent[id], l.first[id]
		if s == nil || !s.acked || l.delivered[id] == 0 {
			continue
		}
		w := delivery{msgID: s.msgID, offsetID: s.offsetID, queueID: s.queueID, queueOff: s.queueOff}
		if d != w && len(bad) < 10 {
			bad = append(bad, fmt.Sprintf("%s: delivered as %+v, send result said %+v", id, d, w))
		}
	}
	if len(bad) > 0 {
		t.Errorf("delivered messages do not match their send results (MsgId, OffsetMsgId, queue, offset):\n%s",
			strings.Join(bad, "\n"))
	}
}

func firstOf(m map[string]int, n int) []string {
	var s []string
	for k, v := range m {
		s = append(s, fmt.Sprintf("%s x%d", k, v))
	}
	sort.Strings(s)
	return s[:min(n, len(s))]
}

// newProducer starts a producer with its own client instance.
func (c *cluster) newProducer(opts ...producer.Option) rocketmq.Producer {
	c.t.Helper()
	base := []producer.Option{
		producer.WithNameServer([]string{c.namesrvAddr}),
		producer.WithGroupName(instance("pg")),
		producer.WithInstanceName(instance("producer")),
		producer.WithRetry(2),
	}
	p, err := rocketmq.NewProducer(append(base, opts...)...)
	if err != nil {
		c.t.Fatalf("new producer: %v", err)
	}
	if err := p.Start(); err != nil {
		c.t.Fatalf("start producer: %v", err)
	}
	c.t.Cleanup(func() { p.Shutdown() })
	return p
}

// newPushConsumer subscribes to every message of topic in group (clustering, from the
// first offset), hands deliveries to l under the consumer's name, and starts it.
func (c *cluster) newPushConsumer(group, name, topic string, l *ledger, opts ...consumer.Option) rocketmq.PushConsumer {
	c.t.Helper()
	base := []consumer.Option{
		consumer.WithNameServer([]string{c.namesrvAddr}),
		consumer.WithGroupName(group),
		consumer.WithInstance(instance(name)),
		consumer.WithConsumerModel(consumer.Clustering),
		consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset),
	}
	pc, err := rocketmq.NewPushConsumer(append(base, opts...)...)
	if err != nil {
		c.t.Fatalf("new push consumer: %v", err)
	}
	err = pc.Subscribe(topic, consumer.MessageSelector{},
		func(ctx context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
			l.deliver(name, msgs...)
			return consumer.ConsumeSuccess, nil
		})
	if err != nil {
		c.t.Fatalf("subscribe %s: %v", topic, err)
	}
	if err := pc.Start(); err != nil {
		c.t.Fatalf("start push consumer %s/%s: %v", group, name, err)
	}
	stopped := false
	c.t.Cleanup(func() {
		if !stopped {
			pc.Shutdown()
		}
	})
	return &stoppable{PushConsumer: pc, stopped: &stopped}
}

// stoppable remembers a Shutdown so the cleanup does not repeat it.
type stoppable struct {
	rocketmq.PushConsumer
	stopped *bool
}

func (s *stoppable) Shutdown() error {
	*s.stopped = true
	return s.PushConsumer.Shutdown()
}

// sendSync sends m (recorded in l as s) and records the broker's answer.
func sendSync(ctx context.Context, p rocketmq.Producer, l *ledger, m *primitive.Message, s *sentMsg) error {
	l.addSent(s)
	res, err := p.SendSync(ctx, m)
	if err != nil {
		return fmt.Errorf("send %s: %w", s.id, err)
	}
	if res.Status != primitive.SendOK {
		return fmt.Errorf("send %s: status %v, want SEND_OK", s.id, res.Status)
	}
	l.ack(s.id, res)
	return nil
}
