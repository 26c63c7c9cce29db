package commitlog

import (
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringmq/ringmq/flush/vfs"
	"github.com/ringmq/ringmq/perf"
)

// prewriteLog is just enough of a Log for writeZeroFile.
func prewriteLog(fs vfs.FS, segBytes, bytesPerSec int64) *Log {
	return &Log{cfg: Config{FS: fs, SegmentSizeBytes: segBytes, PrewriteBytesPerSec: bytesPerSec}, stop: make(chan struct{})}
}

// A paced pre-write cannot finish before its rate allows (a lower bound, so the machine's
// noise cannot make it fail); an urgent one ignores the rate; closing the log, or appends catching up, lifts it.
func TestPrewritePacing(t *testing.T) {
	const seg = 16 << 20
	fs := vfs.NewMem()
	l := prewriteLog(fs, seg, 64<<20) // 16 MiB at 64 MiB/s: at least 250 ms
	start := time.Now()
	if err := l.writeZeroFile("paced", false, never); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < 240*time.Millisecond {
		t.Fatalf("paced pre-write of 16 MiB at 64 MiB/s took %v, want >= 250 ms", took)
	}
	checkZeroFile(t, fs, "paced", seg)

	slow := prewriteLog(fs, seg, 1<<20) // 16 s if paced
	start = time.Now()
	if err := slow.writeZeroFile("urgent", false, nil); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("urgent pre-write took %v: it was paced", took)
	}
	checkZeroFile(t, fs, "urgent", seg)

	close(slow.stop)
	start = time.Now()
	if err := slow.writeZeroFile("closing", false, never); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("pre-write after Close took %v: still paced", took)
	}
	checkZeroFile(t, fs, "closing", seg)

	calls := 0
	becomesUrgent := func() bool { calls++; return calls > 2 } // appends caught up after 2 slices
	start = time.Now()
	if err := prewriteLog(fs, seg, 1<<20).writeZeroFile("caught-up", false, becomesUrgent); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("pre-write that became urgent took %v: still paced", took)
	}
	checkZeroFile(t, fs, "caught-up", seg)
}

func never() bool { return false }

func checkZeroFile(t *testing.T, fs vfs.FS, name string, size int) {
	t.Helper()
	f, err := fs.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, size+1)
	n, _ := f.ReadAt(buf, 0)
	if n != size {
		t.Fatalf("%s: %d bytes, want %d", name, n, size)
	}
	for i, c := range buf[:n] {
		if c != 0 {
			t.Fatalf("%s: byte %d is %#x, want 0", name, i, c)
		}
	}
}

// BenchmarkFdatasyncDuringPrewrite: how much a segment pre-write in the background hurts
// the active segment's durable writes. Each iteration is one 4 KiB pwrite+fdatasync into
// an already-written file, 1 ms apart, while another goroutine pre-writes 256 MiB
// segments back to back, unpaced (the old behaviour) or paced at the default rate.
//
//	go test -run '^$' -bench FdatasyncDuringPrewrite -benchtime 3000x -count 3 ./engine/commitlog
func BenchmarkFdatasyncDuringPrewrite(b *testing.B) {
	for _, c := range []struct {
		name string
		rate int64
	}{{"unpaced", -1}, {"paced", DefaultPrewriteBytesPerSec}} {
		b.Run(c.name, func(b *testing.B) {
			dir := b.TempDir()
			l := prewriteLog(vfs.OS{}, 256<<20, c.rate)
			var wg sync.WaitGroup
			done := make(chan struct{})
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ; i++ {
					select {
					case <-done:
						return
					default:
					}
					path := filepath.Join(dir, "seg")
					if err := l.writeZeroFile(path, i > 0, never); err != nil {
						b.Error(err)
						return
					}
				}
			}()
			f := prewrittenFile(b, 1<<20)
			defer f.Close()
			buf := make([]byte, 4096)
			lat := newLatencies()
			var off int64
			for b.Loop() {
				t0 := perf.Now()
				if _, err := unix.Pwrite(int(f.Fd()), buf, off); err != nil {
					b.Fatal(err)
				}
				if err := unix.Fdatasync(int(f.Fd())); err != nil {
					b.Fatal(err)
				}
				lat.add(perf.Now() - t0)
				off = (off + 4096) % (1 << 20)
				time.Sleep(time.Millisecond)
			}
			close(l.stop) // the filler finishes its file at full speed
			close(done)
			wg.Wait()
			lat.report(b)
			b.ReportMetric(float64(slices.Max(lat.ns))/1e3, "max-us")
			os.Remove(filepath.Join(dir, "seg"))
		})
	}
}
