package compat

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const (
	crashSenders     = 4
	crashPerSender   = 750 // attempts per sender: 3000 in all
	crashKillAfterOK = 1000
)

// TestSyncFlushKillDuringSends: under SYNC_FLUSH the broker is SIGKILLed while four
// producers send, then restarted on the same data. Every message whose send returned
// SEND_OK, before or after the kill, is consumed afterwards, exactly as sent. (Sends
// that failed around the kill may or may not have been stored; they are not counted.)
func TestSyncFlushKillDuringSends(t *testing.T) {
	c := startCluster(t, clusterOptions{})
	const topic = "compat-crash"
	c.createTopic(topic, defaultQueues)
	l := newLedger()
	p := c.newProducer()

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var (
		okCount  atomic.Int64
		failures atomic.Int64
		killed   = make(chan struct{}) // closed once the broker is SIGKILLed
		back     = make(chan struct{}) // closed once it accepts connections again
		wg       sync.WaitGroup
	)
	for w := range crashSenders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range crashPerSender {
				m, s := newTestMsg(topic, "crash", w*crashPerSender+i)
				if err := sendSync(ctx, p, l, m, s); err != nil {
					failures.Add(1)
					select {
					case <-killed:
					default:
						// A failure with the broker up: report it, keep going.
						t.Errorf("send before the kill: %v", err)
					}
					// Wait for the restart rather than spending attempts on a dead port.
					select {
					case <-back:
					case <-ctx.Done():
						return
					}
					continue
				}
				okCount.Add(1)
			}
		}()
	}

	waitFor(t, 60*time.Second, "acked sends before the kill", func() error {
		if n := okCount.Load(); n < crashKillAfterOK {
			return fmt.Errorf("only %d so far", n)
		}
		return nil
	})
	close(killed) // first, so no failure caused by the kill is reported as one before it
	c.broker.kill()
	okAtKill, killedAt := okCount.Load(), time.Now()
	c.broker.restart()
	c.broker.waitListening(c.brokerAddr)
	close(back)
	restartTook := time.Since(killedAt)
	waitGroupOrFail(t, &wg, 90*time.Second, "senders")
	t.Logf("restart took %v; senders done %v after the kill", restartTook.Round(time.Millisecond),
		time.Since(killedAt).Round(time.Millisecond))
	acked := l.acked()
	t.Logf("acked %d sends (%d at the kill), %d failed", len(acked), okAtKill, failures.Load())
	if int64(len(acked)) <= okAtKill {
		t.Errorf("no send succeeded after the restart (acked %d, %d at the kill)", len(acked), okAtKill)
	}

	consumeStart := time.Now()
	c.newPushConsumer("compat-crash-g", "after-restart", topic, l)
	l.waitReceived(t, acked, 60*time.Second)
	t.Logf("consumed every acked message in %v", time.Since(consumeStart).Round(time.Millisecond))
	l.mu.Lock()
	bad := l.bad
	l.mu.Unlock()
	if len(bad) > 0 {
		t.Errorf("consumed messages differ from what was sent: %v", bad)
	}
}
