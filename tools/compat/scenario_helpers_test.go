package compat

// Helpers for the scenario tests (scenario_*_test.go): a cluster with extra broker.conf
// lines, a recorder of deliveries with their receive times, a push consumer with any
// selector and handler, and ringmqctl.

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	rocketmq "github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
)

// startClusterConf starts a namesrv and a broker whose broker.conf has the harness's
// lines plus confLines.
func startClusterConf(t testing.TB, confLines ...string) *cluster {
	t.Helper()
	return startCluster(t, clusterOptions{extraConf: strings.Join(confLines, "\n")})
}

// got is one delivery as a consumer saw it.
type got struct {
	who       string
	id        string // the compat-id property ("" if absent)
	topic     string // as the handler saw it (the client restores RETRY_TOPIC)
	queueID   int
	queueOff  int64
	reconsume int32
	msgID     string
	offsetID  string
	born      time.Time
	stored    time.Time
	at        time.Time // when the handler ran
	msg       *primitive.MessageExt
}

// recorder keeps every delivery in arrival order.
type recorder struct {
	mu      sync.Mutex
	all     []got
	changed chan struct{}
}

func newRecorder() *recorder { return &recorder{changed: make(chan struct{}, 1)} }

func (r *recorder) add(who string, msgs ...*primitive.MessageExt) {
	now := time.Now()
	r.mu.Lock()
	for _, m := range msgs {
		r.all = append(r.all, got{
			who: who, id: m.GetProperty(propID), topic: m.Topic,
			queueID: m.Queue.QueueId, queueOff: m.QueueOffset, reconsume: m.ReconsumeTimes,
			msgID: m.MsgId, offsetID: m.OffsetMsgId,
			born: time.UnixMilli(m.BornTimestamp), stored: time.UnixMilli(m.StoreTimestamp),
			at: now, msg: m,
		})
	}
	r.mu.Unlock()
	select {
	case r.changed <- struct{}{}:
	default:
	}
}

// snapshot returns the deliveries so far that match keep (nil = all).
func (r *recorder) snapshot(keep func(got) bool) []got {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []got
	for _, g := range r.all {
		if keep == nil || keep(g) {
			out = append(out, g)
		}
	}
	return out
}

// waitCount waits until at least n deliveries match keep and returns them; it fails the
// test after timeout.
func (r *recorder) waitCount(t testing.TB, what string, n int, timeout time.Duration, keep func(got) bool) []got {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		s := r.snapshot(keep)
		if len(s) >= n {
			return s
		}
		select {
		case <-r.changed:
		case <-deadline.C:
			t.Fatalf("%s: %d of %d deliveries after %v", what, len(s), n, timeout)
		}
	}
}

// quiet waits for d and returns the deliveries matching keep: used to show that
// nothing more arrives (a negative can only be observed over a window).
func (r *recorder) quiet(d time.Duration, keep func(got) bool) []got {
	<-time.After(d)
	return r.snapshot(keep)
}

// byWho keeps the deliveries of consumer who.
func byWho(who string) func(got) bool { return func(g got) bool { return g.who == who } }

// idCounts returns id -> deliveries.
func idCounts(gs []got) map[string]int {
	m := map[string]int{}
	for _, g := range gs {
		m[g.id]++
	}
	return m
}

// checkOnce fails the test unless gs holds exactly the ids in want, each once.
func checkOnce(t testing.TB, what string, gs []got, want []string) {
	t.Helper()
	counts := idCounts(gs)
	var missing, extra []string
	for _, id := range want {
		switch n := counts[id]; {
		case n == 0:
			missing = append(missing, id)
		case n > 1:
			extra = append(extra, fmt.Sprintf("%s x%d", id, n))
		}
		delete(counts, id)
	}
	for id, n := range counts {
		extra = append(extra, fmt.Sprintf("unexpected %q x%d", id, n))
	}
	sort.Strings(missing)
	sort.Strings(extra)
	if len(missing) > 0 || len(extra) > 0 {
		t.Errorf("%s: want %d messages exactly once; missing %d %v; wrong %d %v", what, len(want),
			len(missing), missing[:min(10, len(missing))], len(extra), extra[:min(10, len(extra))])
	}
}

// consumerSpec describes a push consumer for startConsumer.
type consumerSpec struct {
	group    string
	name     string // instance role; deliveries are recorded under it
	topic    string
	selector consumer.MessageSelector
	// handle decides the result per message batch (nil = ConsumeSuccess); it runs after
	// the batch is recorded.
	handle func(msgs []*primitive.MessageExt) consumer.ConsumeResult
	opts   []consumer.Option
}

// startConsumer starts a push consumer (clustering, from the first offset, unless opts
// say otherwise) recording into r. It is shut down at cleanup unless shut down before.
func (c *cluster) startConsumer(r *recorder, s consumerSpec) rocketmq.PushConsumer {
	c.t.Helper()
	pc, err := c.tryConsumer(r, s)
	if err != nil {
		c.t.Fatal(err)
	}
	return pc
}

// tryConsumer is startConsumer returning the Subscribe or Start error.
func (c *cluster) tryConsumer(r *recorder, s consumerSpec) (rocketmq.PushConsumer, error) {
	base := []consumer.Option{
		consumer.WithNameServer([]string{c.namesrvAddr}),
		consumer.WithGroupName(s.group),
		consumer.WithInstance(instance(s.name)),
		consumer.WithConsumerModel(consumer.Clustering),
		consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset),
	}
	pc, err := rocketmq.NewPushConsumer(append(base, s.opts...)...)
	if err != nil {
		return nil, fmt.Errorf("new push consumer %s: %w", s.name, err)
	}
	err = pc.Subscribe(s.topic, s.selector,
		func(ctx context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
			r.add(s.name, msgs...)
			if s.handle != nil {
				return s.handle(msgs), nil
			}
			return consumer.ConsumeSuccess, nil
		})
	if err != nil {
		return nil, fmt.Errorf("subscribe %s to %s: %w", s.name, s.topic, err)
	}
	if err := pc.Start(); err != nil {
		pc.Shutdown()
		return nil, fmt.Errorf("start push consumer %s/%s: %w", s.group, s.name, err)
	}
	stopped := false
	c.t.Cleanup(func() {
		if !stopped {
			pc.Shutdown()
		}
	})
	return &stoppable{PushConsumer: pc, stopped: &stopped}, nil
}

// ctl runs ringmqctl with args against this cluster's name server and returns stdout.
func (c *cluster) ctl(args ...string) (string, error) {
	cmd := exec.Command(ringmqctlBin, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("ringmqctl %s: %v: %s", strings.Join(args, " "), err, stderr.String())
	}
	return string(out), nil
}

// sendIDs sends n messages of series to topic (sync, one at a time, in order) and
// returns their ids; opt (may be nil) adjusts each message.
func sendIDs(t testing.TB, p rocketmq.Producer, l *ledger, topic, series string, n int, opt func(i int, m *primitive.Message)) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ids := make([]string, 0, n)
	for i := range n {
		m, s := newTestMsg(topic, series, i)
		if opt != nil {
			opt(i, m)
		}
		if err := sendSync(ctx, p, l, m, s); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, s.id)
	}
	return ids
}

// waitQuiet waits until at least n deliveries match keep and reports whether that
// happened within timeout (waitCount without failing).
func (r *recorder) waitQuiet(n int, timeout time.Duration, keep func(got) bool) bool {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for len(r.snapshot(keep)) < n {
		select {
		case <-r.changed:
		case <-deadline.C:
			return false
		}
	}
	return true
}

// waitAllCommitted waits until group has committed, on the broker, the max offset of every
// queue of topic that holds messages (the client commits every 5 s).
func (c *cluster) waitAllCommitted(group, topic string, timeout time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		committed, maxOffsets := c.committedOffsets(group, topic)
		behind := 0
		for q, m := range maxOffsets {
			if m > 0 && committed[q] < m {
				behind++
			}
		}
		if behind == 0 {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("%s: %d queues of %s not committed up to their max offset after %v: committed %v, max %v",
				group, behind, topic, timeout, committed, maxOffsets)
		}
		time.Sleep(200 * time.Millisecond) // polling the broker's table, not waiting for an event
	}
}
