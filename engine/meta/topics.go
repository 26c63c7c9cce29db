package meta

import (
	"encoding/json"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
)

// Permission bits of a topic (RocketMQ PermName).
const (
	PermPriority = 8
	PermRead     = 4
	PermWrite    = 2
	PermInherit  = 1
	PermRW       = PermRead | PermWrite
)

// TopicConfig is one topic's configuration, with RocketMQ's JSON names.
type TopicConfig struct {
	TopicName       string `json:"topicName"`
	ReadQueueNums   int    `json:"readQueueNums"`
	WriteQueueNums  int    `json:"writeQueueNums"`
	Perm            int    `json:"perm"`
	TopicFilterType string `json:"topicFilterType"`
	TopicSysFlag    int    `json:"topicSysFlag"`
	Order           bool   `json:"order"`
}

// Readable and Writable report the permission bits.
func (t *TopicConfig) Readable() bool { return t.Perm&PermRead != 0 }

// Writable reports whether producers may send to the topic.
func (t *TopicConfig) Writable() bool { return t.Perm&PermWrite != 0 }

// QueueNums is the number of queues a queue id is checked against: max(read, write),
// as the Java broker checks it.
func (t *TopicConfig) QueueNums() int { return max(t.ReadQueueNums, t.WriteQueueNums) }

// ValidTopicName reports whether name is a legal RocketMQ topic: 1..127 characters of
// [%|a-zA-Z0-9_-].
func ValidTopicName(name string) bool { return validTopicName(name) }

// ValidTopicNameBytes is ValidTopicName for a byte slice (no allocation).
func ValidTopicNameBytes(name []byte) bool { return validTopicName(name) }

func validTopicName[S string | []byte](name S) bool {
	if len(name) == 0 || len(name) > 127 {
		return false
	}
	for i := range len(name) {
		if !topicChar(name[i]) {
			return false
		}
	}
	return true
}

func topicChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '%' || c == '|' || c == '_' || c == '-'
}

func (t *TopicConfig) validate() error {
	switch {
	case !ValidTopicName(t.TopicName):
		return fmt.Errorf("%w: topic name %q must be 1..127 characters of [%%|a-zA-Z0-9_-]", ErrInvalidTopic, t.TopicName)
	case t.ReadQueueNums < 0 || t.ReadQueueNums > MaxQueueNums || t.WriteQueueNums < 0 || t.WriteQueueNums > MaxQueueNums:
		return fmt.Errorf("%w: topic %s: queue counts %d/%d outside 0..%d", ErrInvalidTopic, t.TopicName, t.ReadQueueNums, t.WriteQueueNums, MaxQueueNums)
	case t.ReadQueueNums == 0 && t.WriteQueueNums == 0:
		return fmt.Errorf("%w: topic %s has no queues", ErrInvalidTopic, t.TopicName)
	case t.Perm < 0 || t.Perm > 15:
		return fmt.Errorf("%w: topic %s: perm %d outside 0..15", ErrInvalidTopic, t.TopicName, t.Perm)
	}
	return nil
}

// topicTable is copy-on-write: readers load the map without a lock; writers hold mu,
// copy, modify and publish.
type topicTable struct {
	max int
	m   atomic.Pointer[map[string]*TopicConfig]
	mu  struct {
		sync.Mutex
		version   DataVersion
		changes   uint64
		persisted uint64
	}
}

func (t *topicTable) init(maxTopics int) {
	t.max = maxTopics
	empty := map[string]*TopicConfig{}
	t.m.Store(&empty)
}

// Topic returns the config of the named topic. The pointer is shared and read-only.
func (m *Meta) Topic(name string) (*TopicConfig, bool) {
	tc, ok := (*m.topics.m.Load())[name]
	return tc, ok
}

// TopicBytes is Topic for a name in a byte slice; it does not allocate. The returned
// config's TopicName is the table's own string, usable without copying name.
func (m *Meta) TopicBytes(name []byte) (*TopicConfig, bool) {
	tc, ok := (*m.topics.m.Load())[string(name)]
	return tc, ok
}

// PutTopic creates or replaces a topic config.
func (m *Meta) PutTopic(tc TopicConfig) error {
	_, _, err := m.topics.put(tc, true)
	return err
}

// CreateTopicIfAbsent creates the topic unless it exists, and returns the config in the
// table and whether this call created it.
func (m *Meta) CreateTopicIfAbsent(tc TopicConfig) (*TopicConfig, bool, error) {
	return m.topics.put(tc, false)
}

func (t *topicTable) put(tc TopicConfig, replace bool) (*TopicConfig, bool, error) {
	if err := tc.validate(); err != nil {
		return nil, false, err
	}
	if tc.TopicFilterType == "" {
		tc.TopicFilterType = "SINGLE_TAG"
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	old := *t.m.Load()
	if cur, ok := old[tc.TopicName]; ok {
		if !replace || *cur == tc {
			return cur, false, nil
		}
	} else if len(old) >= t.max {
		return nil, false, fmt.Errorf("%w: %d topics, the maximum", ErrTableFull, t.max)
	}
	next := make(map[string]*TopicConfig, len(old)+1)
	for k, v := range old {
		next[k] = v
	}
	stored := tc
	next[tc.TopicName] = &stored
	t.publishLocked(next)
	return &stored, true, nil
}

// DeleteTopic removes the topic and reports whether it existed.
func (m *Meta) DeleteTopic(name string) bool {
	t := &m.topics
	t.mu.Lock()
	defer t.mu.Unlock()
	old := *t.m.Load()
	if _, ok := old[name]; !ok {
		return false
	}
	next := make(map[string]*TopicConfig, len(old))
	for k, v := range old {
		if k != name {
			next[k] = v
		}
	}
	t.publishLocked(next)
	return true
}

func (t *topicTable) publishLocked(next map[string]*TopicConfig) {
	t.m.Store(&next)
	t.mu.version = nextVersion(t.mu.version)
	t.mu.changes++
}

// Topics returns a copy of every topic config, sorted by name, and the table's version.
func (m *Meta) Topics() ([]TopicConfig, DataVersion) {
	t := &m.topics
	t.mu.Lock()
	cur, v := *t.m.Load(), t.mu.version
	t.mu.Unlock()
	out := make([]TopicConfig, 0, len(cur))
	for _, tc := range cur {
		out = append(out, *tc)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].TopicName < out[j].TopicName })
	return out, v
}

type topicsFile struct {
	TopicConfigTable map[string]TopicConfig `json:"topicConfigTable"`
	DataVersion      DataVersion            `json:"dataVersion"`
}

func (t *topicTable) snapshot() ([]byte, uint64, bool, error) {
	t.mu.Lock()
	cur, v, changes, dirty := *t.m.Load(), t.mu.version, t.mu.changes, t.mu.changes != t.mu.persisted
	t.mu.Unlock()
	if !dirty {
		return nil, changes, false, nil
	}
	f := topicsFile{TopicConfigTable: make(map[string]TopicConfig, len(cur)), DataVersion: v}
	for k, tc := range cur {
		f.TopicConfigTable[k] = *tc
	}
	data, err := json.Marshal(&f)
	return data, changes, true, err
}

func (t *topicTable) markPersisted(changes uint64) {
	t.mu.Lock()
	t.mu.persisted = changes
	t.mu.Unlock()
}

func (t *topicTable) load(data []byte) error {
	var f topicsFile
	if err := json.Unmarshal(data, &f); err != nil {
		return err
	}
	next := make(map[string]*TopicConfig, len(f.TopicConfigTable))
	for name, tc := range f.TopicConfigTable {
		tc := tc
		if tc.TopicName == "" {
			tc.TopicName = name
		}
		if err := tc.validate(); err != nil {
			return err
		}
		next[name] = &tc
	}
	t.mu.Lock()
	t.m.Store(&next)
	t.mu.version = f.DataVersion
	t.mu.Unlock()
	return nil
}
