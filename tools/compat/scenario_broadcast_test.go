package compat

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
)

// TestBroadcast: three consumers of one group in BROADCASTING mode each receive every
// message of a 4-queue topic exactly once. Offsets are kept client side per instance
// (the client's local offset file): instance "a" shuts down, more messages are sent, "a"
// starts again under the same instance name and receives exactly the new messages,
// while "b" and "c" receive the new ones once more each.
//
// The client reads rocketmq.client.localOffsetStoreDir once, when its package
// initialises; the harness re-runs the test binary with it set to a temp dir. Should the
// files still land under $HOME/.rocketmq_client_go/<group>/<clientID> (a run without the
// harness's TestMain), the group name is unique per run, so a file left by an earlier run
// is never read back, and the test removes its group's directory there at the end.
func TestBroadcast(t *testing.T) {
	t.Parallel()
	c := startCluster(t, clusterOptions{})
	const topic = "compat-broadcast"
	group := fmt.Sprintf("compat-broadcast-g-%d-%d", os.Getpid(), time.Now().UnixNano())
	t.Cleanup(func() { os.RemoveAll(filepath.Join(os.Getenv("HOME"), ".rocketmq_client_go", group)) })
	c.createTopic(topic, defaultQueues)
	r := newRecorder()
	names := map[string]string{} // role -> instance name, fixed so "a" can come back as itself
	start := func(role string) interface{ Shutdown() error } {
		if names[role] == "" {
			names[role] = instance("bcast-" + role)
		}
		return c.startConsumer(r, consumerSpec{group: group, name: role, topic: topic,
			opts: []consumer.Option{consumer.WithConsumerModel(consumer.BroadCasting), consumer.WithInstance(names[role])}})
	}
	a := start("a")
	start("b")
	start("c")
	l := newLedger()
	p := c.newProducer()
	first := sendIDs(t, p, l, topic, "bc1", 200, nil)
	for _, who := range []string{"a", "b", "c"} {
		gs := r.waitCount(t, "first series at "+who, len(first), 30*time.Second, byWho(who))
		checkOnce(t, "first series at "+who, gs, first)
	}

	if err := a.Shutdown(); err != nil {
		t.Fatalf("shutdown a: %v", err)
	}
	second := sendIDs(t, p, l, topic, "bc2", 100, nil)
	inSecond := func(who string) func(got) bool {
		return func(g got) bool { return g.who == who && len(g.id) > 3 && g.id[:3] == "bc2" }
	}
	for _, who := range []string{"b", "c"} {
		r.waitCount(t, "second series at "+who, len(second), 30*time.Second, inSecond(who))
	}
	start("a")
	r.waitCount(t, "second series at a after its restart", len(second), 30*time.Second, inSecond("a"))
	// Anything redelivered would have arrived with the second series; give stragglers a
	// moment before the exact check.
	r.quiet(time.Second, nil)
	for _, who := range []string{"a", "b", "c"} {
		checkOnce(t, "both series at "+who, r.snapshot(byWho(who)), append(append([]string{}, first...), second...))
	}
}
