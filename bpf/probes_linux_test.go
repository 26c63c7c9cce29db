//go:build linux && (386 || amd64)

package bpf

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/ringmq/ringmq/iouring"
	"github.com/ringmq/ringmq/perf"
)

// openProbes opens a Set with the given probes attached. A host that cannot run a probe (not
// root, no BTF, missing tracepoint) skips the test with the reason, unless EBPF_REQUIRED is set
// (CI), which makes it a failure; a verifier rejection always fails, with the verifier log.
func openProbes(t *testing.T, cfg Config) *Set {
	t.Helper()
	s, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	for _, name := range cfg.Probes {
		if err := s.Err(name); err != nil {
			if IsUnavailable(err) && os.Getenv("EBPF_REQUIRED") == "" {
				t.Skipf("eBPF probe %s unavailable here (set EBPF_REQUIRED=1 to fail instead): %v", name, err)
			}
			t.Fatalf("probe %s: %+v", name, err)
		}
	}
	return s
}

// waitEvents polls the ring until match has seen want events added after from, or fails at the
// deadline. It returns the matching events.
func waitEvents(t *testing.T, s *Set, from uint64, want int, match func(*Event) bool) []Event {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		evs, _ := s.ring.since(nil, from)
		var got []Event
		for i := range evs {
			if match(&evs[i]) {
				got = append(got, evs[i])
			}
		}
		if len(got) >= want || time.Now().After(deadline) {
			return got
		}
		time.Sleep(2 * time.Millisecond) // polling the ring, not waiting for a fixed time
	}
}

// settle waits until no event has been added for 50 ms, so that counts taken afterwards see
// every event of the operations before it.
func settle(s *Set) {
	last, quietSince := s.ring.addedTotal(), time.Now()
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if n := s.ring.addedTotal(); n != last {
			last, quietSince = n, time.Now()
		} else if time.Since(quietSince) > 50*time.Millisecond {
			return
		}
	}
}

// preparedFile returns a file of sizeBytes already written and synced, so that overwriting it
// needs no block allocation or inode update: each 4 KiB pwrite + fdatasync is then one write
// request and one flush.
func preparedFile(t *testing.T, sizeBytes int) *os.File {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(t.TempDir(), "data"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	if _, err := f.Write(make([]byte, sizeBytes)); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestBlockAndSyncCountOwnOperations(t *testing.T) {
	s := openProbes(t, Config{Probes: []string{ProbeBlockIO, ProbeSync}})
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	tid := uint32(unix.Gettid())
	const n = 20
	f := preparedFile(t, n*4096)
	settle(s)
	from := s.ring.addedTotal()
	syncBefore := mustHist(t, s, ProbeSync, uint32(SyncFdatasync))
	flushBefore := mustHist(t, s, ProbeBlockIO, uint32(BlockFlush))
	buf := make([]byte, 4096)
	for i := range n {
		buf[0] = byte(i + 1)
		if _, err := unix.Pwrite(int(f.Fd()), buf, int64(i)*4096); err != nil {
			t.Fatal(err)
		}
		if err := unix.Fdatasync(int(f.Fd())); err != nil {
			t.Fatal(err)
		}
	}
	syncs := waitEvents(t, s, from, n, func(e *Event) bool { return e.Kind == KindSync && e.Tid == tid })
	// The data writes go to the file's blocks; other writes of the thread are metadata its
	// fdatasyncs wrote back (the inode table block, when a pwrite changed the mtime).
	firstSector := fileStartSector(t, f)
	waitEvents(t, s, from, n, func(e *Event) bool { return e.Kind == KindBlock && e.Tid == tid && e.Op == BlockFlush })
	waitEvents(t, s, from, n, func(e *Event) bool {
		return e.Kind == KindBlock && e.Tid == tid && e.Op == BlockWrite && e.Arg >= firstSector
	})
	settle(s) // then count: exactly n, none late
	evs, _ := s.ring.since(nil, from)
	var flushes, writes, others int
	for _, e := range evs {
		if e.Kind != KindBlock || e.Tid != tid {
			continue
		}
		switch {
		case e.Op == BlockFlush:
			flushes++
		case e.Op == BlockWrite && e.Bytes == 4096 && e.Arg >= firstSector && e.Arg < firstSector+n*8:
			writes++
		default:
			others++
		}
	}
	t.Logf("%d other block requests (metadata write-back)", others)
	if len(syncs) != n {
		t.Errorf("fdatasync events of tid %d: got %d, want %d", tid, len(syncs), n)
	}
	for _, e := range syncs {
		if e.Op != SyncFdatasync || e.Arg != uint64(f.Fd()) || e.Res != 0 || e.DurationNs() <= 0 {
			t.Errorf("fdatasync event %+v: want op fdatasync, fd %d, res 0, positive duration", e, f.Fd())
		}
	}
	if flushes != n || writes != n {
		t.Errorf("block requests of tid %d: got %d flushes, %d 4 KiB writes into the file; want %d, %d",
			tid, flushes, writes, n, n)
	}
	if d := mustHist(t, s, ProbeSync, uint32(SyncFdatasync)).Count - syncBefore.Count; d != n {
		t.Errorf("fdatasync histogram grew by %d, want %d", d, n)
	}
	if d := mustHist(t, s, ProbeBlockIO, uint32(BlockFlush)).Count - flushBefore.Count; d != n {
		t.Errorf("block flush histogram grew by %d, want %d", d, n)
	}
}

// TestSyncCountsOwnCalls needs only the fsync probe, which loads without BTF.
func TestSyncCountsOwnCalls(t *testing.T) {
	s := openProbes(t, Config{Probes: []string{ProbeSync}})
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	tid := uint32(unix.Gettid())
	f := preparedFile(t, 4096)
	settle(s)
	from := s.ring.addedTotal()
	before := [numSyncOps]histCounts{mustHist(t, s, ProbeSync, 0), mustHist(t, s, ProbeSync, 1)}
	const n = 5
	for range n {
		if err := unix.Fdatasync(int(f.Fd())); err != nil {
			t.Fatal(err)
		}
		if err := unix.Fsync(int(f.Fd())); err != nil {
			t.Fatal(err)
		}
	}
	if err := unix.Fdatasync(-1); err != unix.EBADF {
		t.Fatalf("fdatasync(-1): got %v, want EBADF", err)
	}
	mine := func(e *Event) bool { return e.Kind == KindSync && e.Tid == tid }
	waitEvents(t, s, from, 2*n+1, mine)
	settle(s)
	var counts [numSyncOps]int
	var failed int
	for _, e := range waitEvents(t, s, from, 2*n+1, mine) {
		switch {
		case e.Res == -int32(unix.EBADF) && int64(e.Arg) == -1:
			failed++
		case e.Res == 0 && e.Arg == uint64(f.Fd()) && e.Op < numSyncOps:
			counts[e.Op]++
		default:
			t.Errorf("unexpected sync event %+v", e)
		}
	}
	if counts[SyncFdatasync] != n || counts[SyncFsync] != n || failed != 1 {
		t.Errorf("sync events of tid %d: got %d fdatasync, %d fsync, %d failed; want %d, %d, 1",
			tid, counts[SyncFdatasync], counts[SyncFsync], failed, n, n)
	}
	for op := range numSyncOps {
		want := uint64(n)
		if op == int(SyncFdatasync) {
			want++ // the failed call is timed too
		}
		if d := mustHist(t, s, ProbeSync, uint32(op)).Count - before[op].Count; d != want {
			t.Errorf("%s histogram grew by %d, want %d", syncOpNames[op], d, want)
		}
	}
}

func mustHist(t *testing.T, s *Set, name string, key uint32) histCounts {
	t.Helper()
	p, err := s.probe(name)
	if err != nil {
		t.Fatal(err)
	}
	h, err := p.impl.hist(key)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestUringCountsOwnOperations(t *testing.T) {
	s := openProbes(t, Config{Probes: []string{ProbeUring}})
	ring, err := iouring.New(8)
	if err != nil {
		t.Skipf("io_uring unavailable: %v", err)
	}
	defer ring.Close()
	const n = 10
	f := preparedFile(t, n*4096)
	settle(s)
	from := s.ring.addedTotal()
	before := mustHist(t, s, ProbeUring, 0)
	buf := make([]byte, 4096)
	var wc, fc iouring.Completion
	for i := range n {
		wc, fc = iouring.Completion{}, iouring.Completion{}
		if err := ring.Write(int32(f.Fd()), buf, uint64(i)*4096, iouring.FlagLink, &wc); err != nil {
			t.Fatal(err)
		}
		if err := ring.Fsync(int32(f.Fd()), iouring.FsyncDatasync, 0, &fc); err != nil {
			t.Fatal(err)
		}
		if _, err := ring.SubmitAndWait(2); err != nil {
			t.Fatal(err)
		}
		if wc.Res != 4096 || fc.Res != 0 {
			t.Fatalf("io_uring results: write %d, fsync %d; want 4096, 0", wc.Res, fc.Res)
		}
	}
	evs := waitEvents(t, s, from, 2*n, func(e *Event) bool { return e.Kind == KindUring })
	settle(s)
	all, _ := s.ring.since(nil, from)
	var writes, fsyncs, others int
	for _, e := range all {
		switch {
		case e.Kind != KindUring:
		case e.Op == 23 && e.Res == 4096:
			writes++
		case e.Op == 3 && e.Res == 0:
			fsyncs++
		default:
			others++
			t.Logf("other io_uring event: %+v", e)
		}
	}
	if writes != n || fsyncs != n || others != 0 {
		t.Errorf("io_uring events: got %d writes, %d fsyncs, %d others (first wait saw %d); want %d, %d, 0",
			writes, fsyncs, others, len(evs), n, n)
	}
	if d := mustHist(t, s, ProbeUring, 0).Count - before.Count; d != 2*n {
		t.Errorf("io_uring histogram grew by %d, want %d", d, 2*n)
	}
}

func TestPageFaultsCountOwnTouches(t *testing.T) {
	s := openProbes(t, Config{Probes: []string{ProbePageFault}})
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	tid := uint32(unix.Gettid())
	const pages = 64
	pageSize := os.Getpagesize()
	mem, err := unix.Mmap(-1, 0, pages*pageSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(mem)
	if err := unix.Madvise(mem, unix.MADV_NOHUGEPAGE); err != nil {
		t.Fatal(err)
	}
	base := uint64(uintptr(unsafe.Pointer(&mem[0])))
	from := s.ring.addedTotal()
	for i := range pages {
		mem[i*pageSize] = 1
	}
	inRange := func(e *Event) bool {
		return e.Kind == KindFault && e.Tid == tid && e.Arg >= base && e.Arg < base+uint64(pages*pageSize)
	}
	waitEvents(t, s, from, pages, inRange)
	settle(s)
	got := waitEvents(t, s, from, pages, inRange)
	if len(got) != pages {
		t.Errorf("page faults of tid %d in the mapping: got %d, want %d", tid, len(got), pages)
	}
	p, _ := s.probe(ProbePageFault)
	if n, err := p.impl.count(); err != nil || n < pages {
		t.Errorf("page fault count: got %d (%v), want >= %d", n, err, pages)
	}
}

func TestRunqSwitchesAtRunTime(t *testing.T) {
	s := openProbes(t, Config{Probes: []string{}, RunqMinEventNs: 1})
	if err := s.Err(ProbeRunq); err != nil {
		if IsUnavailable(err) && os.Getenv("EBPF_REQUIRED") == "" {
			t.Skipf("eBPF probe %s unavailable here: %v", ProbeRunq, err)
		}
		t.Fatalf("probe %s: %+v", ProbeRunq, err)
	}
	if st := s.Status(); st[4].Name != ProbeRunq || st[4].Enabled {
		t.Fatalf("runq before SetEnabled: %+v, want present and off", st[4])
	}
	if err := s.SetEnabled(ProbeRunq, true); err != nil {
		t.Fatalf("SetEnabled(runq, true): %+v", err)
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	tid := uint32(unix.Gettid())
	const n = 20
	from := s.ring.addedTotal()
	sleepEach := unix.Timespec{Nsec: 200_000}
	for range n {
		unix.Nanosleep(&sleepEach, nil) // each wake-up puts the thread on a run queue
	}
	mine := func(e *Event) bool { return e.Kind == KindRunq && e.Tid == tid }
	if got := waitEvents(t, s, from, n, mine); len(got) < n {
		t.Errorf("run-queue events of tid %d after %d sleeps: got %d, want >= %d", tid, n, len(got), n)
	}
	all, _ := s.ring.since(nil, from)
	for _, e := range all {
		if e.Kind == KindRunq && !isOwnThread(e.Tid) {
			t.Errorf("run-queue event of tid %d, not a thread of this process", e.Tid)
		}
	}
	if err := s.SetEnabled(ProbeRunq, false); err != nil {
		t.Fatal(err)
	}
	// Events recorded before the detach may still be on their way to the ring (the reader
	// polls), so judge by the kernel's timestamps: none may end after the detach.
	detachedMonoNs := monoNowNs()
	for range n {
		unix.Nanosleep(&sleepEach, nil)
	}
	settle(s)
	late := waitEvents(t, s, from, 0, func(e *Event) bool { return mine(e) && e.EndMonoNs > detachedMonoNs })
	if len(late) != 0 {
		t.Errorf("run-queue events after disabling: got %d, want 0", len(late))
	}
}

func isOwnThread(tid uint32) bool {
	_, err := os.Stat(filepath.Join("/proc/self/task", strconv.FormatUint(uint64(tid), 10)))
	return err == nil
}

// TestSlowFlushAttributed runs two fake requests through a perf.Recorder with the Set as
// its evidence source: one whose time went into a large write's fdatasync, one that only slept.
// The first must be attributed to the fdatasync with its block flush, the second not to any
// fdatasync.
func TestSlowFlushAttributed(t *testing.T) {
	s := openProbes(t, Config{Probes: []string{ProbeBlockIO, ProbeSync}})
	rec := perf.NewRecorder(perf.RecorderConfig{SlowThreshold: time.Millisecond})
	defer rec.Close()
	reg := perf.NewRegistry()
	s.RegisterMetrics(reg)
	rec.SetEvidenceSource(s.Evidence)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	tid := uint32(unix.Gettid())
	f := preparedFile(t, 4096)
	big := make([]byte, 32<<20)
	settle(s)
	from := s.ring.addedTotal()

	// A fake flusher section: stamps around a 32 MiB write and its fdatasync.
	var st perf.Stamps
	st.Mark(perf.StageRead)
	st.Mark(perf.StageAppended)
	if _, err := f.WriteAt(big, 0); err != nil {
		t.Fatal(err)
	}
	st.Mark(perf.StageFlushSubmitted)
	if err := unix.Fdatasync(int(f.Fd())); err != nil {
		t.Fatal(err)
	}
	st.Mark(perf.StageDurable)
	st.Mark(perf.StageWritten)
	rec.Record(10, &st, len(big), "slow-flush", 0) // 10 = SEND_MESSAGE
	syncNs := st.At[perf.StageDurable] - st.At[perf.StageFlushSubmitted]

	// A request that sleeps 3 ms without I/O.
	st.Reset()
	st.Mark(perf.StageRead)
	sleep := unix.Timespec{Nsec: 3_000_000}
	unix.Nanosleep(&sleep, nil)
	st.Mark(perf.StageWritten)
	rec.Record(10, &st, 1, "slow-sleep", 0)

	if got := waitEvents(t, s, from, 1, func(e *Event) bool {
		return e.Kind == KindSync && e.Op == SyncFdatasync && e.Tid == tid
	}); len(got) != 1 {
		t.Fatalf("fdatasync events: got %d, want 1", len(got))
	}
	settle(s)
	rec.CollectEvidence()
	reqs := rec.SlowRequests()
	byTopic := map[string]perf.SlowRequest{}
	for _, r := range reqs {
		byTopic[r.Topic] = r
	}
	flush, ok := byTopic["slow-flush"]
	if !ok || flush.TotalNs < int64(time.Millisecond) {
		t.Skipf("the 32 MiB write + fdatasync took under 1 ms here (%v); nothing to attribute", time.Duration(flush.TotalNs))
	}
	if len(flush.Evidence) == 0 || flush.Evidence[0].Kind != "fdatasync" ||
		!strings.Contains(flush.Evidence[0].Detail, "of which block") {
		t.Fatalf("slow flush evidence: got %+v, want fdatasync first, with its block time", flush.Evidence)
	}
	ev := flush.Evidence[0]
	if d := ev.EndNs - ev.StartNs; d > syncNs || d < syncNs/2 {
		t.Errorf("fdatasync evidence lasts %d ns; the Go stamps around it measured %d ns", d, syncNs)
	}
	t.Logf("slow flush (%v): %s", time.Duration(flush.TotalNs), ev.Detail)
	// The sleep may overlap the tail of the big write's I/O (an inode write-back the kernel
	// submitted without waiting for it), but never an fdatasync.
	for _, e := range byTopic["slow-sleep"].Evidence {
		if e.Kind == "fdatasync" {
			t.Errorf("sleeping request blamed on %s: %s [%d, %d]", e.Kind, e.Detail, e.StartNs, e.EndNs)
		}
	}
	if t.Failed() {
		for _, r := range reqs {
			t.Logf("request %s: stamps %v", r.Topic, r.At)
		}
		evs, _ := s.ring.since(nil, from)
		for _, e := range evs {
			if e.Kind == KindSync || e.Kind == KindBlock {
				t.Logf("event %+v: perf clock [%d, %d]", e, perf.FromKernelMonotonicNs(e.StartMonoNs), perf.FromKernelMonotonicNs(e.EndMonoNs))
			}
		}
	}
	if got := s.CauseCount(CauseSync); got != 1 {
		t.Errorf("slow requests attributed to fdatasync: got %d, want 1", got)
	}
	var sb strings.Builder
	if err := perf.WritePrometheus(&sb, rec, reg); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`ringmq_slow_request_cause_total{cause="fdatasync"} 1`, `ringmq_kernel_sync_seconds_count{syscall="fdatasync"} `,
		`ringmq_kernel_probe_enabled{probe="block_io"} 1`, `ringmq_kernel_probe_enabled{probe="runq_delay"} 0`} {
		if !strings.Contains(sb.String(), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// fileStartSector returns the disk sector (512 bytes, counted from the start of the whole disk,
// as struct request's __sector is) of f's first byte, which must be in one contiguous extent.
func fileStartSector(t *testing.T, f *os.File) uint64 {
	t.Helper()
	// struct fiemap (32 bytes) followed by one struct fiemap_extent (56 bytes).
	var buf [32 + 56]byte
	binary.LittleEndian.PutUint64(buf[8:], ^uint64(0)) // fm_length: to the end
	binary.LittleEndian.PutUint32(buf[16:], 1)         // fm_flags: FIEMAP_FLAG_SYNC
	binary.LittleEndian.PutUint32(buf[24:], 1)         // fm_extent_count
	const fsIocFiemap = 0xC020660B
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, f.Fd(), fsIocFiemap, uintptr(unsafe.Pointer(&buf[0]))); errno != 0 {
		t.Skipf("FIEMAP on the test file: %v", errno)
	}
	if binary.LittleEndian.Uint32(buf[20:]) != 1 {
		t.Fatal("FIEMAP: no extent")
	}
	physical := binary.LittleEndian.Uint64(buf[32+8:])
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	// A partition's sectors are counted from the start of its disk.
	var partStart uint64
	if b, err := os.ReadFile(fmt.Sprintf("/sys/dev/block/%d:%d/start", unix.Major(st.Dev), unix.Minor(st.Dev))); err == nil {
		partStart, _ = strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	}
	return partStart + physical/512
}
