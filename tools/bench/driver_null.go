package bench

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// The null-inproc driver measures the generator alone: an in-process responder goroutine
// acknowledges every send at once and hands each message's header to the consumers that
// own its partition. Everything the generator does (pacing, payload stamping, in-flight
// accounting, one goroutine hand-off per ack, recording) is in the measured path; no
// client library, network or broker is. The "null" driver (driver_nullremoting.go) adds
// the remoting client and loopback TCP.

// nullQueueDepth bounds sends waiting for the responder; when full, SendAsync waits,
// which shows up as publish delay.
const nullQueueDepth = 1 << 16

var errNullClosed = errors.New("null driver closed")

type nullDriver struct {
	reqs chan nullReq
	stop chan struct{}
	wg   sync.WaitGroup
	mu   struct {
		sync.Mutex
		topics map[string]*nullTopic
	}
}

type nullTopic struct {
	partitions int
	mu         struct {
		sync.RWMutex
		sinks [][]Sink // per partition: one sink per subscription owning it
	}
}

type nullReq struct {
	done      Completion
	token     uint64
	topic     *nullTopic
	partition int
	header    [PayloadHeaderBytes]byte
}

func newNullDriver(ctx context.Context, _ DriverOptions) (Driver, error) {
	d := &nullDriver{reqs: make(chan nullReq, nullQueueDepth), stop: make(chan struct{})}
	d.mu.topics = make(map[string]*nullTopic)
	d.wg.Add(1)
	go d.respond()
	return d, nil
}

func (d *nullDriver) Name() string { return "null-inproc" }

func (d *nullDriver) CreateTopics(ctx context.Context, topics []string, partitions int) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, name := range topics {
		t := &nullTopic{partitions: partitions}
		t.mu.sinks = make([][]Sink, partitions)
		d.mu.topics[name] = t
	}
	return nil
}

func (d *nullDriver) topic(name string) (*nullTopic, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	t, ok := d.mu.topics[name]
	if !ok {
		return nil, fmt.Errorf("null driver: topic %q not created", name)
	}
	return t, nil
}

func (d *nullDriver) NewProducer(ctx context.Context, topic string, index int) (Producer, error) {
	t, err := d.topic(topic)
	if err != nil {
		return nil, err
	}
	return &nullProducer{d: d, t: t}, nil
}

func (d *nullDriver) NewConsumer(ctx context.Context, spec ConsumerSpec, sink Sink) (Consumer, error) {
	t, err := d.topic(spec.Topic)
	if err != nil {
		return nil, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, p := range spec.Partitions {
		if p < 0 || p >= t.partitions {
			return nil, fmt.Errorf("null driver: partition %d of %q out of range", p, spec.Topic)
		}
		t.mu.sinks[p] = append(t.mu.sinks[p], sink)
	}
	return &nullConsumer{t: t, spec: spec, sink: sink}, nil
}

// respond is the responder goroutine: ack, then deliver to consumers. The header is
// handed to the sinks from the responder's own buffer: slicing the received request's
// array for an interface call would move every request to the heap (a GC every few
// seconds at 10,000 msg/s, TestAckPathAllocs).
func (d *nullDriver) respond() {
	defer d.wg.Done()
	header := make([]byte, PayloadHeaderBytes)
	for {
		select {
		case <-d.stop:
			return
		case r := <-d.reqs:
			r.done.Done(r.token, nil)
			r.topic.mu.RLock()
			sinks := r.topic.mu.sinks[r.partition]
			r.topic.mu.RUnlock()
			copy(header, r.header[:])
			for _, s := range sinks {
				s.Received(header, MonoNowNs())
			}
		}
	}
}

func (d *nullDriver) Close() error {
	close(d.stop)
	d.wg.Wait()
	// Sends still queued fail now, so every Done is called exactly once.
	for {
		select {
		case r := <-d.reqs:
			r.done.Done(r.token, errNullClosed)
		default:
			return nil
		}
	}
}

type nullProducer struct {
	d *nullDriver
	t *nullTopic
}

func (p *nullProducer) SendAsync(msg *Message, done Completion) error {
	if msg.Partition < 0 || msg.Partition >= p.t.partitions {
		return fmt.Errorf("null send: partition %d out of range", msg.Partition)
	}
	r := nullReq{done: done, token: msg.Token, topic: p.t, partition: msg.Partition}
	copy(r.header[:], msg.Payload)
	select {
	case p.d.reqs <- r:
		return nil
	case <-p.d.stop:
		return errNullClosed
	}
}

func (p *nullProducer) Close() error { return nil }

type nullConsumer struct {
	t    *nullTopic
	spec ConsumerSpec
	sink Sink
}

func (c *nullConsumer) Close() error {
	c.t.mu.Lock()
	defer c.t.mu.Unlock()
	for _, p := range c.spec.Partitions {
		sinks := c.t.mu.sinks[p]
		for i, s := range sinks {
			if s == c.sink {
				c.t.mu.sinks[p] = append(sinks[:i:i], sinks[i+1:]...)
				break
			}
		}
	}
	return nil
}
