package vfs

import (
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Mem is an in-memory file system that models what survives a crash.
//
// For each file (inode) it keeps the current bytes and the durable bytes: the content
// as of the last successful Sync, plus the list of writes and truncations made since
// (pending). For the namespace it keeps the current entries and the durable entries:
// those as of the last SyncDir of their parent directory. Crash returns a new Mem made
// only of durable state; CrashKeeping also keeps, per file, a random prefix of the
// pending operations, since a real disk may persist some un-synced writes (in order,
// which is the optimistic half of what disks do; tests of torn writes use Faulty).
//
// Directories are durable as soon as MkdirAll returns (a simplification: ringmq
// creates its directories once, before writing anything that must survive).
//
// Capacity: writes that grow the total size past the capacity (SetCapacity, default
// 1 TiB) fail with ENOSPC; overwrites inside a file's size never do. DiskUsage reports
// capacity and capacity minus the sum of file sizes.
//
// MapReadOnly returns a view aliasing the file's bytes; it stays valid while the file
// does not grow (ringmq maps only fixed-size, pre-written segments).
//
// All methods are safe for concurrent use; ReadAt and WriteAt on disjoint ranges of
// one file run in parallel with readers of a mapped view.
type Mem struct {
	mu struct {
		sync.Mutex
		files       map[string]*memInode // current namespace
		durable     map[string]*memInode // namespace as of the last SyncDir
		dirs        map[string]bool
		nextInodeID int64
	}
	// capacity and usedBytes are atomics so that a write holding its inode's lock
	// never takes mu (lock order: mu, then an inode's mu).
	capacity  atomic.Uint64
	usedBytes atomic.Int64
}

var _ FS = (*Mem)(nil)

type memInode struct {
	fs   *Mem
	id   int64
	size atomic.Int64 // len(mu.data), readable without the lock
	mu   struct {
		sync.RWMutex
		data    []byte
		durable []byte
		pending []memOp
		modTime time.Time
	}
}

// memOp is one un-synced change: a write of b at off, or (b == nil) a truncation to off.
type memOp struct {
	off int64
	b   []byte
}

// NewMem returns an empty in-memory file system with the root directory "/".
func NewMem() *Mem {
	m := &Mem{}
	m.mu.files = map[string]*memInode{}
	m.mu.durable = map[string]*memInode{}
	m.mu.dirs = map[string]bool{"/": true, ".": true}
	m.capacity.Store(1 << 40)
	return m
}

// SetCapacity sets the size of the simulated disk.
func (m *Mem) SetCapacity(totalBytes uint64) {
	m.capacity.Store(totalBytes)
}

func clean(name string) string { return filepath.Clean(name) }

func notExist(op, name string) error {
	return &os.PathError{Op: op, Path: name, Err: os.ErrNotExist}
}

// Create creates or truncates the named file.
func (m *Mem) Create(name string) (File, error) {
	name = clean(name)
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.mu.dirs[filepath.Dir(name)] {
		return nil, notExist("create", name)
	}
	if ino := m.mu.files[name]; ino != nil {
		if err := ino.truncate(0); err != nil {
			return nil, err
		}
		return &memFile{ino: ino, name: name, writable: true}, nil
	}
	m.mu.nextInodeID++
	ino := &memInode{fs: m, id: m.mu.nextInodeID}
	ino.mu.modTime = time.Now()
	m.mu.files[name] = ino
	return &memFile{ino: ino, name: name, writable: true}, nil
}

func (m *Mem) open(name string, writable bool) (File, error) {
	name = clean(name)
	m.mu.Lock()
	defer m.mu.Unlock()
	ino := m.mu.files[name]
	if ino == nil {
		return nil, notExist("open", name)
	}
	return &memFile{ino: ino, name: name, writable: writable}, nil
}

// Open opens an existing file read-only.
func (m *Mem) Open(name string) (File, error) { return m.open(name, false) }

// OpenReadWrite opens an existing file for reading and writing.
func (m *Mem) OpenReadWrite(name string) (File, error) { return m.open(name, true) }

// Remove removes a file or an empty directory. Open handles keep working.
func (m *Mem) Remove(name string) error {
	name = clean(name)
	m.mu.Lock()
	defer m.mu.Unlock()
	if ino := m.mu.files[name]; ino != nil {
		delete(m.mu.files, name)
		m.usedBytes.Add(-ino.size.Load())
		return nil
	}
	if m.mu.dirs[name] {
		prefix := name + "/"
		for p := range m.mu.files {
			if strings.HasPrefix(p, prefix) {
				return &os.PathError{Op: "remove", Path: name, Err: syscall.ENOTEMPTY}
			}
		}
		delete(m.mu.dirs, name)
		return nil
	}
	return notExist("remove", name)
}

// Rename renames a file, replacing newname.
func (m *Mem) Rename(oldname, newname string) error {
	oldname, newname = clean(oldname), clean(newname)
	m.mu.Lock()
	defer m.mu.Unlock()
	ino := m.mu.files[oldname]
	if ino == nil {
		return &os.LinkError{Op: "rename", Old: oldname, New: newname, Err: os.ErrNotExist}
	}
	if !m.mu.dirs[filepath.Dir(newname)] {
		return &os.LinkError{Op: "rename", Old: oldname, New: newname, Err: os.ErrNotExist}
	}
	if old := m.mu.files[newname]; old != nil && old != ino {
		m.usedBytes.Add(-old.size.Load())
	}
	delete(m.mu.files, oldname)
	m.mu.files[newname] = ino
	return nil
}

// MkdirAll creates dir and its parents; directories are durable at once.
func (m *Mem) MkdirAll(dir string, _ os.FileMode) error {
	dir = clean(dir)
	m.mu.Lock()
	defer m.mu.Unlock()
	for d := dir; !m.mu.dirs[d]; d = filepath.Dir(d) {
		if m.mu.files[d] != nil {
			return &os.PathError{Op: "mkdir", Path: d, Err: syscall.ENOTDIR}
		}
		m.mu.dirs[d] = true
	}
	return nil
}

// List returns the sorted names of dir's entries (files and directories).
func (m *Mem) List(dir string) ([]string, error) {
	dir = clean(dir)
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.mu.dirs[dir] {
		return nil, notExist("list", dir)
	}
	var names []string
	for p := range m.mu.files {
		if filepath.Dir(p) == dir {
			names = append(names, filepath.Base(p))
		}
	}
	for d := range m.mu.dirs {
		if d != dir && filepath.Dir(d) == dir {
			names = append(names, filepath.Base(d))
		}
	}
	sort.Strings(names)
	return names, nil
}

// Stat returns the file's or directory's information.
func (m *Mem) Stat(name string) (os.FileInfo, error) {
	name = clean(name)
	m.mu.Lock()
	ino, isDir := m.mu.files[name], m.mu.dirs[name]
	m.mu.Unlock()
	switch {
	case ino != nil:
		ino.mu.RLock()
		defer ino.mu.RUnlock()
		return memInfo{name: filepath.Base(name), size: int64(len(ino.mu.data)), mod: ino.mu.modTime}, nil
	case isDir:
		return memInfo{name: filepath.Base(name), dir: true}, nil
	}
	return nil, notExist("stat", name)
}

// SyncDir makes the entries of dir durable: created and renamed files appear after a
// Crash, removed ones do not.
func (m *Mem) SyncDir(dir string) error {
	dir = clean(dir)
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.mu.dirs[dir] {
		return notExist("syncdir", dir)
	}
	for p := range m.mu.durable {
		if filepath.Dir(p) == dir && m.mu.files[p] == nil {
			delete(m.mu.durable, p)
		}
	}
	for p, ino := range m.mu.files {
		if filepath.Dir(p) == dir {
			m.mu.durable[p] = ino
		}
	}
	return nil
}

// DiskUsage reports the capacity and what is left of it.
func (m *Mem) DiskUsage(string) (totalBytes, freeBytes uint64, err error) {
	capacity, used := m.capacity.Load(), uint64(max(m.usedBytes.Load(), 0))
	if used > capacity {
		return capacity, 0, nil
	}
	return capacity, capacity - used, nil
}

// grow reserves deltaBytes of capacity (negative releases).
func (m *Mem) grow(deltaBytes int64, name string) error {
	for {
		used := m.usedBytes.Load()
		if deltaBytes > 0 && uint64(used+deltaBytes) > m.capacity.Load() {
			return &os.PathError{Op: "write", Path: name, Err: syscall.ENOSPC}
		}
		if m.usedBytes.CompareAndSwap(used, used+deltaBytes) {
			return nil
		}
	}
}

// Crash returns a new file system holding only what was durable: the entries synced
// with SyncDir, each with the content its last Sync covered. m is left unchanged.
func (m *Mem) Crash() *Mem { return m.crash(nil) }

// CrashKeeping is Crash, but each file also keeps a random prefix (chosen with seed)
// of the writes made since its last Sync.
func (m *Mem) CrashKeeping(seed uint64) *Mem {
	return m.crash(rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)))
}

func (m *Mem) crash(rng *rand.Rand) *Mem {
	n := NewMem()
	m.mu.Lock()
	defer m.mu.Unlock()
	n.capacity.Store(m.capacity.Load())
	for d := range m.mu.dirs {
		n.mu.dirs[d] = true
	}
	copied := map[*memInode]*memInode{}
	names := make([]string, 0, len(m.mu.durable))
	for p := range m.mu.durable {
		names = append(names, p)
	}
	sort.Strings(names) // deterministic use of rng
	for _, p := range names {
		old := m.mu.durable[p]
		ino := copied[old]
		if ino == nil {
			ino = old.crashCopy(n, rng)
			copied[old] = ino
			n.usedBytes.Add(ino.size.Load())
		}
		n.mu.files[p] = ino
		n.mu.durable[p] = ino
	}
	return n
}

func (ino *memInode) crashCopy(n *Mem, rng *rand.Rand) *memInode {
	ino.mu.RLock()
	defer ino.mu.RUnlock()
	n.mu.nextInodeID++
	c := &memInode{fs: n, id: n.mu.nextInodeID}
	c.mu.modTime = ino.mu.modTime
	c.mu.data = append([]byte(nil), ino.mu.durable...)
	if rng != nil && len(ino.mu.pending) > 0 {
		keep := rng.IntN(len(ino.mu.pending) + 1)
		for _, op := range ino.mu.pending[:keep] {
			c.mu.data = applyOp(c.mu.data, op)
		}
	}
	c.mu.durable = append([]byte(nil), c.mu.data...)
	c.size.Store(int64(len(c.mu.data)))
	return c
}

func applyOp(data []byte, op memOp) []byte {
	if op.b == nil {
		return resize(data, op.off)
	}
	end := op.off + int64(len(op.b))
	if end > int64(len(data)) {
		data = resize(data, end)
	}
	copy(data[op.off:], op.b)
	return data
}

func resize(data []byte, size int64) []byte {
	if size <= int64(len(data)) {
		return data[:size:size]
	}
	if size <= int64(cap(data)) {
		old := len(data)
		data = data[:size]
		clear(data[old:])
		return data
	}
	n := make([]byte, size, size+size/4)
	copy(n, data)
	return n
}

func (ino *memInode) truncate(size int64) error {
	ino.mu.Lock()
	defer ino.mu.Unlock()
	if err := ino.fs.grow(size-int64(len(ino.mu.data)), "truncate"); err != nil {
		return err
	}
	ino.mu.data = resize(ino.mu.data, size)
	ino.size.Store(size)
	ino.mu.pending = append(ino.mu.pending, memOp{off: size})
	ino.mu.modTime = time.Now()
	return nil
}

type memInfo struct {
	name string
	size int64
	mod  time.Time
	dir  bool
}

func (i memInfo) Name() string       { return i.name }
func (i memInfo) Size() int64        { return i.size }
func (i memInfo) ModTime() time.Time { return i.mod }
func (i memInfo) IsDir() bool        { return i.dir }
func (i memInfo) Sys() any           { return nil }
func (i memInfo) Mode() os.FileMode {
	if i.dir {
		return os.ModeDir | 0o755
	}
	return 0o644
}

// memFile is an open handle.
type memFile struct {
	ino      *memInode
	name     string
	writable bool
	mu       struct {
		sync.Mutex
		closed bool
	}
}

var _ Mappable = (*memFile)(nil)

func (f *memFile) check(op string, write bool) error {
	f.mu.Lock()
	closed := f.mu.closed
	f.mu.Unlock()
	if closed {
		return &os.PathError{Op: op, Path: f.name, Err: os.ErrClosed}
	}
	if write && !f.writable {
		return &os.PathError{Op: op, Path: f.name, Err: syscall.EBADF}
	}
	return nil
}

func (f *memFile) ReadAt(p []byte, off int64) (int, error) {
	if err := f.check("read", false); err != nil {
		return 0, err
	}
	f.ino.mu.RLock()
	defer f.ino.mu.RUnlock()
	if off >= int64(len(f.ino.mu.data)) {
		return 0, io.EOF
	}
	n := copy(p, f.ino.mu.data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (f *memFile) WriteAt(p []byte, off int64) (int, error) {
	if err := f.check("write", true); err != nil {
		return 0, err
	}
	if off < 0 {
		return 0, &os.PathError{Op: "write", Path: f.name, Err: syscall.EINVAL}
	}
	ino := f.ino
	ino.mu.Lock()
	defer ino.mu.Unlock()
	end := off + int64(len(p))
	if grow := end - int64(len(ino.mu.data)); grow > 0 {
		if err := ino.fs.grow(grow, f.name); err != nil {
			return 0, err
		}
	}
	op := memOp{off: off, b: append([]byte(nil), p...)}
	ino.mu.data = applyOp(ino.mu.data, op)
	ino.size.Store(int64(len(ino.mu.data)))
	ino.mu.pending = append(ino.mu.pending, op)
	ino.mu.modTime = time.Now()
	return len(p), nil
}

// Sync makes every completed write durable.
func (f *memFile) Sync() error {
	if err := f.check("sync", false); err != nil {
		return err
	}
	ino := f.ino
	ino.mu.Lock()
	defer ino.mu.Unlock()
	for _, op := range ino.mu.pending {
		ino.mu.durable = applyOp(ino.mu.durable, op)
	}
	ino.mu.pending = ino.mu.pending[:0]
	return nil
}

func (f *memFile) Truncate(sizeBytes int64) error {
	if err := f.check("truncate", true); err != nil {
		return err
	}
	return f.ino.truncate(sizeBytes)
}

func (f *memFile) Size() (int64, error) {
	if err := f.check("size", false); err != nil {
		return 0, err
	}
	f.ino.mu.RLock()
	defer f.ino.mu.RUnlock()
	return int64(len(f.ino.mu.data)), nil
}

func (f *memFile) Name() string        { return f.name }
func (f *memFile) Fd() (uintptr, bool) { return 0, false }

func (f *memFile) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.mu.closed {
		return &os.PathError{Op: "close", Path: f.name, Err: os.ErrClosed}
	}
	f.mu.closed = true
	return nil
}

// MapReadOnly returns a view of the file's first sizeBytes bytes, aliasing its memory.
func (f *memFile) MapReadOnly(sizeBytes int64) ([]byte, func() error, error) {
	if err := f.check("mmap", false); err != nil {
		return nil, nil, err
	}
	f.ino.mu.RLock()
	defer f.ino.mu.RUnlock()
	if int64(len(f.ino.mu.data)) < sizeBytes {
		return nil, nil, fmt.Errorf("mmap %s: %d bytes past the file's %d", f.name, sizeBytes, len(f.ino.mu.data))
	}
	return f.ino.mu.data[:sizeBytes:sizeBytes], func() error { return nil }, nil
}
