package vfs

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"golang.org/x/sys/unix"
)

// Mappable is implemented by files that can be mapped read-only, so that readers see
// written bytes without a copy. The OS file system maps with mmap(PROT_READ,
// MAP_SHARED), which shows bytes as soon as a write to the file returned; the
// in-memory file system returns its own bytes. The view must not be written to, and
// is valid until unmap is called.
type Mappable interface {
	MapReadOnly(sizeBytes int64) (b []byte, unmap func() error, err error)
}

// OS is the real file system.
type OS struct{}

var _ FS = OS{}

type osFile struct{ *os.File }

var _ Mappable = osFile{}

func (f osFile) Sync() error {
	for {
		err := fdatasync(int(f.File.Fd()))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return &os.PathError{Op: "fdatasync", Path: f.File.Name(), Err: err}
		}
		return nil
	}
}

func (f osFile) Size() (int64, error) {
	fi, err := f.File.Stat()
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

func (f osFile) Fd() (uintptr, bool) { return f.File.Fd(), true }

func (f osFile) MapReadOnly(sizeBytes int64) ([]byte, func() error, error) {
	b, err := unix.Mmap(int(f.File.Fd()), 0, int(sizeBytes), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return nil, nil, &os.PathError{Op: "mmap", Path: f.File.Name(), Err: err}
	}
	return b, func() error { return unix.Munmap(b) }, nil
}

// Create creates or truncates the named file for reading and writing.
func (OS) Create(name string) (File, error) {
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, err
	}
	return osFile{f}, nil
}

// Open opens an existing file read-only.
func (OS) Open(name string) (File, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	return osFile{f}, nil
}

// OpenReadWrite opens an existing file for reading and writing.
func (OS) OpenReadWrite(name string) (File, error) {
	f, err := os.OpenFile(name, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	return osFile{f}, nil
}

func (OS) Remove(name string) error                 { return os.Remove(name) }
func (OS) Rename(oldname, newname string) error     { return os.Rename(oldname, newname) }
func (OS) MkdirAll(dir string, p os.FileMode) error { return os.MkdirAll(dir, p) }
func (OS) Stat(name string) (os.FileInfo, error)    { return os.Stat(name) }

// List returns the names of the entries of dir, sorted.
func (OS) List(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(ents))
	for i, e := range ents {
		names[i] = e.Name()
	}
	sort.Strings(names)
	return names, nil
}

// SyncDir opens the directory and fsyncs it, making its entries durable.
func (OS) SyncDir(dir string) error {
	d, err := os.Open(filepath.Clean(dir))
	if err != nil {
		return err
	}
	serr := d.Sync()
	cerr := d.Close()
	if serr != nil {
		return fmt.Errorf("sync dir %s: %w", dir, serr)
	}
	return cerr
}

// DiskUsage reports statfs figures as df(1) does: free is what an unprivileged user
// may still write, total is the bytes in use plus free (blocks reserved for root are
// left out, so that used/total is df's Use%).
func (OS) DiskUsage(path string) (totalBytes, freeBytes uint64, err error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return 0, 0, &os.PathError{Op: "statfs", Path: path, Err: err}
	}
	bs := uint64(st.Bsize)
	used := (st.Blocks - st.Bfree) * bs
	return used + st.Bavail*bs, st.Bavail * bs, nil
}
