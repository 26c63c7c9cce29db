package commitlog

import (
	"errors"
	"fmt"
	"path/filepath"
	"syscall"
	"time"
)

// Background work, off the append path: the allocator pre-writes segments, the
// janitor deletes old ones and decides whether the disk is full.
const (
	// readySegments is how many pre-written segments the allocator keeps past the
	// active one (RocketMQ: the next and the next-next).
	readySegments = 2
	// allocRetryInterval: how often the allocator retries after a failure.
	allocRetryInterval = 100 * time.Millisecond
	// janitorInterval: how often disk space and retention are checked (and how soon,
	// at most, appends resume once space returns, besides the re-check an append
	// refused for a full disk triggers).
	janitorInterval = 100 * time.Millisecond
	// pinPollInterval: how often a deletion re-checks a segment's pinned reads.
	pinPollInterval = time.Millisecond
)

// diskState is the janitor's view; only the janitor goroutine touches it.
type diskState struct {
	overRatio bool
}

// allocator keeps readySegments pre-written segments ahead of the active one.
func (l *Log) allocator() {
	defer l.bg.Done()
	t := time.NewTicker(allocRetryInterval)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-l.allocKick:
		case <-t.C:
		}
		for l.allocateOne() {
		}
	}
}

// allocateOne pre-writes the next missing segment; it reports whether it made one.
func (l *Log) allocateOne() bool {
	l.mu.RLock()
	closed := l.mu.closed
	n := len(l.mu.ready)
	var next int64
	if len(l.mu.segs) > 0 {
		next = l.mu.segs[len(l.mu.segs)-1].start + l.segSize*int64(1+n)
	}
	l.mu.RUnlock()
	if closed || n >= readySegments || next == 0 {
		return false
	}
	err := l.prewrite(next, l.noneReady)
	var s *segment
	if err == nil {
		s, err = l.openSegment(next, true)
	}
	if err != nil {
		if errors.Is(err, syscall.ENOSPC) {
			err = fmt.Errorf("%w: %v", ErrDiskFull, err)
			l.ring.SetDiskFull(err)
		}
		l.mu.Lock()
		if l.mu.allocErr == nil {
			l.cfg.Logger.Error("commitlog: allocator failed", "err", err)
		}
		l.mu.allocErr = err
		l.allocCond.Broadcast()
		l.mu.Unlock()
		return false
	}
	l.mu.Lock()
	stale := l.mu.closed || len(l.mu.ready) != n
	if !stale {
		if l.mu.allocErr != nil {
			l.cfg.Logger.Info("commitlog: allocator recovered", "segment", s.path)
			l.mu.allocErr = nil
			kick(l.janitorKick)
		}
		l.mu.ready = append(l.mu.ready, s)
		l.segmentsAllocated.Add(1)
		l.allocCond.Broadcast()
	}
	l.mu.Unlock()
	if stale { // closed meanwhile: close the files without the lock
		s.w.Close()
		s.closeFiles()
		return false
	}
	return true
}

// noneReady reports whether the active segment has no pre-written successor: the
// segment being pre-written is then the one appends need next.
func (l *Log) noneReady() bool {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return len(l.mu.ready) == 0
}

// janitor applies retention and the disk-full policy.
func (l *Log) janitor() {
	defer l.bg.Done()
	t := time.NewTicker(janitorInterval)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-l.janitorKick:
		case <-t.C:
		}
		l.janitorOnce()
	}
}

func (l *Log) janitorOnce() {
	usedPct, free, err := l.diskUse()
	if err != nil {
		l.cfg.Logger.Warn("commitlog: disk usage", "dir", l.dir, "err", err)
		return
	}
	for usedPct > l.cfg.DiskMaxUsedSpaceRatio && l.deleteOldest("disk use over diskMaxUsedSpaceRatio", false) {
		if usedPct, free, err = l.diskUse(); err != nil {
			return
		}
	}
	l.disk.overRatio = usedPct > l.cfg.DiskMaxUsedSpaceRatio
	if timeNow().Hour() == l.cfg.DeleteWhenHour {
		for l.oldestExpired() && l.deleteOldest("older than fileReservedTime", true) {
		}
	}
	l.applyDiskFull(usedPct, free)
}

// applyDiskFull refuses or resumes appends.
func (l *Log) applyDiskFull(usedPct int, free uint64) {
	l.mu.RLock()
	allocErr := l.mu.allocErr
	l.mu.RUnlock()
	var reason error
	switch {
	case allocErr != nil && errors.Is(allocErr, ErrDiskFull):
		reason = allocErr
	case l.disk.overRatio:
		reason = fmt.Errorf("%w: disk use %d%% is over diskMaxUsedSpaceRatio %d%% on %s and no segment is left to delete",
			ErrDiskFull, usedPct, l.cfg.DiskMaxUsedSpaceRatio, l.dir)
	}
	full, writeNoSpace, _ := l.ring.DiskFull()
	switch {
	case reason != nil && !full:
		l.cfg.Logger.Error("commitlog: refusing appends", "reason", reason)
		l.ring.SetDiskFull(reason)
	case reason == nil && full && (!writeNoSpace || free > 0):
		l.cfg.Logger.Info("commitlog: space returned, appends resume", "dir", l.dir)
		l.ring.ClearDiskFull()
	}
}

func (l *Log) diskUse() (usedPct int, free uint64, err error) {
	total, free, err := l.cfg.FS.DiskUsage(l.dir)
	if err != nil || total == 0 {
		return 0, free, err
	}
	return int((total - free) * 100 / total), free, nil
}

// oldestExpired reports whether the oldest segment's last write is older than
// FileReservedTime.
func (l *Log) oldestExpired() bool {
	l.mu.RLock()
	if len(l.mu.segs) < 2 {
		l.mu.RUnlock()
		return false
	}
	path := l.mu.segs[0].path
	l.mu.RUnlock()
	fi, err := l.cfg.FS.Stat(path)
	return err == nil && timeNow().Sub(fi.ModTime()) > l.cfg.FileReservedTime
}

// deleteOldest deletes the oldest segment if it is entirely durable and not the
// active one, after its pinned reads are released. With recycle (deletion for age,
// not for space), the file is kept for the allocator if none is kept yet. It reports
// whether it deleted.
func (l *Log) deleteOldest(why string, recycle bool) bool {
	durable := l.ring.DurableOffset()
	l.mu.Lock()
	if len(l.mu.segs) < 2 || l.mu.segs[0].start+l.segSize > durable {
		l.mu.Unlock()
		return false
	}
	s := l.mu.segs[0]
	l.mu.segs = l.mu.segs[1:]
	l.mu.Unlock()
	for stopped := false; s.pins.Load() > 0 && !stopped; {
		select {
		case <-l.stop:
			stopped = true // Close requires reads to have released their views
		case <-time.After(pinPollInterval):
		}
	}
	if err := s.closeFiles(); err != nil {
		l.cfg.Logger.Warn("commitlog: close deleted segment", "path", s.path, "err", err)
	}
	recyclePath := filepath.Join(l.dir, recycleName)
	if _, err := l.cfg.FS.Stat(recyclePath); recycle && err != nil && l.cfg.FS.Rename(s.path, recyclePath) == nil {
		why += ", kept for reuse"
	} else if err := l.cfg.FS.Remove(s.path); err != nil {
		l.cfg.Logger.Error("commitlog: remove segment", "path", s.path, "err", err)
		return false
	}
	if err := l.cfg.FS.SyncDir(l.dir); err != nil {
		l.cfg.Logger.Warn("commitlog: sync dir after delete", "dir", l.dir, "err", err)
	}
	l.segmentsDeleted.Add(1)
	l.cfg.Logger.Info("commitlog: deleted segment", "path", s.path, "why", why)
	return true
}
