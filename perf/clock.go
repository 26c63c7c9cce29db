// Package perf holds ringmq's clocks, latency histograms, SLO counters and metrics export.
package perf

import "time"

// epoch anchors Now; time.Since reads the monotonic clock without allocating.
var epoch = time.Now()

// Now returns monotonic nanoseconds since process start. It is cheap (vDSO
// clock_gettime) and never goes backwards; use it for every latency stamp.
func Now() int64 { return int64(time.Since(epoch)) }
