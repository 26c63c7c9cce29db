package commitlog

import (
	"errors"
	"testing"

	"github.com/ringmq/ringmq/flush/vfs"
	"github.com/ringmq/ringmq/internal/testkit"
)

// corruptAt flips a byte of the segment file holding physical offset off.
func corruptAt(t *testing.T, fs *vfs.Mem, segSize, off int64) {
	t.Helper()
	f, err := fs.OpenReadWrite("/data/commitlog/" + SegmentName(off-off%segSize))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	f.ReadAt(b, off%segSize)
	b[0] ^= 0xff
	if _, err := f.WriteAt(b, off%segSize); err != nil {
		t.Fatal(err)
	}
}

// TestCorruptRecord: Scan reports a corrupt record as a *CorruptError with the file and
// offset; recovery from before it stops there and zeroes the rest, so nothing corrupt
// (and nothing after it) is returned, and appends continue at that offset.
func TestCorruptRecord(t *testing.T) {
	seed := testkit.Seed(t)
	fs := vfs.NewMem()
	cfg := testConfig(fs, true)
	l, err := Open(cfg, 0)
	if err != nil {
		t.Fatal(err)
	}
	recs := appendN(t, l, seed, 150, 1)
	l.Close()
	bad := recs[120]
	corruptAt(t, fs, cfg.SegmentSizeBytes, bad.off+testHeader+3)

	l, err = Open(cfg, 0)
	if err != nil {
		t.Fatal(err)
	}
	if l.RecoveredEnd() != bad.off {
		t.Fatalf("recovered end %d, want the corrupt record's offset %d", l.RecoveredEnd(), bad.off)
	}
	verifyRecovered(t, l, recs[:120], seed)
	more := appendN(t, l, seed+1, 5, 1000)
	if more[0].off != bad.off && more[0].off != bad.off-bad.off%cfg.SegmentSizeBytes+cfg.SegmentSizeBytes {
		t.Fatalf("append after recovery at %d, want %d (or the next segment)", more[0].off, bad.off)
	}
	l.Close()

	// Corruption in a segment before the checkpoint's is not scanned at open, but Scan
	// finds it.
	if recs[100].off < cfg.SegmentSizeBytes {
		t.Fatalf("record 100 at %d is still in the first segment", recs[100].off)
	}
	corruptAt(t, fs, cfg.SegmentSizeBytes, recs[5].off+testHeader)
	l, err = Open(cfg, recs[100].off)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	err = l.Scan(0, func(int64, []byte) bool { return true })
	var ce *CorruptError
	if !errors.As(err, &ce) || ce.PhysBytes != recs[5].off || ce.File == "" {
		t.Fatalf("scan: got %v, want a CorruptError at %d", err, recs[5].off)
	}
}

// FuzzRecover: whatever bytes a segment holds, Open does not fail or panic, and Scan
// returns only records Validate accepts.
func FuzzRecover(f *testing.F) {
	rec := make([]byte, 100)
	fillRecord(rec, 7)
	f.Add(rec)
	f.Add(append(rec, rec[:30]...))
	blank := []byte{0, 0, 0x10, 0, 0xCB, 0xD4, 0x31, 0x94}
	f.Add(append(append([]byte{}, rec...), blank...))
	f.Fuzz(func(t *testing.T, data []byte) {
		fs := vfs.NewMem()
		cfg := testConfig(fs, true)
		cfg.SegmentSizeBytes = 4096
		cfg.MaxRecordBytes = 1024
		if len(data) > 2*4096 {
			data = data[:2*4096]
		}
		fs.MkdirAll("/data/commitlog", 0o755)
		for i := int64(0); i*4096 < int64(len(data)) || i == 0; i++ {
			seg := make([]byte, 4096)
			if i*4096 < int64(len(data)) {
				copy(seg, data[i*4096:])
			}
			file, _ := fs.Create("/data/commitlog/" + SegmentName(i*4096))
			file.WriteAt(seg, 0)
			file.Close()
		}
		l, err := Open(cfg, 0)
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		defer l.Close()
		err = l.Scan(0, func(off int64, b []byte) bool {
			if _, err := testValidate(b); err != nil {
				t.Fatalf("scan returned an invalid record at %d: %v", off, err)
			}
			return true
		})
		if err != nil {
			t.Fatalf("scan after recovery: %v", err)
		}
		if _, err := l.Append(&testRec{id: 1, size: 100}, nil); err != nil {
			t.Fatalf("append after recovery: %v", err)
		}
	})
}
