package compat

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/primitive"
)

// Scenario 1 sizes: 10,000 messages in all.
const (
	syncSends       = 4000
	asyncSends      = 4000
	onewaySends     = 2000
	sendWorkers     = 4  // goroutines doing sync sends
	maxAsyncPending = 64 // async sends not yet answered (each must be answered within 3 s)
	// onewayRound is how many oneway sends go out before the test waits for the consumer
	// to see them. A oneway send has no answer to pace it; a broker at its in-flight bound
	// sheds it with SYSTEM_BUSY, which the client drops unseen (RocketMQ does the same),
	// so an unpaced burst may lose messages by design.
	onewayRound = 1000
)

// TestSendModesPushConsume: sync, async and oneway sends with tags, keys and user
// properties; one clustering push consumer from the first offset receives every
// message exactly once, exactly as sent (and where the send result said it went).
func TestSendModesPushConsume(t *testing.T) {
	c := startCluster(t, clusterOptions{})
	const topic = "compat-send-modes"
	c.createTopic(topic, defaultQueues)
	l := newLedger()
	c.newPushConsumer("compat-send-modes-g", "consumer", topic, l)
	p := c.newProducer()

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var all []string

	// Sync: sendWorkers goroutines, each its share of the series in order.
	var wg sync.WaitGroup
	errs := make(chan error, sendWorkers)
	for w := range sendWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < syncSends; i += sendWorkers {
				m, s := newTestMsg(topic, "sync", i)
				if err := sendSync(ctx, p, l, m, s); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("sync send: %v", err)
	}
	for i := range syncSends {
		all = append(all, fmt.Sprintf("sync-%06d", i))
	}

	// Async: at most maxAsyncPending unanswered; every callback must report SEND_OK.
	var (
		pending   = make(chan struct{}, maxAsyncPending)
		asyncErrs lockedLog
		failed    int
		mu        sync.Mutex
	)
	for i := range asyncSends {
		m, s := newTestMsg(topic, "async", i)
		l.addSent(s)
		all = append(all, s.id)
		select {
		case pending <- struct{}{}:
		case <-ctx.Done():
			t.Fatalf("async send %d: %v", i, ctx.Err())
		}
		wg.Add(1)
		err := p.SendAsync(ctx, func(_ context.Context, res *primitive.SendResult, err error) {
			defer wg.Done()
			defer func() { <-pending }()
			switch {
			case err != nil:
				asyncErrs.add("%s: %v", s.id, err)
			case res.Status != primitive.SendOK:
				asyncErrs.add("%s: status %v", s.id, res.Status)
			default:
				l.ack(s.id, res)
				return
			}
			mu.Lock()
			failed++
			mu.Unlock()
		}, m)
		if err != nil {
			t.Fatalf("async send %s: %v", s.id, err)
		}
	}
	waitGroupOrFail(t, &wg, 30*time.Second, "async send callbacks")
	if failed > 0 {
		t.Fatalf("%d async sends failed, want 0:\n%s", failed, asyncErrs.String())
	}

	// Oneway: no answer; the consumer is the only witness, and paces the rounds.
	for start := 0; start < onewaySends; start += onewayRound {
		var round []string
		for i := start; i < min(start+onewayRound, onewaySends); i++ {
			m, s := newTestMsg(topic, "oneway", i)
			l.addSent(s)
			round = append(round, s.id)
			if err := p.SendOneWay(ctx, m); err != nil {
				t.Fatalf("oneway send %s: %v", s.id, err)
			}
		}
		l.waitReceived(t, round, 30*time.Second)
		all = append(all, round...)
	}

	l.waitReceived(t, all, 60*time.Second)
	l.checkExact(t, all)
	t.Logf("sent and received %d messages (%d sync, %d async, %d oneway)", len(all), syncSends, asyncSends, onewaySends)
}

// waitGroupOrFail waits for wg, failing the test after timeout.
func waitGroupOrFail(t testing.TB, wg *sync.WaitGroup, timeout time.Duration, what string) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(timeout):
		t.Fatalf("%s: not done within %v", what, timeout)
	}
}
