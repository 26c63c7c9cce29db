package index

import (
	"encoding/binary"
	"fmt"
	"path/filepath"
)

// roll seals the active file (if any) and creates the next one. Writer only.
func (x *Index) roll() error {
	if err := x.seal(stateSealed); err != nil {
		return err
	}
	path := filepath.Join(x.cfg.Dir, FileName(x.nextNum))
	vf, err := x.cfg.FS.Create(path)
	if err != nil {
		return fmt.Errorf("index: create %s: %w", path, err)
	}
	f := &ixFile{f: vf, path: path, num: x.nextNum,
		hdr: header{slotCount: uint32(x.cfg.SlotsPerFile), maxEntries: uint32(x.cfg.EntriesPerFile)}}
	f.refs.Store(1)
	var hb [headerSizeBytes]byte
	f.hdr.encode(hb[:])
	if _, err := vf.WriteAt(hb[:], 0); err != nil {
		_ = vf.Close()
		return fmt.Errorf("index: write header of %s: %w", path, err)
	}
	if err := vf.Sync(); err != nil {
		_ = vf.Close()
		return fmt.Errorf("index: sync %s: %w", path, err)
	}
	if err := x.cfg.FS.SyncDir(x.cfg.Dir); err != nil {
		_ = vf.Close()
		return fmt.Errorf("index: sync dir %s: %w", x.cfg.Dir, err)
	}
	x.nextNum++
	slots := make([]uint32, f.hdr.slotCount)
	x.mu.Lock()
	x.mu.active, x.mu.slots, x.mu.count, x.mu.flushed = f, slots, 0, 0
	x.mu.Unlock()
	return nil
}

// seal writes the active file's slot table and a header in state (sealed or closed),
// syncs it, and moves it to the sealed list. Writer only.
func (x *Index) seal(state uint32) error {
	if err := x.Flush(); err != nil {
		return err
	}
	x.mu.Lock()
	a, slots, count := x.mu.active, x.mu.slots, x.mu.count
	hdr := a.hdrIfActive()
	x.mu.Unlock()
	if a == nil {
		return nil
	}
	hdr.state, hdr.entryCount = state, count
	table := make([]byte, headerSizeBytes+4*len(slots))
	hdr.encode(table)
	for i, v := range slots {
		binary.BigEndian.PutUint32(table[headerSizeBytes+4*i:], v)
	}
	if _, err := a.f.WriteAt(table[headerSizeBytes:], headerSizeBytes); err != nil {
		return fmt.Errorf("index: write slots of %s: %w", a.path, err)
	}
	if err := a.f.Sync(); err != nil { // slots and entries before the header says so
		return fmt.Errorf("index: sync %s: %w", a.path, err)
	}
	if _, err := a.f.WriteAt(table[:headerSizeBytes], 0); err != nil {
		return fmt.Errorf("index: write header of %s: %w", a.path, err)
	}
	if err := a.f.Sync(); err != nil {
		return fmt.Errorf("index: sync %s: %w", a.path, err)
	}
	x.mu.Lock()
	a.hdr.state, a.hdr.entryCount = hdr.state, hdr.entryCount // slotCount is read without the lock
	x.mu.sealed = append(x.mu.sealed, a)
	x.mu.active, x.mu.slots, x.mu.count, x.mu.flushed = nil, nil, 0, 0
	x.mu.Unlock()
	return nil
}

func (f *ixFile) hdrIfActive() header {
	if f == nil {
		return header{}
	}
	return f.hdr
}

// Lookup calls fn with the commit-log offset of every entry for topic#key stored within
// [beginMs, endMs], newest first, until fn returns false. Hash collisions are possible:
// fn must check the record. Safe from any goroutine.
func (x *Index) Lookup(topic, key []byte, beginMs, endMs int64, fn func(phys int64) bool) error {
	h := KeyHash(topic, key)
	var files []*ixFile
	var heads []uint32
	x.mu.Lock()
	if x.mu.closed {
		x.mu.Unlock()
		return ErrClosed
	}
	add := func(f *ixFile, head uint32, known bool) {
		if f.hdr.endTsMs < beginMs || f.hdr.beginTsMs > endMs {
			return
		}
		if !known {
			head = ^uint32(0) // read from disk
		}
		f.refs.Add(1)
		files, heads = append(files, f), append(heads, head)
	}
	if a := x.mu.active; a != nil && x.mu.count > 0 {
		add(a, x.mu.slots[h%a.hdr.slotCount], true)
	}
	for i := len(x.mu.sealed) - 1; i >= 0; i-- {
		if f := x.mu.sealed[i]; f.hdr.entryCount > 0 {
			add(f, 0, false)
		}
	}
	x.mu.Unlock()
	var err error
	stop := false
	for i := range files {
		if !stop && err == nil {
			stop, err = x.walk(files[i], heads[i], h, beginMs, endMs, fn)
		}
		files[i].unref()
	}
	return err
}

// walk follows one file's chain for hash h from head (^0 = read the slot from disk).
func (x *Index) walk(f *ixFile, head, h uint32, beginMs, endMs int64, fn func(int64) bool) (bool, error) {
	if head == ^uint32(0) {
		var b [4]byte
		pos := slotPos(h % f.hdr.slotCount)
		if _, err := f.f.ReadAt(b[:], pos); err != nil {
			return false, fmt.Errorf("index: read slot of %s at %d: %w", f.path, pos, err)
		}
		head = binary.BigEndian.Uint32(b[:])
	}
	for steps := 0; head != 0 && steps < MaxChainSteps; steps++ {
		e, err := x.entry(f, head-1)
		if err != nil {
			return false, err
		}
		if e.prev >= head {
			return false, &CorruptError{File: f.path, OffsetBytes: entryPos(f.hdr.slotCount, head-1), Reason: "chain does not go back"}
		}
		if e.keyHash == h && e.tsMs >= beginMs && e.tsMs <= endMs && !fn(e.phys) {
			return true, nil
		}
		head = e.prev
	}
	return false, nil
}

// entry returns entry number n of f: from the write buffers when it is not in the
// file yet, else read from the file.
func (x *Index) entry(f *ixFile, n uint32) (entry, error) {
	var b [entrySizeBytes]byte
	x.mu.Lock()
	inMemory := f == x.mu.active && n >= x.mu.flushed
	if inMemory {
		i := int(n-x.mu.flushed) * entrySizeBytes
		if i < len(x.mu.inflight) {
			copy(b[:], x.mu.inflight[i:])
		} else {
			copy(b[:], x.mu.pending[i-len(x.mu.inflight):])
		}
	}
	x.mu.Unlock()
	pos := entryPos(f.hdr.slotCount, n)
	if !inMemory {
		if _, err := f.f.ReadAt(b[:], pos); err != nil {
			return entry{}, fmt.Errorf("index: read %s at %d: %w", f.path, pos, err)
		}
	}
	e, ok := decodeEntry(b[:])
	if !ok {
		return entry{}, &CorruptError{File: f.path, OffsetBytes: pos, Reason: "entry CRC mismatch"}
	}
	return e, nil
}

// DeleteBelow removes the sealed files whose records all lie below physMin (the commit
// log's new start). Writer only.
func (x *Index) DeleteBelow(physMin int64) error {
	x.mu.Lock()
	var drop []*ixFile
	kept := x.mu.sealed[:0]
	for _, f := range x.mu.sealed {
		if f.hdr.endPhys < physMin {
			drop = append(drop, f)
		} else {
			kept = append(kept, f)
		}
	}
	clear(x.mu.sealed[len(kept):])
	x.mu.sealed = kept
	x.mu.Unlock()
	return x.remove(drop)
}

// Close writes the active file's slot table and entry count (state closed: reopening
// trusts the count instead of stopping at the first bad entry) and closes every file.
func (x *Index) Close() error {
	err := x.seal(stateClosed)
	x.closeFiles()
	return err
}

func (x *Index) closeFiles() {
	x.mu.Lock()
	files := x.mu.sealed
	if x.mu.active != nil {
		files = append(files, x.mu.active)
	}
	x.mu.sealed, x.mu.active, x.mu.closed = nil, nil, true
	x.mu.Unlock()
	for _, f := range files {
		f.unref()
	}
}

// Stats reports the index's size.
func (x *Index) Stats() (files int, activeEntries uint32) {
	x.mu.Lock()
	defer x.mu.Unlock()
	files = len(x.mu.sealed)
	if x.mu.active != nil {
		files++
	}
	return files, x.mu.count
}
