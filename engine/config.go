package engine

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"time"

	"github.com/ringmq/ringmq/engine/commitlog"
	"github.com/ringmq/ringmq/engine/consumequeue"
	"github.com/ringmq/ringmq/engine/index"
	"github.com/ringmq/ringmq/flush/vfs"
)

// FlushMode is flushDiskType.
type FlushMode uint8

// Flush modes. The zero value is SYNC_FLUSH, the durable one.
const (
	SyncFlush  FlushMode = iota // ack after an fdatasync covering the message
	AsyncFlush                  // ack after the append; flushed every FlushInterval
)

func (m FlushMode) String() string {
	if m == AsyncFlush {
		return "ASYNC_FLUSH"
	}
	return "SYNC_FLUSH"
}

// ScheduleTopic holds delayed messages; its consume-queue tags code is the delivery
// time (store time + the DELAY level's delay), as in RocketMQ.
const ScheduleTopic = "SCHEDULE_TOPIC_XXXX"

// DefaultDelayLevels is messageDelayLevel "1s 5s 10s 30s 1m 2m 3m 4m 5m 6m 7m 8m 9m
// 10m 20m 30m 1h 2h".
var DefaultDelayLevels = []time.Duration{
	time.Second, 5 * time.Second, 10 * time.Second, 30 * time.Second,
	time.Minute, 2 * time.Minute, 3 * time.Minute, 4 * time.Minute, 5 * time.Minute,
	6 * time.Minute, 7 * time.Minute, 8 * time.Minute, 9 * time.Minute, 10 * time.Minute,
	20 * time.Minute, 30 * time.Minute, time.Hour, 2 * time.Hour,
}

// Limits and defaults.
const (
	DefaultSegmentSizeBytes      = 1 << 30
	DefaultSyncFlushTimeout      = 5 * time.Second
	DefaultFlushInterval         = 500 * time.Millisecond
	DefaultFileReservedTime      = 72 * time.Hour
	DefaultDiskMaxUsedSpaceRatio = 75
	DefaultMaxMessageSizeBytes   = 4 << 20
	DefaultCheckpointInterval    = time.Second
	// MaxBatchMessages bounds the messages of one AppendBatch.
	MaxBatchMessages = 4096
	// MaxGetScanEntries bounds the consume-queue entries one GetMessages looks at
	// (RocketMQ: max(16000 bytes / 20, maxMsgNums)).
	MaxGetScanEntries = 800
	// maxDispatchRecordsPerRound bounds the records one dispatch round handles before
	// it publishes (so consumers see progress during a long replay).
	maxDispatchRecordsPerRound = 4096
	// maxFreeOps bounds the free list of append operations; maxPooledBatch the batch
	// size whose operation is kept on it.
	maxFreeOps     = 4096
	maxPooledBatch = 64
	// maxDispatchRequests bounds queued DeleteTopic/retention requests.
	maxDispatchRequests = 16
)

// Config configures a Store. Zero values take the defaults.
type Config struct {
	Dir              string        // storePathRootDir
	FS               vfs.FS        // nil = the OS file system
	SegmentSizeBytes int64         // mappedFileSizeCommitLog, 1 GiB
	FlushMode        FlushMode     // flushDiskType, SYNC_FLUSH
	Backend          string        // "pwrite" | "uring" | "uring-direct"; "" = commitlog's default
	SyncFlushTimeout time.Duration // 5 s: past it the waiter gets ErrFlushTimeout
	FlushInterval    time.Duration // ASYNC_FLUSH: flushIntervalCommitLog, 500 ms
	FileReservedTime time.Duration // 72 h
	// DeleteWhenHour is deleteWhen (local hour 0-23). 0 is midnight: the broker's
	// config parser supplies RocketMQ's default "04".
	DeleteWhenHour        int
	DiskMaxUsedSpaceRatio int // percent, 75
	MaxMessageSizeBytes   int // maxMessageSize (body), 4 MiB
	// StoreHost is written into every record and offset msg id (IPv4).
	StoreHost        netip.AddrPort
	CQEntriesPerFile int // 300000
	Logger           *slog.Logger

	// ringmq's own settings.
	IndexSlotsPerFile   int             // 5,000,000
	IndexEntriesPerFile int             // 20,000,000
	CheckpointInterval  time.Duration   // 1 s: consume queues and index synced, checkpoint written
	DelayLevels         []time.Duration // messageDelayLevel, for ScheduleTopic's tags codes
	MaxInFlightAppends  int             // SYNC_FLUSH waiters in flight before ErrBusy (commitlog default)
	MaxInFlightBytes    int64           // bytes appended but not durable before ErrBusy (commitlog default)
}

func (c *Config) fill() error {
	if c.Dir == "" {
		return errors.New("engine: Config.Dir is empty")
	}
	if c.FS == nil {
		c.FS = vfs.OS{}
	}
	c.SegmentSizeBytes = cmp.Or(c.SegmentSizeBytes, DefaultSegmentSizeBytes)
	c.SyncFlushTimeout = cmp.Or(c.SyncFlushTimeout, DefaultSyncFlushTimeout)
	c.FlushInterval = cmp.Or(c.FlushInterval, DefaultFlushInterval)
	c.FileReservedTime = cmp.Or(c.FileReservedTime, DefaultFileReservedTime)
	c.DiskMaxUsedSpaceRatio = cmp.Or(c.DiskMaxUsedSpaceRatio, DefaultDiskMaxUsedSpaceRatio)
	c.MaxMessageSizeBytes = cmp.Or(c.MaxMessageSizeBytes, DefaultMaxMessageSizeBytes)
	c.CQEntriesPerFile = cmp.Or(c.CQEntriesPerFile, consumequeue.DefaultEntriesPerFile)
	c.IndexSlotsPerFile = cmp.Or(c.IndexSlotsPerFile, index.DefaultSlotsPerFile)
	c.IndexEntriesPerFile = cmp.Or(c.IndexEntriesPerFile, index.DefaultEntriesPerFile)
	c.CheckpointInterval = cmp.Or(c.CheckpointInterval, DefaultCheckpointInterval)
	if c.DelayLevels == nil {
		c.DelayLevels = DefaultDelayLevels
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.FlushMode > AsyncFlush {
		return fmt.Errorf("engine: FlushMode %d unknown", c.FlushMode)
	}
	if c.StoreHost.IsValid() && !c.StoreHost.Addr().Unmap().Is4() {
		return fmt.Errorf("engine: StoreHost %v is not IPv4 (records carry IPv4 hosts)", c.StoreHost)
	}
	if c.MaxMessageSizeBytes > int(c.SegmentSizeBytes)/2 {
		return fmt.Errorf("engine: MaxMessageSizeBytes %d over half the segment size %d", c.MaxMessageSizeBytes, c.SegmentSizeBytes)
	}
	return nil
}

// Errors of the store; compare with errors.Is. The flush errors are the commit log's
// values, so either package's name matches.
var (
	// ErrMessageIllegal: the message is too big or its topic or properties are bad
	// (MESSAGE_ILLEGAL).
	ErrMessageIllegal = errors.New("engine: message illegal")
	// ErrBusy: too many appends or bytes in flight (SYSTEM_BUSY).
	ErrBusy = commitlog.ErrBusy
	// ErrDiskFull: ENOSPC or use over DiskMaxUsedSpaceRatio; clears by itself.
	ErrDiskFull = commitlog.ErrDiskFull
	// ErrStoreFailed: a write or fdatasync failed; sticky until reopened.
	ErrStoreFailed = commitlog.ErrStoreFailed
	// ErrFlushTimeout: no fdatasync covered the message within SyncFlushTimeout
	// (FLUSH_DISK_TIMEOUT); through Waiter.Done only.
	ErrFlushTimeout = commitlog.ErrFlushTimeout
	// ErrClosed: the store is closed.
	ErrClosed = commitlog.ErrClosed
	// ErrNotFound: no message at that offset, or none in the queue.
	ErrNotFound = errors.New("engine: not found")
)
