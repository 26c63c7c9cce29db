package commitlog

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/ringmq/ringmq/flush"
	"github.com/ringmq/ringmq/flush/vfs"
)

// Defaults, named after the broker.conf keys they mirror.
const (
	DefaultSegmentSizeBytes      = 1 << 30         // mappedFileSizeCommitLog
	DefaultSyncTimeout           = 5 * time.Second // syncFlushTimeout
	DefaultFlushInterval         = 500 * time.Millisecond
	DefaultFlushLeastPages       = 4 // flushCommitLogLeastPages
	DefaultMaxWaiters            = 16384
	DefaultMaxPendingBytes       = 32 << 20
	DefaultMaxRecordBytes        = 4<<20 + 64<<10 // maxMessageSize plus header room
	DefaultDiskMaxUsedSpaceRatio = 75             // diskMaxUsedSpaceRatio
	DefaultFileReservedTime      = 72 * time.Hour // fileReservedTime
	DefaultDeleteWhenHour        = 4              // deleteWhen=04
	DefaultPrewriteBytesPerSec   = 256 << 20      // 1 GiB segment in 4 s
	minSegmentSizeBytes          = 4096
)

// BlankMagic marks the blank filler at a segment's end (RocketMQ's BLANK_MAGIC_CODE).
const BlankMagic uint32 = 0xCBD43194

// Config configures a Log. Zero values take the defaults above.
type Config struct {
	FS  vfs.FS
	Dir string // the store root; segments live in Dir/commitlog
	// SegmentSizeBytes is the size of each segment file (a multiple of 4096).
	SegmentSizeBytes int64
	// Backend writes and syncs the segments; nil means the pwrite backend.
	Backend flush.Backend
	// Sync selects SYNC_FLUSH (waiters complete after fdatasync) over ASYNC_FLUSH.
	Sync bool
	// SyncTimeout: a SYNC_FLUSH waiter not durable by then gets flush.ErrFlushTimeout.
	SyncTimeout time.Duration
	// FlushInterval and FlushLeastPages: the ASYNC_FLUSH fdatasync policy.
	FlushInterval   time.Duration
	FlushLeastPages int
	// MaxWaiters bounds SYNC_FLUSH appends waiting for durability; MaxPendingBytes the
	// bytes appended but not yet durable (the ring's size). Past either, Append returns
	// flush.ErrBusy.
	MaxWaiters      int
	MaxPendingBytes int64
	// MaxRecordBytes bounds one Encoder's Size (default 4 MiB + 64 KiB).
	MaxRecordBytes int
	// DiskMaxUsedSpaceRatio (percent): above it the oldest segments are deleted and,
	// if that does not help, appends fail with ErrDiskFull.
	DiskMaxUsedSpaceRatio int
	// FileReservedTime: segments whose last write is older are deleted at DeleteWhenHour
	// (local hour, 0-23).
	FileReservedTime time.Duration
	DeleteWhenHour   int
	// PrewriteBytesPerSec paces the allocator's zero-filling of spare segments (default
	// 256 MiB/s; negative: unpaced). A segment that appends are waiting for is written
	// at full speed whatever this says.
	PrewriteBytesPerSec int64
	Logger              *slog.Logger
	// Validate parses the record at the start of b: its total size and whether it is
	// intact (magic + body CRC); the Store passes the record codec's function. b may
	// extend past the record. Used by recovery and Scan. It must not retain b.
	Validate func(b []byte) (sizeBytes int, err error)
}

func (c *Config) fill() error {
	if c.FS == nil || c.Dir == "" || c.Validate == nil {
		return errors.New("commitlog: Config needs FS, Dir and Validate")
	}
	setDefault(&c.SegmentSizeBytes, DefaultSegmentSizeBytes)
	setDefault(&c.SyncTimeout, DefaultSyncTimeout)
	setDefault(&c.FlushInterval, DefaultFlushInterval)
	setDefault(&c.FlushLeastPages, DefaultFlushLeastPages)
	setDefault(&c.MaxWaiters, DefaultMaxWaiters)
	setDefault(&c.MaxPendingBytes, DefaultMaxPendingBytes)
	setDefault(&c.MaxRecordBytes, DefaultMaxRecordBytes)
	setDefault(&c.DiskMaxUsedSpaceRatio, DefaultDiskMaxUsedSpaceRatio)
	setDefault(&c.FileReservedTime, DefaultFileReservedTime)
	setDefault(&c.PrewriteBytesPerSec, DefaultPrewriteBytesPerSec)
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.SegmentSizeBytes < minSegmentSizeBytes || c.SegmentSizeBytes%4096 != 0 {
		return fmt.Errorf("commitlog: SegmentSizeBytes %d: want a multiple of 4096, at least %d", c.SegmentSizeBytes, minSegmentSizeBytes)
	}
	if int64(c.MaxRecordBytes)+8 > c.SegmentSizeBytes {
		c.MaxRecordBytes = int(c.SegmentSizeBytes - 8)
	}
	if c.MaxPendingBytes < 2*int64(c.MaxRecordBytes) {
		c.MaxPendingBytes = 2 * int64(c.MaxRecordBytes)
	}
	if c.DiskMaxUsedSpaceRatio < 10 || c.DiskMaxUsedSpaceRatio > 95 {
		return fmt.Errorf("commitlog: DiskMaxUsedSpaceRatio %d: want 10..95", c.DiskMaxUsedSpaceRatio)
	}
	if c.DeleteWhenHour < 0 || c.DeleteWhenHour > 23 {
		return fmt.Errorf("commitlog: DeleteWhenHour %d: want 0..23", c.DeleteWhenHour)
	}
	return nil
}

func setDefault[T comparable](p *T, def T) {
	var zero T
	if *p == zero {
		*p = def
	}
}

// Encoder writes one record straight into the log's buffer (zero-copy).
type Encoder interface {
	// Size returns the record's total size in bytes (at most Config.MaxRecordBytes).
	Size() int
	// Encode writes exactly Size() bytes into dst; physicalOffset is where the record
	// lands. It runs under the append lock: keep it short, no system calls, and do not
	// retain dst.
	Encode(dst []byte, physicalOffset int64)
}

// Waiter is told when an append is durable (see flush.Waiter).
type Waiter = flush.Waiter

// Errors of the log; see the package doc. flush's errors are re-exported so the Store
// needs only this package.
var (
	ErrBusy         = flush.ErrBusy
	ErrFlushTimeout = flush.ErrFlushTimeout
	ErrStoreFailed  = flush.ErrStoreFailed
	ErrDiskFull     = flush.ErrDiskFull
	ErrClosed       = flush.ErrClosed
	// ErrOutOfRange: a Read or Scan outside [MinOffset, WrittenOffset).
	ErrOutOfRange = errors.New("commitlog: offset out of range")
)

// CorruptError reports bytes that are not a valid record where one should be.
type CorruptError struct {
	File      string
	OffBytes  int64 // offset inside File
	Err       error
	PhysBytes int64 // physical offset
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("commitlog: corrupt record in %s at offset %d (physical %d): %v", e.File, e.OffBytes, e.PhysBytes, e.Err)
}

func (e *CorruptError) Unwrap() error { return e.Err }

// SegmentName returns the file name of the segment starting at startOffset.
func SegmentName(startOffset int64) string { return fmt.Sprintf("%020d", startOffset) }
