//go:build linux && (amd64 || arm64 || riscv64 || loong64 || ppc64le)

package flush

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/ringmq/ringmq/flush/vfs"
	"github.com/ringmq/ringmq/iouring"
)

// The uring-direct backend writes through a second, O_DIRECT descriptor of the
// segment file, from one 4 KiB-aligned buffer that is mmap'd (off the Go heap) and
// registered with the ring. A commit of n bytes at off is staged whole blocks at a
// time:
//
//	file:    |...block h...|...........|...block e...|
//	                  ^off                    ^off+n
//	staging: [ head bytes | caller's n bytes | tail bytes ]   (buf[0:span])
//	          from the cached tail block, or   from the cached tail block, or
//	          READ_FIXED of block h            READ_FIXED of block e (zeros past EOF)
//
//	SQ: WRITE_FIXED chunk 0 | WRITE_FIXED chunk 1 | ... | FSYNC DATASYNC + IO_DRAIN
//	    (chunks of directChunkBytes in flight together; the drained fdatasync starts
//	    after all of them; one io_uring_enter submits and waits for everything)
//
// After a commit the block holding its last byte is kept in the tail copy, so the
// next append, which starts in that block, needs no read: the partial tail block
// is rewritten, whole, on each commit. The Writer must not change bytes it was
// not given, so an append whose last block it has not seen needs that block's
// bytes past the end: a commit that ends mid-block also reads the next
// directAheadBytes of the file into a read-ahead window, in the same submission
// as its writes (in parallel, never overlapping them), and the following appends
// take their last block from the window. Other blocks it has not seen (a write
// at a new place) are read before the write, one 4 KiB READ_FIXED each.
// Commits larger than MaxWriteBytes are split into rounds of at most that size.
// O_DIRECT writes invalidate the page cache over their range, so readers through
// ordinary descriptors see the new bytes. Others must not write the file through
// other descriptors while a Writer has it open (the tail copy would go stale).
// Errors are sticky as in the uring backend.
//
// The uring-direct-dsync variant sends no fdatasync: WriteSync marks each
// WRITE_FIXED RWF_DSYNC, so each completes only once durable (with FUA, or the
// kernel's flush after the write where the device has no FUA). A FUA write makes
// only itself durable, so when an earlier WriteAt left bytes unsynced the commit
// sends the drained fdatasync instead, and a WriteSync split into rounds makes
// each round durable. On this machine's virtio disk and ext4 this is faster than a
// drained fdatasync, because an io_uring fsync always runs in an io-wq worker
// thread (docs/iouring.md).
//
//	SQ: WRITE_FIXED chunk 0 RWF_DSYNC | WRITE_FIXED chunk 1 RWF_DSYNC | ...

const (
	directBlockBytes = 4096
	// directDefaultMaxWriteBytes sizes the staging buffer when Options.MaxWriteBytes is 0.
	directDefaultMaxWriteBytes = 4 << 20
	// directMaxMaxWriteBytes bounds Options.MaxWriteBytes (registered memory is pinned).
	directMaxMaxWriteBytes = 256 << 20
	// directChunkBytes is the size of one WRITE_FIXED; a round has up to
	// MaxWriteBytes/directChunkBytes + 1 of them in flight.
	directChunkBytes = 256 << 10
	// directAheadBytes is the read-ahead window past the tail (see prepReadAhead).
	directAheadBytes = 256 << 10
)

func init() {
	register("uring-direct", func(opts Options) (Backend, error) { return newDirectBackend("uring-direct", opts, false) })
	register("uring-direct-dsync", func(opts Options) (Backend, error) { return newDirectBackend("uring-direct-dsync", opts, true) })
}

func newDirectBackend(name string, opts Options, dsync bool) (Backend, error) {
	maxWrite := opts.MaxWriteBytes
	if maxWrite == 0 {
		maxWrite = directDefaultMaxWriteBytes
	}
	if maxWrite < 0 || maxWrite > directMaxMaxWriteBytes {
		return nil, fmt.Errorf("MaxWriteBytes %d out of range 1..%d", maxWrite, directMaxMaxWriteBytes)
	}
	b := &directBackend{uringBackend: uringBackend{entries: uringEntries(opts)},
		name: name, dsync: dsync, maxWriteBytes: roundUpBlock(int64(maxWrite))}
	return b, probeUring(b.entries, iouring.OpWriteFixed, iouring.OpReadFixed, iouring.OpFsync)
}

type directBackend struct {
	uringBackend
	name          string
	dsync         bool // sync with RWF_DSYNC on each write instead of a drained fdatasync
	maxWriteBytes int64
}

func (b *directBackend) Name() string { return b.name }

func roundUpBlock(n int64) int64 { return (n + directBlockBytes - 1) &^ (directBlockBytes - 1) }

func (b *directBackend) Open(fs vfs.FS, path string) (Writer, error) {
	if b.isClosed() {
		return nil, fmt.Errorf("flush: %s: open %s: %w", b.name, path, errUringBackendClosed)
	}
	f, err := fs.OpenReadWrite(path)
	if err != nil {
		return nil, fmt.Errorf("flush: %s: open %s: %w", b.name, path, err)
	}
	_, ok := f.Fd()
	size, serr := f.Size()
	f.Close()
	if !ok {
		return nil, fmt.Errorf("flush: %s: open %s: %w", b.name, path, ErrNeedsOSFile)
	}
	if serr != nil {
		return nil, fmt.Errorf("flush: %s: open %s: size: %w", b.name, path, serr)
	}
	w, err := newDirectWriter(path, size, b.entries, b.maxWriteBytes, b.dsync)
	if err != nil {
		return nil, fmt.Errorf("flush: %s: open %s: %w", b.name, path, err)
	}
	return w, nil
}

type directWriter struct {
	name      string
	fd        int // the O_DIRECT descriptor, registered as fixed file 0
	ring      *iouring.Ring
	mem       []byte // mmap'd and registered as fixed buffer 0: stage | tail | ahead
	stage     []byte // maxWriteBytes + 2 blocks
	tail      []byte // copy of the block at tailOff
	tailOff   int64  // -1 when no block is cached
	ahead     []byte // read-ahead window: the file's bytes [aheadOff, aheadOff+aheadLen)
	aheadOff  int64  // -1 when the window is empty
	aheadLen  int64
	aheadNext int64 // offset of the read-ahead in flight
	aheadComp iouring.Completion
	// blockReads counts the synchronous block reads fillBlock had to make.
	blockReads int
	sizeBytes  int64 // file size as this writer knows it
	maxWrite   int64
	dsync      bool                 // WriteSync marks its writes RWF_DSYNC and sends no fdatasync
	unsynced   bool                 // a WriteAt wrote bytes no sync has covered yet
	fsyncs     int                  // fdatasyncs sent (tests check the dsync path sends none)
	comps      []iouring.Completion // one per chunk, plus two for reads
	sync       iouring.Completion
	failed     error
}

func newDirectWriter(path string, sizeBytes int64, entries uint32, maxWriteBytes int64, dsync bool) (*directWriter, error) {
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_DIRECT|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.EINVAL) {
		return nil, fmt.Errorf("O_DIRECT open: %w (the file system does not support O_DIRECT; use the uring or pwrite backend)", err)
	}
	if err != nil {
		return nil, fmt.Errorf("O_DIRECT open: %w", err)
	}
	stageBytes := maxWriteBytes + 2*directBlockBytes
	memBytes := stageBytes + directBlockBytes + directAheadBytes
	mem, err := unix.Mmap(-1, 0, int(memBytes), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("mmap %d-byte staging buffer: %w", memBytes, err)
	}
	w := &directWriter{name: path, fd: fd, mem: mem, stage: mem[:stageBytes],
		tail: mem[stageBytes : stageBytes+directBlockBytes], ahead: mem[stageBytes+directBlockBytes:],
		tailOff: -1, aheadOff: -1, sizeBytes: sizeBytes, maxWrite: maxWriteBytes, dsync: dsync,
		comps: make([]iouring.Completion, stageBytes/directChunkBytes+3)}
	if w.ring, err = newUringFileRing(entries, int32(fd)); err == nil {
		if err = w.ring.RegisterBuffers([][]byte{mem}); err != nil {
			w.ring.Close()
		}
	}
	if err != nil {
		unix.Munmap(mem)
		unix.Close(fd)
		return nil, err
	}
	return w, nil
}

func (w *directWriter) fail(err error) error {
	w.failed = err
	return err
}

// WriteAt stages and writes bufs in rounds of at most MaxWriteBytes.
func (w *directWriter) WriteAt(bufs [][]byte, offBytes int64) error {
	return w.commit(bufs, offBytes, false)
}

// WriteSync is WriteAt whose last round also makes the bytes durable: a drained
// fdatasync in the same submission, or RWF_DSYNC writes (uring-direct-dsync).
func (w *directWriter) WriteSync(bufs [][]byte, offBytes int64) error {
	return w.commit(bufs, offBytes, true)
}

func (w *directWriter) commit(bufs [][]byte, offBytes int64, sync bool) error {
	if w.failed != nil {
		return w.failed
	}
	if offBytes < 0 {
		panic(fmt.Sprintf("BUG: flush: uring-direct: negative offset %d", offBytes))
	}
	total := int64(0)
	for _, b := range bufs {
		total += int64(len(b))
	}
	if total == 0 {
		if sync {
			return w.Sync()
		}
		return nil
	}
	var cur directBufCursor
	for total > 0 {
		n := min(total, w.maxWrite)
		last := n == total
		// RWF_DSYNC covers only the write that carries it (a FUA write flushes nothing
		// else), so in dsync mode every round of a WriteSync is made durable.
		if err := w.round(bufs, &cur, offBytes, n, sync && (last || w.dsync)); err != nil {
			return w.fail(err)
		}
		offBytes, total = offBytes+n, total-n
	}
	return nil
}

// directBufCursor is a position in a [][]byte.
type directBufCursor struct{ buf, byteOff int }

// copyOut copies the next len(dst) bytes at the cursor into dst and advances it.
func (c *directBufCursor) copyOut(bufs [][]byte, dst []byte) {
	for len(dst) > 0 {
		n := copy(dst, bufs[c.buf][c.byteOff:])
		dst, c.byteOff = dst[n:], c.byteOff+n
		if c.byteOff == len(bufs[c.buf]) {
			c.buf, c.byteOff = c.buf+1, 0
		}
	}
}

// Sync is one FSYNC(DATASYNC).
func (w *directWriter) Sync() error {
	if w.failed != nil {
		return w.failed
	}
	w.fsyncs++
	if err := w.ring.Fsync(0, iouring.FsyncDatasync, iouring.FlagFixedFile, &w.sync); err != nil {
		return w.fail(fmt.Errorf("flush: uring-direct: fdatasync %s: %w", w.name, err))
	}
	if _, err := w.ring.SubmitAndWait(1); err != nil {
		return w.fail(fmt.Errorf("flush: uring-direct: fdatasync %s: %w", w.name, err))
	}
	if err := w.sync.Err(); err != nil {
		return w.fail(fmt.Errorf("flush: uring-direct: fdatasync %s: %w", w.name, err))
	}
	w.unsynced = false
	return nil
}

// Close waits for in-flight operations, then releases the ring, the buffer and the fd.
func (w *directWriter) Close() error {
	rerr := w.ring.Close()
	merr := unix.Munmap(w.mem)
	ferr := unix.Close(w.fd)
	if err := errors.Join(rerr, merr, ferr); err != nil {
		return fmt.Errorf("flush: uring-direct: close %s: %w", w.name, err)
	}
	return nil
}

// round writes n bytes taken at cur to offBytes, whole blocks from the staging
// buffer, and with sync makes them durable in the same submission.
func (w *directWriter) round(bufs [][]byte, cur *directBufCursor, offBytes, n int64, sync bool) error {
	headStart := offBytes &^ (directBlockBytes - 1)
	lead, end := offBytes-headStart, offBytes+n
	span := roundUpBlock(end) - headStart
	if err := w.fillEdges(headStart, lead, end); err != nil {
		return err
	}
	cur.copyOut(bufs, w.stage[lead:lead+n])
	// Whole-block writes past EOF would leave the file longer than pwrite would:
	// trim it to newSize before syncing, so the sync cannot share the submission.
	newSize := max(w.sizeBytes, end)
	extends := headStart+span > newSize
	syncNow := sync && !extends
	// RWF_DSYNC makes only these writes durable; bytes an earlier WriteAt left
	// unsynced need the fdatasync.
	dsyncNow := syncNow && w.dsync && !w.unsynced
	fsyncNow := syncNow && !dsyncNow
	nw, err := w.prepWrites(headStart, span, dsyncNow)
	if err != nil {
		return err
	}
	aheadLen := int64(0)
	if end%directBlockBytes != 0 { // an aligned stream never needs to read
		aheadLen = w.prepReadAhead(headStart+span, n)
	}
	if fsyncNow {
		w.fsyncs++
		if err := w.ring.Fsync(0, iouring.FsyncDatasync, iouring.FlagFixedFile|iouring.FlagDrain, &w.sync); err != nil {
			return fmt.Errorf("flush: uring-direct: fdatasync %s: %w", w.name, err)
		}
	}
	if _, err := w.ring.SubmitAndWait(w.ring.InFlight()); err != nil {
		return fmt.Errorf("flush: uring-direct: write %s: %w", w.name, err)
	}
	if err := w.checkWrites(headStart, span, nw); err != nil {
		return err
	}
	if fsyncNow {
		if err := w.sync.Err(); err != nil {
			return fmt.Errorf("flush: uring-direct: fdatasync %s: %w", w.name, err)
		}
	}
	if extends {
		if err := unix.Ftruncate(w.fd, newSize); err != nil {
			return fmt.Errorf("flush: uring-direct: trim %s to %d: %w", w.name, newSize, err)
		}
	}
	w.sizeBytes = newSize
	w.keepCopies(headStart, span, end, aheadLen)
	if sync && extends {
		return w.Sync()
	}
	w.unsynced = !syncNow
	return nil
}

// prepWrites prepares WRITE_FIXED of stage[0:span] to headStart in chunks of
// directChunkBytes, each RWF_DSYNC with dsync, and returns their count.
func (w *directWriter) prepWrites(headStart, span int64, dsync bool) (int, error) {
	nw := 0
	for pos := int64(0); pos < span; pos += directChunkBytes {
		chunk := w.stage[pos:min(span, pos+directChunkBytes)]
		if err := w.ring.WriteFixed(0, chunk, 0, uint64(headStart+pos), iouring.FlagFixedFile, &w.comps[nw]); err != nil {
			return 0, fmt.Errorf("flush: uring-direct: write %s: %w", w.name, err)
		}
		if dsync {
			w.ring.SetLastRWFlags(iouring.RWFDsync)
		}
		nw++
	}
	return nw, nil
}

func (w *directWriter) checkWrites(headStart, span int64, nw int) error {
	for i := range nw {
		pos := int64(i) * directChunkBytes
		want := int(min(span, pos+directChunkBytes) - pos)
		if err := uringResultErr("uring-direct: write", w.name, headStart+pos, &w.comps[i], want); err != nil {
			return err
		}
	}
	return nil
}

// prepReadAhead prepares, when the next commit of n bytes would end past the
// read-ahead window, a READ_FIXED of the window starting at next (the block after
// this commit's writes, so it cannot race them). It runs in parallel with the
// writes; the next appends then find their end block in the window instead of
// reading it. It returns the window's length, 0 if no read was prepared.
func (w *directWriter) prepReadAhead(next, n int64) int64 {
	if w.aheadOff >= 0 && next >= w.aheadOff && next+n <= w.aheadOff+w.aheadLen {
		return 0
	}
	length := min(int64(len(w.ahead)), roundUpBlock(w.sizeBytes)-next)
	if length <= 0 {
		return 0
	}
	w.aheadOff = -1 // invalid until the read completes
	if err := w.ring.ReadFixed(0, w.ahead[:length], 0, uint64(next), iouring.FlagFixedFile, &w.aheadComp); err != nil {
		panic("BUG: flush: uring-direct: read-ahead could not be prepared: " + err.Error())
	}
	w.aheadNext = next
	return length
}

// keepCopies updates the cached tail block and the read-ahead window after a
// round wrote stage[0:span] to headStart.
func (w *directWriter) keepCopies(headStart, span, end, aheadLen int64) {
	lastBlock := (end - 1) &^ (directBlockBytes - 1)
	copy(w.tail, w.stage[lastBlock-headStart:])
	w.tailOff = lastBlock
	if aheadLen > 0 {
		if w.aheadComp.Res >= 0 { // a failed read-ahead only costs later reads
			clear(w.ahead[w.aheadComp.Res:aheadLen]) // past EOF
			w.aheadOff, w.aheadLen = w.aheadNext, aheadLen
		}
		return
	}
	if w.aheadOff < 0 {
		return
	}
	lo, hi := max(headStart, w.aheadOff), min(headStart+span, w.aheadOff+w.aheadLen)
	if lo < hi {
		copy(w.ahead[lo-w.aheadOff:hi-w.aheadOff], w.stage[lo-headStart:])
	}
}

// fillEdges stages the bytes of the first and last block that the commit
// [headStart+lead, end) does not cover: from the cached tail block, as zeros past
// EOF, or read from the file (both reads in one submission).
func (w *directWriter) fillEdges(headStart, lead, end int64) error {
	var dsts [2][]byte
	nr := 0
	if lead > 0 {
		dsts[nr] = w.stage[:directBlockBytes]
		nr += w.fillBlock(headStart, dsts[nr], &w.comps[nr])
	}
	endBlock := end &^ (directBlockBytes - 1)
	if end != endBlock && (lead == 0 || endBlock != headStart) {
		dsts[nr] = w.stage[endBlock-headStart:][:directBlockBytes]
		nr += w.fillBlock(endBlock, dsts[nr], &w.comps[nr])
	}
	if nr == 0 {
		return nil
	}
	if _, err := w.ring.SubmitAndWait(nr); err != nil {
		return fmt.Errorf("flush: uring-direct: read %s: %w", w.name, err)
	}
	for i := range nr {
		if err := w.comps[i].Err(); err != nil {
			return fmt.Errorf("flush: uring-direct: read block of %s: %w", w.name, err)
		}
		clear(dsts[i][w.comps[i].Res:]) // past EOF
	}
	return nil
}

// fillBlock stages the block at blockOff into dst and returns 0, or prepares a
// READ_FIXED of it into dst and returns 1.
func (w *directWriter) fillBlock(blockOff int64, dst []byte, c *iouring.Completion) int {
	switch {
	case blockOff == w.tailOff:
		copy(dst, w.tail)
		return 0
	case blockOff >= w.sizeBytes:
		clear(dst)
		return 0
	case w.aheadOff >= 0 && blockOff >= w.aheadOff && blockOff+directBlockBytes <= w.aheadOff+w.aheadLen:
		copy(dst, w.ahead[blockOff-w.aheadOff:])
		return 0
	}
	w.blockReads++
	if err := w.ring.ReadFixed(0, dst, 0, uint64(blockOff), iouring.FlagFixedFile, c); err != nil {
		panic("BUG: flush: uring-direct: a read could not be prepared on an idle ring: " + err.Error())
	}
	return 1
}
