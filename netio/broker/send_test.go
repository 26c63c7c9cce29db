package broker

import (
	"bytes"
	"strconv"
	"strings"
	"testing"

	"github.com/ringmq/ringmq/engine"
	"github.com/ringmq/ringmq/engine/meta"
	"github.com/ringmq/ringmq/engine/record"
	"github.com/ringmq/ringmq/netio/remoting"
	"github.com/ringmq/ringmq/perf"
)

func TestSendPullRoundTrip(t *testing.T) {
	tb := startBroker(t, "", nil)
	c := tb.dial(nil)
	createTopic(t, c, "T1", 2, meta.PermRW)

	p := props("TAGS", "tagA", "KEYS", "k1 k2", "UNIQ_KEY", "C0000202398A00000000682018f00001")
	body := []byte("hello ringmq")
	resp := sendV1(t, c, "T1", 1, p, body)
	wantCode(t, resp, remoting.RespSuccess)
	msgID := resp.ExtString("msgId")
	if len(msgID) != 32 || strings.ToUpper(msgID) != msgID {
		t.Fatalf("msgId %q: want 32 upper-case hex characters", msgID)
	}
	host, phys, err := record.ParseOffsetMsgID(msgID)
	if err != nil || host != tb.addr {
		t.Fatalf("msgId %q decodes to %v @%d (%v), want store host %v", msgID, host, phys, err, tb.addr)
	}
	if q := extInt(t, resp, "queueId"); q != 1 {
		t.Fatalf("queueId: got %d, want 1", q)
	}
	if off := extInt(t, resp, "queueOffset"); off != 0 {
		t.Fatalf("queueOffset: got %d, want 0", off)
	}
	if resp.ExtString("MSG_REGION") != "DefaultRegion" || resp.ExtString("TRACE_ON") != "true" {
		t.Fatalf("MSG_REGION/TRACE_ON missing: %s", resp)
	}

	pr := pullWait(t, c, pullOpts{group: "g", topic: "T1", queueID: 1, offset: 0})
	wantCode(t, pr, remoting.RespSuccess)
	if next := extInt(t, pr, "nextBeginOffset"); next != 1 {
		t.Fatalf("nextBeginOffset: got %d, want 1", next)
	}
	if mx := extInt(t, pr, "maxOffset"); mx != 1 {
		t.Fatalf("maxOffset: got %d, want 1", mx)
	}
	if pr.ExtString("suggestWhichBrokerId") != "0" {
		t.Fatalf("suggestWhichBrokerId: %s", pr)
	}
	recs := records(t, pr.Body)
	if len(recs) != 1 {
		t.Fatalf("got %d records, want 1", len(recs))
	}
	v := recs[0]
	wantProps := p + props("CLUSTER", DefaultClusterName)
	switch {
	case !bytes.Equal(v.Body(), body):
		t.Errorf("body: got %q, want %q", v.Body(), body)
	case string(v.Topic()) != "T1" || v.QueueID() != 1 || v.QueueOffset() != 0:
		t.Errorf("topic/queue/offset: got %s/%d/%d", v.Topic(), v.QueueID(), v.QueueOffset())
	case v.PhysicalOffset() != phys:
		t.Errorf("physical offset: got %d, msgId says %d", v.PhysicalOffset(), phys)
	case string(v.Properties()) != wantProps:
		t.Errorf("properties: got %q, want %q", v.Properties(), wantProps)
	case v.StoreHost() != tb.addr:
		t.Errorf("storeHost: got %v, want %v", v.StoreHost(), tb.addr)
	case v.BornHost().Addr() != tb.addr.Addr() || v.BornHost().Port() == 0 || v.BornHost() == tb.addr:
		t.Errorf("bornHost: got %v, want the client's 127.0.0.1:port", v.BornHost())
	}
	// Byte-exact: the pull body is the stored record, which VIEW_MESSAGE_BY_ID also returns.
	view := invoke(t, c, remoting.ReqViewMessageByID, ext("offset", strconv.FormatInt(phys, 10)), nil)
	wantCode(t, view, remoting.RespSuccess)
	if !bytes.Equal(view.Body, pr.Body) {
		t.Fatalf("VIEW_MESSAGE_BY_ID body differs from the pulled record")
	}
}

func TestSendV2AndAutoCreate(t *testing.T) {
	tb := startBroker(t, "", nil)
	c := tb.dial(nil)
	resp := invoke(t, c, remoting.ReqSendMessageV2, ext("a", "pg", "b", "Auto1", "c", "TBW102", "d", "4",
		"e", "-1", "f", "0", "g", "1700000000000", "h", "0", "i", props("TAGS", "x"), "j", "0", "k", "false"),
		[]byte("v2"))
	wantCode(t, resp, remoting.RespSuccess)
	tc, ok := tb.b.Meta().Topic("Auto1")
	if !ok || tc.WriteQueueNums != 4 || tc.Perm != meta.PermRW {
		t.Fatalf("auto-created topic: got %+v %v, want 4 queues perm 6", tc, ok)
	}
	q := extInt(t, resp, "queueId")
	if q < 0 || q >= 4 {
		t.Fatalf("queueId %d outside the topic's 4 queues", q)
	}
}

func TestSendBatch(t *testing.T) {
	tb := startBroker(t, "", nil)
	c := tb.dial(nil)
	createTopic(t, c, "TB", 1, meta.PermRW)
	bodies := [][]byte{[]byte("b1"), []byte("b2"), []byte("b3")}
	ps := []string{props("TAGS", "tagA"), props("KEYS", "k2"), ""}
	resp := invoke(t, c, remoting.ReqSendBatchMessage, ext("a", "pg", "b", "TB", "c", "TBW102", "d", "4", "e", "0",
		"f", "0", "g", "1700000000000", "h", "0", "i", "", "j", "0", "k", "false", "l", "0", "m", "true"),
		batchBody(bodies, ps))
	wantCode(t, resp, remoting.RespSuccess)
	ids := strings.Split(resp.ExtString("msgId"), ",")
	if len(ids) != 3 {
		t.Fatalf("msgId %q: want 3 comma-joined ids", resp.ExtString("msgId"))
	}
	if off := extInt(t, resp, "queueOffset"); off != 0 {
		t.Fatalf("queueOffset: got %d, want the first message's 0", off)
	}
	tb.waitDispatched("TB", 0, 3)
	recs := records(t, pull(t, c, pullOpts{group: "g", topic: "TB"}).Body)
	if len(recs) != 3 {
		t.Fatalf("got %d records, want 3", len(recs))
	}
	for i, v := range recs {
		_, phys, _ := record.ParseOffsetMsgID(ids[i])
		wantProps := ps[i] + props("CLUSTER", DefaultClusterName)
		if !bytes.Equal(v.Body(), bodies[i]) || v.QueueOffset() != int64(i) || v.PhysicalOffset() != phys ||
			string(v.Properties()) != wantProps {
			t.Errorf("record %d: body %q offset %d phys %d props %q; want %q %d %d %q",
				i, v.Body(), v.QueueOffset(), v.PhysicalOffset(), v.Properties(), bodies[i], i, phys, wantProps)
		}
	}
}

// A batch element that is delayed, transactional or timed is refused, and nothing of the
// batch is stored: a batch is one append at the moment it arrives.
func TestSendBatchRefusesScheduledElements(t *testing.T) {
	tb := startBroker(t, "", nil)
	c := tb.dial(nil)
	createTopic(t, c, "TBS", 1, meta.PermRW)
	for _, p := range []string{props("DELAY", "3"), props("TRAN_MSG", "true"), props("TIMER_DELIVER_MS", "4102444800000"),
		props("TIMER_DELAY_SEC", "10"), props("TIMER_DELAY_MS", "10000")} {
		resp := invoke(t, c, remoting.ReqSendBatchMessage, ext("a", "pg", "b", "TBS", "c", "TBW102", "d", "4", "e", "0",
			"f", "0", "g", "1700000000000", "h", "0", "i", "", "j", "0", "k", "false", "l", "0", "m", "true"),
			batchBody([][]byte{[]byte("ok"), []byte("scheduled")}, []string{"", p}))
		wantCode(t, resp, remoting.RespMessageIllegal)
		if !strings.Contains(string(resp.Remark), "batch messages cannot") {
			t.Errorf("%q: remark %q does not say why", p, resp.Remark)
		}
	}
	if n := tb.store.MaxOffset("TBS", 0); n != 0 {
		t.Fatalf("%d messages stored from refused batches", n)
	}
}

func TestSendErrors(t *testing.T) {
	tb := startBroker(t, "", nil, func(c *Config, _ *engine.Config) {
		c.AutoCreateTopicEnable = false
		c.MaxMessageSizeBytes = 1024
	})
	c := tb.dial(nil)
	createTopic(t, c, "RO", 1, meta.PermRead)
	createTopic(t, c, "T", 2, meta.PermRW)
	for _, tc := range []struct {
		name  string
		topic string
		queue int
		props string
		body  []byte
		code  int16
	}{
		{"illegal topic", "a b", 0, "", []byte("x"), remoting.RespMessageIllegal},
		{"topic too long", strings.Repeat("t", 128), 0, "", []byte("x"), remoting.RespMessageIllegal},
		{"body too large", "T", 0, "", make([]byte, 1025), remoting.RespMessageIllegal},
		{"properties too long", "T", 0, props("K", strings.Repeat("v", 32767)), []byte("x"), remoting.RespMessageIllegal},
		{"unknown topic, auto-create off", "Nope", 0, "", []byte("x"), remoting.RespTopicNotExist},
		{"read-only topic", "RO", 0, "", []byte("x"), remoting.RespNoPermission},
		{"system topic", TopicSchedule, 0, "", []byte("x"), remoting.RespNoPermission},
		{"queue out of range", "T", 2, "", []byte("x"), remoting.RespSystemError},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.topic == TopicSchedule {
				if _, err := tb.b.ensureSystemTopic(TopicSchedule, scheduleQueueNums); err != nil {
					t.Fatal(err)
				}
			}
			resp := sendV1(t, c, tc.topic, tc.queue, tc.props, tc.body)
			wantCode(t, resp, tc.code)
			if len(resp.Remark) == 0 {
				t.Errorf("code %d without a remark", resp.Code)
			}
		})
	}
	resp := invoke(t, c, 999, nil, nil)
	wantCode(t, resp, remoting.RespRequestCodeNotSupported)
	if !strings.Contains(string(resp.Remark), "999") {
		t.Errorf("remark %q does not name the code", resp.Remark)
	}
}

func TestSendQueueIDBeyondRead(t *testing.T) {
	tb := startBroker(t, "", nil)
	c := tb.dial(nil)
	createTopic(t, c, "Q", 3, meta.PermRW)
	for q := range 3 {
		wantCode(t, sendV1(t, c, "Q", q, "", []byte("m"+strconv.Itoa(q))), remoting.RespSuccess)
	}
	for q := range 3 {
		pr := pullWait(t, c, pullOpts{group: "g", topic: "Q", queueID: q})
		recs := records(t, pr.Body)
		if len(recs) != 1 || string(recs[0].Body()) != "m"+strconv.Itoa(q) {
			t.Fatalf("queue %d: got %d records", q, len(recs))
		}
	}
}

func TestRecorderSeesEveryStage(t *testing.T) {
	rec := perf.NewRecorder(perf.RecorderConfig{})
	tb := startBroker(t, "", nil, func(c *Config, _ *engine.Config) { c.Recorder = rec })
	c := tb.dial(nil)
	createTopic(t, c, "REC", 1, meta.PermRW)
	for range 3 {
		wantCode(t, sendV1(t, c, "REC", 0, "", []byte("x")), remoting.RespSuccess)
	}
	wantCode(t, pullWait(t, c, pullOpts{group: "g", topic: "REC"}), remoting.RespSuccess)
	// The hook runs after the write; the client may see the answer first.
	var sends *perf.CodeReport
	waitFor(t, "the recorder to count 3 sends", func() bool {
		r, err := rec.Report("all")
		if err != nil {
			t.Fatal(err)
		}
		for i := range r.Codes {
			if r.Codes[i].Code == remoting.ReqSendMessage && r.Codes[i].E2E.Count == 3 {
				sends = &r.Codes[i]
			}
		}
		return sends != nil
	})
	stages := map[string]int64{}
	for _, st := range sends.Stages {
		stages[st.Stage] = st.Count
	}
	for _, st := range []string{"decoded", "queued", "appended", "flush_submitted", "durable", "written"} {
		if stages[st] != 3 {
			t.Errorf("stage %s: %d of 3 sends stamped (%v)", st, stages[st], stages)
		}
	}
	if n := rec.StampOrderErrors(); n != 0 {
		t.Errorf("%d stamps out of order", n)
	}
}
