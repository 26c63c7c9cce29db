package remoting

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ringmq/ringmq/perf"
)

// Conn is one accepted connection. Its methods are safe from any goroutine unless noted.
type Conn struct {
	srv       *Server
	nc        net.Conn
	id        uint64
	remote    netip.AddrPort
	rd        *frameReader // reader goroutine only
	w         *frameWriter
	stop      chan struct{} // closed by close
	closeOnce sync.Once
	closed    atomic.Bool
	// writeBroken: a write failed; replies are dropped while the reader drains.
	writeBroken atomic.Bool
	inflight    atomic.Int32
	serialize   atomic.Uint32 // serialize type of the last request: used by ReplyTo
	hooks       struct {
		sync.Mutex
		fns []func(*Conn)
		ran bool
	}
}

func newConn(s *Server, nc net.Conn) *Conn {
	c := &Conn{srv: s, nc: nc, id: s.nextConnID.Add(1), stop: make(chan struct{})}
	if ta, ok := nc.RemoteAddr().(*net.TCPAddr); ok {
		c.remote = ta.AddrPort()
	}
	c.rd = newFrameReader(nc, s.lim)
	c.w = newFrameWriter(nc, c.written)
	return c
}

// ID returns the connection's id, unique within its server.
func (c *Conn) ID() uint64 { return c.id }

// RemoteAddr returns the peer's address (the zero AddrPort for non-TCP connections).
func (c *Conn) RemoteAddr() netip.AddrPort { return c.remote }

// Closed reports whether the connection was closed.
func (c *Conn) Closed() bool { return c.closed.Load() }

// OnClose registers fn to run once when the connection closes (on the goroutine that closes it; it must
// not block). Registered after the close, fn runs at once.
func (c *Conn) OnClose(fn func(*Conn)) {
	c.hooks.Lock()
	if !c.hooks.ran {
		c.hooks.fns = append(c.hooks.fns, fn)
		c.hooks.Unlock()
		return
	}
	c.hooks.Unlock()
	fn(c)
}

// Close closes the connection; queued replies are dropped (their release hooks run).
func (c *Conn) Close() { c.close() }

func (c *Conn) close() {
	c.closeOnce.Do(func() {
		c.closed.Store(true)
		close(c.stop)
		_ = c.nc.Close()
		c.srv.removeConn(c)
		c.hooks.Lock()
		fns := c.hooks.fns
		c.hooks.fns, c.hooks.ran = nil, true
		c.hooks.Unlock()
		for _, fn := range fns {
			fn(c)
		}
	})
}

func (c *Conn) readLoop() {
	defer c.srv.conns.Done()
	for {
		cmd, err := c.rd.next()
		if err != nil {
			c.readFailed(err)
			return
		}
		// Replies to a run of pipelined frames are gathered and written by this goroutine when the run
		// ends (one writev, no hand-off to the writer); ReplyTo from elsewhere still wakes the writer.
		c.w.hold()
		c.dispatch(cmd)
		if !c.rd.buffered() {
			if err := c.w.flushHeld(); err != nil {
				c.writeFailed(err)
			}
		}
	}
}

// writeDrainTime bounds how long the reader keeps reading after a write failed.
const writeDrainTime = time.Second

// writeFailed stops the writing but not yet the reading: a client that sends oneway
// requests (offset commits, UNREGISTER_CLIENT) and closes its socket before reading our
// last reply makes that reply's write fail, and the requests it sent first are still in
// our socket. The reader serves them (their replies are dropped) until the input ends or
// writeDrainTime passes, then closes the connection.
func (c *Conn) writeFailed(err error) {
	if c.writeBroken.Swap(true) {
		return
	}
	if !c.closed.Load() {
		c.srv.log.Info("remoting: closing connection: write failed", "conn", c.id, "remote", c.remote.String(),
			"err", err)
	}
	c.w.closeAndDrop()
	if c.srv.draining.Load() {
		return // Shutdown already bounds the reading
	}
	if derr := c.nc.SetReadDeadline(time.Now().Add(writeDrainTime)); derr != nil {
		c.close()
	}
}

// readFailed closes the connection for its input, except when Shutdown stopped the reading: then the
// connection stays open until its in-flight replies are written.
func (c *Conn) readFailed(err error) {
	log := c.srv.log
	switch {
	case c.srv.draining.Load() && errors.Is(err, os.ErrDeadlineExceeded):
		return
	case errors.Is(err, ErrFrameTooLarge) || errors.Is(err, ErrMalformedFrame):
		log.Warn("remoting: closing connection: bad input", "conn", c.id, "remote", c.remote.String(), "err", err)
	case errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || c.writeBroken.Load():
		log.Debug("remoting: connection closed", "conn", c.id, "remote", c.remote.String())
	default:
		log.Info("remoting: closing connection: read failed", "conn", c.id, "remote", c.remote.String(), "err", err)
	}
	c.close()
}

func (c *Conn) writeLoop() {
	defer c.srv.conns.Done()
	if err := c.w.run(c.stop); err != nil {
		c.writeFailed(err)
		return
	}
	c.close()
}

// dispatch runs on the reader goroutine for each decoded frame.
func (c *Conn) dispatch(cmd *Command) {
	if cmd.Flag&FlagResponse != 0 {
		return // the server sends only oneway requests; answers to them are dropped, as Java does
	}
	c.serialize.Store(uint32(cmd.SerializeType))
	if !c.acquire() {
		if cmd.Flag&FlagOneway == 0 {
			c.replyBusy(cmd)
		}
		return
	}
	c.srv.h.Serve(c, cmd)
}

// acquire takes an in-flight slot on the connection and on the server.
func (c *Conn) acquire() bool {
	if c.inflight.Add(1) > int32(c.srv.cfg.MaxInFlightPerConn) {
		c.inflight.Add(-1)
		return false
	}
	if !c.srv.acquire() {
		c.inflight.Add(-1)
		return false
	}
	return true
}

func (c *Conn) releaseSlot() {
	if c.inflight.Add(-1) < 0 {
		panic("BUG: remoting: more Reply/ReplyTo/Done calls than requests on a connection")
	}
	c.srv.release()
}

// InFlight returns the connection's requests served and not yet answered.
func (c *Conn) InFlight() int { return int(c.inflight.Load()) }

// replyBusy answers SYSTEM_BUSY without calling the handler, then applies backpressure to the reader when
// too many uncounted answers are queued.
func (c *Conn) replyBusy(req *Command) {
	r := getResponse()
	r.Code = RespSystemBusy
	r.SetRemark("[REJECTREQUEST]system busy, too many requests in flight")
	r.opaque, r.flag, r.serialize = req.Opaque, FlagResponse, req.SerializeType
	r.RequestCode, r.Stamps = req.Code, req.Stamps
	c.send(r)
	limit := c.srv.cfg.MaxInFlightPerConn + MaxQueuedUncountedPerConn
	if c.w.queued() <= limit {
		return
	}
	if err := c.w.flushHeld(); err != nil { // write what is held before waiting for the writer
		c.writeFailed(err)
		return
	}
	for c.w.queued() > limit {
		select {
		case <-c.w.drain:
		case <-c.stop:
			return
		}
	}
}

// NewResponse returns an empty Response from the pool.
func (c *Conn) NewResponse() *Response { return getResponse() }

// Reply answers req: it copies the opaque, sets flag|=FlagResponse and uses req's header type. r belongs
// to the server from here on. A reply to a oneway request is not sent, but still ends the request.
func (c *Conn) Reply(req *Command, r *Response) {
	r.opaque, r.flag, r.serialize = req.Opaque, FlagResponse, req.SerializeType
	r.RequestCode, r.Stamps = req.Code, req.Stamps
	r.counted = c
	if req.Flag&FlagOneway != 0 {
		c.finish(r)
		return
	}
	c.send(r)
}

// ReplyTo answers the request with this opaque later, from any goroutine. After the connection closed
// the reply is dropped (its release hook runs) and the request still ends.
func (c *Conn) ReplyTo(opaque int32, r *Response) {
	r.opaque, r.flag, r.serialize = opaque, FlagResponse, uint8(c.serialize.Load())
	r.counted = c
	c.send(r)
}

// Done ends a request that gets no answer (for example a oneway UPDATE_CONSUMER_OFFSET).
func (c *Conn) Done(req *Command) { c.releaseSlot() }

// SendRequestOneway sends a broker -> client request with flag=FlagOneway (CHECK_TRANSACTION_STATE,
// NOTIFY_CONSUMER_IDS_CHANGED). ext and body are copied. It fails when the connection is closed, and with
// ErrBusy when the connection's output queue is full.
func (c *Conn) SendRequestOneway(code int16, ext []Field, body []byte) error {
	if c.closed.Load() {
		return errWriterClosed
	}
	if c.w.queued() > c.srv.cfg.MaxInFlightPerConn+MaxQueuedUncountedPerConn {
		return ErrBusy
	}
	r := newRequest(code, ext, body, c.srv.nextOpaque.Add(1), FlagOneway, ServerVersion)
	if err := c.w.enqueue(r); err != nil {
		r.release()
		return err
	}
	return nil
}

// send encodes r and queues it; when the connection is closed r is finished at once.
func (c *Conn) send(r *Response) {
	if err := c.w.enqueue(r.encode(LangGo, ServerVersion)); err != nil {
		c.finish(r)
	}
}

// written is the writer's finish callback: the OnWritten hook for replies that were written, then finish.
func (c *Conn) written(r *Response, writtenNs int64) {
	if hook := c.srv.cfg.OnWritten; hook != nil && writtenNs != 0 && r.flag&FlagResponse != 0 {
		r.Stamps.MarkAt(perf.StageWritten, writtenNs)
		hook(c, r)
	}
	c.finish(r)
}

// finish ends r's life: its in-flight slot (if any), its release hook, the pool.
func (c *Conn) finish(r *Response) {
	if r.counted != nil {
		r.counted.releaseSlot()
	}
	r.release()
}

// encode writes r's length prefix and header into r.head.
func (r *Response) encode(lang byte, version int16) *Response {
	if r.handed {
		panic("BUG: remoting: a Response was handed over twice")
	}
	r.handed = true
	n := r.bodyLen()
	if n > 1<<31-1-framePrefixBytes-len(r.head) {
		panic("BUG: remoting: response body over 2 GiB")
	}
	h := header{code: r.Code, lang: lang, version: version, opaque: r.opaque, flag: r.flag,
		serialize: r.serialize, remark: r.Remark, ext: r.Ext}
	r.head = appendFramePrefix(r.head[:0], &h, n)
	return r
}
