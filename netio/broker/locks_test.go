package broker

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/ringmq/ringmq/engine"
	"github.com/ringmq/ringmq/netio/remoting"
)

func TestLockTable(t *testing.T) {
	const expiry = int64(60 * time.Second)
	tab := newLockTable(expiry, 4)
	q0 := mqRef{Topic: "T", BrokerName: "b", QueueID: 0}
	q1 := mqRef{Topic: "T", BrokerName: "b", QueueID: 1}
	now := int64(1000)

	got, _ := tab.tryLock("g", lockClient{id: "c1", connID: 1}, []mqRef{q0, q1}, now)
	if len(got) != 2 {
		t.Fatalf("c1 first lock: got %v, want both queues", got)
	}
	// Another client cannot take them before expiry.
	got, _ = tab.tryLock("g", lockClient{id: "c2", connID: 2}, []mqRef{q0, q1}, now+expiry)
	if len(got) != 0 {
		t.Fatalf("c2 before expiry: got %v, want none", got)
	}
	// Another group is independent.
	got, _ = tab.tryLock("g2", lockClient{id: "c2", connID: 2}, []mqRef{q0}, now)
	if len(got) != 1 {
		t.Fatalf("c2 in another group: got %v, want q0", got)
	}
	// The holder renews q0 only.
	got, _ = tab.tryLock("g", lockClient{id: "c1", connID: 1}, []mqRef{q0}, now+expiry/2)
	if len(got) != 1 {
		t.Fatalf("c1 renew: got %v", got)
	}
	// Past q1's expiry but not q0's: c2 takes q1.
	got, _ = tab.tryLock("g", lockClient{id: "c2", connID: 2}, []mqRef{q0, q1}, now+expiry+1)
	if len(got) != 1 || got[0] != q1 {
		t.Fatalf("c2 after q1 expiry: got %v, want [q1]", got)
	}
	if h, _ := tab.holder("g", "T", 1, now+expiry+1); h != "c2" {
		t.Fatalf("q1 holder: got %q, want c2", h)
	}
	// Only the owner unlocks.
	tab.unlock("g", "c2", []mqRef{q0})
	if h, ok := tab.holder("g", "T", 0, now+expiry); !ok || h != "c1" {
		t.Fatalf("after a non-owner unlock: holder %q %v, want c1", h, ok)
	}
	tab.unlock("g", "c1", []mqRef{q0})
	if _, ok := tab.holder("g", "T", 0, now+expiry); ok {
		t.Fatal("q0 still held after the owner unlocked")
	}
	// Closing c2's connection frees its locks at once.
	tab.dropConn(2)
	got, _ = tab.tryLock("g", lockClient{id: "c3", connID: 3}, []mqRef{q1}, now+expiry+2)
	if len(got) != 1 {
		t.Fatalf("c3 after c2's connection closed: got %v", got)
	}
}

func TestLockTableFull(t *testing.T) {
	tab := newLockTable(int64(time.Minute), 2)
	mqs := []mqRef{{Topic: "T", QueueID: 0}, {Topic: "T", QueueID: 1}, {Topic: "T", QueueID: 2}}
	got, full := tab.tryLock("g", lockClient{id: "c", connID: 1}, mqs, 0)
	if len(got) != 2 || !full {
		t.Fatalf("got %v full=%v, want 2 locked and full", got, full)
	}
	tab.sweep(int64(2 * time.Minute))
	got, full = tab.tryLock("g", lockClient{id: "c", connID: 1}, mqs[2:], int64(2*time.Minute))
	if len(got) != 1 || full {
		t.Fatalf("after sweep: got %v full=%v", got, full)
	}
}

// freed records what a lock table hands to onFree.
type freed struct{ calls [][]string }

func (f *freed) record(ws []lockWaiter) {
	var names []string
	for _, w := range ws {
		names = append(names, fmt.Sprintf("%s/%s@%d", w.group, w.id, w.connID))
	}
	slices.Sort(names)
	f.calls = append(f.calls, names)
}

// take returns the calls so far and forgets them.
func (f *freed) take() [][]string {
	c := f.calls
	f.calls = nil
	return c
}

func TestLockTableWaiters(t *testing.T) {
	const expiry = int64(10 * time.Second)
	q0 := mqRef{Topic: "T", QueueID: 0}
	q1 := mqRef{Topic: "T", QueueID: 1}
	c1 := lockClient{id: "c1", connID: 1}
	c2 := lockClient{id: "c2", connID: 2}
	c3 := lockClient{id: "c3", connID: 3}

	t.Run("unlock", func(t *testing.T) {
		tab, f := newLockTable(expiry, 16), &freed{}
		tab.setOnFree(f.record)
		tab.tryLock("g", c1, []mqRef{q0, q1}, 0)
		if got, _ := tab.tryLock("g", c2, []mqRef{q0}, 1); len(got) != 0 {
			t.Fatalf("c2 got %v while c1 holds q0", got)
		}
		tab.tryLock("g", c2, []mqRef{q0}, 2) // asking again is one waiter
		tab.tryLock("g", c3, []mqRef{q0}, 3)
		tab.tryLock("g", c1, []mqRef{q0, q1}, 4) // the holder renews: nobody is told
		tab.unlock("g", "c2", []mqRef{q0})       // not the holder: nothing happens
		if got := f.take(); got != nil {
			t.Fatalf("onFree before q0 was free: %v", got)
		}
		tab.unlock("g", "c1", []mqRef{q0, q1})
		if got, want := f.take(), [][]string{{"g/c2@2", "g/c3@3"}}; !slices.EqualFunc(got, want, slices.Equal) {
			t.Fatalf("onFree after unlock: got %v, want %v", got, want)
		}
		tab.tryLock("g", c2, []mqRef{q0}, 5)
		tab.unlock("g", "c2", []mqRef{q0})
		if got := f.take(); got != nil {
			t.Fatalf("waiters told twice: %v", got)
		}
	})

	t.Run("connection closed", func(t *testing.T) {
		tab, f := newLockTable(expiry, 16), &freed{}
		tab.setOnFree(f.record)
		tab.tryLock("g", c1, []mqRef{q0}, 0)
		tab.tryLock("g", c2, []mqRef{q1}, 0)
		tab.tryLock("g", c2, []mqRef{q0}, 1)
		tab.tryLock("g", c3, []mqRef{q0, q1}, 1)
		tab.dropConn(3) // c3's connection: forgotten as a waiter, holds nothing
		if got := f.take(); got != nil {
			t.Fatalf("onFree after a waiter's connection closed: %v", got)
		}
		tab.dropConn(1)
		if got, want := f.take(), [][]string{{"g/c2@2"}}; !slices.EqualFunc(got, want, slices.Equal) {
			t.Fatalf("onFree after the holder's connection closed: got %v, want %v", got, want)
		}
		if got, _ := tab.tryLock("g", c3, []mqRef{q0}, 2); len(got) != 1 {
			t.Fatalf("q0 after its holder's connection closed: got %v", got)
		}
	})

	t.Run("expiry", func(t *testing.T) {
		tab, f := newLockTable(expiry, 16), &freed{}
		tab.setOnFree(f.record)
		tab.tryLock("g", c1, []mqRef{q0, q1}, 0)
		tab.tryLock("g", c2, []mqRef{q0}, 1)
		tab.tryLock("g", c3, []mqRef{q1}, 1)
		tab.tryLock("g", c1, []mqRef{q1}, expiry/2) // q1 renewed, q0 not
		tab.expireContested(expiry)
		if got := f.take(); got != nil {
			t.Fatalf("onFree at the expiry: %v", got)
		}
		tab.expireContested(expiry + 1)
		if got, want := f.take(), [][]string{{"g/c2@2"}}; !slices.EqualFunc(got, want, slices.Equal) {
			t.Fatalf("onFree after q0 expired: got %v, want %v", got, want)
		}
		tab.expireContested(expiry + 2) // told once
		if got := f.take(); got != nil {
			t.Fatalf("onFree again: %v", got)
		}
		if h, ok := tab.holder("g", "T", 0, expiry+2); ok {
			t.Fatalf("q0 held by %s after expiry", h)
		}
		if got, _ := tab.tryLock("g", c2, []mqRef{q0}, expiry+3); len(got) != 1 {
			t.Fatalf("c2 after q0 expired: got %v", got)
		}
		tab.expireContested(expiry/2 + expiry + 1)
		if got, want := f.take(), [][]string{{"g/c3@3"}}; !slices.EqualFunc(got, want, slices.Equal) {
			t.Fatalf("onFree after q1 expired: got %v, want %v", got, want)
		}
	})

	t.Run("the waiter takes it", func(t *testing.T) {
		tab, f := newLockTable(expiry, 16), &freed{}
		tab.setOnFree(f.record)
		tab.tryLock("g", c1, []mqRef{q0}, 0)
		tab.tryLock("g", c2, []mqRef{q0}, 1)
		tab.tryLock("g", c2, []mqRef{q0}, expiry+1) // expired: c2 takes it and stops waiting
		tab.expireContested(2*expiry + 2)
		tab.unlock("g", "c2", []mqRef{q0})
		if got := f.take(); got != nil {
			t.Fatalf("onFree for a waiter that took the queue: %v", got)
		}
	})

	t.Run("bounded", func(t *testing.T) {
		tab, f := newLockTable(expiry, 16), &freed{}
		tab.setOnFree(f.record)
		tab.tryLock("g", c1, []mqRef{q0}, 0)
		for i := range 2 * maxLockWaiters {
			tab.tryLock("g", lockClient{id: fmt.Sprintf("w%02d", i), connID: uint64(100 + i)}, []mqRef{q0}, 1)
		}
		tab.unlock("g", "c1", []mqRef{q0})
		got := f.take()
		if len(got) != 1 || len(got[0]) != maxLockWaiters {
			t.Fatalf("onFree: got %v, want one call with %d waiters", got, maxLockWaiters)
		}
	})
}

// TestLockWaiterNotified: a client refused a queue gets NOTIFY_CONSUMER_IDS_CHANGED for its
// group when the queue becomes free: its holder unlocks it, the holder's connection closes,
// or the lock expires. The holder renewing it tells nobody.
func TestLockWaiterNotified(t *testing.T) {
	const expiry = time.Second
	tb := startBroker(t, "", nil, func(c *Config, _ *engine.Config) { c.OrderlyLockExpiry = expiry })
	notified := make(chan string, 16)
	waiter := tb.dial(func(_ *remoting.Client, req *remoting.Command) {
		if req.Code == remoting.ReqNotifyConsumerIDsChanged {
			notified <- req.ExtString("consumerGroup")
		}
	})
	refused := func(holder *remoting.Client, q int) {
		t.Helper()
		if got := lockedQueues(t, invoke(t, waiter, remoting.ReqLockBatchMQ, nil, lockBody("g", "w", q))); len(got) != 0 {
			t.Fatalf("waiter took queue %d from its holder: %v", q, got)
		}
	}
	none := func(what string, d time.Duration) {
		t.Helper()
		select {
		case g := <-notified:
			t.Fatalf("%s: notified for %q", what, g)
		case <-time.After(d):
		}
	}

	holder := tb.dial(nil)
	lockedQueues(t, invoke(t, holder, remoting.ReqLockBatchMQ, nil, lockBody("g", "h", 0, 1, 2)))
	refused(holder, 0)
	wantCode(t, invoke(t, holder, remoting.ReqUnlockBatchMQ, nil, lockBody("g", "h", 0)), remoting.RespSuccess)
	if g := recvWithin(t, notified); g != "g" {
		t.Fatalf("after unlock: notify for group %q, want g", g)
	}

	refused(holder, 1)
	holder.Close()
	if g := recvWithin(t, notified); g != "g" {
		t.Fatalf("after the holder's connection closed: notify for group %q, want g", g)
	}

	renewer := tb.dial(nil)
	lockedQueues(t, invoke(t, renewer, remoting.ReqLockBatchMQ, nil, lockBody("g", "r", 3)))
	refused(renewer, 3)
	for range 4 { // renewed within the expiry: still held, nobody told
		<-time.After(expiry / 4)
		if got := lockedQueues(t, invoke(t, renewer, remoting.ReqLockBatchMQ, nil, lockBody("g", "r", 3))); len(got) != 1 {
			t.Fatalf("renewal refused: %v", got)
		}
	}
	none("while renewed", 0)
	if g := recvWithin(t, notified); g != "g" { // no longer renewed: expires
		t.Fatalf("after expiry: notify for group %q, want g", g)
	}
	if got := lockedQueues(t, invoke(t, waiter, remoting.ReqLockBatchMQ, nil, lockBody("g", "w", 3))); len(got) != 1 {
		t.Fatalf("waiter after the expiry: got %v, want queue 3", got)
	}
	none("after the waiter took the queue", 2*expiry)
}
