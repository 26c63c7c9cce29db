//go:build linux && (amd64 || arm64 || riscv64 || loong64 || ppc64le)

package iouring

import (
	"fmt"
	"runtime"
	"testing"
)

// BenchmarkNop measures the ring's own cost: prepare batch NOPs, one
// io_uring_enter to submit and wait for all, reap. ns/op is per batch.
func BenchmarkNop(b *testing.B) {
	for _, batch := range []int{1, 8, 32} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			r := newTestRing(b, 64)
			cs := make([]Completion, batch)
			b.ReportAllocs()
			for b.Loop() {
				for i := range cs {
					if err := r.Nop(0, &cs[i]); err != nil {
						b.Fatal(err)
					}
				}
				if _, err := r.SubmitAndWait(batch); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkWrite4KiB is a buffered 4 KiB write through the ring (no sync), against
// the same write with pwrite in the other sub-benchmark: on ext4 the ring's write
// runs in an io-wq worker, so this shows the cost of that hop.
func BenchmarkWrite4KiB(b *testing.B) {
	for _, via := range []string{"ring", "pwrite"} {
		b.Run("via="+via, func(b *testing.B) {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			r := newTestRing(b, 8)
			f := tempFile(b, 1<<20)
			fd := int32(f.Fd())
			buf := make([]byte, 4096)
			var c Completion
			b.SetBytes(4096)
			b.ReportAllocs()
			off := int64(0)
			for b.Loop() {
				if via == "ring" {
					r.Write(fd, buf, uint64(off), 0, &c)
					if _, err := r.SubmitAndWait(1); err != nil || c.Res != 4096 {
						b.Fatalf("write: %v res %d", err, c.Res)
					}
				} else if _, err := f.WriteAt(buf, off); err != nil {
					b.Fatal(err)
				}
				off = (off + 4096) % (1 << 20)
			}
		})
	}
}
