package bench

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/ringmq/ringmq/netio/remoting"
)

// SEND_MESSAGE V1 ext fields, in the order the Go client v2.1.2 writes them (PROTOCOL.md
// §2.2). The values at rmqFieldQueueID, rmqFieldBorn and rmqFieldProps change per send;
// the others are fixed per producer.
const (
	rmqFieldQueueID = 2
	rmqFieldBorn    = 4
	rmqFieldProps   = 6
)

// rmqMaxInFlight bounds the sends one producer has awaiting an answer, as OMB's RocketMQ
// driver does (backpressureConcurrency 1024). A RocketMQ-style server answers
// SYSTEM_BUSY past its per-connection limit (4096 in netio/remoting), so a client that
// kept more in flight would measure its own overload, not the broker's speed.
const rmqMaxInFlight = 1024

var rmqSendKeys = []string{"producerGroup", "topic", "queueId", "sysFlag", "bornTimestamp", "flag", "properties",
	"reconsumeTimes", "unitMode", "maxReconsumeTimes", "batch", "defaultTopic", "defaultTopicQueueNums"}

// rmqProducer sends to the write queues of one topic. SendAsync runs on the pacer only,
// so the field buffers are reused without locks (InvokeAsync copies them).
type rmqProducer struct {
	route   *rmqRoute
	clients []*remoting.Client // per route queue (shared per broker address)
	byAddr  map[string]*remoting.Client
	ext     []remoting.Field
	qidBuf  []byte
	bornBuf []byte
	props   []byte
	uniq    []byte // UNIQ_KEY: 20 fixed hex chars, then 12 per message
	seq     uint32
	// free holds completion records for reuse: a closure per send would be one heap
	// allocation per message (GC work beside the pacer). At most rmqMaxInFlight are in use,
	// since the generator keeps no more sends in flight per producer.
	free chan *rmqSend
}

// rmqSend is one send's completion: its callback is bound once, when the record is made.
type rmqSend struct {
	p     *rmqProducer
	done  Completion
	token uint64
	cb    func(*remoting.Command, error)
}

func (p *rmqProducer) getSend(done Completion, token uint64) *rmqSend {
	var s *rmqSend
	select {
	case s = <-p.free:
	default:
		s = &rmqSend{p: p}
		s.cb = s.complete
	}
	s.done, s.token = done, token
	return s
}

// put returns s to the pool (dropped if the pool is full, which the in-flight bound
// prevents).
func (p *rmqProducer) put(s *rmqSend) {
	s.done = nil
	select {
	case p.free <- s:
	default:
	}
}

// complete is the remoting callback. The record goes back to the pool before Done, since
// Done frees the in-flight slot the pacer may be waiting for.
func (s *rmqSend) complete(cmd *remoting.Command, err error) {
	done, token := s.done, s.token
	s.p.put(s)
	switch {
	case err != nil:
		done.Done(token, fmt.Errorf("send: %w", err))
	case cmd.Code != remoting.RespSuccess:
		done.Done(token, fmt.Errorf("send: code %d: %s", cmd.Code, cmd.Remark))
	default:
		done.Done(token, nil)
	}
}

func (d *ringmqDriver) NewProducer(ctx context.Context, topic string, index int) (Producer, error) {
	rt, err := d.topicRoute(topic)
	if err != nil {
		return nil, err
	}
	p := &rmqProducer{route: rt, byAddr: make(map[string]*remoting.Client), free: make(chan *rmqSend, rmqMaxInFlight)}
	for _, q := range rt.queues {
		c, ok := p.byAddr[q.addr]
		if !ok {
			c, err = remoting.Dial(q.addr, remoting.ClientConfig{DialTimeout: rmqAdminTimeout, MaxInFlight: rmqMaxInFlight})
			if err != nil {
				p.Close()
				return nil, fmt.Errorf("producer %d: %w", index, err)
			}
			p.byAddr[q.addr] = c
		}
		p.clients = append(p.clients, c)
	}
	values := []string{rmqProducerGroup, topic, "0", "0", "0", "0", "", "0", "false", "0", "false", rmqDefaultTopic, "4"}
	for i, k := range rmqSendKeys {
		p.ext = append(p.ext, remoting.Field{Key: []byte(k), Value: []byte(values[i])})
	}
	// UNIQ_KEY prefix as the Go client builds it: hex(IPv4 + pid int16 + int32), here
	// 127.0.0.1, the pid and the producer index (so producers never collide).
	p.uniq = fmt.Appendf(nil, "7F000001%04X%08X", uint16(os.Getpid()), uint32(index))
	return p, nil
}

func (p *rmqProducer) SendAsync(msg *Message, done Completion) error {
	q := p.route.queues[msg.Partition%len(p.route.queues)]
	p.qidBuf = strconv.AppendInt(p.qidBuf[:0], int64(q.queueID), 10)
	p.bornBuf = strconv.AppendInt(p.bornBuf[:0], time.Now().UnixMilli(), 10)
	p.ext[rmqFieldQueueID].Value, p.ext[rmqFieldBorn].Value = p.qidBuf, p.bornBuf
	p.seq++
	p.props = append(p.props[:0], "UNIQ_KEY\x01"...)
	p.props = append(p.props, p.uniq...)
	p.props = appendHex(p.props, uint64(MonoNowNs()/1e6), 8)
	p.props = appendHex(p.props, uint64(p.seq), 4)
	p.props = append(p.props, '\x02')
	if msg.Key != "" {
		p.props = append(p.props, "KEYS\x01"...)
		p.props = append(p.props, msg.Key...)
		p.props = append(p.props, '\x02')
	}
	p.ext[rmqFieldProps].Value = p.props
	send := p.getSend(done, msg.Token)
	err := p.clients[msg.Partition%len(p.clients)].InvokeAsync(remoting.ReqSendMessage, p.ext, msg.Payload, send.cb)
	if err != nil { // the callback will not run
		p.put(send)
		return fmt.Errorf("send: %w", err)
	}
	return nil
}

// MaxInFlight implements InFlightLimiter.
func (p *rmqProducer) MaxInFlight() int { return rmqMaxInFlight }

func (p *rmqProducer) Close() error {
	for _, c := range p.byAddr {
		_ = c.Close()
	}
	return nil
}

// appendHex appends the low digits hex digits of v, lower case, zero padded.
func appendHex(dst []byte, v uint64, digits int) []byte {
	const hexDigits = "0123456789abcdef"
	for i := digits - 1; i >= 0; i-- {
		dst = append(dst, hexDigits[(v>>(4*uint(i)))&0xF])
	}
	return dst
}
