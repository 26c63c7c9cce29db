package commitlog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/ringmq/ringmq/flush/vfs"
)

// Test records: | size u32 | magic u32 | crc32(payload) u32 | id u64 | payload |.
// The payload is derived from id, so a reader can check every byte.
const (
	testMagic     = 0xDAA320A7
	testHeader    = 20
	minTestRecord = testHeader
)

var errTestCorrupt = errors.New("test record corrupt")

func testValidate(b []byte) (int, error) {
	if len(b) < testHeader {
		return 0, fmt.Errorf("%w: %d bytes", errTestCorrupt, len(b))
	}
	size := int(binary.BigEndian.Uint32(b))
	if binary.BigEndian.Uint32(b[4:]) != testMagic || size < testHeader || size > len(b) {
		return 0, fmt.Errorf("%w: size %d magic %x", errTestCorrupt, size, binary.BigEndian.Uint32(b[4:]))
	}
	if crc32.ChecksumIEEE(b[12:size]) != binary.BigEndian.Uint32(b[8:]) {
		return 0, fmt.Errorf("%w: crc", errTestCorrupt)
	}
	return size, nil
}

// testRec is an Encoder of a test record.
type testRec struct {
	id   uint64
	size int
	off  int64 // set by Encode
}

func (r *testRec) Size() int { return r.size }

func (r *testRec) Encode(dst []byte, off int64) {
	r.off = off
	fillRecord(dst, r.id)
}

func fillRecord(dst []byte, id uint64) {
	binary.BigEndian.PutUint32(dst, uint32(len(dst)))
	binary.BigEndian.PutUint32(dst[4:], testMagic)
	binary.BigEndian.PutUint64(dst[12:], id)
	for i := testHeader; i < len(dst); i++ {
		dst[i] = byte(id) + byte(i)
	}
	binary.BigEndian.PutUint32(dst[8:], crc32.ChecksumIEEE(dst[12:]))
}

// checkRecord verifies b is the record of id with the given size.
func checkRecord(b []byte, id uint64, size int) error {
	n, err := testValidate(b)
	if err != nil {
		return err
	}
	if n != size || binary.BigEndian.Uint64(b[12:]) != id {
		return fmt.Errorf("got record id %d size %d, want id %d size %d", binary.BigEndian.Uint64(b[12:]), n, id, size)
	}
	return nil
}

// testWaiter records its completion.
type testWaiter struct {
	mu   sync.Mutex
	done bool
	err  error
	ch   chan struct{}
}

func newTestWaiter() *testWaiter { return &testWaiter{ch: make(chan struct{})} }

func (w *testWaiter) Durable(_, _ int64, err error) {
	w.mu.Lock()
	if w.done {
		w.mu.Unlock()
		panic("waiter completed twice")
	}
	w.done, w.err = true, err
	w.mu.Unlock()
	close(w.ch)
}

func (w *testWaiter) wait(t testing.TB) error {
	t.Helper()
	select {
	case <-w.ch:
	case <-time.After(20 * time.Second):
		t.Fatal("waiter not completed within 20 s")
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func testConfig(fs vfs.FS, sync bool) Config {
	return Config{
		FS:               fs,
		Dir:              "/data",
		SegmentSizeBytes: 64 << 10,
		Sync:             sync,
		MaxRecordBytes:   8 << 10,
		MaxPendingBytes:  256 << 10,
		MaxWaiters:       1024,
		FlushInterval:    20 * time.Millisecond,
		Logger:           quietLogger(),
		Validate:         testValidate,
	}
}

func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, seed*31+7)) }

// pollUntil polls cond until it holds or the deadline passes.
func pollUntil(t testing.TB, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(time.Millisecond)
	}
}
