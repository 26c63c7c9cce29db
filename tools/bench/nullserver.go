package bench

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/ringmq/ringmq/engine/record"
	"github.com/ringmq/ringmq/netio/remoting"
)

// NullServer is the responder behind the "null" driver: a RocketMQ remoting server on
// loopback that answers at once, so the generator's floor includes the same client,
// codec and TCP path a real broker run has, and nothing of a broker. It serves the
// requests the ringmq driver makes: GET_BROKER_CLUSTER_INFO, GET_ROUTEINFO_BY_TOPIC,
// UPDATE_AND_CREATE_TOPIC, HEART_BEAT, SEND_MESSAGE (acked before anything else happens;
// the record keeps only the first PayloadHeaderBytes of the body) and PULL_MESSAGE (long
// poll, answered when a send arrives). It keeps the last nullRingRecords records per queue.
type NullServer struct {
	srv  *remoting.Server
	ln   net.Listener
	addr string
	host netip.AddrPort
	mu   struct {
		sync.Mutex
		topics map[string][]*nullQueue
	}
}

const (
	nullRingRecords    = 4096 // records kept per queue for consumers
	nullMaxHeldPulls   = 64   // long polls held per queue; more are answered PULL_NOT_FOUND
	nullBrokerName     = "null-broker"
	nullClusterName    = "NullCluster"
	nullMaxQueues      = MaxPartitionsPerTopic
	nullMaxPullRecords = 32
)

type nullQueue struct {
	mu      sync.Mutex
	ring    [nullRingRecords][]byte
	next    int64 // offset of the next record
	waiters []*heldPull
}

type heldPull struct {
	c      *remoting.Conn
	opaque int32
	offset int64
	max    int
	timer  *time.Timer
}

// StartNullServer listens on a free loopback port and serves until Close.
func StartNullServer() (*NullServer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("null server: %w", err)
	}
	s := &NullServer{ln: ln, addr: ln.Addr().String(), host: ln.Addr().(*net.TCPAddr).AddrPort()}
	s.mu.topics = make(map[string][]*nullQueue)
	s.srv = remoting.NewServer(remoting.ServerConfig{}, remoting.HandlerFunc(s.serve))
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

// Addr is the address of the name server and broker (one port serves both roles).
func (s *NullServer) Addr() string { return s.addr }

// Close answers the held pulls and stops the server.
func (s *NullServer) Close() error {
	_ = s.ln.Close()
	s.mu.Lock()
	var all []*nullQueue
	for _, qs := range s.mu.topics {
		all = append(all, qs...)
	}
	s.mu.Unlock()
	for _, q := range all {
		q.mu.Lock()
		var held []*heldPull
		kept := q.waiters[:0]
		for _, w := range q.waiters {
			if w.timer.Stop() {
				held = append(held, w)
			} else {
				kept = append(kept, w)
			}
		}
		q.waiters = kept
		q.mu.Unlock()
		for _, w := range held {
			s.answerPull(q, w)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), serverStopTimeout)
	defer cancel()
	return s.srv.Shutdown(ctx)
}

func (s *NullServer) serve(c *remoting.Conn, req *remoting.Command) {
	switch req.Code {
	case remoting.ReqSendMessage:
		s.send(c, req)
	case remoting.ReqPullMessage:
		s.pull(c, req)
	case remoting.ReqGetRouteInfoByTopic:
		s.route(c, req)
	case remoting.ReqGetBrokerClusterInfo:
		s.replyJSON(c, req, map[string]any{
			"brokerAddrTable":  map[string]any{nullBrokerName: brokerEntry(s.addr)},
			"clusterAddrTable": map[string][]string{nullClusterName: {nullBrokerName}},
		})
	case remoting.ReqUpdateAndCreateTopic:
		s.createTopic(c, req)
	case remoting.ReqHeartBeat:
		s.reply(c, req, remoting.RespSuccess, "")
	default:
		s.reply(c, req, remoting.RespRequestCodeNotSupported, "null server: request code not served")
	}
}

func brokerEntry(addr string) map[string]any {
	return map[string]any{"cluster": nullClusterName, "brokerName": nullBrokerName, "brokerAddrs": map[string]string{"0": addr}}
}

func (s *NullServer) reply(c *remoting.Conn, req *remoting.Command, code int16, remark string) {
	r := c.NewResponse()
	r.Code = code
	if remark != "" {
		r.SetRemark(remark)
	}
	c.Reply(req, r)
}

func (s *NullServer) replyJSON(c *remoting.Conn, req *remoting.Command, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		s.reply(c, req, remoting.RespSystemError, err.Error())
		return
	}
	r := c.NewResponse()
	r.AppendBody(b)
	c.Reply(req, r)
}

func (s *NullServer) createTopic(c *remoting.Conn, req *remoting.Command) {
	n, err := req.ExtInt32("writeQueueNums")
	if err != nil || n < 1 || n > nullMaxQueues {
		s.reply(c, req, remoting.RespSystemError, fmt.Sprintf("null server: writeQueueNums outside 1..%d", nullMaxQueues))
		return
	}
	topic := req.ExtString("topic")
	s.mu.Lock()
	if _, ok := s.mu.topics[topic]; !ok {
		qs := make([]*nullQueue, n)
		for i := range qs {
			qs[i] = &nullQueue{}
		}
		s.mu.topics[topic] = qs
	}
	s.mu.Unlock()
	s.reply(c, req, remoting.RespSuccess, "")
}

func (s *NullServer) queues(topic []byte) []*nullQueue {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mu.topics[string(topic)]
}

func (s *NullServer) route(c *remoting.Conn, req *remoting.Command) {
	topic, _ := req.ExtValue("topic")
	qs := s.queues(topic)
	if qs == nil {
		s.reply(c, req, remoting.RespTopicNotExist, "null server: no such topic")
		return
	}
	s.replyJSON(c, req, map[string]any{
		"brokerDatas":       []any{brokerEntry(s.addr)},
		"filterServerTable": map[string]any{},
		"queueDatas": []any{map[string]any{"brokerName": nullBrokerName, "perm": rmqPermReadWrite,
			"readQueueNums": len(qs), "writeQueueNums": len(qs), "topicSysFlag": 0}},
	})
}

// queueOf finds the queue a SEND or PULL names, or answers the error itself.
func (s *NullServer) queueOf(c *remoting.Conn, req *remoting.Command) (*nullQueue, bool) {
	topic, _ := req.ExtValue("topic")
	qs := s.queues(topic)
	qid, err := req.ExtInt32("queueId")
	if qs == nil || err != nil || qid < 0 || int(qid) >= len(qs) {
		s.reply(c, req, remoting.RespTopicNotExist, "null server: no such topic or queue")
		return nil, false
	}
	return qs[qid], true
}

// send keeps the record, acks, then wakes held pulls. (The record is stored before the
// ack so a pull can never see an offset without its record.)
func (s *NullServer) send(c *remoting.Conn, req *remoting.Command) {
	q, ok := s.queueOf(c, req)
	if !ok {
		return
	}
	body := req.Body[:min(len(req.Body), PayloadHeaderBytes)]
	topic, _ := req.ExtValue("topic")
	qid, _ := req.ExtInt32("queueId")
	h := record.Header{QueueID: qid, BornTimestampMs: time.Now().UnixMilli(), StoreHost: s.host, BornHost: s.host}
	h.StoreTimestampMs = h.BornTimestampMs
	q.mu.Lock()
	off := q.next
	// The record is encoded into the buffer of the one it replaces (pulls copy records out
	// under q.mu), so a full ring stores without allocating.
	slot := &q.ring[off%nullRingRecords]
	*slot = record.Append((*slot)[:0], &h, string(topic), body, nil)
	binary.BigEndian.PutUint64((*slot)[recordQueueOffsetPos:], uint64(off))
	q.next++
	ready := q.takeReady()
	q.mu.Unlock()

	r := c.NewResponse()
	r.AddExtString("msgId", "00000000000000000000000000000000")
	r.AddExtInt("queueId", int64(qid))
	r.AddExtInt("queueOffset", off)
	c.Reply(req, r)
	for _, w := range ready {
		s.answerPull(q, w)
	}
}

// recordQueueOffsetPos is where a stored record keeps its queue offset (PROTOCOL.md §3.1).
const recordQueueOffsetPos = 20

// takeReady removes the held pulls that now have a record (q.mu held).
func (q *nullQueue) takeReady() []*heldPull {
	var ready []*heldPull
	kept := q.waiters[:0]
	for _, w := range q.waiters {
		// A timer that already fired owns its pull: expire answers it.
		if w.offset < q.next && w.timer.Stop() {
			ready = append(ready, w)
		} else {
			kept = append(kept, w)
		}
	}
	clear(q.waiters[len(kept):])
	q.waiters = kept
	return ready
}

func (s *NullServer) pull(c *remoting.Conn, req *remoting.Command) {
	q, ok := s.queueOf(c, req)
	if !ok {
		return
	}
	offset, err1 := req.ExtInt64("queueOffset")
	maxN, err2 := req.ExtInt32("maxMsgNums")
	suspendMs, err3 := req.ExtInt64("suspendTimeoutMillis")
	if err1 != nil || err2 != nil || err3 != nil {
		s.reply(c, req, remoting.RespSystemError, "null server: bad pull header")
		return
	}
	w := &heldPull{c: c, opaque: req.Opaque, offset: offset, max: int(min(max(maxN, 1), nullMaxPullRecords))}
	q.mu.Lock()
	if offset < q.next || len(q.waiters) >= nullMaxHeldPulls {
		q.mu.Unlock()
		s.answerPull(q, w)
		return
	}
	// Held: the request stays in flight until answerPull's ReplyTo.
	w.timer = time.AfterFunc(time.Duration(suspendMs)*time.Millisecond, func() { s.expire(q, w) })
	q.waiters = append(q.waiters, w)
	q.mu.Unlock()
}

// expire answers a held pull whose suspend time ran out.
func (s *NullServer) expire(q *nullQueue, w *heldPull) {
	q.mu.Lock()
	for i, x := range q.waiters {
		if x == w {
			q.waiters = append(q.waiters[:i], q.waiters[i+1:]...)
			q.mu.Unlock()
			s.answerPull(q, w)
			return
		}
	}
	q.mu.Unlock()
}

// answerPull replies with the records from w.offset, OFFSET_MOVED when they left the
// ring, or PULL_NOT_FOUND when there are none.
func (s *NullServer) answerPull(q *nullQueue, w *heldPull) {
	r := w.c.NewResponse()
	q.mu.Lock()
	oldest := max(q.next-nullRingRecords, 0)
	next := w.offset
	switch {
	case w.offset < oldest || w.offset > q.next:
		r.Code, next = remoting.RespPullOffsetMoved, oldest
	case w.offset == q.next:
		r.Code = remoting.RespPullNotFound
	default:
		for ; next < q.next && next-w.offset < int64(w.max); next++ {
			r.AppendBody(q.ring[next%nullRingRecords])
		}
	}
	r.AddExtInt("nextBeginOffset", next)
	r.AddExtInt("minOffset", oldest)
	r.AddExtInt("maxOffset", q.next)
	q.mu.Unlock()
	w.c.ReplyTo(w.opaque, r)
}
