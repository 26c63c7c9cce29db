package main

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/ringmq/ringmq/engine/record"
	"github.com/ringmq/ringmq/netio/remoting"
)

func TestDLQListResend(t *testing.T) {
	c := startTestCluster(t)
	ns := "--namesrv=" + c.namesrvAddr
	c.createTopic(t, "orders", 1)
	const uniq = "C0000202398A00000000682018f000AA"
	props := record.AppendProperty(nil, "TAGS", "tagA")
	props = record.AppendProperty(props, "KEYS", "order-7")
	props = record.AppendProperty(props, "UNIQ_KEY", uniq)
	props = record.AppendProperty(props, "color", "blue")
	sent := c.sendOne(t, "orders", props, "dead body")
	_, phys, err := record.ParseOffsetMsgID(sent.OffsetMsgID)
	if err != nil {
		t.Fatal(err)
	}
	// An orderly consumer gives up on the message: delayLevel -1 sends it to %DLQ%g.
	if _, err := c.conn().call(c.brokerAddr, remoting.ReqConsumerSendMsgBack, map[string]string{
		"group": "g", "offset": fmt.Sprint(phys), "delayLevel": "-1", "originMsgId": uniq, "originTopic": "orders",
		"unitMode": "false", "maxReconsumeTimes": "16"}, nil); err != nil {
		t.Fatal(err)
	}

	has := func(code int, out string) bool { return code == 0 && strings.Contains(out, uniq) }
	out := pollCtl(t, has, "dlq", "list", ns, "--group", "g", "--json")
	entries := decodeJSON[[]dlqEntry](t, out)
	if len(entries) != 1 {
		t.Fatalf("dlq list: %d entries, want 1:\n%s", len(entries), out)
	}
	e := entries[0]
	body := "dead body"
	wantProps := map[string]string{"TAGS": "tagA", "KEYS": "order-7", "UNIQ_KEY": uniq, "color": "blue",
		"CLUSTER": "DefaultCluster", "RETRY_TOPIC": "orders", "ORIGIN_MESSAGE_ID": uniq}
	if e.Broker != c.brokerAddr || e.OriginalTopic != "orders" || e.Topic != "%DLQ%g" || e.QueueID != 0 ||
		e.QueueOffset != 0 || e.ReconsumeTimes != 1 || !reflect.DeepEqual(e.Properties, wantProps) || e.Body == nil || *e.Body != body {
		t.Errorf("dlq list --json: got %+v (body %v)", e, e.Body)
	}
	_, out, _ = ctl("dlq", "list", ns, "--group", "g")
	wantTable(t, "dlq list", out, [][]string{
		{"BROKER", "OFFSET", "TOPIC", "MSG_ID", "OFFSET_MSG_ID", "RECONSUMES", "STORED", "BODY"},
		{c.brokerAddr, "0", "orders", uniq, e.OffsetMsgID, "1", e.StoreTimestamp, `"dead`, `body"`},
		{"1", "dead", "letter"}})

	// Resend: the message is stored again on orders, without the DLQ's bookkeeping.
	code, out, errOut := ctl("dlq", "resend", ns, "--group", "g", "--offset", "0", "--json")
	results := decodeJSON[[]resendResult](t, out)
	if code != 0 || len(results) != 1 {
		t.Fatalf("dlq resend: exit %d, %q %q", code, out, errOut)
	}
	r := results[0]
	wantRes := resendResult{DLQBroker: c.brokerAddr, DLQOffset: 0, MsgID: uniq, sendResult: sendResult{Status: "SEND_OK",
		Topic: "orders", Broker: "broker-ctl", QueueID: 0, QueueOffset: 1, OffsetMsgID: r.OffsetMsgID}}
	if r != wantRes || len(r.OffsetMsgID) != record.OffsetMsgIDHexLen {
		t.Errorf("dlq resend: got %+v, want %+v", r, wantRes)
	}
	again := c.pollQueue(t, "orders", 1, 1)
	got := newMsgInfo(again[0], 100)
	wantBack := map[string]string{"TAGS": "tagA", "KEYS": "order-7", "UNIQ_KEY": uniq, "color": "blue", "CLUSTER": "DefaultCluster"}
	if len(again) != 1 || got.OffsetMsgID != r.OffsetMsgID || got.Topic != "orders" || got.ReconsumeTimes != 0 ||
		!reflect.DeepEqual(got.Properties, wantBack) || *got.Body != body {
		t.Errorf("resent message: got %d records, first %+v", len(again), got)
	}

	// --all resends every dead letter again; the text names each new offset msg id.
	code, out, errOut = ctl("dlq", "resend", ns, "--group", "g", "--all")
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	prefix := "resent DLQ offset 0 (msg id " + uniq + ") to orders queue 0 on broker-ctl: SEND_OK, offset msg id "
	if code != 0 || len(lines) != 2 || !strings.HasPrefix(lines[0], prefix) || lines[1] != "1 dead letter resent" {
		t.Fatalf("dlq resend --all: exit %d, %q %q", code, out, errOut)
	}
	id := strings.TrimPrefix(lines[0], prefix)
	_, out, _ = ctl("msg", ns, "--json", id)
	if m := decodeJSON[[]msgInfo](t, out); len(m) != 1 || m[0].QueueOffset != 2 || m[0].Topic != "orders" {
		t.Errorf("msg %s: got %s, want orders offset 2", id, out)
	}

	// A group without a DLQ topic has no dead letters.
	if code, out, errOut := ctl("dlq", "list", ns, "--group", "nobody"); code != 0 || !strings.HasSuffix(out, "\n0 dead letters\n") {
		t.Errorf("dlq list of a group without dead letters: exit %d, %q %q", code, out, errOut)
	}
	if code, _, errOut := ctl("dlq", "resend", ns, "--group", "nobody", "--all"); code != 0 {
		t.Errorf("dlq resend --all of a group without dead letters: exit %d, %q", code, errOut)
	}
	if code, _, errOut := ctl("dlq", "resend", ns, "--group", "g", "--offset", "5"); code != 1 || !strings.Contains(errOut, "no dead letter of group g at DLQ offset 5") {
		t.Errorf("dlq resend --offset 5: exit %d, %q", code, errOut)
	}
}

func TestResendProps(t *testing.T) {
	var in []byte
	for _, kv := range [][2]string{{"TAGS", "t"}, {"RETRY_TOPIC", "orders"}, {"KEYS", "a b"}, {"ORIGIN_MESSAGE_ID", "X"},
		{"UNIQ_KEY", "U"}, {"CLUSTER", "c"}, {"DELAY", "3"}, {"REAL_TOPIC", "r"}, {"REAL_QID", "0"}, {"TRAN_MSG", "true"}, {"mine", "v"}} {
		in = record.AppendProperty(in, kv[0], kv[1])
	}
	want := "TAGS\x01t\x02KEYS\x01a b\x02UNIQ_KEY\x01U\x02mine\x01v\x02"
	if got := string(resendProps(in)); got != want {
		t.Errorf("resendProps = %q, want %q", got, want)
	}
}
