package namesrv

import (
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/ringmq/ringmq/netio/remoting"
)

const sec = int64(1e9)

func regA(id int64, addr string) Registration {
	return Registration{ClusterName: "DefaultCluster", BrokerName: "broker-a", BrokerAddr: addr, BrokerID: id, ConnID: 1}
}

func topic(name string, q int) TopicConfig {
	return TopicConfig{TopicName: name, ReadQueueNums: q, WriteQueueNums: q, Perm: PermRead | PermWrite}
}

func TestRouteShapeExact(t *testing.T) {
	rt := NewRouteTable()
	rt.Register(regA(0, "127.0.0.1:10911"), []TopicConfig{topic("T1", 2)}, 0)
	got, ok := rt.Route("T1")
	const want = `{"brokerDatas":[{"brokerAddrs":{"0":"127.0.0.1:10911"},"brokerName":"broker-a","cluster":"DefaultCluster"}],` +
		`"filterServerTable":{},"queueDatas":[{"brokerName":"broker-a","perm":6,"readQueueNums":2,"topicSysFlag":0,"writeQueueNums":2}]}`
	if !ok || string(got) != want {
		t.Fatalf("route\n got %s\nwant %s", got, want)
	}
	if _, ok := rt.Route("nope"); ok {
		t.Fatal("unknown topic has a route")
	}
}

func TestRouteMasterSlaveAndRoleSwitch(t *testing.T) {
	rt := NewRouteTable()
	rt.Register(regA(0, "10.0.0.1:10911"), []TopicConfig{topic("T", 4)}, 0)
	res := rt.Register(Registration{ClusterName: "DefaultCluster", BrokerName: "broker-a", BrokerAddr: "10.0.0.2:10911",
		BrokerID: 1, HAServerAddr: "10.0.0.2:10912"}, []TopicConfig{topic("SLAVE_ONLY", 1)}, 0)
	if res.MasterAddr != "10.0.0.1:10911" {
		t.Fatalf("slave learned master %q", res.MasterAddr)
	}
	got, _ := rt.Route("T")
	if want := `"brokerAddrs":{"0":"10.0.0.1:10911","1":"10.0.0.2:10911"}`; !contains(got, want) {
		t.Fatalf("route %s lacks %s", got, want)
	}
	if _, ok := rt.Route("SLAVE_ONLY"); ok {
		t.Fatal("a slave's topics made a route")
	}
	// The master goes; the slave is promoted and registers as id 0 from the same address.
	rt.Unregister("10.0.0.1:10911")
	rt.Register(Registration{ClusterName: "DefaultCluster", BrokerName: "broker-a", BrokerAddr: "10.0.0.2:10911"},
		[]TopicConfig{topic("T", 4)}, 0)
	got, _ = rt.Route("T")
	if want := `"brokerAddrs":{"0":"10.0.0.2:10911"}`; !contains(got, want) {
		t.Fatalf("after the switch route %s lacks %s", got, want)
	}
}

func TestRegisterReplacesTopicTable(t *testing.T) {
	rt := NewRouteTable()
	rt.Register(regA(0, "a:1"), []TopicConfig{topic("T1", 1), topic("T2", 1)}, 0)
	rt.Register(Registration{ClusterName: "C2", BrokerName: "broker-b", BrokerAddr: "b:1"}, []TopicConfig{topic("T2", 8)}, 0)
	rt.Register(regA(0, "a:1"), []TopicConfig{topic("T2", 3)}, 0) // T1 deleted on broker-a
	if _, ok := rt.Route("T1"); ok {
		t.Fatal("T1 still routed after broker-a stopped listing it")
	}
	got, _ := rt.Route("T2")
	if !contains(got, `{"brokerName":"broker-a","perm":6,"readQueueNums":3`) || !contains(got, `"brokerName":"broker-b","perm":6,"readQueueNums":8`) {
		t.Fatalf("T2 route %s", got)
	}
	if l := string(rt.TopicList("C2")); l != `{"topicList":["T2"]}` {
		t.Fatalf("topics of C2: %s", l)
	}
	if l := string(rt.TopicList("")); l != `{"topicList":["T2"]}` {
		t.Fatalf("all topics: %s", l)
	}
}

func TestExpireAndConnClose(t *testing.T) {
	rt := NewRouteTable()
	rt.Register(regA(0, "a:1"), []TopicConfig{topic("T", 1)}, 0)
	rt.Register(Registration{ClusterName: "DefaultCluster", BrokerName: "broker-b", BrokerAddr: "b:1", ConnID: 2},
		[]TopicConfig{topic("T", 1)}, 100*sec)
	if gone := rt.Expire(119*sec, 120*sec); len(gone) != 0 {
		t.Fatalf("expired early: %v", gone)
	}
	if gone := rt.Expire(120*sec, 120*sec); !slices.Equal(gone, []string{"a:1"}) {
		t.Fatalf("expired %v, want [a:1]", gone)
	}
	got, _ := rt.Route("T")
	if contains(got, "broker-a") {
		t.Fatalf("route still has broker-a: %s", got)
	}
	if ci := string(rt.ClusterInfo()); ci != `{"brokerAddrTable":{"broker-b":{"brokerAddrs":{"0":"b:1"},"brokerName":"broker-b","cluster":"DefaultCluster"}},"clusterAddrTable":{"DefaultCluster":["broker-b"]}}` {
		t.Fatalf("cluster info %s", ci)
	}
	if gone := rt.ConnClosed(2); !slices.Equal(gone, []string{"b:1"}) {
		t.Fatalf("conn close dropped %v", gone)
	}
	if _, ok := rt.Route("T"); ok {
		t.Fatal("route survives its last broker")
	}
	if ci := string(rt.ClusterInfo()); ci != `{"brokerAddrTable":{},"clusterAddrTable":{}}` {
		t.Fatalf("cluster info %s", ci)
	}
}

func TestRetryTopicAnsweredOnEveryMaster(t *testing.T) {
	rt := NewRouteTable()
	if _, ok := rt.Route("%RETRY%g1"); ok {
		t.Fatal("retry route with no broker")
	}
	rt.Register(regA(0, "a:1"), nil, 0)
	rt.Register(Registration{ClusterName: "DefaultCluster", BrokerName: "broker-b", BrokerAddr: "b:2", BrokerID: 1}, nil, 0)
	got, ok := rt.Route("%RETRY%g1")
	const want = `{"brokerDatas":[{"brokerAddrs":{"0":"a:1"},"brokerName":"broker-a","cluster":"DefaultCluster"}],` +
		`"filterServerTable":{},"queueDatas":[{"brokerName":"broker-a","perm":6,"readQueueNums":1,"topicSysFlag":0,"writeQueueNums":1}]}`
	if !ok || string(got) != want {
		t.Fatalf("retry route\n got %s\nwant %s", got, want)
	}
	rt.Register(regA(0, "a:1"), []TopicConfig{topic("%RETRY%g1", 2)}, 0) // registered: the real config wins
	got, _ = rt.Route("%RETRY%g1")
	if !contains(got, `"readQueueNums":2`) {
		t.Fatalf("registered retry route %s", got)
	}
}

func TestDeleteTopic(t *testing.T) {
	rt := NewRouteTable()
	rt.Register(regA(0, "a:1"), []TopicConfig{topic("T", 1)}, 0)
	if !rt.DeleteTopic("T") || rt.DeleteTopic("T") {
		t.Fatal("DeleteTopic results")
	}
	if _, ok := rt.Route("T"); ok {
		t.Fatal("deleted topic routed")
	}
}

func contains(b []byte, s string) bool { return strings.Contains(string(b), s) }

// FuzzRegisterBody feeds arbitrary registration bodies (plain and "compressed") to the decoder and the
// route table: no panic, and every accepted topic is routable with the registered numbers.
func FuzzRegisterBody(f *testing.F) {
	f.Add([]byte(`{"topicConfigSerializeWrapper":{"topicConfigTable":{"T":{"topicName":"T","readQueueNums":1,"writeQueueNums":1,"perm":6}}}}`), false)
	f.Add([]byte{0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01}, true)
	f.Fuzz(func(t *testing.T, body []byte, compressed bool) {
		req := &remoting.Command{Body: body, Ext: []remoting.Field{{Key: []byte("compressed"), Value: []byte(strconv.FormatBool(compressed))}}}
		topics, err := decodeRegisterBody(req)
		if err != nil {
			return
		}
		rt := NewRouteTable()
		rt.Register(regA(0, "a:1"), topics, 0)
		for _, tc := range topics {
			if _, ok := rt.Route(tc.TopicName); !ok {
				t.Fatalf("registered topic %q has no route", tc.TopicName)
			}
		}
	})
}
