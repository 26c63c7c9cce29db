package meta

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
)

type offsetKey struct{ topic, group string }

// offsetTable maps (topic, group) -> queueId -> next offset to consume.
type offsetTable struct {
	max int
	mu  struct {
		sync.Mutex
		m         map[offsetKey]map[int32]int64
		changes   uint64
		persisted uint64
	}
}

func (t *offsetTable) init(maxKeys int) {
	t.max = maxKeys
	t.mu.m = make(map[offsetKey]map[int32]int64)
}

// CommitOffset records that group will next consume offset in (topic, queueID).
func (m *Meta) CommitOffset(topic, group string, queueID int32, offset int64) error {
	t := &m.offsets
	k := offsetKey{topic, group}
	t.mu.Lock()
	defer t.mu.Unlock()
	q, ok := t.mu.m[k]
	if !ok {
		if len(t.mu.m) >= t.max {
			return fmt.Errorf("%w: %d topic@group offset entries, the maximum", ErrTableFull, t.max)
		}
		q = make(map[int32]int64, 4)
		t.mu.m[k] = q
	}
	if old, ok := q[queueID]; ok && old == offset {
		return nil
	}
	if len(q) >= MaxQueueNums {
		if _, ok := q[queueID]; !ok {
			return fmt.Errorf("%w: %s@%s has offsets for %d queues", ErrTableFull, topic, group, MaxQueueNums)
		}
	}
	q[queueID] = offset
	t.mu.changes++
	return nil
}

// QueryOffset returns group's committed offset of (topic, queueID).
func (m *Meta) QueryOffset(topic, group string, queueID int32) (int64, bool) {
	t := &m.offsets
	t.mu.Lock()
	defer t.mu.Unlock()
	off, ok := t.mu.m[offsetKey{topic, group}][queueID]
	return off, ok
}

// DeleteTopicOffsets drops every group's offsets of topic.
func (m *Meta) DeleteTopicOffsets(topic string) {
	t := &m.offsets
	t.mu.Lock()
	defer t.mu.Unlock()
	for k := range t.mu.m {
		if k.topic == topic {
			delete(t.mu.m, k)
			t.mu.changes++
		}
	}
}

// GroupOffsets returns a copy of group's committed offsets: topic -> queueId -> offset.
func (m *Meta) GroupOffsets(group string) map[string]map[int32]int64 {
	t := &m.offsets
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make(map[string]map[int32]int64)
	for k, q := range t.mu.m {
		if k.group != group {
			continue
		}
		c := make(map[int32]int64, len(q))
		for id, off := range q {
			c[id] = off
		}
		out[k.topic] = c
	}
	return out
}

type offsetsFile struct {
	OffsetTable map[string]map[int32]int64 `json:"offsetTable"`
}

func (t *offsetTable) snapshot() ([]byte, uint64, bool, error) {
	t.mu.Lock()
	changes, dirty := t.mu.changes, t.mu.changes != t.mu.persisted
	if !dirty {
		t.mu.Unlock()
		return nil, changes, false, nil
	}
	f := offsetsFile{OffsetTable: make(map[string]map[int32]int64, len(t.mu.m))}
	for k, q := range t.mu.m {
		c := make(map[int32]int64, len(q))
		for id, off := range q {
			c[id] = off
		}
		f.OffsetTable[k.topic+"@"+k.group] = c
	}
	t.mu.Unlock()
	data, err := json.Marshal(&f)
	return data, changes, true, err
}

func (t *offsetTable) markPersisted(changes uint64) {
	t.mu.Lock()
	t.mu.persisted = changes
	t.mu.Unlock()
}

func (t *offsetTable) load(data []byte) error {
	var f offsetsFile
	if err := json.Unmarshal(data, &f); err != nil {
		return err
	}
	m := make(map[offsetKey]map[int32]int64, len(f.OffsetTable))
	for key, q := range f.OffsetTable {
		// Topics cannot contain '@'; group names can, so split at the first one.
		i := strings.IndexByte(key, '@')
		if i <= 0 || i == len(key)-1 {
			return fmt.Errorf("offset key %q is not topic@group", key)
		}
		if q == nil {
			q = map[int32]int64{}
		}
		m[offsetKey{key[:i], key[i+1:]}] = q
	}
	t.mu.Lock()
	t.mu.m = m
	t.mu.Unlock()
	return nil
}
