package consumequeue

import (
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/ringmq/ringmq/flush/vfs"
)

// Config configures a Set.
type Config struct {
	FS  vfs.FS
	Dir string // <store root>/consumequeue
	// EntriesPerFile is the entries per file (300000 when 0). It must not change
	// between runs over the same directory.
	EntriesPerFile int
}

type key struct {
	topic   string
	queueID int32
}

// Set is every consume queue of a store. Get, Topics and QueueIDs are safe for any
// goroutine; GetOrCreate, DeleteTopic, TruncateFrom, AdvanceMin and CommitAll belong to
// the single writer; SyncDirty may run beside the writer.
type Set struct {
	cfg Config
	mu  struct {
		sync.RWMutex
		queues map[key]*Queue
	}
}

// Open loads the queues found under cfg.Dir (as they are: recovery then calls
// TruncateFrom).
func Open(cfg Config) (*Set, error) {
	if cfg.EntriesPerFile == 0 {
		cfg.EntriesPerFile = DefaultEntriesPerFile
	}
	if cfg.EntriesPerFile < 1 {
		return nil, fmt.Errorf("consumequeue: EntriesPerFile %d: want > 0", cfg.EntriesPerFile)
	}
	s := &Set{cfg: cfg}
	s.mu.queues = make(map[key]*Queue)
	if err := cfg.FS.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("consumequeue: mkdir %s: %w", cfg.Dir, err)
	}
	topics, err := cfg.FS.List(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("consumequeue: list %s: %w", cfg.Dir, err)
	}
	for _, topic := range topics {
		ids, err := cfg.FS.List(filepath.Join(cfg.Dir, topic))
		if err != nil {
			return nil, fmt.Errorf("consumequeue: list %s: %w", filepath.Join(cfg.Dir, topic), err)
		}
		for _, idName := range ids {
			id, err := strconv.ParseInt(idName, 10, 32)
			if err != nil {
				return nil, fmt.Errorf("consumequeue: queue directory %s/%s: not a queue id", topic, idName)
			}
			q, err := s.load(topic, int32(id))
			if err != nil {
				s.Close()
				return nil, err
			}
			s.mu.queues[key{topic, int32(id)}] = q
		}
	}
	return s, nil
}

func (s *Set) load(topic string, queueID int32) (*Queue, error) {
	dir := filepath.Join(s.cfg.Dir, topic, strconv.Itoa(int(queueID)))
	perFile := int64(s.cfg.EntriesPerFile)
	q := newQueue(s.cfg.FS, dir, topic, queueID, perFile)
	names, err := s.cfg.FS.List(dir)
	if err != nil {
		return nil, fmt.Errorf("consumequeue: list %s: %w", dir, err)
	}
	for _, name := range names {
		path := filepath.Join(dir, name)
		startBytes, err := strconv.ParseInt(name, 10, 64)
		if err != nil || len(name) != 20 {
			return nil, &CorruptError{File: path, Reason: "file name is not a 20-digit offset"}
		}
		if startBytes%(perFile*EntrySizeBytes) != 0 {
			return nil, &CorruptError{File: path, Reason: fmt.Sprintf("start not a multiple of %d entries (EntriesPerFile changed?)", perFile)}
		}
		f := &cqFile{fs: s.cfg.FS, path: path, start: startBytes / EntrySizeBytes}
		f.refs.Store(1)
		q.mu.files = append(q.mu.files, f)
	}
	if n := len(q.mu.files); n > 0 {
		last := q.mu.files[n-1]
		fi, err := s.cfg.FS.Stat(last.path)
		if err != nil {
			q.close()
			return nil, fmt.Errorf("consumequeue: stat %s: %w", last.path, err)
		}
		size := fi.Size()
		if size > perFile*EntrySizeBytes {
			q.close()
			return nil, &CorruptError{File: last.path, OffsetBytes: size, Reason: "file longer than EntriesPerFile entries"}
		}
		q.minOffset.Store(q.mu.files[0].start)
		q.maxOffset.Store(last.start + size/EntrySizeBytes)
	}
	return q, nil
}

// Get returns the queue, or nil when it does not exist.
func (s *Set) Get(topic string, queueID int32) *Queue {
	s.mu.RLock()
	q := s.mu.queues[key{topic, queueID}]
	s.mu.RUnlock()
	return q
}

// GetOrCreate returns the queue, creating it (in memory; its directory comes with the
// first Commit) when missing. topic must be a valid topic name.
func (s *Set) GetOrCreate(topic string, queueID int32) *Queue {
	if q := s.Get(topic, queueID); q != nil {
		return q
	}
	if topic == "" || topic == "." || topic == ".." || strings.ContainsAny(topic, "/\\\x00") {
		panic(fmt.Sprintf("BUG: consumequeue.GetOrCreate: topic %q is not a valid directory name", topic))
	}
	topic = strings.Clone(topic)
	dir := filepath.Join(s.cfg.Dir, topic, strconv.Itoa(int(queueID)))
	q := newQueue(s.cfg.FS, dir, topic, queueID, int64(s.cfg.EntriesPerFile))
	s.mu.Lock()
	s.mu.queues[key{topic, queueID}] = q
	s.mu.Unlock()
	return q
}

// Queues returns every queue (a new slice).
func (s *Set) Queues() []*Queue {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]*Queue, 0, len(s.mu.queues))
	for _, q := range s.mu.queues {
		out = append(out, q)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].topic != out[j].topic {
			return out[i].topic < out[j].topic
		}
		return out[i].queueID < out[j].queueID
	})
	return out
}

// Topics returns the topics that have consume queues, sorted.
func (s *Set) Topics() []string {
	var out []string
	for _, q := range s.Queues() {
		if len(out) == 0 || out[len(out)-1] != q.topic {
			out = append(out, q.topic)
		}
	}
	return out
}

// QueueIDs returns the queue ids of topic, ascending.
func (s *Set) QueueIDs(topic string) []int32 {
	var out []int32
	for _, q := range s.Queues() {
		if q.topic == topic {
			out = append(out, q.queueID)
		}
	}
	return out
}

// DeleteTopic drops the topic's queues and removes their files and directories.
func (s *Set) DeleteTopic(topic string) error {
	s.mu.Lock()
	var qs []*Queue
	for k, q := range s.mu.queues {
		if k.topic == topic {
			qs = append(qs, q)
			delete(s.mu.queues, k)
		}
	}
	s.mu.Unlock()
	var err error
	for _, q := range qs {
		q.pending = q.pending[:0]
		q.mu.Lock()
		files := q.mu.files
		q.mu.files = nil
		q.mu.Unlock()
		err = errors.Join(err, q.removeFiles(files))
		q.minOffset.Store(0)
		q.maxOffset.Store(0)
		if _, serr := s.cfg.FS.Stat(q.dir); serr == nil {
			if rerr := s.cfg.FS.Remove(q.dir); rerr != nil {
				err = errors.Join(err, fmt.Errorf("consumequeue: remove %s: %w", q.dir, rerr))
			}
		}
	}
	topicDir := filepath.Join(s.cfg.Dir, topic)
	if _, serr := s.cfg.FS.Stat(topicDir); serr == nil {
		if rerr := s.cfg.FS.Remove(topicDir); rerr != nil {
			err = errors.Join(err, fmt.Errorf("consumequeue: remove %s: %w", topicDir, rerr))
		}
	}
	if serr := s.cfg.FS.SyncDir(s.cfg.Dir); serr != nil {
		err = errors.Join(err, fmt.Errorf("consumequeue: sync dir %s: %w", s.cfg.Dir, serr))
	}
	return err
}

// TruncateFrom drops, in every queue, the entries pointing at or past phys.
func (s *Set) TruncateFrom(phys int64) error {
	var err error
	for _, q := range s.Queues() {
		err = errors.Join(err, q.TruncateFrom(phys))
	}
	return err
}

// AdvanceMin moves every queue's min offset past records below physMin.
func (s *Set) AdvanceMin(physMin int64) error {
	var err error
	for _, q := range s.Queues() {
		err = errors.Join(err, q.AdvanceMin(physMin))
	}
	return err
}

// SyncDirty fdatasyncs every file written since its last sync.
func (s *Set) SyncDirty() error {
	var err error
	for _, q := range s.Queues() {
		err = errors.Join(err, q.syncDirty())
	}
	return err
}

// Close closes every queue's files.
func (s *Set) Close() {
	s.mu.Lock()
	qs := s.mu.queues
	s.mu.queues = map[key]*Queue{}
	s.mu.Unlock()
	for _, q := range qs {
		q.close()
	}
}
