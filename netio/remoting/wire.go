package remoting

import (
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"

	"github.com/ringmq/ringmq/perf"
)

// readBufBytes is the initial read buffer of a connection; frames larger than it grow the buffer (up to
// the frame limit), and the buffer shrinks back after shrinkAfterFrames frames that would have fitted.
const (
	readBufBytes      = 64 << 10
	shrinkAfterFrames = 1024
)

// frameReader splits a byte stream into frames and decodes them. One goroutine owns it. The Command that
// next returns, and every view in it, is valid until the following call to next.
type frameReader struct {
	src     io.Reader
	lim     frameLimits
	buf     []byte
	r, w    int
	readErr error // a Read error that came with bytes; returned once those bytes are used up
	readNs  int64 // perf.Now() after the last Read that returned bytes
	small   int   // frames in a row that fitted in readBufBytes while buf was larger
	dec     decoder
	cmd     Command
}

func newFrameReader(src io.Reader, lim frameLimits) *frameReader {
	return &frameReader{src: src, lim: lim, buf: make([]byte, readBufBytes)}
}

// next returns the next frame. Errors: the Read error (io.EOF on a clean close), ErrFrameTooLarge or
// ErrMalformedFrame; after an error the stream is unusable.
func (fr *frameReader) next() (*Command, error) {
	for {
		if fr.r == fr.w {
			fr.r, fr.w = 0, 0
		}
		need := frameLenBytes
		if fr.w-fr.r >= frameLenBytes {
			size, err := fr.lim.frameSize(fr.buf[fr.r:fr.w])
			if err != nil {
				return nil, err
			}
			if fr.w-fr.r >= size {
				frame := fr.buf[fr.r : fr.r+size : fr.r+size]
				fr.r += size
				fr.noteSize(size)
				if err := fr.dec.decodeFrame(fr.lim, frame, &fr.cmd); err != nil {
					return nil, err
				}
				fr.cmd.Stamps.MarkAt(perf.StageRead, fr.readNs)
				fr.cmd.Stamps.Mark(perf.StageDecoded)
				return &fr.cmd, nil
			}
			need = size
		}
		if fr.readErr != nil {
			if fr.readErr == io.EOF && fr.w > fr.r {
				return nil, io.ErrUnexpectedEOF
			}
			return nil, fr.readErr
		}
		fr.makeRoom(need)
		n, err := fr.src.Read(fr.buf[fr.w:])
		fr.w += n
		if n > 0 {
			fr.readNs = perf.Now()
		}
		if err != nil {
			fr.readErr = err
		}
	}
}

// buffered reports whether next would return without reading: a whole frame (or a bad length prefix)
// is buffered, or a read error is pending.
func (fr *frameReader) buffered() bool {
	if fr.readErr != nil {
		return true
	}
	if fr.w-fr.r < frameLenBytes {
		return false
	}
	size, err := fr.lim.frameSize(fr.buf[fr.r:fr.w])
	return err != nil || fr.w-fr.r >= size
}

// makeRoom ensures the pending frame (need bytes from fr.r) fits in buf after fr.r.
func (fr *frameReader) makeRoom(need int) {
	if len(fr.buf)-fr.r >= need && fr.w < len(fr.buf) {
		return
	}
	if need <= len(fr.buf) {
		copy(fr.buf, fr.buf[fr.r:fr.w])
	} else {
		nb := make([]byte, min(max(need, 2*len(fr.buf)), fr.lim.maxFrameBytes)) // need <= maxFrameBytes
		copy(nb, fr.buf[fr.r:fr.w])
		fr.buf = nb
		fr.small = 0
	}
	fr.w -= fr.r
	fr.r = 0
}

// noteSize shrinks a grown buffer once large frames stopped coming.
func (fr *frameReader) noteSize(size int) {
	if len(fr.buf) == readBufBytes {
		return
	}
	if size > readBufBytes/2 {
		fr.small = 0
		return
	}
	fr.small++
	if fr.small >= shrinkAfterFrames && fr.w-fr.r <= readBufBytes {
		nb := make([]byte, readBufBytes)
		fr.w = copy(nb, fr.buf[fr.r:fr.w])
		fr.r = 0
		fr.buf = nb
		fr.small = 0
	}
}

// errWriterClosed is returned by enqueue once the writer stopped.
var errWriterClosed = errors.New("remoting: connection closed")

// frameWriter owns a connection's output. Producers (any goroutine) enqueue encoded Responses. Whoever
// holds the owner flag takes the whole queue under the lock, writes it with one writev (net.Buffers)
// with no lock held, then finishes each Response (accounting, release hook, pool). The owner is the
// writer goroutine (run), or the server's reader: it holds wake-ups while it serves a run of buffered
// frames (hold), then writes every reply queued meanwhile itself (flushHeld) before it reads again, so
// a synchronous reply needs no hand-off to another goroutine. (The client keeps the writer goroutine:
// callers writing directly cost a syscall per request and lost batching in the pipelined benchmark.)
// Whoever releases the owner flag with responses still queued wakes the writer goroutine, so nothing
// waits for a later enqueue.
type frameWriter struct {
	nc net.Conn
	// finish is called once per Response: after it was written (writtenNs = perf.Now() after the
	// syscall returned) or when it was dropped (writtenNs = 0).
	finish func(r *Response, writtenNs int64)
	wake   chan struct{} // cap 1: the queue became non-empty
	drain  chan struct{} // cap 1: a batch was written (reader backpressure)
	owner  atomic.Bool   // set while a goroutine writes to nc
	mu     struct {
		sync.Mutex
		q         []*Response
		closed    bool
		held      bool // the reader will flush: enqueue need not wake the writer
		maxQueued int  // high-water mark of len(q), for tests and debugging
	}
	batch []*Response // owner's: the batch being written
	iov   [][]byte    // owner's: backing array of the net.Buffers
	bufs  net.Buffers // owner's; a field so WriteTo's receiver does not escape per call
}

func newFrameWriter(nc net.Conn, finish func(r *Response, writtenNs int64)) *frameWriter {
	return &frameWriter{nc: nc, finish: finish, wake: make(chan struct{}, 1), drain: make(chan struct{}, 1)}
}

// enqueue queues an encoded Response and wakes the writer (unless held). On errWriterClosed the caller
// still owns r.
func (w *frameWriter) enqueue(r *Response) error {
	w.mu.Lock()
	if w.mu.closed {
		w.mu.Unlock()
		return errWriterClosed
	}
	w.mu.q = append(w.mu.q, r)
	w.mu.maxQueued = max(w.mu.maxQueued, len(w.mu.q))
	held := w.mu.held
	w.mu.Unlock()
	if !held {
		w.signal()
	}
	return nil
}

func (w *frameWriter) signal() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// hold makes enqueues skip waking the writer until flushHeld: the caller promises to call flushHeld
// before it blocks.
func (w *frameWriter) hold() {
	w.mu.Lock()
	w.mu.held = true
	w.mu.Unlock()
}

// flushHeld ends hold and writes what is queued on the calling goroutine, or leaves it to the current
// owner. It returns the write error of a direct write.
func (w *frameWriter) flushHeld() error {
	w.mu.Lock()
	w.mu.held = false
	n := len(w.mu.q)
	w.mu.Unlock()
	if n == 0 {
		return nil
	}
	if ok, err := w.tryWrite(); ok {
		return err
	}
	w.signal()
	return nil
}

// tryWrite writes the queue if it can take the owner flag; ok reports whether it did.
func (w *frameWriter) tryWrite() (ok bool, err error) {
	if !w.owner.CompareAndSwap(false, true) {
		return false, nil
	}
	err = w.writeQueued()
	w.owner.Store(false)
	if err == nil && w.queued() > 0 {
		w.signal()
	}
	return true, err
}

// queued returns the number of queued Responses.
func (w *frameWriter) queued() int {
	w.mu.Lock()
	n := len(w.mu.q)
	w.mu.Unlock()
	return n
}

// run writes on wake-ups until stop is closed or a write fails; then it drops (finishes) whatever is
// queued and refuses further enqueues. It returns the write error, or nil when stopped.
func (w *frameWriter) run(stop <-chan struct{}) error {
	for {
		select {
		case <-w.wake:
		case <-stop:
			w.closeAndDrop()
			return nil
		}
		if _, err := w.tryWrite(); err != nil {
			w.closeAndDrop()
			return err
		}
	}
}

// writeQueued writes every queued Response in one writev. Only the owner calls it.
func (w *frameWriter) writeQueued() error {
	w.mu.Lock()
	w.batch, w.mu.q = w.mu.q, w.batch[:0]
	w.mu.Unlock()
	if len(w.batch) == 0 {
		return nil
	}
	iov := w.iov[:0]
	for _, r := range w.batch {
		iov = append(iov, r.head)
		for _, b := range r.Body {
			if len(b) > 0 {
				iov = append(iov, b)
			}
		}
	}
	w.iov = iov
	w.bufs = iov
	_, err := w.bufs.WriteTo(w.nc)
	writtenNs := perf.Now()
	if err != nil {
		writtenNs = 0
	}
	w.bufs = nil
	clear(w.iov) // drop references to bodies now written
	for i, r := range w.batch {
		w.finish(r, writtenNs)
		w.batch[i] = nil
	}
	select {
	case w.drain <- struct{}{}:
	default:
	}
	return err
}

func (w *frameWriter) closeAndDrop() {
	w.mu.Lock()
	w.mu.closed = true
	q := w.mu.q
	w.mu.q = nil
	w.mu.Unlock()
	for _, r := range q {
		w.finish(r, 0)
	}
	select {
	case w.drain <- struct{}{}:
	default:
	}
}
