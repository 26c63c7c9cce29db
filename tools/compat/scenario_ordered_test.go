package compat

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
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
	// others take its queues over at once (~3 s with v2.1.2's first-pull back-off); a
	// queue left locked by a consumer that lost it in a rebalance, at the broker's lock
	// expiry (TestOrderedJoinLeave: 5 s).
	orderedLeaveTimeout = 15 * time.Second
	// The consumers allocate queues by consistent hash: when one leaves, only its queues
	// move. With the default average allocation a leave also shifts queues between the
	// consumers that stay, and v2.1.2 does not unlock a queue a rebalance takes from it
	// (push_consumer.go, "TODO orderly"), so each shifted queue would wait for the broker's
	// lock expiry (60 s).
	orderedVirtualNodes = 64
)

// TestOrderedJoinLeave: a producer with the hash queue selector sends, per order id
// (sharding key), steps in sequence over a 16-queue topic, while orderly push consumers
// of one group (consistent-hash allocation) join and leave:
//
//  1. "a" alone consumes phase 1;
//  2. "b" and "c" join while "a" holds every queue lock: they get queues assigned but
//     cannot lock them; "a" shuts down as phase 2 starts to be sent, while "b" and "c"
//     are still rebalancing after their joins, and they take every queue over;
//  3. half-way through the sending of phase 3, "b" shuts down while it consumes, and "c"
//     takes its queues over.
//
// Each phase is delivered within orderedLeaveTimeout of the last send. Per order id, the
// deliveries (in arrival order, across consumers) are the send order with no gap, and
// every message arrives at least once. A message arrives twice only when the consumer
// that had its queue stopped consuming it (it left, or a rebalance took the queue) after
// consuming the message and before its offset reached the broker: the next owner starts
// from the committed offset and delivers the key's steps from there again, in order
// (checkKeyRuns). docs/compat-scenarios.md says why v2.1.2 allows no stronger property.
//
// The broker's lock expiry is 5 s (rebalanceLockMaxLiveTime) with the consumers renewing
// every second. v2.1.2 keeps, until the expiry, the lock of a queue a rebalance took from
// it; in step 2 "b" often locks some of "a"'s queues under a view of the group that still
// has "a" in it, and loses them to "c" in its next rebalance. The broker tells a consumer
// refused a queue when the lock is released or expires (NOTIFY_CONSUMER_IDS_CHANGED), so
// "c" takes them then (phase 2 then takes ~8.5 s instead of ~3 s).
//
// Before "b" and "c" join, the test waits until "a" has committed its offsets (every
// 5 s): when a rebalance takes queues from a v2.1.2 consumer it commits the offset of
// the first removed queue and forgets the others (remoteBrokerOffsetStore.persist deletes
// every queue not in its argument), so the new owners would start those queues from an
// older commit and run whole phases again.
func TestOrderedJoinLeave(t *testing.T) {
	t.Parallel()
	c := startClusterConf(t, "rebalanceLockMaxLiveTime=5000")
	const (
		topic = "compat-ordered"
		group = "compat-ordered-g"
	)
	c.createTopic(topic, orderedQueues)
	r := newRecorder()
	running := map[string]rocketmq.PushConsumer{} // for the diagnostic of a failed handover
	start := func(who string) rocketmq.PushConsumer {
		running[who] = c.startConsumer(r, consumerSpec{group: group, name: who, topic: topic,
			opts: []consumer.Option{consumer.WithConsumerOrder(true), consumer.WithRebalanceLockInterval(time.Second),
				consumer.WithStrategy(consumer.AllocateByConsistentHash(orderedVirtualNodes))}})
		return running[who]
	}
	p := c.newProducer(producer.WithQueueSelector(producer.NewHashQueueSelector()))
	l := newLedger()
	phases := 0
	// sendPhase sends the next phase's steps for every order id from a goroutine; at is
	// closed when leaveAt steps are acknowledged, done gets the ids or the error.
	sendPhase := func(leaveAt int) (at <-chan struct{}, done <-chan sentPhase) {
		first := phases * orderedSteps
		phases++
		h, d := make(chan struct{}), make(chan sentPhase, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			var sp sentPhase
			for step := first; step < first+orderedSteps && sp.err == nil; step++ {
				if step == first+leaveAt {
					close(h)
				}
				for k := range orderedKeys {
					key := fmt.Sprintf("order-%02d", k)
					m, s := newTestMsg(topic, fmt.Sprintf("%s-step%03d", key, step), 0)
					m.WithShardingKey(key)
					if sp.err = sendSync(ctx, p, l, m, s); sp.err != nil {
						break
					}
					sp.ids = append(sp.ids, s.id)
				}
			}
			d <- sp
		}()
		return h, d
	}
	// phase sends a phase and shuts leaver (if any) down once leaveAt of its steps are
	// sent, then waits until every message of the phase has been delivered.
	phase := func(leaver string, leaveAt int) {
		t.Helper()
		at, done := sendPhase(leaveAt)
		left := time.Now()
		if leaver != "" {
			select {
			case <-at:
			case sp := <-done: // failed before reaching leaveAt
				t.Fatalf("phase %d: %d sent: %v", phases, len(sp.ids), sp.err)
			}
			left = time.Now()
			if err := running[leaver].Shutdown(); err != nil {
				t.Fatalf("shutdown %s: %v", leaver, err)
			}
			delete(running, leaver)
		}
		sp := <-done
		if sp.err != nil {
			t.Fatal(sp.err)
		}
		keep := inSet(sp.ids)
		if !waitDistinct(r, keep, len(sp.ids), orderedLeaveTimeout) {
			gs := r.snapshot(keep)
			t.Fatalf("phase %d (%q left): %d of %d messages delivered %v after the last send; queues delivered: %v; held by someone (probe lock refused): %v",
				phases, leaver, len(distinctIDs(gs)), len(sp.ids), orderedLeaveTimeout, queuesByWho(gs),
				probeLocks(t, c, group, topic, orderedQueues, running))
		}
		gs := r.snapshot(keep)
		since := "the first send"
		if leaver != "" {
			since = leaver + "'s shutdown"
		}
		t.Logf("phase %d: all %d delivered %v after %s (%d deliveries); queues by consumer: %v",
			phases, len(sp.ids), time.Since(left).Round(time.Millisecond), since, len(gs), queuesByWho(gs))
	}

	start("a")
	phase("", 0)
	waitFor(t, 15*time.Second, "a's offsets committed", func() error {
		committed, maxOffsets := c.committedOffsets(group, topic)
		if !maps.Equal(committed, maxOffsets) {
			return fmt.Errorf("committed %v, queue ends %v", committed, maxOffsets)
		}
		return nil
	})
	start("b")
	start("c")
	phase("a", 0)
	phase("b", orderedSteps/2)

	all := r.quiet(time.Second, nil)
	reruns := checkKeyRuns(t, all, orderedKeys, phases*orderedSteps)
	if n := len(all) - len(distinctIDs(all)); n > 0 {
		t.Logf("%d messages delivered again at a handover (allowed, in order): %s", n, strings.Join(reruns, "; "))
	}
	delivered, acked := distinctIDs(all), l.acked()
	for _, id := range acked {
		if !delivered[id] {
			t.Errorf("acked message %s never delivered", id)
		}
	}
	if len(delivered) != len(acked) {
		t.Errorf("%d distinct messages delivered, %d acked", len(delivered), len(acked))
	}
}

// sentPhase is what a phase's sender goroutine reports.
type sentPhase struct {
	ids []string
	err error
}

func inSet(ids []string) func(got) bool {
	set := make(map[string]bool, len(ids))
	for _, id := range ids {
		set[id] = true
	}
	return func(g got) bool { return set[g.id] }
}

func distinctIDs(gs []got) map[string]bool {
	m := map[string]bool{}
	for _, g := range gs {
		m[g.id] = true
	}
	return m
}

// waitDistinct waits until n distinct messages match keep and reports whether that
// happened within timeout.
func waitDistinct(r *recorder, keep func(got) bool, n int, timeout time.Duration) bool {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for len(distinctIDs(r.snapshot(keep))) < n {
		select {
		case <-r.changed:
		case <-deadline.C:
			return false
		}
	}
	return true
}

// checkKeyRuns fails the test unless, for each order id, the deliveries (in arrival
// order, across consumers) are steps 0..steps-1 in sequence, except that a delivery by
// another consumer than the one before may go back to a step that one delivered in its
// current run (its deliveries since it took over) and continue in sequence from there:
// the next owner of a queue re-running the suffix its previous owner consumed but had not
// committed. No step is skipped, none is repeated by the consumer that delivered it, and
// the last delivery is the last step. It returns the re-runs, one line each.
func checkKeyRuns(t testing.TB, all []got, keys, steps int) (reruns []string) {
	t.Helper()
	type delivery struct {
		step int
		who  string
	}
	seq := map[string][]delivery{}
	for _, g := range all {
		key, rest, ok := strings.Cut(g.id, "-step")
		if !ok {
			t.Fatalf("delivery %q is not an ordered-test message", g.id)
		}
		var step int
		if _, err := fmt.Sscanf(rest, "%03d-", &step); err != nil {
			t.Fatalf("delivery %q: step: %v", g.id, err)
		}
		seq[key] = append(seq[key], delivery{step, g.who})
	}
	if len(seq) != keys {
		t.Errorf("deliveries for %d order ids, want %d", len(seq), keys)
	}
	for key, s := range seq {
		show := func() string {
			var b strings.Builder
			for _, d := range s {
				fmt.Fprintf(&b, " %03d@%s", d.step, d.who)
			}
			return b.String()
		}
		if s[0].step != 0 {
			t.Errorf("%s: first delivery is step %d, want 0; sequence%s", key, s[0].step, show())
			continue
		}
		runStart := 0 // step the current consumer's run began with
		for i := 1; i < len(s); i++ {
			prev, d := s[i-1], s[i]
			switch {
			case d.step == prev.step+1 && d.who == prev.who:
			case d.step == prev.step+1: // a clean handover
				runStart = d.step
			case d.who != prev.who && d.step <= prev.step && d.step >= runStart: // a re-run
				reruns = append(reruns, fmt.Sprintf("%s: %s delivered steps %d..%d again after %s", key, d.who, d.step, prev.step, prev.who))
				runStart = d.step
			default:
				t.Errorf("%s: delivery %d is step %d by %s after step %d by %s (whose run began at step %d); sequence%s",
					key, i, d.step, d.who, prev.step, prev.who, runStart, show())
			}
		}
		if last := s[len(s)-1].step; last != steps-1 {
			t.Errorf("%s: last delivery is step %d, want %d; sequence%s", key, last, steps-1, show())
		}
	}
	slices.Sort(reruns)
	return reruns
}

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

// probeLocks asks the broker (LOCK_BATCH_MQ, 41, as a client of its own) which of the
// topic's queues are held by someone, then shuts the running consumers down one at a time
// and asks again, and reports who held what. Diagnostic for a failed handover.
func probeLocks(t testing.TB, c *cluster, group, topic string, queues int, running map[string]rocketmq.PushConsumer) string {
	var mqs []map[string]any
	for q := range queues {
		mqs = append(mqs, map[string]any{"topic": topic, "brokerName": brokerName, "queueId": q})
	}
	held := func() []int {
		body, _ := json.Marshal(map[string]any{"consumerGroup": group, "clientId": "probe@compat", "mqSet": mqs})
		_, _, resp := rawCallBody(t, c.brokerAddr, 41, map[string]string{}, body)
		var got struct {
			LockOKMQSet []struct {
				QueueID int `json:"queueId"`
			} `json:"lockOKMQSet"`
		}
		json.Unmarshal(resp, &got)
		free := map[int]bool{}
		for _, m := range got.LockOKMQSet {
			free[m.QueueID] = true
		}
		var h []int
		for q := range queues {
			if !free[q] {
				h = append(h, q)
			}
		}
		// Give the probe's locks back.
		rawCallBody(t, c.brokerAddr, 42, map[string]string{}, body)
		return h
	}
	report := fmt.Sprintf("with %v running: %v", slices.Sorted(maps.Keys(running)), held())
	for _, who := range slices.Sorted(maps.Keys(running)) {
		running[who].Shutdown()
		report += fmt.Sprintf("; after %s shut down: %v", who, held())
	}
	return report
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
