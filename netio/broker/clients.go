package broker

import (
	"sort"
	"sync"

	"github.com/ringmq/ringmq/engine"
	"github.com/ringmq/ringmq/netio/remoting"
)

// clientManager tracks the clients that heartbeat: consumer groups (members, their
// connections, the group's subscriptions) and producer groups (connections, for
// CHECK_TRANSACTION_STATE). A client is gone when its connection closes, when it sends
// UNREGISTER_CLIENT, or when it has been silent for expiryNs.
//
// Membership changes of a consumer group send NOTIFY_CONSUMER_IDS_CHANGED to every member,
// after mu is released (a oneway send only queues, but no network call ever runs under mu).
type clientManager struct {
	b        *Broker
	max      int      // (group, connection) registrations over all groups
	expiryNs int64    // silence after which a client is dropped
	watched  sync.Map // connection id -> struct{}: connections with an OnClose hook
	mu       struct {
		sync.Mutex
		consumers  map[string]*consumerGroup
		producers  map[string]map[uint64]*member
		txConns    map[string]*remoting.Conn // producer group -> last connection that sent a half message
		requesters map[string]*remoting.Conn // client id -> connection that sent a request (request-reply)
		n          int                       // registrations
	}
}

// member is one client connection of a group.
type member struct {
	clientID    string
	conn        *remoting.Conn
	lastSeenNs  int64
	lastVersion int64
}

// consumerGroup is a consumer group as its members' heartbeats describe it.
type consumerGroup struct {
	name             string
	consumeType      string
	messageModel     string
	consumeFromWhere string
	members          map[uint64]*member // by connection id
	subs             map[string]*subscription
}

// subscription is one topic subscription of a group, compiled once.
type subscription struct {
	Topic          string
	SubString      string
	ExpressionType string
	SubVersion     int64
	filter         engine.MessageFilter
	err            error // the expression does not compile
}

func newClientManager(b *Broker, maxClients int, expiryNs int64) *clientManager {
	m := &clientManager{b: b, max: maxClients, expiryNs: expiryNs}
	m.mu.consumers = make(map[string]*consumerGroup)
	m.mu.producers = make(map[string]map[uint64]*member)
	m.mu.txConns = make(map[string]*remoting.Conn)
	m.mu.requesters = make(map[string]*remoting.Conn)
	return m
}

// watch makes sure c's close drops its registrations and its queue locks. It must be
// called without mu held (on a closed connection the hook runs at once).
func (m *clientManager) watch(c *remoting.Conn) {
	if _, loaded := m.watched.LoadOrStore(c.ID(), struct{}{}); !loaded {
		c.OnClose(m.connClosed)
	}
}

// connClosed drops everything registered through c and releases its queue locks.
func (m *clientManager) connClosed(c *remoting.Conn) {
	m.b.locks.dropConn(c.ID())
	m.watched.Delete(c.ID())
	m.mu.Lock()
	changed := m.removeConnLocked(c.ID(), "")
	m.mu.Unlock()
	m.notify(changed)
}

// removeConnLocked removes connection connID from every group (or only those whose
// client id is clientID, when given) and returns the consumer groups that changed.
func (m *clientManager) removeConnLocked(connID uint64, clientID string) []notice {
	var changed []notice
	for name, g := range m.mu.consumers {
		mb, ok := g.members[connID]
		if !ok || (clientID != "" && mb.clientID != clientID) {
			continue
		}
		delete(g.members, connID)
		m.mu.n--
		if len(g.members) == 0 {
			delete(m.mu.consumers, name)
			continue
		}
		changed = append(changed, g.noticeLocked())
	}
	for name, ps := range m.mu.producers {
		mb, ok := ps[connID]
		if !ok || (clientID != "" && mb.clientID != clientID) {
			continue
		}
		delete(ps, connID)
		m.mu.n--
		if len(ps) == 0 {
			delete(m.mu.producers, name)
		}
	}
	for g, c := range m.mu.txConns {
		if c.ID() == connID {
			delete(m.mu.txConns, g)
		}
	}
	for id, c := range m.mu.requesters {
		if c.ID() == connID {
			delete(m.mu.requesters, id)
		}
	}
	return changed
}

// notice is a NOTIFY_CONSUMER_IDS_CHANGED to send: the group and its members' connections.
type notice struct {
	group string
	conns []*remoting.Conn
}

func (g *consumerGroup) noticeLocked() notice {
	n := notice{group: g.name, conns: make([]*remoting.Conn, 0, len(g.members))}
	for _, mb := range g.members {
		n.conns = append(n.conns, mb.conn)
	}
	return n
}

// notify sends NOTIFY_CONSUMER_IDS_CHANGED (40, oneway) to every member of each group.
func (m *clientManager) notify(notices []notice) {
	for _, n := range notices {
		ext := []remoting.Field{{Key: []byte("consumerGroup"), Value: []byte(n.group)}}
		for _, c := range n.conns {
			if err := c.SendRequestOneway(remoting.ReqNotifyConsumerIDsChanged, ext, nil); err != nil && !c.Closed() {
				m.b.log.Debug("notify consumer ids changed failed", "group", n.group, "client", c.RemoteAddr(), "err", err)
			}
		}
	}
}

// expire drops clients silent for longer than the expiry.
func (m *clientManager) expire(nowNs int64) {
	m.mu.Lock()
	var changed []notice
	for name, g := range m.mu.consumers {
		removed := false
		for id, mb := range g.members {
			if nowNs-mb.lastSeenNs > m.expiryNs {
				delete(g.members, id)
				m.mu.n--
				removed = true
				m.b.log.Info("consumer expired: no heartbeat", "group", name, "client", mb.clientID)
			}
		}
		if len(g.members) == 0 {
			delete(m.mu.consumers, name)
		} else if removed {
			changed = append(changed, g.noticeLocked())
		}
	}
	for name, ps := range m.mu.producers {
		for id, mb := range ps {
			if nowNs-mb.lastSeenNs > m.expiryNs {
				delete(ps, id)
				m.mu.n--
			}
		}
		if len(ps) == 0 {
			delete(m.mu.producers, name)
		}
	}
	m.mu.Unlock()
	m.notify(changed)
}

// lookupConsumer returns, under one lock, the group's name as the table holds it ("" when
// the group is unknown; a pull commits its offset under it without allocating) and the
// compiled filter of its subscription to topic (nil = every message, also when the group or
// subscription is unknown).
func (m *clientManager) lookupConsumer(group []byte, topic string) (string, engine.MessageFilter, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	g, ok := m.mu.consumers[string(group)]
	if !ok {
		return "", nil, nil
	}
	s, ok := g.subs[topic]
	if !ok {
		return g.name, nil, nil
	}
	return g.name, s.filter, s.err
}

// consumerIDs returns the sorted client ids of group's members.
func (m *clientManager) consumerIDs(group string) []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	g, ok := m.mu.consumers[group]
	if !ok {
		return []string{}
	}
	ids := make([]string, 0, len(g.members))
	seen := make(map[string]struct{}, len(g.members))
	for _, mb := range g.members {
		if _, dup := seen[mb.clientID]; !dup {
			seen[mb.clientID] = struct{}{}
			ids = append(ids, mb.clientID)
		}
	}
	sort.Strings(ids)
	return ids
}

// rememberTxProducer records c as the connection to send CHECK_TRANSACTION_STATE for
// producer group's half messages (heartbeats of producers may come ~30 s late).
func (m *clientManager) rememberTxProducer(group []byte, c *remoting.Conn) {
	m.rememberConn(m.mu.txConns, group, c)
}

// producerConn returns a live connection of producer group (the last one that sent a
// half message first, else any heartbeating member).
func (m *clientManager) producerConn(group string) (*remoting.Conn, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if c, ok := m.mu.txConns[group]; ok && !c.Closed() {
		return c, true
	}
	for _, mb := range m.mu.producers[group] {
		if !mb.conn.Closed() {
			return mb.conn, true
		}
	}
	return nil, false
}

// registrations returns the number of (group, connection) registrations.
func (m *clientManager) registrations() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.mu.n
}

// connOfClient returns a live connection of the client with this id (a producer or a
// consumer that heartbeats), for pushing request-reply answers. It scans the groups: replies
// are rare and the tables are bounded by MaxClients.
func (m *clientManager) connOfClient(clientID string) (*remoting.Conn, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if c, ok := m.mu.requesters[clientID]; ok && !c.Closed() {
		return c, true
	}
	for _, ps := range m.mu.producers {
		for _, mb := range ps {
			if mb.clientID == clientID && !mb.conn.Closed() {
				return mb.conn, true
			}
		}
	}
	for _, g := range m.mu.consumers {
		for _, mb := range g.members {
			if mb.clientID == clientID && !mb.conn.Closed() {
				return mb.conn, true
			}
		}
	}
	return nil, false
}

// rememberRequester records the connection a request-reply request came from, so the reply
// reaches the requester even before its first heartbeat.
func (m *clientManager) rememberRequester(clientID []byte, c *remoting.Conn) {
	m.rememberConn(m.mu.requesters, clientID, c)
}

// rememberConn sets table[key] = c (table is one of m.mu's connection maps) unless it holds c
// already or is full, then watches c so that its close removes the entry (watched after the
// store: a close in between runs the hook at once). It takes one lock and allocates only
// when the entry is new or changes, so a send that carries the key every time costs no
// allocation.
func (m *clientManager) rememberConn(table map[string]*remoting.Conn, key []byte, c *remoting.Conn) {
	m.mu.Lock()
	cur, ok := table[string(key)]
	if ok && cur == c || !ok && len(table) >= m.max {
		m.mu.Unlock()
		return
	}
	table[string(key)] = c
	m.mu.Unlock()
	m.watch(c)
}
