package commitlog

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/ringmq/ringmq/flush"
	"github.com/ringmq/ringmq/perf"
)

// ErrRecordSize: an Encoder's Size is not in 1..MaxRecordBytes.
var ErrRecordSize = errors.New("commitlog: record size out of range")

// Append appends one record and returns its physical offset. Under SYNC_FLUSH, w (if
// not nil) is completed once an fdatasync covering the record returned (or with why
// not: flush.ErrFlushTimeout, ErrDiskFull, an ErrStoreFailed error); under ASYNC_FLUSH
// it is completed before Append returns. When Append returns an error, the record was
// not appended and w is not called.
func (l *Log) Append(e Encoder, w Waiter) (physicalOffset int64, err error) {
	off, err := l.begin(w)
	if err != nil {
		return 0, err
	}
	if off, err = l.appendOne(e, off); err != nil {
		l.ring.Abort()
		return 0, err
	}
	if err := l.ring.Commit(w); err != nil {
		return 0, err
	}
	return off, nil
}

// AppendBatch appends the records of es back to back (a roll may separate them) and
// completes w once, when all are durable. It returns the first record's offset; each
// Encoder learns its own in Encode. Either all records are appended or none.
func (l *Log) AppendBatch(es []Encoder, w Waiter) (firstOffset int64, err error) {
	if len(es) == 0 {
		panic("BUG: commitlog: AppendBatch with no records")
	}
	off, err := l.begin(w)
	if err != nil {
		return 0, err
	}
	for i, e := range es {
		recOff, err := l.appendOne(e, off)
		if err != nil {
			l.ring.Abort()
			return 0, err
		}
		if i == 0 {
			firstOffset = recOff
		}
		off = recOff + int64(e.Size())
	}
	if err := l.ring.Commit(w); err != nil {
		return 0, err
	}
	return firstOffset, nil
}

func (l *Log) begin(w Waiter) (int64, error) {
	off, err := l.ring.Begin(w != nil)
	if err != nil && errors.Is(err, ErrDiskFull) {
		kick(l.janitorKick) // re-check the space now: appends resume by themselves
	}
	return off, err
}

// appendOne places one record at off (after a blank marker and a roll if it does not
// fit the segment), encodes it into the ring, and returns its offset. Called between
// ring.Begin and ring.Commit (the append lock is held).
func (l *Log) appendOne(e Encoder, off int64) (int64, error) {
	n := e.Size()
	if n <= 0 || n > l.cfg.MaxRecordBytes {
		return 0, fmt.Errorf("%w: %d bytes (max %d)", ErrRecordSize, n, l.cfg.MaxRecordBytes)
	}
	segStart := off - off%l.segSize
	if free := segStart + l.segSize - off; int64(n)+8 > free {
		if err := l.writeBlank(free); err != nil {
			return 0, err
		}
		off = segStart + l.segSize
		if err := l.activate(off); err != nil {
			return 0, err
		}
	}
	dst, err := l.ring.Reserve(n)
	if err != nil {
		return 0, err
	}
	e.Encode(dst, off)
	return off, nil
}

// writeBlank fills the rest of the segment: the 8-byte blank marker, then zeros.
func (l *Log) writeBlank(free int64) error {
	dst, err := l.ring.Reserve(int(free))
	if err != nil {
		return err
	}
	binary.BigEndian.PutUint32(dst[0:4], uint32(free))
	binary.BigEndian.PutUint32(dst[4:8], BlankMagic)
	clear(dst[8:])
	return nil
}

// activate makes the pre-written segment starting at start part of the log, waiting
// for the allocator if it is not ready (bounded by SyncTimeout). It never creates a
// file itself.
func (l *Log) activate(start int64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if findIn(l.mu.segs, start) != nil {
		return nil
	}
	var waitStartNs int64
	for len(l.mu.ready) == 0 || l.mu.ready[0].start != start {
		if len(l.mu.ready) > 0 && l.mu.ready[0].start < start {
			panic(fmt.Sprintf("BUG: commitlog: ready segment %d behind activation %d", l.mu.ready[0].start, start))
		}
		if l.mu.closed {
			return ErrClosed
		}
		now := perf.Now()
		if waitStartNs == 0 {
			waitStartNs = now
			l.allocWaits.Add(1)
			kick(l.allocKick)
		} else if l.mu.allocErr != nil || now-waitStartNs > int64(l.cfg.SyncTimeout) {
			l.allocWaitNs.Add(now - waitStartNs)
			if l.mu.allocErr != nil {
				return l.mu.allocErr
			}
			return fmt.Errorf("%w: segment %d not pre-written in %v", flush.ErrBusy, start, l.cfg.SyncTimeout)
		}
		l.allocCond.Wait()
	}
	if waitStartNs != 0 {
		l.allocWaitNs.Add(perf.Now() - waitStartNs)
	}
	s := l.mu.ready[0]
	l.mu.ready = l.mu.ready[1:]
	l.mu.segs = append(l.mu.segs, s)
	kick(l.allocKick)
	return nil
}
