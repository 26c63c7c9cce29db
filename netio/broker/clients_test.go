package broker

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ringmq/ringmq/engine"
	"github.com/ringmq/ringmq/engine/meta"
	"github.com/ringmq/ringmq/engine/record"
	"github.com/ringmq/ringmq/netio/remoting"
	"github.com/ringmq/ringmq/perf"
)

func consumerList(t *testing.T, c *remoting.Client, group string) []string {
	t.Helper()
	resp := invoke(t, c, remoting.ReqGetConsumerListByGroup, ext("consumerGroup", group), nil)
	wantCode(t, resp, remoting.RespSuccess)
	var body struct {
		ConsumerIDList []string `json:"consumerIdList"`
	}
	if err := json.Unmarshal(resp.Body, &body); err != nil {
		t.Fatalf("consumer list body %q: %v", resp.Body, err)
	}
	return body.ConsumerIDList
}

func TestHeartbeatMembershipAndNotify(t *testing.T) {
	tb := startBroker(t, "", nil)
	notified := make(chan string, 16)
	onReq := func(_ *remoting.Client, req *remoting.Command) {
		if req.Code == remoting.ReqNotifyConsumerIDsChanged {
			notified <- req.ExtString("consumerGroup")
		}
	}
	c1 := tb.dial(onReq)
	createTopic(t, c1, "HB", 2, meta.PermRW)
	wantCode(t, invoke(t, c1, remoting.ReqHeartBeat, nil, heartbeatJSON("cid1", "g", "CLUSTERING", "HB", "*")), remoting.RespSuccess)
	if tc, ok := tb.b.Meta().Topic("%RETRY%g"); !ok || tc.WriteQueueNums != 1 || tc.Perm != meta.PermRW {
		t.Fatalf("retry topic of a clustering group: got %+v %v", tc, ok)
	}
	<-notified // c1's own join
	c2 := tb.dial(onReq)
	wantCode(t, invoke(t, c2, remoting.ReqHeartBeat, nil, heartbeatJSON("cid2", "g", "CLUSTERING", "HB", "*")), remoting.RespSuccess)
	for range 2 { // both members hear of the join
		if g := recvWithin(t, notified); g != "g" {
			t.Fatalf("notify for group %q", g)
		}
	}
	if ids := consumerList(t, c1, "g"); len(ids) != 2 || ids[0] != "cid1" || ids[1] != "cid2" {
		t.Fatalf("consumer list: got %q", ids)
	}
	// A repeated heartbeat changes nothing and notifies no one.
	wantCode(t, invoke(t, c2, remoting.ReqHeartBeat, nil, heartbeatJSON("cid2", "g", "CLUSTERING", "HB", "*")), remoting.RespSuccess)
	c2.Close()
	if g := recvWithin(t, notified); g != "g" {
		t.Fatalf("notify after close for group %q", g)
	}
	if ids := consumerList(t, c1, "g"); len(ids) != 1 || ids[0] != "cid1" {
		t.Fatalf("consumer list after c2 closed: got %q", ids)
	}
	select {
	case g := <-notified:
		t.Fatalf("unexpected extra notify for %q", g)
	default:
	}
	// UNREGISTER_CLIENT removes the client too.
	wantCode(t, invoke(t, c1, remoting.ReqUnregisterClient, ext("clientID", "cid1", "consumerGroup", "g"), nil), remoting.RespSuccess)
	if ids := consumerList(t, c1, "g"); len(ids) != 0 {
		t.Fatalf("consumer list after unregister: got %q", ids)
	}
}

func recvWithin(t *testing.T, ch <-chan string) string {
	t.Helper()
	select {
	case s := <-ch:
		return s
	case <-time.After(5 * time.Second):
		t.Fatal("no NOTIFY_CONSUMER_IDS_CHANGED within 5 s")
		return ""
	}
}

func TestConsumerExpiry(t *testing.T) {
	tb := startBroker(t, "", nil)
	c := tb.dial(nil)
	wantCode(t, invoke(t, c, remoting.ReqHeartBeat, nil, heartbeatJSON("cid1", "g", "BROADCASTING", "T", "*")), remoting.RespSuccess)
	if _, ok := tb.b.Meta().Topic("%RETRY%g"); ok {
		t.Fatal("a broadcasting group got a retry topic")
	}
	tb.b.clients.expire(1 << 62)
	if ids := consumerList(t, c, "g"); len(ids) != 0 {
		t.Fatalf("silent client not expired: %q", ids)
	}
}

func TestOffsetsSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	tb := startBroker(t, dir, nil)
	c := tb.dial(nil)
	createTopic(t, c, "OF", 2, meta.PermRW)
	wantCode(t, invoke(t, c, remoting.ReqUpdateConsumerOffset, ext("consumerGroup", "g", "topic", "OF", "queueId", "1", "commitOffset", "42"), nil), remoting.RespSuccess)
	tb.stop()

	tb = startBroker(t, dir, nil)
	c = tb.dial(nil)
	resp := invoke(t, c, remoting.ReqQueryConsumerOffset, ext("consumerGroup", "g", "topic", "OF", "queueId", "1"), nil)
	wantCode(t, resp, remoting.RespSuccess)
	if off := extInt(t, resp, "offset"); off != 42 {
		t.Fatalf("offset after restart: got %d, want 42", off)
	}
	if _, ok := tb.b.Meta().Topic("OF"); !ok {
		t.Fatal("topic OF lost across restart")
	}
}

func TestQueryOffsetNewGroup(t *testing.T) {
	tb := startBroker(t, "", nil)
	c := tb.dial(nil)
	createTopic(t, c, "NG", 1, meta.PermRW)
	wantCode(t, sendV1(t, c, "NG", 0, "", []byte("before the group existed")), remoting.RespSuccess)
	tb.waitDispatched("NG", 0, 1)
	// No offset, but the queue still starts at 0: SUCCESS offset 0 (Java's rule), so a new
	// group consuming from the last offset still sees messages sent before it started.
	resp := invoke(t, c, remoting.ReqQueryConsumerOffset, ext("consumerGroup", "new", "topic", "NG", "queueId", "0"), nil)
	wantCode(t, resp, remoting.RespSuccess)
	if off := extInt(t, resp, "offset"); off != 0 {
		t.Fatalf("new group offset: got %d, want 0", off)
	}
	for code, want := range map[int16]int64{remoting.ReqGetMaxOffset: 1, remoting.ReqGetMinOffset: 0} {
		resp := invoke(t, c, code, ext("topic", "NG", "queueId", "0"), nil)
		if got := extInt(t, resp, "offset"); got != want {
			t.Errorf("%s: got %d, want %d", remoting.RequestName(code), got, want)
		}
	}
	resp = invoke(t, c, remoting.ReqSearchOffsetByTimestamp, ext("topic", "NG", "queueId", "0", "timestamp", "0"), nil)
	if got := extInt(t, resp, "offset"); got != 0 {
		t.Errorf("SEARCH_OFFSET_BY_TIMESTAMP(0): got %d, want 0", got)
	}
	resp = invoke(t, c, remoting.ReqGetEarliestMsgStoreTime, ext("topic", "NG", "queueId", "0"), nil)
	wantCode(t, resp, remoting.RespSuccess)
	if ts := extInt(t, resp, "timestamp"); ts <= 0 {
		t.Errorf("earliest store time: got %d", ts)
	}
}

func lockBody(group, clientID string, queues ...int) []byte {
	var mqs []mqRef
	for _, q := range queues {
		mqs = append(mqs, mqRef{Topic: "OR", BrokerName: "broker-a", QueueID: int32(q)})
	}
	b, _ := json.Marshal(lockBatchBody{ConsumerGroup: group, ClientID: clientID, MQSet: mqs})
	return b
}

func lockedQueues(t *testing.T, resp *remoting.Command) []int32 {
	t.Helper()
	wantCode(t, resp, remoting.RespSuccess)
	var body struct {
		LockOKMQSet []mqRef `json:"lockOKMQSet"`
	}
	if err := json.Unmarshal(resp.Body, &body); err != nil {
		t.Fatalf("lock answer %q: %v", resp.Body, err)
	}
	var qs []int32
	for _, mq := range body.LockOKMQSet {
		qs = append(qs, mq.QueueID)
	}
	return qs
}

func TestLockBatchMQ(t *testing.T) {
	tb := startBroker(t, "", nil)
	c1, c2 := tb.dial(nil), tb.dial(nil)
	if got := lockedQueues(t, invoke(t, c1, remoting.ReqLockBatchMQ, nil, lockBody("g", "c1", 0, 1))); len(got) != 2 {
		t.Fatalf("c1 lock: got %v", got)
	}
	if got := lockedQueues(t, invoke(t, c2, remoting.ReqLockBatchMQ, nil, lockBody("g", "c2", 0, 1, 2))); len(got) != 1 || got[0] != 2 {
		t.Fatalf("c2 lock while c1 holds 0 and 1: got %v, want [2]", got)
	}
	// Unlock by a non-owner does nothing; by the owner frees the queue.
	wantCode(t, invoke(t, c2, remoting.ReqUnlockBatchMQ, nil, lockBody("g", "c2", 0)), remoting.RespSuccess)
	if got := lockedQueues(t, invoke(t, c2, remoting.ReqLockBatchMQ, nil, lockBody("g", "c2", 0))); len(got) != 0 {
		t.Fatalf("c2 took queue 0 after its own unlock attempt: %v", got)
	}
	wantCode(t, invoke(t, c1, remoting.ReqUnlockBatchMQ, nil, lockBody("g", "c1", 0)), remoting.RespSuccess)
	if got := lockedQueues(t, invoke(t, c2, remoting.ReqLockBatchMQ, nil, lockBody("g", "c2", 0))); len(got) != 1 {
		t.Fatalf("c2 lock after c1 unlocked: got %v", got)
	}
	// c1's connection closes: its queue 1 is free at once, no 60 s wait.
	c1.Close()
	waitFor(t, "c1's locks to be dropped", func() bool {
		_, held := tb.b.locks.holder("g", "OR", 1, 0)
		return !held
	})
	if got := lockedQueues(t, invoke(t, c2, remoting.ReqLockBatchMQ, nil, lockBody("g", "c2", 1))); len(got) != 1 {
		t.Fatalf("c2 lock after c1 closed: got %v", got)
	}
}

func TestSendBackToRetryAndDLQ(t *testing.T) {
	tb := startBroker(t, "", nil)
	c := tb.dial(nil)
	createTopic(t, c, "SB", 1, meta.PermRW)
	uniq := "C0000202398A00000000682018f00009"
	resp := sendV1(t, c, "SB", 0, props("UNIQ_KEY", uniq, "TAGS", "t"), []byte("retry me"))
	wantCode(t, resp, remoting.RespSuccess)
	_, phys, _ := record.ParseOffsetMsgID(resp.ExtString("msgId"))

	back := func(delayLevel, maxTimes int, offset int64) {
		t.Helper()
		wantCode(t, invoke(t, c, remoting.ReqConsumerSendMsgBack, ext("group", "g", "offset", strconv.FormatInt(offset, 10),
			"delayLevel", strconv.Itoa(delayLevel), "originMsgId", uniq, "originTopic", "SB", "unitMode", "false",
			"maxReconsumeTimes", strconv.Itoa(maxTimes)), nil), remoting.RespSuccess)
	}
	back(0, 16, phys)
	// Retry: parked in SCHEDULE_TOPIC_XXXX queue 2 (level 3 = 3 + reconsumeTimes 0).
	recs := records(t, pullWait(t, c, pullOpts{group: "x", topic: TopicSchedule, queueID: 2}).Body)
	if len(recs) != 1 {
		t.Fatalf("schedule queue 2: got %d records, want 1", len(recs))
	}
	v := recs[0]
	p := v.Properties()
	for key, want := range map[string]string{
		record.PropRealTopic: "%RETRY%g", record.PropRealQueueID: "0", record.PropDelay: "3",
		record.PropRetryTopic: "SB", record.PropOriginMessageID: uniq, record.PropUniqKey: uniq,
	} {
		if got, _ := record.Property(p, key); string(got) != want {
			t.Errorf("retry property %s: got %q, want %q", key, got, want)
		}
	}
	if v.ReconsumeTimes() != 1 || string(v.Body()) != "retry me" {
		t.Errorf("retry record: reconsumeTimes %d body %q", v.ReconsumeTimes(), v.Body())
	}
	// The retry copy has reconsumeTimes 1; with maxReconsumeTimes 1 it goes to the DLQ.
	back(0, 1, v.PhysicalOffset())
	recs = records(t, pullWait(t, c, pullOpts{group: "x", topic: "%DLQ%g"}).Body)
	if len(recs) != 1 {
		t.Fatalf("DLQ: got %d records, want 1", len(recs))
	}
	d := recs[0].Properties()
	if got, _ := record.Property(d, record.PropRetryTopic); string(got) != "SB" {
		t.Errorf("DLQ RETRY_TOPIC: got %q", got)
	}
	if _, ok := record.Property(d, record.PropDelay); ok {
		t.Error("DLQ message keeps DELAY")
	}
	// Orderly consumers ask for the DLQ directly with delayLevel -1.
	back(-1, 16, phys)
	tb.waitDispatched("%DLQ%g", 0, 2)
	if n := len(records(t, pull(t, c, pullOpts{group: "x", topic: "%DLQ%g"}).Body)); n != 2 {
		t.Fatalf("DLQ after delayLevel -1: got %d records, want 2", n)
	}
}

func TestHalfMessageInvisibleUntilCommit(t *testing.T) {
	tb := startBroker(t, "", nil)
	c := tb.dial(nil)
	createTopic(t, c, "TX", 1, meta.PermRW)
	uniq := "C0000202398A00000000682018f0000A"
	resp := invoke(t, c, remoting.ReqSendMessage, ext("producerGroup", "txg", "topic", "TX", "queueId", "0",
		"sysFlag", "4", "bornTimestamp", "1700000000000", "flag", "0",
		"properties", props("TRAN_MSG", "true", "PGROUP", "txg", "UNIQ_KEY", uniq),
		"reconsumeTimes", "0", "defaultTopic", "TBW102", "defaultTopicQueueNums", "4"), []byte("half"))
	wantCode(t, resp, remoting.RespSuccess)
	if resp.ExtString("transactionId") != uniq {
		t.Fatalf("transactionId: got %q, want the UNIQ_KEY", resp.ExtString("transactionId"))
	}
	tb.waitDispatched(TopicTransHalf, 0, 1)
	wantCode(t, pull(t, c, pullOpts{group: "g", topic: "TX"}), remoting.RespPullNotFound)
	_, phys, err := record.ParseOffsetMsgID(resp.ExtString("msgId"))
	if err != nil {
		t.Fatal(err)
	}
	for range 2 { // the second commit (say, an answer to a check) must not store it again
		end := invoke(t, c, remoting.ReqEndTransaction, ext("producerGroup", "txg", "tranStateTableOffset",
			resp.ExtString("queueOffset"), "commitLogOffset", strconv.FormatInt(phys, 10), "commitOrRollback", "8",
			"fromTransactionCheck", "false", "msgId", uniq, "transactionId", uniq), nil)
		wantCode(t, end, remoting.RespSuccess)
	}
	// A marker sent after both commits lands right behind the one committed copy.
	wantCode(t, sendV1(t, c, "TX", 0, "", []byte("marker")), remoting.RespSuccess)
	tb.waitDispatched("TX", 0, 2)
	recs := records(t, pull(t, c, pullOpts{group: "g", topic: "TX"}).Body)
	if len(recs) != 2 || string(recs[0].Body()) != "half" || string(recs[1].Body()) != "marker" {
		t.Fatalf("after two commits and a marker: got %d records, want [half marker]", len(recs))
	}
	v := recs[0]
	if _, ok := record.Property(v.Properties(), record.PropTranMsg); ok || v.SysFlag()&record.SysFlagTxMask != record.SysFlagTxCommit {
		t.Fatalf("committed record: props %q sysFlag %#x", v.Properties(), v.SysFlag())
	}
	if v.PreparedTransactionOffset() != phys {
		t.Fatalf("preparedTransactionOffset: got %d, want %d", v.PreparedTransactionOffset(), phys)
	}
	// A wrong producer group is refused.
	bad := invoke(t, c, remoting.ReqEndTransaction, ext("producerGroup", "other", "tranStateTableOffset", "0",
		"commitLogOffset", strconv.FormatInt(phys, 10), "commitOrRollback", "8"), nil)
	wantCode(t, bad, remoting.RespSystemError)
}

func TestDelayedMessageParked(t *testing.T) {
	tb := startBroker(t, "", nil)
	c := tb.dial(nil)
	createTopic(t, c, "DL", 1, meta.PermRW)
	wantCode(t, sendV1(t, c, "DL", 0, props("DELAY", "2"), []byte("later")), remoting.RespSuccess)
	tb.waitDispatched(TopicSchedule, 1, 1)
	wantCode(t, pull(t, c, pullOpts{group: "g", topic: "DL"}), remoting.RespPullNotFound)
	recs := records(t, pullWait(t, c, pullOpts{group: "g", topic: TopicSchedule, queueID: 1}).Body)
	if len(recs) != 1 {
		t.Fatalf("schedule queue 1: got %d records", len(recs))
	}
	if rt, _ := record.Property(recs[0].Properties(), record.PropRealTopic); string(rt) != "DL" {
		t.Fatalf("REAL_TOPIC: got %q", rt)
	}
}

func TestAdminTopicCommands(t *testing.T) {
	tb := startBroker(t, "", nil)
	c := tb.dial(nil)
	createTopic(t, c, "AD", 3, meta.PermRW)
	// Acknowledged means on disk: a crash right after must not lose the topic.
	if raw, err := os.ReadFile(filepath.Join(tb.dir, "config", meta.TopicsFile)); err != nil || !strings.Contains(string(raw), `"AD"`) {
		t.Fatalf("topics.json right after the create: %s %v", raw, err)
	}
	wantCode(t, sendV1(t, c, "AD", 0, "", []byte("x")), remoting.RespSuccess)
	resp := invoke(t, c, remoting.ReqGetAllTopicConfig, nil, nil)
	wantCode(t, resp, remoting.RespSuccess)
	var all struct {
		TopicConfigTable map[string]meta.TopicConfig `json:"topicConfigTable"`
	}
	if err := json.Unmarshal(resp.Body, &all); err != nil {
		t.Fatal(err)
	}
	if all.TopicConfigTable["AD"].ReadQueueNums != 3 || all.TopicConfigTable[TopicDefault].Perm != 7 {
		t.Fatalf("topic table: %s", resp.Body)
	}
	wantCode(t, invoke(t, c, remoting.ReqDeleteTopicInBroker, ext("topic", "AD"), nil), remoting.RespSuccess)
	if _, ok := tb.b.Meta().Topic("AD"); ok {
		t.Fatal("AD still configured after delete")
	}
	wantCode(t, pull(t, c, pullOpts{group: "g", topic: "AD"}), remoting.RespTopicNotExist)
	wantCode(t, invoke(t, c, remoting.ReqHeartBeat, nil, heartbeatJSON("c", "grp", "CLUSTERING", "T", "*")), remoting.RespSuccess)
	resp = invoke(t, c, remoting.ReqGetAllSubscriptionGroupConfig, nil, nil)
	var groups struct {
		SubscriptionGroupTable map[string]meta.GroupConfig `json:"subscriptionGroupTable"`
	}
	if err := json.Unmarshal(resp.Body, &groups); err != nil || groups.SubscriptionGroupTable["grp"].RetryMaxTimes != 16 {
		t.Fatalf("group table: %s (%v)", resp.Body, err)
	}
	wantCode(t, invoke(t, c, reqUpdateAndCreateSubscriptionGroup, nil, []byte(`{"groupName":"grp","retryMaxTimes":3}`)), remoting.RespSuccess)
	if g, _ := tb.b.Meta().Group("grp"); g.RetryMaxTimes != 3 || g.RetryQueueNums != 1 || !g.ConsumeEnable {
		t.Fatalf("updated group: %+v (unset fields keep their defaults)", g)
	}
	wantCode(t, invoke(t, c, remoting.ReqDeleteSubscriptionGroup, ext("groupName", "grp"), nil), remoting.RespSuccess)
	if _, ok := tb.b.Meta().Group("grp"); ok {
		t.Fatal("group still configured after DELETE_SUBSCRIPTIONGROUP")
	}
}

func TestQueryMessageByKey(t *testing.T) {
	tb := startBroker(t, "", nil)
	c := tb.dial(nil)
	createTopic(t, c, "QK", 1, meta.PermRW)
	wantCode(t, sendV1(t, c, "QK", 0, props("KEYS", "order-1 order-2"), []byte("keyed")), remoting.RespSuccess)
	wantCode(t, sendV1(t, c, "QK", 0, props("KEYS", "other"), []byte("other")), remoting.RespSuccess)
	tb.waitDispatched("QK", 0, 2)
	now := time.Now().UnixMilli()
	resp := invoke(t, c, remoting.ReqQueryMessage, ext("topic", "QK", "key", "order-2", "maxNum", "10",
		"beginTimestamp", "0", "endTimestamp", strconv.FormatInt(now+60000, 10)), nil)
	wantCode(t, resp, remoting.RespSuccess)
	recs := records(t, resp.Body)
	if len(recs) != 1 || string(recs[0].Body()) != "keyed" {
		t.Fatalf("query by key: got %d records", len(recs))
	}
	resp = invoke(t, c, remoting.ReqQueryMessage, ext("topic", "QK", "key", "nope", "maxNum", "10",
		"beginTimestamp", "0", "endTimestamp", strconv.FormatInt(now+60000, 10)), nil)
	wantCode(t, resp, remoting.RespQueryNotFound)
}

func fastDelays(c *Config, e *engine.Config) {
	levels := make([]time.Duration, MaxDelayLevel)
	for i := range levels {
		levels[i] = time.Duration(i+1) * 50 * time.Millisecond
	}
	c.DelayLevels, e.DelayLevels = levels, levels
}

func TestDelayedMessageDelivered(t *testing.T) {
	tb := startBroker(t, "", nil, fastDelays)
	c := tb.dial(nil)
	createTopic(t, c, "DD", 2, meta.PermRW)
	sent := time.Now()
	wantCode(t, sendV1(t, c, "DD", 1, props("DELAY", "4", "TAGS", "t"), []byte("later")), remoting.RespSuccess)
	recs := records(t, pullWait(t, c, pullOpts{group: "g", topic: "DD", queueID: 1}).Body)
	waited := time.Since(sent)
	if len(recs) != 1 || string(recs[0].Body()) != "later" {
		t.Fatalf("delivered: got %d records", len(recs))
	}
	if waited < 200*time.Millisecond {
		t.Fatalf("delivered after %v, before the 200 ms of level 4", waited)
	}
	p := recs[0].Properties()
	if _, ok := record.Property(p, record.PropDelay); ok {
		t.Error("delivered message still has DELAY")
	}
	if tag, _ := record.Property(p, record.PropTags); string(tag) != "t" {
		t.Errorf("TAGS lost: %q", p)
	}
	// Progress is recorded, so a restart does not deliver it again.
	waitFor(t, "delivery progress", func() bool {
		off, _ := tb.b.Meta().QueryOffset(TopicSchedule, scheduleProgressGroup, 3)
		return off == 1
	})
}

func TestRetryDeliveredToRetryTopic(t *testing.T) {
	tb := startBroker(t, "", nil, fastDelays)
	c := tb.dial(nil)
	createTopic(t, c, "RT", 1, meta.PermRW)
	resp := sendV1(t, c, "RT", 0, props("UNIQ_KEY", "U1"), []byte("again"))
	wantCode(t, resp, remoting.RespSuccess)
	_, phys, _ := record.ParseOffsetMsgID(resp.ExtString("msgId"))
	wantCode(t, invoke(t, c, remoting.ReqConsumerSendMsgBack, ext("group", "g", "offset", strconv.FormatInt(phys, 10),
		"delayLevel", "0", "originMsgId", "U1", "maxReconsumeTimes", "16"), nil), remoting.RespSuccess)
	recs := records(t, pullWait(t, c, pullOpts{group: "g", topic: "%RETRY%g"}).Body)
	if len(recs) != 1 || string(recs[0].Body()) != "again" || recs[0].ReconsumeTimes() != 1 {
		t.Fatalf("retry topic: got %d records", len(recs))
	}
	if rt, _ := record.Property(recs[0].Properties(), record.PropRetryTopic); string(rt) != "RT" {
		t.Fatalf("RETRY_TOPIC: got %q", rt)
	}
}

func TestMetrics(t *testing.T) {
	tb := startBroker(t, "", nil)
	c := tb.dial(nil)
	wantCode(t, invoke(t, c, remoting.ReqHeartBeat, nil, heartbeatJSON("cid1", "g", "CLUSTERING", "T", "*")), remoting.RespSuccess)
	reg := perf.NewRegistry()
	tb.b.RegisterMetrics(reg)
	var out bytes.Buffer
	if err := perf.WritePrometheus(&out, nil, reg); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"ringmq_broker_client_registrations 1", "ringmq_broker_held_pulls 0", "ringmq_broker_sends_in_flight_max 10000"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("metrics lack %q:\n%s", want, out.String())
		}
	}
}
