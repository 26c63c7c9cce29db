package main

import (
	"bytes"
	"compress/zlib"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ringmq/ringmq/engine/record"
)

func TestMsgByKeyAndUniq(t *testing.T) {
	c := startTestCluster(t)
	ns := "--namesrv=" + c.namesrvAddr
	c.createTopic(t, "key-topic", 1)
	c.sendOne(t, "key-topic", record.AppendProperty(nil, "KEYS", "other"), "not this one")
	props := record.AppendProperty(nil, "TAGS", "tagA")
	props = record.AppendProperty(props, "KEYS", "k1 k2")
	props = record.AppendProperty(props, "UNIQ_KEY", "C0000202398A00000000682018f00001")
	res := c.sendOne(t, "key-topic", props, "hello key")

	// The index is written asynchronously from the commit log: poll.
	found := func(code int, _ string) bool { return code == 0 }
	out := pollCtl(t, found, "msg", ns, "--topic", "key-topic", "--key", "k2", "--json")
	msgs := decodeJSON[[]msgInfo](t, out)
	if len(msgs) != 1 {
		t.Fatalf("msg --key k2: got %d messages, want 1:\n%s", len(msgs), out)
	}
	m := msgs[0]
	body := "hello key"
	want := msgInfo{OffsetMsgID: res.OffsetMsgID, Topic: "key-topic", QueueID: 0, QueueOffset: 1,
		CommitLogOffset: m.CommitLogOffset, SizeBytes: m.SizeBytes, BornTimestamp: m.BornTimestamp, BornHost: m.BornHost,
		StoreTimestamp: m.StoreTimestamp, StoreHost: c.brokerAddr,
		Properties: map[string]string{"TAGS": "tagA", "KEYS": "k1 k2", "UNIQ_KEY": "C0000202398A00000000682018f00001", "CLUSTER": "DefaultCluster"},
		BodyBytes:  len(body), Body: &body}
	if !reflect.DeepEqual(m, want) {
		t.Errorf("msg --key k2: got %+v, want %+v", m, want)
	}
	if _, phys, _ := record.ParseOffsetMsgID(res.OffsetMsgID); phys != m.CommitLogOffset {
		t.Errorf("commit-log offset %d, the send's offset msg id says %d", m.CommitLogOffset, phys)
	}
	// The same message by UNIQ_KEY, by the other key, and by its offset msg id.
	for _, args := range [][]string{
		{"--topic", "key-topic", "--uniq", "C0000202398A00000000682018f00001"},
		{"--topic", "key-topic", "--key", "k1", "--begin", "-1h", "--max", "5"},
		{res.OffsetMsgID},
	} {
		code, out, errOut := ctl(append([]string{"msg", ns, "--json"}, args...)...)
		if got := decodeJSON[[]msgInfo](t, out); code != 0 || len(got) != 1 || !reflect.DeepEqual(got[0], want) {
			t.Errorf("msg %q: exit %d, got %s %s, want the message of --key k2", args, code, out, errOut)
		}
	}
	_, out, _ = ctl("msg", ns, "--topic", "key-topic", "--key", "k1")
	for _, w := range []string{"offset msg id      " + res.OffsetMsgID + "\n", "topic              key-topic\n",
		"queue offset       1\n", "property KEYS      k1 k2\n", "body (9 bytes)     \"hello key\"\n"} {
		if !strings.Contains(out, w) {
			t.Errorf("msg --key k1: output lacks %q:\n%s", w, out)
		}
	}
	// Misses: an unknown key, and a time range that ends before the message was stored.
	storeMs, _ := time.Parse(time.RFC3339Nano, m.StoreTimestamp)
	for _, args := range [][]string{
		{"--key", "k3"},
		{"--key", "k2", "--end", fmt.Sprint(storeMs.UnixMilli() - 1)},
		{"--uniq", "C0000202398A00000000682018f00002"},
	} {
		code, out, errOut := ctl(append([]string{"msg", ns, "--topic", "key-topic"}, args...)...)
		if code != 1 || out != "" || !strings.Contains(errOut, "no message of topic key-topic with") {
			t.Errorf("msg %q: exit %d, %q %q; want exit 1 and no message", args, code, out, errOut)
		}
	}
}

func TestParseTimeArg(t *testing.T) {
	now := time.Date(2026, 11, 21, 8, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want int64
	}{
		{"now", now.UnixMilli()},
		{"-1h30m", now.Add(-90 * time.Minute).UnixMilli()},
		{"1795238134515", 1795238134515},
		{"2026-11-21T07:00:00Z", now.Add(-time.Hour).UnixMilli()},
		{"2026-11-21T09:00:00+02:00", now.Add(-time.Hour).UnixMilli()},
		{"2026-11-21 07:00:00", now.Add(-time.Hour).UnixMilli()},
		{"2026-11-21", now.Add(-8 * time.Hour).UnixMilli()},
	}
	for _, tt := range tests {
		if got, err := parseTimeArg(tt.in, now); err != nil || got != tt.want {
			t.Errorf("parseTimeArg(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"", "-", "-1x", "tomorrow", "2026-13-01"} {
		if _, err := parseTimeArg(bad, now); err == nil {
			t.Errorf("parseTimeArg(%q): no error", bad)
		}
	}
}

func FuzzDecodeRecords(f *testing.F) {
	h := record.Header{QueueID: 1, BornTimestampMs: 1, StoreTimestampMs: 2}
	one := record.Append(nil, &h, "T", []byte("body"), record.AppendProperty(nil, "KEYS", "k"))
	f.Add(one)
	f.Add(append(append([]byte{}, one...), one...))
	f.Add([]byte{0, 0, 0, 5, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		vs, err := decodeRecords(b)
		if err != nil {
			return
		}
		n := 0
		for _, v := range vs {
			n += int(v.TotalSize())
		}
		if n != len(b) {
			t.Errorf("decoded %d records of %d bytes from %d bytes", len(vs), n, len(b))
		}
	})
}

func TestMsgCompressedBody(t *testing.T) {
	c := startTestCluster(t)
	ns := "--namesrv=" + c.namesrvAddr
	c.createTopic(t, "zip-topic", 1)
	plain := strings.Repeat("squeeze me ", 500)
	var zbuf bytes.Buffer
	zw := zlib.NewWriter(&zbuf)
	zw.Write([]byte(plain))
	zw.Close()
	res, err := c.conn().send(sendTarget{broker: "broker-ctl", addr: c.brokerAddr}, "zip-topic", 0, sysFlagCompressed, nil, zbuf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	out := waitCtl(t, "msg", ns, "--json", "--body-bytes", "22", res.OffsetMsgID)
	m := decodeJSON[[]msgInfo](t, out)
	if len(m) != 1 || m[0].Body == nil || *m[0].Body != plain[:22] || !m[0].BodyInflated || m[0].BodyBytes != zbuf.Len() {
		t.Errorf("msg of a compressed body: got %s, want the first 22 bytes inflated", out)
	}
	_, out, _ = ctl("msg", ns, "--body-bytes", "10", res.OffsetMsgID)
	if want := fmt.Sprintf("body (%d bytes zlib, inflated)  \"squeeze me\"\n", zbuf.Len()); !strings.HasSuffix(out, want) {
		t.Errorf("msg of a compressed body: output does not end in %q:\n%s", want, out)
	}
}
