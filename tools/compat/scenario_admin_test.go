package compat

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/admin"
	"github.com/apache/rocketmq-client-go/v2/primitive"
)

// TestAdmin: what the v2.1.2 admin API exposes, and its effect on the routes.
//   - CreateTopic with 6 queues: the route has 6 write queues, FetchAllTopicList lists
//     it, and a producer's send lands on one of them.
//   - CreateTopic again with 3 queues: the route shrinks to 3.
//   - CreateTopic with perm 4 (read only): the route exists, with no queue a producer may
//     write (FetchPublishMessageQueues returns none) and a send fails.
//   - GetAllSubscriptionGroup lists the group of a consumer that has started.
//   - DeleteTopic: the topic leaves FetchAllTopicList and the name server routes it no
//     more.
//
// The admin caches routes per instance (a found route stays), so every check of a route
// uses a new admin.
func TestAdmin(t *testing.T) {
	t.Parallel()
	c := startCluster(t, clusterOptions{})
	const (
		topic    = "compat-admin"
		readOnly = "compat-admin-ro"
		group    = "compat-admin-g"
	)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	create := func(name string, queues, perm int) {
		t.Helper()
		a := c.newAdmin()
		defer a.Close()
		err := a.CreateTopic(ctx, admin.WithTopicCreate(name), admin.WithBrokerAddrCreate(c.brokerAddr),
			admin.WithReadQueueNums(queues), admin.WithWriteQueueNums(queues), admin.WithPerm(perm))
		if err != nil {
			t.Fatalf("CreateTopic %s: %v", name, err)
		}
	}
	topics := func() []string {
		t.Helper()
		a := c.newAdmin()
		defer a.Close()
		list, err := a.FetchAllTopicList(ctx)
		if err != nil {
			t.Fatalf("FetchAllTopicList: %v", err)
		}
		return list.TopicList
	}
	publishQueues := func(name string) ([]*primitive.MessageQueue, error) {
		a := c.newAdmin()
		defer a.Close()
		return a.FetchPublishMessageQueues(ctx, name)
	}

	create(topic, 6, 6)
	mqs := c.waitRoute(topic, 6)
	for i, mq := range mqs {
		if mq.Topic != topic || mq.BrokerName != brokerName || mq.QueueId != i {
			t.Errorf("route queue %d: %+v, want %s/%s/%d", i, mq, topic, brokerName, i)
		}
	}
	if l := topics(); !slices.Contains(l, topic) {
		t.Errorf("FetchAllTopicList %v does not list %s", l, topic)
	}
	p := c.newProducer()
	res, err := p.SendSync(ctx, primitive.NewMessage(topic, []byte("admin")))
	if err != nil || res.Status != primitive.SendOK || res.MessageQueue.QueueId >= 6 {
		t.Fatalf("send to %s: %v %v", topic, res, err)
	}

	create(topic, 3, 6)
	waitFor(t, 10*time.Second, topic+" shrunk to 3 queues", func() error {
		mqs, err := publishQueues(topic)
		if err != nil || len(mqs) != 3 {
			return fmt.Errorf("%d queues, %v", len(mqs), err)
		}
		return nil
	})

	create(readOnly, 2, 4)
	waitFor(t, 10*time.Second, readOnly+" in the topic list", func() error {
		if !slices.Contains(topics(), readOnly) {
			return fmt.Errorf("not listed")
		}
		return nil
	})
	if mqs, err := publishQueues(readOnly); len(mqs) != 0 {
		t.Errorf("read-only topic: FetchPublishMessageQueues gave %d queues (%v), want none", len(mqs), err)
	}
	if res, err := p.SendSync(ctx, primitive.NewMessage(readOnly, []byte("x"))); err == nil {
		t.Errorf("send to a read-only topic: %v, want an error", res)
	}

	r := newRecorder()
	c.startConsumer(r, consumerSpec{group: group, name: "admin", topic: topic})
	waitFor(t, 10*time.Second, "subscription group of a started consumer", func() error {
		a := c.newAdmin()
		defer a.Close()
		w, err := a.GetAllSubscriptionGroup(ctx, c.brokerAddr, 3*time.Second)
		if err != nil {
			return err
		}
		if _, ok := w.SubscriptionGroupTable[group]; !ok {
			return fmt.Errorf("%s not in %d groups", group, len(w.SubscriptionGroupTable))
		}
		return nil
	})

	a := c.newAdmin()
	err = a.DeleteTopic(ctx, admin.WithTopicDelete(topic), admin.WithBrokerAddrDelete(c.brokerAddr),
		admin.WithNameSrvAddr([]string{c.namesrvAddr}))
	a.Close()
	if err != nil {
		t.Fatalf("DeleteTopic: %v", err)
	}
	waitFor(t, 10*time.Second, topic+" gone", func() error {
		if slices.Contains(topics(), topic) {
			return fmt.Errorf("still listed")
		}
		if mqs, err := publishQueues(topic); err == nil && len(mqs) > 0 {
			return fmt.Errorf("still routed: %d queues", len(mqs))
		}
		return nil
	})
}

// TestTopicSurvivesKill: a topic whose UPDATE_AND_CREATE_TOPIC (17) was answered survives
// a SIGKILL of the broker right after the answer, as a message whose send was answered
// does under SYNC_FLUSH: after the restart the name server routes it with its queues.
func TestTopicSurvivesKill(t *testing.T) {
	t.Parallel()
	c := startCluster(t, clusterOptions{})
	const topic = "compat-admin-durable"
	c.createTopic(topic, 5)
	c.restartBroker(true)
	mqs := c.waitRoute(topic, 5)
	t.Logf("%s routed with %d queues after the restart", topic, len(mqs))
}
