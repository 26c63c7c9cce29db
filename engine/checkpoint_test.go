package engine

import (
	"encoding/hex"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/ringmq/ringmq/flush/vfs"
)

var update = flag.Bool("update", false, "rewrite golden files")

func TestCheckpointGolden(t *testing.T) {
	c := checkpoint{seq: 7, commitLogDurable: 0x123456, consumeQueueDurable: 0x1234, indexDurable: 0x1200, writtenAtMs: 1795238134600}
	var b [checkpointSizeBytes]byte
	c.encode(b[:])
	got := hex.EncodeToString(b[:]) + "\n"
	path := filepath.Join("testdata", "checkpoint.hex")
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
		t.Fatalf("got %s want %s", got, want)
	}
	if d, bad := decodeCheckpoint(b[:]); bad != "" || d != c {
		t.Fatalf("round trip: %+v %q", d, bad)
	}
}

func TestCheckpointFile(t *testing.T) {
	mem := vfs.NewMem()
	_ = mem.MkdirAll("/d", 0o755)
	cf, ok, err := openCheckpoint(mem, "/d")
	if ok || err != nil {
		t.Fatalf("missing file: ok=%v err=%v", ok, err)
	}
	for i := int64(1); i <= 3; i++ {
		if err := cf.write(checkpoint{commitLogDurable: 10 * i, consumeQueueDurable: 9 * i, indexDurable: 8 * i, writtenAtMs: i}); err != nil {
			t.Fatal(err)
		}
	}
	reopen := func(fsys vfs.FS) (checkpoint, bool, error) {
		cf, ok, err := openCheckpoint(fsys, "/d")
		if cf != nil {
			_ = cf.close()
		}
		return cf.last, ok, err
	}
	if got, ok, err := reopen(mem.Crash()); !ok || err != nil || got.seq != 3 || got.commitLogDurable != 30 {
		t.Fatalf("after crash: %+v %v %v", got, ok, err)
	}
	// Tear the newest slot (seq 3 is in slot 1): the previous checkpoint is used.
	f, _ := mem.OpenReadWrite("/d/" + checkpointName)
	_, _ = f.WriteAt([]byte{0xFF}, checkpointSizeBytes+30)
	if got, ok, err := reopen(mem); !ok || err != nil || got.seq != 2 || got.commitLogDurable != 20 {
		t.Fatalf("torn newest slot: %+v %v %v", got, ok, err)
	}
	_, _ = f.WriteAt([]byte{0xFF}, 30)
	_ = f.Close()
	var ce *CheckpointError
	if _, _, err := reopen(mem); !errors.As(err, &ce) {
		t.Fatalf("both slots torn: %v", err)
	}
	_ = cf.close()
	crashed, err := createAbortMarker(mem, "/d")
	if err != nil || crashed {
		t.Fatalf("first marker: %v %v", crashed, err)
	}
	if crashed, err := createAbortMarker(mem.Crash(), "/d"); err != nil || !crashed {
		t.Fatalf("marker after crash: %v %v", crashed, err)
	}
	if err := removeAbortMarker(mem, "/d"); err != nil {
		t.Fatal(err)
	}
	if crashed, _ := createAbortMarker(mem.Crash(), "/d"); crashed {
		t.Fatal("marker survived its removal")
	}
}

func FuzzDecodeCheckpoint(f *testing.F) {
	var b [checkpointSizeBytes]byte
	(&checkpoint{commitLogDurable: 1, consumeQueueDurable: 2, indexDurable: 3, writtenAtMs: 4}).encode(b[:])
	f.Add(b[:])
	f.Fuzz(func(t *testing.T, in []byte) {
		c, bad := decodeCheckpoint(in)
		if bad != "" {
			return
		}
		var out [checkpointSizeBytes]byte
		c.encode(out[:])
		if string(out[:]) != string(in) {
			t.Fatalf("round trip differs")
		}
	})
}

func TestValidTopicAndAtoi(t *testing.T) {
	topics := []struct {
		in string
		ok bool
	}{{"T", true}, {"%RETRY%g", true}, {"a|b_c-D9", true}, {"", false}, {"a b", false}, {"a/b", false}, {"..", false}, {"é", false}}
	for _, tc := range topics {
		if validTopic(tc.in) != tc.ok {
			t.Errorf("validTopic(%q) = %v", tc.in, !tc.ok)
		}
	}
	nums := []struct {
		in   string
		want int
	}{{"3", 3}, {"18", 18}, {"", -1}, {"x", -1}, {"-1", -1}, {"1234567890", -1}}
	for _, tc := range nums {
		if got := atoi([]byte(tc.in)); got != tc.want {
			t.Errorf("atoi(%q) = %d, want %d", tc.in, got, tc.want)
		}
	}
}
