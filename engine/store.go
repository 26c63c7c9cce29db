package engine

import (
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ringmq/ringmq/engine/commitlog"
	"github.com/ringmq/ringmq/engine/consumequeue"
	"github.com/ringmq/ringmq/engine/index"
	"github.com/ringmq/ringmq/engine/record"
	"github.com/ringmq/ringmq/flush"
)

// Store is the message store. See the package doc.
type Store struct {
	cfg     Config
	log     *commitlog.Log
	backend flush.Backend // created here (nil: the commit log's default)
	cqs     *consumequeue.Set
	idx     *index.Index

	freeOps chan *appendOp // free list, at most maxFreeOps

	offMu       sync.Mutex
	nextOffsets map[queueKey]int64 // next queue offset per queue; taken under the append lock
	// deleteCuts: per topic being deleted, where its records appended after
	// DeleteTopic start (see deleteCut). Under offMu.
	deleteCuts  map[string]*deleteCut
	deleteCutsN atomic.Int32 // len(deleteCuts), read without offMu

	closing atomic.Bool

	// Dispatch.
	visibleTarget atomic.Int64 // durable (SYNC) or written (ASYNC) offset to dispatch up to
	dispatchedA   atomic.Int64 // records below are in the consume queues and index
	kickCh        chan struct{}
	reqCh         chan dispatchReq
	stopCh        chan struct{}
	bg            sync.WaitGroup
	listener      atomic.Pointer[func(topic string, queueID int32, maxOffset int64)]
	d             dispatcher // dispatcher-goroutine state

	dispatchFailed atomic.Pointer[string]
	recovery       RecoveryStats
	ckptMu         sync.Mutex      // serialises checkpoint writes (checkpointer vs Close)
	ckpt           *checkpointFile // under ckptMu after Open
	lastMin        atomic.Int64
}

// RecoveryStats describes what Open found.
type RecoveryStats struct {
	RecoveredFromCrash bool  // the abort marker was there
	CheckpointMissing  bool  // no valid checkpoint: everything was rebuilt
	CommitLogEnd       int64 // where appends continue
	ReplayedFromOffset int64 // consume queues and index rebuilt from here
	ReplayedRecords    int64
	Duration           time.Duration
}

// Open opens the store under cfg.Dir, creating it if needed, and recovers it.
func Open(cfg Config) (*Store, error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	startedAt := time.Now()
	var cp checkpoint
	s := &Store{cfg: cfg, nextOffsets: make(map[queueKey]int64), deleteCuts: make(map[string]*deleteCut),
		kickCh: make(chan struct{}, 1), freeOps: make(chan *appendOp, maxFreeOps), reqCh: make(chan dispatchReq, maxDispatchRequests), stopCh: make(chan struct{})}
	if err := cfg.FS.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("engine: mkdir %s: %w", cfg.Dir, err)
	}
	ckpt, haveCP, err := openCheckpoint(cfg.FS, cfg.Dir)
	var cpErr *CheckpointError
	if errors.As(err, &cpErr) {
		cfg.Logger.Warn("engine: checkpoint unreadable, rebuilding consume queues and index from the oldest segment", "err", err)
		err = nil
	}
	if err != nil {
		return nil, err
	}
	s.ckpt, cp = ckpt, ckpt.last
	crashed, err := createAbortMarker(cfg.FS, cfg.Dir)
	if err != nil {
		_ = ckpt.close()
		return nil, err
	}
	s.recovery.RecoveredFromCrash, s.recovery.CheckpointMissing = crashed, !haveCP
	if err := s.openParts(cp); err != nil {
		_ = ckpt.close()
		return nil, err
	}
	if err := s.recover(cp, haveCP); err != nil {
		s.closeParts()
		_ = ckpt.close()
		return nil, err
	}
	s.recovery.Duration = time.Since(startedAt)
	cfg.Logger.Info("engine: store open", "dir", cfg.Dir, "flush", cfg.FlushMode, "crashed", crashed,
		"checkpoint", haveCP, "end", s.recovery.CommitLogEnd, "replayedFrom", s.recovery.ReplayedFromOffset,
		"replayedRecords", s.recovery.ReplayedRecords, "took", s.recovery.Duration)
	if cfg.FlushMode == SyncFlush {
		s.log.OnDurable(s.kick)
	} else {
		s.log.OnWritten(s.kick)
	}
	s.kick(s.visibleOffset())
	s.bg.Add(2)
	go s.dispatchLoop()
	go s.checkpointLoop()
	return s, nil
}

func (s *Store) openParts(cp checkpoint) error {
	cfg := s.cfg
	if cfg.Backend != "" {
		b, err := flush.NewBackend(cfg.Backend, flush.Options{MaxWriteBytes: 0})
		if err != nil {
			return fmt.Errorf("engine: %w", err)
		}
		s.backend = b
	}
	var err error
	s.log, err = commitlog.Open(commitlog.Config{
		FS: cfg.FS, Dir: cfg.Dir, SegmentSizeBytes: cfg.SegmentSizeBytes, Backend: s.backend,
		Sync: cfg.FlushMode == SyncFlush, SyncTimeout: cfg.SyncFlushTimeout, FlushInterval: cfg.FlushInterval,
		MaxWaiters: cfg.MaxInFlightAppends, MaxPendingBytes: cfg.MaxInFlightBytes,
		MaxRecordBytes:        record.Size(cfg.MaxMessageSizeBytes, record.MaxTopicLen, record.MaxPropertiesLen),
		DiskMaxUsedSpaceRatio: cfg.DiskMaxUsedSpaceRatio, FileReservedTime: cfg.FileReservedTime,
		DeleteWhenHour: cfg.DeleteWhenHour, Logger: cfg.Logger, Validate: validateRecord,
	}, cp.commitLogDurable)
	if err != nil {
		s.closeParts()
		return fmt.Errorf("engine: open commit log: %w", err)
	}
	s.cqs, err = consumequeue.Open(consumequeue.Config{FS: cfg.FS, Dir: filepath.Join(cfg.Dir, "consumequeue"), EntriesPerFile: cfg.CQEntriesPerFile})
	if err != nil {
		s.closeParts()
		return fmt.Errorf("engine: open consume queues: %w", err)
	}
	s.idx, err = index.Open(index.Config{FS: cfg.FS, Dir: filepath.Join(cfg.Dir, "index"),
		SlotsPerFile: cfg.IndexSlotsPerFile, EntriesPerFile: cfg.IndexEntriesPerFile})
	if err != nil {
		s.closeParts()
		return fmt.Errorf("engine: open index: %w", err)
	}
	return nil
}

// validateRecord is the commit log's Validate: structure, magic and body CRC.
func validateRecord(b []byte) (int, error) {
	v, err := record.Decode(b)
	if err != nil {
		return 0, err
	}
	if record.BodyCRC(v.Body()) != v.BodyCRC() {
		return 0, &record.CorruptError{OffsetBytes: 8, Reason: "body CRC mismatch"}
	}
	return int(v.TotalSize()), nil
}

// recover brings the consume queues and index in line with the recovered commit log
// (package doc, Recovery) and writes a fresh checkpoint.
func (s *Store) recover(cp checkpoint, haveCP bool) error {
	clMin, clEnd := s.log.MinOffset(), s.log.RecoveredEnd()
	s.recovery.CommitLogEnd = clEnd
	from := clMin
	if haveCP {
		from = min(max(cp.consumeQueueDurable, clMin), clEnd)
	}
	if err := s.cqs.TruncateFrom(from); err != nil {
		return fmt.Errorf("engine: recover consume queues: %w", err)
	}
	idxNext, err := s.idx.Recover(clEnd, from)
	if err != nil {
		return fmt.Errorf("engine: recover index: %w", err)
	}
	s.d.init(s)
	s.d.indexFrom = max(idxNext, from)
	s.recovery.ReplayedFromOffset = from
	s.d.dispatched = from
	n, err := s.d.dispatchTo(clEnd)
	s.recovery.ReplayedRecords = n
	if err != nil {
		return fmt.Errorf("engine: rebuild consume queues and index from %d: %w", from, err)
	}
	if s.d.dispatched != clEnd {
		return fmt.Errorf("engine: rebuild stopped at %d, log ends at %d", s.d.dispatched, clEnd)
	}
	for _, q := range s.cqs.Queues() {
		s.nextOffsets[queueKey{q.Topic(), q.QueueID()}] = q.MaxOffset()
	}
	if err := s.retention(clMin); err != nil {
		return err
	}
	return s.writeCheckpoint()
}

// kick tells the dispatcher that offset is now visible (durable or written). It runs
// on the flusher goroutine and never blocks.
func (s *Store) kick(offset int64) {
	for {
		cur := s.visibleTarget.Load()
		if offset <= cur || s.visibleTarget.CompareAndSwap(cur, offset) {
			break
		}
	}
	select {
	case s.kickCh <- struct{}{}:
	default:
	}
}

func (s *Store) visibleOffset() int64 {
	if s.cfg.FlushMode == SyncFlush {
		return s.log.DurableOffset()
	}
	return s.log.WrittenOffset()
}

// writeCheckpoint syncs the consume queues and index up to what is dispatched and
// records it.
func (s *Store) writeCheckpoint() error {
	s.ckptMu.Lock()
	defer s.ckptMu.Unlock()
	dispatched := s.dispatchedA.Load()
	clDurable := s.log.DurableOffset()
	if last := s.ckpt.last; last.seq > 0 && last.consumeQueueDurable == dispatched && last.commitLogDurable == clDurable {
		return nil // nothing moved: no fdatasync to compete with the commit log's
	}
	if err := s.cqs.SyncDirty(); err != nil {
		return fmt.Errorf("engine: checkpoint: %w", err)
	}
	if err := s.idx.Sync(); err != nil {
		return fmt.Errorf("engine: checkpoint: %w", err)
	}
	return s.ckpt.write(checkpoint{
		commitLogDurable: clDurable, consumeQueueDurable: dispatched, indexDurable: dispatched,
		writtenAtMs: time.Now().UnixMilli(),
	})
}

// checkpointLoop writes a checkpoint every CheckpointInterval and applies commit-log
// retention to the queues and index.
func (s *Store) checkpointLoop() {
	defer s.bg.Done()
	t := time.NewTicker(s.cfg.CheckpointInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stopCh:
			return
		case <-t.C:
		}
		if err := s.writeCheckpoint(); err != nil {
			s.cfg.Logger.Error("engine: checkpoint failed", "err", err)
		}
		s.kick(s.visibleOffset()) // also retries a failed dispatch
		if clMin := s.log.MinOffset(); clMin > s.lastMin.Load() {
			select {
			case s.reqCh <- dispatchReq{kind: reqRetention, physMin: clMin}:
			default: // the dispatcher is busy; next tick
			}
		}
	}
}

// retention moves queue minimums and drops index files after commit-log segments were
// deleted. Dispatcher goroutine (or Open).
func (s *Store) retention(clMin int64) error {
	if err := s.cqs.AdvanceMin(clMin); err != nil {
		return fmt.Errorf("engine: advance consume-queue minimums to %d: %w", clMin, err)
	}
	if err := s.idx.DeleteBelow(clMin); err != nil {
		return fmt.Errorf("engine: delete index files below %d: %w", clMin, err)
	}
	s.lastMin.Store(clMin)
	return nil
}

// Close stops appends, lets the commit log write and sync what was appended, syncs
// the consume queues and index, writes the checkpoint and removes the abort marker.
// Records a later Open finds past the checkpoint are dispatched then.
func (s *Store) Close() error {
	if !s.closing.CompareAndSwap(false, true) {
		return ErrClosed
	}
	close(s.stopCh)
	s.bg.Wait()
	err := s.log.Close()
	if err != nil {
		err = fmt.Errorf("engine: close commit log: %w", err)
	}
	if cerr := s.writeCheckpoint(); cerr != nil {
		err = errors.Join(err, cerr)
	}
	if cerr := s.idx.Close(); cerr != nil {
		err = errors.Join(err, fmt.Errorf("engine: close index: %w", cerr))
	}
	s.cqs.Close()
	if cerr := s.ckpt.close(); cerr != nil {
		err = errors.Join(err, fmt.Errorf("engine: close checkpoint: %w", cerr))
	}
	if s.backend != nil {
		if cerr := s.backend.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("engine: close backend: %w", cerr))
		}
	}
	if err == nil {
		err = removeAbortMarker(s.cfg.FS, s.cfg.Dir)
	}
	return err
}

// closeParts closes whatever openParts opened (a failed Open).
func (s *Store) closeParts() {
	if s.idx != nil {
		_ = s.idx.Close()
	}
	if s.cqs != nil {
		s.cqs.Close()
	}
	if s.log != nil {
		_ = s.log.Close()
	}
	if s.backend != nil {
		_ = s.backend.Close()
	}
}
