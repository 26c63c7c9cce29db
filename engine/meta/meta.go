// Package meta holds the broker's small, slowly changing tables and keeps them on disk:
//
//   - topic configs: name -> read/write queue counts, permission bits, sys flag, order;
//   - consumer offsets: "topic@group" -> queueId -> next offset to consume;
//   - subscription group configs: group -> retry/DLQ settings.
//
// Each table lives in one JSON file under Config.Dir (the broker uses <storeDir>/config),
// named and shaped as Apache RocketMQ names and shapes them:
//
//	topics.json             {"topicConfigTable":{"T":{"topicName":"T","readQueueNums":8,...}},
//	                         "dataVersion":{"timestamp":1700000000000,"counter":3}}
//	consumerOffset.json     {"offsetTable":{"T@g":{"0":42,"1":17}}}
//	subscriptionGroup.json  {"subscriptionGroupTable":{"g":{"groupName":"g",...}},
//	                         "dataVersion":{...}}
//
// Persistence: a table that changed is written every Config.FlushInterval (5 s) and on
// Flush and Close, as write temp file -> fdatasync -> rename over the old file -> fsync the
// directory, so a crash leaves either the old or the new file, never a torn one. Only one
// goroutine (the flusher started by Open) writes files; Flush asks it and waits.
// Offsets committed after the last write are lost on a crash: consumers then re-read from
// the last persisted offset (at-least-once), as in RocketMQ.
//
// Concurrency: every method is safe for concurrent use. Topic lookups are lock-free (a
// copy-on-write map behind an atomic pointer), because the send path looks a topic up on
// every request; the other tables use a mutex that is never held across a system call.
//
// Limits: MaxTopics, MaxGroups and MaxOffsetKeys bound the tables; past them the insert
// fails with ErrTableFull (the broker answers SYSTEM_BUSY or an error).
//
// Errors: Open fails on a file that exists but does not parse (it is never silently
// discarded); write errors are returned by Flush/Close and logged by the periodic flusher,
// which retries at the next interval (a config file is rewritten whole, so a retry is safe).
package meta

import (
	"errors"
	"fmt"
	"log/slog"
	"path"
	"sync"
	"time"

	"github.com/ringmq/ringmq/flush/vfs"
)

// Default limits and intervals.
const (
	DefaultFlushInterval = 5 * time.Second
	DefaultMaxTopics     = 65536
	DefaultMaxGroups     = 65536
	DefaultMaxOffsetKeys = 1 << 20 // topic@group pairs
	// MaxQueueNums is the largest read/write queue count a topic may have.
	MaxQueueNums = 1024
)

// File names under Config.Dir.
const (
	TopicsFile  = "topics.json"
	OffsetsFile = "consumerOffset.json"
	GroupsFile  = "subscriptionGroup.json"
)

// Errors.
var (
	ErrTableFull    = errors.New("meta: table full")
	ErrInvalidTopic = errors.New("meta: invalid topic config")
	ErrClosed       = errors.New("meta: closed")
)

// Config configures Open.
type Config struct {
	Dir           string        // directory of the JSON files; created if missing
	FS            vfs.FS        // required
	FlushInterval time.Duration // 0 = DefaultFlushInterval
	MaxTopics     int           // 0 = DefaultMaxTopics
	MaxGroups     int           // 0 = DefaultMaxGroups
	MaxOffsetKeys int           // 0 = DefaultMaxOffsetKeys
	Logger        *slog.Logger  // nil = slog.Default()
}

// Meta is the set of tables. Create it with Open, stop it with Close.
type Meta struct {
	cfg     Config
	log     *slog.Logger
	topics  topicTable
	offsets offsetTable
	groups  groupTable

	flushReq chan chan error // to the flusher goroutine
	stop     chan struct{}
	done     chan struct{}
	closeMu  sync.Mutex
	closed   bool
}

// Open loads the tables from cfg.Dir (missing files mean empty tables) and starts the
// periodic flusher.
func Open(cfg Config) (*Meta, error) {
	if cfg.FS == nil {
		panic("BUG: meta.Open: Config.FS is nil")
	}
	if cfg.FlushInterval <= 0 {
		cfg.FlushInterval = DefaultFlushInterval
	}
	if cfg.MaxTopics <= 0 {
		cfg.MaxTopics = DefaultMaxTopics
	}
	if cfg.MaxGroups <= 0 {
		cfg.MaxGroups = DefaultMaxGroups
	}
	if cfg.MaxOffsetKeys <= 0 {
		cfg.MaxOffsetKeys = DefaultMaxOffsetKeys
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if err := cfg.FS.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("meta: open %s: %w", cfg.Dir, err)
	}
	m := &Meta{
		cfg:      cfg,
		log:      cfg.Logger,
		flushReq: make(chan chan error),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	m.topics.init(cfg.MaxTopics)
	m.offsets.init(cfg.MaxOffsetKeys)
	m.groups.init(cfg.MaxGroups)
	if err := m.load(); err != nil {
		return nil, err
	}
	go m.flusher()
	return m, nil
}

func (m *Meta) load() error {
	if err := loadJSON(m.cfg.FS, m.path(TopicsFile), m.topics.load); err != nil {
		return err
	}
	if err := loadJSON(m.cfg.FS, m.path(OffsetsFile), m.offsets.load); err != nil {
		return err
	}
	return loadJSON(m.cfg.FS, m.path(GroupsFile), m.groups.load)
}

func (m *Meta) path(name string) string { return path.Join(m.cfg.Dir, name) }

// Flush writes every table that changed since its last write and waits for it.
func (m *Meta) Flush() error {
	reply := make(chan error, 1)
	select {
	case m.flushReq <- reply:
		return <-reply
	case <-m.done:
		return ErrClosed
	}
}

// Close stops the flusher after a final write of every changed table.
func (m *Meta) Close() error {
	m.closeMu.Lock()
	if m.closed {
		m.closeMu.Unlock()
		return ErrClosed
	}
	m.closed = true
	m.closeMu.Unlock()
	close(m.stop)
	<-m.done
	return m.persistAll()
}

func (m *Meta) flusher() {
	defer close(m.done)
	t := time.NewTicker(m.cfg.FlushInterval)
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case reply := <-m.flushReq:
			reply <- m.persistAll()
		case <-t.C:
			if err := m.persistAll(); err != nil {
				m.log.Error("meta: periodic flush failed; retrying at the next interval", "err", err)
			}
		}
	}
}

// persistAll writes each dirty table. It runs only on the flusher goroutine, or on the
// closing goroutine after the flusher has exited.
func (m *Meta) persistAll() error {
	var errs []error
	for _, t := range []struct {
		name     string
		snapshot func() (data []byte, version uint64, dirty bool, err error)
		mark     func(uint64)
	}{
		{TopicsFile, m.topics.snapshot, m.topics.markPersisted},
		{OffsetsFile, m.offsets.snapshot, m.offsets.markPersisted},
		{GroupsFile, m.groups.snapshot, m.groups.markPersisted},
	} {
		data, version, dirty, err := t.snapshot()
		if err != nil {
			errs = append(errs, fmt.Errorf("meta: encode %s: %w", t.name, err))
			continue
		}
		if !dirty {
			continue
		}
		if err := writeFileAtomic(m.cfg.FS, m.cfg.Dir, t.name, data); err != nil {
			errs = append(errs, err)
			continue
		}
		t.mark(version)
	}
	return errors.Join(errs...)
}

// DataVersion is RocketMQ's change stamp of a table.
type DataVersion struct {
	TimestampMs int64 `json:"timestamp"`
	Counter     int64 `json:"counter"`
}

func nextVersion(v DataVersion) DataVersion {
	return DataVersion{TimestampMs: time.Now().UnixMilli(), Counter: v.Counter + 1}
}
