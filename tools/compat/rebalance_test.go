package compat

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	rocketmq "github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
)

const (
	rebalanceQueues  = 8
	rebalancePerQ    = 50               // messages per queue in each checked phase
	rebalanceTimeout = 45 * time.Second // for the queues to settle after a join
	maxProbeRounds   = 200
)

// TestRebalance: two push consumers of one group (one process, distinct instances)
// split the queues and together receive every message exactly once; a third joins,
// the queues are redistributed (every consumer's set changes), and every message sent
// after the redistribution is received exactly once overall.
//
// Duplicates are allowed only for the probe messages sent while the queues move:
// RocketMQ hands a queue to its new owner at the last committed offset (committed every
// 5 s), so messages the old owner consumed after that commit are delivered again.
func TestRebalance(t *testing.T) {
	c := startCluster(t, clusterOptions{})
	const (
		topic = "compat-rebalance"
		group = "compat-rebalance-g"
	)
	mqs := c.createTopic(topic, rebalanceQueues)
	l := newLedger()
	p := c.newProducer(producer.WithQueueSelector(producer.NewManualQueueSelector()))
	r := &rebalanceRun{t: t, c: c, l: l, p: p, topic: topic, mqs: mqs}

	c.newPushConsumer(group, "a", topic, l)
	c.newPushConsumer(group, "b", topic, l)
	before := r.settle([]string{"a", "b"})
	t.Logf("two consumers: %v", before)
	r.checkPhase("two", before)

	c.newPushConsumer(group, "c", topic, l)
	after := r.settle([]string{"a", "b", "c"})
	t.Logf("after c joined: %v", after)
	for _, who := range []string{"a", "b"} {
		if slices.Equal(before[who], after[who]) {
			t.Errorf("consumer %s kept queues %v after the join, want a changed set", who, after[who])
		}
	}
	r.checkPhase("three", after)
	t.Logf("probe-message duplicates across the rebalances (allowed): %d", len(l.duplicates(r.probes)))
}

type rebalanceRun struct {
	t      *testing.T
	c      *cluster
	l      *ledger
	p      rocketmq.Producer
	topic  string
	mqs    []*primitive.MessageQueue
	probes []string // ids of probe messages
	seq    int
}

// send sends n messages to every queue, in rounds, and returns their ids.
func (r *rebalanceRun) send(series string, n int) []string {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var ids []string
	for range n {
		for _, mq := range r.mqs {
			m, s := newTestMsg(r.topic, series, r.seq)
			r.seq++
			m.Queue = mq
			if err := sendSync(ctx, r.p, r.l, m, s); err != nil {
				r.t.Fatalf("send to queue %d: %v", mq.QueueId, err)
			}
			ids = append(ids, s.id)
		}
	}
	return ids
}

// owners returns, for the given ids, which consumers delivered each queue's messages.
func (r *rebalanceRun) owners(ids []string) map[int][]string {
	r.l.mu.Lock()
	defer r.l.mu.Unlock()
	byQueue := map[int]map[string]bool{}
	for who, got := range r.l.by {
		for _, id := range ids {
			if _, ok := got[id]; ok {
				q := r.l.sent[id].queueID
				if byQueue[q] == nil {
					byQueue[q] = map[string]bool{}
				}
				byQueue[q][who] = true
			}
		}
	}
	out := map[int][]string{}
	for q, set := range byQueue {
		out[q] = slices.Sorted(maps.Keys(set))
	}
	return out
}

// settle sends one probe message per queue per round until two rounds in a row show
// the same assignment: each queue delivered by exactly one consumer, every consumer in
// who holding queues, spread as evenly as RocketMQ's average allocation does. It
// returns consumer -> sorted queue ids.
func (r *rebalanceRun) settle(who []string) map[string][]int {
	r.t.Helper()
	deadline := time.Now().Add(rebalanceTimeout)
	var last string
	for round := 0; round < maxProbeRounds && time.Now().Before(deadline); round++ {
		ids := r.send(fmt.Sprintf("probe%d", round), 1)
		r.probes = append(r.probes, ids...)
		r.l.waitReceived(r.t, ids, 30*time.Second)
		assign, ok := r.assignment(r.owners(ids), who)
		if !ok {
			last = ""
			continue
		}
		key := fmt.Sprint(assign)
		if key == last {
			return assign
		}
		last = key
	}
	r.t.Fatalf("queues did not settle among %v within %v: last round's owners %v",
		who, rebalanceTimeout, r.owners(r.probes[len(r.probes)-len(r.mqs):]))
	return nil
}

// assignment turns queue -> owners into consumer -> queues if it is a clean average
// allocation over who.
func (r *rebalanceRun) assignment(owners map[int][]string, who []string) (map[string][]int, bool) {
	if len(owners) != len(r.mqs) {
		return nil, false
	}
	assign := map[string][]int{}
	for q, ws := range owners {
		if len(ws) != 1 {
			return nil, false
		}
		assign[ws[0]] = append(assign[ws[0]], q)
	}
	lo, hi := len(r.mqs)/len(who), (len(r.mqs)+len(who)-1)/len(who)
	for _, w := range who {
		n := len(assign[w])
		if n < lo || n > hi {
			return nil, false
		}
		sort.Ints(assign[w])
	}
	return assign, len(assign) == len(who)
}

// checkPhase sends rebalancePerQ messages per queue and checks they arrive exactly once,
// each from the consumer that owns its queue in assign.
func (r *rebalanceRun) checkPhase(name string, assign map[string][]int) {
	r.t.Helper()
	ids := r.send(name, rebalancePerQ)
	r.l.waitReceived(r.t, ids, 30*time.Second)
	r.l.checkExact(r.t, ids)
	owner := map[int]string{}
	for w, qs := range assign {
		for _, q := range qs {
			owner[q] = w
		}
	}
	var wrong []string
	for q, ws := range r.owners(ids) {
		if len(ws) != 1 || ws[0] != owner[q] {
			wrong = append(wrong, fmt.Sprintf("queue %d from %v, want %s", q, ws, owner[q]))
		}
	}
	if len(wrong) > 0 {
		r.t.Errorf("phase %s: messages came from other consumers than the queue owners: %s",
			name, strings.Join(wrong, "; "))
	}
}
