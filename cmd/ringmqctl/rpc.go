package main

// One request/answer over the RocketMQ remoting protocol, and the name-server queries
// several subcommands share.

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/ringmq/ringmq/netio/remoting"
)

// conn holds the flags every subcommand has: where the name server is, the timeout.
type conn struct {
	namesrv string
	timeout time.Duration
}

func defineConnFlags(fs *flag.FlagSet) *conn {
	c := &conn{}
	fs.StringVar(&c.namesrv, "namesrv", "127.0.0.1:9876", "name server `ADDR` (first of a ;-separated list is used)")
	fs.DurationVar(&c.timeout, "timeout", 5*time.Second, "per-request `TIMEOUT`")
	return c
}

// call sends one request to addr and returns the answer. A non-SUCCESS code is an error
// naming the code and the remark, unless it is in okCodes.
func (c *conn) call(addr string, code int16, ext map[string]string, body []byte, okCodes ...int16) (*remoting.Command, error) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	cl, err := remoting.Dial(addr, remoting.ClientConfig{DialTimeout: c.timeout, CallTimeout: c.timeout})
	if err != nil {
		return nil, fmt.Errorf("connect %s: %w", addr, err)
	}
	defer cl.Close()
	keys := make([]string, 0, len(ext))
	for k := range ext {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	fields := make([]remoting.Field, 0, len(ext))
	for _, k := range keys {
		fields = append(fields, remoting.Field{Key: []byte(k), Value: []byte(ext[k])})
	}
	resp, err := cl.Invoke(ctx, code, fields, body)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", addr, err)
	}
	if resp.Code != remoting.RespSuccess {
		for _, ok := range okCodes {
			if resp.Code == ok {
				return resp, nil
			}
		}
		return nil, &codeError{op: remoting.RequestName(code), addr: addr, code: resp.Code, remark: string(resp.Remark)}
	}
	return resp, nil
}

// codeError is an answer with a code other than SUCCESS.
type codeError struct {
	op, addr string
	code     int16
	remark   string
}

func (e *codeError) Error() string {
	s := fmt.Sprintf("%s to %s: answered code %d", e.op, e.addr, e.code)
	if e.remark != "" {
		s += " (" + e.remark + ")"
	}
	return s
}

func (c *conn) namesrvAddr() (string, error) {
	first, _, _ := strings.Cut(c.namesrv, ";")
	if strings.TrimSpace(first) == "" {
		return "", errors.New("--namesrv is empty")
	}
	return strings.TrimSpace(first), nil
}

// topicRoute is the name server's GET_ROUTEINFO_BY_TOPIC body (PROTOCOL.md §2.1).
type topicRoute struct {
	QueueDatas []struct {
		BrokerName     string `json:"brokerName"`
		ReadQueueNums  int    `json:"readQueueNums"`
		WriteQueueNums int    `json:"writeQueueNums"`
		Perm           int    `json:"perm"`
		TopicSysFlag   int    `json:"topicSysFlag"`
	} `json:"queueDatas"`
	BrokerDatas []struct {
		Cluster     string            `json:"cluster"`
		BrokerName  string            `json:"brokerName"`
		BrokerAddrs map[string]string `json:"brokerAddrs"`
	} `json:"brokerDatas"`
}

// errNoRoute is the name server's TOPIC_NOT_EXIST answer to a route query.
var errNoRoute = errors.New("no route (the name server knows no broker serving it)")

// route asks the name server for topic's route.
func (c *conn) route(topic string) (*topicRoute, error) {
	addr, err := c.namesrvAddr()
	if err != nil {
		return nil, err
	}
	resp, err := c.call(addr, remoting.ReqGetRouteInfoByTopic, map[string]string{"topic": topic}, nil)
	var ce *codeError
	if errors.As(err, &ce) && ce.code == remoting.RespTopicNotExist {
		return nil, fmt.Errorf("topic %q: %w", topic, errNoRoute)
	}
	if err != nil {
		return nil, err
	}
	var r topicRoute
	if err := json.Unmarshal(quoteBareKeys(resp.Body), &r); err != nil {
		return nil, fmt.Errorf("route of %q: bad body: %w", topic, err)
	}
	return &r, nil
}

// masterOf returns the master address (brokerId 0) of brokerName in r.
func (r *topicRoute) masterOf(brokerName string) string {
	for _, b := range r.BrokerDatas {
		if b.BrokerName == brokerName {
			return b.BrokerAddrs["0"]
		}
	}
	return ""
}

// brokersOf returns only, when it is set, else the master address of every broker in
// topic's route, sorted.
func (c *conn) brokersOf(topic, only string) ([]string, error) {
	if only != "" {
		return []string{only}, nil
	}
	r, err := c.route(topic)
	if err != nil {
		return nil, fmt.Errorf("%w (or name the broker with --broker)", err)
	}
	var addrs []string
	for _, q := range r.QueueDatas {
		if a := r.masterOf(q.BrokerName); a != "" && !slices.Contains(addrs, a) {
			addrs = append(addrs, a)
		}
	}
	if len(addrs) == 0 {
		return nil, fmt.Errorf("topic %q: its route names no master (or name the broker with --broker)", topic)
	}
	sort.Strings(addrs)
	return addrs, nil
}
