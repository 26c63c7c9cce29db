package broker

import (
	"strconv"
	"strings"
	"time"

	"github.com/ringmq/ringmq/engine/meta"
	"github.com/ringmq/ringmq/engine/record"
)

// System topics and prefixes (RocketMQ TopicValidator / MixAll).
const (
	TopicDefault      = "TBW102"
	TopicSchedule     = "SCHEDULE_TOPIC_XXXX"
	TopicTransHalf    = "RMQ_SYS_TRANS_HALF_TOPIC"
	TopicTransOpHalf  = "RMQ_SYS_TRANS_OP_HALF_TOPIC"
	TopicTimer        = "rmq_sys_wheel_timer" // 5.x timer messages (timer.go)
	RetryGroupPrefix  = "%RETRY%"
	DLQGroupPrefix    = "%DLQ%"
	MaxDelayLevel     = 18 // levels of messageDelayLevel "1s 5s ... 2h"
	retryDelayLevel0  = 3  // first retry: level 3 (10 s) + reconsumeTimes
	dlqQueueNums      = 1
	retryQueueNums    = 1
	scheduleQueueNums = MaxDelayLevel
)

// notAllowedSend lists topics producers may not send to directly (Java
// TopicValidator.isNotAllowedSendTopic).
func notAllowedSend(topic string) bool {
	switch topic {
	case TopicSchedule, TopicTransHalf, TopicTransOpHalf, TopicTimer:
		return true
	}
	return false
}

// Property keys the broker drops from what the client sent before writing its own.
const (
	dropCluster = 1 << iota
	dropReal
	dropDelay
	dropRetryTopic
	dropOriginID
	dropTranMsg
	dropTimer    // the client's TIMER_DELIVER_MS / TIMER_DELAY_SEC / TIMER_DELAY_MS
	dropTimerOut // TIMER_OUT_MS, the broker's own
)

// appendPropsExcept appends the pairs of props whose key is not selected by drop, in the
// canonical "k\x01v\x02" form. It allocates only when dst has to grow.
func appendPropsExcept(dst, props []byte, drop int) []byte {
	for {
		k, v, rest, ok := record.NextProperty(props)
		if !ok {
			return dst
		}
		props = rest
		if dropped(k, drop) {
			continue
		}
		dst = append(dst, k...)
		dst = append(dst, record.NameValueSep)
		dst = append(dst, v...)
		dst = append(dst, record.PropertySep)
	}
}

func dropped(k []byte, drop int) bool {
	switch string(k) {
	case record.PropCluster:
		return drop&dropCluster != 0
	case record.PropRealTopic, record.PropRealQueueID:
		return drop&dropReal != 0
	case record.PropDelay:
		return drop&dropDelay != 0
	case record.PropRetryTopic:
		return drop&dropRetryTopic != 0
	case record.PropOriginMessageID:
		return drop&dropOriginID != 0
	case record.PropTranMsg:
		return drop&dropTranMsg != 0
	case propTimerDeliverMs, propTimerDelaySec, propTimerDelayMs:
		return drop&dropTimer != 0
	case propTimerOutMs:
		return drop&dropTimerOut != 0
	}
	return false
}

func appendProp(dst []byte, key string, value []byte) []byte {
	dst = append(dst, key...)
	dst = append(dst, record.NameValueSep)
	dst = append(dst, value...)
	return append(dst, record.PropertySep)
}

func appendPropString(dst []byte, key, value string) []byte {
	dst = append(dst, key...)
	dst = append(dst, record.NameValueSep)
	dst = append(dst, value...)
	return append(dst, record.PropertySep)
}

func appendPropInt(dst []byte, key string, v int64) []byte {
	dst = append(dst, key...)
	dst = append(dst, record.NameValueSep)
	dst = strconv.AppendInt(dst, v, 10)
	return append(dst, record.PropertySep)
}

// destination is where a message is stored once the special-topic rules ran.
type destination struct {
	topic   string // topic of the stored record
	queueID int32
	// realTopic/realQueueID are set when the message is parked (delay, half message):
	// written as REAL_TOPIC / REAL_QID.
	realTopic   string
	realQueueID int32
	parked      bool
	delayLevel  int32 // > 0: DELAY property to write (send-back)
	half        bool  // a transactional half message
	drop        int   // more properties to drop (drop* bits)
	// timerDeliverMs > 0: a timer message parked in rmq_sys_wheel_timer, due then;
	// written as TIMER_DELIVER_MS and TIMER_OUT_MS.
	timerDeliverMs int64
}

// delayLevelOf returns the DELAY property's level (0 when absent or not a number).
func delayLevelOf(props []byte) int32 {
	v, ok := record.Property(props, record.PropDelay)
	if !ok {
		return 0
	}
	n, err := parseInt32(v)
	if err != nil || n < 0 {
		return 0
	}
	return n
}

// isHalf reports whether a send is a transactional half message: TRAN_MSG=true, as the
// Java broker decides it (the sysFlag prepared bit comes with it).
func isHalf(props []byte) bool {
	v, ok := record.Property(props, record.PropTranMsg)
	return ok && parseBool(v)
}

// routeSpecial applies RocketMQ 4's storage rules to a message bound for (topic, queueID):
//   - TRAN_MSG=true: a half message, stored in RMQ_SYS_TRANS_HALF_TOPIC queue 0 with the
//     transaction bits of sysFlag cleared, so consumers of the real topic never see it until
//     END_TRANSACTION commits it;
//   - DELAY=L > 0 on a non-transactional message: stored in SCHEDULE_TOPIC_XXXX queue
//     min(L,18)-1 for the delivery service;
//   - otherwise stored as sent.
//
// It returns the destination and the sysFlag to store.
func routeSpecial(topic string, queueID int32, sysFlag int32, props []byte) (destination, int32) {
	d := destination{topic: topic, queueID: queueID}
	txType := sysFlag & record.SysFlagTxMask
	if isHalf(props) {
		d = destination{topic: TopicTransHalf, queueID: 0, realTopic: topic, realQueueID: queueID, parked: true, half: true}
		return d, sysFlag &^ record.SysFlagTxMask
	}
	if txType == 0 || txType == record.SysFlagTxCommit {
		if level := delayLevelOf(props); level > 0 {
			level = min(level, MaxDelayLevel)
			// A delay level wins over timer properties, which are cleared (Java
			// HookUtils.checkIfTimerMessage).
			d = destination{topic: TopicSchedule, queueID: level - 1, realTopic: topic, realQueueID: queueID, parked: true, drop: dropTimer}
		}
	}
	return d, sysFlag
}

// buildProps writes the properties to store for a message sent with props to d: the
// client's pairs, REAL_TOPIC/REAL_QID when parked, DELAY when d sets one, and CLUSTER.
func (b *Broker) buildProps(dst, props []byte, d *destination) []byte {
	drop := dropCluster | d.drop
	if d.parked {
		drop |= dropReal
	}
	if d.delayLevel > 0 {
		drop |= dropDelay
	}
	dst = appendPropsExcept(dst[:0], props, drop)
	if d.delayLevel > 0 {
		dst = appendPropInt(dst, record.PropDelay, int64(d.delayLevel))
	}
	if d.parked {
		dst = appendPropString(dst, record.PropRealTopic, d.realTopic)
		dst = appendPropInt(dst, record.PropRealQueueID, int64(d.realQueueID))
	}
	if d.timerDeliverMs > 0 {
		dst = appendPropInt(dst, propTimerDeliverMs, d.timerDeliverMs)
		dst = appendPropInt(dst, propTimerOutMs, d.timerDeliverMs)
	}
	return appendPropString(dst, record.PropCluster, b.cfg.BrokerClusterName)
}

// ensureSystemTopic creates a broker-internal topic (schedule, half, retry, DLQ) if it is
// missing, and registers it with the name servers when it was created.
func (b *Broker) ensureSystemTopic(name string, queueNums int) (*meta.TopicConfig, error) {
	tc, created, err := b.meta.CreateTopicIfAbsent(meta.TopicConfig{
		TopicName: name, ReadQueueNums: queueNums, WriteQueueNums: queueNums, Perm: meta.PermRW,
	})
	if err != nil {
		return nil, err
	}
	if created {
		b.log.Info("created topic", "topic", name, "queues", queueNums)
		if err := b.topicsChanged(); err != nil {
			b.log.Error("created topic not yet on disk; the periodic write retries", "topic", name, "err", err)
		}
	}
	return tc, nil
}

// topicsChanged makes a topic change durable before it is acknowledged (as Java writes
// topics.json at once: a topic created just before a crash must survive it) and registers
// the new table with the name servers at once. It blocks the caller for one table write
// (write, fdatasync, rename, directory fsync): topic changes are rare.
func (b *Broker) topicsChanged() error {
	b.reg.trigger()
	return b.meta.Flush()
}

// retryGroup returns the group of a %RETRY% topic, and whether topic is one.
func retryGroup(topic string) (string, bool) {
	if g, ok := strings.CutPrefix(topic, RetryGroupPrefix); ok && g != "" {
		return g, true
	}
	return "", false
}

// nowMs is the wall clock in milliseconds (record timestamps).
func nowMs() int64 { return time.Now().UnixMilli() }

func itoa(n int) string { return strconv.Itoa(n) }
