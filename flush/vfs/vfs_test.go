package vfs

import (
	"bytes"
	"errors"
	"io"
	"path/filepath"
	"syscall"
	"testing"
)

func mustWrite(t *testing.T, f File, b []byte, off int64) {
	t.Helper()
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

func content(t *testing.T, fs FS, name string) []byte {
	t.Helper()
	f, err := fs.Open(name)
	if err != nil {
		t.Fatalf("open %s: %v", name, err)
	}
	defer f.Close()
	n, _ := f.Size()
	b := make([]byte, n)
	if _, err := f.ReadAt(b, 0); err != nil && err != io.EOF {
		t.Fatal(err)
	}
	return b
}

func TestMemCrashKeepsOnlyDurable(t *testing.T) {
	m := NewMem()
	m.MkdirAll("/d", 0o755)
	f, _ := m.Create("/d/a")
	mustWrite(t, f, []byte("hello"), 0)
	if _, err := m.Crash().Stat("/d/a"); err == nil {
		t.Fatal("file survived a crash before SyncDir")
	}
	m.SyncDir("/d")
	if got := content(t, m.Crash(), "/d/a"); len(got) != 0 {
		t.Fatalf("un-synced content survived: %q", got)
	}
	f.Sync()
	mustWrite(t, f, []byte("HE"), 0)
	mustWrite(t, f, []byte("!!"), 5)
	if got := content(t, m.Crash(), "/d/a"); string(got) != "hello" {
		t.Fatalf("after crash: %q, want the synced %q", got, "hello")
	}
	seen := map[string]bool{}
	for seed := range uint64(64) {
		seen[string(content(t, m.CrashKeeping(seed), "/d/a"))] = true
	}
	for _, want := range []string{"hello", "HEllo", "HEllo!!"} {
		if !seen[want] {
			t.Fatalf("CrashKeeping never produced %q (got %v)", want, seen)
		}
	}
	if len(seen) != 3 {
		t.Fatalf("CrashKeeping produced a state that is not a prefix of the writes: %v", seen)
	}
	if got := content(t, m, "/d/a"); string(got) != "HEllo!!" {
		t.Fatalf("live content %q", got)
	}
}

func TestMemRenameRemoveNeedSyncDir(t *testing.T) {
	m := NewMem()
	m.MkdirAll("/d", 0o755)
	f, _ := m.Create("/d/a.tmp")
	mustWrite(t, f, []byte("x"), 0)
	f.Sync()
	m.SyncDir("/d")
	m.Rename("/d/a.tmp", "/d/a")
	c := m.Crash()
	if _, err := c.Stat("/d/a"); err == nil {
		t.Fatal("rename durable without SyncDir")
	}
	if _, err := c.Stat("/d/a.tmp"); err != nil {
		t.Fatal("old name lost without SyncDir")
	}
	m.SyncDir("/d")
	m.Remove("/d/a")
	if got := content(t, m.Crash(), "/d/a"); string(got) != "x" {
		t.Fatalf("removed file gone without SyncDir: %q", got)
	}
	m.SyncDir("/d")
	if _, err := m.Crash().Stat("/d/a"); err == nil {
		t.Fatal("removed file back after SyncDir")
	}
	names, _ := m.List("/d")
	if len(names) != 0 {
		t.Fatalf("List = %v", names)
	}
}

func TestMemCapacity(t *testing.T) {
	m := NewMem()
	m.SetCapacity(100)
	m.MkdirAll("/d", 0o755)
	f, _ := m.Create("/d/a")
	mustWrite(t, f, make([]byte, 80), 0)
	if _, err := f.WriteAt(make([]byte, 30), 80); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("growing past capacity: got %v, want ENOSPC", err)
	}
	mustWrite(t, f, make([]byte, 80), 0) // overwrite: no new space
	if total, free, _ := m.DiskUsage("/d"); total != 100 || free != 20 {
		t.Fatalf("DiskUsage = %d, %d; want 100, 20", total, free)
	}
	m.Remove("/d/a")
	if _, free, _ := m.DiskUsage("/d"); free != 100 {
		t.Fatalf("free after remove = %d, want 100", free)
	}
}

func TestFaultyRules(t *testing.T) {
	m := NewMem()
	in := NewInjector()
	fs := NewFaulty(m, in)
	fs.MkdirAll("/d", 0o755)
	f, _ := fs.Create("/d/a")
	in.Add(Rule{Op: OpSync, Nth: 2, Err: syscall.EIO})
	in.Add(Rule{Op: OpWrite, PathContains: "/d/a", Nth: 2, ShortBytes: 3})
	mustWrite(t, f, []byte("abcdef"), 0)
	if err := f.Sync(); err != nil {
		t.Fatalf("first sync: %v", err)
	}
	if err := f.Sync(); !errors.Is(err, syscall.EIO) {
		t.Fatalf("second sync: got %v, want EIO", err)
	}
	if err := f.Sync(); err != nil {
		t.Fatalf("third sync: %v (Nth rules fire once)", err)
	}
	n, err := f.WriteAt([]byte("XYZW"), 0)
	if n != 3 || !errors.Is(err, io.ErrShortWrite) {
		t.Fatalf("short write: %d, %v", n, err)
	}
	if got := content(t, m, "/d/a"); string(got) != "XYZdef" {
		t.Fatalf("after short write: %q", got)
	}
	in.SetNoSpace(true)
	if _, err := f.WriteAt([]byte("q"), 0); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("write with no space: %v", err)
	}
	if _, free, _ := fs.DiskUsage("/d"); free != 0 {
		t.Fatalf("free with no space = %d", free)
	}
	in.SetNoSpace(false)
	mustWrite(t, f, []byte("q"), 0)
	if _, ok := f.Fd(); ok {
		t.Fatal("faulty file exposes a descriptor")
	}
	if in.Fired() != 3 {
		t.Fatalf("Fired = %d, want 3", in.Fired())
	}
	m.SetCapacity(1000)
	in.SetNoSpaceBelow(500)
	mustWrite(t, f, make([]byte, 600), 0) // 994 free before it, 400 after
	if _, err := f.WriteAt([]byte("q"), 0); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("write with 400 free, minimum 500: got %v, want ENOSPC", err)
	}
	m.SetCapacity(2000) // space returns
	mustWrite(t, f, []byte("q"), 0)
}

func TestOS(t *testing.T) {
	var fs FS = OS{}
	dir := t.TempDir()
	name := filepath.Join(dir, "a")
	f, err := fs.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	mustWrite(t, f, bytes.Repeat([]byte("z"), 8192), 0)
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if _, ok := f.Fd(); !ok {
		t.Fatal("OS file has no descriptor")
	}
	view, unmap, err := f.(Mappable).MapReadOnly(8192)
	if err != nil {
		t.Fatal(err)
	}
	mustWrite(t, f, []byte("A"), 4096)
	if view[4096] != 'A' {
		t.Fatal("mapping does not show a completed write")
	}
	unmap()
	f.Close()
	if err := fs.SyncDir(dir); err != nil {
		t.Fatal(err)
	}
	if err := fs.Rename(name, name+"2"); err != nil {
		t.Fatal(err)
	}
	names, _ := fs.List(dir)
	if len(names) != 1 || names[0] != "a2" {
		t.Fatalf("List = %v", names)
	}
	total, free, err := fs.DiskUsage(dir)
	if err != nil || total == 0 || free > total {
		t.Fatalf("DiskUsage = %d, %d, %v", total, free, err)
	}
}
