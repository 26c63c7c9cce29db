package timer

import (
	"fmt"
)

// recoverChunkEntries is how many log entries recovery reads at once.
const recoverChunkEntries = 1024

// recover reads the checkpoint, truncates a torn log tail and links the entries past the
// checkpoint's LogPos that their slot does not reach yet (doc.go, Fsync order). It does
// not write the checkpoint: the tail stays the tail until the service commits, so a crash
// during or after recovery recovers the same way again.
func (w *Wheel) recover() (Recovered, error) {
	cp, err := w.readCheckpoint()
	if err != nil {
		return Recovered{}, err
	}
	if cp.seq != 0 && (cp.precisionMs != w.cfg.PrecisionMs || cp.slots != w.slots) {
		return Recovered{}, fmt.Errorf("timer: the wheel in %s was written with %d ms precision and %d slots, the configuration asks for %d ms and %d: restore timerPrecisionMs and timerMaxDelaySec",
			w.cfg.Dir, cp.precisionMs, cp.slots, w.cfg.PrecisionMs, w.slots)
	}
	w.cpSeq = cp.seq
	size, err := w.log.size()
	if err != nil {
		return Recovered{}, err
	}
	if cp.LogPos > size || cp.LogPos < w.log.first() || cp.LogPos%EntrySizeBytes != 0 {
		return Recovered{}, &CorruptError{File: logName, Offset: size, Reason: fmt.Sprintf("the checkpoint says bytes up to %d are linked, the log holds %d..%d", cp.LogPos, w.log.first(), size)}
	}
	// The segments' latest slots, for deleting delivered ones: below the checkpoint
	// every entry is whole.
	if _, end, err := w.scanEntries(w.log.first(), cp.LogPos, false); err != nil {
		return Recovered{}, err
	} else if end != cp.LogPos {
		return Recovered{}, &CorruptError{File: logName, Offset: end, Reason: "entry below the checkpoint does not verify"}
	}
	tail, end, err := w.scanEntries(cp.LogPos, size, true)
	if err != nil {
		return Recovered{}, err
	}
	if end != size {
		if err := w.log.truncate(end); err != nil {
			return Recovered{}, fmt.Errorf("timer: cut the torn tail of the log at %d: %w", end, err)
		}
	}
	w.logEnd = end
	w.enqueueOff = cp.EnqueueOffset
	for _, e := range tail {
		w.enqueueOff = max(w.enqueueOff, e.QueueOffset+1)
	}
	if err := w.relink(tail, cp.LogPos); err != nil {
		return Recovered{}, err
	}
	return Recovered{Checkpoint: cp, Tail: tail}, nil
}

// scanEntries reads the entries from pos to size, noting each segment's latest slot,
// and returns the whole ones (when keep) and where the first torn or unwritten entry
// starts.
func (w *Wheel) scanEntries(pos, size int64, keep bool) ([]Entry, int64, error) {
	var dst []Entry
	buf := make([]byte, recoverChunkEntries*EntrySizeBytes)
	for pos+EntrySizeBytes <= size {
		n := min(int64(len(buf)), (size-pos)/EntrySizeBytes*EntrySizeBytes)
		if err := w.log.readAt(buf[:n], pos); err != nil {
			return nil, 0, err
		}
		for off := int64(0); off < n; off += EntrySizeBytes {
			e, prev, ok := decodeEntry(buf[off : off+EntrySizeBytes])
			if !ok || prev >= pos+off || e.SlotMs != w.SlotOf(e.SlotMs) {
				return dst, pos + off, nil
			}
			s := w.log.segmentOf(pos + off)
			s.maxSlot = max(s.maxSlot, e.SlotMs)
			if keep {
				dst = append(dst, e)
			}
		}
		pos += n
	}
	return dst, pos, nil
}

// relink points each tail entry's slot at it when the slot does not reach it yet, then
// recounts and writes those slots and syncs the wheel.
func (w *Wheel) relink(tail []Entry, start int64) error {
	clear(w.touched)
	w.order = w.order[:0]
	for i, e := range tail {
		pos := start + int64(i)*EntrySizeBytes
		idx, s, err := w.touch(e.SlotMs)
		if err != nil {
			return err
		}
		if s.lastPos < pos {
			s.lastPos = pos
		}
		w.touched[idx] = s
	}
	for _, idx := range w.order {
		s := w.touched[idx]
		n := int32(0)
		for pos := s.lastPos; pos >= 0; n++ {
			_, prev, err := w.readEntry(pos)
			if err != nil {
				return err
			}
			if prev >= pos {
				return &CorruptError{File: logName, Offset: pos, Reason: "chain does not go backwards"}
			}
			pos = prev
		}
		s.count = n
		w.touched[idx] = s
	}
	if len(w.order) == 0 {
		return nil
	}
	return w.writeSlots()
}
