// Package engine is ringmq's message store: the contract between the broker and the
// disk. The broker calls only Store's methods (see store.go for the list).
//
// # Layout
//
// Everything lives under Config.Dir (storePathRootDir):
//
//	<Dir>/commitlog/<20-digit start offset>           segments (package commitlog)
//	<Dir>/consumequeue/<topic>/<queueId>/<20 digits>  consume queues (package consumequeue)
//	<Dir>/index/<20-digit file number>                key index (package index)
//	<Dir>/checkpoint                                  durable points, below
//	<Dir>/abort                                       present while the store is open
//
// Records are RocketMQ's stored-message layout V1 (package record). The checkpoint file
// holds two 64-byte slots (at 0 and 64), written alternately in place with pwrite +
// fdatasync; Open takes the valid slot with the higher seq, so a torn write loses only
// the newest checkpoint, never both:
//
//	 off
//	+---+----------------------------+
//	|  0| magic "RMQCKPT2"       (8) |
//	|  8| version u32 = 2            |
//	| 12| flags u32 = 0              |
//	| 16| seq u64 (slot = seq % 2)   |
//	| 24| commitLogDurable i64       |
//	| 32| consumeQueueDurable i64    |
//	| 40| indexDurable i64           |
//	| 48| writtenAtMs i64            |
//	| 56| reserved u32 = 0           |
//	| 60| crc32 (IEEE) of bytes 0..59|
//	+---+----------------------------+
//
// commitLogDurable: an fdatasync covered the commit log up to here. consumeQueueDurable
// and indexDurable: every consume-queue entry and index entry for a record below this
// offset was written and fdatasynced before the checkpoint was. The abort file is created
// (and its directory synced) at Open and removed at a clean Close: finding it at Open
// means the last run crashed.
//
// # Write path
//
// Append validates the message, then appends one record through the commit log's
// Encoder, which runs under the commit log's append lock: it takes the queue offset from
// the Store's per topic-queue table, stamps the store time and encodes the record
// straight into the log's buffer. Nothing on this path allocates in steady state (the
// encoder and the waiter adapter come from pools). Under SYNC_FLUSH the Waiter hears
// from the flusher once an fdatasync covered the record; under ASYNC_FLUSH at once.
//
// # Dispatch
//
// One dispatcher goroutine owns the consume queues and the index: it reads the commit
// log from where it stopped up to the durable offset (SYNC_FLUSH: consumers see only
// durable messages) or the written offset (ASYNC_FLUSH), adds a consume-queue entry
// and index entries per record, writes them out, publishes the new max offsets and
// then calls the arrival listener per queue that grew. Deleting topics and moving
// queue minimums after commit-log retention also run on it, so the queues have one
// writer. A failed queue or index write is retried (the entries stay buffered);
// meanwhile Stats.DispatchFailed says why consumers see nothing new. A checkpointer
// goroutine fdatasyncs the queues and index, writes the checkpoint, hands retention
// to the dispatcher and re-kicks it, every CheckpointInterval.
//
// # Recovery (Open)
//
//  1. abort marker present: the last run crashed (logged, Stats().Recovery.RecoveredFromCrash).
//  2. checkpoint read; if missing or corrupt, everything is rebuilt from the oldest
//     segment.
//  3. the commit log scans from the segment holding commitLogDurable, checking each
//     record (magic, lengths, body CRC), and truncates at the first bad one.
//  4. consume queues drop entries pointing at or past the replay point P =
//     min(consumeQueueDurable, end of log) and holes at their tails; the index drops
//     entries past the log's end and those of its last record.
//  5. records from P to the end of the log are dispatched again (entries that exist
//     are skipped), queue offsets continue from each queue's max offset, queue minimums
//     follow the oldest segment, and a fresh checkpoint is written.
//
// # Concurrency
//
// Every exported method is safe for concurrent use. Records returned by GetMessages
// and ReadRecord are views into the commit log's mapped segments, pinned until their
// release is called; Close must come after every release.
//
// # Errors
//
// Append returns ErrMessageIllegal, ErrBusy, ErrDiskFull, ErrStoreFailed or ErrClosed
// (compare with errors.Is); a Waiter may get ErrFlushTimeout, ErrStoreFailed or
// ErrDiskFull. Corruption found on read is the commit log's, consume queue's or
// index's typed *CorruptError (with file and offset), wrapped with the operation.
package engine
