package broker

import (
	"strconv"
	"testing"
	"time"

	"github.com/ringmq/ringmq/engine"
	"github.com/ringmq/ringmq/engine/meta"
	"github.com/ringmq/ringmq/engine/record"
	"github.com/ringmq/ringmq/netio/remoting"
)

func fastTxChecks(c *Config, _ *engine.Config) {
	c.TransactionCheckInterval = 20 * time.Millisecond
	c.TransactionTimeout = 50 * time.Millisecond
	c.TransactionCheckMax = 3
}

func sendHalf(t *testing.T, c *remoting.Client, topic, uniq, body string) *remoting.Command {
	t.Helper()
	resp := invoke(t, c, remoting.ReqSendMessage, ext("producerGroup", "txg", "topic", topic, "queueId", "0",
		"sysFlag", "4", "bornTimestamp", "1700000000000", "flag", "0",
		"properties", props("TRAN_MSG", "true", "PGROUP", "txg", "UNIQ_KEY", uniq),
		"reconsumeTimes", "0", "defaultTopic", "TBW102", "defaultTopicQueueNums", "4"), []byte(body))
	wantCode(t, resp, remoting.RespSuccess)
	return resp
}

// An open transaction is checked with its producer, which commits it on the connection the
// check came on; a resolved one is never checked again.
func TestTransactionCheck(t *testing.T) {
	tb := startBroker(t, "", nil, fastTxChecks)
	checks := make(chan *remoting.Command, 16)
	var producer *remoting.Client
	producer = tb.dial(func(_ *remoting.Client, req *remoting.Command) {
		if req.Code == remoting.ReqCheckTransactionState {
			checks <- req.Clone()
		}
	})
	createTopic(t, producer, "TXC", 1, meta.PermRW)
	resp := sendHalf(t, producer, "TXC", "U-open", "open")

	var check *remoting.Command
	select {
	case check = <-checks:
	case <-time.After(5 * time.Second):
		t.Fatal("no CHECK_TRANSACTION_STATE within 5 s")
	}
	_, phys, _ := record.ParseOffsetMsgID(resp.ExtString("msgId"))
	if check.ExtString("commitLogOffset") != strconv.FormatInt(phys, 10) ||
		check.ExtString("tranStateTableOffset") != resp.ExtString("queueOffset") || check.ExtString("msgId") != "U-open" {
		t.Fatalf("check header: %s", check)
	}
	v, err := record.Decode(check.Body)
	if err != nil {
		t.Fatalf("check body: %v", err)
	}
	if string(v.Topic()) != "TXC" || string(v.Body()) != "open" {
		t.Fatalf("check body: topic %s body %q, want the real topic and the body", v.Topic(), v.Body())
	}
	if pg, _ := v.Property(record.PropProducerGroup); string(pg) != "txg" {
		t.Fatalf("check body PGROUP: %q", pg)
	}
	// The Go client answers oneway on the same connection.
	if err := producer.InvokeOneway(remoting.ReqEndTransaction, ext("producerGroup", "txg",
		"tranStateTableOffset", check.ExtString("tranStateTableOffset"), "commitLogOffset", check.ExtString("commitLogOffset"),
		"commitOrRollback", "8", "fromTransactionCheck", "true", "msgId", "U-open", "transactionId", "U-open"), nil); err != nil {
		t.Fatal(err)
	}
	recs := records(t, pullWait(t, producer, pullOpts{group: "g", topic: "TXC"}).Body)
	if len(recs) != 1 || string(recs[0].Body()) != "open" {
		t.Fatalf("after the checked commit: %d records", len(recs))
	}
	// Resolved: the progress moves past it and no more checks come.
	waitFor(t, "the check progress to pass the resolved half message", func() bool {
		off, _ := tb.b.Meta().QueryOffset(TopicTransHalf, txHalfProgressGroup, 0)
		return off == 1
	})
	for len(checks) > 0 {
		<-checks // checks sent before the commit landed
	}
	deadline := time.After(200 * time.Millisecond) // ten check rounds
	select {
	case c := <-checks:
		t.Fatalf("a resolved transaction was checked again: %s", c)
	case <-deadline:
	}
}

// A transaction nobody resolves is checked TransactionCheckMax times, then dropped.
func TestTransactionCheckGivesUp(t *testing.T) {
	tb := startBroker(t, "", nil, fastTxChecks)
	checks := make(chan *remoting.Command, 64)
	producer := tb.dial(func(_ *remoting.Client, req *remoting.Command) {
		if req.Code == remoting.ReqCheckTransactionState {
			checks <- req.Clone()
		}
	})
	createTopic(t, producer, "TXD", 1, meta.PermRW)
	sendHalf(t, producer, "TXD", "U-unknown", "unknown")
	waitFor(t, "the half message to be dropped", func() bool {
		off, _ := tb.b.Meta().QueryOffset(TopicTransHalf, txHalfProgressGroup, 0)
		return off == 1
	})
	if n := len(checks); n != 3 {
		t.Fatalf("got %d checks, want TransactionCheckMax = 3", n)
	}
	wantCode(t, pull(t, producer, pullOpts{group: "g", topic: "TXD"}), remoting.RespPullNotFound)
}
