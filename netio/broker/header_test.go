package broker

import (
	"bytes"
	"errors"
	"testing"

	"github.com/ringmq/ringmq/netio/remoting"
)

func cmdWith(kv ...string) *remoting.Command {
	return &remoting.Command{Ext: ext(kv...)}
}

func TestParseSendHeader(t *testing.T) {
	v1 := cmdWith("producerGroup", "pg", "topic", "T", "queueId", "3", "sysFlag", "4", "bornTimestamp", "1700000000000",
		"flag", "7", "properties", "K\x01V\x02", "reconsumeTimes", "2", "maxReconsumeTimes", "5", "batch", "TRUE",
		"defaultTopic", "TBW102", "defaultTopicQueueNums", "4", "unknown", "x")
	v2 := cmdWith("a", "pg", "b", "T", "c", "TBW102", "d", "4", "e", "3", "f", "4", "g", "1700000000000", "h", "7",
		"i", "K\x01V\x02", "j", "2", "k", "false", "l", "5", "m", "true")
	for name, tc := range map[string]struct {
		req *remoting.Command
		v2  bool
	}{"V1": {v1, false}, "V2": {v2, true}} {
		var h sendHeader
		if err := parseSendHeader(tc.req, tc.v2, &h); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		want := sendHeader{producerGroup: []byte("pg"), topic: []byte("T"), defaultTopic: []byte("TBW102"),
			defaultTopicQueueNums: 4, queueID: 3, sysFlag: 4, bornTimestampMs: 1700000000000, flag: 7,
			properties: []byte("K\x01V\x02"), reconsumeTimes: 2, maxReconsumeTimes: 5, hasMaxReconsumeTimes: true, batch: true}
		if !bytes.Equal(h.topic, want.topic) || !bytes.Equal(h.properties, want.properties) ||
			!bytes.Equal(h.producerGroup, want.producerGroup) || !bytes.Equal(h.defaultTopic, want.defaultTopic) ||
			h.queueID != want.queueID || h.sysFlag != want.sysFlag || h.bornTimestampMs != want.bornTimestampMs ||
			h.flag != want.flag || h.reconsumeTimes != want.reconsumeTimes || h.maxReconsumeTimes != want.maxReconsumeTimes ||
			!h.hasMaxReconsumeTimes || !h.batch || h.defaultTopicQueueNums != 4 {
			t.Errorf("%s: got %+v, want %+v", name, h, want)
		}
	}
	var h sendHeader
	if err := parseSendHeader(cmdWith("topic", "T"), false, &h); !errors.Is(err, errHeaderMissing) {
		t.Errorf("missing queueId: got %v", err)
	}
	if err := parseSendHeader(cmdWith("topic", "T", "queueId", "x1"), false, &h); err == nil {
		t.Error("non-numeric queueId accepted")
	}
	if err := parseSendHeader(cmdWith("topic", "T", "queueId", "99999999999"), false, &h); err == nil {
		t.Error("queueId overflowing int32 accepted")
	}
	// V1 names are not V2's and the other way round.
	if err := parseSendHeader(v1, true, &h); err == nil {
		t.Error("V1 header parsed with V2 names")
	}
}

func TestParseSendHeaderNoAllocs(t *testing.T) {
	req := cmdWith("a", "pg", "b", "T", "c", "TBW102", "d", "4", "e", "3", "f", "0", "g", "1700000000000", "h", "0",
		"i", "K\x01V\x02", "j", "0", "k", "false", "l", "16", "m", "false")
	var h sendHeader
	if n := testing.AllocsPerRun(100, func() {
		if err := parseSendHeader(req, true, &h); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("got %v allocs per parse, want 0", n)
	}
}

func TestParseInt64(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"0", 0, true}, {"-1", -1, true}, {"+5", 5, true}, {"9223372036854775807", 1<<63 - 1, true},
		{"-9223372036854775808", -1 << 63, true}, {"9223372036854775808", 0, false}, {"", 0, false},
		{"-", 0, false}, {"1.5", 0, false}, {" 1", 0, false}, {"123456789012345678901", 0, false},
	} {
		got, err := parseInt64([]byte(tc.in))
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("parseInt64(%q) = %d, %v; want %d ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func TestNextBatchElem(t *testing.T) {
	body := batchBody([][]byte{[]byte("b1"), []byte("")}, []string{"TAGS\x01a\x02", ""})
	e, rest, err := nextBatchElem(body)
	if err != nil || string(e.body) != "b1" || string(e.props) != "TAGS\x01a\x02" {
		t.Fatalf("first element: %+v %v", e, err)
	}
	e, rest, err = nextBatchElem(rest)
	if err != nil || len(e.body) != 0 || len(e.props) != 0 || len(rest) != 0 {
		t.Fatalf("second element: %+v rest %d %v", e, len(rest), err)
	}
	for name, bad := range map[string][]byte{
		"short":          body[:10],
		"size past end":  body[:24],
		"body past size": func() []byte { b := bytes.Clone(body); b[19] = 200; return b }(),
	} {
		if _, _, err := nextBatchElem(bad); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func FuzzBatchBody(f *testing.F) {
	f.Add(batchBody([][]byte{[]byte("b1"), []byte("b2")}, []string{"TAGS\x01a\x02", ""}))
	f.Add([]byte{0, 0, 0, 22, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, body []byte) {
		for n := 0; len(body) > 0 && n < 10000; n++ {
			e, rest, err := nextBatchElem(body)
			if err != nil {
				return
			}
			if len(rest) >= len(body) || len(e.body)+len(e.props)+batchElemFixedBytes > len(body) {
				t.Fatalf("element %d does not consume its bytes", n)
			}
			body = rest
		}
	})
}

// BenchmarkParseSendHeader decodes the Go client's SEND_MESSAGE (V1 names) and
// SEND_MESSAGE_V2 headers: once per send, on the connection's reader goroutine.
func BenchmarkParseSendHeader(b *testing.B) {
	for _, tc := range []struct {
		name string
		req  *remoting.Command
		v2   bool
	}{
		{"names=V1", cmdWith("producerGroup", "pg", "topic", "BENCH", "queueId", "0", "sysFlag", "0",
			"bornTimestamp", "1700000000000", "flag", "0", "properties", "TAGS\x01tagA\x02UNIQ_KEY\x01C0000202398A00000000682018f00001\x02",
			"reconsumeTimes", "0", "unitMode", "false", "maxReconsumeTimes", "0", "batch", "false",
			"defaultTopic", "TBW102", "defaultTopicQueueNums", "4"), false},
		{"names=V2", cmdWith("a", "pg", "b", "BENCH", "c", "TBW102", "d", "4", "e", "0", "f", "0", "g", "1700000000000",
			"h", "0", "i", "TAGS\x01tagA\x02UNIQ_KEY\x01C0000202398A00000000682018f00001\x02", "j", "0", "k", "false",
			"l", "0", "m", "false"), true},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			var h sendHeader
			for b.Loop() {
				if err := parseSendHeader(tc.req, tc.v2, &h); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestSendFieldIndex: the V1 switch names the same fields as sendFieldsV1 (which error
// messages use), and the V2 letters follow the same order.
func TestSendFieldIndex(t *testing.T) {
	for i, name := range sendFieldsV1 {
		if got := sendFieldIndex([]byte(name), false); got != i {
			t.Errorf("sendFieldIndex(%q, V1) = %d, want %d", name, got, i)
		}
		if got := sendFieldIndex([]byte{byte('a' + i)}, true); got != i {
			t.Errorf("sendFieldIndex(%q, V2) = %d, want %d", string(rune('a'+i)), got, i)
		}
	}
	for _, key := range []string{"", "topicX", "Topic", "a", "o", "aa"} {
		if got := sendFieldIndex([]byte(key), false); got != -1 {
			t.Errorf("sendFieldIndex(%q, V1) = %d, want -1", key, got)
		}
	}
	if got := sendFieldIndex([]byte("o"), true); got != -1 {
		t.Errorf("sendFieldIndex(\"o\", V2) = %d, want -1", got)
	}
}
