package broker

import (
	"fmt"
	"time"

	"github.com/ringmq/ringmq/engine"
	"github.com/ringmq/ringmq/netio/remoting"
	"github.com/ringmq/ringmq/perf"
)

// Pull request sysFlag bits (Java PullSysFlag).
const (
	pullCommitOffset = 0x1
	pullSuspend      = 0x2
	pullSubscription = 0x4
)

// pullState is one PULL_MESSAGE from decoding to the release of its response: pooled. While
// held by the long-poll table it is owned by the table; otherwise by one goroutine at a time.
type pullState struct {
	b          *Broker
	conn       *remoting.Conn
	opaque     int32
	topic      string // the topic table's own string
	queueID    int32
	offset     int64
	maxMsgs    int
	filter     engine.MessageFilter
	deadlineNs int64 // when a held pull expires
	heapIdx    int   // position in the long-poll deadline heap, -1 when not held
	res        engine.GetResult
	stamps     perf.Stamps
	written    func()
}

func (b *Broker) getPull(req *remoting.Command) *pullState {
	p := b.pullPool.Get().(*pullState)
	p.stamps = req.Stamps
	return p
}

// release runs once the response was written (or dropped): the records are unpinned.
func (p *pullState) release() {
	p.res.Release()
	p.put()
}

func (p *pullState) put() {
	p.conn, p.filter, p.topic = nil, nil, "" // p.res was released and keeps its buffers
	p.heapIdx = -1
	p.stamps.Reset()
	p.b.pullPool.Put(p)
}

// pullRequest is the decoded header of a PULL_MESSAGE.
type pullRequest struct {
	group          []byte
	topic          []byte
	queueID        int32
	queueOffset    int64
	maxMsgNums     int64
	sysFlag        int64
	commitOffset   int64
	suspendMs      int64
	subscription   []byte // views into the request, valid during Serve
	expressionType []byte
}

func parsePullRequest(req *remoting.Command, pr *pullRequest) error {
	var err error
	pr.group, _ = req.ExtValue("consumerGroup")
	pr.topic, _ = req.ExtValue("topic")
	q, err := extInt64Required(req, "queueId")
	if err != nil {
		return err
	}
	pr.queueID = int32(q)
	if pr.queueOffset, err = extInt64Required(req, "queueOffset"); err != nil {
		return err
	}
	if pr.maxMsgNums, err = extInt64(req, "maxMsgNums", DefaultMaxPullMsgs); err != nil {
		return err
	}
	if pr.sysFlag, err = extInt64(req, "sysFlag", 0); err != nil {
		return err
	}
	if pr.commitOffset, err = extInt64(req, "commitOffset", -1); err != nil {
		return err
	}
	if pr.suspendMs, err = extInt64(req, "suspendTimeoutMillis", 0); err != nil {
		return err
	}
	if pr.sysFlag&pullSubscription != 0 {
		pr.subscription, _ = req.ExtValue("subscription")
		pr.expressionType, _ = req.ExtValue("expressionType")
	}
	if len(pr.group) == 0 || len(pr.topic) == 0 {
		return fmt.Errorf("consumerGroup and topic are required")
	}
	return nil
}

// handlePull serves PULL_MESSAGE (11).
func (b *Broker) handlePull(c *remoting.Conn, req *remoting.Command) {
	var pr pullRequest
	if err := parsePullRequest(req, &pr); err != nil {
		b.replyError(c, req, remoting.RespSystemError, "bad pull request: "+err.Error())
		return
	}
	tc, ok := b.meta.TopicBytes(pr.topic)
	if !ok {
		// The name server routes %RETRY%<group> before the group's first heartbeat
		// creates it here; a pull that comes first creates it too.
		if _, retry := retryGroup(string(pr.topic)); retry {
			var err error
			tc, err = b.ensureSystemTopic(string(pr.topic), retryQueueNums)
			ok = err == nil
		}
	}
	if !ok {
		b.replyError(c, req, remoting.RespTopicNotExist, fmt.Sprintf("topic[%s] not exist, apply first please", pr.topic))
		return
	}
	if !tc.Readable() {
		b.replyError(c, req, remoting.RespNoPermission, fmt.Sprintf("the topic[%s] pulling message is forbidden (perm %d)", pr.topic, tc.Perm))
		return
	}
	if pr.queueID < 0 || int(pr.queueID) >= tc.ReadQueueNums {
		b.replyError(c, req, remoting.RespSystemError, fmt.Sprintf("queueId[%d] is illegal, topic:[%s] readQueueNums:[%d]", pr.queueID, pr.topic, tc.ReadQueueNums))
		return
	}
	commit := pr.sysFlag&pullCommitOffset != 0 && pr.commitOffset >= 0
	group, f, code, remark := b.pullFilter(&pr, tc.TopicName, commit)
	if code != remoting.RespSuccess {
		b.replyError(c, req, code, remark)
		return
	}
	if commit {
		if group == "" {
			group = string(pr.group)
		}
		if err := b.meta.CommitOffset(tc.TopicName, group, pr.queueID, pr.commitOffset); err != nil {
			b.log.Warn("commit offset on pull failed", "topic", tc.TopicName, "group", group, "err", err)
		}
	}
	p := b.getPull(req)
	p.conn, p.opaque, p.topic, p.queueID, p.offset, p.filter = c, req.Opaque, tc.TopicName, pr.queueID, pr.queueOffset, f
	p.maxMsgs = int(min(max(pr.maxMsgNums, 1), int64(b.cfg.MaxPullMsgs)))
	code = b.runPull(p)
	if code == remoting.RespPullNotFound && pr.sysFlag&pullSuspend != 0 {
		hold := time.Duration(pr.suspendMs) * time.Millisecond
		if !b.cfg.LongPollingEnable {
			hold = b.cfg.ShortPollingTime
		}
		hold = min(hold, b.cfg.MaxPullSuspend)
		if hold > 0 {
			p.res.Release()
			switch b.pulls.hold(p, perf.Now()+int64(hold)) {
			case holdOK:
				return // answered by the long-poll table
			case holdFull:
				p.put()
				b.replyError(c, req, remoting.RespSystemBusy, "[REJECTREQUEST]system busy: too many pulls held")
				return
			case holdClosed:
				code = remoting.RespServiceNotAvailable
			}
		}
	}
	b.answerPull(p, code)
}

// pullFilter returns the filter of a pull: the subscription in the request when the pull
// carries one (pull consumers), else the group's subscription from its heartbeats (push
// consumers never send one on pull); an unknown group or topic subscription gives every
// message (the client filters tags again itself). With it comes, when the group's table was
// read (no subscription carried, or an offset to commit), the group's name as the table
// holds it ("" when unknown), so the commit needs no copy. The group table is locked at
// most once per pull.
func (b *Broker) pullFilter(pr *pullRequest, topic string, commit bool) (string, engine.MessageFilter, int16, string) {
	carried := pr.sysFlag&pullSubscription != 0
	var group string
	var f engine.MessageFilter
	var err error
	if !carried || commit {
		group, f, err = b.clients.lookupConsumer(pr.group, topic)
		if !carried && err != nil {
			return "", nil, remoting.RespSubscriptionParseFailed, "the group's subscription does not compile: " + err.Error()
		}
	}
	if carried {
		if f, err = b.subs.compile(pr.expressionType, pr.subscription); err != nil {
			return "", nil, remoting.RespSubscriptionParseFailed, "parse the consumer's subscription failed: " + err.Error()
		}
	}
	return group, f, remoting.RespSuccess, ""
}

// runPull reads from the store into p.res and returns the response code.
func (b *Broker) runPull(p *pullState) int16 {
	if err := b.store.GetMessages(p.topic, p.queueID, p.offset, p.maxMsgs, b.cfg.MaxPullBytes, p.filter, &p.res); err != nil {
		b.log.Warn("pull: store read failed", "topic", p.topic, "queue", p.queueID, "offset", p.offset, "err", err)
		return remoting.RespSystemError
	}
	return pullCode(p.res.Status, p.offset)
}

// pullCode maps a store status to the pull response code (PROTOCOL.md §2.6, Java
// PullMessageProcessor).
func pullCode(st engine.GetStatus, offset int64) int16 {
	switch st {
	case engine.Found:
		return remoting.RespSuccess
	case engine.NoMatchedMessage, engine.MessageWasRemoving:
		// Retry at NextBeginOffset at once: nothing matched, or the records were deleted
		// under the scan (Java answers MESSAGE_WAS_REMOVING the same way).
		return remoting.RespPullRetryImmediately
	case engine.OffsetFoundNull, engine.OffsetOverflowOne:
		return remoting.RespPullNotFound
	case engine.NoMessageInQueue:
		if offset == 0 {
			return remoting.RespPullNotFound
		}
		return remoting.RespPullOffsetMoved
	case engine.OffsetOverflowBadly, engine.OffsetTooSmall:
		return remoting.RespPullOffsetMoved
	}
	return remoting.RespSystemError
}

// answerPull writes the pull response: the stored records as vectored body views,
// released (with p) once written.
func (b *Broker) answerPull(p *pullState, code int16) {
	r := p.conn.NewResponse()
	r.Code = code
	switch code {
	case remoting.RespSystemError:
		r.SetRemark("store read failed")
	case remoting.RespServiceNotAvailable:
		r.SetRemark("broker shutting down")
	}
	res := &p.res
	r.AddExtInt("nextBeginOffset", res.NextBeginOffset)
	r.AddExtInt("minOffset", res.MinOffset)
	r.AddExtInt("maxOffset", res.MaxOffset)
	r.AddExtInt("suggestWhichBrokerId", 0)
	if code == remoting.RespSuccess {
		r.Body = append(r.Body, res.Records...)
	}
	r.RequestCode, r.Stamps, r.Topic, r.QueueID = remoting.ReqPullMessage, p.stamps, p.topic, p.queueID
	r.OnWritten(p.written)
	p.conn.ReplyTo(p.opaque, r)
}
