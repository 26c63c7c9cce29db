package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/ringmq/ringmq/engine"
	"github.com/ringmq/ringmq/engine/record"
	"github.com/ringmq/ringmq/netio/broker"
	"github.com/ringmq/ringmq/netio/namesrv"
)

// testCluster is a real name server and a real broker on a real store, in process, on
// 127.0.0.1 ports the kernel picks.
type testCluster struct {
	namesrvAddr string
	brokerAddr  string
	store       *engine.Store
}

func startTestCluster(t *testing.T) *testCluster {
	t.Helper()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	nsLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ns := namesrv.New(namesrv.Config{BrokerExpiry: time.Minute, ScanInterval: time.Second, Logger: quiet})
	go ns.Serve(nsLn)
	t.Cleanup(func() { ns.Shutdown(context.Background()) })

	bLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := bLn.Addr().(*net.TCPAddr).AddrPort()
	dir := t.TempDir()
	store, err := engine.Open(engine.Config{Dir: dir, SegmentSizeBytes: 8 << 20, MaxMessageSizeBytes: 1 << 20,
		StoreHost: addr, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	cfg := broker.DefaultConfig()
	cfg.BrokerName = "broker-ctl"
	cfg.ListenAddr = addr.String()
	cfg.StoreDir = dir
	cfg.NamesrvAddrs = []string{nsLn.Addr().String()}
	b, err := broker.New(cfg, store, quiet)
	if err != nil {
		store.Close()
		t.Fatal(err)
	}
	go b.Serve(bLn)
	t.Cleanup(func() {
		b.Shutdown(context.Background())
		store.Close()
	})
	return &testCluster{namesrvAddr: nsLn.Addr().String(), brokerAddr: addr.String(), store: store}
}

// ctl runs ringmqctl with args and returns its exit code and output.
func ctl(args ...string) (int, string, string) {
	var out, errOut bytes.Buffer
	code := run(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// waitCtl runs ringmqctl until it exits 0 (the broker registers asynchronously).
func waitCtl(t *testing.T, args ...string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		code, out, errOut := ctl(args...)
		if code == 0 {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("ringmqctl %s: exit %d: %s", strings.Join(args, " "), code, errOut)
		}
		<-tick.C
	}
}

func TestTopicRouteOffsetsMsg(t *testing.T) {
	c := startTestCluster(t)
	ns := "--namesrv=" + c.namesrvAddr

	code, out, errOut := ctl("topic", "create", ns, "--broker", c.brokerAddr, "--read-queues", "2", "--write-queues", "2", "ctl-topic")
	if code != 0 || !strings.Contains(out, "created topic ctl-topic") {
		t.Fatalf("topic create: exit %d, %q %q", code, out, errOut)
	}
	out = waitCtl(t, "route", ns, "ctl-topic")
	if !strings.Contains(out, "broker-ctl") || !strings.Contains(out, c.brokerAddr) || !strings.Contains(out, "rw-(6)") {
		t.Errorf("route: got\n%s\nwant broker-ctl at %s with perm rw-(6)", out, c.brokerAddr)
	}
	if out := waitCtl(t, "topic", "list", ns); !strings.Contains(out, "ctl-topic\n") {
		t.Errorf("topic list: got\n%s\nwant ctl-topic", out)
	}

	// One message in queue 1, written through the store.
	props := record.AppendProperty(nil, "TAGS", "tagA")
	res, err := c.store.Put(&engine.Message{Topic: "ctl-topic", QueueID: 1, Body: []byte("hello ctl"),
		BornTimestampMs: time.Now().UnixMilli(), BornHost: netip.MustParseAddrPort("127.0.0.1:1234"), Properties: props})
	if err != nil {
		t.Fatal(err)
	}
	// The consume queue is built asynchronously from the commit log: poll until the
	// message counts. A group that never committed reads 0 where the queue still holds
	// its first message (RocketMQ's rule, so a new group starts at the beginning).
	want := []queueOffsetRow{{"broker-ctl", 0, 0, 0}, {"broker-ctl", 1, 1, 0}}
	var rows []queueOffsetRow
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		out = waitCtl(t, "offsets", ns, "--group", "nobody", "--json", "ctl-topic")
		rows = nil
		if err := json.Unmarshal([]byte(out), &rows); err != nil {
			t.Fatalf("offsets --json: %v in %q", err, out)
		}
		if len(rows) == 2 && rows[0] == want[0] && rows[1] == want[1] {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("offsets: got %+v, want %+v", rows, want)
		}
		<-tick.C
	}
	if _, out, _ := ctl("offsets", ns, "--group", "nobody", "ctl-topic"); !strings.Contains(out, "total") {
		t.Errorf("offsets table: got\n%s", out)
	}

	id := string(record.AppendOffsetMsgIDHex(nil, res.OffsetMsgID))
	out = waitCtl(t, "msg", ns, id)
	for _, w := range []string{"topic              ctl-topic", "queue offset       0", "property TAGS      tagA", `"hello ctl"`} {
		if !strings.Contains(out, w) {
			t.Errorf("msg %s: output lacks %q:\n%s", id, w, out)
		}
	}
}

func TestCtlErrors(t *testing.T) {
	tests := []struct {
		args []string
		code int
		want string
	}{
		{nil, 2, "Usage:"},
		{[]string{"nope"}, 2, `unknown command "nope"`},
		{[]string{"route"}, 2, "want one TOPIC"},
		{[]string{"topic"}, 2, "Usage: ringmqctl topic list"},
		{[]string{"topic", "drop"}, 2, `unknown action "drop"`},
		{[]string{"offsets", "T"}, 2, "--group is required"},
		{[]string{"msg", "XYZ"}, 1, `offset message id "XYZ"`},
		{[]string{"route", "--namesrv", "127.0.0.1:1", "--timeout", "1s", "T"}, 1, "connect 127.0.0.1:1"},
		{[]string{"topic", "create", "--read-queues", "0", "T"}, 1, "--read-queues 0"},
	}
	for _, tt := range tests {
		code, out, errOut := ctl(tt.args...)
		if code != tt.code || !strings.Contains(out+errOut, tt.want) {
			t.Errorf("ringmqctl %q: exit %d, output %q; want exit %d and %q", tt.args, code, out+errOut, tt.code, tt.want)
		}
	}
}

func TestPermString(t *testing.T) {
	for perm, want := range map[int]string{0: "---(0)", 6: "rw-(6)", 7: "rwi(7)", 4: "r--(4)", 2: "-w-(2)"} {
		if got := permString(perm); got != want {
			t.Errorf("permString(%d) = %q, want %q", perm, got, want)
		}
	}
}
