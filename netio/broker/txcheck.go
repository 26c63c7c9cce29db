package broker

import (
	"bytes"
	"errors"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/ringmq/ringmq/engine"
	"github.com/ringmq/ringmq/engine/meta"
	"github.com/ringmq/ringmq/engine/record"
	"github.com/ringmq/ringmq/netio/remoting"
)

// Transaction check defaults (Java BrokerConfig).
const (
	DefaultTransactionCheckInterval = 60 * time.Second // transactionCheckInterval
	DefaultTransactionTimeout       = 6 * time.Second  // transactionTimeOut: age before the first check
	DefaultTransactionCheckMax      = 15               // transactionCheckMax: checks before a half message is dropped
)

// Pseudo groups under which the check service keeps its progress in the offset table:
// queue 0 of each topic, persisted with the consumer offsets.
const (
	txHalfProgressGroup = "%TXCHECK_HALF%"
	txOpProgressGroup   = "%TXCHECK_OP%"
)

// Bounds of the check service.
const (
	maxTxScanPerRound = 1024    // half messages looked at per round
	maxTxOpsPerRound  = 1 << 16 // op records read per round
	maxTxTracked      = 1 << 20 // half messages past the progress point remembered
	maxTxChecksRound  = 256     // checks sent per round (one durable batch of check records)
	maxTxCommitLookup = 16      // index hits looked at for a commit whose op record is missing
)

// txState is what the op records say about one half message past the half progress.
type txState struct {
	firstOp  int64 // op queue offset of the first op record naming it
	checks   int   // checks sent, over all runs (op records tagged "c")
	resolved bool  // committed or rolled back (an op record tagged "d")
	dropped  bool  // checked TransactionCheckMax times; logged once
}

// txCandidate is a half message the current round checks.
type txCandidate struct {
	queueOffset, commitLogOffset int64
	conn                         *remoting.Conn
}

// txChecker asks producers about transactions left open. Everything it knows is in the
// commit log, so it survives any restart:
//
//   - RMQ_SYS_TRANS_OP_HALF_TOPIC holds op records, body = a half queue offset. Tag "d"
//     (Java's REMOVETAG) says END_TRANSACTION committed or rolled the half message back;
//     tag "c" (ringmq's own) says one CHECK_TRANSACTION_STATE was sent for it. A round
//     appends its "c" records and waits until they are durable before it sends the checks,
//     so a crash can lose a check but never its count: the checks of a half message over
//     all runs never exceed TransactionCheckMax. (Java counts by re-storing the half
//     message with TRANSACTION_CHECK_TIMES incremented; docs/differences.md.)
//   - Two progress points, in the offset table: the half progress (every half message
//     below it needs nothing more) and the op progress (no op record below it names a
//     half message at or past the half progress). A restart reads op records from the op
//     progress and half messages from the half progress, not from the start.
//
// Every TransactionCheckInterval a round reads the new op records, then walks the half
// messages from the half progress: a resolved one is passed; one younger than
// TransactionTimeout ends the round; one checked TransactionCheckMax times is dropped with
// a log line; one whose commit is in its real topic (the broker died between the commit
// and its op record) gets its missing op record; any other is checked on a connection of
// its producer group (PGROUP), which answers with END_TRANSACTION. No check is sent while
// op records remain unread, so a resolved transaction is not asked about.
// One goroutine; no lock of its own.
type txChecker struct {
	b       *Broker
	loaded  bool               // the progress points were read from the offset table
	halves  map[int64]*txState // half queue offset -> state, for offsets >= halfNext
	ownOps  map[int64]struct{} // op offsets of "c" records this run wrote and counted
	opNext  int64              // next op record to read
	halfMin int64              // the half progress
	res     engine.GetResult
	cands   []txCandidate
	msgs    []engine.Message
	puts    []engine.PutResult
	// rounds and opsRead count the rounds run and op records read (tests read them).
	rounds, opsRead atomic.Int64
}

func newTxChecker(b *Broker) *txChecker {
	return &txChecker{b: b, halves: make(map[int64]*txState), ownOps: make(map[int64]struct{})}
}

func (t *txChecker) run(stop <-chan struct{}) {
	tick := time.NewTicker(t.b.cfg.TransactionCheckInterval)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
			t.round(time.Now(), stop)
		}
	}
}

// round is one pass: read op records, walk half messages, send checks, save progress.
func (t *txChecker) round(now time.Time, stop <-chan struct{}) {
	b := t.b
	if !t.loaded {
		t.opNext, _ = b.meta.QueryOffset(TopicTransOpHalf, txOpProgressGroup, 0)
		t.halfMin, _ = b.meta.QueryOffset(TopicTransHalf, txHalfProgressGroup, 0)
		t.opNext, t.halfMin = max(t.opNext, 0), max(t.halfMin, 0)
		t.loaded = true
	}
	caughtUp := t.readOps()
	t.cands = t.cands[:0]
	t.walkHalves(now, caughtUp)
	t.sendChecks(stop)
	t.saveProgress()
	t.rounds.Add(1)
}

// readOps applies the op records from opNext on; it reports whether it read them all.
func (t *txChecker) readOps() bool {
	b := t.b
	end := b.store.MaxOffset(TopicTransOpHalf, 0)
	t.opNext = max(t.opNext, b.store.MinOffset(TopicTransOpHalf, 0))
	for read := 0; t.opNext < end && read < maxTxOpsPerRound; {
		if err := b.store.GetMessages(TopicTransOpHalf, 0, t.opNext, scheduleBatch, DefaultMaxPullBytes, nil, &t.res); err != nil || t.res.Status != engine.Found {
			t.res.Release()
			break
		}
		full := false
		for _, rec := range t.res.Records {
			v, err := record.Decode(rec)
			if err != nil {
				t.opNext++ // the records are consecutive: pass the one that does not decode
			} else if !t.applyOp(v) {
				full = true
				break
			} else {
				t.opNext = v.QueueOffset() + 1
			}
			read++
			t.opsRead.Add(1)
		}
		t.res.Release()
		if full {
			break
		}
	}
	return t.opNext >= end
}

// applyOp records one op record; false when the table is full (the record is not read).
func (t *txChecker) applyOp(v record.View) bool {
	tag, _ := v.Property(record.PropTags)
	if _, own := t.ownOps[v.QueueOffset()]; own && string(tag) == opCheckTag {
		delete(t.ownOps, v.QueueOffset()) // counted when written
		return true
	}
	body := v.Body()
	if len(t.halves)+bytes.Count(body, []byte{','})+1 > maxTxTracked {
		return false // all or nothing: a check record must not count twice
	}
	for len(body) > 0 { // Java 5 writes "q1,q2,...": accept it
		item := body
		if i := bytes.IndexByte(body, ','); i >= 0 {
			item, body = body[:i], body[i+1:]
		} else {
			body = nil
		}
		q, err := parseInt64(item)
		if err != nil || q < t.halfMin {
			continue
		}
		st := t.halves[q]
		if st == nil {
			st = &txState{firstOp: v.QueueOffset()}
			t.halves[q] = st
		}
		switch string(tag) {
		case opTag:
			st.resolved = true
		case opCheckTag:
			st.checks++
		}
	}
	return true
}

// walkHalves walks the half messages from the half progress, moving it past the ones
// that need nothing more, and collects the ones to check.
func (t *txChecker) walkHalves(now time.Time, caughtUp bool) {
	b := t.b
	t.halfMin = max(t.halfMin, b.store.MinOffset(TopicTransHalf, 0))
	offset, contiguous := t.halfMin, true
	for scanned := 0; scanned < maxTxScanPerRound && len(t.cands) < maxTxChecksRound; {
		if err := b.store.GetMessages(TopicTransHalf, 0, offset, scheduleBatch, DefaultMaxPullBytes, nil, &t.res); err != nil || t.res.Status != engine.Found {
			t.res.Release()
			break
		}
		young := false
		for _, rec := range t.res.Records {
			scanned++
			v, err := record.Decode(rec)
			if err != nil { // cannot be resolved or checked: pass it
				if offset++; contiguous {
					t.halfMin = offset
				}
				continue
			}
			q := v.QueueOffset()
			done := t.settle(v, now, caughtUp, &young)
			if young {
				break
			}
			if done && contiguous {
				t.halfMin = q + 1
			} else {
				contiguous = false
			}
			offset = q + 1
		}
		t.res.Release()
		if young {
			break
		}
	}
	for q := range t.halves {
		if q < t.halfMin {
			delete(t.halves, q)
		}
	}
}

// settle decides about one half message: true when it needs nothing more (resolved or
// dropped). young is set when it is too recent to check, which ends the round.
func (t *txChecker) settle(v record.View, now time.Time, caughtUp bool, young *bool) bool {
	b := t.b
	q := v.QueueOffset()
	st := t.halves[q]
	if st != nil && st.resolved {
		return true
	}
	if now.Sub(time.UnixMilli(v.StoreTimestampMs())) < b.cfg.TransactionTimeout {
		*young = true
		return false
	}
	if st != nil && st.checks >= b.cfg.TransactionCheckMax {
		if !st.dropped {
			st.dropped = true
			b.log.Warn("transaction never resolved; half message dropped after the maximum checks",
				"queueOffset", q, "commitLogOffset", v.PhysicalOffset(), "checks", st.checks)
		}
		return true
	}
	if !caughtUp || len(t.cands) >= maxTxChecksRound {
		return false // unread op records may resolve it: ask next round
	}
	if t.committedInRealTopic(v, now) {
		b.log.Info("transaction committed before a restart without its op record; op record written",
			"queueOffset", q, "commitLogOffset", v.PhysicalOffset())
		b.writeOpRecord(q)
		if st == nil && len(t.halves) < maxTxTracked {
			st = &txState{firstOp: b.store.MaxOffset(TopicTransOpHalf, 0)}
			t.halves[q] = st
		}
		if st != nil {
			st.resolved = true
		}
		return st != nil
	}
	pg, _ := v.Property(record.PropProducerGroup)
	c, ok := b.clients.producerConn(string(pg))
	if !ok {
		return false // no producer of the group is connected: ask again next round
	}
	t.cands = append(t.cands, txCandidate{queueOffset: q, commitLogOffset: v.PhysicalOffset(), conn: c})
	return false
}

// committedInRealTopic reports whether the real topic holds the commit of half message v
// (same UNIQ_KEY, PreparedTransactionOffset = v's commit-log offset, commit flag): the
// state a broker leaves that died after storing a commit and before its op record.
func (t *txChecker) committedInRealTopic(v record.View, now time.Time) bool {
	realTopic, ok1 := v.Property(record.PropRealTopic)
	uniq, ok2 := v.Property(record.PropUniqKey)
	if !ok1 || !ok2 {
		return false
	}
	store := t.b.store
	hits, err := store.QueryByKey(string(realTopic), string(uniq), maxTxCommitLookup, v.StoreTimestampMs(), now.Add(time.Hour).UnixMilli())
	if err != nil {
		t.b.log.Debug("transaction check: commit lookup failed", "err", err)
	}
	for _, phys := range hits {
		rec, release, err := store.ReadRecord(phys)
		if err != nil {
			continue
		}
		c, err := record.Decode(rec)
		found := err == nil && c.PreparedTransactionOffset() == v.PhysicalOffset() &&
			c.SysFlag()&record.SysFlagTxMask == record.SysFlagTxCommit
		release()
		if found {
			return true
		}
	}
	return false
}

// sendChecks makes this round's check records durable, counts them, then sends the checks.
func (t *txChecker) sendChecks(stop <-chan struct{}) {
	b := t.b
	if len(t.cands) == 0 {
		return
	}
	t.msgs, t.puts = t.msgs[:0], t.puts[:0]
	for _, c := range t.cands {
		t.msgs = append(t.msgs, b.opMessage(opCheckTag, c.queueOffset))
		t.puts = append(t.puts, engine.PutResult{})
	}
	if err := t.appendDurable(stop); err != nil {
		b.log.Warn("transaction check records not stored; no checks sent this round", "err", err)
		return
	}
	for i, c := range t.cands {
		st := t.halves[c.queueOffset]
		if st == nil {
			st = &txState{firstOp: t.puts[i].QueueOffset}
			t.halves[c.queueOffset] = st
		}
		st.checks++
		t.ownOps[t.puts[i].QueueOffset] = struct{}{}
		if err := t.sendCheck(c); err != nil {
			b.log.Debug("transaction check not sent", "queueOffset", c.queueOffset, "err", err)
		}
	}
}

var errTxCheckStopped = errors.New("broker shutting down")

// appendDurable appends t.msgs to the op topic in one batch and waits until they are
// durable (under ASYNC_FLUSH: appended).
func (t *txChecker) appendDurable(stop <-chan struct{}) error {
	if _, err := t.b.ensureSystemTopic(TopicTransOpHalf, 1); err != nil {
		return err
	}
	w := &chanWaiter{done: make(chan error, 1)}
	if err := t.b.store.AppendBatch(t.msgs, t.puts, w); err != nil {
		return err
	}
	select {
	case err := <-w.done:
		return err
	case <-stop:
		return errTxCheckStopped
	}
}

// chanWaiter hands an append's outcome to a goroutine that waits for it.
type chanWaiter struct{ done chan error }

func (w *chanWaiter) Done(_ *engine.PutResult, err error) { w.done <- err }

// saveProgress stores the half progress, then the op progress (the smallest op offset a
// half message past the half progress still needs), so the pair on disk is always safe.
func (t *txChecker) saveProgress() {
	b := t.b
	opMin := t.opNext
	for _, st := range t.halves {
		opMin = min(opMin, st.firstOp)
	}
	if err := b.meta.CommitOffset(TopicTransHalf, txHalfProgressGroup, 0, t.halfMin); err != nil {
		b.log.Warn("transaction check: half progress not saved", "err", err)
		return
	}
	if err := b.meta.CommitOffset(TopicTransOpHalf, txOpProgressGroup, 0, opMin); err != nil {
		b.log.Warn("transaction check: op progress not saved", "err", err)
	}
}

// sendCheck sends CHECK_TRANSACTION_STATE for half message c: the header names its queue
// and commit-log offsets and ids; the body is the record with its real topic and queue.
func (t *txChecker) sendCheck(c txCandidate) error {
	rec, release, err := t.b.store.ReadRecord(c.commitLogOffset)
	if err != nil {
		return err
	}
	defer release()
	v, err := record.Decode(rec)
	if err != nil {
		return err
	}
	props := v.Properties()
	realTopic, _ := record.Property(props, record.PropRealTopic)
	realQID, _ := record.Property(props, record.PropRealQueueID)
	h := v.Header()
	if q, err := parseInt32(realQID); err == nil {
		h.QueueID = q
	}
	topic := string(realTopic)
	if !meta.ValidTopicName(topic) {
		topic = TopicTransHalf
	}
	body := record.Append(nil, &h, topic, v.Body(), props)
	uniq, _ := record.Property(props, record.PropUniqKey)
	offsetMsgID := record.AppendOffsetMsgIDHex(nil, record.OffsetMsgID(v.StoreHost(), v.PhysicalOffset()))
	ext := []remoting.Field{
		{Key: []byte("tranStateTableOffset"), Value: strconv.AppendInt(nil, v.QueueOffset(), 10)},
		{Key: []byte("commitLogOffset"), Value: strconv.AppendInt(nil, v.PhysicalOffset(), 10)},
		{Key: []byte("msgId"), Value: uniq},
		{Key: []byte("transactionId"), Value: uniq},
		{Key: []byte("offsetMsgId"), Value: offsetMsgID},
	}
	return c.conn.SendRequestOneway(remoting.ReqCheckTransactionState, ext, body)
}
