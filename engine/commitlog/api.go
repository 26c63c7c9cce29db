package commitlog

import "github.com/ringmq/ringmq/flush"

// Stats is a snapshot for metrics.
type Stats struct {
	AppendedOffset int64 // end of the last appended record
	WrittenOffset  int64 // end of the bytes handed to the file (readable)
	DurableOffset  int64 // end of the bytes an fdatasync covered
	MinOffset      int64 // start of the oldest segment
	// UnflushedBytes = AppendedOffset - DurableOffset; OldestUnflushedAgeNs is the age
	// of the oldest byte not yet durable (0 when none): the ASYNC_FLUSH loss window.
	UnflushedBytes       int64
	OldestUnflushedAgeNs int64
	Flush                flush.Stats
	Segments             int
	SegmentsAllocated    uint64 // pre-written by the allocator
	SegmentsDeleted      uint64
	SegmentsRecycled     uint64 // pre-written over a segment deleted for age
	// AllocatorWaits counts appends that found the next segment not ready and waited
	// for the allocator; AllocatorWaitNs is their total wait.
	AllocatorWaits  uint64
	AllocatorWaitNs int64
	// DiskFull is non-empty while appends are refused for lack of space: the reason.
	DiskFull string
}

/*
The exported API of Log (implemented in log.go, append.go, read.go):

	func Open(cfg Config, checkpointOffset int64) (*Log, error)
	func (l *Log) RecoveredEnd() int64
	func (l *Log) Append(e Encoder, w Waiter) (physicalOffset int64, err error)
	func (l *Log) AppendBatch(es []Encoder, w Waiter) (firstOffset int64, err error)
	func (l *Log) AppendedOffset() int64
	func (l *Log) WrittenOffset() int64
	func (l *Log) DurableOffset() int64
	func (l *Log) MinOffset() int64
	func (l *Log) Read(physicalOffset int64, sizeBytes int) (b []byte, release func(), err error)
	func (l *Log) OnDurable(fn func(durableOffset int64))
	func (l *Log) OnWritten(fn func(writtenOffset int64))
	func (l *Log) Scan(from int64, fn func(physicalOffset int64, rec []byte) bool) error
	func (l *Log) Stats() Stats
	func (l *Log) Close() error
*/
