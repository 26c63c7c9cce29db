package broker

import (
	"github.com/ringmq/ringmq/perf"
)

// RegisterMetrics adds the broker's gauges to reg (Prometheus /metrics): what is held or
// in flight, against the limits that bound it. Call it once, after New.
func (b *Broker) RegisterMetrics(reg *perf.Registry) {
	gauge := func(name, help string, fn func() int64) {
		reg.RegisterGauge(name, help, func() float64 { return float64(fn()) })
	}
	gauge("ringmq_broker_sends_in_flight", "Sends appended and not yet answered (bounded by MaxInFlightSends).",
		b.sends.inflight.Load)
	gauge("ringmq_broker_sends_in_flight_max", "MaxInFlightSends: past it sends are answered SYSTEM_BUSY.",
		func() int64 { return int64(b.cfg.MaxInFlightSends) })
	gauge("ringmq_broker_held_pulls", "Long-polling pulls held until a message arrives or they expire.",
		func() int64 { return int64(b.pulls.held()) })
	gauge("ringmq_broker_held_pulls_max", "MaxHeldPulls: past it pulls are answered SYSTEM_BUSY.",
		func() int64 { return int64(b.cfg.MaxHeldPulls) })
	gauge("ringmq_broker_client_registrations", "Producer and consumer registrations (group, connection) from heartbeats.",
		func() int64 { return int64(b.clients.registrations()) })
	gauge("ringmq_broker_queue_locks", "Orderly-consumption queue locks held.",
		func() int64 { return int64(b.locks.size()) })
	gauge("ringmq_broker_topics", "Topics configured on this broker.",
		func() int64 { topics, _ := b.meta.Topics(); return int64(len(topics)) })
}
