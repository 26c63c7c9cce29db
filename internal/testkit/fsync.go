// Package testkit holds small helpers that tests and benchmarks of several packages share.
// It imports only the standard library and golang.org/x/sys, so any package may use it.
package testkit

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// FsyncSamples times n 4 KiB pwrite+fdatasync into an already-written 1 MiB file under dir:
// the cheapest durable write there is (DESIGN.md, "The write path"), the floor benchmarks
// compare a durable send with in the same run. The file is removed at the end of the test.
func FsyncSamples(tb testing.TB, dir string, n int) []time.Duration {
	tb.Helper()
	f, err := os.Create(filepath.Join(dir, "fsync-floor"))
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	page := bytes.Repeat([]byte{'y'}, 4096)
	for off := int64(0); off < 1<<20; off += 4096 {
		if _, err := f.WriteAt(page, off); err != nil {
			tb.Fatal(err)
		}
	}
	if err := f.Sync(); err != nil {
		tb.Fatal(err)
	}
	out := make([]time.Duration, 0, n)
	for i := range n {
		t0 := time.Now()
		if _, err := unix.Pwrite(int(f.Fd()), page, int64(i%256)*4096); err != nil {
			tb.Fatal(err)
		}
		if err := unix.Fdatasync(int(f.Fd())); err != nil {
			tb.Fatal(err)
		}
		out = append(out, time.Since(t0))
	}
	return out
}
