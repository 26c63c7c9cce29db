package index

import (
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/ringmq/ringmq/flush/vfs"
)

var update = flag.Bool("update", false, "rewrite golden files")

const dir = "/store/index"

func openIndex(t *testing.T, fs vfs.FS, slots, entries int, clEnd int64) (*Index, int64) {
	t.Helper()
	x, err := Open(Config{FS: fs, Dir: dir, SlotsPerFile: slots, EntriesPerFile: entries})
	if err != nil {
		t.Fatal(err)
	}
	next, err := x.Recover(clEnd, 0)
	if err != nil {
		t.Fatal(err)
	}
	return x, next
}

// record i is at phys 100*i, stored at 1000+i ms, with keys "k<i%7>" and "u<i>".
func addRecords(t *testing.T, x *Index, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		for _, k := range []string{fmt.Sprintf("k%d", i%7), fmt.Sprintf("u%d", i)} {
			if err := x.Add([]byte("T"), []byte(k), int64(100*i), int64(1000+i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := x.Flush(); err != nil {
		t.Fatal(err)
	}
}

func lookup(t *testing.T, x *Index, topic, key string, beginMs, endMs int64, maxNum int) []int64 {
	t.Helper()
	var out []int64
	err := x.Lookup([]byte(topic), []byte(key), beginMs, endMs, func(phys int64) bool {
		out = append(out, phys)
		return len(out) < maxNum
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// want lists the offsets of records in [from, to) whose i%7 == k (newest first) within times.
func want(from, to, k int, beginMs, endMs int64, maxNum int) []int64 {
	var out []int64
	for i := to - 1; i >= from && len(out) < maxNum; i-- {
		if i%7 == k && int64(1000+i) >= beginMs && int64(1000+i) <= endMs {
			out = append(out, int64(100*i))
		}
	}
	return out
}

func TestLookupAcrossFiles(t *testing.T) {
	fs := vfs.NewMem()
	x, next := openIndex(t, fs, 5, 16, 1<<40)
	if next != 0 {
		t.Fatalf("empty index resumes at %d", next)
	}
	addRecords(t, x, 0, 40) // 80 entries: 5 files of 16
	tests := []struct {
		k          int
		begin, end int64
		maxNum     int
	}{
		{3, 0, 1 << 62, 100}, {3, 0, 1 << 62, 2}, {0, 1010, 1030, 100}, {6, 2000, 3000, 100},
	}
	for _, tc := range tests {
		got := lookup(t, x, "T", fmt.Sprintf("k%d", tc.k), tc.begin, tc.end, tc.maxNum)
		if w := want(0, 40, tc.k, tc.begin, tc.end, tc.maxNum); !slices.Equal(got, w) {
			t.Errorf("k%d [%d,%d] max %d: got %v, want %v", tc.k, tc.begin, tc.end, tc.maxNum, got, w)
		}
	}
	if got := lookup(t, x, "T", "u17", 0, 1<<62, 10); !slices.Equal(got, []int64{1700}) {
		t.Errorf("u17: got %v", got)
	}
	if got := lookup(t, x, "Other", "u17", 0, 1<<62, 10); len(got) != 0 {
		t.Errorf("other topic: got %v", got)
	}
	if err := x.Close(); err != nil {
		t.Fatal(err)
	}
	x2, next := openIndex(t, fs, 5, 16, 1<<40)
	defer x2.Close()
	if next != 3901 {
		t.Fatalf("after clean close resume at %d, want 3901", next)
	}
	if got := lookup(t, x2, "T", "k3", 0, 1<<62, 100); !slices.Equal(got, want(0, 40, 3, 0, 1<<62, 100)) {
		t.Fatalf("reopened: %v", got)
	}
	if err := x2.DeleteBelow(1600); err != nil {
		t.Fatal(err)
	}
	if got := lookup(t, x2, "T", "u2", 0, 1<<62, 10); len(got) != 0 {
		t.Fatalf("deleted file still answers: %v", got)
	}
	if got := lookup(t, x2, "T", "u39", 0, 1<<62, 10); !slices.Equal(got, []int64{3900}) {
		t.Fatalf("u39: %v", got)
	}
}

func TestRecoverAfterCrash(t *testing.T) {
	tests := []struct {
		name      string
		clEnd     int64
		wantNext  int64
		wantLastK int // newest record found for u<i>
	}{
		{"all durable", 1 << 40, 2900, 28}, // last record's keys dropped: it may be partial
		{"log shorter", 2000, 1900, 18},    // records at/after 2000 lost from the log
		{"log much shorter", 450, 400, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fs := vfs.NewMem()
			x, _ := openIndex(t, fs, 7, 1000, 1<<40)
			addRecords(t, x, 0, 30)
			if err := x.Sync(); err != nil {
				t.Fatal(err)
			}
			addRecords(t, x, 30, 35) // written, never synced
			crashed := fs.Crash()
			_ = x.Close()
			x2, next := openIndex(t, crashed, 7, 1000, tc.clEnd)
			defer x2.Close()
			if next != tc.wantNext {
				t.Fatalf("resume at %d, want %d", next, tc.wantNext)
			}
			for i := 0; i < 35; i++ {
				got := lookup(t, x2, "T", fmt.Sprintf("u%d", i), 0, 1<<62, 5)
				if (i <= tc.wantLastK) != (len(got) == 1) {
					t.Fatalf("u%d: got %v", i, got)
				}
			}
			addRecords(t, x2, int(next/100), 40) // the replay
			if got := lookup(t, x2, "T", "k1", 0, 1<<62, 100); !slices.Equal(got, want(0, 40, 1, 0, 1<<62, 100)) {
				t.Fatalf("after replay: %v, want %v", got, want(0, 40, 1, 0, 1<<62, 100))
			}
		})
	}
}

func TestTornEntryStopsScan(t *testing.T) {
	fs := vfs.NewMem()
	x, _ := openIndex(t, fs, 3, 100, 1<<40)
	addRecords(t, x, 0, 10)
	_ = x.Sync()
	f, _ := fs.OpenReadWrite(filepath.Join(dir, FileName(1)))
	if _, err := f.WriteAt([]byte{0xFF}, entryPos(3, 9)+10); err != nil { // entry 9 = record 4's second key
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	_ = f.Close()
	crashed := fs.Crash()
	_ = x.Close()
	x2, next := openIndex(t, crashed, 3, 100, 1<<40)
	defer x2.Close()
	if next != 400 {
		t.Fatalf("resume at %d, want 400 (record 4's keys dropped with the torn entry)", next)
	}
}

func TestGoldenHeaderAndEntry(t *testing.T) {
	h := header{slotCount: 5, maxEntries: 16, state: stateSealed, entryCount: 3, beginTsMs: 1000, endTsMs: 1002, beginPhys: 0, endPhys: 200}
	var hb [headerSizeBytes]byte
	h.encode(hb[:])
	e := entry{keyHash: KeyHash([]byte("T"), []byte("k1")), prev: 2, phys: 0xA3, tsMs: 1795238134600}
	var eb [entrySizeBytes]byte
	e.encode(eb[:])
	got := hex.EncodeToString(hb[:]) + "\n" + hex.EncodeToString(eb[:]) + "\n"
	path := filepath.Join("testdata", "header_entry.hex")
	if *update {
		_ = os.MkdirAll("testdata", 0o755)
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	wantB, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(wantB) {
		t.Fatalf("got\n%s\nwant\n%s", got, wantB)
	}
	if dh, bad := decodeHeader(hb[:]); bad != "" || dh != h {
		t.Fatalf("header round trip: %+v %q", dh, bad)
	}
	if de, ok := decodeEntry(eb[:]); !ok || de != e {
		t.Fatalf("entry round trip: %+v %v", de, ok)
	}
}

func TestKeyHash(t *testing.T) {
	if KeyHash([]byte("T"), []byte("k1")) == KeyHash([]byte("T"), []byte("k2")) {
		t.Fatal("k1 and k2 collide")
	}
	if got := KeyHash(nil, nil); got != fnvOf("#") {
		t.Fatalf("hash of \"#\" = %#x, want %#x", got, fnvOf("#"))
	}
	if KeyHash([]byte("ab"), []byte("c")) != fnvOf("ab#c") {
		t.Fatal("KeyHash is not FNV-1a of topic#key")
	}
}

func fnvOf(s string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h = (h ^ uint32(s[i])) * 16777619
	}
	return h
}

func FuzzDecodeHeader(f *testing.F) {
	var hb [headerSizeBytes]byte
	(&header{slotCount: 5, maxEntries: 16}).encode(hb[:])
	f.Add(hb[:])
	f.Fuzz(func(t *testing.T, b []byte) {
		h, bad := decodeHeader(b)
		if bad != "" {
			return
		}
		var out [headerSizeBytes]byte
		h.encode(out[:])
		if string(out[:]) != string(b[:headerSizeBytes]) {
			t.Fatalf("round trip differs")
		}
	})
}

func FuzzDecodeEntry(f *testing.F) {
	var eb [entrySizeBytes]byte
	(&entry{keyHash: 1, phys: 2, tsMs: 3}).encode(eb[:])
	f.Add(eb[:])
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) < entrySizeBytes {
			return
		}
		e, ok := decodeEntry(b)
		if !ok {
			return
		}
		var out [entrySizeBytes]byte
		e.encode(out[:])
		if string(out[:]) != string(b[:entrySizeBytes]) {
			t.Fatalf("round trip differs")
		}
	})
}

// TestLookupBesideWriter runs lookups while the writer adds, flushes and rolls files
// (for -race): every record added before a lookup started is found.
func TestLookupBesideWriter(t *testing.T) {
	x, _ := openIndex(t, vfs.NewMem(), 11, 64, 1<<40)
	defer x.Close()
	const total = 600
	var added [total + 1]chan struct{}
	for i := range added {
		added[i] = make(chan struct{})
	}
	done := make(chan error)
	go func() {
		for i := 0; i < total; i += 37 {
			<-added[i+1]
			got := lookup(t, x, "T", fmt.Sprintf("u%d", i), 0, 1<<62, 5)
			if len(got) != 1 || got[0] != int64(100*i) {
				done <- fmt.Errorf("u%d: got %v", i, got)
				return
			}
		}
		done <- nil
	}()
	for i := 0; i < total; i++ {
		addRecords(t, x, i, i+1)
		close(added[i+1])
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// readFailFS fails every ReadAt at or past fromBytes of the files it opens.
type readFailFS struct {
	vfs.FS
	fromBytes int64
}

type readFailFile struct {
	vfs.File
	fromBytes int64
}

var errEIO = errors.New("injected EIO")

func (f readFailFile) ReadAt(b []byte, off int64) (int, error) {
	if off+int64(len(b)) > f.fromBytes {
		return 0, errEIO
	}
	return f.File.ReadAt(b, off)
}

func (fs readFailFS) OpenReadWrite(name string) (vfs.File, error) {
	f, err := fs.FS.OpenReadWrite(name)
	if err != nil {
		return nil, err
	}
	return readFailFile{f, fs.fromBytes}, nil
}

// A read error is an error, never a half-created file to remove or the end of the
// entries to cut at.
func TestReadErrorIsNotDamage(t *testing.T) {
	mem := vfs.NewMem()
	x, _ := openIndex(t, mem, 3, 100, 1<<40)
	addRecords(t, x, 0, 10)
	if err := x.Sync(); err != nil {
		t.Fatal(err)
	}
	crashed := mem.Crash() // the active file stays open (state 0): Recover scans its entries
	_ = x.Close()
	path := filepath.Join(dir, FileName(1))

	_, err := Open(Config{FS: readFailFS{crashed, 0}, Dir: dir, SlotsPerFile: 3, EntriesPerFile: 100})
	if !errors.Is(err, errEIO) {
		t.Fatalf("Open with an unreadable header: got %v, want the read error", err)
	}
	if _, err := crashed.Stat(path); err != nil {
		t.Fatalf("the unreadable file was removed: %v", err)
	}

	x2, err := Open(Config{FS: readFailFS{crashed, entryPos(3, 0)}, Dir: dir, SlotsPerFile: 3, EntriesPerFile: 100})
	if err != nil {
		t.Fatal(err)
	}
	defer x2.Close()
	if _, err := x2.Recover(1<<40, 0); !errors.Is(err, errEIO) {
		t.Fatalf("Recover with unreadable entries: got %v, want the read error", err)
	}
}
