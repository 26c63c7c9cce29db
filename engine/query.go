package engine

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strings"

	"github.com/ringmq/ringmq/engine/commitlog"
	"github.com/ringmq/ringmq/engine/record"
)

// ReadRecord returns the record stored at physicalOffset (from an offset msg id): a
// validated view (magic, lengths, physical offset field, body CRC), pinned until
// release is called. Under SYNC_FLUSH only durable records are returned. No record
// there is ErrNotFound.
func (s *Store) ReadRecord(physicalOffset int64) ([]byte, func(), error) {
	hdr, release, err := s.log.Read(physicalOffset, record.BlankSizeBytes)
	if err != nil {
		return nil, nil, fmt.Errorf("engine: read record at %d: %w (%v)", physicalOffset, ErrNotFound, err)
	}
	size := int64(int32(binary.BigEndian.Uint32(hdr)))
	release()
	if size < record.FixedSizeBytes || (s.cfg.FlushMode == SyncFlush && physicalOffset+size > s.log.DurableOffset()) {
		return nil, nil, fmt.Errorf("engine: read record at %d: %w", physicalOffset, ErrNotFound)
	}
	b, release, err := s.log.Read(physicalOffset, int(size))
	if err != nil {
		return nil, nil, fmt.Errorf("engine: read record at %d: %w (%v)", physicalOffset, ErrNotFound, err)
	}
	v, err := record.Decode(b)
	if err != nil || v.PhysicalOffset() != physicalOffset {
		release()
		return nil, nil, fmt.Errorf("engine: read record at %d: %w (no record starts there)", physicalOffset, ErrNotFound)
	}
	if record.BodyCRC(v.Body()) != v.BodyCRC() {
		release()
		return nil, nil, fmt.Errorf("engine: read record: %w", s.corruptAt(physicalOffset, errors.New("body CRC mismatch")))
	}
	return b, release, nil
}

// corruptAt makes the typed corruption error for the record at phys: the segment file
// and the offset inside it.
func (s *Store) corruptAt(phys int64, cause error) *commitlog.CorruptError {
	start := phys - phys%s.cfg.SegmentSizeBytes
	return &commitlog.CorruptError{
		File:     filepath.Join(s.cfg.Dir, "commitlog", commitlog.SegmentName(start)),
		OffBytes: phys - start, PhysBytes: phys, Err: cause,
	}
}

// QueryByKey returns the physical offsets (newest first, at most maxNum) of topic's
// records stored within [beginMs, endMs] whose UNIQ_KEY is key or whose KEYS holds
// key as a token. Index candidates are checked against their records.
func (s *Store) QueryByKey(topic, key string, maxNum int, beginMs, endMs int64) ([]int64, error) {
	if maxNum <= 0 {
		return nil, nil
	}
	var out []int64
	err := s.idx.Lookup([]byte(topic), []byte(key), beginMs, endMs, func(phys int64) bool {
		if !slices.Contains(out, phys) && s.recordHasKey(phys, topic, key) { // a retried dispatch may index a key twice
			out = append(out, phys)
		}
		return len(out) < maxNum
	})
	if err != nil {
		return out, fmt.Errorf("engine: query %s by key %q: %w", topic, key, err)
	}
	return out, nil
}

func (s *Store) recordHasKey(phys int64, topic, key string) bool {
	b, release, err := s.ReadRecord(phys)
	if err != nil {
		return false
	}
	defer release()
	v, err := record.Decode(b)
	if err != nil || string(v.Topic()) != topic {
		return false
	}
	if u, ok := v.Property(record.PropUniqKey); ok && string(u) == key {
		return true
	}
	keys, _ := v.Property(record.PropKeys)
	for {
		tok, rest, ok := record.NextKey(keys)
		if !ok {
			return false
		}
		if bytes.Equal(tok, []byte(key)) {
			return true
		}
		keys = rest
	}
}

// SetArrivalListener sets fn, called from the dispatcher goroutine with a queue's new
// max offset whenever messages become visible in it. fn must not block.
func (s *Store) SetArrivalListener(fn func(topic string, queueID int32, maxOffset int64)) {
	if fn == nil {
		s.listener.Store(nil)
		return
	}
	s.listener.Store(&fn)
}

// DeleteTopic drops the topic's consume queues (files and directories) and its queue
// offsets; its records stay in the commit log until retention removes them. Sends to
// the topic may continue: those appended after the call start again at queue offset 0;
// those before it, still being dispatched, are dropped with the queue.
func (s *Store) DeleteTopic(topic string) error {
	if s.closing.Load() {
		return ErrClosed
	}
	s.offMu.Lock()
	for k := range s.nextOffsets {
		if k.topic == topic {
			delete(s.nextOffsets, k)
		}
	}
	if c := s.deleteCuts[topic]; c != nil {
		c.phys, c.queuesDeleted = math.MaxInt64, false // deleted again before the cut was reached
	} else {
		s.deleteCuts[strings.Clone(topic)] = &deleteCut{phys: math.MaxInt64}
		s.deleteCutsN.Add(1)
	}
	s.offMu.Unlock()
	done := make(chan error, 1)
	select {
	case s.reqCh <- dispatchReq{kind: reqDeleteTopic, topic: topic, done: done}:
	case <-s.stopCh:
		return ErrClosed
	}
	var err error
	select {
	case err = <-done:
	case <-s.stopCh:
		return ErrClosed
	}
	if err != nil {
		return fmt.Errorf("engine: delete topic %s: %w", topic, err)
	}
	return nil
}

// Topics returns the topics that have consume queues, sorted.
func (s *Store) Topics() []string { return s.cqs.Topics() }

// QueueIDs returns the ids of topic's consume queues, ascending.
func (s *Store) QueueIDs(topic string) []int32 { return s.cqs.QueueIDs(topic) }

// Stats is a snapshot for metrics.
type Stats struct {
	commitlog.Stats        // AppendedOffset, WrittenOffset, DurableOffset, MinOffset, UnflushedBytes, OldestUnflushedAgeNs, Flush, ...
	DispatchedOffset int64 // records below are visible to consumers
	DispatchLagBytes int64 // visible in the log but not yet dispatched
	DiskUsedRatio    int   // percent of the file system holding Dir
	ConsumeQueues    int
	IndexFiles       int
	Recovery         RecoveryStats // what Open did
	DispatchFailed   string        // non-empty while dispatching fails (retried every CheckpointInterval)
}

// Stats returns a snapshot.
func (s *Store) Stats() Stats {
	st := Stats{Stats: s.log.Stats(), DispatchedOffset: s.dispatchedA.Load(), Recovery: s.recovery}
	st.DispatchLagBytes = max(0, s.visibleOffset()-st.DispatchedOffset)
	if total, free, err := s.cfg.FS.DiskUsage(s.cfg.Dir); err == nil && total > 0 {
		st.DiskUsedRatio = int((total - free) * 100 / total)
	}
	st.ConsumeQueues = len(s.cqs.Queues())
	st.IndexFiles, _ = s.idx.Stats()
	if e := s.dispatchFailed.Load(); e != nil {
		st.DispatchFailed = *e
	}
	return st
}
