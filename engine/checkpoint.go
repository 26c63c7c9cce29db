package engine

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"path/filepath"

	"github.com/ringmq/ringmq/flush/vfs"
)

const (
	checkpointName      = "checkpoint"
	abortName           = "abort"
	checkpointMagic     = "RMQCKPT2"
	checkpointVersion   = 2
	checkpointSizeBytes = 64 // one slot; the file holds two
)

// checkpoint is the store's durable points (see the package doc for the layout).
type checkpoint struct {
	seq                 uint64 // which write this is; the higher valid slot wins
	commitLogDurable    int64
	consumeQueueDurable int64
	indexDurable        int64
	writtenAtMs         int64
}

// CheckpointError reports a checkpoint file with no valid slot.
type CheckpointError struct {
	File   string
	Reason string
}

func (e *CheckpointError) Error() string {
	return fmt.Sprintf("engine: checkpoint %s: %s", e.File, e.Reason)
}

func (c *checkpoint) encode(b []byte) {
	be := binary.BigEndian
	copy(b[0:8], checkpointMagic)
	be.PutUint32(b[8:], checkpointVersion)
	be.PutUint32(b[12:], 0)
	be.PutUint64(b[16:], c.seq)
	be.PutUint64(b[24:], uint64(c.commitLogDurable))
	be.PutUint64(b[32:], uint64(c.consumeQueueDurable))
	be.PutUint64(b[40:], uint64(c.indexDurable))
	be.PutUint64(b[48:], uint64(c.writtenAtMs))
	be.PutUint32(b[56:], 0)
	be.PutUint32(b[60:], crc32.ChecksumIEEE(b[:60]))
}

func decodeCheckpoint(b []byte) (checkpoint, string) {
	be := binary.BigEndian
	switch {
	case len(b) != checkpointSizeBytes:
		return checkpoint{}, fmt.Sprintf("%d bytes, want %d", len(b), checkpointSizeBytes)
	case string(b[:8]) != checkpointMagic:
		return checkpoint{}, "bad magic"
	case be.Uint32(b[60:]) != crc32.ChecksumIEEE(b[:60]):
		return checkpoint{}, "CRC mismatch"
	case be.Uint32(b[8:]) != checkpointVersion:
		return checkpoint{}, fmt.Sprintf("version %d unknown", be.Uint32(b[8:]))
	}
	c := checkpoint{
		seq:                 be.Uint64(b[16:]),
		commitLogDurable:    int64(be.Uint64(b[24:])),
		consumeQueueDurable: int64(be.Uint64(b[32:])),
		indexDurable:        int64(be.Uint64(b[40:])),
		writtenAtMs:         int64(be.Uint64(b[48:])),
	}
	if c.commitLogDurable < 0 || c.consumeQueueDurable < 0 || c.indexDurable < 0 {
		return checkpoint{}, "negative offset"
	}
	return c, ""
}

// checkpointFile is the checkpoint on disk: two slots written alternately in place
// (pwrite + fdatasync), so a checkpoint costs no rename or directory sync (which on
// ext4 would force a journal commit beside the commit log's fdatasyncs), and a torn
// write spoils only the slot being written, leaving the previous checkpoint.
type checkpointFile struct {
	f    vfs.File
	path string
	last checkpoint // the newest valid checkpoint, written or read
}

// openCheckpoint opens (creating) the checkpoint file and returns the newest valid
// checkpoint; ok is false when there is none. A file with data but no valid slot is a
// *CheckpointError (the file stays usable for writing).
func openCheckpoint(fsys vfs.FS, dir string) (cf *checkpointFile, ok bool, err error) {
	path := filepath.Join(dir, checkpointName)
	f, err := fsys.OpenReadWrite(path)
	if errors.Is(err, fs.ErrNotExist) {
		if f, err = fsys.Create(path); err != nil {
			return nil, false, fmt.Errorf("engine: create %s: %w", path, err)
		}
		if err := fsys.SyncDir(dir); err != nil {
			_ = f.Close()
			return nil, false, fmt.Errorf("engine: sync dir %s: %w", dir, err)
		}
		return &checkpointFile{f: f, path: path}, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("engine: open %s: %w", path, err)
	}
	cf = &checkpointFile{f: f, path: path}
	var b [2 * checkpointSizeBytes]byte
	n, err := f.ReadAt(b[:], 0)
	if err != nil && !errors.Is(err, io.EOF) {
		_ = f.Close()
		return nil, false, fmt.Errorf("engine: read %s: %w", path, err)
	}
	var why string
	for slot := 0; slot < 2; slot++ {
		if n < (slot+1)*checkpointSizeBytes {
			continue
		}
		c, bad := decodeCheckpoint(b[slot*checkpointSizeBytes : (slot+1)*checkpointSizeBytes])
		if bad != "" {
			why = fmt.Sprintf("slot %d: %s", slot, bad)
			continue
		}
		if !ok || c.seq > cf.last.seq {
			cf.last, ok = c, true
		}
	}
	if !ok && n > 0 {
		return cf, false, &CheckpointError{File: path, Reason: why}
	}
	return cf, ok, nil
}

// write stores c (its seq is assigned) in the slot not holding the newest checkpoint.
func (cf *checkpointFile) write(c checkpoint) error {
	c.seq = cf.last.seq + 1
	var b [checkpointSizeBytes]byte
	c.encode(b[:])
	off := int64(c.seq%2) * checkpointSizeBytes
	if _, err := cf.f.WriteAt(b[:], off); err != nil {
		return fmt.Errorf("engine: write %s: %w", cf.path, err)
	}
	if err := cf.f.Sync(); err != nil {
		return fmt.Errorf("engine: sync %s: %w", cf.path, err)
	}
	cf.last = c
	return nil
}

func (cf *checkpointFile) close() error { return cf.f.Close() }

// createAbortMarker creates the abort file and reports whether it was already there
// (the previous run did not close cleanly).
func createAbortMarker(fsys vfs.FS, dir string) (crashed bool, err error) {
	path := filepath.Join(dir, abortName)
	if _, err := fsys.Stat(path); err == nil {
		crashed = true
	} else if !errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("engine: stat %s: %w", path, err)
	}
	f, err := fsys.Create(path)
	if err != nil {
		return crashed, fmt.Errorf("engine: create %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return crashed, fmt.Errorf("engine: close %s: %w", path, err)
	}
	if err := fsys.SyncDir(dir); err != nil {
		return crashed, fmt.Errorf("engine: sync dir %s: %w", dir, err)
	}
	return crashed, nil
}

func removeAbortMarker(fsys vfs.FS, dir string) error {
	path := filepath.Join(dir, abortName)
	if err := fsys.Remove(path); err != nil {
		return fmt.Errorf("engine: remove %s: %w", path, err)
	}
	if err := fsys.SyncDir(dir); err != nil {
		return fmt.Errorf("engine: sync dir %s: %w", dir, err)
	}
	return nil
}
