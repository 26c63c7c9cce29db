package namesrv

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ringmq/ringmq/netio/remoting"
)

const testTimeout = 10 * time.Second

var quiet = slog.New(slog.DiscardHandler)

type goneEvent struct{ addr, reason string }

// startNS runs a name server on 127.0.0.1:0; gone receives its OnBrokerGone events.
func startNS(t *testing.T, expiry, scan time.Duration) (addr string, gone chan goneEvent) {
	t.Helper()
	gone = make(chan goneEvent, 64)
	ns := New(Config{BrokerExpiry: expiry, ScanInterval: scan, Logger: quiet,
		OnBrokerGone: func(a, r string) { gone <- goneEvent{a, r} }})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- ns.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		if err := ns.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return ln.Addr().String(), gone
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

func client(t *testing.T, addr string) *remoting.Client {
	c, err := remoting.Dial(addr, remoting.ClientConfig{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func ext(kv ...string) []remoting.Field {
	var f []remoting.Field
	for i := 0; i < len(kv); i += 2 {
		f = append(f, remoting.Field{Key: []byte(kv[i]), Value: []byte(kv[i+1])})
	}
	return f
}

func invoke(t *testing.T, c *remoting.Client, code int16, e []remoting.Field, body []byte) *remoting.Command {
	t.Helper()
	resp, err := c.Invoke(ctxT(t), code, e, body)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func registrar(t *testing.T, nameServers []string, brokerName, brokerAddr string, id int64, topics ...TopicConfig) *Registrar {
	r := NewRegistrar(RegistrarConfig{NameServers: nameServers, ClusterName: "DefaultCluster", BrokerName: brokerName,
		BrokerID: id, BrokerAddr: brokerAddr, Interval: time.Hour, Timeout: 2 * time.Second, Logger: quiet},
		func() []TopicConfig { return topics })
	r.Start()
	t.Cleanup(func() { _ = r.Stop(context.Background()) })
	return r
}

// goClientBrokerAddrs parses brokerAddrs the way rocketmq-client-go v2.1.2 does (PROTOCOL.md §2.1): take the
// raw JSON text, drop the first and last char, split on ',', split each piece at the first ':', strip '"'.
func goClientBrokerAddrs(raw string) map[int64]string {
	out := make(map[int64]string)
	for _, piece := range strings.Split(raw[1:len(raw)-1], ",") {
		i := strings.Index(piece, ":")
		if i < 0 {
			continue
		}
		id, _ := strconv.ParseInt(strings.ReplaceAll(piece[:i], `"`, ""), 10, 64)
		out[id] = strings.ReplaceAll(piece[i+1:], `"`, "")
	}
	return out
}

func TestRegisterThenRouteOverTheWire(t *testing.T) {
	nsAddr, _ := startNS(t, time.Minute, time.Minute)
	m := registrar(t, []string{nsAddr}, "broker-a", "127.0.0.1:10911", 0, TopicConfig{TopicName: "T1",
		ReadQueueNums: 2, WriteQueueNums: 2, Perm: PermRead | PermWrite})
	if err := m.RegisterNow(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	s := registrar(t, []string{nsAddr}, "broker-a", "127.0.0.1:10921", 1)
	if err := s.RegisterNow(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	c := client(t, nsAddr)
	resp := invoke(t, c, remoting.ReqGetRouteInfoByTopic, ext("topic", "T1"), nil)
	const want = `{"brokerDatas":[{"brokerAddrs":{"0":"127.0.0.1:10911","1":"127.0.0.1:10921"},"brokerName":"broker-a","cluster":"DefaultCluster"}],` +
		`"filterServerTable":{},"queueDatas":[{"brokerName":"broker-a","perm":6,"readQueueNums":2,"topicSysFlag":0,"writeQueueNums":2}]}`
	if resp.Code != remoting.RespSuccess || string(resp.Body) != want {
		t.Fatalf("route: code %d\n got %s\nwant %s", resp.Code, resp.Body, want)
	}
	var route struct {
		BrokerDatas []struct {
			BrokerAddrs json.RawMessage `json:"brokerAddrs"`
		} `json:"brokerDatas"`
	}
	if err := json.Unmarshal(resp.Body, &route); err != nil {
		t.Fatal(err)
	}
	addrs := goClientBrokerAddrs(string(route.BrokerDatas[0].BrokerAddrs))
	if len(addrs) != 2 || addrs[0] != "127.0.0.1:10911" || addrs[1] != "127.0.0.1:10921" {
		t.Fatalf("the Go client's parser reads brokerAddrs as %v", addrs)
	}
	resp = invoke(t, c, remoting.ReqGetRouteInfoByTopic, ext("topic", "nope"), nil)
	if resp.Code != remoting.RespTopicNotExist || len(resp.Body) != 0 {
		t.Fatalf("unknown topic: %s", resp)
	}
	resp = invoke(t, c, remoting.ReqGetRouteInfoByTopic, ext("topic", "%RETRY%g1"), nil)
	if resp.Code != remoting.RespSuccess || !strings.Contains(string(resp.Body), `"perm":6,"readQueueNums":1`) {
		t.Fatalf("retry topic: %s %s", resp, resp.Body)
	}
}

func TestExpiryOfSilentBroker(t *testing.T) {
	nsAddr, gone := startNS(t, 300*time.Millisecond, 20*time.Millisecond)
	c := client(t, nsAddr) // stays open: only the expiry can drop the broker
	body := `{"topicConfigSerializeWrapper":{"topicConfigTable":{"T":{"topicName":"T","readQueueNums":1,"writeQueueNums":1,"perm":6}},"dataVersion":{"timestamp":1,"counter":1}},"filterServerList":[]}`
	start := time.Now()
	resp := invoke(t, c, remoting.ReqRegisterBroker, ext("brokerName", "b", "brokerAddr", "10.0.0.9:10911",
		"clusterName", "C", "brokerId", "0", "haServerAddr", "", "compressed", "false", "bodyCrc32", "0"), []byte(body))
	if resp.Code != remoting.RespSuccess {
		t.Fatalf("register: %s", resp)
	}
	if r := invoke(t, c, remoting.ReqGetRouteInfoByTopic, ext("topic", "T"), nil); r.Code != remoting.RespSuccess {
		t.Fatalf("route before expiry: %s", r)
	}
	ev := <-gone
	if ev != (goneEvent{"10.0.0.9:10911", "expired"}) || time.Since(start) < 300*time.Millisecond {
		t.Fatalf("got %+v after %v", ev, time.Since(start))
	}
	if r := invoke(t, c, remoting.ReqGetRouteInfoByTopic, ext("topic", "T"), nil); r.Code != remoting.RespTopicNotExist {
		t.Fatalf("route after expiry: %s", r)
	}
}

func TestConnectionCloseDropsBroker(t *testing.T) {
	nsAddr, gone := startNS(t, time.Minute, time.Minute)
	c, err := remoting.Dial(nsAddr, remoting.ClientConfig{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 { // re-registering on one connection must not stack close hooks
		resp := invoke(t, c, remoting.ReqRegisterBroker, ext("brokerName", "b", "brokerAddr", "10.0.0.8:1",
			"clusterName", "C", "brokerId", "0"), nil)
		if resp.Code != remoting.RespSuccess {
			t.Fatalf("register: %s", resp)
		}
	}
	_ = c.Close()
	if ev := <-gone; ev != (goneEvent{"10.0.0.8:1", "connection closed"}) {
		t.Fatalf("got %+v", ev)
	}
	select {
	case ev := <-gone:
		t.Fatalf("dropped twice: %+v", ev)
	default:
	}
}

func TestTwoNameServersAndOneDown(t *testing.T) {
	ns1, _ := startNS(t, time.Minute, time.Minute)
	ns2, _ := startNS(t, time.Minute, time.Minute)
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := dead.Addr().String()
	_ = dead.Close()
	r := registrar(t, []string{ns1, deadAddr, ns2}, "broker-a", "127.0.0.1:10911", 0,
		TopicConfig{TopicName: "T", ReadQueueNums: 4, WriteQueueNums: 4, Perm: 6})
	err = r.RegisterNow(ctxT(t))
	if err == nil || !strings.Contains(err.Error(), deadAddr) || strings.Contains(err.Error(), ns1) {
		t.Fatalf("RegisterNow: %v, want only %s to fail", err, deadAddr)
	}
	for _, a := range []string{ns1, ns2} {
		if resp := invoke(t, client(t, a), remoting.ReqGetRouteInfoByTopic, ext("topic", "T"), nil); resp.Code != remoting.RespSuccess {
			t.Fatalf("%s: %s", a, resp)
		}
	}
}

func TestUnregisterOnStop(t *testing.T) {
	nsAddr, gone := startNS(t, time.Minute, time.Minute)
	r := NewRegistrar(RegistrarConfig{NameServers: []string{nsAddr}, ClusterName: "C", BrokerName: "b",
		BrokerAddr: "127.0.0.1:10911", Logger: quiet}, func() []TopicConfig {
		return []TopicConfig{{TopicName: "T", ReadQueueNums: 1, WriteQueueNums: 1, Perm: 6}}
	})
	r.Start()
	if err := r.RegisterNow(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if err := r.Stop(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	ev := <-gone
	if ev.addr != "127.0.0.1:10911" || ev.reason != "unregistered" {
		t.Fatalf("got %+v", ev)
	}
	if resp := invoke(t, client(t, nsAddr), remoting.ReqGetRouteInfoByTopic, ext("topic", "T"), nil); resp.Code != remoting.RespTopicNotExist {
		t.Fatalf("route after unregister: %s", resp)
	}
}

func TestTriggerNowRegistersNewTopic(t *testing.T) {
	nsAddr, _ := startNS(t, time.Minute, time.Minute)
	topics := make(chan []TopicConfig, 4)
	current := []TopicConfig{{TopicName: "A", ReadQueueNums: 1, WriteQueueNums: 1, Perm: 6}}
	registered := make(chan struct{}, 4)
	r := NewRegistrar(RegistrarConfig{NameServers: []string{nsAddr}, ClusterName: "C", BrokerName: "b",
		BrokerAddr: "127.0.0.1:10911", Interval: time.Hour, Logger: quiet}, func() []TopicConfig {
		select {
		case current = <-topics:
		default:
		}
		defer func() { registered <- struct{}{} }()
		return current
	})
	r.Start()
	t.Cleanup(func() { _ = r.Stop(context.Background()) })
	<-registered // the registration at Start
	topics <- append(current, TopicConfig{TopicName: "B", ReadQueueNums: 2, WriteQueueNums: 2, Perm: 6})
	r.TriggerNow()
	<-registered // body built; the request follows: confirm over the wire with RegisterNow's ordering
	if err := r.RegisterNow(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	resp := invoke(t, client(t, nsAddr), remoting.ReqGetRouteInfoByTopic, ext("topic", "B"), nil)
	if resp.Code != remoting.RespSuccess {
		t.Fatalf("route of B: %s", resp)
	}
}

func TestClusterInfoTopicListDeleteAndUnknown(t *testing.T) {
	nsAddr, _ := startNS(t, time.Minute, time.Minute)
	var many []TopicConfig
	for i := range 600 { // > CompressOverBytes of JSON: exercises the compressed path
		many = append(many, TopicConfig{TopicName: fmt.Sprintf("Topic-%04d", i), ReadQueueNums: 8, WriteQueueNums: 8, Perm: 6})
	}
	r := registrar(t, []string{nsAddr}, "broker-a", "127.0.0.1:10911", 0, many...)
	if body, compressed, _ := r.body(); !compressed || len(body) == 0 {
		t.Fatalf("a %d-topic registration was not compressed", len(many))
	}
	if err := r.RegisterNow(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	c := client(t, nsAddr)
	ci := invoke(t, c, remoting.ReqGetBrokerClusterInfo, nil, nil)
	const wantCI = `{"brokerAddrTable":{"broker-a":{"brokerAddrs":{"0":"127.0.0.1:10911"},"brokerName":"broker-a","cluster":"DefaultCluster"}},"clusterAddrTable":{"DefaultCluster":["broker-a"]}}`
	if string(ci.Body) != wantCI {
		t.Fatalf("cluster info %s", ci.Body)
	}
	var list struct{ TopicList []string }
	if err := json.Unmarshal(invoke(t, c, remoting.ReqGetAllTopicListFromNameServer, nil, nil).Body, &list); err != nil || len(list.TopicList) != 600 {
		t.Fatalf("topic list: %d topics, %v", len(list.TopicList), err)
	}
	if b := invoke(t, c, remoting.ReqGetTopicsByCluster, ext("cluster", "Other"), nil).Body; string(b) != `{"topicList":[]}` {
		t.Fatalf("topics of an unknown cluster: %s", b)
	}
	if resp := invoke(t, c, remoting.ReqDeleteTopicInNamesrv, ext("topic", "Topic-0001"), nil); resp.Code != remoting.RespSuccess {
		t.Fatalf("delete: %s", resp)
	}
	if resp := invoke(t, c, remoting.ReqGetRouteInfoByTopic, ext("topic", "Topic-0001"), nil); resp.Code != remoting.RespTopicNotExist {
		t.Fatalf("deleted topic: %s", resp)
	}
	if resp := invoke(t, c, remoting.ReqSendMessage, nil, nil); resp.Code != remoting.RespRequestCodeNotSupported {
		t.Fatalf("unknown code: %s", resp)
	}
	bad := invoke(t, c, remoting.ReqRegisterBroker, ext("brokerName", "b", "brokerAddr", "x:1", "clusterName", "C",
		"brokerId", "0", "bodyCrc32", "12345"), []byte(`{}`))
	if bad.Code != remoting.RespSystemError || !strings.Contains(string(bad.Remark), "bodyCrc32") {
		t.Fatalf("bad crc: %s", bad)
	}
}

func TestRegistrarStopBoundedByContext(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0") // accepts, never answers
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	r := NewRegistrar(RegistrarConfig{NameServers: []string{ln.Addr().String()}, ClusterName: "C", BrokerName: "b",
		BrokerAddr: "127.0.0.1:1", Timeout: 5 * time.Second, Logger: quiet}, func() []TopicConfig { return nil })
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := r.Stop(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Stop: %v, want DeadlineExceeded", err)
	}
}
