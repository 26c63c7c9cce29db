package flush

// SyncLatencyBuckets is the number of fdatasync latency buckets in Stats: bucket i
// counts syncs that took [2^i, 2^(i+1)) microseconds (bucket 0 also holds < 1 us); the
// layout of perf.Log2MicrosHistogram and of the eBPF probes.
const SyncLatencyBuckets = 24

// FlushRecord describes one flush: one write of everything appended since the previous
// flush, then one fdatasync.
type FlushRecord struct {
	SubmittedNs int64 // perf.Now() when the write was submitted
	DurableNs   int64 // perf.Now() when the fdatasync returned (0 if none ran)
	BatchBytes  int64
	Waiters     int
}

// Stats is a snapshot of a Ring's flusher for metrics.
type Stats struct {
	Flushes      uint64 // flushes that wrote bytes
	Syncs        uint64 // fdatasyncs that returned success
	BytesWritten uint64
	WaitersDone  uint64 // waiters completed with success
	Timeouts     uint64 // waiters completed with ErrFlushTimeout
	SyncNsTotal  int64
	SyncNsMax    int64
	// SyncLatencyUs is a log2 histogram of write+fdatasync latency (see SyncLatencyBuckets).
	SyncLatencyUs [SyncLatencyBuckets]uint64
	Last          FlushRecord
}
