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
)

// Server defaults and fixed limits.
const (
	DefaultMaxInFlightPerConn = 4096
	DefaultMaxInFlightTotal   = 65536
	// MaxQueuedUncountedPerConn bounds the responses a connection may have queued beyond its in-flight
	// requests (SYSTEM_BUSY answers, broker -> client oneway requests). Past it the reader stops reading
	// until the writer drains, and SendRequestOneway returns ErrBusy.
	MaxQueuedUncountedPerConn = 1024
	// ServerVersion is the version the server writes in its headers: Java 4.9.7's MQVersion ordinal.
	ServerVersion int16 = 407
	// acceptBackoffMax caps the pause after a failing Accept (EMFILE and the like).
	acceptBackoffMax = time.Second
)

// ErrBusy is returned when a bounded queue is full.
var ErrBusy = errors.New("remoting: too many requests in flight")

// ServerConfig configures a Server. Zero values take the defaults.
type ServerConfig struct {
	MaxFrameBytes      int // whole frame including the 4-byte length; default 16 MiB
	MaxHeaderBytes     int // default 64 KiB
	MaxInFlightPerConn int // requests served but not yet answered, per connection; default 4096
	MaxInFlightTotal   int // the same over all connections; default 65536
	Logger             *slog.Logger
	// OnWritten, when set, is called for every reply whose bytes were written (SYSTEM_BUSY ones included),
	// after Stamps got StageWritten, on the goroutine that wrote it (the connection's writer or reader).
	// r is read-only and valid only during the call. It must not block (perf.Recorder.Record fits).
	OnWritten func(c *Conn, r *Response)
}

func (c *ServerConfig) applyDefaults() {
	if c.MaxFrameBytes <= 0 {
		c.MaxFrameBytes = DefaultMaxFrameBytes
	}
	if c.MaxHeaderBytes <= 0 {
		c.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if c.MaxInFlightPerConn <= 0 {
		c.MaxInFlightPerConn = DefaultMaxInFlightPerConn
	}
	if c.MaxInFlightTotal <= 0 {
		c.MaxInFlightTotal = DefaultMaxInFlightTotal
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Handler serves requests; see the package doc for the in-flight rule.
type Handler interface {
	// Serve handles one request. It runs on the connection's reader goroutine and must not block for long.
	// Synchronous answers: c.Reply. Deferred answers (durable send, long poll): copy what you need (req is
	// invalid after Serve returns), keep the opaque, answer later from any goroutine with c.ReplyTo.
	// Requests that get no answer: c.Done(req). Exactly one of Reply, ReplyTo or Done per request.
	Serve(c *Conn, req *Command)
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(c *Conn, req *Command)

// Serve calls f.
func (f HandlerFunc) Serve(c *Conn, req *Command) { f(c, req) }

// Server is a RocketMQ remoting server: one reader and one writer goroutine per connection.
type Server struct {
	cfg        ServerConfig
	h          Handler
	log        *slog.Logger
	lim        frameLimits
	inflight   atomic.Int64
	nextConnID atomic.Uint64
	nextOpaque atomic.Int32
	draining   atomic.Bool
	idle       chan struct{} // cap 1: in-flight reached 0 while draining
	conns      sync.WaitGroup
	mu         struct {
		sync.Mutex
		listeners map[net.Listener]struct{}
		conns     map[*Conn]struct{}
		addr      net.Addr
		shutdown  bool
	}
}

// NewServer returns a server that sends every request to h.
func NewServer(cfg ServerConfig, h Handler) *Server {
	if h == nil {
		panic("BUG: remoting.NewServer with a nil Handler")
	}
	cfg.applyDefaults()
	s := &Server{cfg: cfg, h: h, log: cfg.Logger, idle: make(chan struct{}, 1),
		lim: frameLimits{maxFrameBytes: cfg.MaxFrameBytes, maxHeaderBytes: cfg.MaxHeaderBytes}}
	s.mu.listeners = make(map[net.Listener]struct{})
	s.mu.conns = make(map[*Conn]struct{})
	return s
}

// Serve accepts connections on ln until Shutdown; then it returns nil. Other Accept failures that are not
// transient are returned wrapped.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.mu.shutdown {
		s.mu.Unlock()
		_ = ln.Close()
		return nil
	}
	s.mu.listeners[ln] = struct{}{}
	if s.mu.addr == nil {
		s.mu.addr = ln.Addr()
	}
	s.mu.Unlock()
	backoff := time.Duration(0)
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.isShutdown() {
				return nil
			}
			if errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("remoting: accept on %s: %w", ln.Addr(), err)
			}
			backoff = min(max(2*backoff, 5*time.Millisecond), acceptBackoffMax)
			s.log.Warn("remoting: accept failed", "addr", ln.Addr().String(), "err", err, "retry_in", backoff)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		s.startConn(nc)
	}
}

// Addr returns the address of the first listener passed to Serve (nil before).
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mu.addr
}

func (s *Server) isShutdown() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mu.shutdown
}

func (s *Server) startConn(nc net.Conn) {
	if tc, ok := nc.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	c := newConn(s, nc)
	s.mu.Lock()
	if s.mu.shutdown {
		s.mu.Unlock()
		_ = nc.Close()
		return
	}
	s.mu.conns[c] = struct{}{}
	s.conns.Add(2) // under mu: Shutdown's Wait starts only after it set shutdown under mu
	s.mu.Unlock()
	go c.readLoop()
	go c.writeLoop()
}

func (s *Server) removeConn(c *Conn) {
	s.mu.Lock()
	delete(s.mu.conns, c)
	s.mu.Unlock()
}

// acquire takes a global in-flight slot.
func (s *Server) acquire() bool {
	if s.inflight.Add(1) > int64(s.cfg.MaxInFlightTotal) {
		s.release()
		return false
	}
	return true
}

func (s *Server) release() {
	n := s.inflight.Add(-1)
	if n < 0 {
		panic("BUG: remoting: server in-flight count below zero")
	}
	if n == 0 && s.draining.Load() {
		select {
		case s.idle <- struct{}{}:
		default:
		}
	}
}

// InFlight returns the number of requests served and not yet answered.
func (s *Server) InFlight() int64 { return s.inflight.Load() }

// Shutdown stops accepting, stops reading new requests, waits until every in-flight request was answered
// (its reply written) or released with Done, then closes every connection and waits for their goroutines.
// When ctx ends first, connections are closed at once (pending deferred replies are dropped) and ctx's
// error is returned.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.mu.shutdown = true
	lns := make([]net.Listener, 0, len(s.mu.listeners))
	for ln := range s.mu.listeners {
		lns = append(lns, ln)
	}
	conns := make([]*Conn, 0, len(s.mu.conns))
	for c := range s.mu.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	s.draining.Store(true)
	for _, ln := range lns {
		_ = ln.Close()
	}
	for _, c := range conns {
		_ = c.nc.SetReadDeadline(time.Unix(1, 0)) // wakes the reader; it stops without closing
	}
	var err error
	for err == nil && s.inflight.Load() > 0 {
		select {
		case <-s.idle:
		case <-ctx.Done():
			err = fmt.Errorf("remoting: shutdown with %d requests in flight: %w", s.inflight.Load(), ctx.Err())
		}
	}
	s.mu.Lock()
	conns = conns[:0]
	for c := range s.mu.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.close()
	}
	done := make(chan struct{})
	go func() { s.conns.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		if err == nil {
			err = fmt.Errorf("remoting: shutdown waiting for connections: %w", ctx.Err())
		}
	}
	return err
}
