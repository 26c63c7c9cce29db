package broker

import (
	"testing"
	"time"
)

func TestLockTable(t *testing.T) {
	const expiry = int64(60 * time.Second)
	tab := newLockTable(expiry, 4)
	q0 := mqRef{Topic: "T", BrokerName: "b", QueueID: 0}
	q1 := mqRef{Topic: "T", BrokerName: "b", QueueID: 1}
	now := int64(1000)

	got, _ := tab.tryLock("g", "c1", 1, []mqRef{q0, q1}, now)
	if len(got) != 2 {
		t.Fatalf("c1 first lock: got %v, want both queues", got)
	}
	// Another client cannot take them before expiry.
	got, _ = tab.tryLock("g", "c2", 2, []mqRef{q0, q1}, now+expiry)
	if len(got) != 0 {
		t.Fatalf("c2 before expiry: got %v, want none", got)
	}
	// Another group is independent.
	got, _ = tab.tryLock("g2", "c2", 2, []mqRef{q0}, now)
	if len(got) != 1 {
		t.Fatalf("c2 in another group: got %v, want q0", got)
	}
	// The holder renews q0 only.
	got, _ = tab.tryLock("g", "c1", 1, []mqRef{q0}, now+expiry/2)
	if len(got) != 1 {
		t.Fatalf("c1 renew: got %v", got)
	}
	// Past q1's expiry but not q0's: c2 takes q1.
	got, _ = tab.tryLock("g", "c2", 2, []mqRef{q0, q1}, now+expiry+1)
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
	got, _ = tab.tryLock("g", "c3", 3, []mqRef{q1}, now+expiry+2)
	if len(got) != 1 {
		t.Fatalf("c3 after c2's connection closed: got %v", got)
	}
}

func TestLockTableFull(t *testing.T) {
	tab := newLockTable(int64(time.Minute), 2)
	mqs := []mqRef{{Topic: "T", QueueID: 0}, {Topic: "T", QueueID: 1}, {Topic: "T", QueueID: 2}}
	got, full := tab.tryLock("g", "c", 1, mqs, 0)
	if len(got) != 2 || !full {
		t.Fatalf("got %v full=%v, want 2 locked and full", got, full)
	}
	tab.sweep(int64(2 * time.Minute))
	got, full = tab.tryLock("g", "c", 1, mqs[2:], int64(2*time.Minute))
	if len(got) != 1 || full {
		t.Fatalf("after sweep: got %v full=%v", got, full)
	}
}
