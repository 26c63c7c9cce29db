package compat

import (
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	rocketmq "github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
)

const (
	orderedQueues = 16
	orderedKeys   = 32 // order ids (sharding keys)
	orderedSteps  = 10 // messages per order id per phase
	// A consumer that shuts down unlocks its queues and closes its connection, so the
	// others take its queues over at once.
	orderedLeaveTimeout = 15 * time.Second
	// The consumers allocate queues by consistent hash: when one leaves, only its queues
	// move. With the default average allocation a leave also shifts queues between the
	// consumers that stay, and v2.1.2 does not unlock a queue a rebalance takes from it
	// (push_consumer.go, "TODO orderly"), so each shifted queue would wait for the broker's
	// lock expiry (60 s).
	orderedVirtualNodes = 64
)

// TestOrderedPerKey: a producer with the hash queue selector sends, per order id
// (sharding key), steps in sequence over a 16-queue topic; orderly push consumers of one
// group take turns: "a" consumes phase 1 and shuts down, "b" starts and consumes phase
// 2 and shuts down, "c" starts and consumes phase 3. Every message is delivered exactly
// once, each order id's messages in send order across the handovers, each phase within
// orderedLeaveTimeout of the previous consumer's shutdown (its Shutdown unlocks its
// queues, so the next one locks them at once and continues where it stopped), and only
// by the consumer of that phase. Before each handover the test waits until the broker
// holds the leaving consumer's offsets for every queue: v2.1.2's orderly Shutdown does not
// reliably commit them (it sends them oneway, and only for the queues it still tracks),
// and a handover before its periodic 5 s commit would, as in RocketMQ, deliver the
// uncommitted tail again.
func TestOrderedPerKey(t *testing.T) {
	t.Parallel()
	c := startCluster(t, clusterOptions{})
	const (
		topic = "compat-ordered-turns"
		group = "compat-ordered-turns-g"
	)
	c.createTopic(topic, orderedQueues)
	r := newRecorder()
	p := c.newProducer(producer.WithQueueSelector(producer.NewHashQueueSelector()))
	l := newLedger()
	var prev rocketmq.PushConsumer
	for phase, who := range []string{"a", "b", "c"} {
		handover := time.Now()
		if prev != nil {
			c.waitAllCommitted(group, topic, 15*time.Second)
			handover = time.Now()
			if err := prev.Shutdown(); err != nil {
				t.Fatalf("shutdown before phase %d: %v", phase+1, err)
			}
		}
		prev = c.startConsumer(r, consumerSpec{group: group, name: who, topic: topic,
			opts: []consumer.Option{consumer.WithConsumerOrder(true)}})
		var ids []string
		for step := phase * orderedSteps; step < (phase+1)*orderedSteps; step++ {
			for k := range orderedKeys {
				key := fmt.Sprintf("order-%02d", k)
				ids = append(ids, sendIDs(t, p, l, topic, fmt.Sprintf("%s-step%03d", key, step), 1,
					func(_ int, m *primitive.Message) { m.WithShardingKey(key) })...)
			}
		}
		set := map[string]bool{}
		for _, id := range ids {
			set[id] = true
		}
		gs := r.waitCount(t, fmt.Sprintf("phase %d (%s)", phase+1, who), len(ids), orderedLeaveTimeout,
			func(g got) bool { return set[g.id] })
		t.Logf("phase %d: %d messages delivered %v after the handover to %s; queues %v",
			phase+1, len(ids), time.Since(handover).Round(time.Millisecond), who, queuesByWho(gs))
		for _, g := range gs {
			if g.who != who {
				t.Errorf("phase %d: %s delivered to %s, want %s", phase+1, g.id, g.who, who)
			}
		}
	}
	all := r.quiet(time.Second, nil)
	checkOnce(t, "ordered", all, l.acked())
	checkKeyOrder(t, all, orderedKeys, 3*orderedSteps)
}

// checkKeyOrder fails the test unless, for each order id, the deliveries (in arrival
// order, across consumers) are steps 0..steps-1 in sequence.
func checkKeyOrder(t testing.TB, all []got, keys, steps int) {
	t.Helper()
	seq := map[string][]string{}
	for _, g := range all {
		key, step, ok := strings.Cut(g.id, "-step")
		if !ok {
			t.Fatalf("delivery %q is not an ordered-test message", g.id)
		}
		seq[key] = append(seq[key], strings.SplitN(step, "-", 2)[0]+"@"+g.who)
	}
	if len(seq) != keys {
		t.Errorf("deliveries for %d order ids, want %d", len(seq), keys)
	}
	for key, s := range seq {
		for i, v := range s {
			if want := fmt.Sprintf("%03d", i); !strings.HasPrefix(v, want+"@") {
				t.Errorf("%s: delivery %d is step %s, want step %s; sequence %v", key, i, v, want, s)
				break
			}
		}
		if len(s) != steps {
			t.Errorf("%s: %d deliveries, want %d", key, len(s), steps)
		}
	}
}

// queuesByWho summarises which consumer delivered from which queues.
func queuesByWho(gs []got) map[string][]int {
	set := map[string]map[int]bool{}
	for _, g := range gs {
		if set[g.who] == nil {
			set[g.who] = map[int]bool{}
		}
		set[g.who][g.queueID] = true
	}
	out := map[string][]int{}
	for who, qs := range set {
		for q := range qs {
			out[who] = append(out[who], q)
		}
		sort.Ints(out[who])
	}
	return out
}

// TestOrderedGlobal: a one-queue topic gives one global order: 300 messages sent one
// after another are delivered to an orderly consumer exactly once in send order, while a
// second consumer of the group holds no queue and receives nothing.
func TestOrderedGlobal(t *testing.T) {
	t.Parallel()
	c := startCluster(t, clusterOptions{})
	const topic = "compat-ordered-global"
	c.createTopic(topic, 1)
	r := newRecorder()
	for _, who := range []string{"x", "y"} {
		c.startConsumer(r, consumerSpec{group: "compat-ordered-global-g", name: who, topic: topic,
			opts: []consumer.Option{consumer.WithConsumerOrder(true)}})
	}
	p := c.newProducer()
	ids := sendIDs(t, p, newLedger(), topic, "global", 300, nil)
	gs := r.waitCount(t, "global order", len(ids), 30*time.Second, nil)
	checkOnce(t, "global order", gs, ids)
	owner := gs[0].who
	for i, g := range gs {
		if g.id != ids[i] || g.queueOff != int64(i) || g.who != owner {
			t.Fatalf("delivery %d: %s at offset %d by %s, want %s at offset %d by %s", i, g.id, g.queueOff, g.who, ids[i], i, owner)
		}
	}
}
