package timer

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"

	"github.com/ringmq/ringmq/flush/vfs"
)

// Defaults (RocketMQ 5.x timerPrecisionMs and timerMaxDelaySec).
const (
	DefaultPrecisionMs = 1000
	DefaultMaxDelayMs  = 259200 * 1000
	// MaxSlots bounds the wheel file (32 bytes a slot): 2 x 3 days at 100 ms precision.
	MaxSlots = 2 * 259200 * 10
)

// File names inside Config.Dir.
const (
	logName        = "timerlog"
	wheelName      = "wheel"
	checkpointName = "checkpoint"
)

// maxAddEntries bounds one Add: the caller batches at most this many entries.
const maxAddEntries = 4096

// ErrFailed is returned by every write after a write or fsync failed: the durable state is
// unknown until the wheel is opened again (recovery re-reads the disk).
var ErrFailed = errors.New("timer: an earlier write or fsync failed; writes refused until reopen")

// CorruptError is a record below the durable checkpoint that does not verify.
type CorruptError struct {
	File   string
	Offset int64
	Reason string
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("timer: corrupt %s at offset %d: %s", e.File, e.Offset, e.Reason)
}

// Config configures a Wheel.
type Config struct {
	Dir         string
	FS          vfs.FS // nil = vfs.OS{}
	PrecisionMs int64  // slot width (DefaultPrecisionMs)
	MaxDelayMs  int64  // the longest delay accepted (DefaultMaxDelayMs)
	// SegmentBytes is the size of a timer-log segment (DefaultSegmentBytes), a multiple
	// of EntrySizeBytes.
	SegmentBytes int64
}

// Recovered is what Open found.
type Recovered struct {
	// Checkpoint as last committed (zero for a new wheel).
	Checkpoint Checkpoint
	// Tail holds the entries past the checkpoint's LogPos, in log order; Open linked them
	// into their slots. Those whose SlotMs is before Checkpoint.DeliveredMs were added to
	// a slot the service had already read and must be delivered from memory.
	Tail []Entry
}

// Wheel is the on-disk timing wheel (doc.go).
type Wheel struct {
	cfg        Config
	slots      int64
	log        *segLog
	segTouched []*segment
	wheel      vfs.File
	cp         vfs.File
	logEnd     int64
	enqueueOff int64
	cpSeq      uint64
	failed     error
	buf        []byte
	window     []byte         // ReadSlot's read buffer
	touched    map[int64]slot // slot index -> new state, within one Add
	order      []int64        // touched slot indexes in first-touch order
}

// Open opens or creates the wheel in cfg.Dir and recovers it (doc.go, Fsync order).
func Open(cfg Config) (*Wheel, Recovered, error) {
	if cfg.FS == nil {
		cfg.FS = vfs.OS{}
	}
	if cfg.PrecisionMs <= 0 {
		cfg.PrecisionMs = DefaultPrecisionMs
	}
	if cfg.MaxDelayMs <= 0 {
		cfg.MaxDelayMs = DefaultMaxDelayMs
	}
	if cfg.SegmentBytes <= 0 {
		cfg.SegmentBytes = DefaultSegmentBytes
	}
	if cfg.SegmentBytes%EntrySizeBytes != 0 {
		return nil, Recovered{}, fmt.Errorf("timer: segment size %d is not a multiple of the %d-byte entry", cfg.SegmentBytes, EntrySizeBytes)
	}
	slots := 2 * ((cfg.MaxDelayMs + cfg.PrecisionMs - 1) / cfg.PrecisionMs)
	if slots > MaxSlots {
		return nil, Recovered{}, fmt.Errorf("timer: %d ms max delay at %d ms precision needs %d slots, over %d", cfg.MaxDelayMs, cfg.PrecisionMs, slots, MaxSlots)
	}
	w := &Wheel{cfg: cfg, slots: slots, touched: map[int64]slot{}}
	if err := w.openFiles(); err != nil {
		w.Close()
		return nil, Recovered{}, err
	}
	rec, err := w.recover()
	if err != nil {
		w.Close()
		return nil, Recovered{}, err
	}
	return w, rec, nil
}

func (w *Wheel) openFiles() error {
	fsys, dir := w.cfg.FS, w.cfg.Dir
	if err := fsys.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("timer: create %s: %w", dir, err)
	}
	var err error
	created := false
	if w.log, created, err = openSegLog(fsys, dir, w.cfg.SegmentBytes); err != nil {
		return err
	}
	c2 := false
	if w.cp, c2, err = openOrCreate(fsys, path.Join(dir, checkpointName), 2*checkpointSizeBytes); err != nil {
		return err
	}
	if err := w.openWheel(); err != nil {
		return err
	}
	if created || c2 {
		if err := fsys.SyncDir(dir); err != nil {
			return fmt.Errorf("timer: sync %s: %w", dir, err)
		}
	}
	return nil
}

// openOrCreate opens name read-write, or creates it holding sizeBytes zero bytes (synced).
func openOrCreate(fsys vfs.FS, name string, sizeBytes int) (vfs.File, bool, error) {
	f, err := fsys.OpenReadWrite(name)
	if err == nil {
		return f, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, os.ErrNotExist) {
		return nil, false, fmt.Errorf("timer: open %s: %w", name, err)
	}
	if f, err = fsys.Create(name); err != nil {
		return nil, false, fmt.Errorf("timer: create %s: %w", name, err)
	}
	if sizeBytes > 0 {
		if _, err := f.WriteAt(make([]byte, sizeBytes), 0); err != nil {
			_ = f.Close()
			return nil, false, fmt.Errorf("timer: create %s: %w", name, err)
		}
		if err := f.Sync(); err != nil {
			_ = f.Close()
			return nil, false, fmt.Errorf("timer: create %s: sync: %w", name, err)
		}
	}
	return f, true, nil
}

// openWheel opens the wheel file, or creates it pre-written with zeros (written blocks,
// so slot writes never allocate: DESIGN.md, the write path) under a temporary name that
// is renamed once synced.
func (w *Wheel) openWheel() error {
	fsys := w.cfg.FS
	name := path.Join(w.cfg.Dir, wheelName)
	want := w.slots * slotSizeBytes
	f, err := fsys.OpenReadWrite(name)
	if err == nil {
		w.wheel = f
		size, err := f.Size()
		if err != nil {
			return fmt.Errorf("timer: %s: size: %w", name, err)
		}
		if size != want {
			return fmt.Errorf("timer: %s holds %d slots, but timerMaxDelaySec and timerPrecisionMs ask for %d: restore the values it was created with, or remove %s once no timer message is pending",
				name, size/slotSizeBytes, w.slots, w.cfg.Dir)
		}
		return nil
	}
	if !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("timer: open %s: %w", name, err)
	}
	tmp := name + ".tmp"
	if f, err = fsys.Create(tmp); err != nil {
		return fmt.Errorf("timer: create %s: %w", tmp, err)
	}
	zeros := make([]byte, min(want, 1<<20))
	for off := int64(0); off < want; off += int64(len(zeros)) {
		n := min(int64(len(zeros)), want-off)
		if _, err := f.WriteAt(zeros[:n], off); err != nil {
			_ = f.Close()
			return fmt.Errorf("timer: pre-write %s: %w", tmp, err)
		}
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return fmt.Errorf("timer: sync %s: %w", tmp, err)
	}
	if err := fsys.Rename(tmp, name); err != nil {
		_ = f.Close()
		return fmt.Errorf("timer: rename %s: %w", tmp, err)
	}
	if err := fsys.SyncDir(w.cfg.Dir); err != nil {
		_ = f.Close()
		return fmt.Errorf("timer: sync %s: %w", w.cfg.Dir, err)
	}
	w.wheel = f
	return nil
}

// Close closes the files. It writes nothing: call Commit first.
func (w *Wheel) Close() error {
	var errs []error
	if w.log != nil {
		errs = append(errs, w.log.close())
	}
	for _, f := range []vfs.File{w.wheel, w.cp} {
		if f != nil {
			errs = append(errs, f.Close())
		}
	}
	w.log, w.wheel, w.cp = nil, nil, nil
	return errors.Join(errs...)
}

// PrecisionMs is the slot width.
func (w *Wheel) PrecisionMs() int64 { return w.cfg.PrecisionMs }

// MaxDelayMs is the horizon the wheel was opened with.
func (w *Wheel) MaxDelayMs() int64 { return w.cfg.MaxDelayMs }

// SlotOf returns the start of the slot holding ms.
func (w *Wheel) SlotOf(ms int64) int64 {
	p := w.cfg.PrecisionMs
	s := ms / p * p
	if s > ms { // negative ms
		s -= p
	}
	return s
}

// EnqueueOffset is the next queue offset of rmq_sys_wheel_timer not yet added.
func (w *Wheel) EnqueueOffset() int64 { return w.enqueueOff }

// LogBytes is the size of the timer log.
func (w *Wheel) LogBytes() int64 { return w.logEnd }

func (w *Wheel) index(slotMs int64) int64 {
	i := (slotMs / w.cfg.PrecisionMs) % w.slots
	if i < 0 {
		i += w.slots
	}
	return i
}

func (w *Wheel) fail(err error) error {
	if w.failed == nil {
		w.failed = err
	}
	return err
}

// readSlot reads the slot record for slotMs; a stale or empty record is an empty slot.
func (w *Wheel) readSlot(slotMs int64) (slot, error) {
	var b [slotSizeBytes]byte
	off := w.index(slotMs) * slotSizeBytes
	if _, err := w.wheel.ReadAt(b[:], off); err != nil {
		return slot{}, fmt.Errorf("timer: read slot at %d: %w", off, err)
	}
	s, ok := decodeSlot(b[:])
	if !ok {
		return slot{}, &CorruptError{File: wheelName, Offset: off, Reason: "slot CRC mismatch"}
	}
	if s.lastPos < 0 || s.slotMs != slotMs {
		return slot{slotMs: slotMs, lastPos: -1}, nil
	}
	return s, nil
}

// Add appends entries to the timer log and links each into the slot SlotMs names (a
// multiple of the precision; a caller bug panics), durably: the log is synced, then the
// slots. Their queue offsets move EnqueueOffset; Commit records it.
func (w *Wheel) Add(entries []Entry) error {
	if w.failed != nil {
		return fmt.Errorf("%w (%v)", ErrFailed, w.failed)
	}
	if len(entries) == 0 {
		return nil
	}
	if len(entries) > maxAddEntries {
		panic(fmt.Sprintf("BUG: timer.Add: %d entries, over %d", len(entries), maxAddEntries))
	}
	clear(w.touched)
	w.order = w.order[:0]
	w.buf = w.buf[:0]
	enq := w.enqueueOff
	for i := range entries {
		e := &entries[i]
		if e.SlotMs != w.SlotOf(e.SlotMs) {
			panic(fmt.Sprintf("BUG: timer.Add: slot %d is not a multiple of the precision %d", e.SlotMs, w.cfg.PrecisionMs))
		}
		idx, s, err := w.touch(e.SlotMs)
		if err != nil {
			return err
		}
		pos := w.logEnd + int64(len(w.buf))
		var b [EntrySizeBytes]byte
		encodeEntry(b[:], e, s.lastPos)
		w.buf = append(w.buf, b[:]...)
		s.lastPos, s.count = pos, s.count+1
		w.touched[idx] = s
		enq = max(enq, e.QueueOffset+1)
	}
	var err error
	if w.segTouched, err = w.log.writeAt(w.buf, w.logEnd, w.segTouched[:0]); err != nil {
		return w.fail(fmt.Errorf("timer: append %d entries: %w", len(entries), err))
	}
	for i, s := range w.segTouched {
		if i > 0 && s == w.segTouched[i-1] {
			continue
		}
		if err := s.f.Sync(); err != nil {
			return w.fail(fmt.Errorf("timer: sync %s: %w", segName(s.base), err))
		}
	}
	for i := range entries {
		s := w.log.segmentOf(w.logEnd + int64(i)*EntrySizeBytes)
		s.maxSlot = max(s.maxSlot, entries[i].SlotMs)
	}
	w.logEnd += int64(len(w.buf))
	if err := w.writeSlots(); err != nil {
		return err
	}
	w.enqueueOff = enq
	return nil
}

// touch returns the state of the slot starting at slotMs within the current batch: the
// batch's copy if it changed the slot already, else the slot read from the wheel (a slot
// of an earlier turn reads as empty), remembered in first-touch order.
func (w *Wheel) touch(slotMs int64) (int64, slot, error) {
	idx := w.index(slotMs)
	s, ok := w.touched[idx]
	if !ok || s.slotMs != slotMs {
		var err error
		if s, err = w.readSlot(slotMs); err != nil {
			return 0, slot{}, err
		}
		if !ok {
			w.order = append(w.order, idx)
		}
	}
	return idx, s, nil
}

// writeSlots writes the touched slots and syncs the wheel.
func (w *Wheel) writeSlots() error {
	var b [slotSizeBytes]byte
	for _, idx := range w.order {
		encodeSlot(b[:], w.touched[idx])
		if _, err := w.wheel.WriteAt(b[:], idx*slotSizeBytes); err != nil {
			return w.fail(fmt.Errorf("timer: write slot %d: %w", idx, err))
		}
	}
	if err := w.wheel.Sync(); err != nil {
		return w.fail(fmt.Errorf("timer: sync %s: %w", wheelName, err))
	}
	return nil
}

// readWindowBytes is how much of the log ReadSlot reads at once: a slot's entries were
// appended close together when their messages arrived close together, so one read
// usually serves many links of the chain.
const readWindowBytes = 64 << 10

// ReadSlot appends the entries of the slot starting at slotMs to dst, newest first.
func (w *Wheel) ReadSlot(slotMs int64, dst []Entry) ([]Entry, error) {
	s, err := w.readSlot(slotMs)
	if err != nil {
		return dst, err
	}
	if cap(w.window) < readWindowBytes {
		w.window = make([]byte, readWindowBytes)
	}
	winStart, winEnd := int64(0), int64(0) // the log bytes w.window holds
	for pos := s.lastPos; pos >= 0; {
		if pos < winStart || pos+EntrySizeBytes > winEnd {
			if pos+EntrySizeBytes > w.logEnd {
				return dst, &CorruptError{File: logName, Offset: pos, Reason: "chain points past the end of the log"}
			}
			if pos < w.log.first() {
				return dst, &CorruptError{File: logName, Offset: pos, Reason: "chain points into a deleted segment"}
			}
			winEnd = pos + EntrySizeBytes
			winStart = max(w.log.first(), winEnd-readWindowBytes)
			if err := w.log.readAt(w.window[:winEnd-winStart], winStart); err != nil {
				return dst, err
			}
		}
		e, prev, ok := decodeEntry(w.window[pos-winStart:])
		if !ok {
			return dst, &CorruptError{File: logName, Offset: pos, Reason: "entry CRC mismatch"}
		}
		if e.SlotMs != slotMs || prev >= pos {
			return dst, &CorruptError{File: logName, Offset: pos, Reason: fmt.Sprintf("entry of slot %d (prev %d) in the chain of slot %d", e.SlotMs, prev, slotMs)}
		}
		dst = append(dst, e)
		pos = prev
	}
	return dst, nil
}

func (w *Wheel) readEntry(pos int64) (Entry, int64, error) {
	var b [EntrySizeBytes]byte
	if pos+EntrySizeBytes > w.logEnd || pos < w.log.first() {
		return Entry{}, 0, &CorruptError{File: logName, Offset: pos, Reason: "chain points outside the log"}
	}
	if err := w.log.readAt(b[:], pos); err != nil {
		return Entry{}, 0, err
	}
	e, prev, ok := decodeEntry(b[:])
	if !ok {
		return Entry{}, 0, &CorruptError{File: logName, Offset: pos, Reason: "entry CRC mismatch"}
	}
	return e, prev, nil
}

// Commit records the progress durably: EnqueueOffset, the log position (everything
// added so far is in the wheel) and deliveredMs, before which every slot is delivered.
func (w *Wheel) Commit(deliveredMs int64) error {
	if w.failed != nil {
		return fmt.Errorf("%w (%v)", ErrFailed, w.failed)
	}
	w.cpSeq++
	c := Checkpoint{seq: w.cpSeq, EnqueueOffset: w.enqueueOff, DeliveredMs: deliveredMs, LogPos: w.logEnd,
		precisionMs: w.cfg.PrecisionMs, slots: w.slots}
	var b [checkpointSizeBytes]byte
	encodeCheckpoint(b[:], &c)
	if _, err := w.cp.WriteAt(b[:], int64(w.cpSeq%2)*checkpointSizeBytes); err != nil {
		return w.fail(fmt.Errorf("timer: write %s: %w", checkpointName, err))
	}
	if err := w.cp.Sync(); err != nil {
		return w.fail(fmt.Errorf("timer: sync %s: %w", checkpointName, err))
	}
	// Segments whose entries are all in delivered slots go. A later commit may go back by
	// one slot (a message linked into the last slot read), so the slot before
	// deliveredMs's slot is kept too: the caller never commits less than one slot below
	// the most it committed.
	return w.log.deleteDelivered(w.SlotOf(deliveredMs) - w.cfg.PrecisionMs)
}

// LogSegments is how many timer-log segments are on disk.
func (w *Wheel) LogSegments() int { return len(w.log.segs) }

// readCheckpoint returns the newer valid copy (zero if none).
func (w *Wheel) readCheckpoint() (Checkpoint, error) {
	var b [2 * checkpointSizeBytes]byte
	if _, err := w.cp.ReadAt(b[:], 0); err != nil && !errors.Is(err, io.EOF) {
		return Checkpoint{}, fmt.Errorf("timer: read %s: %w", checkpointName, err)
	}
	c0, ok0 := decodeCheckpoint(b[:checkpointSizeBytes])
	c1, ok1 := decodeCheckpoint(b[checkpointSizeBytes:])
	switch {
	case ok0 && (!ok1 || c0.seq > c1.seq):
		return c0, nil
	case ok1:
		return c1, nil
	}
	return Checkpoint{}, nil
}

// Skip moves EnqueueOffset past queueOffset without adding an entry (a parked message
// that cannot be linked: it does not decode or has no due time). Commit records it.
func (w *Wheel) Skip(queueOffset int64) { w.enqueueOff = max(w.enqueueOff, queueOffset+1) }
