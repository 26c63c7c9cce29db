package engine

import (
	"errors"
	"fmt"
	"math"

	"github.com/ringmq/ringmq/engine/commitlog"
	"github.com/ringmq/ringmq/engine/consumequeue"
	"github.com/ringmq/ringmq/engine/record"
)

// GetStatus is the outcome of GetMessages (RocketMQ GetMessageStatus). The broker maps
// it to a pull response code (PROTOCOL.md §2.6).
type GetStatus uint8

// Statuses.
const (
	Found               GetStatus = iota // Records holds messages
	NoMatchedMessage                     // entries scanned, none passed the filter (retry at NextBeginOffset)
	NoMessageInQueue                     // the queue is empty or does not exist
	OffsetFoundNull                      // the entry's file is missing
	OffsetOverflowOne                    // offset == max: nothing new yet (long-poll)
	OffsetOverflowBadly                  // offset > max
	OffsetTooSmall                       // offset < min
	MessageWasRemoving                   // the records were deleted under the scan (retry)
)

var statusNames = [...]string{"FOUND", "NO_MATCHED_MESSAGE", "NO_MESSAGE_IN_QUEUE", "OFFSET_FOUND_NULL",
	"OFFSET_OVERFLOW_ONE", "OFFSET_OVERFLOW_BADLY", "OFFSET_TOO_SMALL", "MESSAGE_WAS_REMOVING"}

func (s GetStatus) String() string {
	if int(s) < len(statusNames) {
		return statusNames[s]
	}
	return fmt.Sprintf("GetStatus(%d)", uint8(s))
}

// MessageFilter selects messages: first by the consume queue's tags code, then
// exactly on the stored record's properties. A nil MessageFilter matches all.
type MessageFilter interface {
	MatchTagsCode(tagsCode int64) bool
	MatchProperties(props []byte) bool
}

// getChunkEntries is how many consume-queue entries GetMessages reads at once.
const getChunkEntries = 32

// GetResult is GetMessages' answer. Records are views of the stored records (not
// copies); the slice is reused by the next GetMessages into the same GetResult, which
// must come after Release.
type GetResult struct {
	Status          GetStatus
	NextBeginOffset int64
	MinOffset       int64
	MaxOffset       int64
	Records         [][]byte
	TotalBytes      int

	releases []func()
	entries  []consumequeue.Entry
	scratch  []byte
}

// Release unpins the records; call it once they are written out.
func (r *GetResult) Release() {
	for _, rel := range r.releases {
		rel()
	}
	clear(r.releases)
	r.releases = r.releases[:0]
	clear(r.Records)
	r.Records = r.Records[:0]
	r.TotalBytes = 0
}

// GetMessages reads up to maxNums messages (and, past the first, maxBytes bytes;
// <= 0 is no limit) of topic/queueID from offset that pass f, into into. Statuses
// follow RocketMQ: empty queue -> NoMessageInQueue (next 0); offset < min ->
// OffsetTooSmall (next min); offset == max -> OffsetOverflowOne (next offset);
// offset > max -> OffsetOverflowBadly (next max); entries scanned but none matched ->
// NoMatchedMessage (next after them). At most max(MaxGetScanEntries, maxNums)
// entries are scanned. It allocates nothing once into's buffers have grown.
func (s *Store) GetMessages(topic string, queueID int32, offset int64, maxNums int, maxBytes int, f MessageFilter, into *GetResult) error {
	if len(into.releases) > 0 {
		panic("BUG: engine.GetMessages: GetResult reused before Release")
	}
	into.Records, into.TotalBytes = into.Records[:0], 0
	q := s.cqs.Get(topic, queueID)
	if q == nil {
		into.Status, into.NextBeginOffset, into.MinOffset, into.MaxOffset = NoMessageInQueue, 0, 0, 0
		return nil
	}
	minOff, maxOff := q.MinOffset(), q.MaxOffset()
	into.MinOffset, into.MaxOffset = minOff, maxOff
	switch {
	case maxOff == 0:
		into.Status, into.NextBeginOffset = NoMessageInQueue, 0
	case offset < minOff:
		into.Status, into.NextBeginOffset = OffsetTooSmall, minOff
	case offset == maxOff:
		into.Status, into.NextBeginOffset = OffsetOverflowOne, offset
	case offset > maxOff:
		into.Status, into.NextBeginOffset = OffsetOverflowBadly, maxOff
	default:
		return s.scanQueue(q, offset, maxOff, max(maxNums, 1), maxBytes, f, into)
	}
	return nil
}

func (s *Store) scanQueue(q *consumequeue.Queue, offset, maxOff int64, maxNums, maxBytes int, f MessageFilter, into *GetResult) error {
	if cap(into.entries) < getChunkEntries {
		into.entries = make([]consumequeue.Entry, getChunkEntries)
		into.scratch = make([]byte, getChunkEntries*consumequeue.EntrySizeBytes)
	}
	if maxBytes <= 0 {
		maxBytes = math.MaxInt
	}
	status, next := NoMessageInQueue, offset
	limit := offset + int64(max(MaxGetScanEntries, maxNums))
scan:
	for next < min(limit, maxOff) {
		ents, err := q.Read(next, into.entries[:min(int64(getChunkEntries), limit-next)], into.scratch)
		if errors.Is(err, consumequeue.ErrOutOfRange) {
			break // the min moved past us
		}
		if err != nil {
			into.Release()
			return fmt.Errorf("engine: get %s/%d at %d: %w", q.Topic(), q.QueueID(), next, err)
		}
		for _, e := range ents {
			if len(into.Records) >= maxNums || into.TotalBytes > 0 && into.TotalBytes+int(e.SizeBytes) > maxBytes {
				break scan
			}
			next++
			st, err := s.takeEntry(e, f, into)
			if err != nil {
				into.Release()
				return fmt.Errorf("engine: get %s/%d at %d: %w", q.Topic(), q.QueueID(), next-1, err)
			}
			if st == Found || into.TotalBytes == 0 {
				status = st
			}
		}
	}
	into.Status, into.NextBeginOffset = status, next
	return nil
}

// takeEntry adds the entry's record to into if it passes f; it returns Found or why not.
func (s *Store) takeEntry(e consumequeue.Entry, f MessageFilter, into *GetResult) (GetStatus, error) {
	if e.IsHole() || f != nil && !f.MatchTagsCode(e.TagsCode) {
		return NoMatchedMessage, nil
	}
	b, release, err := s.log.Read(e.PhysicalOffset, int(e.SizeBytes))
	if errors.Is(err, commitlog.ErrOutOfRange) {
		return MessageWasRemoving, nil
	}
	if err != nil {
		return 0, err
	}
	if f != nil {
		v, err := record.Decode(b)
		if err != nil {
			release()
			return 0, s.corruptAt(e.PhysicalOffset, fmt.Errorf("record named by the consume queue: %w", err))
		}
		if !f.MatchProperties(v.Properties()) {
			release()
			return NoMatchedMessage, nil
		}
	}
	into.Records = append(into.Records, b)
	into.releases = append(into.releases, release)
	into.TotalBytes += len(b)
	return Found, nil
}

// MinOffset is the queue's first readable offset (0 for an unknown queue).
func (s *Store) MinOffset(topic string, queueID int32) int64 {
	if q := s.cqs.Get(topic, queueID); q != nil {
		return q.MinOffset()
	}
	return 0
}

// MaxOffset is the queue's next offset to be written, as consumers see it (0 for an
// unknown queue).
func (s *Store) MaxOffset(topic string, queueID int32) int64 {
	if q := s.cqs.Get(topic, queueID); q != nil {
		return q.MaxOffset()
	}
	return 0
}

// storeTimeOf returns the store time of an entry's record; a record already deleted
// counts as older than anything.
func (s *Store) storeTimeOf(e consumequeue.Entry) (int64, error) {
	b, release, err := s.log.Read(e.PhysicalOffset, int(e.SizeBytes))
	if errors.Is(err, commitlog.ErrOutOfRange) {
		return math.MinInt64, nil
	}
	if err != nil {
		return 0, err
	}
	defer release()
	v, err := record.Decode(b)
	if err != nil {
		return 0, s.corruptAt(e.PhysicalOffset, fmt.Errorf("record named by the consume queue: %w", err))
	}
	return v.StoreTimestampMs(), nil
}

// OffsetByTime returns the first offset of the queue whose message was stored at or
// after timestampMs; MaxOffset when none was, MinOffset when all were (RocketMQ 5's
// lower boundary; 4.x picks the nearer neighbour). It reads O(log n) records.
func (s *Store) OffsetByTime(topic string, queueID int32, timestampMs int64) int64 {
	q := s.cqs.Get(topic, queueID)
	if q == nil {
		return 0
	}
	off, err := q.OffsetByTime(timestampMs, s.storeTimeOf)
	if err != nil {
		s.cfg.Logger.Error("engine: offset by time", "topic", topic, "queue", queueID, "err", err)
		return q.MinOffset()
	}
	return off
}

// EarliestStoreTime is the store time of the queue's oldest message.
func (s *Store) EarliestStoreTime(topic string, queueID int32) (int64, error) {
	q := s.cqs.Get(topic, queueID)
	if q == nil {
		return 0, fmt.Errorf("engine: earliest store time of %s/%d: %w", topic, queueID, ErrNotFound)
	}
	e, ok, err := q.OldestEntry()
	if err != nil {
		return 0, fmt.Errorf("engine: earliest store time of %s/%d: %w", topic, queueID, err)
	}
	if !ok {
		return 0, fmt.Errorf("engine: earliest store time of %s/%d: %w", topic, queueID, ErrNotFound)
	}
	return s.storeTimeOf(e)
}
