package broker

import (
	"net/netip"
	"testing"

	"github.com/ringmq/ringmq/engine/record"
)

// opRecord encodes an op record at op queue offset opOffset.
func opRecord(t *testing.T, opOffset int64, tag, body string) record.View {
	t.Helper()
	h := record.Header{QueueOffset: opOffset, BornHost: netip.MustParseAddrPort("127.0.0.1:1"), StoreHost: netip.MustParseAddrPort("127.0.0.1:2")}
	v, err := record.Decode(record.Append(nil, &h, TopicTransOpHalf, []byte(body), []byte(props("TAGS", tag))))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// The op records rebuild the check state: "d" resolves, "c" counts a check unless this
// run wrote (and counted) it, Java's comma lists name several half messages, offsets
// below the half progress and bodies that are not numbers are passed, and each half
// message remembers the first op record that names it (the op progress keeps it).
func TestTxCheckerApplyOp(t *testing.T) {
	tc := &txChecker{halves: map[int64]*txState{}, ownOps: map[int64]struct{}{12: {}}, halfMin: 5}
	ops := []struct {
		opOffset  int64
		tag, body string
	}{
		{10, opCheckTag, "7"},
		{11, opCheckTag, "7"},
		{12, opCheckTag, "7"}, // written by this run: already counted
		{13, opTag, "8,9,4"},  // 4 is below the half progress
		{14, opCheckTag, "x"}, // not a number
		{15, opCheckTag, "9"},
	}
	for _, o := range ops {
		if !tc.applyOp(opRecord(t, o.opOffset, o.tag, o.body)) {
			t.Fatalf("op record %d refused", o.opOffset)
		}
	}
	want := map[int64]txState{
		7: {firstOp: 10, checks: 2},
		8: {firstOp: 13, resolved: true},
		9: {firstOp: 13, checks: 1, resolved: true},
	}
	if len(tc.halves) != len(want) {
		t.Fatalf("tracked %d half messages, want %d", len(tc.halves), len(want))
	}
	for q, w := range want {
		if got := tc.halves[q]; got == nil || *got != w {
			t.Errorf("half %d: got %+v, want %+v", q, got, w)
		}
	}
	if len(tc.ownOps) != 0 {
		t.Errorf("own check records left: %v", tc.ownOps)
	}
}
