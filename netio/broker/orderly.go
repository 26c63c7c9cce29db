package broker

import (
	"encoding/json"
	"time"

	"github.com/ringmq/ringmq/netio/remoting"
	"github.com/ringmq/ringmq/perf"
)

// lockBatchBody is the body of LOCK_BATCH_MQ / UNLOCK_BATCH_MQ (PROTOCOL.md §2.10).
type lockBatchBody struct {
	ConsumerGroup string  `json:"consumerGroup"`
	ClientID      string  `json:"clientId"`
	MQSet         []mqRef `json:"mqSet"`
}

// maxLockBatch bounds the queues of one lock request.
const maxLockBatch = 4096

func (b *Broker) parseLockBody(c *remoting.Conn, req *remoting.Command) (*lockBatchBody, bool) {
	var body lockBatchBody
	if err := json.Unmarshal(req.Body, &body); err != nil {
		b.replyError(c, req, remoting.RespSystemError, "bad lock body: "+err.Error())
		return nil, false
	}
	if body.ConsumerGroup == "" || body.ClientID == "" || len(body.MQSet) > maxLockBatch {
		b.replyError(c, req, remoting.RespSystemError, "bad lock body: consumerGroup and clientId are required, at most 4096 queues")
		return nil, false
	}
	return &body, true
}

// handleLock serves LOCK_BATCH_MQ (41): answers the subset of the queues the client holds.
func (b *Broker) handleLock(c *remoting.Conn, req *remoting.Command) {
	body, ok := b.parseLockBody(c, req)
	if !ok {
		return
	}
	b.startLockWatch()
	b.clients.watch(c)
	client := lockClient{id: body.ClientID, connID: c.ID(), conn: c}
	locked, full := b.locks.tryLock(body.ConsumerGroup, client, body.MQSet, perf.Now())
	if full && len(locked) == 0 {
		b.replyError(c, req, remoting.RespSystemBusy, "[REJECTREQUEST]system busy: the queue lock table is full")
		return
	}
	if locked == nil {
		locked = []mqRef{}
	}
	b.replyJSON(c, req, struct {
		LockOKMQSet []mqRef `json:"lockOKMQSet"`
	}{locked})
}

// handleUnlock serves UNLOCK_BATCH_MQ (42): only the holder's locks are released.
func (b *Broker) handleUnlock(c *remoting.Conn, req *remoting.Command) {
	body, ok := b.parseLockBody(c, req)
	if !ok {
		return
	}
	b.locks.unlock(body.ConsumerGroup, body.ClientID, body.MQSet)
	b.replyOK(c, req)
}

// startLockWatch connects the lock table to the broker on the first lock request: freed
// queues' waiters are told to rebalance, and a goroutine looks for expired contested locks
// every lockTable.checkInterval until Shutdown. It runs on a request's goroutine, so never
// after Shutdown has drained the server and waits for b.bg.
func (b *Broker) startLockWatch() {
	b.locks.watchOnce.Do(func() {
		b.locks.setOnFree(b.notifyLockWaiters)
		b.bg.Add(1)
		go func() {
			defer b.bg.Done()
			t := time.NewTicker(b.locks.checkInterval())
			defer t.Stop()
			for {
				select {
				case <-b.stop:
					return
				case <-t.C:
					b.locks.expireContested(perf.Now())
				}
			}
		}()
	})
}

// notifyLockWaiters sends NOTIFY_CONSUMER_IDS_CHANGED (40, oneway) for the group to each
// waiter's connection, once per (group, connection): the Go client rebalances on it and
// locks the queues it is assigned, among them the one now free. Java's broker sends it
// only when a group's members change; the waiter would otherwise retry at its next
// periodic rebalance (docs/differences.md).
func (b *Broker) notifyLockWaiters(ws []lockWaiter) {
	type target struct {
		group  string
		connID uint64
	}
	seen := make(map[target]bool, len(ws))
	byGroup := map[string]int{} // group -> index in notices
	var notices []notice
	for _, w := range ws {
		if w.conn == nil || w.conn.Closed() || seen[target{w.group, w.connID}] {
			continue
		}
		seen[target{w.group, w.connID}] = true
		i, ok := byGroup[w.group]
		if !ok {
			i = len(notices)
			byGroup[w.group] = i
			notices = append(notices, notice{group: w.group})
		}
		notices[i].conns = append(notices[i].conns, w.conn)
	}
	b.clients.notify(notices)
}
