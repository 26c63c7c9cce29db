package broker

import (
	"bytes"
	"fmt"
	"time"

	"github.com/ringmq/ringmq/engine/record"
	"github.com/ringmq/ringmq/netio/remoting"
)

// Timer message properties (RocketMQ 5.x MessageConst).
const (
	propTimerDeliverMs = "TIMER_DELIVER_MS" // absolute due time, epoch ms
	propTimerDelaySec  = "TIMER_DELAY_SEC"  // relative, converted at arrival
	propTimerDelayMs   = "TIMER_DELAY_MS"   // relative, converted at arrival
	propTimerOutMs     = "TIMER_OUT_MS"     // the broker's: when a parked message is due
)

// Timer defaults (RocketMQ 5.x timerMaxDelaySec and timerPrecisionMs).
const (
	DefaultTimerMaxDelay  = 259200 * time.Second
	DefaultTimerPrecision = time.Second
)

// timerDeliverMs reads a message's due time: TIMER_DELAY_SEC, then TIMER_DELAY_MS (both
// from now), then TIMER_DELIVER_MS, as Java's HookUtils reads them. isTimer is false
// when none is present.
func timerDeliverMs(props []byte, nowMs int64) (deliverMs int64, isTimer bool, err error) {
	if !bytes.Contains(props, timerPropPrefix) { // the send path's usual case: one fast scan
		return 0, false, nil
	}
	for _, p := range [...]struct {
		key  string
		unit int64
		rel  bool
	}{{propTimerDelaySec, 1000, true}, {propTimerDelayMs, 1, true}, {propTimerDeliverMs, 1, false}} {
		v, ok := parsePropInt(props, p.key)
		if !ok {
			continue
		}
		if v.err != nil {
			return 0, true, fmt.Errorf("%s %q is not a number", p.key, v.raw)
		}
		if !p.rel {
			return v.n, true, nil
		}
		if v.n > (1<<62)/p.unit || v.n < -(1<<62)/p.unit {
			return 0, true, fmt.Errorf("%s %d is out of range", p.key, v.n)
		}
		return nowMs + v.n*p.unit, true, nil
	}
	return 0, false, nil
}

// timerPropPrefix starts every timer property's name.
var timerPropPrefix = []byte("TIMER_")

type propInt struct {
	raw []byte
	n   int64
	err error
}

func parsePropInt(props []byte, key string) (propInt, bool) {
	v, ok := record.Property(props, key)
	if !ok {
		return propInt{}, false
	}
	n, err := parseInt64(v)
	return propInt{raw: v, n: n, err: err}, true
}

// routeTimer applies RocketMQ 5.x's timer rule after routeSpecial: a message with a
// timer property due later than now is parked in rmq_sys_wheel_timer queue 0 with its
// due time (TIMER_DELIVER_MS, TIMER_OUT_MS) and REAL_TOPIC / REAL_QID; one due now or
// before is stored as sent. Half messages and delay-level messages are left alone
// (routeSpecial cleared a delay-level message's timer properties). A due time past
// timerMaxDelaySec, a property that is not a number, or timerWheelEnable=false is
// MESSAGE_ILLEGAL with Java's remark, and nothing is stored.
func (b *Broker) routeTimer(d *destination, props []byte, nowMs int64) (int16, string) {
	if d.half || d.parked {
		return remoting.RespSuccess, ""
	}
	deliverMs, isTimer, err := timerDeliverMs(props, nowMs)
	if !isTimer {
		return remoting.RespSuccess, ""
	}
	if err != nil {
		return remoting.RespMessageIllegal, "timer message illegal: " + err.Error()
	}
	if !b.cfg.TimerWheelEnable {
		return remoting.RespMessageIllegal, "accurate timer message is not enabled, timerWheelEnable is false"
	}
	if deliverMs <= nowMs {
		return remoting.RespSuccess, ""
	}
	if maxMs := b.cfg.TimerMaxDelay.Milliseconds(); deliverMs-nowMs > maxMs {
		return remoting.RespMessageIllegal, fmt.Sprintf("timer message illegal, the delay time should not be bigger than the max delay %dms; or if set del msg, the delay time should be bigger than the current time", maxMs)
	}
	*d = destination{topic: TopicTimer, queueID: 0, realTopic: d.topic, realQueueID: d.queueID, parked: true,
		drop: d.drop | dropTimer | dropTimerOut, timerDeliverMs: deliverMs}
	return remoting.RespSuccess, ""
}
