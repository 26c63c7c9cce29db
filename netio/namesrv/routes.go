package namesrv

import (
	"encoding/json"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// Permission bits of a topic (RocketMQ PermName).
const (
	PermPriority = 8
	PermRead     = 4
	PermWrite    = 2
	PermInherit  = 1
)

// MasterID is the broker id of a master; slaves have ids > 0.
const MasterID = 0

// RetryGroupTopicPrefix marks a consumer group's retry topic, "%RETRY%<group>".
const RetryGroupTopicPrefix = "%RETRY%"

// TopicConfig is one topic as a broker registers it.
type TopicConfig struct {
	TopicName      string `json:"topicName"`
	ReadQueueNums  int    `json:"readQueueNums"`
	WriteQueueNums int    `json:"writeQueueNums"`
	Perm           int    `json:"perm"`
	TopicSysFlag   int    `json:"topicSysFlag"`
	Order          bool   `json:"order"`
}

// Registration identifies the registering broker (the REGISTER_BROKER header).
type Registration struct {
	ClusterName  string
	BrokerName   string
	BrokerAddr   string
	HAServerAddr string
	BrokerID     int64
	ConnID       uint64 // the connection it came on: closing it drops the broker
}

// RegisterResult is what a registering slave learns about its master.
type RegisterResult struct {
	MasterAddr   string
	HAServerAddr string
}

// queueData is one broker's queues of one topic.
type queueData struct {
	readQueueNums, writeQueueNums, perm, topicSysFlag int
}

// brokerData is one broker name's cluster and addresses (id -> "ip:port").
type brokerData struct {
	cluster string
	addrs   map[int64]string
}

// liveBroker is one registered broker address.
type liveBroker struct {
	lastUpdateNs int64
	connID       uint64
	haServerAddr string
	cluster      string
	brokerName   string
	brokerID     int64
}

// RouteTable is the name server's state: pure data, no I/O, clock passed in. Safe for concurrent use
// (one mutex; every method is short and holds it across no system call).
type RouteTable struct {
	mu struct {
		sync.Mutex
		topics   map[string]map[string]queueData // topic -> brokerName -> queues
		brokers  map[string]*brokerData          // brokerName -> data
		clusters map[string]map[string]struct{}  // cluster -> brokerNames
		live     map[string]*liveBroker          // brokerAddr -> liveness
	}
}

// NewRouteTable returns an empty table.
func NewRouteTable() *RouteTable {
	t := &RouteTable{}
	t.mu.topics = make(map[string]map[string]queueData)
	t.mu.brokers = make(map[string]*brokerData)
	t.mu.clusters = make(map[string]map[string]struct{})
	t.mu.live = make(map[string]*liveBroker)
	return t
}

// Register records a broker (re-registration doubles as its heartbeat). A master's topic list is its
// whole topic table: its queues of topics missing from the list are removed. Slaves' topics are ignored,
// as in RocketMQ.
func (t *RouteTable) Register(reg Registration, topics []TopicConfig, nowNs int64) RegisterResult {
	t.mu.Lock()
	defer t.mu.Unlock()
	names := t.mu.clusters[reg.ClusterName]
	if names == nil {
		names = make(map[string]struct{})
		t.mu.clusters[reg.ClusterName] = names
	}
	names[reg.BrokerName] = struct{}{}
	bd := t.mu.brokers[reg.BrokerName]
	if bd == nil {
		bd = &brokerData{addrs: make(map[int64]string)}
		t.mu.brokers[reg.BrokerName] = bd
	}
	bd.cluster = reg.ClusterName
	for id, addr := range bd.addrs { // an address that changed role (slave -> master) keeps one id
		if addr == reg.BrokerAddr && id != reg.BrokerID {
			delete(bd.addrs, id)
		}
	}
	bd.addrs[reg.BrokerID] = reg.BrokerAddr
	if reg.BrokerID == MasterID {
		t.replaceQueuesLocked(reg.BrokerName, topics)
	}
	t.mu.live[reg.BrokerAddr] = &liveBroker{lastUpdateNs: nowNs, connID: reg.ConnID, haServerAddr: reg.HAServerAddr,
		cluster: reg.ClusterName, brokerName: reg.BrokerName, brokerID: reg.BrokerID}
	var res RegisterResult
	if reg.BrokerID != MasterID {
		if master, ok := bd.addrs[MasterID]; ok {
			res.MasterAddr = master
			if lb := t.mu.live[master]; lb != nil {
				res.HAServerAddr = lb.haServerAddr
			}
		}
	}
	return res
}

func (t *RouteTable) replaceQueuesLocked(brokerName string, topics []TopicConfig) {
	listed := make(map[string]struct{}, len(topics))
	for _, tc := range topics {
		listed[tc.TopicName] = struct{}{}
		qs := t.mu.topics[tc.TopicName]
		if qs == nil {
			qs = make(map[string]queueData)
			t.mu.topics[tc.TopicName] = qs
		}
		qs[brokerName] = queueData{readQueueNums: tc.ReadQueueNums, writeQueueNums: tc.WriteQueueNums,
			perm: tc.Perm, topicSysFlag: tc.TopicSysFlag}
	}
	for topic, qs := range t.mu.topics {
		if _, ok := listed[topic]; ok {
			continue
		}
		if _, ok := qs[brokerName]; ok {
			delete(qs, brokerName)
			if len(qs) == 0 {
				delete(t.mu.topics, topic)
			}
		}
	}
}

// Unregister removes one broker address (UNREGISTER_BROKER). It reports whether it was known.
func (t *RouteTable) Unregister(brokerAddr string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.removeLocked(brokerAddr)
}

// removeLocked drops an address; when its broker name has no address left, the name leaves its
// cluster and every topic loses that broker's queues (a topic left without queues is gone).
func (t *RouteTable) removeLocked(addr string) bool {
	lb, ok := t.mu.live[addr]
	if !ok {
		return false
	}
	delete(t.mu.live, addr)
	bd := t.mu.brokers[lb.brokerName]
	if bd == nil {
		return true
	}
	for id, a := range bd.addrs {
		if a == addr {
			delete(bd.addrs, id)
		}
	}
	if len(bd.addrs) > 0 {
		return true
	}
	delete(t.mu.brokers, lb.brokerName)
	if names := t.mu.clusters[bd.cluster]; names != nil {
		delete(names, lb.brokerName)
		if len(names) == 0 {
			delete(t.mu.clusters, bd.cluster)
		}
	}
	for topic, qs := range t.mu.topics {
		delete(qs, lb.brokerName)
		if len(qs) == 0 {
			delete(t.mu.topics, topic)
		}
	}
	return true
}

// Expire drops every broker not heard from since nowNs-expiryNs and returns their addresses.
func (t *RouteTable) Expire(nowNs, expiryNs int64) []string {
	return t.removeWhere(func(lb *liveBroker) bool { return nowNs-lb.lastUpdateNs >= expiryNs })
}

// ConnClosed drops every broker that registered last over connection connID and returns them.
func (t *RouteTable) ConnClosed(connID uint64) []string {
	return t.removeWhere(func(lb *liveBroker) bool { return lb.connID == connID })
}

// removeWhere drops every live broker for which gone is true and returns their addresses, sorted.
func (t *RouteTable) removeWhere(gone func(*liveBroker) bool) []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var addrs []string
	for addr, lb := range t.mu.live {
		if gone(lb) {
			addrs = append(addrs, addr)
		}
	}
	for _, addr := range addrs {
		t.removeLocked(addr)
	}
	slices.Sort(addrs)
	return addrs
}

// Touch refreshes a live broker's timestamp (QUERY_DATA_VERSION); false when unknown.
func (t *RouteTable) Touch(brokerAddr string, nowNs int64) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	lb, ok := t.mu.live[brokerAddr]
	if ok {
		lb.lastUpdateNs = nowNs
	}
	return ok
}

// DeleteTopic removes a topic from every broker's routes; false when unknown.
func (t *RouteTable) DeleteTopic(topic string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	_, ok := t.mu.topics[topic]
	delete(t.mu.topics, topic)
	return ok
}

// Wire shapes. Field order is alphabetical, matching what the Go client was observed to parse
// (PROTOCOL.md §2.1); brokerAddrs keys are quoted decimal ids, compact (no spaces).
type routeJSON struct {
	BrokerDatas       []brokerJSON      `json:"brokerDatas"`
	FilterServerTable map[string]string `json:"filterServerTable"`
	QueueDatas        []queueJSON       `json:"queueDatas"`
}

type brokerJSON struct {
	BrokerAddrs map[string]string `json:"brokerAddrs"`
	BrokerName  string            `json:"brokerName"`
	Cluster     string            `json:"cluster"`
}

type queueJSON struct {
	BrokerName     string `json:"brokerName"`
	Perm           int    `json:"perm"`
	ReadQueueNums  int    `json:"readQueueNums"`
	TopicSysFlag   int    `json:"topicSysFlag"`
	WriteQueueNums int    `json:"writeQueueNums"`
}

func (bd *brokerData) json(name string) brokerJSON {
	addrs := make(map[string]string, len(bd.addrs))
	for id, a := range bd.addrs {
		addrs[strconv.FormatInt(id, 10)] = a
	}
	return brokerJSON{BrokerAddrs: addrs, BrokerName: name, Cluster: bd.cluster}
}

// Route returns the TopicRouteData JSON of topic, or false when the topic has no route. A retry topic
// "%RETRY%<group>" nobody registered yet is answered with one read/write queue on every broker that has
// a master, so clustering consumers can start before the broker creates it (PROTOCOL.md §2.1).
func (t *RouteTable) Route(topic string) ([]byte, bool) {
	t.mu.Lock()
	r := routeJSON{FilterServerTable: map[string]string{}, BrokerDatas: []brokerJSON{}, QueueDatas: []queueJSON{}}
	qs := t.mu.topics[topic]
	for name, q := range qs {
		bd := t.mu.brokers[name]
		if bd == nil {
			continue
		}
		r.QueueDatas = append(r.QueueDatas, queueJSON{BrokerName: name, Perm: q.perm, ReadQueueNums: q.readQueueNums,
			TopicSysFlag: q.topicSysFlag, WriteQueueNums: q.writeQueueNums})
		r.BrokerDatas = append(r.BrokerDatas, bd.json(name))
	}
	if len(qs) == 0 && strings.HasPrefix(topic, RetryGroupTopicPrefix) {
		for name, bd := range t.mu.brokers {
			if _, ok := bd.addrs[MasterID]; !ok {
				continue
			}
			r.QueueDatas = append(r.QueueDatas, queueJSON{BrokerName: name, Perm: PermRead | PermWrite,
				ReadQueueNums: 1, WriteQueueNums: 1})
			r.BrokerDatas = append(r.BrokerDatas, bd.json(name))
		}
	}
	t.mu.Unlock()
	if len(r.QueueDatas) == 0 {
		return nil, false
	}
	slices.SortFunc(r.QueueDatas, func(a, b queueJSON) int { return strings.Compare(a.BrokerName, b.BrokerName) })
	slices.SortFunc(r.BrokerDatas, func(a, b brokerJSON) int { return strings.Compare(a.BrokerName, b.BrokerName) })
	return mustJSON(r), true
}

// ClusterInfo returns the GET_BROKER_CLUSTER_INFO body.
func (t *RouteTable) ClusterInfo() []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	info := struct {
		BrokerAddrTable  map[string]brokerJSON `json:"brokerAddrTable"`
		ClusterAddrTable map[string][]string   `json:"clusterAddrTable"`
	}{BrokerAddrTable: make(map[string]brokerJSON), ClusterAddrTable: make(map[string][]string)}
	for name, bd := range t.mu.brokers {
		info.BrokerAddrTable[name] = bd.json(name)
	}
	for cluster, names := range t.mu.clusters {
		info.ClusterAddrTable[cluster] = slices.Sorted(maps.Keys(names))
	}
	return mustJSON(info)
}

// TopicList returns {"topicList":[...]} of every topic (sorted), or of the topics with queues on a
// broker of cluster when cluster is not empty.
func (t *RouteTable) TopicList(cluster string) []byte {
	t.mu.Lock()
	list := make([]string, 0, len(t.mu.topics))
	for topic, qs := range t.mu.topics {
		if cluster == "" {
			list = append(list, topic)
			continue
		}
		for name := range qs {
			if bd := t.mu.brokers[name]; bd != nil && bd.cluster == cluster {
				list = append(list, topic)
				break
			}
		}
	}
	t.mu.Unlock()
	slices.Sort(list)
	return mustJSON(struct {
		TopicList []string `json:"topicList"`
	}{list})
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic("BUG: namesrv: marshal " + err.Error())
	}
	return b
}
