package perf

import (
	"math/rand/v2"
	"testing"
)

func TestLayoutMatchesHdr(t *testing.T) {
	ref := NewHdr()
	if got, want := len(ref.Export().Counts), histCountsLen; got != want {
		t.Fatalf("counts length: got %d, want %d", got, want)
	}
	seed := rand.Uint64()
	rng := rand.New(rand.NewPCG(seed, 1))
	values := []int64{0, 1, 511, 512, 999, 1000, 1023, 1024, 2047 << 9, 2048 << 9, 999_999,
		1_000_000, 1_000_001, 10_000_000, HistHighestNs - 1, HistHighestNs}
	for range 20000 {
		values = append(values, int64(rng.ExpFloat64()*float64(int64(1)<<uint(rng.IntN(36)))))
	}
	var mine atomicHist
	for _, v := range values {
		if v > HistHighestNs {
			v = HistHighestNs
		}
		if err := ref.RecordValue(v); err != nil {
			t.Fatalf("seed %d: record %d: %v", seed, v, err)
		}
		mine.record(v)
		idx := histIndex(v)
		lo, hi := histLowestValue(idx), histHighestValue(idx)
		if v < lo || v > hi {
			t.Fatalf("seed %d: value %d outside its bucket [%d, %d]", seed, v, lo, hi)
		}
		if !ref.ValuesAreEquivalent(lo, hi) || ref.ValuesAreEquivalent(lo, hi+1) {
			t.Fatalf("seed %d: bucket of %d: [%d, %d] is not hdrhistogram's equivalence range", seed, v, lo, hi)
		}
	}
	got := make([]int64, histCountsLen)
	mine.loadInto(got)
	want := ref.Export().Counts
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("seed %d: counts[%d] (values %d..%d): got %d, hdrhistogram has %d",
				seed, i, histLowestValue(i), histHighestValue(i), got[i], want[i])
		}
	}
}

func TestHistClamps(t *testing.T) {
	var h atomicHist
	h.record(-5)
	h.record(HistHighestNs * 10)
	counts := make([]int64, histCountsLen)
	h.loadInto(counts)
	hh := toHdr(counts)
	if got, want := hh.TotalCount(), int64(2); got != want {
		t.Fatalf("total: got %d, want %d", got, want)
	}
	if got := hh.Min(); got != 0 {
		t.Fatalf("min: got %d, want 0", got)
	}
	if got := hh.Max(); !hh.ValuesAreEquivalent(got, HistHighestNs) {
		t.Fatalf("max: got %d, want ~%d", got, HistHighestNs)
	}
}
