package timer

import (
	"errors"
	"fmt"
	"io"
	"path"
	"strconv"
	"strings"

	"github.com/ringmq/ringmq/flush/vfs"
)

// DefaultSegmentBytes is the size of a timer-log segment: 2^20 entries (48 MiB).
const DefaultSegmentBytes = EntrySizeBytes << 20

// segLog is the timer log as one byte space split into segment files named
// "timerlog.<first position, 20 digits>", each segBytes long when full. Leading segments
// whose every entry is in a delivered slot are deleted (deleteDelivered), so the log holds
// about one delay horizon of entries.
type segLog struct {
	fs       vfs.FS
	dir      string
	segBytes int64
	segs     []*segment // ascending, contiguous
}

type segment struct {
	base    int64
	f       vfs.File
	maxSlot int64 // the latest SlotMs of its entries (math.MinInt64 when none)
}

const segPrefix = logName + "."

func segName(base int64) string { return fmt.Sprintf("%s%020d", segPrefix, base) }

// openSegLog opens the segments in dir, creating the first one when there is none (the
// caller syncs the directory).
func openSegLog(fsys vfs.FS, dir string, segBytes int64) (*segLog, bool, error) {
	l := &segLog{fs: fsys, dir: dir, segBytes: segBytes}
	names, err := fsys.List(dir)
	if err != nil {
		return nil, false, fmt.Errorf("timer: list %s: %w", dir, err)
	}
	for _, n := range names { // sorted: 20-digit bases sort by number
		rest, ok := strings.CutPrefix(n, segPrefix)
		if !ok {
			continue
		}
		base, err := strconv.ParseInt(rest, 10, 64)
		if err != nil || base%segBytes != 0 {
			return nil, false, fmt.Errorf("timer: %s in %s is not a segment of %d bytes", n, dir, segBytes)
		}
		if len(l.segs) > 0 && base != l.segs[len(l.segs)-1].base+segBytes {
			return nil, false, fmt.Errorf("timer: segment %s does not follow %s", n, segName(l.segs[len(l.segs)-1].base))
		}
		f, err := fsys.OpenReadWrite(path.Join(dir, n))
		if err != nil {
			return nil, false, fmt.Errorf("timer: open %s: %w", n, err)
		}
		l.segs = append(l.segs, &segment{base: base, f: f, maxSlot: minSlot})
	}
	if len(l.segs) > 0 {
		return l, false, nil
	}
	if _, err := l.create(0); err != nil {
		return nil, false, err
	}
	return l, true, nil
}

func (l *segLog) create(base int64) (*segment, error) {
	f, err := l.fs.Create(path.Join(l.dir, segName(base)))
	if err != nil {
		return nil, fmt.Errorf("timer: create %s: %w", segName(base), err)
	}
	s := &segment{base: base, f: f, maxSlot: minSlot}
	l.segs = append(l.segs, s)
	return s, nil
}

const minSlot = -1 << 63

func (l *segLog) first() int64 { return l.segs[0].base }

// size is the end of the log.
func (l *segLog) size() (int64, error) {
	last := l.segs[len(l.segs)-1]
	n, err := last.f.Size()
	if err != nil {
		return 0, fmt.Errorf("timer: size of %s: %w", segName(last.base), err)
	}
	return last.base + n, nil
}

// segmentOf returns the segment holding pos, or nil when pos is before the first one.
func (l *segLog) segmentOf(pos int64) *segment {
	i := (pos - l.first()) / l.segBytes
	if pos < l.first() || i >= int64(len(l.segs)) {
		return nil
	}
	return l.segs[i]
}

// readAt fills p from pos, across segments.
func (l *segLog) readAt(p []byte, pos int64) error {
	for len(p) > 0 {
		s := l.segmentOf(pos)
		if s == nil {
			return fmt.Errorf("timer: read the log at %d: no segment holds it (first %d)", pos, l.first())
		}
		n := min(int64(len(p)), s.base+l.segBytes-pos)
		if _, err := s.f.ReadAt(p[:n], pos-s.base); err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("timer: read %s at %d: %w", segName(s.base), pos-s.base, err)
		}
		p, pos = p[n:], pos+n
	}
	return nil
}

// writeAt writes p at pos (the end of the log), creating segments as needed, and
// returns the segments written; new segment files are in the directory durably.
func (l *segLog) writeAt(p []byte, pos int64, touched []*segment) ([]*segment, error) {
	created := false
	for len(p) > 0 {
		s := l.segmentOf(pos)
		if s == nil {
			var err error
			if s, err = l.create(pos - (pos-l.first())%l.segBytes); err != nil {
				return touched, err
			}
			created = true
		}
		n := min(int64(len(p)), s.base+l.segBytes-pos)
		if _, err := s.f.WriteAt(p[:n], pos-s.base); err != nil {
			return touched, fmt.Errorf("timer: write %s: %w", segName(s.base), err)
		}
		touched = append(touched, s)
		p, pos = p[n:], pos+n
	}
	if created {
		if err := l.fs.SyncDir(l.dir); err != nil {
			return touched, fmt.Errorf("timer: sync %s: %w", l.dir, err)
		}
	}
	return touched, nil
}

// truncate cuts the log at end: the segment holding it is truncated, later ones removed.
func (l *segLog) truncate(end int64) error {
	for len(l.segs) > 1 && l.segs[len(l.segs)-1].base > end {
		last := l.segs[len(l.segs)-1]
		_ = last.f.Close()
		if err := l.fs.Remove(path.Join(l.dir, segName(last.base))); err != nil {
			return fmt.Errorf("timer: remove %s past the torn tail: %w", segName(last.base), err)
		}
		l.segs = l.segs[:len(l.segs)-1]
	}
	last := l.segs[len(l.segs)-1]
	if err := last.f.Truncate(end - last.base); err != nil {
		return fmt.Errorf("timer: truncate %s at %d: %w", segName(last.base), end-last.base, err)
	}
	if err := last.f.Sync(); err != nil {
		return fmt.Errorf("timer: sync %s: %w", segName(last.base), err)
	}
	return l.fs.SyncDir(l.dir)
}

// deleteDelivered removes the leading full segments whose entries are all in slots
// before slotLimit; the last segment always stays.
func (l *segLog) deleteDelivered(slotLimit int64) error {
	removed := false
	for len(l.segs) > 1 && l.segs[0].maxSlot < slotLimit {
		s := l.segs[0]
		_ = s.f.Close()
		if err := l.fs.Remove(path.Join(l.dir, segName(s.base))); err != nil {
			return fmt.Errorf("timer: remove delivered %s: %w", segName(s.base), err)
		}
		l.segs = l.segs[1:]
		removed = true
	}
	if removed {
		if err := l.fs.SyncDir(l.dir); err != nil {
			return fmt.Errorf("timer: sync %s: %w", l.dir, err)
		}
	}
	return nil
}

func (l *segLog) close() error {
	var errs []error
	for _, s := range l.segs {
		errs = append(errs, s.f.Close())
	}
	l.segs = nil
	return errors.Join(errs...)
}
