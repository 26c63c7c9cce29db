package compat

import (
	"testing"
	"time"
)

// TestDevSmoke: `ringmq dev` (name server and broker in one process, with -c for a
// small segment size and flags for free ports) serves a producer and a consumer. The topic is not created first: the producer's first send goes
// through RocketMQ's auto-create path (TBW102). SIGTERM then stops it with status 0.
func TestDevSmoke(t *testing.T) {
	c := startDev(t)
	const topic = "compat-dev-auto"
	l := newLedger()
	p := c.newProducer()
	ids := sendSeries(t, p, l, topic, "dev", 100)
	c.waitRoute(topic, 0)
	c.newPushConsumer("compat-dev-g", "consumer", topic, l)
	l.waitReceived(t, ids, 30*time.Second)
	l.checkExact(t, ids)
	if err := c.namesrv.stop(); err != nil {
		t.Errorf("ringmq dev: SIGTERM: want exit status 0, got %v", err)
	}
}
