package meta

import (
	"encoding/json"
	"fmt"
	"sort"
	"sync"
)

// Subscription group defaults (RocketMQ SubscriptionGroupConfig).
const (
	DefaultRetryQueueNums = 1
	DefaultRetryMaxTimes  = 16
)

// GroupConfig is a subscription (consumer) group's configuration, with RocketMQ's JSON
// names.
type GroupConfig struct {
	GroupName                      string `json:"groupName"`
	ConsumeEnable                  bool   `json:"consumeEnable"`
	ConsumeFromMinEnable           bool   `json:"consumeFromMinEnable"`
	ConsumeBroadcastEnable         bool   `json:"consumeBroadcastEnable"`
	RetryQueueNums                 int    `json:"retryQueueNums"`
	RetryMaxTimes                  int    `json:"retryMaxTimes"`
	BrokerID                       int64  `json:"brokerId"`
	WhichBrokerWhenConsumeSlowly   int64  `json:"whichBrokerWhenConsumeSlowly"`
	NotifyConsumerIdsChangedEnable bool   `json:"notifyConsumerIdsChangedEnable"`
}

// DefaultGroupConfig is the config an unknown group is created with.
func DefaultGroupConfig(name string) GroupConfig {
	return GroupConfig{
		GroupName:                      name,
		ConsumeEnable:                  true,
		ConsumeFromMinEnable:           true,
		ConsumeBroadcastEnable:         true,
		RetryQueueNums:                 DefaultRetryQueueNums,
		RetryMaxTimes:                  DefaultRetryMaxTimes,
		WhichBrokerWhenConsumeSlowly:   1,
		NotifyConsumerIdsChangedEnable: true,
	}
}

type groupTable struct {
	max int
	mu  struct {
		sync.Mutex
		m         map[string]GroupConfig
		version   DataVersion
		changes   uint64
		persisted uint64
	}
}

func (t *groupTable) init(maxGroups int) {
	t.max = maxGroups
	t.mu.m = make(map[string]GroupConfig)
}

// Group returns the named group's config.
func (m *Meta) Group(name string) (GroupConfig, bool) {
	t := &m.groups
	t.mu.Lock()
	defer t.mu.Unlock()
	g, ok := t.mu.m[name]
	return g, ok
}

// EnsureGroup returns the group's config, creating it with DefaultGroupConfig if absent
// (RocketMQ's autoCreateSubscriptionGroup).
func (m *Meta) EnsureGroup(name string) (GroupConfig, bool, error) {
	t := &m.groups
	t.mu.Lock()
	defer t.mu.Unlock()
	if g, ok := t.mu.m[name]; ok {
		return g, false, nil
	}
	if name == "" {
		return GroupConfig{}, false, fmt.Errorf("meta: empty group name")
	}
	if len(t.mu.m) >= t.max {
		return GroupConfig{}, false, fmt.Errorf("%w: %d groups, the maximum", ErrTableFull, t.max)
	}
	g := DefaultGroupConfig(name)
	t.mu.m[name] = g
	t.changedLocked()
	return g, true, nil
}

// PutGroup creates or replaces a group config.
func (m *Meta) PutGroup(g GroupConfig) error {
	if g.GroupName == "" {
		return fmt.Errorf("meta: empty group name")
	}
	t := &m.groups
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.mu.m[g.GroupName]; !ok && len(t.mu.m) >= t.max {
		return fmt.Errorf("%w: %d groups, the maximum", ErrTableFull, t.max)
	}
	t.mu.m[g.GroupName] = g
	t.changedLocked()
	return nil
}

// DeleteGroup removes a group config and reports whether it existed.
func (m *Meta) DeleteGroup(name string) bool {
	t := &m.groups
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.mu.m[name]; !ok {
		return false
	}
	delete(t.mu.m, name)
	t.changedLocked()
	return true
}

func (t *groupTable) changedLocked() {
	t.mu.version = nextVersion(t.mu.version)
	t.mu.changes++
}

// Groups returns every group config sorted by name, and the table's version.
func (m *Meta) Groups() ([]GroupConfig, DataVersion) {
	t := &m.groups
	t.mu.Lock()
	out := make([]GroupConfig, 0, len(t.mu.m))
	for _, g := range t.mu.m {
		out = append(out, g)
	}
	v := t.mu.version
	t.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].GroupName < out[j].GroupName })
	return out, v
}

type groupsFile struct {
	SubscriptionGroupTable map[string]GroupConfig `json:"subscriptionGroupTable"`
	DataVersion            DataVersion            `json:"dataVersion"`
}

func (t *groupTable) snapshot() ([]byte, uint64, bool, error) {
	t.mu.Lock()
	changes, dirty := t.mu.changes, t.mu.changes != t.mu.persisted
	if !dirty {
		t.mu.Unlock()
		return nil, changes, false, nil
	}
	f := groupsFile{SubscriptionGroupTable: make(map[string]GroupConfig, len(t.mu.m)), DataVersion: t.mu.version}
	for k, g := range t.mu.m {
		f.SubscriptionGroupTable[k] = g
	}
	t.mu.Unlock()
	data, err := json.Marshal(&f)
	return data, changes, true, err
}

func (t *groupTable) markPersisted(changes uint64) {
	t.mu.Lock()
	t.mu.persisted = changes
	t.mu.Unlock()
}

func (t *groupTable) load(data []byte) error {
	var f groupsFile
	if err := json.Unmarshal(data, &f); err != nil {
		return err
	}
	m := make(map[string]GroupConfig, len(f.SubscriptionGroupTable))
	for name, g := range f.SubscriptionGroupTable {
		if g.GroupName == "" {
			g.GroupName = name
		}
		m[name] = g
	}
	t.mu.Lock()
	t.mu.m = m
	t.mu.version = f.DataVersion
	t.mu.Unlock()
	return nil
}
