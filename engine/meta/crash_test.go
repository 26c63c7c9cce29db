package meta

import (
	"syscall"
	"testing"
	"time"

	"github.com/ringmq/ringmq/flush/vfs"
)

// A crash keeps what Flush wrote and loses only what came after; a crash in the middle of
// a write (un-synced bytes kept at random) still leaves a file that parses, old or new.
func TestCrashKeepsFlushedState(t *testing.T) {
	mem := vfs.NewMem()
	m, err := Open(Config{Dir: "/store/config", FS: mem, FlushInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if err := m.PutTopic(TopicConfig{TopicName: "T", ReadQueueNums: 2, WriteQueueNums: 2, Perm: PermRW}); err != nil {
		t.Fatal(err)
	}
	if err := m.CommitOffset("T", "g", 1, 10); err != nil {
		t.Fatal(err)
	}
	if err := m.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := m.CommitOffset("T", "g", 1, 20); err != nil { // never flushed
		t.Fatal(err)
	}

	after, err := Open(Config{Dir: "/store/config", FS: mem.Crash(), FlushInterval: time.Hour})
	if err != nil {
		t.Fatalf("reopen after crash: %v", err)
	}
	defer after.Close()
	if off, ok := after.QueryOffset("T", "g", 1); !ok || off != 10 {
		t.Fatalf("offset after crash: got %d %v, want the flushed 10", off, ok)
	}
	if _, ok := after.Topic("T"); !ok {
		t.Fatal("flushed topic lost in the crash")
	}

}

// A write whose fdatasync fails leaves the old file in place; a crash then keeps any prefix of
// the torn temp file, and the table still opens with the last good state. The next flush
// without a fault writes the new state.
func TestFailedWriteKeepsOldFile(t *testing.T) {
	mem := vfs.NewMem()
	in := vfs.NewInjector()
	m, err := Open(Config{Dir: "/store/config", FS: vfs.NewFaulty(mem, in), FlushInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if err := m.CommitOffset("T", "g", 1, 10); err != nil {
		t.Fatal(err)
	}
	if err := m.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := m.CommitOffset("T", "g", 1, 20); err != nil {
		t.Fatal(err)
	}
	in.Add(vfs.Rule{Op: vfs.OpSync, PathContains: ".tmp", Nth: 1, Err: syscall.EIO})
	if err := m.Flush(); err == nil {
		t.Fatal("flush with a failing fdatasync reported success")
	}
	for seed := range uint64(20) {
		m2, err := Open(Config{Dir: "/store/config", FS: mem.CrashKeeping(seed), FlushInterval: time.Hour})
		if err != nil {
			t.Fatalf("seed %d: reopen: %v", seed, err)
		}
		if off, _ := m2.QueryOffset("T", "g", 1); off != 10 {
			t.Fatalf("seed %d: offset %d, want the last good 10", seed, off)
		}
		m2.Close()
	}
	if err := m.Flush(); err != nil {
		t.Fatalf("flush after the fault: %v", err)
	}
	m3, err := Open(Config{Dir: "/store/config", FS: mem.Crash(), FlushInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer m3.Close()
	if off, _ := m3.QueryOffset("T", "g", 1); off != 20 {
		t.Fatalf("after the retried flush: offset %d, want 20", off)
	}
}
