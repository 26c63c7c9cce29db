// Package consumequeue holds the consume queues: per topic and queue id, the list of
// messages in queue order, each as the position of its record in the commit log.
//
// # On disk
//
// A queue is a directory of files, each holding EntriesPerFile entries of 20 bytes;
// logical offset n lives at byte n*20 of the whole queue, and a file is named by the
// byte position of its first entry in 20 zero-padded digits (RocketMQ's layout):
//
//	<root>/consumequeue/<topic>/<queueId>/00000000000000000000
//	<root>/consumequeue/<topic>/<queueId>/00000000000006000000   (EntriesPerFile = 300000)
//
//	entry (20 bytes, big-endian):
//	+--------------------------+-------------------+--------------------------+
//	| commitLogOffset int64    | size int32        | tagsCode int64           |
//	+--------------------------+-------------------+--------------------------+
//
// tagsCode is the TAGS hash (record.TagsHash), the delivery time for scheduled messages,
// 0 without tags. An all-zero entry (size 0) is a hole: a queue offset with no message
// (left when a queue is rebuilt after its head was deleted); readers skip holes. Files
// grow as entries are written (they are not pre-sized); bytes past the last entry do
// not exist, and a partial entry at a file's end is ignored.
//
// # Concurrency
//
// One writer (the store's dispatcher) calls Put/Commit; any number of readers call
// Read, Entry, Min/MaxOffset and OffsetByTime concurrently. Put buffers entries in
// memory; Commit writes them with one WriteAt per file and only then publishes the new
// max offset, so readers never see an entry that is not in the file. No lock is held
// across a system call: readers pin a file with a reference count taken under the
// queue's read lock and read without it; a deleted file is closed by its last reader.
//
// # Errors
//
// I/O errors are wrapped with the operation and the file; bytes that cannot be an entry
// sequence are a *CorruptError with the file and offset.
package consumequeue

import (
	"encoding/binary"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/ringmq/ringmq/flush/vfs"
)

// Format and limits.
const (
	EntrySizeBytes        = 20
	DefaultEntriesPerFile = 300000
	// MaxPendingEntries bounds the entries Put buffers before it writes them out.
	MaxPendingEntries = 512
	// maxScanChunkEntries bounds one read of a backward or binary-search scan.
	maxScanChunkEntries = 256
)

// ErrOutOfRange is returned for a read outside [MinOffset, MaxOffset).
var ErrOutOfRange = errors.New("consumequeue: offset out of range")

// CorruptError reports an entry that cannot be right, with the file and byte offset.
type CorruptError struct {
	File        string
	OffsetBytes int64
	Reason      string
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("consumequeue: corrupt %s at offset %d: %s", e.File, e.OffsetBytes, e.Reason)
}

// Entry is one consume-queue entry.
type Entry struct {
	PhysicalOffset int64
	SizeBytes      int32
	TagsCode       int64
}

// IsHole reports whether the entry is a hole (no message at this queue offset).
func (e Entry) IsHole() bool { return e.SizeBytes == 0 }

func putEntry(b []byte, e Entry) {
	binary.BigEndian.PutUint64(b[0:], uint64(e.PhysicalOffset))
	binary.BigEndian.PutUint32(b[8:], uint32(e.SizeBytes))
	binary.BigEndian.PutUint64(b[12:], uint64(e.TagsCode))
}

// DecodeEntry decodes the 20-byte entry at the start of b.
func DecodeEntry(b []byte) Entry {
	return Entry{
		PhysicalOffset: int64(binary.BigEndian.Uint64(b[0:])),
		SizeBytes:      int32(binary.BigEndian.Uint32(b[8:])),
		TagsCode:       int64(binary.BigEndian.Uint64(b[12:])),
	}
}

// FileName returns the name of the file whose first entry is at logical offset start.
func FileName(start int64) string { return fmt.Sprintf("%020d", start*EntrySizeBytes) }

// cqFile is one file of a queue; refs counts the queue's list (1) plus pinned readers.
// Files found at Open are opened on first use, so a store with long retention does
// not hold a descriptor per file of every queue.
type cqFile struct {
	fs      vfs.FS
	path    string
	start   int64 // logical offset of the first entry
	refs    atomic.Int32
	dirty   atomic.Bool // written since the last Sync
	removed atomic.Bool

	openOnce sync.Once
	vf       vfs.File // set by openOnce (or at creation)
	openErr  error
}

// file returns the open file, opening it on first use.
func (f *cqFile) file() (vfs.File, error) {
	f.openOnce.Do(func() {
		if f.vf == nil {
			if f.vf, f.openErr = f.fs.OpenReadWrite(f.path); f.openErr != nil {
				f.openErr = fmt.Errorf("consumequeue: open %s: %w", f.path, f.openErr)
			}
		}
	})
	return f.vf, f.openErr
}

func (f *cqFile) unref() {
	if f.refs.Add(-1) == 0 {
		f.openOnce.Do(func() {}) // never opened: stays closed
		if f.vf != nil {
			_ = f.vf.Close() // nobody uses it any more; nothing to lose
		}
	}
}

// Queue is one topic/queue id's consume queue.
type Queue struct {
	topic   string
	queueID int32
	dir     string
	fs      vfs.FS
	perFile int64

	minOffset atomic.Int64
	maxOffset atomic.Int64 // next offset to be written; entries below are readable

	mu struct {
		sync.RWMutex
		files []*cqFile // ascending start
	}

	// Writer-only state (the dispatcher).
	pending      []byte // encoded entries from pendingStart on
	pendingStart int64
}

func newQueue(fs vfs.FS, dir, topic string, queueID int32, perFile int64) *Queue {
	return &Queue{topic: topic, queueID: queueID, dir: dir, fs: fs, perFile: perFile,
		pending: make([]byte, 0, MaxPendingEntries*EntrySizeBytes)}
}

// Topic returns the queue's topic.
func (q *Queue) Topic() string { return q.topic }

// QueueID returns the queue id.
func (q *Queue) QueueID() int32 { return q.queueID }

// MinOffset is the first offset still readable.
func (q *Queue) MinOffset() int64 { return q.minOffset.Load() }

// MaxOffset is the next offset to be written (the count of entries ever written).
func (q *Queue) MaxOffset() int64 { return q.maxOffset.Load() }

// pin returns the file holding offset with a reference the caller must unref, or nil.
func (q *Queue) pin(offset int64) *cqFile {
	q.mu.RLock()
	defer q.mu.RUnlock()
	files := q.mu.files
	lo, hi := 0, len(files)
	for lo < hi {
		m := (lo + hi) / 2
		if files[m].start+q.perFile <= offset {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo == len(files) || files[lo].start > offset {
		return nil
	}
	f := files[lo]
	f.refs.Add(1)
	return f
}

// Read decodes up to len(dst) entries from offset into dst, stopping at MaxOffset and at
// the end of the file holding offset; it returns the entries read (a prefix of dst).
// Offsets inside a missing file read as holes.
func (q *Queue) Read(offset int64, dst []Entry, scratch []byte) ([]Entry, error) {
	maxOff := q.MaxOffset()
	if offset < q.MinOffset() || offset >= maxOff {
		return dst[:0], ErrOutOfRange
	}
	n := min(int64(len(dst)), maxOff-offset, q.perFile-offset%q.perFile)
	if int64(cap(scratch)) < n*EntrySizeBytes {
		panic(fmt.Sprintf("BUG: consumequeue.Read: scratch of %d bytes for %d entries", cap(scratch), n))
	}
	if err := q.readRaw(offset, dst[:n], scratch); err != nil {
		return dst[:0], err
	}
	return dst[:n], nil
}

// Entry returns the entry at offset.
func (q *Queue) Entry(offset int64) (Entry, error) {
	var one [1]Entry
	var scratch [EntrySizeBytes]byte
	got, err := q.Read(offset, one[:], scratch[:])
	if err != nil {
		return Entry{}, err
	}
	return got[0], nil
}

// Put adds the entry for queue offset offset. Offsets below what the queue holds are
// ignored (a replay after recovery); a gap leaves holes. The entry becomes readable at
// the next Commit. Only the dispatcher calls it.
func (q *Queue) Put(offset int64, e Entry) error {
	next := q.pendingStart + int64(len(q.pending))/EntrySizeBytes
	if len(q.pending) == 0 {
		next = q.MaxOffset()
	}
	if offset < next {
		return nil
	}
	if offset > next || len(q.pending) == cap(q.pending) || (len(q.pending) > 0 && offset%q.perFile == 0) {
		if err := q.Commit(); err != nil {
			return err
		}
		if offset > next && q.MaxOffset() == 0 && q.fileCount() == 0 {
			// A queue built from the middle (its head was deleted): it starts here.
			q.minOffset.Store(offset)
			q.maxOffset.Store(offset)
		}
	}
	if len(q.pending) == 0 {
		q.pendingStart = offset
	}
	var b [EntrySizeBytes]byte
	putEntry(b[:], e)
	q.pending = append(q.pending, b[:]...)
	return nil
}

func (q *Queue) fileCount() int {
	q.mu.RLock()
	defer q.mu.RUnlock()
	return len(q.mu.files)
}

// Commit writes the buffered entries and then publishes the new max offset.
func (q *Queue) Commit() error {
	if len(q.pending) == 0 {
		return nil
	}
	start := q.pendingStart
	f, err := q.fileFor(start)
	if err != nil {
		return err
	}
	pos := (start - f.start) * EntrySizeBytes
	vf, err := f.file()
	if err == nil {
		_, err = vf.WriteAt(q.pending, pos)
	}
	f.dirty.Store(true)
	f.unref()
	if err != nil {
		return fmt.Errorf("consumequeue: write %s at %d: %w", f.path, pos, err)
	}
	end := start + int64(len(q.pending))/EntrySizeBytes
	q.pending = q.pending[:0]
	if end > q.MaxOffset() {
		q.maxOffset.Store(end)
	}
	return nil
}

// fileFor returns (pinned) the file for offset, creating it when missing.
func (q *Queue) fileFor(offset int64) (*cqFile, error) {
	if f := q.pin(offset); f != nil {
		return f, nil
	}
	start := offset - offset%q.perFile
	path := filepath.Join(q.dir, FileName(start))
	if err := q.fs.MkdirAll(q.dir, 0o755); err != nil {
		return nil, fmt.Errorf("consumequeue: mkdir %s: %w", q.dir, err)
	}
	vf, err := q.fs.Create(path)
	if err != nil {
		return nil, fmt.Errorf("consumequeue: create %s: %w", path, err)
	}
	if err := q.fs.SyncDir(q.dir); err != nil {
		_ = vf.Close()
		return nil, fmt.Errorf("consumequeue: sync dir %s: %w", q.dir, err)
	}
	f := &cqFile{fs: q.fs, vf: vf, path: path, start: start}
	f.refs.Store(2) // the list's and the caller's
	q.mu.Lock()
	i := len(q.mu.files)
	for i > 0 && q.mu.files[i-1].start > start {
		i--
	}
	q.mu.files = append(q.mu.files, nil)
	copy(q.mu.files[i+1:], q.mu.files[i:])
	q.mu.files[i] = f
	q.mu.Unlock()
	return f, nil
}
