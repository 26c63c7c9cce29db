package perf

import (
	"math/bits"
	"sync/atomic"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// The bucket layout of hdrhistogram.New(HistLowestNs, HistHighestNs, HistSigFigs), written out
// as constants so the recording path is a few shifts and one atomic add. TestLayoutMatchesHdr
// checks every constant and the index function against the library.
const (
	HistLowestNs  = 1_000          // lowest discernible value: 1 us
	HistHighestNs = 60_000_000_000 // highest trackable value: 60 s
	HistSigFigs   = 3              // significant decimal digits

	// 2*10^3 rounded up to a power of two is 2048 sub-buckets: magnitude 11, half 10.
	subBucketHalfCountMag = 10
	subBucketHalfCount    = 1 << subBucketHalfCountMag
	// floor(log2(1000)) = 9: values are counted in units of 512 ns at the bottom.
	unitMagnitude = 9
	subBucketMask = (2*subBucketHalfCount - 1) << unitMagnitude
	// 2048<<9 doubled 16 times first reaches 60e9: 17 buckets.
	histBucketCount = 17
	// histCountsLen is the number of counters: (bucketCount+1) * subBucketHalfCount.
	histCountsLen = (histBucketCount + 1) * subBucketHalfCount
)

// histIndex returns the counts index of value v (nanoseconds), clamped into [0, HistHighestNs].
func histIndex(v int64) int {
	if v < 0 {
		v = 0
	} else if v > HistHighestNs {
		v = HistHighestNs
	}
	pow2Ceiling := 64 - bits.LeadingZeros64(uint64(v)|subBucketMask)
	bucketIdx := pow2Ceiling - unitMagnitude - (subBucketHalfCountMag + 1)
	subBucketIdx := int(v >> uint(bucketIdx+unitMagnitude))
	return (bucketIdx+1)<<subBucketHalfCountMag + subBucketIdx - subBucketHalfCount
}

// histLowestValue returns the lowest value counted at index i.
func histLowestValue(i int) int64 {
	bucketIdx := i>>subBucketHalfCountMag - 1
	subBucketIdx := i&(subBucketHalfCount-1) + subBucketHalfCount
	if bucketIdx < 0 {
		subBucketIdx -= subBucketHalfCount
		bucketIdx = 0
	}
	return int64(subBucketIdx) << uint(bucketIdx+unitMagnitude)
}

// histHighestValue returns the highest value counted at index i.
func histHighestValue(i int) int64 {
	bucketIdx := i>>subBucketHalfCountMag - 1
	if bucketIdx < 0 {
		bucketIdx = 0
	}
	return histLowestValue(i) + int64(1)<<uint(bucketIdx+unitMagnitude) - 1
}

// atomicHist is a histogram with HdrHistogram's layout whose counters are atomics: any number
// of goroutines record into it without a lock, readers copy the counts out. Counts only grow.
type atomicHist struct {
	counts [histCountsLen]atomic.Int64
}

// record counts one value in nanoseconds.
func (h *atomicHist) record(ns int64) { h.counts[histIndex(ns)].Add(1) }

// loadInto copies the current counts into dst (len histCountsLen).
func (h *atomicHist) loadInto(dst []int64) {
	_ = dst[histCountsLen-1]
	for i := range h.counts {
		dst[i] = h.counts[i].Load()
	}
}

// toHdr wraps counts (len histCountsLen, owned by the result from now on) as an hdrhistogram.
func toHdr(counts []int64) *hdrhistogram.Histogram {
	if len(counts) != histCountsLen {
		panic("BUG: perf: toHdr with wrong counts length")
	}
	return hdrhistogram.Import(&hdrhistogram.Snapshot{
		LowestTrackableValue:  HistLowestNs,
		HighestTrackableValue: HistHighestNs,
		SignificantFigures:    HistSigFigs,
		Counts:                counts,
	})
}

// NewHdr returns an empty hdrhistogram.Histogram with the recorder's layout, for tools that
// merge histograms read from /api/hdr or an interval log.
func NewHdr() *hdrhistogram.Histogram {
	return hdrhistogram.New(HistLowestNs, HistHighestNs, HistSigFigs)
}
