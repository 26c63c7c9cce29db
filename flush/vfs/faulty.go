package vfs

import (
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
)

// Op names the file operations an Injector can fail.
type Op uint8

const (
	OpWrite   Op = iota + 1 // File.WriteAt
	OpSync                  // File.Sync
	OpSyncDir               // FS.SyncDir
	OpCreate                // FS.Create
	OpRename                // FS.Rename
)

// Rule is one programmed fault.
type Rule struct {
	Op Op
	// PathContains restricts the rule to paths containing it ("" matches every path).
	PathContains string
	// Nth fires the rule on the Nth matching operation counted from when the rule was
	// added (1 = the next one), once; 0 fires it on every matching operation.
	Nth int
	// Err is returned by the failed operation (for example syscall.EIO).
	Err error
	// ShortBytes, for writes: the write first writes this many bytes (fewer than
	// asked), then returns Err, or io.ErrShortWrite if Err is nil.
	ShortBytes int
}

// Injector decides which operations of a Faulty file system fail. It is safe for
// concurrent use and can be reprogrammed while the file system is in use.
type Injector struct {
	mu struct {
		sync.Mutex
		rules []*ruleState
		fired int
	}
	noSpace      atomic.Bool
	minFreeBytes atomic.Uint64
}

type ruleState struct {
	Rule
	seen int
	done bool
}

// NewInjector returns an Injector with no rules.
func NewInjector() *Injector { return &Injector{} }

// Add programs a fault.
func (in *Injector) Add(r Rule) {
	in.mu.Lock()
	in.mu.rules = append(in.mu.rules, &ruleState{Rule: r})
	in.mu.Unlock()
}

// Reset removes every rule and turns SetNoSpace off.
func (in *Injector) Reset() {
	in.mu.Lock()
	in.mu.rules = nil
	in.mu.Unlock()
	in.noSpace.Store(false)
}

// SetNoSpace simulates a full disk while on: writes and creates fail with ENOSPC and
// DiskUsage reports no free bytes. Turning it off simulates space returning.
func (in *Injector) SetNoSpace(on bool) { in.noSpace.Store(on) }

// SetNoSpaceBelow makes writes and creates fail with ENOSPC while the inner file
// system reports fewer than freeBytes free (0 turns it off). With vfs.Mem, deleting
// files or SetCapacity makes space return.
func (in *Injector) SetNoSpaceBelow(freeBytes uint64) { in.minFreeBytes.Store(freeBytes) }

// Fired returns how many faults were injected.
func (in *Injector) Fired() int {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.mu.fired
}

// decide returns the fault for an operation on path, if any.
func (in *Injector) decide(op Op, path string) (r Rule, fail bool) {
	if in.noSpace.Load() && (op == OpWrite || op == OpCreate) {
		in.mu.Lock()
		in.mu.fired++
		in.mu.Unlock()
		return Rule{Op: op, Err: syscall.ENOSPC}, true
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	for _, rs := range in.mu.rules {
		if rs.done || rs.Op != op || !strings.Contains(path, rs.PathContains) {
			continue
		}
		rs.seen++
		if rs.Nth == 0 || rs.seen == rs.Nth {
			rs.done = rs.Nth != 0
			in.mu.fired++
			return rs.Rule, true
		}
	}
	return Rule{}, false
}

// Faulty wraps a file system and fails the operations its Injector chooses (Rule,
// SetNoSpace, SetNoSpaceBelow). Its files
// report no descriptor (Fd returns false), so backends take the WriteAt path that the
// faults apply to.
type Faulty struct {
	inner FS
	in    *Injector
}

var _ FS = (*Faulty)(nil)

// NewFaulty returns inner with the faults of in.
func NewFaulty(inner FS, in *Injector) *Faulty { return &Faulty{inner: inner, in: in} }

func pathErr(op, path string, err error) error { return &os.PathError{Op: op, Path: path, Err: err} }

func (f *Faulty) wrap(file File, err error) (File, error) {
	if err != nil {
		return nil, err
	}
	return &faultyFile{File: file, in: f.in, fs: f}, nil
}

// lowOnSpace reports whether SetNoSpaceBelow applies now.
func (f *Faulty) lowOnSpace(path string) bool {
	min := f.in.minFreeBytes.Load()
	if min == 0 {
		return false
	}
	_, free, err := f.inner.DiskUsage(path)
	return err == nil && free < min
}

func (f *Faulty) Create(name string) (File, error) {
	if f.lowOnSpace(name) {
		return nil, pathErr("create", name, syscall.ENOSPC)
	}
	if r, fail := f.in.decide(OpCreate, name); fail {
		return nil, pathErr("create", name, r.Err)
	}
	return f.wrap(f.inner.Create(name))
}
func (f *Faulty) Open(name string) (File, error) { return f.wrap(f.inner.Open(name)) }
func (f *Faulty) OpenReadWrite(name string) (File, error) {
	return f.wrap(f.inner.OpenReadWrite(name))
}
func (f *Faulty) Remove(name string) error { return f.inner.Remove(name) }
func (f *Faulty) Rename(oldname, newname string) error {
	if r, fail := f.in.decide(OpRename, newname); fail {
		return &os.LinkError{Op: "rename", Old: oldname, New: newname, Err: r.Err}
	}
	return f.inner.Rename(oldname, newname)
}
func (f *Faulty) MkdirAll(dir string, perm os.FileMode) error { return f.inner.MkdirAll(dir, perm) }
func (f *Faulty) List(dir string) ([]string, error)           { return f.inner.List(dir) }
func (f *Faulty) Stat(name string) (os.FileInfo, error)       { return f.inner.Stat(name) }
func (f *Faulty) SyncDir(dir string) error {
	if r, fail := f.in.decide(OpSyncDir, dir); fail {
		return pathErr("syncdir", dir, r.Err)
	}
	return f.inner.SyncDir(dir)
}

// DiskUsage reports the inner figures, or no free space while SetNoSpace is on.
func (f *Faulty) DiskUsage(path string) (totalBytes, freeBytes uint64, err error) {
	total, free, err := f.inner.DiskUsage(path)
	if f.in.noSpace.Load() {
		free = 0
	}
	return total, free, err
}

type faultyFile struct {
	File
	in *Injector
	fs *Faulty
}

func (f *faultyFile) WriteAt(p []byte, off int64) (int, error) {
	if f.fs.lowOnSpace(f.Name()) {
		return 0, pathErr("write", f.Name(), syscall.ENOSPC)
	}
	r, fail := f.in.decide(OpWrite, f.Name())
	if !fail {
		return f.File.WriteAt(p, off)
	}
	n := 0
	if r.ShortBytes > 0 && r.ShortBytes < len(p) {
		var err error
		if n, err = f.File.WriteAt(p[:r.ShortBytes], off); err != nil {
			return n, err
		}
	}
	err := r.Err
	if err == nil {
		err = io.ErrShortWrite
	}
	return n, pathErr("write", f.Name(), err)
}

func (f *faultyFile) Sync() error {
	if r, fail := f.in.decide(OpSync, f.Name()); fail {
		return pathErr("fdatasync", f.Name(), r.Err)
	}
	return f.File.Sync()
}

func (f *faultyFile) Fd() (uintptr, bool) { return 0, false }

// MapReadOnly forwards to the inner file when it can be mapped.
func (f *faultyFile) MapReadOnly(sizeBytes int64) ([]byte, func() error, error) {
	m, ok := f.File.(Mappable)
	if !ok {
		return nil, nil, pathErr("mmap", f.Name(), syscall.ENODEV)
	}
	return m.MapReadOnly(sizeBytes)
}
