package consumequeue

import (
	"errors"
	"fmt"
	"io"
)

// readRaw reads entries [offset, offset+len(dst)) within one file, ignoring the
// published bounds (Read checks them; recovery and maintenance run on the writer's
// goroutine). Offsets inside a missing file, or past a file's end, read as holes.
func (q *Queue) readRaw(offset int64, dst []Entry, scratch []byte) error {
	f := q.pin(offset)
	if f == nil {
		clear(dst)
		return nil
	}
	defer f.unref()
	buf := scratch[:len(dst)*EntrySizeBytes]
	pos := (offset - f.start) * EntrySizeBytes
	vf, err := f.file()
	if err != nil {
		return err
	}
	if got, err := vf.ReadAt(buf, pos); err != nil {
		if !errors.Is(err, io.EOF) {
			return fmt.Errorf("consumequeue: read %s at %d: %w", f.path, pos, err)
		}
		clear(buf[got-got%EntrySizeBytes:]) // past the file's end (a gap): holes
	}
	for i := range dst {
		dst[i] = DecodeEntry(buf[i*EntrySizeBytes:])
	}
	return nil
}

// TruncateFrom drops the entries at the queue's end that point at or past phys, and
// holes there: recovery calls it with the commit-log point past which it rebuilds.
// Entries are in commit-log order, so it walks back from the end.
func (q *Queue) TruncateFrom(phys int64) error {
	if len(q.pending) > 0 {
		panic("BUG: consumequeue.TruncateFrom with uncommitted entries")
	}
	lowest, newMax := q.MinOffset(), q.MaxOffset()
	var chunk [maxScanChunkEntries]Entry
	var scratch [maxScanChunkEntries * EntrySizeBytes]byte
scan:
	for newMax > lowest {
		s := max(lowest, newMax-maxScanChunkEntries, (newMax-1)-(newMax-1)%q.perFile)
		part := chunk[:newMax-s]
		if err := q.readRaw(s, part, scratch[:]); err != nil {
			return err
		}
		for i := len(part) - 1; i >= 0; i-- {
			if !part[i].IsHole() && part[i].PhysicalOffset < phys {
				break scan
			}
			newMax = s + int64(i)
		}
	}
	if newMax == lowest && newMax < q.MaxOffset() {
		// Nothing is left: forget the base too, so that a rebuild can start the queue
		// wherever its first record says (its head files may be gone).
		q.minOffset.Store(0)
		return q.cutAt(0)
	}
	return q.cutAt(newMax)
}

// cutAt removes every entry from offset on: files that start at or past it and the
// tail of the file holding it.
func (q *Queue) cutAt(offset int64) error {
	q.mu.Lock()
	var drop []*cqFile
	keep := q.mu.files[:0]
	for _, f := range q.mu.files {
		if f.start >= offset {
			drop = append(drop, f)
		} else {
			keep = append(keep, f)
		}
	}
	clear(q.mu.files[len(keep):])
	q.mu.files = keep
	var last *cqFile
	if len(keep) > 0 && keep[len(keep)-1].start+q.perFile > offset {
		last = keep[len(keep)-1]
		last.refs.Add(1)
	}
	q.mu.Unlock()
	q.maxOffset.Store(offset)
	if offset < q.MinOffset() {
		q.minOffset.Store(offset)
	}
	err := q.removeFiles(drop)
	if last != nil {
		size := (offset - last.start) * EntrySizeBytes
		vf, ferr := last.file()
		if ferr != nil {
			err = errors.Join(err, ferr)
		} else if terr := vf.Truncate(size); terr != nil {
			err = errors.Join(err, fmt.Errorf("consumequeue: truncate %s to %d: %w", last.path, size, terr))
		} else if serr := vf.Sync(); serr != nil {
			err = errors.Join(err, fmt.Errorf("consumequeue: sync %s: %w", last.path, serr))
		}
		last.unref()
	}
	return err
}

func (q *Queue) removeFiles(files []*cqFile) error {
	var err error
	for _, f := range files {
		f.removed.Store(true)
		if rerr := q.fs.Remove(f.path); rerr != nil {
			err = errors.Join(err, fmt.Errorf("consumequeue: remove %s: %w", f.path, rerr))
		}
		f.unref()
	}
	if len(files) > 0 {
		if serr := q.fs.SyncDir(q.dir); serr != nil {
			err = errors.Join(err, fmt.Errorf("consumequeue: sync dir %s: %w", q.dir, serr))
		}
	}
	return err
}

// AdvanceMin moves the min offset to the first entry whose record is at or past
// physMin (the commit log's new start) and deletes files wholly below it.
func (q *Queue) AdvanceMin(physMin int64) error {
	lo, hi := q.MinOffset(), q.MaxOffset()
	var one [1]Entry
	var scratch [EntrySizeBytes]byte
	for lo < hi { // first offset whose entry is a message at or past physMin
		m := lo + (hi-lo)/2
		if err := q.readRaw(m, one[:], scratch[:]); err != nil {
			return err
		}
		if !one[0].IsHole() && one[0].PhysicalOffset >= physMin {
			hi = m
		} else {
			lo = m + 1
		}
	}
	if lo <= q.MinOffset() {
		return nil
	}
	q.minOffset.Store(lo)
	q.mu.Lock()
	var drop []*cqFile
	keep := q.mu.files[:0]
	for _, f := range q.mu.files {
		if f.start+q.perFile <= lo {
			drop = append(drop, f)
		} else {
			keep = append(keep, f)
		}
	}
	clear(q.mu.files[len(keep):])
	q.mu.files = keep
	q.mu.Unlock()
	return q.removeFiles(drop)
}

// OffsetByTime returns the first offset whose message was stored at or after
// timestampMs (MaxOffset when none was, MinOffset when all were), by binary search;
// storeTime returns the store timestamp of an entry's record and is called O(log n)
// times. Holes are skipped forward.
func (q *Queue) OffsetByTime(timestampMs int64, storeTime func(Entry) (int64, error)) (int64, error) {
	lo, hi := q.MinOffset(), q.MaxOffset()
	for lo < hi {
		m := lo + (hi-lo)/2
		e, at, err := q.nextMessage(m, hi)
		if err != nil {
			return 0, err
		}
		if at == hi { // only holes in [m, hi)
			hi = m
			continue
		}
		t, err := storeTime(e)
		if err != nil {
			return 0, err
		}
		if t < timestampMs {
			lo = at + 1
		} else {
			hi = m // [m, at) are holes: starting at m is as good as at
		}
	}
	return lo, nil
}

// nextMessage returns the first non-hole entry in [from, limit) and its offset (limit
// when there is none).
func (q *Queue) nextMessage(from, limit int64) (Entry, int64, error) {
	var chunk [16]Entry
	var scratch [16 * EntrySizeBytes]byte
	for from < limit {
		n := min(int64(len(chunk)), limit-from, q.perFile-from%q.perFile)
		got, err := q.Read(from, chunk[:n], scratch[:])
		if err != nil {
			if errors.Is(err, ErrOutOfRange) {
				return Entry{}, limit, nil
			}
			return Entry{}, 0, err
		}
		for i, e := range got {
			if !e.IsHole() {
				return e, from + int64(i), nil
			}
		}
		from += int64(len(got))
	}
	return Entry{}, limit, nil
}

// OldestEntry returns the first non-hole entry at or after MinOffset.
func (q *Queue) OldestEntry() (Entry, bool, error) {
	e, at, err := q.nextMessage(q.MinOffset(), q.MaxOffset())
	if err != nil || at == q.MaxOffset() {
		return Entry{}, false, err
	}
	return e, true, nil
}

// syncDirty fdatasyncs the files written since their last sync.
func (q *Queue) syncDirty() error {
	q.mu.RLock()
	var buf [4]*cqFile
	dirty := buf[:0]
	for _, f := range q.mu.files {
		if f.dirty.Load() && !f.removed.Load() {
			f.refs.Add(1)
			dirty = append(dirty, f)
		}
	}
	q.mu.RUnlock()
	var err error
	for _, f := range dirty {
		f.dirty.Store(false)
		vf, serr := f.file()
		if serr == nil {
			serr = vf.Sync()
		}
		if serr != nil {
			f.dirty.Store(true)
			err = errors.Join(err, fmt.Errorf("consumequeue: sync %s: %w", f.path, serr))
		}
		f.unref()
	}
	return err
}

// close drops the list's references (files close when their readers finish).
func (q *Queue) close() {
	q.mu.Lock()
	files := q.mu.files
	q.mu.files = nil
	q.mu.Unlock()
	for _, f := range files {
		f.unref()
	}
	q.minOffset.Store(0)
	q.maxOffset.Store(0)
}
