package broker

import (
	"sync"
	"time"

	"github.com/ringmq/ringmq/netio/remoting"
)

// Limits of the orderly-consumption lock table.
const (
	// DefaultMaxLocks bounds the table (one entry per (group, queue)).
	DefaultMaxLocks = 1 << 20
	// maxLockWaiters bounds the clients remembered per queue as refused (see lockTable).
	// A group rarely has more members contending for one queue; one refused beyond it
	// retries at its own next rebalance, as with a Java broker.
	maxLockWaiters = 8
)

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

// lockClient is the client behind one lock request: its id and the connection it came on.
type lockClient struct {
	id     string
	connID uint64
	conn   *remoting.Conn // where a waiter is told the queue is free; nil in unit tests
}

// lockWaiter is a client that was refused a queue of group, to be told when it is free.
type lockWaiter struct {
	group string
	lockClient
}

type lockEntry struct {
	clientID string
	connID   uint64 // the connection that took or last renewed the lock
	lastNs   int64  // last lock or renewal, perf.Now() nanoseconds
	waiters  []lockClient
}

// lockTable is the orderly-consumption lock table (PROTOCOL.md §2.10), with the semantics of
// Java's RebalanceLockManager: a queue of a group is locked by one client id; the holder
// renews it by locking again (also after it expired, when nobody took it meanwhile); another
// client may take it only once it has not been renewed for expiryNs; only the holder
// unlocks. Two additions, for orderly failover with clients that do not unlock a queue a
// rebalance took from them (the Go client v2.1.2, docs/differences.md):
//
//   - a client's locks go away when the connection it took or renewed them on closes;
//   - a client refused a queue is remembered as a waiter, and when the queue becomes free
//     (its holder unlocks it, the holder's connection closes, or the lock expires) the
//     table hands the waiters to onFree, which tells them to rebalance (the broker sends
//     NOTIFY_CONSUMER_IDS_CHANGED), so they lock it at once instead of at their next
//     periodic rebalance (20 s in the Go client).
//
// Times are passed in, so tests drive the clock. Safe for concurrent use; no system call
// and no onFree call under mu.
type lockTable struct {
	expiryNs  int64
	max       int
	watchOnce sync.Once // starts the broker's expiry watch (see Broker.watchLocks)
	mu        struct {
		sync.Mutex
		m         map[lockKey]*lockEntry
		contested map[lockKey]struct{} // entries with waiters
		onFree    func([]lockWaiter)   // nil until set
	}
}

func newLockTable(expiryNs int64, maxLocks int) *lockTable {
	if expiryNs <= 0 || maxLocks <= 0 {
		panic("BUG: newLockTable: expiry and maximum must be positive")
	}
	t := &lockTable{expiryNs: expiryNs, max: maxLocks}
	t.mu.m = make(map[lockKey]*lockEntry)
	t.mu.contested = make(map[lockKey]struct{})
	return t
}

// checkInterval is how often expired contested locks are looked for: a tenth of the
// expiry, within 100 ms .. 1 s.
func (t *lockTable) checkInterval() time.Duration {
	return min(max(time.Duration(t.expiryNs/10), 100*time.Millisecond), time.Second)
}

// tryLock locks or renews each of mqs for c and returns the subset that c holds
// afterwards. full reports that some queues were refused only because the table is at its
// maximum. A queue refused because another client holds it makes c one of its waiters.
func (t *lockTable) tryLock(group string, c lockClient, mqs []mqRef, nowNs int64) (locked []mqRef, full bool) {
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
			t.mu.m[k] = &lockEntry{clientID: c.id, connID: c.connID, lastNs: nowNs}
		case e.clientID == c.id || nowNs-e.lastNs > t.expiryNs:
			e.clientID, e.connID, e.lastNs = c.id, c.connID, nowNs
			t.removeWaiterLocked(k, e, func(w lockClient) bool { return w.id == c.id })
		default:
			t.addWaiterLocked(k, e, c)
			continue
		}
		locked = append(locked, mq)
	}
	return locked, full
}

func (t *lockTable) addWaiterLocked(k lockKey, e *lockEntry, c lockClient) {
	for i, w := range e.waiters {
		if w.id == c.id {
			e.waiters[i] = c // the latest connection it asked on
			return
		}
	}
	if len(e.waiters) >= maxLockWaiters {
		return
	}
	e.waiters = append(e.waiters, c)
	t.mu.contested[k] = struct{}{}
}

// removeWaiterLocked drops the waiters of e that match drop.
func (t *lockTable) removeWaiterLocked(k lockKey, e *lockEntry, drop func(lockClient) bool) {
	if len(e.waiters) == 0 {
		return
	}
	kept := e.waiters[:0]
	for _, w := range e.waiters {
		if !drop(w) {
			kept = append(kept, w)
		}
	}
	clear(e.waiters[len(kept):])
	e.waiters = kept
	if len(kept) == 0 {
		e.waiters = nil
		delete(t.mu.contested, k)
	}
}

// releaseLocked deletes entry k and appends its waiters to ws.
func (t *lockTable) releaseLocked(k lockKey, e *lockEntry, ws []lockWaiter) []lockWaiter {
	for _, w := range e.waiters {
		ws = append(ws, lockWaiter{group: k.group, lockClient: w})
	}
	delete(t.mu.m, k)
	delete(t.mu.contested, k)
	return ws
}

// setOnFree sets the function that released waiters are handed to.
func (t *lockTable) setOnFree(f func([]lockWaiter)) {
	t.mu.Lock()
	t.mu.onFree = f
	t.mu.Unlock()
}

// unlockMu releases mu and then hands ws, if any, to onFree.
func (t *lockTable) unlockMu(ws []lockWaiter) {
	f := t.mu.onFree
	t.mu.Unlock()
	if len(ws) > 0 && f != nil {
		f(ws)
	}
}

// unlock releases the queues of mqs that clientID holds; others are left alone. The
// released queues' waiters go to onFree.
func (t *lockTable) unlock(group, clientID string, mqs []mqRef) {
	var ws []lockWaiter
	t.mu.Lock()
	for _, mq := range mqs {
		k := lockKey{group, mq.Topic, mq.QueueID}
		if e, ok := t.mu.m[k]; ok && e.clientID == clientID {
			ws = t.releaseLocked(k, e, ws)
		}
	}
	t.unlockMu(ws)
}

// dropConn releases every lock last taken or renewed over the connection connID and
// forgets the waiters that asked on it; the released queues' other waiters go to onFree.
func (t *lockTable) dropConn(connID uint64) {
	var ws []lockWaiter
	t.mu.Lock()
	for k := range t.mu.contested {
		e := t.mu.m[k]
		t.removeWaiterLocked(k, e, func(w lockClient) bool { return w.connID == connID })
	}
	for k, e := range t.mu.m {
		if e.connID == connID {
			ws = t.releaseLocked(k, e, ws)
		}
	}
	t.unlockMu(ws)
}

// expireContested hands to onFree the waiters of every contested lock that expired before
// nowNs, and forgets them (the entry stays, for its holder to renew or another to take).
func (t *lockTable) expireContested(nowNs int64) {
	var ws []lockWaiter
	t.mu.Lock()
	for k := range t.mu.contested {
		e := t.mu.m[k]
		if nowNs-e.lastNs <= t.expiryNs {
			continue
		}
		for _, w := range e.waiters {
			ws = append(ws, lockWaiter{group: k.group, lockClient: w})
		}
		e.waiters = nil
		delete(t.mu.contested, k)
	}
	t.unlockMu(ws)
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

// sweep drops entries that expired before nowNs, so the table does not keep dead clients;
// their waiters go to onFree.
func (t *lockTable) sweep(nowNs int64) {
	var ws []lockWaiter
	t.mu.Lock()
	for k, e := range t.mu.m {
		if nowNs-e.lastNs > t.expiryNs {
			ws = t.releaseLocked(k, e, ws)
		}
	}
	t.unlockMu(ws)
}

// size returns the number of entries (held or expired but not yet swept).
func (t *lockTable) size() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.mu.m)
}
