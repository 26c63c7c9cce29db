package bench

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Limits on what one ringmq-bench process drives. They keep every queue and table bounded
// and turn a typo (a rate of 10 million, 100,000 partitions) into an error before any load.
const (
	// MaxRatePerSec is the highest producerRate the single pacer thread accepts: one send
	// costs the client a few microseconds of CPU (encode + write), so beyond this the pacer,
	// not the system under test, sets the rate.
	MaxRatePerSec = 500_000
	// MaxTopics, MaxPartitionsPerTopic and MaxQueues bound the topic table.
	MaxTopics             = 64
	MaxPartitionsPerTopic = 1024
	MaxQueues             = 4096
	// MaxProducers and MaxConsumers bound the clients (each holds buffers and goroutines).
	MaxProducers = 256
	MaxConsumers = 256
	// MaxMessageSizeBytes is RocketMQ's default maxMessageSize (4 MiB).
	MaxMessageSizeBytes = 4 << 20
	// MaxPayloadPoolSize bounds randomizedPayloadPoolSize.
	MaxPayloadPoolSize = 10_000
	// MaxDurationMinutes bounds testDurationMinutes and warmupDurationMinutes (one week).
	MaxDurationMinutes = 7 * 24 * 60
)

// Key distributors (OMB's KeyDistributorType names).
const (
	KeyNone       = "NO_KEY"
	KeyRoundRobin = "KEY_ROUND_ROBIN"
	KeyRandomNano = "RANDOM_NANO"
)

// Flush modes a workload may name for the broker it expects (ringmq's addition; the
// generator cannot change a broker's flush mode, the harness that starts it can).
const (
	FlushSync  = "SYNC_FLUSH"
	FlushAsync = "ASYNC_FLUSH"
)

// Workload is an OpenMessaging Benchmark workload file. Field names and meanings follow
// OMB's Workload class; durations are minutes and may be fractional here (OMB: integers).
// ProducerRate is the total rate over all producers in msg/s; 0 asks for a search of the
// maximum sustainable rate.
type Workload struct {
	Name                      string  `yaml:"name"`
	Topics                    int     `yaml:"topics"`
	PartitionsPerTopic        int     `yaml:"partitionsPerTopic"`
	KeyDistributor            string  `yaml:"keyDistributor"`
	MessageSize               int     `yaml:"messageSize"`
	UseRandomizedPayloads     bool    `yaml:"useRandomizedPayloads"`
	RandomBytesRatio          float64 `yaml:"randomBytesRatio"`
	RandomizedPayloadPoolSize int     `yaml:"randomizedPayloadPoolSize"`
	PayloadFile               string  `yaml:"payloadFile"`
	SubscriptionsPerTopic     int     `yaml:"subscriptionsPerTopic"`
	ProducersPerTopic         int     `yaml:"producersPerTopic"`
	ConsumerPerSubscription   int     `yaml:"consumerPerSubscription"`
	ProducerRate              float64 `yaml:"producerRate"`
	ConsumerBacklogSizeGB     float64 `yaml:"consumerBacklogSizeGB"`
	BacklogDrainRatio         float64 `yaml:"backlogDrainRatio"`
	TestDurationMinutes       float64 `yaml:"testDurationMinutes"`
	WarmupDurationMinutes     float64 `yaml:"warmupDurationMinutes"`

	// FlushDiskType is ringmq's addition: the broker flush mode the workload is defined
	// for (SYNC_FLUSH or ASYNC_FLUSH; empty = not stated). Harnesses that start a broker
	// (tools/bench/compare) honour it; the generator records it in the result.
	FlushDiskType string `yaml:"flushDiskType"`

	// Dir is the directory of the workload file (payloadFile is relative to it).
	Dir string `yaml:"-"`
}

// ErrWorkload marks a workload that cannot be run; the message names the field.
var ErrWorkload = errors.New("invalid workload")

// LoadWorkload reads, parses and validates a workload file.
func LoadWorkload(path string) (*Workload, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read workload: %w", err)
	}
	w, err := ParseWorkload(b)
	if err != nil {
		return nil, fmt.Errorf("workload %s: %w", path, err)
	}
	w.Dir = filepath.Dir(path)
	return w, nil
}

// ParseWorkload parses YAML strictly (an unknown key is an error) and validates the result.
// Omitted fields take OMB's defaults: keyDistributor NO_KEY, backlogDrainRatio 1,
// warmupDurationMinutes 1, consumerPerSubscription 1, randomizedPayloadPoolSize 1.
func ParseWorkload(b []byte) (*Workload, error) {
	w := &Workload{
		KeyDistributor:            KeyNone,
		BacklogDrainRatio:         1,
		WarmupDurationMinutes:     1,
		ConsumerPerSubscription:   1,
		RandomizedPayloadPoolSize: 1,
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(w); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrWorkload, err)
	}
	if err := w.Validate(); err != nil {
		return nil, err
	}
	return w, nil
}

// Validate checks every field against its range and the combinations OMB rejects.
func (w *Workload) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrWorkload, fmt.Sprintf(format, args...))
	}
	switch {
	case strings.TrimSpace(w.Name) == "":
		return bad("name is empty")
	case w.Topics < 1 || w.Topics > MaxTopics:
		return bad("topics = %d, want 1..%d", w.Topics, MaxTopics)
	case w.PartitionsPerTopic < 1 || w.PartitionsPerTopic > MaxPartitionsPerTopic:
		return bad("partitionsPerTopic = %d, want 1..%d", w.PartitionsPerTopic, MaxPartitionsPerTopic)
	case w.Topics*w.PartitionsPerTopic > MaxQueues:
		return bad("topics x partitionsPerTopic = %d, want at most %d", w.Topics*w.PartitionsPerTopic, MaxQueues)
	case w.MessageSize < PayloadHeaderBytes || w.MessageSize > MaxMessageSizeBytes:
		return bad("messageSize = %d, want %d..%d (the payload carries a %d-byte timestamp header)",
			w.MessageSize, PayloadHeaderBytes, MaxMessageSizeBytes, PayloadHeaderBytes)
	case w.ProducersPerTopic < 1 || w.Topics*w.ProducersPerTopic > MaxProducers:
		return bad("producersPerTopic = %d, want 1.. with topics x producersPerTopic <= %d", w.ProducersPerTopic, MaxProducers)
	case w.SubscriptionsPerTopic < 0:
		return bad("subscriptionsPerTopic = %d, want >= 0", w.SubscriptionsPerTopic)
	case w.ConsumerPerSubscription < 1:
		return bad("consumerPerSubscription = %d, want >= 1", w.ConsumerPerSubscription)
	case w.Topics*w.SubscriptionsPerTopic*w.ConsumerPerSubscription > MaxConsumers:
		return bad("topics x subscriptionsPerTopic x consumerPerSubscription = %d, want at most %d",
			w.Topics*w.SubscriptionsPerTopic*w.ConsumerPerSubscription, MaxConsumers)
	case math.IsNaN(w.ProducerRate) || w.ProducerRate < 0 || w.ProducerRate > MaxRatePerSec:
		return bad("producerRate = %g msg/s, want 0 (find the maximum) or up to %d (the pacer's limit)", w.ProducerRate, MaxRatePerSec)
	case w.ProducerRate > 0 && w.ProducerRate < 1:
		return bad("producerRate = %g msg/s, want at least 1", w.ProducerRate)
	case !(w.TestDurationMinutes > 0) || w.TestDurationMinutes > MaxDurationMinutes:
		return bad("testDurationMinutes = %g, want > 0 and <= %d", w.TestDurationMinutes, MaxDurationMinutes)
	case !(w.WarmupDurationMinutes >= 0) || w.WarmupDurationMinutes > MaxDurationMinutes:
		return bad("warmupDurationMinutes = %g, want 0..%d", w.WarmupDurationMinutes, MaxDurationMinutes)
	case !(w.ConsumerBacklogSizeGB >= 0):
		return bad("consumerBacklogSizeGB = %g, want >= 0", w.ConsumerBacklogSizeGB)
	case w.ConsumerBacklogSizeGB > 0 && w.ProducerRate == 0:
		return bad("consumerBacklogSizeGB > 0 needs a fixed producerRate (OMB rejects it with the rate search)")
	case w.ConsumerBacklogSizeGB > 0 && w.SubscriptionsPerTopic == 0:
		return bad("consumerBacklogSizeGB > 0 needs subscriptionsPerTopic >= 1")
	case !(w.BacklogDrainRatio > 0):
		return bad("backlogDrainRatio = %g, want > 0", w.BacklogDrainRatio)
	case !(w.RandomBytesRatio >= 0 && w.RandomBytesRatio <= 1):
		return bad("randomBytesRatio = %g, want 0..1", w.RandomBytesRatio)
	case w.RandomizedPayloadPoolSize < 1 || w.RandomizedPayloadPoolSize > MaxPayloadPoolSize:
		return bad("randomizedPayloadPoolSize = %d, want 1..%d", w.RandomizedPayloadPoolSize, MaxPayloadPoolSize)
	}
	switch w.KeyDistributor {
	case KeyNone, KeyRoundRobin, KeyRandomNano:
	default:
		return bad("keyDistributor = %q, want %s, %s or %s", w.KeyDistributor, KeyNone, KeyRoundRobin, KeyRandomNano)
	}
	switch w.FlushDiskType {
	case "", FlushSync, FlushAsync:
	default:
		return bad("flushDiskType = %q, want %s or %s", w.FlushDiskType, FlushSync, FlushAsync)
	}
	return nil
}

// TestDuration and WarmupDuration convert the minute fields.
func (w *Workload) TestDuration() time.Duration {
	return time.Duration(w.TestDurationMinutes * float64(time.Minute))
}

// WarmupDuration is the warm-up phase before measurement starts.
func (w *Workload) WarmupDuration() time.Duration {
	return time.Duration(w.WarmupDurationMinutes * float64(time.Minute))
}

// ProducerCount and ConsumerCount are the totals over all topics.
func (w *Workload) ProducerCount() int { return w.Topics * w.ProducersPerTopic }

// ConsumerCount is topics x subscriptionsPerTopic x consumerPerSubscription.
func (w *Workload) ConsumerCount() int {
	return w.Topics * w.SubscriptionsPerTopic * w.ConsumerPerSubscription
}

// BacklogBytes is consumerBacklogSizeGB in bytes (GB = 2^30, as OMB computes it).
func (w *Workload) BacklogBytes() int64 { return int64(w.ConsumerBacklogSizeGB * (1 << 30)) }
