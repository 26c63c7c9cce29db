package commitlog

import (
	"encoding/binary"
	"fmt"
)

// Read returns the sizeBytes bytes at physicalOffset without copying: a view into the
// read-only mapping of the segment. The view must not be modified and is valid until
// release is called; until then the segment is not deleted. The bytes must lie inside
// one segment and in [MinOffset, WrittenOffset) (under SYNC_FLUSH the Store limits
// consumers to DurableOffset, via OnDurable). Read does not allocate.
func (l *Log) Read(physicalOffset int64, sizeBytes int) (b []byte, release func(), err error) {
	s, fileOff, err := l.pin(physicalOffset, int64(sizeBytes))
	if err != nil {
		return nil, nil, err
	}
	return s.view[fileOff : fileOff+int64(sizeBytes) : fileOff+int64(sizeBytes)], s.releaseFn, nil
}

// pin finds and pins the segment holding [off, off+n).
func (l *Log) pin(off, n int64) (*segment, int64, error) {
	start := off - off%l.segSize
	if n <= 0 || off < 0 || off+n > l.ring.WrittenOffset() || off+n > start+l.segSize {
		return nil, 0, fmt.Errorf("%w: read [%d, +%d) (written %d, segment size %d)", ErrOutOfRange, off, n, l.ring.WrittenOffset(), l.segSize)
	}
	l.mu.RLock()
	s := findIn(l.mu.segs, start)
	if s != nil {
		s.pins.Add(1) // under the read lock: deletion removes the segment under the write lock first
	}
	l.mu.RUnlock()
	if s == nil {
		return nil, 0, fmt.Errorf("%w: read at %d: segment %d is gone (min offset %d)", ErrOutOfRange, off, start, l.MinOffset())
	}
	return s, off - start, nil
}

// Scan calls fn with each record from physical offset from (a record boundary) up to
// WrittenOffset at the time of the call, in order, until fn returns false. rec is a
// view valid only during the call. Blank markers are skipped. A record that Validate
// rejects is returned as a *CorruptError.
func (l *Log) Scan(from int64, fn func(physicalOffset int64, rec []byte) bool) error {
	limit := l.ring.WrittenOffset()
	for off := from; off < limit; {
		start := off - off%l.segSize
		segLimit := min(limit, start+l.segSize) - start
		s, pos, err := l.pin(off, segLimit-(off-start))
		if err != nil {
			return err
		}
		next, cont, err := l.scanIn(s, pos, segLimit, fn)
		s.unpin()
		if err != nil || !cont {
			return err
		}
		off = s.start + next
	}
	return nil
}

// scanIn walks the records of s in [pos, segLimit); it returns where it stopped.
func (l *Log) scanIn(s *segment, pos, segLimit int64, fn func(int64, []byte) bool) (int64, bool, error) {
	for pos < segLimit {
		if segLimit-pos < 8 {
			return pos, false, &CorruptError{File: s.path, OffBytes: pos, PhysBytes: s.start + pos, Err: fmt.Errorf("%d bytes left, not a record", segLimit-pos)}
		}
		size := int64(binary.BigEndian.Uint32(s.view[pos:]))
		if binary.BigEndian.Uint32(s.view[pos+4:]) == BlankMagic && size == l.segSize-pos {
			return l.segSize, true, nil
		}
		n, err := l.cfg.Validate(s.view[pos:segLimit])
		if err == nil && (n <= 0 || int64(n) > segLimit-pos) {
			err = fmt.Errorf("record size %d past the %d readable bytes", n, segLimit-pos)
		}
		if err != nil {
			return pos, false, &CorruptError{File: s.path, OffBytes: pos, PhysBytes: s.start + pos, Err: err}
		}
		if !fn(s.start+pos, s.view[pos:pos+int64(n):pos+int64(n)]) {
			return pos, false, nil
		}
		pos += int64(n)
	}
	return pos, true, nil
}
