package meta

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"

	"github.com/ringmq/ringmq/flush/vfs"
)

// maxFileBytes bounds what load reads: a config file larger than this is corrupt.
const maxFileBytes = 256 << 20

// writeFileAtomic replaces dir/name with data: write dir/name.tmp, fdatasync it, rename
// it over dir/name, fsync dir. A crash at any step leaves the old file or the new one.
func writeFileAtomic(fsys vfs.FS, dir, name string, data []byte) error {
	final := path.Join(dir, name)
	tmp := final + ".tmp"
	f, err := fsys.Create(tmp)
	if err != nil {
		return fmt.Errorf("meta: write %s: create temp: %w", final, err)
	}
	if _, err := f.WriteAt(data, 0); err != nil {
		_ = f.Close()
		return fmt.Errorf("meta: write %s: %w", final, err)
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return fmt.Errorf("meta: write %s: sync temp: %w", final, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("meta: write %s: close temp: %w", final, err)
	}
	if err := fsys.Rename(tmp, final); err != nil {
		return fmt.Errorf("meta: write %s: rename: %w", final, err)
	}
	if err := fsys.SyncDir(dir); err != nil {
		return fmt.Errorf("meta: write %s: sync dir: %w", final, err)
	}
	return nil
}

// loadJSON reads name and hands its bytes to parse. A missing file is not an error.
func loadJSON(fsys vfs.FS, name string, parse func([]byte) error) error {
	f, err := fsys.Open(name)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("meta: load %s: %w", name, err)
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		return fmt.Errorf("meta: load %s: size: %w", name, err)
	}
	if size > maxFileBytes {
		return fmt.Errorf("meta: load %s: %d bytes, over the %d-byte limit", name, size, maxFileBytes)
	}
	data := make([]byte, size)
	if _, err := f.ReadAt(data, 0); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("meta: load %s: %w", name, err)
	}
	if len(data) == 0 {
		return nil
	}
	if err := parse(data); err != nil {
		return fmt.Errorf("meta: load %s: %w", name, err)
	}
	return nil
}
