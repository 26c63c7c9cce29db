package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/ringmq/ringmq/engine/record"
	"github.com/ringmq/ringmq/netio/remoting"
)

// Pull settings: a long poll held up to rmqSuspendMs by the broker (answered as soon as
// a message arrives), rmqPullBatch messages at most per answer, and a pause of
// rmqPullErrorBackoff after a failed pull so a broken broker is not hammered.
const (
	rmqSuspendMs        = 20_000
	rmqPullTimeout      = 30 * time.Second
	rmqPullBatch        = 32
	rmqPullErrorBackoff = 100 * time.Millisecond
	// PullSysFlag: SUSPEND (2) | SUBSCRIPTION (4): the broker takes the subscription from
	// the request (expression "*"), as RocketMQ's pull consumer does.
	rmqPullSysFlag = 6
)

type rmqConsumer struct {
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	clients []*remoting.Client
}

// NewConsumer starts one PULL_MESSAGE loop per owned partition, reading from offset 0
// (topics are fresh per run).
func (d *ringmqDriver) NewConsumer(ctx context.Context, spec ConsumerSpec, s Sink) (Consumer, error) {
	rt, err := d.topicRoute(spec.Topic)
	if err != nil {
		return nil, err
	}
	runCtx, cancel := context.WithCancel(context.Background())
	c := &rmqConsumer{cancel: cancel}
	byAddr := make(map[string]*remoting.Client)
	for _, p := range spec.Partitions {
		q := rt.queues[p%len(rt.queues)]
		cl, ok := byAddr[q.addr]
		if !ok {
			cl, err = remoting.Dial(q.addr, remoting.ClientConfig{DialTimeout: rmqAdminTimeout})
			if err != nil {
				c.Close()
				return nil, fmt.Errorf("consumer %s/%d: %w", spec.Subscription, spec.Index, err)
			}
			byAddr[q.addr] = cl
			c.clients = append(c.clients, cl)
			if err := heartbeat(ctx, cl, spec); err != nil {
				c.Close()
				return nil, err
			}
		}
		c.wg.Add(1)
		go c.pullLoop(runCtx, cl, spec, q.queueID, s)
	}
	return c, nil
}

// heartbeat registers the consumer group and its subscription with the broker, as every
// RocketMQ consumer does before pulling (PROTOCOL.md §2.4).
func heartbeat(ctx context.Context, cl *remoting.Client, spec ConsumerSpec) error {
	type sub struct {
		Topic          string   `json:"topic"`
		SubString      string   `json:"subString"`
		TagsSet        []string `json:"tagsSet"`
		CodeSet        []string `json:"codeSet"`
		SubVersion     int64    `json:"subVersion"`
		ExpressionType string   `json:"expressionType"`
	}
	type consumerData struct {
		GroupName           string `json:"groupName"`
		ConsumeType         string `json:"consumeType"`
		MessageModel        string `json:"messageModel"`
		ConsumeFromWhere    string `json:"consumeFromWhere"`
		SubscriptionDataSet []sub  `json:"subscriptionDataSet"`
		UnitMode            bool   `json:"unitMode"`
	}
	body, err := json.Marshal(struct {
		ClientID        string         `json:"clientID"`
		ProducerDataSet []struct{}     `json:"producerDataSet"`
		ConsumerDataSet []consumerData `json:"consumerDataSet"`
	}{
		ClientID:        fmt.Sprintf("127.0.0.1@ringmq-bench-%s-%d", spec.Subscription, spec.Index),
		ProducerDataSet: []struct{}{},
		ConsumerDataSet: []consumerData{{GroupName: spec.Subscription, ConsumeType: "CONSUME_ACTIVELY",
			MessageModel: "CLUSTERING", ConsumeFromWhere: "CONSUME_FROM_FIRST_OFFSET",
			SubscriptionDataSet: []sub{{Topic: spec.Topic, SubString: "*", TagsSet: []string{}, CodeSet: []string{},
				SubVersion: time.Now().UnixNano(), ExpressionType: "TAG"}}}},
	})
	if err != nil {
		return fmt.Errorf("heartbeat: encode: %w", err)
	}
	resp, err := invoke(ctx, cl, remoting.ReqHeartBeat, nil, body)
	if err != nil {
		return fmt.Errorf("heartbeat %s: %w", spec.Subscription, err)
	}
	if resp.Code != remoting.RespSuccess {
		return fmt.Errorf("heartbeat %s: code %d: %s", spec.Subscription, resp.Code, resp.Remark)
	}
	return nil
}

// pullLoop long-polls one queue and hands every record's body to the sink.
func (c *rmqConsumer) pullLoop(ctx context.Context, cl *remoting.Client, spec ConsumerSpec, queueID int, s Sink) {
	defer c.wg.Done()
	offset := int64(0)
	// The request's fields are built once; only queueOffset changes between pulls (the
	// client encodes them before Invoke returns), so a pull allocates no field strings.
	ext := fields("consumerGroup", spec.Subscription,
		"topic", spec.Topic, "queueId", strconv.Itoa(queueID), "queueOffset", "0",
		"maxMsgNums", strconv.Itoa(rmqPullBatch), "sysFlag", strconv.Itoa(rmqPullSysFlag), "commitOffset", "0",
		"suspendTimeoutMillis", strconv.Itoa(rmqSuspendMs), "subscription", "*", "subVersion", "0",
		"expressionType", "TAG")
	const queueOffsetField = 3
	for ctx.Err() == nil {
		ext[queueOffsetField].Value = strconv.AppendInt(ext[queueOffsetField].Value[:0], offset, 10)
		pctx, cancel := context.WithTimeout(ctx, rmqPullTimeout)
		resp, err := cl.Invoke(pctx, remoting.ReqPullMessage, ext, nil)
		cancel()
		now := MonoNowNs()
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			offset, err = deliver(resp, offset, now, s)
		}
		if err != nil {
			s.ConsumeError(fmt.Errorf("pull %s queue %d: %w", spec.Topic, queueID, err))
			select {
			case <-ctx.Done():
				return
			case <-time.After(rmqPullErrorBackoff):
			}
		}
	}
}

var errPullCode = errors.New("pull answered with an error code")

// deliver handles one pull answer and returns the next offset to pull from.
func deliver(resp *remoting.Command, offset, now int64, s Sink) (int64, error) {
	next := offset
	if v, err := resp.ExtInt64("nextBeginOffset"); err == nil {
		next = v
	}
	switch resp.Code {
	case remoting.RespSuccess:
		for b := resp.Body; len(b) > 0; {
			v, err := record.Decode(b)
			if err != nil {
				return next, fmt.Errorf("decode record: %w", err)
			}
			s.Received(v.Body(), now)
			b = b[v.TotalSize():]
		}
		return next, nil
	case remoting.RespPullNotFound, remoting.RespPullRetryImmediately, remoting.RespPullOffsetMoved:
		return next, nil
	default:
		return offset, fmt.Errorf("%w: code %d: %s", errPullCode, resp.Code, resp.Remark)
	}
}

func (c *rmqConsumer) Close() error {
	c.cancel()
	c.wg.Wait()
	for _, cl := range c.clients {
		_ = cl.Close()
	}
	return nil
}
