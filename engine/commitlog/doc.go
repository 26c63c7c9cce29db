// Package commitlog is ringmq's commit log: one append-only byte sequence, addressed by
// physical offset, stored in fixed-size segment files.
//
// # On disk
//
// <dir>/commitlog/ holds the segments, each SegmentSizeBytes long and named by its start
// offset in 20 zero-padded decimal digits, as RocketMQ names them:
//
//	commitlog/00000000000000000000   offsets [0, S)
//	commitlog/00000000001073741824   offsets [S, 2S)      (S = 1 GiB)
//	commitlog/....tmp                a segment being pre-written (deleted at open)
//
// A segment holds records back to back; the Store's record codec defines a record, the
// log only needs its first 8 bytes (RocketMQ's TOTALSIZE and MAGICCODE, big-endian) and
// a Validate function. A record never spans two segments: one that does not fit
// (size + 8 > free) is preceded by a blank marker filling the rest of the segment, and
// goes to the next segment's start. Bytes after the last record are zero.
//
//	+---------+---------+---------+----------------------------------+
//	| record  | record  |  ...    | BLANK: int32 free | 0xCBD43194   | 0 0 0 ... 0 |
//	+---------+---------+---------+----------------------------------+
//	 ^segment start                 ^free = segment end - this offset
//
//	record: | TOTALSIZE int32 | MAGICCODE int32 | ... (Validate checks magic + CRC) |
//
// # Durability
//
// Segments are pre-written (zero-filled with large writes, fdatasync, then renamed into
// place and the directory synced) by a background allocator, the next one and the one
// after, so an append never creates, extends or zero-fills a file: every write of the
// append path overwrites already-written blocks (about 2x faster than appending, no
// multi-millisecond tails; docs/durability.md). Appended bytes go into an in-memory ring
// (flush.Ring); a flusher goroutine writes everything appended since the last flush in
// one (vectored) write per segment and makes it durable with one fdatasync (group
// commit, package flush). Under SYNC_FLUSH each append's Waiter is completed once an
// fdatasync covering its bytes returned success; under ASYNC_FLUSH at once.
//
// Recovery (Open) scans from the segment holding the checkpoint with Validate, stops at
// the first zero, torn or corrupt record, zeroes every byte after it in that segment and
// removes later segments, so a later scan stops at the same place.
//
// # Concurrency
//
// All methods are safe for concurrent use. Appends are serialised by one lock held only
// while the Encoder writes into the ring (no system call under it). Read returns a view
// into a read-only mmap of the segment; the release function pins the segment against
// deletion until called.
//
// # Errors
//
// Append returns flush.ErrBusy (bounds reached: SYSTEM_BUSY), ErrDiskFull (with the
// reason; appends resume by themselves when space returns), or an error matching
// flush.ErrStoreFailed after any failed write or fdatasync (sticky until reopened).
// Waiters may get flush.ErrFlushTimeout. Corruption found by Read or Scan is a
// *CorruptError carrying the file and offset.
package commitlog
