package broker

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/ringmq/ringmq/netio/remoting"
	"github.com/ringmq/ringmq/perf"
)

// Consumer message models.
const (
	modelClustering   = "CLUSTERING"
	modelBroadcasting = "BROADCASTING"
)

// heartbeatData is HEART_BEAT's body (PROTOCOL.md §2.4). codeSet is not read: the broker
// hashes the tags itself (the Go client sends the codes as strings, Java as numbers).
type heartbeatData struct {
	ClientID        string `json:"clientID"`
	ProducerDataSet []struct {
		GroupName string `json:"groupName"`
	} `json:"producerDataSet"`
	ConsumerDataSet []consumerData `json:"consumerDataSet"`
}

type consumerData struct {
	GroupName           string             `json:"groupName"`
	ConsumeType         string             `json:"consumeType"`
	MessageModel        string             `json:"messageModel"`
	ConsumeFromWhere    string             `json:"consumeFromWhere"`
	SubscriptionDataSet []subscriptionData `json:"subscriptionDataSet"`
	UnitMode            bool               `json:"unitMode"`
}

type subscriptionData struct {
	ClassFilterMode bool     `json:"classFilterMode"`
	Topic           string   `json:"topic"`
	SubString       string   `json:"subString"`
	TagsSet         []string `json:"tagsSet"`
	SubVersion      int64    `json:"subVersion"`
	ExpressionType  string   `json:"expressionType"`
}

// maxSubscriptionsPerGroup bounds the topics one consumer group subscribes to.
const maxSubscriptionsPerGroup = 1024

// handleHeartbeat serves HEART_BEAT (34): registers producers and consumers, creates the
// retry topic of clustering groups, and tells a group's members when membership changed.
//
// A subscription that does not compile (an SQL92 expression the grammar refuses, an
// expression type other than TAG and SQL92, a TAG expression naming no tag) is refused:
// the group gets no filter for that topic but a refusal, so its pulls there answer
// SUBSCRIPTION_PARSE_FAILED (23) and deliver nothing. Everything else the heartbeat
// carries registers as usual (the member, the group's other subscriptions, other groups,
// producers), as Java's ClientManageProcessor registers each consumer data on its own.
// The heartbeat is then answered 23 with a remark naming each refused subscription's group,
// topic, expression and the parser's error position; the Go client logs that remark.
func (b *Broker) handleHeartbeat(c *remoting.Conn, req *remoting.Command) {
	var hb heartbeatData
	if err := json.Unmarshal(req.Body, &hb); err != nil {
		b.replyError(c, req, remoting.RespSystemError, "bad heartbeat body: "+err.Error())
		return
	}
	if hb.ClientID == "" {
		b.replyError(c, req, remoting.RespSystemError, "heartbeat without clientID")
		return
	}
	now := perf.Now()
	b.clients.watch(c)
	var notices []notice
	var refused []refusal
	for i := range hb.ConsumerDataSet {
		cd := &hb.ConsumerDataSet[i]
		if cd.GroupName == "" || len(cd.SubscriptionDataSet) > maxSubscriptionsPerGroup {
			b.replyError(c, req, remoting.RespSystemError, fmt.Sprintf("bad consumer data: group %q with %d subscriptions", cd.GroupName, len(cd.SubscriptionDataSet)))
			return
		}
		g, _, err := b.meta.EnsureGroup(cd.GroupName)
		if err != nil {
			b.replyError(c, req, remoting.RespSystemBusy, "subscription group table: "+err.Error())
			return
		}
		if cd.MessageModel != modelBroadcasting {
			if _, err := b.ensureSystemTopic(RetryGroupPrefix+cd.GroupName, max(g.RetryQueueNums, 1)); err != nil {
				b.replyError(c, req, remoting.RespSystemError, "create retry topic: "+err.Error())
				return
			}
		}
		n, err := b.clients.registerConsumer(c, hb.ClientID, cd, now, &refused)
		if err != nil {
			b.replyError(c, req, remoting.RespSystemBusy, err.Error())
			return
		}
		if n != nil {
			notices = append(notices, *n)
		}
	}
	for _, pd := range hb.ProducerDataSet {
		if err := b.clients.registerProducer(c, hb.ClientID, pd.GroupName, now); err != nil {
			b.replyError(c, req, remoting.RespSystemBusy, err.Error())
			return
		}
	}
	if c.Closed() { // closed while registering: its close hook may have run before
		b.clients.connClosed(c)
		notices = nil
	}
	b.clients.notify(notices)
	if len(refused) > 0 {
		for _, r := range refused {
			if r.fresh { // logged once per refused expression, not on every heartbeat
				b.log.Warn("subscription refused", "group", r.group, "topic", r.topic, "expressionType", r.expressionType,
					"expression", r.expression, "client", hb.ClientID, "err", r.err)
			}
		}
		b.replyError(c, req, remoting.RespSubscriptionParseFailed, refusalRemark(refused))
		return
	}
	b.replyOK(c, req)
}

// refusal is a subscription the broker refused because it does not compile.
type refusal struct {
	group, topic, expressionType, expression string
	err                                      error
	fresh                                    bool // not refused already by the group's previous heartbeat
}

func (r refusal) String() string {
	return fmt.Sprintf("subscription of group %q to topic %q refused: %v", r.group, r.topic, r.err)
}

// maxRefusalsInRemark bounds the refused subscriptions one answer names.
const maxRefusalsInRemark = 4

// refusalRemark is the remark of SUBSCRIPTION_PARSE_FAILED for refused (not empty).
func refusalRemark(refused []refusal) string {
	var sb strings.Builder
	for i, r := range refused[:min(len(refused), maxRefusalsInRemark)] {
		if i > 0 {
			sb.WriteString("; ")
		}
		sb.WriteString(r.String())
	}
	if n := len(refused) - maxRefusalsInRemark; n > 0 {
		fmt.Fprintf(&sb, "; and %d more", n)
	}
	return sb.String()
}

// registerConsumer adds or refreshes c as a member of cd's group and replaces the group's
// subscriptions with cd's. A subscription that does not compile is kept as a refusal (no
// filter; pulls answer SUBSCRIPTION_PARSE_FAILED) and appended to *refused. It returns the
// notice to send when membership changed.
func (m *clientManager) registerConsumer(c *remoting.Conn, clientID string, cd *consumerData, nowNs int64, refused *[]refusal) (*notice, error) {
	subs := make(map[string]*subscription, len(cd.SubscriptionDataSet))
	m.mu.Lock()
	defer m.mu.Unlock()
	g, ok := m.mu.consumers[cd.GroupName]
	if !ok {
		g = &consumerGroup{name: cd.GroupName, members: make(map[uint64]*member), subs: map[string]*subscription{}}
	}
	for _, sd := range cd.SubscriptionDataSet {
		s, ok := g.subs[sd.Topic]
		fresh := !ok || s.SubString != sd.SubString || s.ExpressionType != sd.ExpressionType
		if fresh {
			f, err := compileSubscription(sd.ExpressionType, sd.SubString)
			s = &subscription{Topic: sd.Topic, SubString: sd.SubString, ExpressionType: sd.ExpressionType,
				SubVersion: sd.SubVersion, filter: f, err: err}
		}
		subs[sd.Topic] = s
		if s.err != nil {
			*refused = append(*refused, refusal{group: cd.GroupName, topic: sd.Topic, expressionType: sd.ExpressionType,
				expression: sd.SubString, err: s.err, fresh: fresh})
		}
	}
	mb, isMember := g.members[c.ID()]
	changed := false
	switch {
	case !isMember:
		if m.mu.n >= m.max {
			return nil, fmt.Errorf("too many clients: %d registrations, the maximum", m.max)
		}
		m.mu.n++
		g.members[c.ID()] = &member{clientID: clientID, conn: c, lastSeenNs: nowNs}
		changed = true
	case mb.clientID != clientID:
		mb.clientID, mb.lastSeenNs = clientID, nowNs
		changed = true
	default:
		mb.lastSeenNs = nowNs
	}
	m.mu.consumers[cd.GroupName] = g
	g.subs = subs
	g.consumeType, g.messageModel, g.consumeFromWhere = cd.ConsumeType, cd.MessageModel, cd.ConsumeFromWhere
	if !changed {
		return nil, nil
	}
	n := g.noticeLocked()
	return &n, nil
}

// registerProducer adds or refreshes c as a connection of producer group.
func (m *clientManager) registerProducer(c *remoting.Conn, clientID, group string, nowNs int64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	ps, ok := m.mu.producers[group]
	if !ok {
		ps = make(map[uint64]*member)
		m.mu.producers[group] = ps
	}
	if mb, ok := ps[c.ID()]; ok {
		mb.clientID, mb.lastSeenNs = clientID, nowNs
		return nil
	}
	if m.mu.n >= m.max {
		if len(ps) == 0 {
			delete(m.mu.producers, group)
		}
		return fmt.Errorf("too many clients: %d registrations, the maximum", m.max)
	}
	m.mu.n++
	ps[c.ID()] = &member{clientID: clientID, conn: c, lastSeenNs: nowNs}
	return nil
}

// handleUnregister serves UNREGISTER_CLIENT (35): the client leaves its groups.
func (b *Broker) handleUnregister(c *remoting.Conn, req *remoting.Command) {
	clientID := req.ExtString("clientID")
	m := b.clients
	m.mu.Lock()
	changed := m.removeConnLocked(c.ID(), clientID)
	m.mu.Unlock()
	m.notify(changed)
	b.replyOK(c, req)
}

// handleConsumerList serves GET_CONSUMER_LIST_BY_GROUP (38).
func (b *Broker) handleConsumerList(c *remoting.Conn, req *remoting.Command) {
	group := req.ExtString("consumerGroup")
	b.replyJSON(c, req, struct {
		ConsumerIDList []string `json:"consumerIdList"`
	}{b.clients.consumerIDs(group)})
}
