package meta

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ringmq/ringmq/flush/vfs"
)

func openAt(t *testing.T, dir string) *Meta {
	t.Helper()
	m, err := Open(Config{Dir: dir, FS: vfs.OS{}, FlushInterval: time.Hour})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return m
}

func TestTopicsPersistAcrossReopen(t *testing.T) {
	dir := t.TempDir()
	m := openAt(t, dir)
	if err := m.PutTopic(TopicConfig{TopicName: "T1", ReadQueueNums: 4, WriteQueueNums: 4, Perm: PermRW}); err != nil {
		t.Fatal(err)
	}
	tc, created, err := m.CreateTopicIfAbsent(TopicConfig{TopicName: "T1", ReadQueueNums: 8, WriteQueueNums: 8, Perm: PermRW})
	if err != nil || created || tc.WriteQueueNums != 4 {
		t.Fatalf("CreateTopicIfAbsent on an existing topic: got %+v created=%v err=%v, want the 4-queue config", tc, created, err)
	}
	if _, created, _ := m.CreateTopicIfAbsent(TopicConfig{TopicName: "T2", ReadQueueNums: 1, WriteQueueNums: 1, Perm: PermRead}); !created {
		t.Fatal("T2 not created")
	}
	if !m.DeleteTopic("T2") || m.DeleteTopic("T2") {
		t.Fatal("DeleteTopic: want true then false")
	}
	_, v1 := m.Topics()
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}

	m = openAt(t, dir)
	defer m.Close()
	topics, v2 := m.Topics()
	if len(topics) != 1 || topics[0].TopicName != "T1" || topics[0].WriteQueueNums != 4 || topics[0].TopicFilterType != "SINGLE_TAG" {
		t.Fatalf("after reopen: got %+v, want T1 with 4 queues", topics)
	}
	if v1 != v2 {
		t.Fatalf("data version: got %+v, want %+v", v2, v1)
	}
	if tc, ok := m.TopicBytes([]byte("T1")); !ok || !tc.Writable() || tc.QueueNums() != 4 {
		t.Fatalf("TopicBytes: got %+v %v", tc, ok)
	}
}

func TestTopicValidation(t *testing.T) {
	m := openAt(t, t.TempDir())
	defer m.Close()
	for _, tc := range []TopicConfig{
		{TopicName: "", ReadQueueNums: 1, WriteQueueNums: 1},
		{TopicName: "a b", ReadQueueNums: 1, WriteQueueNums: 1},
		{TopicName: strings.Repeat("x", 128), ReadQueueNums: 1, WriteQueueNums: 1},
		{TopicName: "T", ReadQueueNums: 0, WriteQueueNums: 0},
		{TopicName: "T", ReadQueueNums: MaxQueueNums + 1, WriteQueueNums: 1},
		{TopicName: "T", ReadQueueNums: 1, WriteQueueNums: 1, Perm: 16},
	} {
		if err := m.PutTopic(tc); !errors.Is(err, ErrInvalidTopic) {
			t.Errorf("PutTopic(%q %d/%d perm %d): got %v, want ErrInvalidTopic", tc.TopicName, tc.ReadQueueNums, tc.WriteQueueNums, tc.Perm, err)
		}
	}
	if !ValidTopicName("%RETRY%g-1|x_y") || ValidTopicNameBytes([]byte("a.b")) {
		t.Error("ValidTopicName disagrees with ^[%|a-zA-Z0-9_-]+$")
	}
}

func TestTopicTableFull(t *testing.T) {
	m, err := Open(Config{Dir: t.TempDir(), FS: vfs.OS{}, MaxTopics: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	for i, name := range []string{"A", "B", "C"} {
		err := m.PutTopic(TopicConfig{TopicName: name, ReadQueueNums: 1, WriteQueueNums: 1, Perm: PermRW})
		if (i < 2) != (err == nil) || (i == 2 && !errors.Is(err, ErrTableFull)) {
			t.Fatalf("topic %d: got %v", i, err)
		}
	}
}

func TestOffsetsPersistAcrossReopen(t *testing.T) {
	dir := t.TempDir()
	m := openAt(t, dir)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(m.CommitOffset("T", "g@x", 0, 42))
	must(m.CommitOffset("T", "g@x", 3, 7))
	must(m.CommitOffset("U", "g2", 1, 9))
	must(m.Flush())
	raw, err := os.ReadFile(filepath.Join(dir, OffsetsFile))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(raw), `"T@g@x":{"0":42,"3":7}`) {
		t.Fatalf("consumerOffset.json: got %s", raw)
	}
	must(m.CommitOffset("T", "g@x", 0, 43)) // written by Close only
	m.DeleteTopicOffsets("U")
	must(m.Close())

	m = openAt(t, dir)
	defer m.Close()
	if off, ok := m.QueryOffset("T", "g@x", 0); !ok || off != 43 {
		t.Fatalf("T@g@x queue 0: got %d %v, want 43", off, ok)
	}
	if off, ok := m.QueryOffset("T", "g@x", 3); !ok || off != 7 {
		t.Fatalf("T@g@x queue 3: got %d %v, want 7", off, ok)
	}
	if _, ok := m.QueryOffset("U", "g2", 1); ok {
		t.Fatal("U@g2 survived DeleteTopicOffsets")
	}
	if got := m.GroupOffsets("g@x"); len(got) != 1 || got["T"][0] != 43 {
		t.Fatalf("GroupOffsets: got %v", got)
	}
}

func TestGroupsPersistAcrossReopen(t *testing.T) {
	dir := t.TempDir()
	m := openAt(t, dir)
	g, created, err := m.EnsureGroup("g1")
	if err != nil || !created || g.RetryMaxTimes != DefaultRetryMaxTimes || g.RetryQueueNums != 1 {
		t.Fatalf("EnsureGroup: got %+v %v %v", g, created, err)
	}
	g.RetryMaxTimes = 3
	if err := m.PutGroup(g); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	m = openAt(t, dir)
	defer m.Close()
	groups, _ := m.Groups()
	if len(groups) != 1 || groups[0].RetryMaxTimes != 3 {
		t.Fatalf("after reopen: got %+v", groups)
	}
	if _, created, _ := m.EnsureGroup("g1"); created {
		t.Fatal("EnsureGroup created an existing group")
	}
}

func TestOpenRejectsCorruptFile(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, TopicsFile), []byte(`{"topicConfigTable":`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(Config{Dir: dir, FS: vfs.OS{}}); err == nil || !strings.Contains(err.Error(), TopicsFile) {
		t.Fatalf("got %v, want an error naming %s", err, TopicsFile)
	}
}

func TestNoWriteWhenClean(t *testing.T) {
	dir := t.TempDir()
	m := openAt(t, dir)
	if err := m.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 0 {
		t.Fatalf("clean tables wrote %d files", len(entries))
	}
	if err := m.Close(); !errors.Is(err, ErrClosed) {
		t.Fatalf("second Close: got %v, want ErrClosed", err)
	}
}

func TestPeriodicFlush(t *testing.T) {
	dir := t.TempDir()
	m, err := Open(Config{Dir: dir, FS: vfs.OS{}, FlushInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if err := m.CommitOffset("T", "g", 0, 5); err != nil {
		t.Fatal(err)
	}
	// The periodic write has no event to wait on: poll the file, bounded to 5 s.
	deadline := time.Now().Add(5 * time.Second)
	for {
		raw, err := os.ReadFile(filepath.Join(dir, OffsetsFile))
		if err == nil && strings.Contains(string(raw), `"T@g":{"0":5}`) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("consumerOffset.json not written within 5 s (last read: %s, %v)", raw, err)
		}
		<-time.After(5 * time.Millisecond)
	}
}
