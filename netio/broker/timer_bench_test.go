package broker

import "testing"

// BenchmarkTimerDeliverMsPlain: the cost of the timer check on the send path for a message
// with no timer property (the Go client's usual properties).
func BenchmarkTimerDeliverMsPlain(b *testing.B) {
	props := []byte("UNIQ_KEY\x01AC110001A1B218B4AAC2A2F1E6D80000\x02WAIT\x01true\x02KEYS\x01order-17\x02TAGS\x01TagA\x02MSG_REGION\x01DefaultRegion\x02TRACE_ON\x01true\x02")
	b.ReportAllocs()
	for b.Loop() {
		if _, isTimer, _ := timerDeliverMs(props, 1); isTimer {
			b.Fatal("a timer")
		}
	}
}
