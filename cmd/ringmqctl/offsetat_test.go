package main

import (
	"fmt"
	"reflect"
	"testing"
)

func TestOffsetAt(t *testing.T) {
	c := startTestCluster(t)
	ns := "--namesrv=" + c.namesrvAddr
	c.createTopic(t, "time-topic", 2)
	for i := range 3 {
		c.sendOne(t, "time-topic", nil, fmt.Sprint("m", i))
	}
	stored := c.pollQueue(t, "time-topic", 0, 3)
	// Exact expectations from the store times the records carry: the first offset stored
	// at or after T, or the max offset when none was.
	firstAtOrAfter := func(ms int64) int64 {
		for i, v := range stored {
			if v.StoreTimestampMs() >= ms {
				return int64(i)
			}
		}
		return 3
	}
	for _, ms := range []int64{0, stored[1].StoreTimestampMs(), stored[2].StoreTimestampMs() + 1, stored[2].StoreTimestampMs() + 3_600_000} {
		code, out, errOut := ctl("offset-at", ns, "--json", "--timestamp", fmt.Sprint(ms), "time-topic")
		rows := decodeJSON[[]offsetAtRow](t, out)
		want := []offsetAtRow{{"broker-ctl", 0, firstAtOrAfter(ms), 3}, {"broker-ctl", 1, 0, 0}}
		if code != 0 || !reflect.DeepEqual(rows, want) {
			t.Errorf("offset-at %d: exit %d, got %+v %s, want %+v", ms, code, rows, errOut, want)
		}
	}
	_, out, _ := ctl("offset-at", ns, "--timestamp", "2026-01-02T03:04:05Z", "time-topic")
	wantTable(t, "offset-at", out, [][]string{{"offsets", "of", "time-topic", "at", "2026-01-02T03:04:05Z"},
		{"BROKER", "QUEUE", "OFFSET", "MAX_OFFSET"}, {"broker-ctl", "0", "0", "3"}, {"broker-ctl", "1", "0", "0"}})
}
