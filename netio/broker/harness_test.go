package broker

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/ringmq/ringmq/engine"
	"github.com/ringmq/ringmq/engine/record"
	"github.com/ringmq/ringmq/flush/vfs"
	"github.com/ringmq/ringmq/netio/remoting"
)

// testBroker is a real broker on a real store, served on 127.0.0.1:0.
type testBroker struct {
	t      testing.TB
	dir    string
	fs     vfs.FS
	ln     net.Listener
	addr   netip.AddrPort
	store  *engine.Store
	b      *Broker
	served chan error
	cfg    Config
	// storeFailed: the test broke the store on purpose, so Close reporting it is expected.
	storeFailed bool
}

type brokerOpt func(*Config, *engine.Config)

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// startBroker opens a store under dir (a new temp dir when "") and serves a broker on it.
func startBroker(t testing.TB, dir string, fs vfs.FS, opts ...brokerOpt) *testBroker {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	if fs == nil {
		fs = vfs.OS{}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().(*net.TCPAddr).AddrPort()
	cfg := DefaultConfig()
	cfg.BrokerName = "broker-a"
	cfg.ListenAddr = addr.String()
	cfg.StoreDir = dir
	cfg.FS = fs
	ecfg := engine.Config{
		Dir: dir, FS: fs, FlushMode: engine.SyncFlush, StoreHost: addr, Logger: quietLogger(),
		SegmentSizeBytes: 16 << 20,
	}
	for _, o := range opts {
		o(&cfg, &ecfg)
	}
	store, err := engine.Open(ecfg)
	if err != nil {
		ln.Close()
		t.Fatalf("open store: %v", err)
	}
	b, err := New(cfg, store, quietLogger())
	if err != nil {
		ln.Close()
		store.Close()
		t.Fatalf("new broker: %v", err)
	}
	tb := &testBroker{t: t, dir: dir, fs: fs, ln: ln, addr: addr, store: store, b: b, served: make(chan error, 1), cfg: cfg}
	go func() { tb.served <- b.Serve(ln) }()
	t.Cleanup(tb.stop)
	return tb
}

// stop shuts the broker down and closes the store; it is idempotent.
func (tb *testBroker) stop() {
	if tb.b == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := tb.b.Shutdown(ctx); err != nil {
		tb.t.Errorf("shutdown: %v", err)
	}
	if err := <-tb.served; err != nil {
		tb.t.Errorf("serve: %v", err)
	}
	if err := tb.store.Close(); err != nil && !tb.storeFailed {
		tb.t.Errorf("close store: %v", err)
	}
	tb.b = nil
}

// dial connects a remoting client; onRequest may be nil.
func (tb *testBroker) dial(onRequest func(*remoting.Client, *remoting.Command)) *remoting.Client {
	tb.t.Helper()
	c, err := remoting.Dial(tb.addr.String(), remoting.ClientConfig{OnRequest: onRequest, CallTimeout: 30 * time.Second})
	if err != nil {
		tb.t.Fatal(err)
	}
	tb.t.Cleanup(func() { c.Close() })
	return c
}

func ext(kv ...string) []remoting.Field {
	if len(kv)%2 != 0 {
		panic("BUG: ext: odd key/value list")
	}
	f := make([]remoting.Field, 0, len(kv)/2)
	for i := 0; i < len(kv); i += 2 {
		f = append(f, remoting.Field{Key: []byte(kv[i]), Value: []byte(kv[i+1])})
	}
	return f
}

func invoke(t testing.TB, c *remoting.Client, code int16, fields []remoting.Field, body []byte) *remoting.Command {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := c.Invoke(ctx, code, fields, body)
	if err != nil {
		t.Fatalf("invoke %s: %v", remoting.RequestName(code), err)
	}
	return resp
}

func wantCode(t testing.TB, resp *remoting.Command, code int16) {
	t.Helper()
	if resp.Code != code {
		t.Fatalf("got code %d (remark %q), want %d", resp.Code, resp.Remark, code)
	}
}

func props(kv ...string) string {
	var b []byte
	for i := 0; i < len(kv); i += 2 {
		b = record.AppendProperty(b, kv[i], kv[i+1])
	}
	return string(b)
}

// sendV1 sends SEND_MESSAGE with the Go client's V1 header.
func sendV1(t testing.TB, c *remoting.Client, topic string, queueID int, properties string, body []byte) *remoting.Command {
	t.Helper()
	return invoke(t, c, remoting.ReqSendMessage, ext(
		"producerGroup", "pg", "topic", topic, "queueId", strconv.Itoa(queueID), "sysFlag", "0",
		"bornTimestamp", strconv.FormatInt(time.Now().UnixMilli(), 10), "flag", "0", "properties", properties,
		"reconsumeTimes", "0", "unitMode", "false", "maxReconsumeTimes", "0", "batch", "false",
		"defaultTopic", "TBW102", "defaultTopicQueueNums", "4"), body)
}

// pullOpts are the knobs of a PULL_MESSAGE.
type pullOpts struct {
	group, topic   string
	queueID        int
	offset         int64
	maxMsgs        int
	sysFlag        int
	suspendMs      int
	subscription   string
	expressionType string
	commitOffset   int64
}

func pull(t testing.TB, c *remoting.Client, o pullOpts) *remoting.Command {
	t.Helper()
	if o.maxMsgs == 0 {
		o.maxMsgs = 32
	}
	if o.expressionType == "" {
		o.expressionType = "TAG"
	}
	return invoke(t, c, remoting.ReqPullMessage, ext(
		"consumerGroup", o.group, "topic", o.topic, "queueId", strconv.Itoa(o.queueID),
		"queueOffset", strconv.FormatInt(o.offset, 10), "maxMsgNums", strconv.Itoa(o.maxMsgs),
		"sysFlag", strconv.Itoa(o.sysFlag), "commitOffset", strconv.FormatInt(o.commitOffset, 10),
		"suspendTimeoutMillis", strconv.Itoa(o.suspendMs), "subscription", o.subscription,
		"subVersion", "0", "expressionType", o.expressionType), nil)
}

// pullWait is pull with the SUSPEND flag (5 s): it returns as soon as the queue has a
// message at the offset, which a send's ack does not guarantee (the store dispatches to
// the consume queues after the append is durable).
func pullWait(t testing.TB, c *remoting.Client, o pullOpts) *remoting.Command {
	t.Helper()
	o.sysFlag |= pullSuspend
	o.suspendMs = 5000
	return pull(t, c, o)
}

// waitDispatched waits until the queue holds at least n entries.
func (tb *testBroker) waitDispatched(topic string, queueID int32, n int64) {
	tb.t.Helper()
	waitFor(tb.t, fmt.Sprintf("%s/%d to hold %d messages", topic, queueID, n), func() bool {
		return tb.store.MaxOffset(topic, queueID) >= n
	})
}

// records splits a pull body into decoded records.
func records(t testing.TB, body []byte) []record.View {
	t.Helper()
	var out []record.View
	for len(body) > 0 {
		v, err := record.Decode(body)
		if err != nil {
			t.Fatalf("decode record %d: %v", len(out), err)
		}
		out = append(out, v)
		body = body[v.TotalSize():]
	}
	return out
}

func extInt(t testing.TB, c *remoting.Command, key string) int64 {
	t.Helper()
	v, err := c.ExtInt64(key)
	if err != nil {
		t.Fatalf("%s: %v (%s)", key, err, c)
	}
	return v
}

// createTopic creates a topic through UPDATE_AND_CREATE_TOPIC.
func createTopic(t testing.TB, c *remoting.Client, topic string, queues, perm int) {
	t.Helper()
	resp := invoke(t, c, remoting.ReqUpdateAndCreateTopic, ext("topic", topic, "readQueueNums", strconv.Itoa(queues),
		"writeQueueNums", strconv.Itoa(queues), "perm", strconv.Itoa(perm), "topicFilterType", "SINGLE_TAG",
		"topicSysFlag", "0", "order", "false"), nil)
	wantCode(t, resp, remoting.RespSuccess)
}

// batchBody encodes messages as the Go client's batch body (PROTOCOL.md §2.3).
func batchBody(bodies [][]byte, properties []string) []byte {
	var out []byte
	for i, body := range bodies {
		p := properties[i]
		total := 22 + len(body) + len(p)
		out = binary.BigEndian.AppendUint32(out, uint32(total))
		out = binary.BigEndian.AppendUint32(out, 0)
		out = binary.BigEndian.AppendUint32(out, 0)
		out = binary.BigEndian.AppendUint32(out, 0)
		out = binary.BigEndian.AppendUint32(out, uint32(len(body)))
		out = append(out, body...)
		out = binary.BigEndian.AppendUint16(out, uint16(len(p)))
		out = append(out, p...)
	}
	return out
}

// heartbeatJSON is a consumer heartbeat body like the Go client's.
func heartbeatJSON(clientID, group, model, topic, expr string) []byte {
	return fmt.Appendf(nil, `{"clientID":%q,"producerDataSet":[],"consumerDataSet":[{"groupName":%q,`+
		`"consumeType":"CONSUME_PASSIVELY","messageModel":%q,"consumeFromWhere":"CONSUME_FROM_FIRST_OFFSET",`+
		`"subscriptionDataSet":[{"classFilterMode":false,"topic":%q,"subString":%q,"tagsSet":[],"codeSet":[],`+
		`"subVersion":1,"expressionType":"TAG"}],"unitMode":false}]}`, clientID, group, model, topic, expr)
}

// waitFor polls cond (a state change with no event to wait on) at most 5 s.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-time.After(time.Millisecond)
	}
}
