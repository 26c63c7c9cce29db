// Package vfs is the file layer that ringmq's store reaches the disk through.
//
// Every file operation of the commit log, consume queues, index and checkpoint goes
// through an FS, so that the same code runs on:
//
//   - OS: the real file system (os + golang.org/x/sys/unix).
//   - Mem / crash: an in-memory file system that remembers, per file, which bytes an
//     fdatasync has covered; Crash() returns a copy holding only durable state, so a
//     crash test is an ordinary unit test.
//   - Faulty: a wrapper that injects EIO on write or sync, ENOSPC, and short writes.
//
// Contract:
//   - WriteAt follows io.WriterAt: a short write returns an error.
//   - Sync is fdatasync: it makes every byte written before it durable, and the file's
//     size if the size changed. A failed Sync leaves the durable state unknown; callers
//     never retry it (the fsyncgate lesson), they stop writing.
//   - Directory entries (create, rename, remove) are durable only after SyncDir on the
//     parent directory.
//   - Files are safe for concurrent ReadAt and WriteAt on disjoint ranges; Sync may run
//     concurrently with WriteAt.
package vfs

import (
	"io"
	"os"
)

// File is an open file.
type File interface {
	io.ReaderAt
	io.WriterAt
	io.Closer
	// Sync makes every completed write durable (fdatasync).
	Sync() error
	// Truncate sets the file size.
	Truncate(sizeBytes int64) error
	// Size returns the current file size.
	Size() (int64, error)
	// Name returns the path the file was opened with.
	Name() string
	// Fd returns the OS file descriptor and true for files of the OS file system, and
	// false for in-memory files. Backends that need a real descriptor (io_uring, O_DIRECT)
	// refuse files without one.
	Fd() (uintptr, bool)
}

// FS is a file system.
type FS interface {
	// Create creates or truncates the named file for reading and writing.
	Create(name string) (File, error)
	// Open opens an existing file read-only.
	Open(name string) (File, error)
	// OpenReadWrite opens an existing file for reading and writing.
	OpenReadWrite(name string) (File, error)
	// Remove removes the named file or empty directory.
	Remove(name string) error
	// Rename renames oldname to newname, replacing newname if it exists.
	Rename(oldname, newname string) error
	// MkdirAll creates a directory and its parents.
	MkdirAll(dir string, perm os.FileMode) error
	// List returns the names (not paths) of the entries of dir, sorted.
	List(dir string) ([]string, error)
	// Stat returns file information.
	Stat(name string) (os.FileInfo, error)
	// SyncDir makes the directory's entries durable.
	SyncDir(dir string) error
	// DiskUsage reports the total and free bytes of the file system holding path.
	DiskUsage(path string) (totalBytes, freeBytes uint64, err error)
}
