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
	checkpointTmpName   = "checkpoint.tmp"
	abortName           = "abort"
	checkpointMagic     = "RMQCKPT1"
	checkpointVersion   = 1
	checkpointSizeBytes = 56
)

// checkpoint is the store's durable points (see the package doc for the layout).
type checkpoint struct {
	commitLogDurable    int64
	consumeQueueDurable int64
	indexDurable        int64
	writtenAtMs         int64
}

// CheckpointError reports a checkpoint file that is not valid.
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
	be.PutUint64(b[16:], uint64(c.commitLogDurable))
	be.PutUint64(b[24:], uint64(c.consumeQueueDurable))
	be.PutUint64(b[32:], uint64(c.indexDurable))
	be.PutUint64(b[40:], uint64(c.writtenAtMs))
	be.PutUint32(b[48:], 0)
	be.PutUint32(b[52:], crc32.ChecksumIEEE(b[:52]))
}

func decodeCheckpoint(b []byte) (checkpoint, string) {
	be := binary.BigEndian
	switch {
	case len(b) != checkpointSizeBytes:
		return checkpoint{}, fmt.Sprintf("%d bytes, want %d", len(b), checkpointSizeBytes)
	case string(b[:8]) != checkpointMagic:
		return checkpoint{}, "bad magic"
	case be.Uint32(b[52:]) != crc32.ChecksumIEEE(b[:52]):
		return checkpoint{}, "CRC mismatch"
	case be.Uint32(b[8:]) != checkpointVersion:
		return checkpoint{}, fmt.Sprintf("version %d unknown", be.Uint32(b[8:]))
	}
	c := checkpoint{
		commitLogDurable:    int64(be.Uint64(b[16:])),
		consumeQueueDurable: int64(be.Uint64(b[24:])),
		indexDurable:        int64(be.Uint64(b[32:])),
		writtenAtMs:         int64(be.Uint64(b[40:])),
	}
	if c.commitLogDurable < 0 || c.consumeQueueDurable < 0 || c.indexDurable < 0 {
		return checkpoint{}, "negative offset"
	}
	return c, ""
}

// readCheckpoint returns the checkpoint, ok=false when there is none. A present but
// invalid file is a *CheckpointError.
func readCheckpoint(fsys vfs.FS, dir string) (checkpoint, bool, error) {
	path := filepath.Join(dir, checkpointName)
	f, err := fsys.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return checkpoint{}, false, nil
	}
	if err != nil {
		return checkpoint{}, false, fmt.Errorf("engine: open %s: %w", path, err)
	}
	defer f.Close()
	var b [checkpointSizeBytes + 1]byte
	n, err := f.ReadAt(b[:], 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return checkpoint{}, false, fmt.Errorf("engine: read %s: %w", path, err)
	}
	c, bad := decodeCheckpoint(b[:n])
	if bad != "" {
		return checkpoint{}, false, &CheckpointError{File: path, Reason: bad}
	}
	return c, true, nil
}

// writeCheckpoint replaces the checkpoint atomically: temp file, fdatasync, rename,
// directory sync.
func writeCheckpoint(fsys vfs.FS, dir string, c checkpoint) error {
	tmp, path := filepath.Join(dir, checkpointTmpName), filepath.Join(dir, checkpointName)
	var b [checkpointSizeBytes]byte
	c.encode(b[:])
	f, err := fsys.Create(tmp)
	if err != nil {
		return fmt.Errorf("engine: create %s: %w", tmp, err)
	}
	_, err = f.WriteAt(b[:], 0)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("engine: write %s: %w", tmp, err)
	}
	if err := fsys.Rename(tmp, path); err != nil {
		return fmt.Errorf("engine: rename %s: %w", tmp, err)
	}
	if err := fsys.SyncDir(dir); err != nil {
		return fmt.Errorf("engine: sync dir %s: %w", dir, err)
	}
	return nil
}

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
