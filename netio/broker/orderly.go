package broker

import (
	"encoding/json"

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
	b.clients.watch(c)
	locked, full := b.locks.tryLock(body.ConsumerGroup, body.ClientID, c.ID(), body.MQSet, perf.Now())
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
