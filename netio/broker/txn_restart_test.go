package broker

import (
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ringmq/ringmq/engine"
	"github.com/ringmq/ringmq/engine/meta"
	"github.com/ringmq/ringmq/engine/record"
	"github.com/ringmq/ringmq/flush/vfs"
	"github.com/ringmq/ringmq/netio/remoting"
)

// restartTxChecks: a half message is checked once it is 1 s old, every 300 ms, at most
// 3 times. The 300 ms leave a test time to stop the broker between two rounds.
func restartTxChecks(c *Config, _ *engine.Config) {
	c.TransactionCheckInterval = 300 * time.Millisecond
	c.TransactionTimeout = time.Second
	c.TransactionCheckMax = 3
}

// noTxChecks: nothing is old enough to check while the test builds its state.
func noTxChecks(c *Config, _ *engine.Config) {
	c.TransactionCheckInterval = 20 * time.Millisecond
	c.TransactionTimeout = time.Hour
}

// txProducer plays a transaction producer of group txg: it counts the checks it gets
// (by UNIQ_KEY, into a count shared across restarts) and answers each as answer says.
type txProducer struct {
	c      *remoting.Client
	counts *txCheckCounts
	answer func(uniq string) string // "8" commit, "12" rollback, "" no answer
	errs   chan error
}

type txCheckCounts struct {
	mu sync.Mutex
	n  map[string]int
}

func (x *txCheckCounts) get(uniq string) int {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.n[uniq]
}

// dialTxProducer connects a producer and registers it with a heartbeat, as a client that
// reconnects after a restart does.
func dialTxProducer(tb *testBroker, counts *txCheckCounts, answer func(string) string) *txProducer {
	tb.t.Helper()
	p := &txProducer{counts: counts, answer: answer, errs: make(chan error, 64)}
	p.c = tb.dial(func(_ *remoting.Client, req *remoting.Command) {
		if req.Code != remoting.ReqCheckTransactionState {
			return
		}
		uniq := req.ExtString("msgId")
		counts.mu.Lock()
		counts.n[uniq]++
		counts.mu.Unlock()
		if a := p.answer(uniq); a != "" {
			req = req.Clone()
			go func() { // answer off the client's read loop, oneway like the Go client
				err := p.c.InvokeOneway(remoting.ReqEndTransaction, ext("producerGroup", "txg",
					"tranStateTableOffset", req.ExtString("tranStateTableOffset"), "commitLogOffset", req.ExtString("commitLogOffset"),
					"commitOrRollback", a, "fromTransactionCheck", "true", "msgId", uniq, "transactionId", uniq), nil)
				if err != nil {
					select {
					case p.errs <- err:
					default:
					}
				}
			}()
		}
	})
	hb := []byte(`{"clientID":"txp@1","producerDataSet":[{"groupName":"txg"}],"consumerDataSet":[]}`)
	wantCode(tb.t, invoke(tb.t, p.c, remoting.ReqHeartBeat, nil, hb), remoting.RespSuccess)
	return p
}

// endTx sends END_TRANSACTION (8 commit, 12 rollback) for the half message resp stored.
func endTx(t *testing.T, c *remoting.Client, resp *remoting.Command, uniq, state string) {
	t.Helper()
	_, phys, err := record.ParseOffsetMsgID(resp.ExtString("msgId"))
	if err != nil {
		t.Fatal(err)
	}
	wantCode(t, invoke(t, c, remoting.ReqEndTransaction, ext("producerGroup", "txg",
		"tranStateTableOffset", resp.ExtString("queueOffset"), "commitLogOffset", strconv.FormatInt(phys, 10),
		"commitOrRollback", state, "fromTransactionCheck", "false", "msgId", uniq, "transactionId", uniq), nil), remoting.RespSuccess)
}

// visible returns the bodies in topic's queue 0, in order.
func visible(t *testing.T, c *remoting.Client, topic string) []string {
	t.Helper()
	resp := pull(t, c, pullOpts{group: "g", topic: topic})
	if resp.Code == remoting.RespPullNotFound || resp.Code == remoting.RespPullOffsetMoved {
		return nil
	}
	wantCode(t, resp, remoting.RespSuccess)
	var out []string
	for _, v := range records(t, resp.Body) {
		out = append(out, string(v.Body()))
	}
	return out
}

// halfProgress is the check service's saved half progress.
func halfProgress(tb *testBroker) int64 {
	off, _ := tb.b.Meta().QueryOffset(TopicTransHalf, txHalfProgressGroup, 0)
	return off
}

// opRecords counts the op records per tag naming half queue offset q.
func opRecords(t *testing.T, tb *testBroker, q int64) map[string]int {
	t.Helper()
	out := map[string]int{}
	var res engine.GetResult
	for off := int64(0); ; off = res.NextBeginOffset {
		if err := tb.store.GetMessages(TopicTransOpHalf, 0, off, 32, DefaultMaxPullBytes, nil, &res); err != nil {
			t.Fatal(err)
		}
		if res.Status != engine.Found {
			res.Release()
			return out
		}
		for _, rec := range res.Records {
			v, err := record.Decode(rec)
			if err != nil {
				t.Fatal(err)
			}
			if string(v.Body()) == strconv.FormatInt(q, 10) {
				tag, _ := v.Property(record.PropTags)
				out[string(tag)]++
			}
		}
		res.Release()
	}
}

// Every state a transaction can be in survives a restart of Broker and Store on the same
// directory: (a) open -> still invisible, checked, committed by the check's answer;
// (b) committed -> visible once, never checked; (c) rolled back -> never visible, never
// checked; (d) checked once -> checked only up to TransactionCheckMax in total, then
// dropped. "stop" is a clean shutdown; "crash" starts the second broker on what a power
// cut leaves (only what was fsynced; the offset table, written every 5 s, is not).
func TestTransactionStatesSurviveRestart(t *testing.T) {
	t.Run("stop", func(t *testing.T) { testTxStatesSurviveRestart(t, false) })
	t.Run("crash", func(t *testing.T) { testTxStatesSurviveRestart(t, true) })
}

func testTxStatesSurviveRestart(t *testing.T, crash bool) {
	dir, mem := t.TempDir(), vfs.NewMem()
	var fs vfs.FS = vfs.OS{}
	if crash {
		dir, fs = "/store", mem
	}
	tb := startBroker(t, dir, fs, restartTxChecks)
	counts := &txCheckCounts{n: map[string]int{}}
	p := dialTxProducer(tb, counts, func(string) string { return "" }) // unknown to every check
	createTopic(t, p.c, "TXS", 1, meta.PermRW)
	sendHalf(t, p.c, "TXS", "U-a", "a")
	committed := sendHalf(t, p.c, "TXS", "U-b", "b")
	rolledBack := sendHalf(t, p.c, "TXS", "U-c", "c")
	sendHalf(t, p.c, "TXS", "U-d", "d")
	endTx(t, p.c, committed, "U-b", "8")
	endTx(t, p.c, rolledBack, "U-c", "12")
	tb.waitDispatched("TXS", 0, 1)
	if got := visible(t, p.c, "TXS"); !slices.Equal(got, []string{"b"}) {
		t.Fatalf("before the restart: visible %q, want [b]", got)
	}
	// Stop right after the first check of the open ones: the next round is 300 ms away. A
	// slow machine may let a second round through before the stop; what the test needs is
	// that U-a and U-d have checks left for the second run.
	waitForLong(t, "the first check of U-a and U-d", 10*time.Second, func() bool {
		return counts.get("U-a") >= 1 && counts.get("U-d") >= 1
	})
	// The producer goes first, so no check is sent past the crash point (copying the
	// store takes a while).
	p.c.Close()
	before := map[string]int{"U-a": counts.get("U-a"), "U-d": counts.get("U-d")}
	if crash {
		fs = mem.Crash()
	}
	tb.stop()
	for _, n := range before {
		if n < 1 || n >= 3 {
			t.Fatalf("checks before the restart: %v, want 1 or 2 each of TransactionCheckMax 3 (the broker stopped late)", before)
		}
	}

	tb = startBroker(t, dir, fs, restartTxChecks)
	p = dialTxProducer(tb, counts, func(uniq string) string {
		if uniq == "U-a" {
			return "8"
		}
		return ""
	})
	if got := visible(t, p.c, "TXS"); !slices.Equal(got, []string{"b"}) {
		t.Fatalf("after the restart: visible %q, want [b] (U-a's half message must stay invisible)", got)
	}
	waitForLong(t, "every half message settled (U-a committed, U-d dropped)", 15*time.Second, func() bool {
		return halfProgress(tb) == 4
	})
	tb.waitDispatched("TXS", 0, 2)
	if got := visible(t, p.c, "TXS"); !slices.Equal(got, []string{"b", "a"}) {
		t.Fatalf("after the check: visible %q, want [b a]", got)
	}
	settled := map[string]int{}
	for _, u := range []string{"U-a", "U-b", "U-c", "U-d"} {
		settled[u] = counts.get(u)
	}
	// Three more rounds: nothing is checked again.
	<-time.After(3 * restartTxChecksInterval)
	for u, n := range settled {
		if m := counts.get(u); m != n {
			t.Errorf("%s checked again after it was settled: %d, then %d", u, n, m)
		}
	}
	if settled["U-b"] != 0 || settled["U-c"] != 0 {
		t.Errorf("resolved transactions were checked: U-b %d, U-c %d", settled["U-b"], settled["U-c"])
	}
	if settled["U-a"] < 2 {
		t.Errorf("U-a checked %d times, want its check before and at least one after the restart", settled["U-a"])
	}
	if settled["U-d"] != 3 {
		t.Errorf("U-d checked %d times over both runs, want TransactionCheckMax = 3", settled["U-d"])
	}
	if ops := opRecords(t, tb, 3); ops[opCheckTag] != 3 || ops[opTag] != 0 {
		t.Errorf("op records of U-d: %v, want 3 check records and no resolution", ops)
	}
	if got := visible(t, p.c, "TXS"); !slices.Equal(got, []string{"b", "a"}) {
		t.Errorf("at the end: visible %q, want [b a]", got)
	}
	select {
	case err := <-p.errs:
		t.Errorf("answering a check: %v", err)
	default:
	}
}

const restartTxChecksInterval = 300 * time.Millisecond

// A commit stored just before the broker died, whose op record never made it (crash
// between the two appends), is found in its real topic after the restart: it gets its op
// record, is never checked, and is visible exactly once, though the producer would
// answer a check with commit again.
func TestTransactionCommitWithoutOpRecordSurvivesRestart(t *testing.T) {
	tb := startBroker(t, "", nil, noTxChecks)
	c := tb.dial(nil)
	createTopic(t, c, "TXE", 1, meta.PermRW)
	resp := sendHalf(t, c, "TXE", "U-e", "e")
	_, phys, err := record.ParseOffsetMsgID(resp.ExtString("msgId"))
	if err != nil {
		t.Fatal(err)
	}
	// What commitHalf stores, without the op record after it.
	var p []byte
	p = appendPropString(p, record.PropUniqKey, "U-e")
	p = appendPropString(p, record.PropProducerGroup, "txg")
	if _, err := tb.store.Put(&engine.Message{Topic: "TXE", QueueID: 0, SysFlag: record.SysFlagTxCommit,
		BornTimestampMs: 1700000000000, BornHost: tb.addr, PreparedTransactionOffset: phys,
		Body: []byte("e"), Properties: p}); err != nil {
		t.Fatal(err)
	}
	tb.stop()

	tb = startBroker(t, tb.dir, nil, fastTxChecks)
	counts := &txCheckCounts{n: map[string]int{}}
	pr := dialTxProducer(tb, counts, func(string) string { return "8" })
	waitForLong(t, "the half message settled", 10*time.Second, func() bool { return halfProgress(tb) == 1 })
	<-time.After(200 * time.Millisecond) // ten rounds
	if n := counts.get("U-e"); n != 0 {
		t.Errorf("U-e checked %d times, want none: its commit is in the real topic", n)
	}
	if ops := opRecords(t, tb, 0); ops[opTag] != 1 {
		t.Errorf("op records of U-e: %v, want the missing resolution written once", ops)
	}
	if got := visible(t, pr.c, "TXE"); !slices.Equal(got, []string{"e"}) {
		t.Errorf("visible %q, want [e] exactly once", got)
	}
}

// The check progress is saved: a restart reads no op record and no half message below
// it again. 20 resolved transactions move both progress points to 20; after the restart
// the first rounds read no op record, then exactly the one a new transaction adds.
// (TransactionTimeout is an hour: no check record joins the op records.)
func TestTransactionCheckProgressSurvivesRestart(t *testing.T) {
	tb := startBroker(t, "", nil, noTxChecks)
	c := tb.dial(nil)
	createTopic(t, c, "TXP", 1, meta.PermRW)
	for i := range 20 {
		u := fmt.Sprintf("U-p%d", i)
		endTx(t, c, sendHalf(t, c, "TXP", u, u), u, "12")
	}
	opProgress := func(tb *testBroker) int64 {
		off, _ := tb.b.Meta().QueryOffset(TopicTransOpHalf, txOpProgressGroup, 0)
		return off
	}
	waitForLong(t, "both progress points at 20", 10*time.Second, func() bool {
		return halfProgress(tb) == 20 && opProgress(tb) == 20
	})
	tb.stop()

	tb = startBroker(t, tb.dir, nil, noTxChecks)
	if h, o := halfProgress(tb), opProgress(tb); h != 20 || o != 20 {
		t.Fatalf("after the restart: half progress %d, op progress %d, want 20 and 20", h, o)
	}
	waitForLong(t, "three check rounds", 10*time.Second, func() bool { return tb.b.txc.rounds.Load() >= 3 })
	if n := tb.b.txc.opsRead.Load(); n != 0 {
		t.Fatalf("after the restart the check service read %d op records, want 0 (all below the progress)", n)
	}
	c = tb.dial(nil)
	endTx(t, c, sendHalf(t, c, "TXP", "U-new", "new"), "U-new", "12")
	waitForLong(t, "the new transaction settled", 10*time.Second, func() bool { return halfProgress(tb) == 21 })
	if n := tb.b.txc.opsRead.Load(); n != 1 {
		t.Fatalf("read %d op records, want only the new one", n)
	}
}

// waitForLong polls cond at most timeout (waitFor's 5 s is shorter than a check cycle
// under load).
func waitForLong(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		<-time.After(5 * time.Millisecond)
	}
}
