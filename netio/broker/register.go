package broker

import (
	"context"

	"github.com/ringmq/ringmq/netio/namesrv"
)

// registration keeps the broker registered with every name server through
// namesrv.Registrar: at Start, every RegisterInterval, at once after a topic is created or
// deleted (trigger), and unregistered at Shutdown. Without name servers it does nothing.
type registration struct {
	r *namesrv.Registrar // nil: no name servers configured
}

func newRegistration(b *Broker) (*registration, error) {
	if len(b.cfg.NamesrvAddrs) == 0 {
		return &registration{}, nil
	}
	r := namesrv.NewRegistrar(namesrv.RegistrarConfig{
		NameServers:  b.cfg.NamesrvAddrs,
		ClusterName:  b.cfg.BrokerClusterName,
		BrokerName:   b.cfg.BrokerName,
		BrokerID:     b.cfg.BrokerID,
		BrokerAddr:   b.storeHost.String(),
		HAServerAddr: haAddr(b),
		Interval:     b.cfg.RegisterInterval,
		Logger:       b.log,
	}, b.registeredTopics)
	return &registration{r: r}, nil
}

// haAddr is the HA address RocketMQ registers: the listen port + 1.
func haAddr(b *Broker) string {
	ap := b.storeHost
	if ap.Port() == 65535 {
		return ap.String()
	}
	return ap.Addr().String() + ":" + itoa(int(ap.Port())+1)
}

// registeredTopics is what the name servers route: every topic config in the table.
func (b *Broker) registeredTopics() []namesrv.TopicConfig {
	topics, _ := b.meta.Topics()
	out := make([]namesrv.TopicConfig, 0, len(topics))
	for _, tc := range topics {
		out = append(out, namesrv.TopicConfig{
			TopicName: tc.TopicName, ReadQueueNums: tc.ReadQueueNums, WriteQueueNums: tc.WriteQueueNums,
			Perm: tc.Perm, TopicSysFlag: tc.TopicSysFlag, Order: tc.Order,
		})
	}
	return out
}

func (r *registration) start() {
	if r.r != nil {
		r.r.Start()
	}
}

// trigger asks for a registration now (after a topic change); it does not block.
func (r *registration) trigger() {
	if r.r != nil {
		r.r.TriggerNow()
	}
}

func (r *registration) stop(ctx context.Context) error {
	if r.r == nil {
		return nil
	}
	return r.r.Stop(ctx)
}
