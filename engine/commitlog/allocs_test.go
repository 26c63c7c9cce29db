package commitlog

import (
	"testing"

	"github.com/ringmq/ringmq/flush/vfs"
)

// TestAppendAllocs: the append path, the flusher and the read path allocate nothing
// in steady state (OS file system, pwrite backend; the counts are process-wide, so
// they include the flusher goroutine).
func TestAppendAllocs(t *testing.T) {
	for _, sync := range []bool{true, false} {
		cfg := testConfig(vfs.OS{}, sync)
		cfg.Dir = t.TempDir()
		cfg.SegmentSizeBytes = 16 << 20
		cfg.Validate = benchValidate
		l, err := Open(cfg, 0)
		if err != nil {
			t.Fatal(err)
		}
		rec := newBenchRec(benchRecBytes)
		w := &chanWaiter{ch: make(chan error, 1)}
		var off int64
		appendOne := func() {
			if off, err = l.Append(rec, w); err != nil {
				t.Fatal(err)
			}
			if err := <-w.ch; err != nil {
				t.Fatal(err)
			}
		}
		appendOne() // warm up
		if n := testing.AllocsPerRun(500, appendOne); n != 0 {
			t.Errorf("sync=%v: %v allocations per append, want 0", sync, n)
		}
		if sync {
			n := testing.AllocsPerRun(500, func() {
				b, release, err := l.Read(off, benchRecBytes)
				if err != nil || len(b) != benchRecBytes {
					t.Fatal(err)
				}
				release()
			})
			if n != 0 {
				t.Errorf("%v allocations per read, want 0", n)
			}
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
