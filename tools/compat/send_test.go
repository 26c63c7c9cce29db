package compat

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/primitive"
)

// Scenario 1 sizes: 10,000 messages in each mode.
const (
	syncSends       = 10000
	asyncSends      = 10000
	onewaySends     = 10000
	sendWorkers     = 4   // goroutines doing sync sends
	maxAsyncPending = 256 // async sends not yet answered
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

	// Oneway: no answer; the consumer is the only witness.
	for i := range onewaySends {
		m, s := newTestMsg(topic, "oneway", i)
		l.addSent(s)
		all = append(all, s.id)
		if err := p.SendOneWay(ctx, m); err != nil {
			t.Fatalf("oneway send %s: %v", s.id, err)
		}
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
