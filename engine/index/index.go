package index

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/ringmq/ringmq/flush/vfs"
)

// Config configures an Index. Zero sizes take the defaults; they apply to new files
// (existing files keep the sizes in their headers).
type Config struct {
	FS             vfs.FS
	Dir            string // <store root>/index
	SlotsPerFile   int
	EntriesPerFile int
}

type ixFile struct {
	f    vfs.File
	path string
	num  int64
	hdr  header
	refs atomic.Int32 // the Index's list (1) plus pinned readers
}

func (f *ixFile) unref() {
	if f.refs.Add(-1) == 0 {
		_ = f.f.Close()
	}
}

// Index is the key index of a store.
type Index struct {
	cfg Config
	mu  struct {
		sync.Mutex
		sealed   []*ixFile // ascending file number
		active   *ixFile
		slots    []uint32 // the active file's slot table
		count    uint32   // entries in the active file, written or not
		flushed  uint32   // entries written to the file
		inflight []byte   // entries [flushed, flushed+len/28) being written
		pending  []byte   // entries after inflight
		closed   bool
	}
	lastPhys int64 // writer: offsets below are indexed
	spare    []byte
	nextNum  int64
}

// Open loads the index files under cfg.Dir. Recover must follow before Add.
func Open(cfg Config) (*Index, error) {
	if cfg.SlotsPerFile == 0 {
		cfg.SlotsPerFile = DefaultSlotsPerFile
	}
	if cfg.EntriesPerFile == 0 {
		cfg.EntriesPerFile = DefaultEntriesPerFile
	}
	if cfg.SlotsPerFile < 1 || cfg.EntriesPerFile < 1 || cfg.EntriesPerFile >= 1<<31 {
		return nil, fmt.Errorf("index: SlotsPerFile %d / EntriesPerFile %d out of range", cfg.SlotsPerFile, cfg.EntriesPerFile)
	}
	x := &Index{cfg: cfg, nextNum: 1, lastPhys: -1}
	x.mu.pending = make([]byte, 0, MaxPendingEntries*entrySizeBytes)
	x.spare = make([]byte, 0, MaxPendingEntries*entrySizeBytes)
	if err := cfg.FS.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("index: mkdir %s: %w", cfg.Dir, err)
	}
	names, err := cfg.FS.List(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("index: list %s: %w", cfg.Dir, err)
	}
	for i, name := range names {
		f, err := x.openFile(name, i == len(names)-1)
		if err != nil {
			x.closeFiles()
			return nil, err
		}
		if f != nil {
			x.mu.sealed = append(x.mu.sealed, f)
		}
	}
	return x, nil
}

// openFile opens one index file; a last file whose header never became valid (a crash
// while creating it) is removed and nil returned.
func (x *Index) openFile(name string, last bool) (*ixFile, error) {
	path := filepath.Join(x.cfg.Dir, name)
	num, err := strconv.ParseInt(name, 10, 64)
	if err != nil || len(name) != 20 {
		return nil, &CorruptError{File: path, Reason: "file name is not a 20-digit number"}
	}
	x.nextNum = num + 1
	vf, err := x.cfg.FS.OpenReadWrite(path)
	if err != nil {
		return nil, fmt.Errorf("index: open %s: %w", path, err)
	}
	var hb [headerSizeBytes]byte
	n, err := vf.ReadAt(hb[:], 0)
	if err != nil && !errors.Is(err, io.EOF) { // an I/O error is not a half-created file
		_ = vf.Close()
		return nil, fmt.Errorf("index: read header of %s: %w", path, err)
	}
	h, bad := decodeHeader(hb[:n])
	if bad != "" {
		_ = vf.Close()
		if last {
			if err := x.cfg.FS.Remove(path); err != nil {
				return nil, fmt.Errorf("index: remove half-created %s: %w", path, err)
			}
			return nil, nil
		}
		return nil, &CorruptError{File: path, Reason: bad}
	}
	f := &ixFile{f: vf, path: path, num: num, hdr: h}
	f.refs.Store(1)
	return f, nil
}

// Recover makes the newest file the active one again and drops what the commit log no
// longer holds (offsets at or past clEnd). completeBelow is the caller's checkpoint:
// every entry of the records below it was synced, so those are complete; after a
// crash the entries of the last record at or past it are dropped, since some of its
// keys may be missing. It returns the commit-log offset from which records must be
// indexed again: the index holds every key of the records below it.
func (x *Index) Recover(clEnd, completeBelow int64) (int64, error) {
	var drop []*ixFile
	kept := x.mu.sealed[:0]
	for _, f := range x.mu.sealed {
		if f.hdr.entryCount > 0 && f.hdr.beginPhys >= clEnd || f.hdr.state == stateOpen && f != x.mu.sealed[len(x.mu.sealed)-1] {
			drop = append(drop, f)
		} else {
			kept = append(kept, f)
		}
	}
	x.mu.sealed = kept
	if err := x.remove(drop); err != nil {
		return 0, err
	}
	n := len(x.mu.sealed)
	if n == 0 || x.mu.sealed[n-1].hdr.state == stateSealed {
		if n > 0 {
			x.lastPhys = x.mu.sealed[n-1].hdr.endPhys
		}
		return x.lastPhys + 1, nil
	}
	f := x.mu.sealed[n-1]
	x.mu.sealed = x.mu.sealed[:n-1]
	if n > 1 { // the entries of the reopened file continue the previous file's
		x.lastPhys = x.mu.sealed[n-2].hdr.endPhys
	}
	next, err := x.reopenActive(f, clEnd, completeBelow)
	if err != nil {
		return 0, err
	}
	return next, nil
}

// reopenActive rebuilds the slot table of f (open or cleanly closed) from its entries,
// cuts what cannot be trusted and makes it the active file in state open.
func (x *Index) reopenActive(f *ixFile, clEnd, completeBelow int64) (int64, error) {
	h := f.hdr
	slots := make([]uint32, h.slotCount)
	limit := h.maxEntries
	if h.state == stateClosed {
		limit = h.entryCount
	}
	count, next, err := x.scanEntries(f, slots, limit, clEnd, h.state == stateOpen, completeBelow)
	if err != nil {
		return 0, err
	}
	if err := f.f.Truncate(entryPos(h.slotCount, count)); err != nil {
		return 0, fmt.Errorf("index: truncate %s: %w", f.path, err)
	}
	f.hdr.state, f.hdr.entryCount = stateOpen, 0
	var hb [headerSizeBytes]byte
	f.hdr.encode(hb[:])
	if _, err := f.f.WriteAt(hb[:], 0); err != nil {
		return 0, fmt.Errorf("index: write header of %s: %w", f.path, err)
	}
	if err := f.f.Sync(); err != nil {
		return 0, fmt.Errorf("index: sync %s: %w", f.path, err)
	}
	x.mu.Lock()
	x.mu.active, x.mu.slots = f, slots
	x.mu.count, x.mu.flushed = count, count
	x.mu.Unlock()
	return next, nil
}

// scanEntries reads f's entries in order up to limit, stopping at the first that is
// torn, out of order or at/past clEnd; after a crash (dropLast) the entries of the last
// record are dropped too when it lies at or past completeBelow, since some of its keys
// may be missing. It fills slots and returns the entry count kept and the offset
// indexing must resume from. It streams: only the newest record's entries are held
// back (they may be dropped), so memory does not grow with the file.
func (x *Index) scanEntries(f *ixFile, slots []uint32, limit uint32, clEnd int64, dropLast bool, completeBelow int64) (uint32, int64, error) {
	const chunk = 1024
	buf := make([]byte, chunk*entrySizeBytes)
	f.hdr.beginTsMs, f.hdr.endTsMs, f.hdr.beginPhys, f.hdr.endPhys = 0, 0, 0, 0
	var kept uint32
	var group []entry // the newest record's entries, not yet kept
	keepGroup := func() error {
		for _, e := range group {
			if e.prev != slots[e.keyHash%f.hdr.slotCount] {
				return &CorruptError{File: f.path, OffsetBytes: entryPos(f.hdr.slotCount, kept), Reason: "entry chain does not match its slot"}
			}
			slots[e.keyHash%f.hdr.slotCount] = kept + 1
			if kept == 0 {
				f.hdr.beginTsMs, f.hdr.beginPhys = e.tsMs, e.phys
			}
			f.hdr.endPhys, f.hdr.endTsMs = e.phys, max(f.hdr.endTsMs, e.tsMs)
			kept++
		}
		group = group[:0]
		return nil
	}
	prevPhys := int64(-1)
scan:
	for n := uint32(0); n < limit; n += chunk {
		k := min(uint32(chunk), limit-n)
		pos := entryPos(f.hdr.slotCount, n)
		got, err := f.f.ReadAt(buf[:k*entrySizeBytes], pos)
		if err != nil {
			if !errors.Is(err, io.EOF) { // not the end of the entries: recovery must not cut here
				return 0, 0, fmt.Errorf("index: read %s at %d: %w", f.path, pos, err)
			}
			k = uint32(got / entrySizeBytes)
		}
		for i := uint32(0); i < k; i++ {
			e, ok := decodeEntry(buf[i*entrySizeBytes:])
			if !ok || e.phys >= clEnd || e.phys < prevPhys || e.prev > n+i {
				break scan
			}
			if len(group) > 0 && e.phys != group[0].phys {
				if err := keepGroup(); err != nil {
					return 0, 0, err
				}
			}
			prevPhys = e.phys
			group = append(group, e)
		}
		if k < min(uint32(chunk), limit-n) {
			break
		}
	}
	next := x.lastPhys + 1
	if len(group) > 0 {
		last := group[0].phys
		next = last + 1
		if dropLast && last >= completeBelow {
			group = group[:0]
			next = last
		}
		x.lastPhys = next - 1
	}
	if err := keepGroup(); err != nil {
		return 0, 0, err
	}
	return kept, next, nil
}

func (x *Index) remove(files []*ixFile) error {
	var err error
	for _, f := range files {
		if rerr := x.cfg.FS.Remove(f.path); rerr != nil {
			err = errors.Join(err, fmt.Errorf("index: remove %s: %w", f.path, rerr))
		}
		f.unref()
	}
	if len(files) > 0 {
		if serr := x.cfg.FS.SyncDir(x.cfg.Dir); serr != nil {
			err = errors.Join(err, fmt.Errorf("index: sync dir %s: %w", x.cfg.Dir, serr))
		}
	}
	return err
}

// Add indexes key of topic for the record at phys stored at tsMs. Records must come in
// commit-log order; one below what is indexed is ignored (a replay). Writer only.
func (x *Index) Add(topic, key []byte, phys, tsMs int64) error {
	if phys < x.lastPhys {
		return nil
	}
	x.mu.Lock()
	full := x.mu.active == nil || x.mu.count == x.mu.active.hdr.maxEntries
	x.mu.Unlock()
	if full {
		if err := x.roll(); err != nil {
			return err
		}
	}
	if len(x.mu.pending) == cap(x.mu.pending) { // only the writer appends to pending
		if err := x.Flush(); err != nil {
			return err
		}
	}
	h := KeyHash(topic, key)
	x.mu.Lock()
	a := x.mu.active
	s := h % a.hdr.slotCount
	e := entry{keyHash: h, prev: x.mu.slots[s], phys: phys, tsMs: tsMs}
	x.mu.count++
	x.mu.slots[s] = x.mu.count
	n := len(x.mu.pending)
	x.mu.pending = x.mu.pending[:n+entrySizeBytes] // room: flushed above when full
	e.encode(x.mu.pending[n:])
	if x.mu.count == 1 {
		a.hdr.beginTsMs, a.hdr.beginPhys = tsMs, phys
	}
	a.hdr.endTsMs, a.hdr.endPhys = max(a.hdr.endTsMs, tsMs), phys
	x.mu.Unlock()
	x.lastPhys = phys
	return nil
}

// Flush writes the buffered entries. Writer only.
func (x *Index) Flush() error {
	x.mu.Lock()
	if len(x.mu.pending) == 0 {
		x.mu.Unlock()
		return nil
	}
	a := x.mu.active
	x.mu.inflight, x.mu.pending = x.mu.pending, x.spare[:0]
	buf, start := x.mu.inflight, x.mu.flushed
	a.refs.Add(1)
	x.mu.Unlock()
	_, err := a.f.WriteAt(buf, entryPos(a.hdr.slotCount, start))
	a.unref()
	x.mu.Lock()
	if err != nil { // keep the entries for the next Flush (pending is empty: one writer)
		x.spare, x.mu.pending, x.mu.inflight = x.mu.pending, buf, nil
		x.mu.Unlock()
		return fmt.Errorf("index: write %s: %w", a.path, err)
	}
	x.mu.flushed += uint32(len(buf) / entrySizeBytes)
	x.spare, x.mu.inflight = buf[:0], nil
	x.mu.Unlock()
	return nil
}

// Sync makes the written entries durable. Safe beside the writer.
func (x *Index) Sync() error {
	x.mu.Lock()
	a := x.mu.active
	if a != nil {
		a.refs.Add(1)
	}
	x.mu.Unlock()
	if a == nil {
		return nil
	}
	defer a.unref()
	if err := a.f.Sync(); err != nil {
		return fmt.Errorf("index: sync %s: %w", a.path, err)
	}
	return nil
}
