package broker

import (
	"encoding/json"
	"fmt"

	"github.com/ringmq/ringmq/engine/meta"
	"github.com/ringmq/ringmq/netio/remoting"
)

// createDefaultTopics makes sure the topics every broker has exist: the cluster's reply
// topic "<cluster>_REPLY_TOPIC" (request-reply), and TBW102 (the template of auto-created
// topics, perm RW+INHERIT) when auto-creation is on.
func (b *Broker) createDefaultTopics() error {
	if _, _, err := b.meta.CreateTopicIfAbsent(meta.TopicConfig{
		TopicName: b.replyTopic(), ReadQueueNums: 1, WriteQueueNums: 1, Perm: meta.PermRW,
	}); err != nil {
		return fmt.Errorf("broker: create %s: %w", b.replyTopic(), err)
	}
	if !b.cfg.AutoCreateTopicEnable {
		return nil
	}
	n := b.cfg.DefaultTopicQueueNums
	_, _, err := b.meta.CreateTopicIfAbsent(meta.TopicConfig{
		TopicName: TopicDefault, ReadQueueNums: n, WriteQueueNums: n, Perm: meta.PermRW | meta.PermInherit,
	})
	if err != nil {
		return fmt.Errorf("broker: create %s: %w", TopicDefault, err)
	}
	return nil
}

// handleCreateTopic serves UPDATE_AND_CREATE_TOPIC (17) and registers the topic at once.
func (b *Broker) handleCreateTopic(c *remoting.Conn, req *remoting.Command) {
	tc := meta.TopicConfig{TopicName: req.ExtString("topic"), TopicFilterType: req.ExtString("topicFilterType")}
	var errs [4]error
	var rq, wq, perm, sysFlag int64
	rq, errs[0] = extInt64(req, "readQueueNums", int64(b.cfg.DefaultTopicQueueNums))
	wq, errs[1] = extInt64(req, "writeQueueNums", int64(b.cfg.DefaultTopicQueueNums))
	perm, errs[2] = extInt64(req, "perm", meta.PermRW)
	sysFlag, errs[3] = extInt64(req, "topicSysFlag", 0)
	if v, ok := req.ExtValue("order"); ok {
		tc.Order = parseBool(v)
	}
	for _, err := range errs {
		if err != nil {
			b.replyError(c, req, remoting.RespSystemError, "bad create topic request: "+err.Error())
			return
		}
	}
	tc.ReadQueueNums, tc.WriteQueueNums, tc.Perm, tc.TopicSysFlag = int(rq), int(wq), int(perm), int(sysFlag)
	if tc.TopicName == b.cfg.BrokerClusterName || tc.TopicName == TopicDefault && !b.cfg.AutoCreateTopicEnable {
		b.replyError(c, req, remoting.RespSystemError, fmt.Sprintf("the topic[%s] is conflict with system reserved words", tc.TopicName))
		return
	}
	if err := b.meta.PutTopic(tc); err != nil {
		b.replyError(c, req, remoting.RespSystemError, "create topic: "+err.Error())
		return
	}
	b.log.Info("topic created or updated", "topic", tc.TopicName, "read", tc.ReadQueueNums, "write", tc.WriteQueueNums, "perm", tc.Perm, "client", c.RemoteAddr())
	if err := b.topicsChanged(); err != nil {
		b.replyError(c, req, remoting.RespSystemError, "topic "+tc.TopicName+" is set but not yet on disk: "+err.Error())
		return
	}
	b.replyOK(c, req)
}

// handleDeleteTopic serves DELETE_TOPIC_IN_BROKER (215): the config, the stored queues and
// the groups' offsets of the topic go; the name servers learn it at once.
func (b *Broker) handleDeleteTopic(c *remoting.Conn, req *remoting.Command) {
	name := req.ExtString("topic")
	if !meta.ValidTopicName(name) || name == TopicDefault || notAllowedSend(name) {
		b.replyError(c, req, remoting.RespSystemError, fmt.Sprintf("the topic[%s] cannot be deleted", name))
		return
	}
	existed := b.meta.DeleteTopic(name)
	b.meta.DeleteTopicOffsets(name)
	if err := b.store.DeleteTopic(name); err != nil {
		b.replyError(c, req, remoting.RespSystemError, "delete topic "+name+": "+err.Error())
		return
	}
	b.log.Info("topic deleted", "topic", name, "existed", existed, "client", c.RemoteAddr())
	if err := b.topicsChanged(); err != nil {
		b.replyError(c, req, remoting.RespSystemError, "topic "+name+" is deleted but the table is not yet on disk: "+err.Error())
		return
	}
	b.replyOK(c, req)
}

// handleAllTopicConfig serves GET_ALL_TOPIC_CONFIG (21).
func (b *Broker) handleAllTopicConfig(c *remoting.Conn, req *remoting.Command) {
	topics, version := b.meta.Topics()
	table := make(map[string]meta.TopicConfig, len(topics))
	for _, tc := range topics {
		table[tc.TopicName] = tc
	}
	b.replyJSON(c, req, struct {
		TopicConfigTable map[string]meta.TopicConfig `json:"topicConfigTable"`
		DataVersion      meta.DataVersion            `json:"dataVersion"`
	}{table, version})
}

// handleAllGroupConfig serves GET_ALL_SUBSCRIPTIONGROUP_CONFIG (201).
func (b *Broker) handleAllGroupConfig(c *remoting.Conn, req *remoting.Command) {
	groups, version := b.meta.Groups()
	table := make(map[string]meta.GroupConfig, len(groups))
	for _, g := range groups {
		table[g.GroupName] = g
	}
	b.replyJSON(c, req, struct {
		SubscriptionGroupTable map[string]meta.GroupConfig `json:"subscriptionGroupTable"`
		DataVersion            meta.DataVersion            `json:"dataVersion"`
	}{table, version})
}

// replyJSON answers SUCCESS with v as the JSON body.
func (b *Broker) replyJSON(c *remoting.Conn, req *remoting.Command, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		panic("BUG: broker: marshal answer: " + err.Error())
	}
	r := c.NewResponse()
	r.Code = remoting.RespSuccess
	r.Body = append(r.Body, body)
	c.Reply(req, r)
}

// reqUpdateAndCreateSubscriptionGroup is UPDATE_AND_CREATE_SUBSCRIPTIONGROUP (200), sent by
// admin tools (not the Go client), which remoting does not name.
const reqUpdateAndCreateSubscriptionGroup int16 = 200

// handleCreateGroup serves UPDATE_AND_CREATE_SUBSCRIPTIONGROUP (200): the body is a
// subscription group config (retryMaxTimes, retryQueueNums, ...).
func (b *Broker) handleCreateGroup(c *remoting.Conn, req *remoting.Command) {
	g := meta.DefaultGroupConfig("")
	if err := json.Unmarshal(req.Body, &g); err != nil || g.GroupName == "" {
		b.replyError(c, req, remoting.RespSystemError, fmt.Sprintf("bad subscription group config: %v", err))
		return
	}
	if err := b.meta.PutGroup(g); err != nil {
		b.replyError(c, req, remoting.RespSystemError, "update subscription group: "+err.Error())
		return
	}
	b.log.Info("subscription group created or updated", "group", g.GroupName, "retryMaxTimes", g.RetryMaxTimes, "client", c.RemoteAddr())
	b.replyOK(c, req)
}

// handleDeleteGroup serves DELETE_SUBSCRIPTIONGROUP (207): the config and, as Java does,
// nothing else (offsets stay until their topic goes).
func (b *Broker) handleDeleteGroup(c *remoting.Conn, req *remoting.Command) {
	name := req.ExtString("groupName")
	if name == "" {
		b.replyError(c, req, remoting.RespSystemError, "groupName is required")
		return
	}
	b.meta.DeleteGroup(name)
	b.replyOK(c, req)
}
