package remoting

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ringmq/ringmq/perf"
)

// Client defaults.
const (
	DefaultDialTimeout       = 3 * time.Second
	DefaultCallTimeout       = 3 * time.Second
	DefaultClientMaxInFlight = 1024
	// ClientVersion is the version the client writes: the one the Go client v2.1.2 sends.
	ClientVersion    int16 = 317
	minSweepInterval       = 10 * time.Millisecond
)

// Client errors.
var (
	ErrClosed  = errors.New("remoting: client closed")
	ErrTimeout = errors.New("remoting: call timed out")
)

// ClientConfig configures Dial. Zero values take the defaults.
type ClientConfig struct {
	DialTimeout   time.Duration // default 3 s
	CallTimeout   time.Duration // InvokeAsync's timeout; default 3 s (Invoke uses its ctx)
	MaxInFlight   int           // calls awaiting an answer; default 1024
	MaxFrameBytes int           // default 16 MiB
	// OnRequest receives server -> client requests (CHECK_TRANSACTION_STATE 39, NOTIFY_CONSUMER_IDS_CHANGED
	// 40, ...) on the client's reader goroutine; req is valid until it returns. It must not block.
	OnRequest func(c *Client, req *Command)
	Logger    *slog.Logger
}

// Client is one connection to a remoting server. Its methods are safe for concurrent use. Calls are
// matched to answers by opaque; at most MaxInFlight calls wait at once: Invoke blocks for a slot (bounded by
// its ctx), InvokeAsync returns ErrBusy.
type Client struct {
	cfg    ClientConfig
	nc     net.Conn
	rd     *frameReader
	w      *frameWriter
	slots  chan struct{} // one token per call in flight
	opaque atomic.Int32
	stop   chan struct{}
	wg     sync.WaitGroup
	once   sync.Once
	mu     struct {
		sync.Mutex
		pending map[int32]*call
		err     error // set when the client stopped
	}
}

// call is one request awaiting its answer. Exactly one of ch (Invoke) and cb (InvokeAsync) is set.
type call struct {
	ch         chan callResult
	cb         func(*Command, error)
	deadlineNs int64
}

// callPool recycles InvokeAsync's calls so a steady stream of async calls allocates nothing.
var callPool = sync.Pool{New: func() any { return new(call) }}

type callResult struct {
	cmd *Command
	err error
}

// Dial connects to addr ("ip:port").
func Dial(addr string, cfg ClientConfig) (*Client, error) {
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = DefaultDialTimeout
	}
	if cfg.CallTimeout <= 0 {
		cfg.CallTimeout = DefaultCallTimeout
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = DefaultClientMaxInFlight
	}
	if cfg.MaxFrameBytes <= 0 {
		cfg.MaxFrameBytes = DefaultMaxFrameBytes
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	nc, err := net.DialTimeout("tcp", addr, cfg.DialTimeout)
	if err != nil {
		return nil, fmt.Errorf("remoting: dial %s: %w", addr, err)
	}
	if tc, ok := nc.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	c := &Client{cfg: cfg, nc: nc, slots: make(chan struct{}, cfg.MaxInFlight), stop: make(chan struct{})}
	c.mu.pending = make(map[int32]*call, cfg.MaxInFlight)
	c.rd = newFrameReader(nc, frameLimits{maxFrameBytes: cfg.MaxFrameBytes, maxHeaderBytes: cfg.MaxFrameBytes})
	c.w = newFrameWriter(nc, func(r *Response, _ int64) { r.release() })
	c.wg.Add(3)
	go c.readLoop()
	go c.writeLoop()
	go c.sweepLoop()
	return c, nil
}

// RemoteAddr returns the server's address.
func (c *Client) RemoteAddr() net.Addr { return c.nc.RemoteAddr() }

// Close closes the connection, fails every waiting call with ErrClosed and waits for the client's
// goroutines. It must not be called from a callback or OnRequest (they run on those goroutines).
func (c *Client) Close() error {
	c.shutdown(ErrClosed)
	c.wg.Wait()
	return nil
}

// Err returns why the client stopped, or nil while it works.
func (c *Client) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mu.err
}

func (c *Client) shutdown(err error) {
	c.once.Do(func() {
		c.mu.Lock()
		c.mu.err = err
		pending := c.mu.pending
		c.mu.pending = nil
		c.mu.Unlock()
		close(c.stop)
		_ = c.nc.Close()
		for _, cl := range pending {
			c.complete(cl, nil, err)
		}
	})
}

// Invoke sends a request and waits for its answer; the returned Command is the caller's (a copy).
// A non-SUCCESS code is not an error: check Code.
func (c *Client) Invoke(ctx context.Context, code int16, ext []Field, body []byte) (*Command, error) {
	select {
	case c.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("remoting: invoke %s: %w", RequestName(code), ctx.Err())
	case <-c.stop:
		return nil, fmt.Errorf("remoting: invoke %s: %w", RequestName(code), c.Err())
	}
	cl := &call{ch: make(chan callResult, 1)}
	opaque, err := c.start(cl, code, ext, body)
	if err != nil {
		return nil, fmt.Errorf("remoting: invoke %s: %w", RequestName(code), err)
	}
	select {
	case res := <-cl.ch:
		if res.err != nil {
			return nil, fmt.Errorf("remoting: invoke %s: %w", RequestName(code), res.err)
		}
		return res.cmd, nil
	case <-ctx.Done():
		if c.forget(opaque) {
			<-c.slots
		}
		return nil, fmt.Errorf("remoting: invoke %s: %w", RequestName(code), ctx.Err())
	}
}

// InvokeAsync sends a request; cb gets the answer (or ErrTimeout after CallTimeout, ErrClosed) exactly
// once, on the client's reader or timeout goroutine. The *Command passed to cb is valid only until cb
// returns. cb must not block; it may call InvokeAsync. When MaxInFlight calls wait, ErrBusy at once.
func (c *Client) InvokeAsync(code int16, ext []Field, body []byte, cb func(*Command, error)) error {
	if cb == nil {
		panic("BUG: remoting: InvokeAsync with a nil callback")
	}
	select {
	case c.slots <- struct{}{}:
	default:
		return ErrBusy
	}
	cl := callPool.Get().(*call)
	cl.cb, cl.deadlineNs = cb, perf.Now()+int64(c.cfg.CallTimeout)
	if _, err := c.start(cl, code, ext, body); err != nil {
		return fmt.Errorf("remoting: invoke %s: %w", RequestName(code), err)
	}
	return nil
}

// InvokeOneway sends a request with the oneway flag and waits for nothing.
func (c *Client) InvokeOneway(code int16, ext []Field, body []byte) error {
	r := c.request(code, ext, body, FlagOneway)
	if err := c.w.enqueue(r); err != nil { // errWriterClosed: r is still ours
		r.release()
		return fmt.Errorf("remoting: invoke oneway %s: %w", RequestName(code), c.errOr(err))
	}
	return nil
}

// start registers cl under a fresh opaque and queues the request. On error the slot was given back.
func (c *Client) start(cl *call, code int16, ext []Field, body []byte) (int32, error) {
	r := c.request(code, ext, body, 0)
	opaque := r.opaque
	c.mu.Lock()
	if c.mu.pending == nil {
		err := c.mu.err
		c.mu.Unlock()
		r.release()
		<-c.slots
		return 0, err
	}
	c.mu.pending[opaque] = cl
	c.mu.Unlock()
	err := c.w.enqueue(r)
	if err == nil {
		return opaque, nil
	}
	r.release() // errWriterClosed: never queued, still ours
	// Whoever removes the call from the table reports it: here as the returned error, or (a
	// concurrent shutdown) through the call's own path.
	if !c.forget(opaque) {
		return opaque, nil
	}
	<-c.slots
	return 0, c.errOr(err)
}

func (c *Client) errOr(err error) error {
	if e := c.Err(); e != nil {
		return e
	}
	return err
}

// request builds an encoded request frame under a fresh opaque; ext and body are copied into it.
func (c *Client) request(code int16, ext []Field, body []byte, flag int32) *Response {
	return newRequest(code, ext, body, c.opaque.Add(1), flag, ClientVersion)
}

// forget removes a pending call; true when it was still pending (the caller then owns its slot).
func (c *Client) forget(opaque int32) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.mu.pending[opaque]; ok {
		delete(c.mu.pending, opaque)
		return true
	}
	return false
}

// complete delivers a call's outcome; the call is already out of the pending table.
func (c *Client) complete(cl *call, cmd *Command, err error) {
	<-c.slots
	if cb := cl.cb; cb != nil {
		*cl = call{}
		callPool.Put(cl)
		cb(cmd, err)
		return
	}
	if cmd != nil {
		cmd = cmd.Clone()
	}
	cl.ch <- callResult{cmd: cmd, err: err}
}

func (c *Client) readLoop() {
	defer c.wg.Done()
	for {
		cmd, err := c.rd.next()
		if err != nil {
			c.shutdown(fmt.Errorf("%w: read: %w", ErrClosed, err))
			return
		}
		if cmd.Flag&FlagResponse == 0 {
			if c.cfg.OnRequest != nil {
				c.cfg.OnRequest(c, cmd)
			}
			continue
		}
		c.mu.Lock()
		cl, ok := c.mu.pending[cmd.Opaque]
		if ok {
			delete(c.mu.pending, cmd.Opaque)
		}
		c.mu.Unlock()
		if ok {
			c.complete(cl, cmd, nil)
		}
	}
}

func (c *Client) writeLoop() {
	defer c.wg.Done()
	if err := c.w.run(c.stop); err != nil {
		c.shutdown(fmt.Errorf("%w: write: %w", ErrClosed, err))
	}
}

// sweepLoop times out async calls. Sync calls time out through their ctx.
func (c *Client) sweepLoop() {
	defer c.wg.Done()
	t := time.NewTicker(max(c.cfg.CallTimeout/8, minSweepInterval))
	defer t.Stop()
	var expired []*call
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
		}
		now := perf.Now()
		c.mu.Lock()
		for op, cl := range c.mu.pending {
			if cl.cb != nil && now >= cl.deadlineNs {
				delete(c.mu.pending, op)
				expired = append(expired, cl)
			}
		}
		c.mu.Unlock()
		for i, cl := range expired {
			c.complete(cl, nil, ErrTimeout)
			expired[i] = nil
		}
		expired = expired[:0]
	}
}
