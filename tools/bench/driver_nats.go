package bench

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The nats driver runs workloads against NATS JetStream, the durable peer of ringmq's
// comparisons. Each topic is a file-storage stream (R1) with one subject per partition,
// "<topic>.<partition>"; durability per ack depends on the server's
// `jetstream { sync_interval: always }` (tools/bench/compare configures it). Each producer
// has its own connection and publishes with PublishMsgAsync; a per-producer goroutine
// resolves the ack futures in send order (one stream answers in order), so the recorded
// ack time includes one goroutine wake-up, as a callback would. Each subscription is a
// durable pull consumer (AckNone, DeliverAll) that its consumers Consume() together.

const (
	natsConnectTimeout = 5 * time.Second
	natsAckTimeout     = 30 * time.Second // a future never resolved fails after this
	natsStreamMaxBytes = 8 << 30
	natsPullMaxMsgs    = 4096
	// natsMaxInFlight matches the ringmq driver's rmqMaxInFlight so both peers see the
	// same client-side back-pressure.
	natsMaxInFlight = rmqMaxInFlight
)

var errNATSClosed = errors.New("nats producer closed")

type natsDriver struct {
	url     string
	nc      *nats.Conn // administration and consumers
	js      jetstream.JetStream
	streams []string // created here, deleted on Close
}

// natsCleanupTimeout bounds deleting the run's streams on Close.
const natsCleanupTimeout = 10 * time.Second

func newNATSDriver(ctx context.Context, o DriverOptions) (Driver, error) {
	if o.NATSURL == "" {
		return nil, errors.New("nats driver needs --nats-url")
	}
	nc, err := nats.Connect(o.NATSURL, nats.Timeout(natsConnectTimeout), nats.Name("ringmq-bench"))
	if err != nil {
		return nil, fmt.Errorf("connect %s: %w", o.NATSURL, err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("jetstream context: %w", err)
	}
	if _, err := js.AccountInfo(ctx); err != nil {
		nc.Close()
		return nil, fmt.Errorf("jetstream at %s: %w", o.NATSURL, err)
	}
	return &natsDriver{url: o.NATSURL, nc: nc, js: js}, nil
}

func (d *natsDriver) Name() string { return "nats" }

func (d *natsDriver) CreateTopics(ctx context.Context, topics []string, partitions int) error {
	for _, t := range topics {
		_, err := d.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
			Name: t, Subjects: []string{t + ".>"}, Storage: jetstream.FileStorage, Replicas: 1,
			Retention: jetstream.LimitsPolicy, Discard: jetstream.DiscardOld, MaxBytes: natsStreamMaxBytes,
		})
		if err != nil {
			return fmt.Errorf("create stream %s: %w", t, err)
		}
		d.streams = append(d.streams, t)
	}
	return nil
}

func (d *natsDriver) NewProducer(ctx context.Context, topic string, index int) (Producer, error) {
	nc, err := nats.Connect(d.url, nats.Timeout(natsConnectTimeout), nats.Name(fmt.Sprintf("ringmq-bench-p%d", index)))
	if err != nil {
		return nil, fmt.Errorf("connect producer: %w", err)
	}
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(2*natsMaxInFlight),
		jetstream.WithPublishAsyncTimeout(natsAckTimeout))
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("producer jetstream context: %w", err)
	}
	p := &natsProducer{nc: nc, js: js, futures: make(chan natsPending, natsMaxInFlight), stop: make(chan struct{})}
	p.subjects = make([]string, MaxPartitionsPerTopic)
	for i := range p.subjects {
		p.subjects[i] = topic + "." + strconv.Itoa(i)
	}
	p.wg.Add(1)
	go p.resolve()
	return p, nil
}

type natsPending struct {
	f     jetstream.PubAckFuture
	token uint64
	done  Completion
}

type natsProducer struct {
	nc       *nats.Conn
	js       jetstream.JetStream
	subjects []string
	futures  chan natsPending // bounded by the generator's in-flight limit
	stop     chan struct{}
	wg       sync.WaitGroup
}

func (p *natsProducer) SendAsync(msg *Message, done Completion) error {
	// The future keeps the message for retries, so the payload is copied.
	m := &nats.Msg{Subject: p.subjects[msg.Partition], Data: append([]byte(nil), msg.Payload...)}
	f, err := p.js.PublishMsgAsync(m)
	if err != nil {
		return fmt.Errorf("nats publish: %w", err)
	}
	p.futures <- natsPending{f: f, token: msg.Token, done: done}
	return nil
}

// resolve completes futures in send order.
func (p *natsProducer) resolve() {
	defer p.wg.Done()
	for {
		select {
		case <-p.stop:
			p.failPending()
			return
		case pd := <-p.futures:
			select {
			case <-pd.f.Ok():
				pd.done.Done(pd.token, nil)
			case err := <-pd.f.Err():
				pd.done.Done(pd.token, fmt.Errorf("nats ack: %w", err))
			case <-p.stop:
				pd.done.Done(pd.token, errNATSClosed)
				p.failPending()
				return
			}
		}
	}
}

func (p *natsProducer) failPending() {
	for {
		select {
		case pd := <-p.futures:
			pd.done.Done(pd.token, errNATSClosed)
		default:
			return
		}
	}
}

// MaxInFlight implements InFlightLimiter.
func (p *natsProducer) MaxInFlight() int { return natsMaxInFlight }

func (p *natsProducer) Close() error {
	close(p.stop)
	p.wg.Wait()
	p.nc.Close()
	return nil
}

func (d *natsDriver) NewConsumer(ctx context.Context, spec ConsumerSpec, s Sink) (Consumer, error) {
	cons, err := d.js.CreateOrUpdateConsumer(ctx, spec.Topic, jetstream.ConsumerConfig{
		Durable: spec.Subscription, AckPolicy: jetstream.AckNonePolicy, DeliverPolicy: jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return nil, fmt.Errorf("create consumer %s on %s: %w", spec.Subscription, spec.Topic, err)
	}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		now := MonoNowNs()
		s.Received(m.Data(), now)
	}, jetstream.PullMaxMessages(natsPullMaxMsgs))
	if err != nil {
		return nil, fmt.Errorf("consume %s: %w", spec.Subscription, err)
	}
	return natsConsumer{cc}, nil
}

type natsConsumer struct{ cc jetstream.ConsumeContext }

func (c natsConsumer) Close() error {
	c.cc.Stop()
	return nil
}

// Close deletes the run's streams (their files would otherwise fill the disk over many
// runs) and closes the connection.
func (d *natsDriver) Close() error {
	defer d.nc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), natsCleanupTimeout)
	defer cancel()
	var errs []error
	for _, s := range d.streams {
		if err := d.js.DeleteStream(ctx, s); err != nil {
			errs = append(errs, fmt.Errorf("delete stream %s: %w", s, err))
		}
	}
	return errors.Join(errs...)
}
