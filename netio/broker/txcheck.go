package broker

import (
	"strconv"
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
	maxTxTracked      = 1 << 20 // resolved / checked half messages remembered
)

// txChecker asks producers about transactions left open: every TransactionCheckInterval it
// reads the op records (RMQ_SYS_TRANS_OP_HALF_TOPIC, written by END_TRANSACTION) to learn
// which half messages were committed or rolled back, then walks the half messages
// (RMQ_SYS_TRANS_HALF_TOPIC) from its progress point: a resolved one is passed, one younger
// than TransactionTimeout ends the round, any other gets CHECK_TRANSACTION_STATE (39, oneway)
// on a connection of its producer group (PGROUP), at most TransactionCheckMax times, after
// which it is dropped with a log line. The producer answers with END_TRANSACTION on the same
// connection. Check counts live in memory (Java re-stores the half message to count them):
// after a restart a half message may be checked up to TransactionCheckMax times again.
// One goroutine; no lock of its own.
type txChecker struct {
	b        *Broker
	resolved map[int64]struct{} // half queue offsets with an op record
	checks   map[int64]int      // half queue offset -> checks sent
	res      engine.GetResult
}

func newTxChecker(b *Broker) *txChecker {
	return &txChecker{b: b, resolved: make(map[int64]struct{}), checks: make(map[int64]int)}
}

func (t *txChecker) run(stop <-chan struct{}) {
	tick := time.NewTicker(t.b.cfg.TransactionCheckInterval)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
			t.readOps()
			t.checkHalves(time.Now())
		}
	}
}

// readOps adds the half queue offsets named by new op records to the resolved set.
func (t *txChecker) readOps() {
	b := t.b
	offset, _ := b.meta.QueryOffset(TopicTransOpHalf, txOpProgressGroup, 0)
	for range maxTxScanPerRound / scheduleBatch {
		if err := b.store.GetMessages(TopicTransOpHalf, 0, offset, scheduleBatch, DefaultMaxPullBytes, nil, &t.res); err != nil || t.res.Status != engine.Found {
			t.res.Release()
			break
		}
		for _, rec := range t.res.Records {
			if v, err := record.Decode(rec); err == nil {
				if q, err := parseInt64(v.Body()); err == nil && len(t.resolved) < maxTxTracked {
					t.resolved[q] = struct{}{}
				}
			}
		}
		offset = t.res.NextBeginOffset
		t.res.Release()
	}
	_ = b.meta.CommitOffset(TopicTransOpHalf, txOpProgressGroup, 0, offset)
}

// checkHalves walks the half messages from the progress point.
func (t *txChecker) checkHalves(now time.Time) {
	b := t.b
	progress, _ := b.meta.QueryOffset(TopicTransHalf, txHalfProgressGroup, 0)
	progress = max(progress, b.store.MinOffset(TopicTransHalf, 0))
	offset, contiguous := progress, true
	for scanned := 0; scanned < maxTxScanPerRound; {
		if err := b.store.GetMessages(TopicTransHalf, 0, offset, scheduleBatch, DefaultMaxPullBytes, nil, &t.res); err != nil || t.res.Status != engine.Found {
			t.res.Release()
			break
		}
		young := false
		for _, rec := range t.res.Records {
			scanned++
			v, err := record.Decode(rec)
			if err != nil {
				offset++
				continue
			}
			q := v.QueueOffset()
			done := t.settle(v, now, &young)
			if young {
				break
			}
			if done && contiguous {
				progress = q + 1
				delete(t.resolved, q)
				delete(t.checks, q)
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
	_ = b.meta.CommitOffset(TopicTransHalf, txHalfProgressGroup, 0, progress)
}

// settle decides about one half message: true when it needs nothing more (resolved or
// dropped). young is set when it is too recent to check, which ends the round.
func (t *txChecker) settle(v record.View, now time.Time, young *bool) bool {
	q := v.QueueOffset()
	if _, ok := t.resolved[q]; ok {
		return true
	}
	if now.Sub(time.UnixMilli(v.StoreTimestampMs())) < t.b.cfg.TransactionTimeout {
		*young = true
		return false
	}
	if t.checks[q] >= t.b.cfg.TransactionCheckMax {
		t.b.log.Warn("transaction never resolved; half message dropped after the maximum checks",
			"queueOffset", q, "commitLogOffset", v.PhysicalOffset(), "checks", t.checks[q])
		return true
	}
	pg, _ := record.Property(v.Properties(), record.PropProducerGroup)
	c, ok := t.b.clients.producerConn(string(pg))
	if !ok {
		return false // no producer of the group is connected: ask again next round
	}
	if err := t.sendCheck(c, v); err != nil {
		t.b.log.Debug("transaction check not sent", "group", string(pg), "err", err)
		return false
	}
	if len(t.checks) < maxTxTracked {
		t.checks[q]++
	}
	return false
}

// sendCheck sends CHECK_TRANSACTION_STATE for half message v: the header names its queue
// and commit-log offsets and ids; the body is the record with its real topic and queue.
func (t *txChecker) sendCheck(c *remoting.Conn, v record.View) error {
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
	return c.SendRequestOneway(remoting.ReqCheckTransactionState, ext, body)
}
