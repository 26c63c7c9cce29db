package broker

import (
	"context"
	"encoding/json"
	"net"
	"testing"
	"time"

	"github.com/ringmq/ringmq/engine"
	"github.com/ringmq/ringmq/engine/meta"
	"github.com/ringmq/ringmq/netio/namesrv"
	"github.com/ringmq/ringmq/netio/remoting"
)

// startNamesrv serves a real name server on 127.0.0.1:0.
func startNamesrv(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ns := namesrv.New(namesrv.Config{Logger: quietLogger()})
	done := make(chan error, 1)
	go func() { done <- ns.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = ns.Shutdown(ctx)
		<-done
	})
	return ln.Addr().String()
}

type routeData struct {
	BrokerDatas []struct {
		BrokerName  string            `json:"brokerName"`
		BrokerAddrs map[string]string `json:"brokerAddrs"`
	} `json:"brokerDatas"`
	QueueDatas []struct {
		WriteQueueNums int `json:"writeQueueNums"`
		Perm           int `json:"perm"`
	} `json:"queueDatas"`
}

// route asks the name server for topic's route; ok is false on TOPIC_NOT_EXIST.
func route(t *testing.T, ns *remoting.Client, topic string) (routeData, bool) {
	t.Helper()
	resp := invoke(t, ns, remoting.ReqGetRouteInfoByTopic, ext("topic", topic), nil)
	if resp.Code != remoting.RespSuccess {
		return routeData{}, false
	}
	var rd routeData
	if err := json.Unmarshal(resp.Body, &rd); err != nil {
		t.Fatalf("route body %q: %v", resp.Body, err)
	}
	return rd, true
}

// The broker registers its topics at start, a new topic at once (not after 30 s), a deleted
// one disappears at once, and Shutdown unregisters the broker.
func TestRegistrationWithNameServer(t *testing.T) {
	nsAddr := startNamesrv(t)
	tb := startBroker(t, "", nil, func(c *Config, _ *engine.Config) {
		c.NamesrvAddrs = []string{nsAddr}
		c.RegisterInterval = time.Hour // so only the immediate registrations can pass the test
	})
	ns, err := remoting.Dial(nsAddr, remoting.ClientConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	waitFor(t, "TBW102 to be routed", func() bool { _, ok := route(t, ns, TopicDefault); return ok })
	rd, _ := route(t, ns, TopicDefault)
	if len(rd.BrokerDatas) != 1 || rd.BrokerDatas[0].BrokerAddrs["0"] != tb.addr.String() || rd.QueueDatas[0].Perm != 7 {
		t.Fatalf("TBW102 route: %+v", rd)
	}

	c := tb.dial(nil)
	createTopic(t, c, "REG", 3, meta.PermRW)
	waitFor(t, "REG to be routed", func() bool { _, ok := route(t, ns, "REG"); return ok })
	if rd, _ := route(t, ns, "REG"); rd.QueueDatas[0].WriteQueueNums != 3 {
		t.Fatalf("REG route: %+v", rd)
	}
	wantCode(t, sendV1(t, c, "AUTO", 0, "", []byte("x")), remoting.RespSuccess)
	waitFor(t, "the auto-created topic to be routed", func() bool { _, ok := route(t, ns, "AUTO"); return ok })

	wantCode(t, invoke(t, c, remoting.ReqDeleteTopicInBroker, ext("topic", "REG"), nil), remoting.RespSuccess)
	waitFor(t, "REG to be unrouted", func() bool { _, ok := route(t, ns, "REG"); return !ok })

	tb.stop()
	if _, ok := route(t, ns, TopicDefault); ok {
		t.Fatal("TBW102 still routed after the broker shut down (not unregistered)")
	}
}
