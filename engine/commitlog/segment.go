package commitlog

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ringmq/ringmq/flush"
	"github.com/ringmq/ringmq/flush/vfs"
)

// segment is one segment file. start, path and view are fixed once it is published
// in Log.mu; w belongs to the flusher (and to Close once the flusher stopped).
type segment struct {
	start int64
	path  string
	rf    vfs.File // read-only handle holding the mapping
	view  []byte   // read-only mapping of the whole file
	unmap func() error
	w     flush.Writer
	pins  atomic.Int64
	// releaseFn is s.unpin bound once, so Read returns it without allocating.
	releaseFn func()
}

func (s *segment) unpin() {
	if s.pins.Add(-1) < 0 {
		panic("BUG: commitlog: segment release called twice")
	}
}

// closeFiles unmaps and closes the read handle (not the writer).
func (s *segment) closeFiles() error {
	var errs []error
	if s.unmap != nil {
		errs = append(errs, s.unmap())
		s.unmap, s.view = nil, nil
	}
	if s.rf != nil {
		errs = append(errs, s.rf.Close())
		s.rf = nil
	}
	return errors.Join(errs...)
}

func (l *Log) segPath(start int64) string { return filepath.Join(l.dir, SegmentName(start)) }

// openSegment maps a complete segment file and, if withWriter, opens it for the
// flusher through the backend.
func (l *Log) openSegment(start int64, withWriter bool) (*segment, error) {
	s := &segment{start: start, path: l.segPath(start)}
	s.releaseFn = s.unpin
	rf, err := l.cfg.FS.Open(s.path)
	if err != nil {
		return nil, fmt.Errorf("open segment %s: %w", s.path, err)
	}
	s.rf = rf
	m, ok := rf.(vfs.Mappable)
	if !ok {
		s.closeFiles()
		return nil, fmt.Errorf("open segment %s: the file system cannot map files read-only", s.path)
	}
	if s.view, s.unmap, err = m.MapReadOnly(l.cfg.SegmentSizeBytes); err != nil {
		s.closeFiles()
		return nil, fmt.Errorf("map segment %s: %w", s.path, err)
	}
	if withWriter {
		if s.w, err = l.backend.Open(l.cfg.FS, s.path); err != nil {
			s.closeFiles()
			return nil, fmt.Errorf("open segment %s for writing: %w", s.path, err)
		}
	}
	return s, nil
}

// zeroChunkBytes is the write size used to pre-write segments and zero torn tails.
const zeroChunkBytes = 1 << 20

var zeroChunk = make([]byte, zeroChunkBytes)

// recycleName is where a segment deleted for age waits to be reused by the allocator
// (a .tmp file: Open removes it).
const recycleName = "recycle.tmp"

// Pre-writing is paced so it does not starve the appends of the disk. Written in one
// burst, 1 GiB of zeros sits in the page cache and is written back all at once: while
// the device drains it, every fdatasync of the active segment waits behind it. Paced,
// the zeros go out in prewriteSyncBytes slices, each fdatasync'ed, at
// PrewriteBytesPerSec on average (BenchmarkFdatasyncDuringPrewrite: a 4 KiB
// fdatasync's p50 beside a pre-write 566 -> 242 us, p99 3.7 -> 3.4 ms, p99.9 9.3 ->
// 8.5 ms, medians of 3 runs; 4 MiB slices gave a worse p99, 6.0 ms).
const prewriteSyncBytes = 1 << 20

// prewrite creates the segment starting at start: a temporary file filled with zeros
// by large writes, fdatasync'ed, renamed into place, directory synced. A recycled
// segment is renamed to the temporary name first, so the zeros overwrite allocated
// blocks (the fast path) instead of allocating new ones. It never runs on the append
// path. urgent reports, between slices, whether appends are (or soon will be) waiting
// for this segment, which lifts the pacing; nil means always.
func (l *Log) prewrite(start int64, urgent func() bool) error {
	path := l.segPath(start)
	tmp := path + ".tmp"
	recycled := l.cfg.FS.Rename(filepath.Join(l.dir, recycleName), tmp) == nil
	err := l.writeZeroFile(tmp, recycled, urgent)
	if err == nil {
		err = l.cfg.FS.Rename(tmp, path)
	}
	if err == nil {
		err = l.cfg.FS.SyncDir(l.dir)
	}
	if err != nil {
		l.cfg.FS.Remove(tmp) // best effort: Open removes leftovers too
		return fmt.Errorf("pre-write segment %s: %w", path, err)
	}
	return nil
}

func (l *Log) writeZeroFile(path string, recycled bool, urgent func() bool) error {
	var f vfs.File
	var err error
	if recycled {
		l.segmentsRecycled.Add(1)
		f, err = l.cfg.FS.OpenReadWrite(path)
	} else {
		f, err = l.cfg.FS.Create(path)
	}
	if err != nil {
		return err
	}
	pace := newPacer(l.cfg.PrewriteBytesPerSec, urgent, l.stop)
	for off := int64(0); off < l.cfg.SegmentSizeBytes && err == nil; {
		n := min(int64(zeroChunkBytes), l.cfg.SegmentSizeBytes-off)
		if _, err = f.WriteAt(zeroChunk[:n], off); err != nil {
			break
		}
		off += n
		if off%prewriteSyncBytes == 0 && off < l.cfg.SegmentSizeBytes {
			err = f.Sync()
		}
		pace.wait(off)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// pacer spaces pre-writes to an average rate. It sleeps on Go timers: a millisecond of
// overshoot does not matter to a background writer. Once urgent says so, or stop is
// closed (the log is closing: finish the file rather than hold Close up), the rest of
// the file goes at full speed.
type pacer struct {
	bytesPerSec int64
	start       time.Time
	urgent      func() bool
	stop        <-chan struct{}
}

func newPacer(bytesPerSec int64, urgent func() bool, stop <-chan struct{}) pacer {
	if urgent == nil || bytesPerSec <= 0 {
		return pacer{}
	}
	return pacer{bytesPerSec: bytesPerSec, start: time.Now(), urgent: urgent, stop: stop}
}

// wait returns once written bytes are due at the pacer's rate.
func (p *pacer) wait(written int64) {
	if p.bytesPerSec <= 0 {
		return
	}
	if p.urgent() {
		p.bytesPerSec = 0
		return
	}
	ahead := time.Duration(float64(written)/float64(p.bytesPerSec)*float64(time.Second)) - time.Since(p.start)
	if ahead <= 0 {
		return
	}
	t := time.NewTimer(ahead)
	defer t.Stop()
	select {
	case <-t.C:
	case <-p.stop:
		p.bytesPerSec = 0
	}
}

// listSegments returns the start offsets of the segment files in dir, sorted, after
// removing leftover temporary files.
func (l *Log) listSegments() ([]int64, error) {
	names, err := l.cfg.FS.List(l.dir)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", l.dir, err)
	}
	var starts []int64
	for _, name := range names {
		path := filepath.Join(l.dir, name)
		if strings.HasSuffix(name, ".tmp") {
			if err := l.cfg.FS.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("remove %s: %w", path, err)
			}
			continue
		}
		start, err := strconv.ParseInt(name, 10, 64)
		if len(name) != 20 || err != nil {
			l.cfg.Logger.Warn("commitlog: ignoring a file that is not a segment", "path", path)
			continue
		}
		if start%l.cfg.SegmentSizeBytes != 0 {
			return nil, fmt.Errorf("segment %s: start %d is not a multiple of the segment size %d", path, start, l.cfg.SegmentSizeBytes)
		}
		fi, err := l.cfg.FS.Stat(path)
		if err != nil {
			return nil, fmt.Errorf("stat %s: %w", path, err)
		}
		if fi.Size() != l.cfg.SegmentSizeBytes {
			return nil, fmt.Errorf("segment %s: size %d, want %d (SegmentSizeBytes changed?)", path, fi.Size(), l.cfg.SegmentSizeBytes)
		}
		starts = append(starts, start)
	}
	return starts, nil
}
