package broker

import (
	"sync"
)

// DefaultMaxLocks bounds the orderly-consumption lock table (one entry per (group, queue)).
const DefaultMaxLocks = 1 << 20

// mqRef names a message queue as lock requests carry it.
type mqRef struct {
	Topic      string `json:"topic"`
	BrokerName string `json:"brokerName"`
	QueueID    int32  `json:"queueId"`
}

type lockKey struct {
	group, topic string
	queueID      int32
}

type lockEntry struct {
	clientID string
	connID   uint64 // the connection that took or last renewed the lock
	lastNs   int64  // last lock or renewal, perf.Now() nanoseconds
}

// lockTable is the orderly-consumption lock table (PROTOCOL.md §2.10): a queue of a group
// is locked by one client id; the holder renews it by locking again; another client may
// take it only once it has not been renewed for expiryNs; only the holder unlocks; a
// client's locks go away when its connection closes. Times are passed in, so tests drive
// the clock. Safe for concurrent use; no system call under mu.
type lockTable struct {
	expiryNs int64
	max      int
	mu       struct {
		sync.Mutex
		m map[lockKey]*lockEntry
	}
}

func newLockTable(expiryNs int64, maxLocks int) *lockTable {
	if expiryNs <= 0 || maxLocks <= 0 {
		panic("BUG: newLockTable: expiry and maximum must be positive")
	}
	t := &lockTable{expiryNs: expiryNs, max: maxLocks}
	t.mu.m = make(map[lockKey]*lockEntry)
	return t
}

// tryLock locks or renews each of mqs for clientID and returns the subset that clientID
// holds afterwards. full reports that some queues were refused only because the table is
// at its maximum.
func (t *lockTable) tryLock(group, clientID string, connID uint64, mqs []mqRef, nowNs int64) (locked []mqRef, full bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, mq := range mqs {
		k := lockKey{group, mq.Topic, mq.QueueID}
		e, ok := t.mu.m[k]
		switch {
		case !ok:
			if len(t.mu.m) >= t.max {
				full = true
				continue
			}
			t.mu.m[k] = &lockEntry{clientID: clientID, connID: connID, lastNs: nowNs}
		case e.clientID == clientID || nowNs-e.lastNs > t.expiryNs:
			*e = lockEntry{clientID: clientID, connID: connID, lastNs: nowNs}
		default:
			continue
		}
		locked = append(locked, mq)
	}
	return locked, full
}

// unlock releases the queues of mqs that clientID holds; others are left alone.
func (t *lockTable) unlock(group, clientID string, mqs []mqRef) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, mq := range mqs {
		k := lockKey{group, mq.Topic, mq.QueueID}
		if e, ok := t.mu.m[k]; ok && e.clientID == clientID {
			delete(t.mu.m, k)
		}
	}
}

// dropConn releases every lock last taken or renewed over the connection connID.
func (t *lockTable) dropConn(connID uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for k, e := range t.mu.m {
		if e.connID == connID {
			delete(t.mu.m, k)
		}
	}
}

// holder returns the client id holding (group, topic, queueID) at nowNs, if any.
func (t *lockTable) holder(group, topic string, queueID int32, nowNs int64) (string, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.mu.m[lockKey{group, topic, queueID}]
	if !ok || nowNs-e.lastNs > t.expiryNs {
		return "", false
	}
	return e.clientID, true
}

// sweep drops entries that expired before nowNs, so the table does not keep dead clients.
func (t *lockTable) sweep(nowNs int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for k, e := range t.mu.m {
		if nowNs-e.lastNs > t.expiryNs {
			delete(t.mu.m, k)
		}
	}
}

// size returns the number of entries (held or expired but not yet swept).
func (t *lockTable) size() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.mu.m)
}
