package flush

import "testing"

func TestSyncLatencyBucket(t *testing.T) {
	cases := []struct {
		latNs int64
		want  int
	}{
		{0, 0},
		{999, 0},
		{1_000, 0},
		{1_999, 0},
		{2_000, 1},
		{3_999, 1},
		{4_000, 2},
		{100_000, 6}, // 100 us is in [64, 128)
		{128_000, 7}, // 128 us starts bucket 7
		{1 << 62, SyncLatencyBuckets - 1},
	}
	for _, c := range cases {
		if got := syncLatencyBucket(c.latNs); got != c.want {
			t.Errorf("syncLatencyBucket(%d ns) = %d, want %d", c.latNs, got, c.want)
		}
	}
}
