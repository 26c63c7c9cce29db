package compat

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
)

// TestQueries: finding messages again.
//   - By offset message id: `ringmqctl msg <OffsetMsgID>` (VIEW_MESSAGE_BY_ID, 33) shows
//     the message's topic, queue, queue offset, properties and body.
//   - By key and time range: QUERY_MESSAGE (12). v2.1.2 defines the code but has no API
//     that sends it, and ringmqctl has no key query, so the test sends the request itself
//     with Java's header fields (topic, key, maxNum, beginTimestamp, endTimestamp) and
//     decodes the answer with the client's primitive.DecodeMessage: a unique key finds its
//     one message, a shared key finds exactly the messages carrying it, the time range
//     narrows that to one series, and the client's MsgId (UNIQ_KEY, indexed) finds its
//     message.
//   - Offsets by time: SEARCH_OFFSET_BY_TIMESTAMP (29), which the client sends only for
//     CONSUME_FROM_TIMESTAMP: for a time between two series, each queue answers the
//     offset of its first message of the second series; 0 before everything; the queue's
//     end after everything.
//   - consumer.ConsumeFromTimestamp on a new group: ringmq answers QUERY_CONSUMER_OFFSET
//     for a group without an offset with SUCCESS 0 when nothing was deleted from the
//     queue (docs/differences.md), so the client never searches by time and the group
//     consumes from the beginning: every message of both series, once. (Java does the
//     same while the first message is in memory.)
func TestQueries(t *testing.T) {
	t.Parallel()
	c := startCluster(t, clusterOptions{})
	const (
		topic  = "compat-query"
		queues = 2
	)
	mqs := c.createTopic(topic, queues)
	l := newLedger()
	p := c.newProducer(producer.WithQueueSelector(producer.NewManualQueueSelector()))
	round := func(i int, m *primitive.Message) { m.Queue = mqs[i%queues] }
	first := sendIDs(t, p, l, topic, "qa", 30, round)
	between := time.Now().UnixMilli()
	waitFor(t, time.Second, "the clock to pass the first series", func() error {
		if time.Now().UnixMilli() <= between {
			return fmt.Errorf("still %d", between)
		}
		return nil
	})
	second := sendIDs(t, p, l, topic, "qb", 30, round)
	end := time.Now().UnixMilli()

	// By offset message id.
	for _, id := range []string{first[0], second[29]} {
		s := l.sent[id]
		out, err := c.ctl("msg", s.offsetID)
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{
			"topic  " + topic, fmt.Sprintf("queue  %d", s.queueID), fmt.Sprintf("queue offset  %d", s.queueOff),
			"property " + propID + "  " + id, fmt.Sprintf("%q", s.body),
		} {
			if !strings.Contains(collapseSpaces(out), collapseSpaces(want)) {
				t.Errorf("ringmqctl msg %s: no %q in:\n%s", s.offsetID, want, out)
			}
		}
	}

	// By key and time range.
	query := func(key string, begin, end int64) []string {
		t.Helper()
		code, _, body := rawCall(t, c.brokerAddr, 12, map[string]string{"topic": topic, "key": key,
			"maxNum": "64", "beginTimestamp": strconv.FormatInt(begin, 10), "endTimestamp": strconv.FormatInt(end, 10)})
		if code == 22 { // QUERY_NOT_FOUND
			return nil
		}
		if code != 0 {
			t.Fatalf("QUERY_MESSAGE %s: code %d", key, code)
		}
		var ids []string
		for _, m := range primitive.DecodeMessage(body) {
			ids = append(ids, m.GetProperty(propID))
		}
		slices.Sort(ids)
		return ids
	}
	all := append(append([]string{}, first...), second...)
	withK3 := func(ids []string) []string {
		var out []string
		for i, id := range ids {
			if i%10 == 3 {
				out = append(out, id)
			}
		}
		return out
	}
	for _, q := range []struct {
		key        string
		begin, end int64
		want       []string
	}{
		{"key-" + first[7], 0, end + 1000, []string{first[7]}},
		{"k3", 0, end + 1000, withK3(all)},
		{"k3", between + 1, end + 1000, withK3(second)},
		{"k3", 0, between, withK3(first)},
		{l.sent[second[4]].msgID, 0, end + 1000, []string{second[4]}},
		{"no-such-key", 0, end + 1000, nil},
	} {
		want := slices.Sorted(slices.Values(q.want))
		if got := query(q.key, q.begin, q.end); !slices.Equal(got, want) {
			t.Errorf("QUERY_MESSAGE key %q [%d, %d]: %v, want %v", q.key, q.begin, q.end, got, want)
		}
	}

	// Offsets by time.
	perQueue := map[int]int64{}
	for _, id := range first {
		perQueue[l.sent[id].queueID]++
	}
	for _, mq := range mqs {
		for _, tc := range []struct {
			ts   int64
			want int64
		}{{0, 0}, {between + 1, perQueue[mq.QueueId]}, {end + 60_000, 30}} {
			_, ext, _ := rawCall(t, c.brokerAddr, 29, map[string]string{"topic": topic,
				"queueId": strconv.Itoa(mq.QueueId), "timestamp": strconv.FormatInt(tc.ts, 10)})
			if ext["offset"] != strconv.FormatInt(tc.want, 10) {
				t.Errorf("SEARCH_OFFSET_BY_TIMESTAMP queue %d at %d: offset %q, want %d", mq.QueueId, tc.ts, ext["offset"], tc.want)
			}
		}
	}

	// ConsumeFromTimestamp on a new group.
	r := newRecorder()
	c.startConsumer(r, consumerSpec{group: "compat-query-ts", name: "ts", topic: topic,
		opts: []consumer.Option{consumer.WithConsumeFromWhere(consumer.ConsumeFromTimestamp),
			consumer.WithConsumeTimestamp(time.UnixMilli(between + 1000).UTC().Format("20060102150405"))}})
	r.waitCount(t, "ConsumeFromTimestamp", len(all), 30*time.Second, nil)
	checkOnce(t, "ConsumeFromTimestamp on a new group", r.quiet(500*time.Millisecond, nil), all)
}

// collapseSpaces turns runs of spaces into one, for matching tabwriter output.
func collapseSpaces(s string) string { return strings.Join(strings.Fields(s), " ") }

// rawCall sends one request with a JSON header (the frame of PROTOCOL.md §1.1) to addr
// and returns the response's code, ext fields and body. It is for the requests v2.1.2
// defines but never sends.
func rawCall(t testing.TB, addr string, code int, ext map[string]string) (int, map[string]string, []byte) {
	t.Helper()
	return rawCallBody(t, addr, code, ext, nil)
}

// rawCallBody is rawCall with a request body.
func rawCallBody(t testing.TB, addr string, code int, ext map[string]string, body []byte) (int, map[string]string, []byte) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 3*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	deadline, _ := ctx.Deadline()
	conn.SetDeadline(deadline)
	hdr, err := json.Marshal(map[string]any{"code": code, "language": "GO", "version": 317, "opaque": 1, "flag": 0, "remark": "", "extFields": ext})
	if err != nil {
		t.Fatal(err)
	}
	frame := binary.BigEndian.AppendUint32(nil, uint32(4+len(hdr)+len(body)))
	frame = binary.BigEndian.AppendUint32(frame, uint32(len(hdr))) // serialize type 0 (JSON)
	frame = append(frame, hdr...)
	frame = append(frame, body...)
	if _, err := conn.Write(frame); err != nil {
		t.Fatalf("request %d: write: %v", code, err)
	}
	var lens [8]byte
	if _, err := io.ReadFull(conn, lens[:]); err != nil {
		t.Fatalf("request %d: read: %v", code, err)
	}
	total, hdrLen := binary.BigEndian.Uint32(lens[:4]), binary.BigEndian.Uint32(lens[4:])&0xFFFFFF
	rest := make([]byte, total-4)
	if _, err := io.ReadFull(conn, rest); err != nil || lens[4] != 0 || hdrLen > uint32(len(rest)) {
		t.Fatalf("request %d: read %d bytes (type %d, header %d): %v", code, total, lens[4], hdrLen, err)
	}
	var resp struct {
		Code      int               `json:"code"`
		Opaque    int               `json:"opaque"`
		Flag      int               `json:"flag"`
		ExtFields map[string]string `json:"extFields"`
	}
	if err := json.Unmarshal(rest[:hdrLen], &resp); err != nil {
		t.Fatalf("request %d: response header %q: %v", code, rest[:hdrLen], err)
	}
	if resp.Opaque != 1 || resp.Flag&1 == 0 {
		t.Fatalf("request %d: response opaque %d flag %d, want 1 and the response bit", code, resp.Opaque, resp.Flag)
	}
	return resp.Code, resp.ExtFields, rest[hdrLen:]
}
