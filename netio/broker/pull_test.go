package broker

import (
	"testing"
	"time"

	"github.com/ringmq/ringmq/engine"
	"github.com/ringmq/ringmq/engine/meta"
	"github.com/ringmq/ringmq/netio/remoting"
)

func TestLongPollWakesOnArrival(t *testing.T) {
	tb := startBroker(t, "", nil)
	c := tb.dial(nil)
	createTopic(t, c, "LP", 1, meta.PermRW)
	// Warm up: the queue's first message creates its consume-queue file.
	wantCode(t, sendV1(t, c, "LP", 0, "", []byte("first")), remoting.RespSuccess)
	wantCode(t, pullWait(t, c, pullOpts{group: "g", topic: "LP"}), remoting.RespSuccess)

	type result struct {
		resp *remoting.Command
		at   time.Time
	}
	done := make(chan result, 1)
	go func() {
		resp := pull(t, c, pullOpts{group: "g", topic: "LP", offset: 1, sysFlag: pullSuspend, suspendMs: 15000})
		done <- result{resp, time.Now()}
	}()
	waitFor(t, "the pull to be held", func() bool { return tb.b.pulls.held() == 1 })

	sent := time.Now()
	wantCode(t, sendV1(t, c, "LP", 0, "", []byte("wake")), remoting.RespSuccess)
	acked := time.Now()
	select {
	case r := <-done:
		wantCode(t, r.resp, remoting.RespSuccess)
		recs := records(t, r.resp.Body)
		if len(recs) != 1 || string(recs[0].Body()) != "wake" {
			t.Fatalf("woken pull: got %d records", len(recs))
		}
		// The pull is answered once the message is visible (durable under SYNC_FLUSH),
		// so it cannot come much after the send's own ack.
		lag := r.at.Sub(acked)
		t.Logf("send->ack %v, ack->pull answer %v", acked.Sub(sent), lag)
		if lag > 50*time.Millisecond {
			t.Fatalf("pull answered %v after the send was acked, want within a few ms", lag)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("held pull not answered within 5 s of a message arriving")
	}
}

func TestLongPollExpires(t *testing.T) {
	tb := startBroker(t, "", nil)
	c := tb.dial(nil)
	createTopic(t, c, "LP", 1, meta.PermRW)
	start := time.Now()
	resp := pull(t, c, pullOpts{group: "g", topic: "LP", sysFlag: pullSuspend, suspendMs: 300})
	held := time.Since(start)
	wantCode(t, resp, remoting.RespPullNotFound)
	if held < 300*time.Millisecond || held > 3*time.Second {
		t.Fatalf("held %v, want about the 300 ms suspend time", held)
	}
	if next := extInt(t, resp, "nextBeginOffset"); next != 0 {
		t.Fatalf("nextBeginOffset: got %d, want 0", next)
	}
	if tb.b.pulls.held() != 0 {
		t.Fatal("expired pull still in the table")
	}
}

func TestPullWithoutSuspendAnswersAtOnce(t *testing.T) {
	tb := startBroker(t, "", nil)
	c := tb.dial(nil)
	createTopic(t, c, "NS", 1, meta.PermRW)
	wantCode(t, pull(t, c, pullOpts{group: "g", topic: "NS"}), remoting.RespPullNotFound)
	wantCode(t, pull(t, c, pullOpts{group: "g", topic: "NS", offset: 5}), remoting.RespPullOffsetMoved)
	wantCode(t, pull(t, c, pullOpts{group: "g", topic: "Missing"}), remoting.RespTopicNotExist)
	wantCode(t, pull(t, c, pullOpts{group: "g", topic: "NS", queueID: 1}), remoting.RespSystemError)
}

func TestShutdownAnswersHeldPulls(t *testing.T) {
	tb := startBroker(t, "", nil)
	c := tb.dial(nil)
	createTopic(t, c, "SD", 1, meta.PermRW)
	done := make(chan *remoting.Command, 1)
	go func() { done <- pull(t, c, pullOpts{group: "g", topic: "SD", sysFlag: pullSuspend, suspendMs: 20000}) }()
	waitFor(t, "the pull to be held", func() bool { return tb.b.pulls.held() == 1 })
	start := time.Now()
	tb.stop()
	select {
	case resp := <-done:
		// SERVICE_NOT_AVAILABLE, not PULL_NOT_FOUND: see longPoll.shutdown.
		wantCode(t, resp, remoting.RespServiceNotAvailable)
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("shutdown took %v with a held pull", d)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("held pull not answered at shutdown")
	}
}

func TestTagFilterFromHeartbeat(t *testing.T) {
	tb := startBroker(t, "", nil)
	c := tb.dial(nil)
	createTopic(t, c, "TF", 1, meta.PermRW)
	wantCode(t, invoke(t, c, remoting.ReqHeartBeat, nil, heartbeatJSON("cid1", "g", "CLUSTERING", "TF", "tagA || tagB")), remoting.RespSuccess)
	for _, tag := range []string{"tagA", "tagC", "tagB", ""} {
		p := ""
		if tag != "" {
			p = props("TAGS", tag)
		}
		wantCode(t, sendV1(t, c, "TF", 0, p, []byte(tag)), remoting.RespSuccess)
	}
	tb.waitDispatched("TF", 0, 4)
	// Push consumer: no subscription on the pull; the heartbeat's applies.
	resp := pull(t, c, pullOpts{group: "g", topic: "TF", sysFlag: pullSuspend, suspendMs: 1000})
	wantCode(t, resp, remoting.RespSuccess)
	var got []string
	for _, v := range records(t, resp.Body) {
		got = append(got, string(v.Body()))
	}
	if len(got) != 2 || got[0] != "tagA" || got[1] != "tagB" {
		t.Fatalf("heartbeat filter: got %q, want [tagA tagB]", got)
	}
	if next := extInt(t, resp, "nextBeginOffset"); next != 4 {
		t.Fatalf("nextBeginOffset: got %d, want 4 (past the filtered entries)", next)
	}
	// Pull consumer: the subscription travels with the pull (sysFlag SUBSCRIPTION).
	resp = pull(t, c, pullOpts{group: "other", topic: "TF", sysFlag: pullSubscription, subscription: "tagC"})
	recs := records(t, resp.Body)
	if len(recs) != 1 || string(recs[0].Body()) != "tagC" {
		t.Fatalf("pull subscription tagC: got %d records", len(recs))
	}
	// A group with no heartbeat gets everything (the client filters again).
	if n := len(records(t, pullWait(t, c, pullOpts{group: "unknown", topic: "TF"}).Body)); n != 4 {
		t.Fatalf("unknown group: got %d records, want 4", n)
	}
	// SQL92 on the pull.
	resp = pull(t, c, pullOpts{group: "sql", topic: "TF", sysFlag: pullSubscription, expressionType: "SQL92", subscription: "TAGS = 'tagB'"})
	if recs := records(t, resp.Body); len(recs) != 1 || string(recs[0].Body()) != "tagB" {
		t.Fatalf("SQL92 TAGS = 'tagB': got %d records", len(recs))
	}
	resp = pull(t, c, pullOpts{group: "sql", topic: "TF", sysFlag: pullSubscription, expressionType: "SQL92", subscription: "a ="})
	wantCode(t, resp, remoting.RespSubscriptionParseFailed)
}

func TestPullCommitsOffset(t *testing.T) {
	tb := startBroker(t, "", nil)
	c := tb.dial(nil)
	createTopic(t, c, "CO", 1, meta.PermRW)
	wantCode(t, sendV1(t, c, "CO", 0, "", []byte("x")), remoting.RespSuccess)
	pull(t, c, pullOpts{group: "g", topic: "CO", offset: 1, sysFlag: pullCommitOffset, commitOffset: 1})
	if off, ok := tb.b.Meta().QueryOffset("CO", "g", 0); !ok || off != 1 {
		t.Fatalf("committed offset: got %d %v, want 1", off, ok)
	}
	pull(t, c, pullOpts{group: "g2", topic: "CO", offset: 1, commitOffset: 1})
	if _, ok := tb.b.Meta().QueryOffset("CO", "g2", 0); ok {
		t.Fatal("offset committed without the COMMIT_OFFSET flag")
	}
}

func TestHeldPullsBounded(t *testing.T) {
	tb := startBroker(t, "", nil, func(c *Config, _ *engine.Config) { c.MaxHeldPulls = 1 })
	c := tb.dial(nil)
	createTopic(t, c, "HP", 2, meta.PermRW)
	done := make(chan *remoting.Command, 1)
	go func() { done <- pull(t, c, pullOpts{group: "g", topic: "HP", sysFlag: pullSuspend, suspendMs: 20000}) }()
	waitFor(t, "the first pull to be held", func() bool { return tb.b.pulls.held() == 1 })
	wantCode(t, pull(t, c, pullOpts{group: "g", topic: "HP", queueID: 1, sysFlag: pullSuspend, suspendMs: 20000}), remoting.RespSystemBusy)
	wantCode(t, sendV1(t, c, "HP", 0, "", []byte("x")), remoting.RespSuccess)
	select {
	case resp := <-done:
		wantCode(t, resp, remoting.RespSuccess)
	case <-time.After(5 * time.Second):
		t.Fatal("held pull not woken")
	}
}

// Many consumers hold pulls on many queues while producers send: every pull is answered
// with its queue's messages, none twice, none lost (run under -race).
func TestLongPollManyQueues(t *testing.T) {
	tb := startBroker(t, "", nil)
	c := tb.dial(nil)
	const queues = 8
	createTopic(t, c, "MQ", queues, meta.PermRW)
	type got struct {
		q    int
		resp *remoting.Command
	}
	done := make(chan got, queues)
	for q := range queues {
		go func() {
			done <- got{q, pull(t, c, pullOpts{group: "g", topic: "MQ", queueID: q, sysFlag: pullSuspend, suspendMs: 10000})}
		}()
	}
	waitFor(t, "all pulls to be held", func() bool { return tb.b.pulls.held() == queues })
	for q := range queues {
		wantCode(t, sendV1(t, c, "MQ", q, "", []byte{byte('a' + q)}), remoting.RespSuccess)
	}
	for range queues {
		select {
		case g := <-done:
			wantCode(t, g.resp, remoting.RespSuccess)
			recs := records(t, g.resp.Body)
			if len(recs) != 1 || recs[0].Body()[0] != byte('a'+g.q) {
				t.Fatalf("queue %d: got %d records", g.q, len(recs))
			}
		case <-time.After(10 * time.Second):
			t.Fatal("not every held pull was answered")
		}
	}
}

func TestPullCreatesRetryTopic(t *testing.T) {
	tb := startBroker(t, "", nil)
	c := tb.dial(nil)
	wantCode(t, pull(t, c, pullOpts{group: "g", topic: "%RETRY%g"}), remoting.RespPullNotFound)
	if tc, ok := tb.b.Meta().Topic("%RETRY%g"); !ok || tc.ReadQueueNums != 1 {
		t.Fatalf("retry topic after a pull: %+v %v", tc, ok)
	}
}

// TestPullCode checks the store-status -> pull-code table against Java's
// PullMessageProcessor, every status included.
func TestPullCode(t *testing.T) {
	for _, tc := range []struct {
		st     engine.GetStatus
		offset int64
		want   int16
	}{
		{engine.Found, 5, remoting.RespSuccess},
		{engine.NoMatchedMessage, 5, remoting.RespPullRetryImmediately},
		{engine.MessageWasRemoving, 5, remoting.RespPullRetryImmediately},
		{engine.OffsetFoundNull, 5, remoting.RespPullNotFound},
		{engine.OffsetOverflowOne, 5, remoting.RespPullNotFound},
		{engine.NoMessageInQueue, 0, remoting.RespPullNotFound},
		{engine.NoMessageInQueue, 5, remoting.RespPullOffsetMoved},
		{engine.OffsetOverflowBadly, 5, remoting.RespPullOffsetMoved},
		{engine.OffsetTooSmall, 5, remoting.RespPullOffsetMoved},
		{engine.GetStatus(200), 5, remoting.RespSystemError},
	} {
		if got := pullCode(tc.st, tc.offset); got != tc.want {
			t.Errorf("pullCode(%v, %d) = %d, want %d", tc.st, tc.offset, got, tc.want)
		}
	}
}
