package commitlog

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"sort"
)

// recover opens the segments, finds the end of the valid records and truncates the
// torn tail. It returns the offset where appends continue.
func (l *Log) recover(checkpoint int64) (int64, error) {
	starts, err := l.listSegments()
	if err != nil {
		return 0, err
	}
	if len(starts) == 0 {
		if err := l.prewrite(0, nil); err != nil {
			return 0, err
		}
		l.segmentsAllocated.Add(1)
		starts = []int64{0}
	}
	segs := make([]*segment, 0, len(starts))
	for _, st := range starts {
		s, err := l.openSegment(st, false)
		if err != nil {
			closeAll(segs)
			return 0, err
		}
		segs = append(segs, s)
	}
	idx := sort.Search(len(segs), func(i int) bool { return segs[i].start > checkpoint }) - 1
	idx = max(idx, 0)
	end := l.scanEnd(segs, idx)
	segs, err = l.truncateAfter(segs, end)
	if err != nil {
		closeAll(segs)
		return 0, err
	}
	l.mu.segs = segs
	return end, nil
}

func closeAll(segs []*segment) {
	for _, s := range segs {
		s.closeFiles()
	}
}

// scanEnd walks the records from segs[idx]'s start and returns the offset of the
// first byte that is not part of a valid record.
func (l *Log) scanEnd(segs []*segment, idx int) int64 {
	S := l.segSize
	for i := idx; i < len(segs); i++ {
		s := segs[i]
		if i > idx && s.start != segs[i-1].start+S {
			return segs[i-1].start + S // a missing segment after a blank
		}
		pos, ok := l.scanSegment(s)
		if !ok {
			return s.start + pos
		}
	}
	return segs[len(segs)-1].start + S
}

// scanSegment returns the position after the last valid record of s, and whether the
// segment is complete (closed by a blank marker).
func (l *Log) scanSegment(s *segment) (pos int64, complete bool) {
	S := l.segSize
	for pos+8 <= S {
		size := int64(binary.BigEndian.Uint32(s.view[pos:]))
		magic := binary.BigEndian.Uint32(s.view[pos+4:])
		if magic == BlankMagic && size == S-pos {
			return S, true
		}
		if size == 0 && magic == 0 {
			return pos, false
		}
		n, err := l.cfg.Validate(s.view[pos:])
		if err == nil && (n <= 0 || int64(n)+8 > S-pos) {
			err = fmt.Errorf("record size %d does not fit the %d bytes left", n, S-pos)
		}
		if err != nil {
			l.cfg.Logger.Warn("commitlog: recovery stops at a torn or corrupt record",
				"path", s.path, "offset", pos, "physical", s.start+pos, "err", err)
			return pos, false
		}
		pos += int64(n)
	}
	return pos, false
}

// truncateAfter makes end the log's end: it removes the segments after the one
// holding end, zeroes that segment from end on (so a later scan stops there), creates
// it if it is missing, and opens its writer.
func (l *Log) truncateAfter(segs []*segment, end int64) ([]*segment, error) {
	endStart := end - end%l.segSize
	removed := false
	for len(segs) > 0 && segs[len(segs)-1].start > endStart {
		s := segs[len(segs)-1]
		segs = segs[:len(segs)-1]
		s.closeFiles()
		l.cfg.Logger.Info("commitlog: recovery removes a segment past the end", "path", s.path, "end", end)
		if err := l.cfg.FS.Remove(s.path); err != nil {
			return segs, fmt.Errorf("remove %s: %w", s.path, err)
		}
		removed = true
	}
	if removed {
		if err := l.cfg.FS.SyncDir(l.dir); err != nil {
			return segs, fmt.Errorf("sync dir %s: %w", l.dir, err)
		}
	}
	if len(segs) == 0 || segs[len(segs)-1].start != endStart {
		if err := l.prewrite(endStart, nil); err != nil {
			return segs, err
		}
		l.segmentsAllocated.Add(1)
		s, err := l.openSegment(endStart, false)
		if err != nil {
			return segs, err
		}
		segs = append(segs, s)
	}
	s := segs[len(segs)-1]
	w, err := l.backend.Open(l.cfg.FS, s.path)
	if err != nil {
		return segs, fmt.Errorf("open segment %s for writing: %w", s.path, err)
	}
	s.w = w
	return segs, l.zeroTail(s, end-endStart)
}

// zeroTail overwrites the non-zero bytes of s from fileOff to its end with zeros and
// syncs them.
func (l *Log) zeroTail(s *segment, fileOff int64) error {
	wrote := false
	for off := fileOff; off < l.segSize; {
		n := min(int64(zeroChunkBytes)-off%zeroChunkBytes, l.segSize-off)
		if !allZero(s.view[off : off+n]) {
			if err := s.w.WriteAt([][]byte{zeroChunk[:n]}, off); err != nil {
				return fmt.Errorf("zero torn tail of %s at %d: %w", s.path, off, err)
			}
			wrote = true
		}
		off += n
	}
	if !wrote {
		return nil
	}
	if err := s.w.Sync(); err != nil {
		return fmt.Errorf("zero torn tail of %s: %w", s.path, err)
	}
	return nil
}

func allZero(b []byte) bool {
	for len(b) > 0 {
		n := min(len(b), zeroChunkBytes)
		if !bytes.Equal(b[:n], zeroChunk[:n]) {
			return false
		}
		b = b[n:]
	}
	return true
}
