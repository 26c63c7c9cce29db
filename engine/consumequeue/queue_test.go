package consumequeue

import (
	"bytes"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/ringmq/ringmq/flush/vfs"
)

var update = flag.Bool("update", false, "rewrite golden files")

const root = "/store/consumequeue"

func openSet(t *testing.T, fs vfs.FS, perFile int) *Set {
	t.Helper()
	s, err := Open(Config{FS: fs, Dir: root, EntriesPerFile: perFile})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// entryAt is the entry the tests write for queue offset i: record i is 100 bytes at 100*i.
func entryAt(i int64) Entry { return Entry{PhysicalOffset: 100 * i, SizeBytes: 100, TagsCode: i - 3} }

func fill(t *testing.T, q *Queue, from, to int64) {
	t.Helper()
	for i := from; i < to; i++ {
		if err := q.Put(i, entryAt(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := q.Commit(); err != nil {
		t.Fatal(err)
	}
}

func readAll(t *testing.T, q *Queue) []Entry {
	t.Helper()
	var out []Entry
	buf := make([]Entry, 7)
	scratch := make([]byte, 7*EntrySizeBytes)
	for off := q.MinOffset(); off < q.MaxOffset(); {
		got, err := q.Read(off, buf, scratch)
		if err != nil {
			t.Fatalf("read at %d: %v", off, err)
		}
		out = append(out, got...)
		off += int64(len(got))
	}
	return out
}

func TestGoldenFile(t *testing.T) {
	fs := vfs.NewMem()
	s := openSet(t, fs, 4)
	q := s.GetOrCreate("T1", 0)
	fill(t, q, 0, 3)
	b := make([]byte, 3*EntrySizeBytes)
	f, err := fs.Open(filepath.Join(root, "T1", "0", "00000000000000000000"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.ReadAt(b, 0); err != nil {
		t.Fatal(err)
	}
	_ = f.Close()
	got := ""
	for i := 0; i < len(b); i += EntrySizeBytes {
		got += hex.EncodeToString(b[i:i+EntrySizeBytes]) + "\n"
	}
	path := filepath.Join("testdata", "cq_entries.hex")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
}

func TestPutReadAcrossFilesAndReopen(t *testing.T) {
	fs := vfs.NewMem()
	s := openSet(t, fs, 4)
	q := s.GetOrCreate("T1", 2)
	fill(t, q, 0, 11)
	if q.MinOffset() != 0 || q.MaxOffset() != 11 {
		t.Fatalf("min/max %d/%d, want 0/11", q.MinOffset(), q.MaxOffset())
	}
	got := readAll(t, q)
	for i, e := range got {
		if e != entryAt(int64(i)) {
			t.Fatalf("entry %d: got %+v, want %+v", i, e, entryAt(int64(i)))
		}
	}
	names, _ := fs.List(filepath.Join(root, "T1", "2"))
	if want := []string{FileName(0), FileName(4), FileName(8)}; fmt.Sprint(names) != fmt.Sprint(want) {
		t.Fatalf("files %v, want %v", names, want)
	}
	if _, err := q.Entry(11); !errors.Is(err, ErrOutOfRange) {
		t.Fatalf("entry past max: %v", err)
	}
	fill(t, q, 5, 11) // a replay of what is there is ignored
	if q.MaxOffset() != 11 {
		t.Fatalf("max after replay %d", q.MaxOffset())
	}
	s.Close()
	s2 := openSet(t, fs, 4)
	q2 := s2.Get("T1", 2)
	if q2 == nil || q2.MaxOffset() != 11 || len(readAll(t, q2)) != 11 {
		t.Fatalf("reopened: %v", q2)
	}
	if fmt.Sprint(s2.Topics()) != "[T1]" || fmt.Sprint(s2.QueueIDs("T1")) != "[2]" {
		t.Fatalf("topics %v ids %v", s2.Topics(), s2.QueueIDs("T1"))
	}
	if _, err := Open(Config{FS: fs, Dir: root, EntriesPerFile: 3}); err == nil {
		t.Fatal("a changed EntriesPerFile was accepted")
	}
}

func TestGapsAndHoles(t *testing.T) {
	s := openSet(t, vfs.NewMem(), 4)
	q := s.GetOrCreate("T", 0)
	fill(t, q, 6, 7) // a queue rebuilt from the middle starts at its first entry
	if q.MinOffset() != 6 || q.MaxOffset() != 7 {
		t.Fatalf("min/max %d/%d, want 6/7", q.MinOffset(), q.MaxOffset())
	}
	fill(t, q, 13, 14) // a gap: holes at 7..12, file 8..11 never written
	got := readAll(t, q)
	if len(got) != 8 || got[0] != entryAt(6) || got[7] != entryAt(13) {
		t.Fatalf("got %+v", got)
	}
	for _, e := range got[1:7] {
		if !e.IsHole() {
			t.Fatalf("want holes, got %+v", got)
		}
	}
}

func TestTruncateFrom(t *testing.T) {
	tests := []struct {
		phys    int64
		wantMax int64
	}{
		{100 * 20, 20}, {100*9 + 1, 10}, {100 * 8, 8}, {0, 0}, {100 * 3, 3},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprint(tc.phys), func(t *testing.T) {
			fs := vfs.NewMem()
			s := openSet(t, fs, 4)
			q := s.GetOrCreate("T", 1)
			fill(t, q, 0, 10)
			if err := s.TruncateFrom(tc.phys); err != nil {
				t.Fatal(err)
			}
			if q.MaxOffset() != min(tc.wantMax, 10) {
				t.Fatalf("max %d, want %d", q.MaxOffset(), min(tc.wantMax, 10))
			}
			fill(t, q, 0, 12) // the rebuild continues where the cut left off
			got := readAll(t, q)
			if len(got) != 12 || got[11] != entryAt(11) {
				t.Fatalf("after rebuild: %d entries", len(got))
			}
		})
	}
}

func TestTruncateDropsTornZeros(t *testing.T) {
	fs := vfs.NewMem()
	s := openSet(t, fs, 8)
	q := s.GetOrCreate("T", 0)
	fill(t, q, 0, 5)
	f, _ := fs.OpenReadWrite(filepath.Join(root, "T", "0", FileName(0)))
	if _, err := f.WriteAt(make([]byte, 2*EntrySizeBytes+7), 5*EntrySizeBytes); err != nil { // zeros and a partial entry
		t.Fatal(err)
	}
	_ = f.Close()
	s.Close()
	s2 := openSet(t, fs, 8)
	q2 := s2.Get("T", 0)
	if q2.MaxOffset() != 7 {
		t.Fatalf("loaded max %d, want 7", q2.MaxOffset())
	}
	if err := q2.TruncateFrom(1 << 40); err != nil {
		t.Fatal(err)
	}
	if q2.MaxOffset() != 5 {
		t.Fatalf("max %d, want 5", q2.MaxOffset())
	}
}

func TestAdvanceMinAndDelete(t *testing.T) {
	fs := vfs.NewMem()
	s := openSet(t, fs, 4)
	q := s.GetOrCreate("T", 0)
	fill(t, q, 0, 10)
	if err := s.AdvanceMin(100*5 + 1); err != nil {
		t.Fatal(err)
	}
	if q.MinOffset() != 6 {
		t.Fatalf("min %d, want 6", q.MinOffset())
	}
	names, _ := fs.List(filepath.Join(root, "T", "0"))
	if fmt.Sprint(names) != fmt.Sprint([]string{FileName(4), FileName(8)}) {
		t.Fatalf("files %v", names)
	}
	if _, err := q.Entry(5); !errors.Is(err, ErrOutOfRange) {
		t.Fatalf("entry below min: %v", err)
	}
	if err := s.DeleteTopic("T"); err != nil {
		t.Fatal(err)
	}
	if s.Get("T", 0) != nil || len(s.Topics()) != 0 {
		t.Fatal("topic still there")
	}
	if _, err := fs.Stat(filepath.Join(root, "T")); err == nil {
		t.Fatal("topic directory still there")
	}
}

func TestOffsetByTime(t *testing.T) {
	s := openSet(t, vfs.NewMem(), 4)
	q := s.GetOrCreate("T", 0)
	// store time of offset i is 1000 + 10*i, offsets 3..14; 7 and 8 are holes
	fill(t, q, 3, 7)
	fill(t, q, 9, 15)
	calls := 0
	storeTime := func(e Entry) (int64, error) {
		calls++
		return 1000 + 10*(e.PhysicalOffset/100), nil
	}
	tests := []struct{ ts, want int64 }{
		{0, 3}, {1030, 3}, {1031, 4}, {1060, 6}, {1061, 7}, {1090, 7}, {1091, 10}, {1140, 14}, {1141, 15},
	}
	for _, tc := range tests {
		calls = 0
		got, err := q.OffsetByTime(tc.ts, storeTime)
		if err != nil || got != tc.want {
			t.Errorf("OffsetByTime(%d) = %d, %v; want %d", tc.ts, got, err, tc.want)
		}
		if calls > 6 {
			t.Errorf("OffsetByTime(%d) read %d records", tc.ts, calls)
		}
	}
}

func TestSyncDirtyCrash(t *testing.T) {
	fs := vfs.NewMem()
	s := openSet(t, fs, 4)
	q := s.GetOrCreate("T", 0)
	fill(t, q, 0, 6)
	if err := s.SyncDirty(); err != nil {
		t.Fatal(err)
	}
	fill(t, q, 6, 9) // not synced
	crashed := fs.Crash()
	s2 := openSet(t, crashed, 4)
	q2 := s2.Get("T", 0)
	if err := s2.TruncateFrom(1 << 40); err != nil { // recovery always cuts the unsynced tail
		t.Fatal(err)
	}
	if q2 == nil || q2.MaxOffset() != 6 {
		t.Fatalf("after crash: %+v", q2)
	}
}

func FuzzDecodeEntry(f *testing.F) {
	f.Add(make([]byte, EntrySizeBytes))
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) < EntrySizeBytes {
			return
		}
		e := DecodeEntry(b)
		var out [EntrySizeBytes]byte
		putEntry(out[:], e)
		if !bytes.Equal(out[:], b[:EntrySizeBytes]) {
			t.Fatalf("round trip: %x -> %+v -> %x", b[:EntrySizeBytes], e, out)
		}
	})
}

// TestConcurrentReaders runs readers beside the writer (for -race): every entry a reader
// sees below MaxOffset is the one written there.
func TestConcurrentReaders(t *testing.T) {
	s := openSet(t, vfs.NewMem(), 64)
	q := s.GetOrCreate("T", 0)
	const total = 2000
	done := make(chan error, 2)
	for r := 0; r < 2; r++ {
		go func() {
			buf := make([]Entry, 16)
			scratch := make([]byte, 16*EntrySizeBytes)
			for off := int64(0); off < total; {
				if off >= q.MaxOffset() {
					continue
				}
				got, err := q.Read(off, buf, scratch)
				if err != nil {
					done <- err
					return
				}
				for i, e := range got {
					if e != entryAt(off+int64(i)) {
						done <- fmt.Errorf("offset %d: got %+v", off+int64(i), e)
						return
					}
				}
				off += int64(len(got))
			}
			done <- nil
		}()
	}
	for i := int64(0); i < total; i += 10 {
		fill(t, q, i, i+10)
		if i%500 == 0 {
			if err := s.SyncDirty(); err != nil {
				t.Fatal(err)
			}
		}
	}
	for r := 0; r < 2; r++ {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}

// readFailFS fails every ReadAt of the files it opens with EIO.
type readFailFS struct{ vfs.FS }

type readFailFile struct{ vfs.File }

func (readFailFile) ReadAt([]byte, int64) (int, error) { return 0, errEIO }

var errEIO = errors.New("injected EIO")

func (fs readFailFS) OpenReadWrite(name string) (vfs.File, error) {
	f, err := fs.FS.OpenReadWrite(name)
	if err != nil {
		return nil, err
	}
	return readFailFile{f}, nil
}

// A read error during recovery is an error, not holes: TruncateFrom must not cut the
// entries it could not read.
func TestTruncateFromReadError(t *testing.T) {
	mem := vfs.NewMem()
	s := openSet(t, mem, 4)
	fill(t, s.GetOrCreate("T", 1), 0, 10)
	s.Close()
	s = openSet(t, readFailFS{mem}, 4)
	q := s.Get("T", 1)
	if err := s.TruncateFrom(100 * 20); !errors.Is(err, errEIO) {
		t.Fatalf("TruncateFrom: got %v, want the read error", err)
	}
	if q.MaxOffset() != 10 {
		t.Fatalf("max %d after a failed read, want 10", q.MaxOffset())
	}
}
