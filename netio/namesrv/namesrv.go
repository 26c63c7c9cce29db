// Package namesrv is ringmq's name server and the broker-side registrar that keeps a broker in it.
//
// # Contract
//
// Brokers register with REGISTER_BROKER (103) at start, every 30 s, and at once when a topic changes;
// the registration is the heartbeat. A broker silent for Config.BrokerExpiry (120 s) is dropped by a
// scan every Config.ScanInterval (10 s), as is every broker registered over a connection that closes,
// and one that sends UNREGISTER_BROKER (104). Several name servers run side by side with no
// coordination: the Registrar registers with each independently, one down blocks none of the others.
//
// Served requests: 103, 104, 105 GET_ROUTEINFO_BY_TOPIC, 106 GET_BROKER_CLUSTER_INFO,
// 206 GET_ALL_TOPIC_LIST_FROM_NAMESERVER, 216 DELETE_TOPIC_IN_NAMESRV, 224 GET_TOPICS_BY_CLUSTER and
// 322 QUERY_DATA_VERSION; anything else gets REQUEST_CODE_NOT_SUPPORTED. Bodies are compact JSON; the
// route body (PROTOCOL.md §2.1) is what the Go client v2.1.2 hand-parses:
//
//	{"brokerDatas":[{"brokerAddrs":{"0":"127.0.0.1:10911"},"brokerName":"broker-a","cluster":"C"}],
//	 "filterServerTable":{},
//	 "queueDatas":[{"brokerName":"broker-a","perm":6,"readQueueNums":4,"topicSysFlag":0,"writeQueueNums":4}]}
//
// (one line on the wire). docs/wire.md lists where we differ from the Java name server.
//
// # Concurrency
//
// Requests run on the remoting server's connection readers; the RouteTable has one mutex held for
// map work only. The expiry scanner is one goroutine. Errors in a request are answered with a
// response code and remark, never logged and returned twice.
package namesrv

import (
	"bytes"
	"compress/zlib"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/ringmq/ringmq/netio/remoting"
	"github.com/ringmq/ringmq/perf"
)

// Defaults, as RocketMQ's.
const (
	DefaultBrokerExpiry = 120 * time.Second
	DefaultScanInterval = 10 * time.Second
	// MaxRegisterBodyBytes bounds an inflated registration body.
	MaxRegisterBodyBytes = 64 << 20
)

// Config configures a NameServer. Zero durations take the defaults.
type Config struct {
	BrokerExpiry time.Duration
	ScanInterval time.Duration
	Logger       *slog.Logger
	Server       remoting.ServerConfig // limits of the remoting server; its Logger defaults to Logger
	// OnBrokerGone, when set, is told of every broker address dropped, with the reason ("expired",
	// "connection closed", "unregistered"). It runs on the goroutine that dropped it and must not block.
	OnBrokerGone func(brokerAddr, reason string)
}

// NameServer serves the route table over the remoting protocol.
type NameServer struct {
	cfg    Config
	log    *slog.Logger
	table  *RouteTable
	srv    *remoting.Server
	stop   chan struct{} // closed by Shutdown: stops the scanner
	scanWG sync.WaitGroup
	life   struct {
		sync.Mutex
		started, stopped bool
	}
	// watched holds the connections a broker registered over that have an OnClose hook.
	watched struct {
		sync.Mutex
		m map[uint64]struct{}
	}
}

// handler is the NameServer's remoting.Handler.
type handler struct{ ns *NameServer }

// Serve implements remoting.Handler.
func (h handler) Serve(c *remoting.Conn, req *remoting.Command) { h.ns.serve(c, req) }

// New returns a name server; Serve starts it.
func New(cfg Config) *NameServer {
	if cfg.BrokerExpiry <= 0 {
		cfg.BrokerExpiry = DefaultBrokerExpiry
	}
	if cfg.ScanInterval <= 0 {
		cfg.ScanInterval = DefaultScanInterval
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Server.Logger == nil {
		cfg.Server.Logger = cfg.Logger
	}
	ns := &NameServer{cfg: cfg, log: cfg.Logger, table: NewRouteTable(), stop: make(chan struct{})}
	ns.watched.m = make(map[uint64]struct{})
	ns.srv = remoting.NewServer(cfg.Server, handler{ns})
	return ns
}

// Table returns the route table (for tools and tests).
func (ns *NameServer) Table() *RouteTable { return ns.table }

// Addr returns the listening address once Serve runs.
func (ns *NameServer) Addr() net.Addr { return ns.srv.Addr() }

// Serve serves on ln until Shutdown, then returns nil.
func (ns *NameServer) Serve(ln net.Listener) error {
	ns.life.Lock()
	if !ns.life.started && !ns.life.stopped {
		ns.life.started = true
		ns.scanWG.Add(1)
		go ns.scanLoop()
	}
	ns.life.Unlock()
	return ns.srv.Serve(ln)
}

// Shutdown stops the scanner and the server (see remoting.Server.Shutdown).
func (ns *NameServer) Shutdown(ctx context.Context) error {
	ns.life.Lock()
	if !ns.life.stopped {
		ns.life.stopped = true
		close(ns.stop)
	}
	ns.life.Unlock()
	ns.scanWG.Wait()
	return ns.srv.Shutdown(ctx)
}

func (ns *NameServer) scanLoop() {
	defer ns.scanWG.Done()
	t := time.NewTicker(ns.cfg.ScanInterval)
	defer t.Stop()
	for {
		select {
		case <-ns.stop:
			return
		case <-t.C:
		}
		for _, addr := range ns.table.Expire(perf.Now(), int64(ns.cfg.BrokerExpiry)) {
			ns.log.Warn("namesrv: broker expired", "broker_addr", addr, "silent_for_at_least", ns.cfg.BrokerExpiry)
			ns.gone(addr, "expired")
		}
	}
}

// serve answers one request synchronously.
func (ns *NameServer) serve(c *remoting.Conn, req *remoting.Command) {
	r := c.NewResponse()
	switch req.Code {
	case remoting.ReqRegisterBroker:
		ns.register(c, req, r)
	case remoting.ReqUnregisterBroker:
		addr, _ := req.ExtValue("brokerAddr")
		if ns.table.Unregister(string(addr)) {
			ns.log.Info("namesrv: broker unregistered", "broker_addr", string(addr))
			ns.gone(string(addr), "unregistered")
		}
	case remoting.ReqGetRouteInfoByTopic:
		topic, _ := req.ExtValue("topic")
		if body, ok := ns.table.Route(string(topic)); ok {
			r.AppendBody(body)
		} else {
			r.Code = remoting.RespTopicNotExist
			r.SetRemark("No topic route info in name server for the topic: " + string(topic))
		}
	case remoting.ReqGetBrokerClusterInfo:
		r.AppendBody(ns.table.ClusterInfo())
	case remoting.ReqGetAllTopicListFromNameServer:
		r.AppendBody(ns.table.TopicList(""))
	case remoting.ReqGetTopicsByCluster:
		cluster, _ := req.ExtValue("cluster")
		r.AppendBody(ns.table.TopicList(string(cluster)))
	case remoting.ReqDeleteTopicInNamesrv:
		topic, _ := req.ExtValue("topic")
		ns.table.DeleteTopic(string(topic))
	case remoting.ReqQueryDataVersion:
		addr, _ := req.ExtValue("brokerAddr")
		// We apply every registration in full, so the answer is always "changed": the broker re-registers.
		r.AddExtBool("changed", true)
		ns.table.Touch(string(addr), perf.Now())
	default:
		r.Code = remoting.RespRequestCodeNotSupported
		r.SetRemark(fmt.Sprintf("request code %d not supported by the name server", req.Code))
	}
	c.Reply(req, r)
}

// registerBody is RocketMQ's RegisterBrokerBody (JSON form).
type registerBody struct {
	TopicConfigSerializeWrapper struct {
		TopicConfigTable map[string]TopicConfig `json:"topicConfigTable"`
		DataVersion      dataVersion            `json:"dataVersion"`
	} `json:"topicConfigSerializeWrapper"`
	FilterServerList []string `json:"filterServerList"`
}

type dataVersion struct {
	Timestamp int64 `json:"timestamp"`
	Counter   int64 `json:"counter"`
}

func (ns *NameServer) register(c *remoting.Conn, req *remoting.Command, r *remoting.Response) {
	reg := Registration{ClusterName: req.ExtString("clusterName"), BrokerName: req.ExtString("brokerName"),
		BrokerAddr: req.ExtString("brokerAddr"), HAServerAddr: req.ExtString("haServerAddr"), ConnID: c.ID()}
	id, err := req.ExtInt64("brokerId")
	if err == nil && (reg.ClusterName == "" || reg.BrokerName == "" || reg.BrokerAddr == "") {
		err = errors.New("clusterName, brokerName and brokerAddr are required")
	}
	var topics []TopicConfig
	if err == nil {
		reg.BrokerID = id
		topics, err = decodeRegisterBody(req)
	}
	if err != nil {
		r.Code = remoting.RespSystemError
		r.SetRemark("register broker: " + err.Error())
		return
	}
	res := ns.table.Register(reg, topics, perf.Now())
	ns.watch(c)
	r.AddExtString("haServerAddr", res.HAServerAddr)
	r.AddExtString("masterAddr", res.MasterAddr)
}

// watch makes a closing connection drop the brokers registered over it (one hook per connection).
func (ns *NameServer) watch(c *remoting.Conn) {
	ns.watched.Lock()
	_, ok := ns.watched.m[c.ID()]
	ns.watched.m[c.ID()] = struct{}{}
	ns.watched.Unlock()
	if !ok {
		c.OnClose(ns.connClosed)
	}
}

// connClosed drops the brokers that registered over a closed connection.
func (ns *NameServer) connClosed(c *remoting.Conn) {
	ns.watched.Lock()
	delete(ns.watched.m, c.ID())
	ns.watched.Unlock()
	for _, addr := range ns.table.ConnClosed(c.ID()) {
		ns.log.Info("namesrv: broker connection closed, broker dropped", "broker_addr", addr)
		ns.gone(addr, "connection closed")
	}
}

func (ns *NameServer) gone(addr, reason string) {
	if fn := ns.cfg.OnBrokerGone; fn != nil {
		fn(addr, reason)
	}
}

// decodeRegisterBody checks bodyCrc32 (when not 0), inflates a compressed body (zlib of the same JSON:
// our format, see docs/wire.md) and returns the topic list.
func decodeRegisterBody(req *remoting.Command) ([]TopicConfig, error) {
	body := req.Body
	if want, err := req.ExtInt64("bodyCrc32"); err == nil && want != 0 {
		sum := crc32.ChecksumIEEE(body)
		if int64(sum) != want && int64(sum&0x7FFFFFFF) != want && int64(int32(sum)) != want {
			return nil, fmt.Errorf("bodyCrc32 %d does not match the body (%d)", want, sum&0x7FFFFFFF)
		}
	}
	if len(body) == 0 {
		return nil, nil
	}
	if compressed, _ := req.ExtBool("compressed"); compressed {
		zr, err := zlib.NewReader(bytes.NewReader(body))
		if err != nil {
			return nil, fmt.Errorf("inflate body: %w", err)
		}
		plain, err := io.ReadAll(io.LimitReader(zr, MaxRegisterBodyBytes+1))
		if err != nil {
			return nil, fmt.Errorf("inflate body: %w", err)
		}
		if len(plain) > MaxRegisterBodyBytes {
			return nil, fmt.Errorf("inflated body over %d bytes", MaxRegisterBodyBytes)
		}
		body = plain
	}
	var rb registerBody
	if err := json.Unmarshal(body, &rb); err != nil {
		return nil, fmt.Errorf("decode body: %w", err)
	}
	topics := make([]TopicConfig, 0, len(rb.TopicConfigSerializeWrapper.TopicConfigTable))
	for name, tc := range rb.TopicConfigSerializeWrapper.TopicConfigTable {
		if tc.TopicName == "" {
			tc.TopicName = name
		}
		topics = append(topics, tc)
	}
	return topics, nil
}
