package bench

import (
	"context"
	"fmt"
	"sort"
	"strings"
)

// Driver connects the generator to one messaging system. A new system (Kafka, Pulsar)
// is one more implementation of these three interfaces and one entry in drivers.
//
// Concurrency: Driver methods are called from one goroutine during set-up and tear-down.
// Producer.SendAsync is called from the pacer goroutine only; completions and sink calls
// arrive on the driver's own goroutines.
type Driver interface {
	// Name is the driver's name as the command line spells it.
	Name() string
	// CreateTopics makes the topics exist with partitions queues each, or fails. It is the
	// first call, so an unreachable system is reported before any load is sent.
	CreateTopics(ctx context.Context, topics []string, partitions int) error
	// NewProducer opens producer number index of a topic.
	NewProducer(ctx context.Context, topic string, index int) (Producer, error)
	// NewConsumer opens one consumer of a subscription; it reads its partitions from the
	// beginning and passes every message to sink until Close. (null-inproc keeps nothing:
	// its consumers see the messages sent after they started.)
	NewConsumer(ctx context.Context, spec ConsumerSpec, sink Sink) (Consumer, error)
	// Close releases connections; producers and consumers are closed before it.
	Close() error
}

// Message is one send. Payload is owned by the caller and reused after SendAsync returns.
type Message struct {
	Partition int    // queue / partition index within the topic
	Key       string // "" for NO_KEY
	Payload   []byte
	Token     uint64 // passed back to Completion.Done unchanged
}

// Completion learns the outcome of each send.
type Completion interface {
	// Done is called exactly once for every SendAsync that returned nil: err == nil means
	// the system acknowledged the message (durably, if the system was so configured).
	Done(token uint64, err error)
}

// Producer sends messages to one topic.
type Producer interface {
	// SendAsync starts a send and returns without waiting for the acknowledgement; it
	// must not keep msg.Payload after it returns. A non-nil error means nothing was sent
	// and Done will not be called.
	SendAsync(msg *Message, done Completion) error
	// Close waits for nothing: sends still in flight complete or fail on their own.
	Close() error
}

// InFlightLimiter is implemented by producers whose system bounds the sends one client
// may have awaiting an answer; the generator then keeps at most
// min(MaxInFlightPerProducer, MaxInFlight()) in flight, and waits at the limit.
type InFlightLimiter interface {
	MaxInFlight() int
}

// ConsumerSpec says what one consumer reads.
type ConsumerSpec struct {
	Topic        string
	Subscription string // consumer group / durable name
	Partitions   []int  // the partitions this consumer owns
	Index        int    // consumer number within the subscription
}

// Sink receives consumed messages.
type Sink interface {
	// Received is called once per consumed message with its payload (valid only during
	// the call) and the CLOCK_MONOTONIC time it was taken off the wire or queue.
	Received(payload []byte, recvNs int64)
	// ConsumeError reports a failed fetch (the consumer retries by itself).
	ConsumeError(err error)
}

// Consumer is a running consumer.
type Consumer interface {
	Close() error
}

// DriverOptions carry the command-line settings a driver may need.
type DriverOptions struct {
	NamesrvAddr string // ringmq / RocketMQ name server, host:port
	// BrokerAddr, when set, makes the ringmq driver talk to this one broker directly: no
	// name server, routes are the broker's queues 0..n-1 (for testing a broker alone).
	BrokerAddr string
	NATSURL    string // nats://host:port
}

// drivers maps a driver name to its constructor. Drivers with their own dependencies
// (ringmq on netio/remoting) add themselves from their file's init.
var drivers = map[string]func(ctx context.Context, o DriverOptions) (Driver, error){
	"null-inproc": newNullDriver,
	"nats":        newNATSDriver,
}

// DriverNames lists the known drivers, sorted.
func DriverNames() []string {
	names := make([]string, 0, len(drivers))
	for n := range drivers {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// OpenDriver connects the named driver; connection errors come back here, before any load.
func OpenDriver(ctx context.Context, name string, o DriverOptions) (Driver, error) {
	mk, ok := drivers[name]
	if !ok {
		return nil, fmt.Errorf("open driver: unknown driver %q (have %s)", name, strings.Join(DriverNames(), ", "))
	}
	d, err := mk(ctx, o)
	if err != nil {
		return nil, fmt.Errorf("open driver %s: %w", name, err)
	}
	return d, nil
}
