package compat

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	rocketmq "github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
)

// Short transaction settings (broker.conf, milliseconds): a half message older than 1 s
// is checked, every second.
var txnConf = []string{"transactionTimeOut=1000", "transactionCheckInterval=1000", "transactionCheckMax=15"}

const (
	txnPlanProp = "tx-plan" // what the local transaction does with the message
	// localTxnTime is how long ExecuteLocalTransaction works before it commits: a
	// consumer that saw the message before then saw a half message.
	localTxnTime = 300 * time.Millisecond
	// txnCheckTimeout bounds the wait for CHECK_TRANSACTION_STATE: TransactionTimeout +
	// TransactionCheckInterval and scheduling.
	txnCheckTimeout = 15 * time.Second
)

// Plans, in the property tx-plan.
const (
	planCommit          = "commit"           // Execute: Commit
	planRollback        = "rollback"         // Execute: Rollback
	planUnknownCommit   = "unknown-commit"   // Execute: Unknown; Check: Commit
	planUnknownRollback = "unknown-rollback" // Execute: Unknown; Check: Rollback
	planRestartCommit   = "restart-commit"   // Execute: Unknown; Check: Unknown, after the restart Commit
	planRestartRollback = "restart-rollback" // Execute: Unknown; Check: Unknown, after the restart Rollback
	planNever           = "never"            // Execute: Unknown; Check: Unknown
)

// txnLog is the transaction listener: it follows each message's plan and records when
// the local transaction resolved and which checks the broker sent.
type txnLog struct {
	mu         sync.Mutex
	resolvedAt map[string]time.Time // id -> when Commit was returned (Execute or Check)
	checks     map[string]int       // id -> CHECK_TRANSACTION_STATE received
	checkTopic map[string]string    // id -> topic of the checked message
	restarted  bool                 // the broker was restarted: the restart-* plans resolve
	before     map[string]int       // checks at the restart
}

func newTxnLog() *txnLog {
	return &txnLog{resolvedAt: map[string]time.Time{}, checks: map[string]int{}, checkTopic: map[string]string{}}
}

func (x *txnLog) ExecuteLocalTransaction(m *primitive.Message) primitive.LocalTransactionState {
	switch m.GetProperty(txnPlanProp) {
	case planCommit:
		<-time.After(localTxnTime) // the local transaction's work
		x.mu.Lock()
		x.resolvedAt[m.GetProperty(propID)] = time.Now()
		x.mu.Unlock()
		return primitive.CommitMessageState
	case planRollback:
		return primitive.RollbackMessageState
	default:
		return primitive.UnknowState
	}
}

func (x *txnLog) CheckLocalTransaction(m *primitive.MessageExt) primitive.LocalTransactionState {
	id := m.GetProperty(propID)
	x.mu.Lock()
	defer x.mu.Unlock()
	x.checks[id]++
	x.checkTopic[id] = m.Topic
	switch m.GetProperty(txnPlanProp) {
	case planUnknownCommit:
		if _, ok := x.resolvedAt[id]; !ok {
			x.resolvedAt[id] = time.Now()
		}
		return primitive.CommitMessageState
	case planUnknownRollback:
		return primitive.RollbackMessageState
	case planRestartCommit:
		if !x.restarted {
			return primitive.UnknowState
		}
		if _, ok := x.resolvedAt[id]; !ok {
			x.resolvedAt[id] = time.Now()
		}
		return primitive.CommitMessageState
	case planRestartRollback:
		if !x.restarted {
			return primitive.UnknowState
		}
		return primitive.RollbackMessageState
	case planNever:
		return primitive.UnknowState
	default:
		// A message the producer already resolved may still be checked once if the
		// check raced the END_TRANSACTION; answer what it did.
		if m.GetProperty(txnPlanProp) == planCommit {
			return primitive.CommitMessageState
		}
		return primitive.RollbackMessageState
	}
}

// markRestart notes the checks so far and switches the restart-* plans to resolve.
func (x *txnLog) markRestart() {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.restarted = true
	x.before = maps.Clone(x.checks)
}

func (x *txnLog) checked(id string) int {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.checks[id]
}

// newTxnProducer starts a transaction producer with its own instance name (the check
// handler belongs to the first client object of a ClientID).
func (c *cluster) newTxnProducer(x *txnLog, group string) rocketmq.TransactionProducer {
	c.t.Helper()
	tp, err := rocketmq.NewTransactionProducer(x,
		producer.WithNameServer([]string{c.namesrvAddr}),
		producer.WithGroupName(group),
		producer.WithInstanceName(instance("txn")),
		producer.WithRetry(2))
	if err != nil {
		c.t.Fatalf("new transaction producer: %v", err)
	}
	if err := tp.Start(); err != nil {
		c.t.Fatalf("start transaction producer: %v", err)
	}
	c.t.Cleanup(func() { tp.Shutdown() })
	return tp
}

// sendTxn sends message series-i in a transaction with plan and returns its id and the
// local state the client reports.
func sendTxn(t testing.TB, tp rocketmq.TransactionProducer, topic, series string, i int, plan string) (string, primitive.LocalTransactionState) {
	t.Helper()
	m, s := newTestMsg(topic, series, i)
	m.WithProperty(txnPlanProp, plan)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := tp.SendMessageInTransaction(ctx, m)
	if err != nil {
		t.Fatalf("transaction send %s: %v", s.id, err)
	}
	if res.Status != primitive.SendOK {
		t.Fatalf("transaction send %s: status %v, want SEND_OK", s.id, res.Status)
	}
	return s.id, res.State
}

// TestTransactionCommitRollback: 20 transactional messages commit in
// ExecuteLocalTransaction (after 300 ms of local work) and 20 roll back. Each committed
// one is delivered exactly once and never before its local transaction returned Commit
// (the half message is invisible); no rolled-back one is ever delivered, also not after
// several check intervals. No check is sent for any of them (all were resolved at once).
func TestTransactionCommitRollback(t *testing.T) {
	t.Parallel()
	c := startClusterConf(t, txnConf...)
	const topic = "compat-txn"
	c.createTopic(topic, defaultQueues)
	r := newRecorder()
	c.startConsumer(r, consumerSpec{group: topic + "-g", name: "txn", topic: topic})
	x := newTxnLog()
	tp := c.newTxnProducer(x, "compat-txn-pg")
	var commits, rollbacks []string
	for i := range 20 {
		id, st := sendTxn(t, tp, topic, planCommit, i, planCommit)
		if st != primitive.CommitMessageState {
			t.Fatalf("%s: local state %v, want commit", id, st)
		}
		commits = append(commits, id)
		id, st = sendTxn(t, tp, topic, planRollback, i, planRollback)
		if st != primitive.RollbackMessageState {
			t.Fatalf("%s: local state %v, want rollback", id, st)
		}
		rollbacks = append(rollbacks, id)
	}
	r.waitCount(t, "committed", len(commits), 30*time.Second, nil)
	// Three check rounds (TransactionTimeout 1 s + interval 1 s each) pass: a rolled-back
	// or already committed half message must not come out of them.
	all := r.quiet(3*time.Second, nil)
	checkOnce(t, "committed, and no rolled back", all, commits)
	checkResolvedFirst(t, x, all)
	for _, id := range append(append([]string{}, commits...), rollbacks...) {
		if n := x.checked(id); n > 0 {
			t.Errorf("%s: checked %d times, want none (its END_TRANSACTION resolved it)", id, n)
		}
	}
}

// TestTransactionCheck: 10 messages answer Unknown in ExecuteLocalTransaction and then
// Commit when the broker checks (CHECK_TRANSACTION_STATE, 39), 10 answer Unknown and then
// Rollback. Each is checked with the real topic in the checked message; the
// check-committed ones are delivered exactly once and not before the check's answer;
// the check-rolled-back ones never, and after its answer a message is not checked again.
func TestTransactionCheck(t *testing.T) {
	t.Parallel()
	c := startClusterConf(t, txnConf...)
	const topic = "compat-txn-check"
	c.createTopic(topic, defaultQueues)
	r := newRecorder()
	c.startConsumer(r, consumerSpec{group: topic + "-g", name: "txn", topic: topic})
	x := newTxnLog()
	tp := c.newTxnProducer(x, "compat-txn-check-pg")
	var commits, rollbacks []string
	for i := range 10 {
		id, st := sendTxn(t, tp, topic, planUnknownCommit, i, planUnknownCommit)
		if st != primitive.UnknowState {
			t.Fatalf("%s: local state %v, want unknown", id, st)
		}
		commits = append(commits, id)
		id, _ = sendTxn(t, tp, topic, planUnknownRollback, i, planUnknownRollback)
		rollbacks = append(rollbacks, id)
	}
	sent := time.Now()
	waitFor(t, txnCheckTimeout, "a check of every unknown transaction", func() error {
		for _, id := range append(append([]string{}, commits...), rollbacks...) {
			if x.checked(id) == 0 {
				return fmt.Errorf("%s not checked yet", id)
			}
		}
		return nil
	})
	t.Logf("every unknown transaction checked within %v of the last send", time.Since(sent).Round(time.Millisecond))
	r.waitCount(t, "check-committed", len(commits), 30*time.Second, nil)
	checks := map[string]int{}
	for _, id := range append(append([]string{}, commits...), rollbacks...) {
		checks[id] = x.checked(id)
	}
	all := r.quiet(3*time.Second, nil)
	checkOnce(t, "check-committed, and no check-rolled-back", all, commits)
	checkResolvedFirst(t, x, all)
	x.mu.Lock()
	defer x.mu.Unlock()
	for id, n := range checks {
		if x.checks[id] != n {
			t.Errorf("%s: checked again after its answer (%d checks, then %d)", id, n, x.checks[id])
		}
		if x.checkTopic[id] != topic {
			t.Errorf("%s: checked message has topic %q, want the real topic %q", id, x.checkTopic[id], topic)
		}
	}
}

// TestTransactionSurvivesRestart: a half message whose local state is Unknown is pending
// when the broker restarts (SIGTERM, same data). After the restart the producer sends
// one more transaction (which commits); the pending one is then checked, committed by
// the check, and both are delivered exactly once to a consumer group started after the
// restart (a consumer kept running across a restart may stall 30 s in v2.1.2, which is
// not what this test is about; docs/compat-scenarios.md).
func TestTransactionSurvivesRestart(t *testing.T) {
	t.Parallel()
	c := startClusterConf(t, txnConf...)
	const topic = "compat-txn-restart"
	c.createTopic(topic, defaultQueues)
	x := newTxnLog()
	tp := c.newTxnProducer(x, "compat-txn-restart-pg")
	pending, _ := sendTxn(t, tp, topic, "pending", 0, planUnknownCommit)
	c.restartBroker(false)
	after, _ := sendTxn(t, tp, topic, "after", 0, planCommit)
	waitFor(t, txnCheckTimeout, "check of the pending transaction after the restart", func() error {
		if x.checked(pending) == 0 {
			return fmt.Errorf("%s not checked", pending)
		}
		return nil
	})
	r := newRecorder()
	c.startConsumer(r, consumerSpec{group: topic + "-g", name: "txn", topic: topic})
	r.waitCount(t, "both", 2, 30*time.Second, nil)
	all := r.quiet(2*time.Second, nil)
	checkOnce(t, "pending and after", all, []string{pending, after})
	checkResolvedFirst(t, x, all)
}

// txnRestartConf: checked once 1 s old, every second, at most 3 times.
var txnRestartConf = []string{"transactionTimeOut=1000", "transactionCheckInterval=1000", "transactionCheckMax=3"}

// TestTransactionStatesSurviveRestartSIGTERM and ...SIGKILL: one transaction in every
// state when the broker goes down (SIGTERM, or SIGKILL) and comes back on the same data
// (transactionCheckMax=3, checks every second once 1 s old):
//   - committed by ExecuteLocalTransaction (3): delivered exactly once, never checked;
//   - rolled back by ExecuteLocalTransaction (3): never delivered, never checked;
//   - open, Unknown to every check before the restart, then Commit (2) or Rollback (2):
//     still invisible after the restart, checked exactly once more, then delivered
//     exactly once (not before the check's answer) or never;
//   - open, Unknown to every check (2): checked before the restart, and 3 times in all
//     over both runs (the count survives), then dropped: never delivered.
//
// The restart comes right after every open one was checked at least once, a second
// before the next round. After it the producer sends one more transaction (which
// commits; its half message registers the producer's new connection for checks) and a
// consumer group starts (one kept across a restart may stall 30 s in v2.1.2).
func TestTransactionStatesSurviveRestartSIGTERM(t *testing.T) {
	t.Parallel()
	testTransactionStatesSurviveRestart(t, false)
}

func TestTransactionStatesSurviveRestartSIGKILL(t *testing.T) {
	t.Parallel()
	testTransactionStatesSurviveRestart(t, true)
}

func testTransactionStatesSurviveRestart(t *testing.T, kill bool) {
	c := startClusterConf(t, txnRestartConf...)
	topic := "compat-txn-states-term"
	if kill {
		topic = "compat-txn-states-kill"
	}
	c.createTopic(topic, defaultQueues)
	x := newTxnLog()
	tp := c.newTxnProducer(x, topic+"-pg")
	ids := map[string][]string{}
	for _, plan := range []string{planCommit, planRollback, planCommit, planRollback, planCommit, planRollback} {
		id, _ := sendTxn(t, tp, topic, plan, len(ids[plan]), plan)
		ids[plan] = append(ids[plan], id)
	}
	for _, plan := range []string{planRestartCommit, planRestartRollback, planNever, planRestartCommit, planRestartRollback, planNever} {
		id, st := sendTxn(t, tp, topic, plan, len(ids[plan]), plan)
		if st != primitive.UnknowState {
			t.Fatalf("%s: local state %v, want unknown", id, st)
		}
		ids[plan] = append(ids[plan], id)
	}
	open := slices.Concat(ids[planRestartCommit], ids[planRestartRollback], ids[planNever])
	waitFor(t, txnCheckTimeout, "a check of every open transaction", func() error {
		for _, id := range open {
			if x.checked(id) == 0 {
				return fmt.Errorf("%s not checked yet", id)
			}
		}
		return nil
	})
	x.markRestart()
	c.restartBroker(kill)
	t.Logf("restarted (kill=%v); checks before: %v", kill, x.before)
	after, _ := sendTxn(t, tp, topic, "after", 0, planCommit)

	// The never-resolved ones reach 3 checks in all; the restart-* ones get their
	// answering check.
	waitFor(t, txnCheckTimeout, "the open transactions' checks after the restart", func() error {
		for _, id := range open {
			x.mu.Lock()
			n, b := x.checks[id], x.before[id]
			x.mu.Unlock()
			if strings.HasPrefix(id, planNever) && n < 3 || n == b {
				return fmt.Errorf("%s: %d checks (%d before the restart)", id, n, b)
			}
		}
		return nil
	})
	r := newRecorder()
	c.startConsumer(r, consumerSpec{group: topic + "-g", name: "txn", topic: topic})
	want := slices.Concat(ids[planCommit], ids[planRestartCommit], []string{after})
	r.waitCount(t, "committed", len(want), 30*time.Second, nil)
	// Three more rounds: nothing more is delivered or checked.
	all := r.quiet(3*time.Second, nil)
	checkOnce(t, "committed before, by a check after, and after the restart", all, want)
	checkResolvedFirst(t, x, all)
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, id := range slices.Concat(ids[planCommit], ids[planRollback], []string{after}) {
		if n := x.checks[id]; n != 0 {
			t.Errorf("%s: checked %d times, want none (its END_TRANSACTION resolved it)", id, n)
		}
	}
	for _, id := range slices.Concat(ids[planRestartCommit], ids[planRestartRollback]) {
		if n, b := x.checks[id], x.before[id]; n-b != 1 {
			t.Errorf("%s: checked %d times after the restart (%d before), want once: its answer resolves it", id, n-b, b)
		}
	}
	for _, id := range ids[planNever] {
		if n := x.checks[id]; n != 3 || x.before[id] == 0 {
			t.Errorf("%s: checked %d times in all (%d before the restart), want transactionCheckMax = 3 over both runs", id, n, x.before[id])
		}
	}
}

// TestTransactionCommitRacingKill: 5 transactions commit in ExecuteLocalTransaction and
// the broker is SIGKILLed the moment the last SendMessageInTransaction returns, so its
// END_TRANSACTION (oneway) may be unread, half applied (commit stored, op record not) or
// done. After the restart each of the 5 is delivered exactly once: the first 4 are never
// checked (their commits landed before the next send), the last at most once (if its
// commit was lost the check commits it; if only its op record was, the broker finds the
// commit in the topic and does not ask).
func TestTransactionCommitRacingKill(t *testing.T) {
	t.Parallel()
	c := startClusterConf(t, txnRestartConf...)
	const topic = "compat-txn-kill-commit"
	c.createTopic(topic, defaultQueues)
	x := newTxnLog()
	tp := c.newTxnProducer(x, topic+"-pg")
	var ids []string
	for i := range 5 {
		id, st := sendTxn(t, tp, topic, planCommit, i, planCommit)
		if st != primitive.CommitMessageState {
			t.Fatalf("%s: local state %v, want commit", id, st)
		}
		ids = append(ids, id)
	}
	c.restartBroker(true)
	after, _ := sendTxn(t, tp, topic, "after", 0, planCommit)
	r := newRecorder()
	c.startConsumer(r, consumerSpec{group: topic + "-g", name: "txn", topic: topic})
	r.waitCount(t, "committed", len(ids)+1, 30*time.Second, nil)
	// Three check rounds: nothing more is delivered.
	all := r.quiet(3*time.Second, nil)
	checkOnce(t, "committed before the kill, and after", all, append(ids, after))
	checkResolvedFirst(t, x, all)
	for i, id := range append(ids, after) {
		n, limit := x.checked(id), 0
		if i == len(ids)-1 {
			limit = 1
		}
		if n > limit {
			t.Errorf("%s: checked %d times, want at most %d", id, n, limit)
		}
	}
	t.Logf("the last transaction was checked %d times after the kill", x.checked(ids[len(ids)-1]))
}

// checkResolvedFirst fails the test for a delivery before its local transaction (or the
// check) returned Commit.
func checkResolvedFirst(t testing.TB, x *txnLog, gs []got) {
	t.Helper()
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, g := range gs {
		at, ok := x.resolvedAt[g.id]
		switch {
		case !ok:
			t.Errorf("%s delivered but never committed", g.id)
		case g.at.Before(at):
			t.Errorf("%s delivered %v before its transaction committed: the half message was visible", g.id, at.Sub(g.at))
		}
		if !strings.Contains(g.id, "commit") && !strings.HasPrefix(g.id, "pending") && !strings.HasPrefix(g.id, "after") {
			t.Errorf("%s delivered, its plan never commits", g.id)
		}
	}
}
