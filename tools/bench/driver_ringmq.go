package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"time"

	"github.com/ringmq/ringmq/netio/remoting"
)

// The ringmq driver speaks RocketMQ's remoting protocol (PROTOCOL.md) through
// netio/remoting's client, so it drives ringmq and Apache RocketMQ alike:
//
//   - routes: GET_ROUTEINFO_BY_TOPIC (105) at the name server;
//   - topics: UPDATE_AND_CREATE_TOPIC (17) at every master broker (found with
//     GET_BROKER_CLUSTER_INFO 106, or from the route of TBW102), then the route is polled
//     until the name server serves it;
//   - sends: SEND_MESSAGE (10) with the V1 header fields the Go client v2.1.2 sends,
//     asynchronously (InvokeAsync); only SUCCESS counts as an ack (FLUSH_DISK_TIMEOUT is
//     not durable, so it is an error here);
//   - consumers: one long-poll PULL_MESSAGE (11) loop per owned queue (ringmq_consumer.go).
//
// Each producer and each consumer has its own connection to each broker, as separate
// client processes would.

const (
	rmqAdminTimeout     = 5 * time.Second
	rmqRouteWaitTimeout = 10 * time.Second
	rmqRoutePoll        = 50 * time.Millisecond
	rmqProducerGroup    = "ringmq_bench_pg"
	rmqDefaultTopic     = "TBW102"
	rmqPermReadWrite    = 6
)

func init() { drivers["ringmq"] = newRingMQDriver }

type ringmqDriver struct {
	namesrvAddr string
	namesrv     *remoting.Client // nil when driving one broker directly
	brokerAddr  string           // set when driving one broker directly
	routes      map[string]*rmqRoute
}

// rmqQueue is one write queue: the master's address and the queue id.
type rmqQueue struct {
	addr    string
	queueID int
}

type rmqRoute struct {
	queues []rmqQueue // sorted by broker name, then queue id
}

func newRingMQDriver(ctx context.Context, o DriverOptions) (Driver, error) {
	if o.BrokerAddr != "" {
		c, err := remoting.Dial(o.BrokerAddr, remoting.ClientConfig{DialTimeout: rmqAdminTimeout})
		if err != nil {
			return nil, fmt.Errorf("broker: %w", err)
		}
		_ = c.Close()
		return &ringmqDriver{brokerAddr: o.BrokerAddr, routes: make(map[string]*rmqRoute)}, nil
	}
	if o.NamesrvAddr == "" {
		return nil, errors.New("ringmq driver needs --namesrv (or --broker)")
	}
	c, err := remoting.Dial(o.NamesrvAddr, remoting.ClientConfig{DialTimeout: rmqAdminTimeout})
	if err != nil {
		return nil, fmt.Errorf("name server: %w", err)
	}
	return &ringmqDriver{namesrvAddr: o.NamesrvAddr, namesrv: c, routes: make(map[string]*rmqRoute)}, nil
}

func (d *ringmqDriver) Name() string { return "ringmq" }

func (d *ringmqDriver) Close() error {
	if d.namesrv == nil {
		return nil
	}
	return d.namesrv.Close()
}

// invoke is a synchronous admin call with the admin timeout.
func invoke(ctx context.Context, c *remoting.Client, code int16, ext []remoting.Field, body []byte) (*remoting.Command, error) {
	ctx, cancel := context.WithTimeout(ctx, rmqAdminTimeout)
	defer cancel()
	return c.Invoke(ctx, code, ext, body)
}

func fields(kv ...string) []remoting.Field {
	f := make([]remoting.Field, 0, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		f = append(f, remoting.Field{Key: []byte(kv[i]), Value: []byte(kv[i+1])})
	}
	return f
}

func (d *ringmqDriver) CreateTopics(ctx context.Context, topics []string, partitions int) error {
	if d.brokerAddr != "" {
		for _, t := range topics {
			if err := createTopic(ctx, d.brokerAddr, t, partitions); err != nil {
				return err
			}
			rt := &rmqRoute{}
			for q := 0; q < partitions; q++ {
				rt.queues = append(rt.queues, rmqQueue{addr: d.brokerAddr, queueID: q})
			}
			d.routes[t] = rt
		}
		return nil
	}
	masters, err := d.masters(ctx)
	if err != nil {
		return err
	}
	// As OMB's RocketMQ driver: the partitions are spread over the masters.
	perBroker := (partitions + len(masters) - 1) / len(masters)
	for _, t := range topics {
		for _, addr := range masters {
			if err := createTopic(ctx, addr, t, perBroker); err != nil {
				return err
			}
		}
		rt, err := d.waitRoute(ctx, t, perBroker*len(masters))
		if err != nil {
			return err
		}
		d.routes[t] = rt
	}
	return nil
}

func createTopic(ctx context.Context, addr, topic string, queues int) error {
	c, err := remoting.Dial(addr, remoting.ClientConfig{DialTimeout: rmqAdminTimeout})
	if err != nil {
		return fmt.Errorf("create topic %s: broker: %w", topic, err)
	}
	defer c.Close()
	n := strconv.Itoa(queues)
	resp, err := invoke(ctx, c, remoting.ReqUpdateAndCreateTopic, fields("topic", topic, "defaultTopic", rmqDefaultTopic,
		"readQueueNums", n, "writeQueueNums", n, "perm", strconv.Itoa(rmqPermReadWrite), "topicFilterType", "SINGLE_TAG",
		"topicSysFlag", "0", "order", "false"), nil)
	if err != nil {
		return fmt.Errorf("create topic %s at %s: %w", topic, addr, err)
	}
	if resp.Code != remoting.RespSuccess {
		return fmt.Errorf("create topic %s at %s: code %d: %s", topic, addr, resp.Code, resp.Remark)
	}
	return nil
}

// waitRoute polls the name server until the topic's route has wantQueues write queues.
func (d *ringmqDriver) waitRoute(ctx context.Context, topic string, wantQueues int) (*rmqRoute, error) {
	deadline := time.NewTimer(rmqRouteWaitTimeout)
	defer deadline.Stop()
	poll := time.NewTicker(rmqRoutePoll)
	defer poll.Stop()
	for {
		rt, err := d.route(ctx, topic)
		if err == nil && len(rt.queues) >= wantQueues {
			return rt, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-deadline.C:
			if err == nil {
				err = fmt.Errorf("%d write queues, want %d", len(rt.queues), wantQueues)
			}
			return nil, fmt.Errorf("route of %s not served within %v: %w", topic, rmqRouteWaitTimeout, err)
		case <-poll.C:
		}
	}
}

// routeData is TopicRouteData (PROTOCOL.md §2.1).
type routeData struct {
	QueueDatas []struct {
		BrokerName     string `json:"brokerName"`
		WriteQueueNums int    `json:"writeQueueNums"`
		Perm           int    `json:"perm"`
	} `json:"queueDatas"`
	BrokerDatas []brokerData `json:"brokerDatas"`
}

type brokerData struct {
	BrokerName  string            `json:"brokerName"`
	BrokerAddrs map[string]string `json:"brokerAddrs"`
}

// bareIntKey matches fastjson's unquoted integer map keys ({0:"addr"}), which Apache
// RocketMQ's name server writes for clients older than 4.9.4 (like this one, version 317).
var bareIntKey = regexp.MustCompile(`([{,])(\d+):`)

func (d *ringmqDriver) route(ctx context.Context, topic string) (*rmqRoute, error) {
	resp, err := invoke(ctx, d.namesrv, remoting.ReqGetRouteInfoByTopic, fields("topic", topic), nil)
	if err != nil {
		return nil, fmt.Errorf("route of %s: %w", topic, err)
	}
	if resp.Code != remoting.RespSuccess {
		return nil, fmt.Errorf("route of %s: code %d: %s", topic, resp.Code, resp.Remark)
	}
	var rd routeData
	if err := json.Unmarshal(bareIntKey.ReplaceAll(resp.Body, []byte(`$1"$2":`)), &rd); err != nil {
		return nil, fmt.Errorf("route of %s: decode: %w", topic, err)
	}
	masters := make(map[string]string)
	for _, b := range rd.BrokerDatas {
		if a := b.BrokerAddrs["0"]; a != "" {
			masters[b.BrokerName] = a
		}
	}
	rt := &rmqRoute{}
	sort.Slice(rd.QueueDatas, func(i, j int) bool { return rd.QueueDatas[i].BrokerName < rd.QueueDatas[j].BrokerName })
	for _, q := range rd.QueueDatas {
		addr, ok := masters[q.BrokerName]
		if !ok || q.Perm&2 == 0 {
			continue
		}
		for i := 0; i < q.WriteQueueNums; i++ {
			rt.queues = append(rt.queues, rmqQueue{addr: addr, queueID: i})
		}
	}
	return rt, nil
}

// masters returns the master broker addresses, waiting up to rmqRouteWaitTimeout for a
// broker that is still registering with the name server.
func (d *ringmqDriver) masters(ctx context.Context) ([]string, error) {
	deadline := time.NewTimer(rmqRouteWaitTimeout)
	defer deadline.Stop()
	poll := time.NewTicker(rmqRoutePoll)
	defer poll.Stop()
	for {
		addrs, err := d.findMasters(ctx)
		if err == nil {
			return addrs, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-deadline.C:
			return nil, err
		case <-poll.C:
		}
	}
}

// findMasters asks for the cluster info, else the route of TBW102.
func (d *ringmqDriver) findMasters(ctx context.Context) ([]string, error) {
	resp, err := invoke(ctx, d.namesrv, remoting.ReqGetBrokerClusterInfo, nil, nil)
	if err == nil && resp.Code == remoting.RespSuccess {
		var ci struct {
			BrokerAddrTable map[string]brokerData `json:"brokerAddrTable"`
		}
		if jerr := json.Unmarshal(bareIntKey.ReplaceAll(resp.Body, []byte(`$1"$2":`)), &ci); jerr == nil {
			var addrs []string
			for _, b := range ci.BrokerAddrTable {
				if a := b.BrokerAddrs["0"]; a != "" {
					addrs = append(addrs, a)
				}
			}
			if len(addrs) > 0 {
				sort.Strings(addrs)
				return addrs, nil
			}
		}
	}
	rt, rerr := d.route(ctx, rmqDefaultTopic)
	if rerr != nil {
		return nil, fmt.Errorf("find brokers: cluster info: %v; %w", errors.Join(err, errCode(resp)), rerr)
	}
	seen := make(map[string]bool)
	var addrs []string
	for _, q := range rt.queues {
		if !seen[q.addr] {
			seen[q.addr] = true
			addrs = append(addrs, q.addr)
		}
	}
	if len(addrs) == 0 {
		return nil, errors.New("find brokers: no master broker registered at the name server")
	}
	return addrs, nil
}

func errCode(resp *remoting.Command) error {
	if resp == nil || resp.Code == remoting.RespSuccess {
		return nil
	}
	return fmt.Errorf("code %d: %s", resp.Code, resp.Remark)
}

func (d *ringmqDriver) topicRoute(topic string) (*rmqRoute, error) {
	rt, ok := d.routes[topic]
	if !ok || len(rt.queues) == 0 {
		return nil, fmt.Errorf("ringmq driver: no route for topic %q (not created?)", topic)
	}
	return rt, nil
}
