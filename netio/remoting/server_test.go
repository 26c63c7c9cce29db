package remoting

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ringmq/ringmq/perf"
)

const testTimeout = 10 * time.Second

var quietLog = slog.New(slog.DiscardHandler)

// testServer is a running server and its listening address.
type testServer struct {
	*Server
	addr string
}

// startServer runs a server on 127.0.0.1:0 and shuts it down at the end of the test.
func startServer(t testing.TB, cfg ServerConfig, h Handler) testServer {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = quietLog
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := NewServer(cfg, h)
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return testServer{Server: s, addr: ln.Addr().String()}
}

func dial(t testing.TB, s testServer, cfg ClientConfig) *Client {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = quietLog
	}
	c, err := Dial(s.addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// echo answers every request with its code+1000, its ext fields and body.
var echo = HandlerFunc(func(c *Conn, req *Command) {
	r := c.NewResponse()
	r.Code = req.Code + 1000
	for _, f := range req.Ext {
		r.AddExt(string(f.Key), f.Value)
	}
	r.Body = append(r.Body, req.Body) // valid until written? no: copy, req.Body dies when Serve returns
	r.Body[0] = r.keepBytes(req.Body)
	c.Reply(req, r)
})

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

func TestRoundTripJSON(t *testing.T) {
	s := startServer(t, ServerConfig{}, echo)
	c := dial(t, s, ClientConfig{})
	ext := []Field{{Key: []byte("topic"), Value: []byte("T\x01\"x\"")}, {Key: []byte("queueId"), Value: []byte("3")}}
	resp, err := c.Invoke(ctxT(t), ReqSendMessage, ext, []byte("hello"))
	if err != nil {
		t.Fatal(err)
	}
	if resp.Code != 1010 || resp.Flag != FlagResponse || string(resp.Body) != "hello" || resp.SerializeType != SerializeJSON {
		t.Fatalf("got %s", resp)
	}
	if s.Addr() == nil || s.Addr().String() != s.addr {
		t.Fatalf("Addr() = %v, want %s", s.Addr(), s.addr)
	}
	if v, _ := resp.ExtValue("topic"); string(v) != "T\x01\"x\"" {
		t.Fatalf("topic %q", v)
	}
}

// rawConn is a test peer speaking frames by hand.
type rawConn struct {
	t  testing.TB
	nc net.Conn
	fr *frameReader
}

func dialRaw(t testing.TB, s testServer) *rawConn {
	nc, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = nc.Close() })
	_ = nc.SetDeadline(time.Now().Add(testTimeout))
	return &rawConn{t: t, nc: nc, fr: newFrameReader(nc, testLimits)}
}

func (r *rawConn) write(b []byte) {
	if _, err := r.nc.Write(b); err != nil {
		r.t.Fatal(err)
	}
}

func (r *rawConn) read() *Command {
	cmd, err := r.fr.next()
	if err != nil {
		r.t.Fatalf("read: %v", err)
	}
	return cmd.Clone()
}

func TestRoundTripBinaryHeader(t *testing.T) {
	s := startServer(t, ServerConfig{}, echo)
	rc := dialRaw(t, s)
	h := header{code: ReqHeartBeat, lang: LangJava, version: 407, opaque: 9, serialize: SerializeRocketMQ,
		ext: []Field{{Key: []byte("k"), Value: []byte("v")}}}
	rc.write(append(appendFramePrefix(nil, &h, 2), "hi"...))
	resp := rc.read()
	if resp.SerializeType != SerializeRocketMQ || resp.Code != 1034 || resp.Opaque != 9 || resp.Flag != FlagResponse ||
		string(resp.Body) != "hi" || len(resp.Ext) != 1 {
		t.Fatalf("got %s (serialize %d)", resp, resp.SerializeType)
	}
}

func TestPipelinedRequestsAnsweredInOrder(t *testing.T) {
	s := startServer(t, ServerConfig{}, echo)
	rc := dialRaw(t, s)
	const n = 500
	var all []byte
	for i := range n {
		all = append(all, frameOf(SerializeJSON, []byte(`{"code":34,"opaque":`+strconv.Itoa(i+1)+`}`), []byte(strconv.Itoa(i)))...)
	}
	rc.write(all)
	for i := range n {
		resp := rc.read()
		if int(resp.Opaque) != i+1 || string(resp.Body) != strconv.Itoa(i) {
			t.Fatalf("response %d: %s", i, resp)
		}
	}
}

func TestBadFrameClosesOnlyThatConnection(t *testing.T) {
	s := startServer(t, ServerConfig{MaxFrameBytes: 1 << 16}, echo)
	good := dial(t, s, ClientConfig{})
	bad := [][]byte{
		binary.BigEndian.AppendUint32(nil, 1<<20), // frame over the limit
		frameOf(SerializeJSON, []byte(`{"code":`), nil),
		frameOf(7, []byte(`{}`), nil),
	}
	for i, b := range bad {
		rc := dialRaw(t, s)
		rc.write(b)
		if _, err := rc.fr.next(); !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) &&
			!isConnReset(err) {
			t.Fatalf("bad frame %d: got %v, want the connection closed", i, err)
		}
		if _, err := good.Invoke(ctxT(t), ReqHeartBeat, nil, nil); err != nil {
			t.Fatalf("after bad frame %d the good connection failed: %v", i, err)
		}
	}
}

func isConnReset(err error) bool {
	var ne *net.OpError
	return errors.As(err, &ne)
}

// deferrer keeps every request's opaque and answers nothing until told.
type deferrer struct {
	mu      sync.Mutex
	conn    *Conn
	opaques []int32
	arrived chan struct{}
}

func newDeferrer() *deferrer { return &deferrer{arrived: make(chan struct{}, 1024)} }

func (d *deferrer) Serve(c *Conn, req *Command) {
	d.mu.Lock()
	d.conn = c
	d.opaques = append(d.opaques, req.Opaque)
	d.mu.Unlock()
	d.arrived <- struct{}{}
}

func (d *deferrer) replyAll(code int16) int {
	d.mu.Lock()
	ops := d.opaques
	d.opaques = nil
	c := d.conn
	d.mu.Unlock()
	for _, op := range ops {
		r := c.NewResponse()
		r.Code = code
		c.ReplyTo(op, r)
	}
	return len(ops)
}

func TestSystemBusyAtInFlightBound(t *testing.T) {
	d := newDeferrer()
	s := startServer(t, ServerConfig{MaxInFlightPerConn: 2}, d)
	c := dial(t, s, ClientConfig{})
	results := make(chan *Command, 3)
	for range 2 {
		if err := c.InvokeAsync(ReqSendMessage, nil, nil, func(cmd *Command, err error) {
			if err != nil {
				t.Error(err)
			}
			results <- cmd.Clone()
		}); err != nil {
			t.Fatal(err)
		}
		<-d.arrived
	}
	resp, err := c.Invoke(ctxT(t), ReqSendMessage, nil, nil)
	if err != nil || resp.Code != RespSystemBusy {
		t.Fatalf("third request: %v %v, want SYSTEM_BUSY", resp, err)
	}
	if s.InFlight() != 2 {
		t.Fatalf("in flight %d, want 2", s.InFlight())
	}
	if n := d.replyAll(RespSuccess); n != 2 {
		t.Fatalf("deferred %d requests, want 2", n)
	}
	for range 2 {
		if r := <-results; r.Code != RespSuccess {
			t.Fatalf("deferred reply %s", r)
		}
	}
	last := make(chan *Command, 1)
	if err := c.InvokeAsync(ReqSendMessage, nil, nil, func(cmd *Command, err error) { last <- cmd.Clone() }); err != nil {
		t.Fatal(err)
	}
	<-d.arrived // slots are free again: this one reached the handler
	d.replyAll(RespSuccess)
	if r := <-last; r.Code != RespSuccess {
		t.Fatalf("after the bound cleared: %s", r)
	}
}

// TestBusyFloodIsBounded: a peer that pipelines thousands of requests past the bound and reads nothing
// gets every one answered SYSTEM_BUSY once it reads, while the server's queue stays bounded (the reader
// waits for the writer instead of queueing without limit).
func TestBusyFloodIsBounded(t *testing.T) {
	d := newDeferrer()
	s := startServer(t, ServerConfig{MaxInFlightPerConn: 1}, d)
	rc := dialRaw(t, s)
	const n = 20000
	var all []byte
	for i := range n {
		all = append(all, frameOf(SerializeJSON, []byte(`{"code":10,"opaque":`+strconv.Itoa(i+1)+`}`), make([]byte, 64))...)
	}
	writeErr := make(chan error, 1)
	go func() { _, err := rc.nc.Write(all); writeErr <- err }()
	<-d.arrived // the first request holds the only slot
	for i := 1; i < n; i++ {
		resp := rc.read()
		if resp.Code != RespSystemBusy || int(resp.Opaque) != i+1 {
			t.Fatalf("response %d: %s", i, resp)
		}
	}
	if err := <-writeErr; err != nil {
		t.Fatal(err)
	}
	d.mu.Lock()
	sc := d.conn
	d.mu.Unlock()
	sc.w.mu.Lock()
	high := sc.w.mu.maxQueued
	sc.w.mu.Unlock()
	if limit := 1 + MaxQueuedUncountedPerConn + 1; high > limit {
		t.Fatalf("%d responses queued at once, bound %d", high, limit)
	}
	t.Logf("queue high-water mark %d responses", high)
	d.replyAll(RespSuccess)
	if resp := rc.read(); resp.Code != RespSuccess || resp.Opaque != 1 {
		t.Fatalf("deferred answer %s", resp)
	}
}

func TestSystemBusyAtGlobalBound(t *testing.T) {
	d := newDeferrer()
	s := startServer(t, ServerConfig{MaxInFlightTotal: 1}, d)
	c1 := dial(t, s, ClientConfig{})
	c2 := dial(t, s, ClientConfig{})
	done := make(chan *Command, 1)
	if err := c1.InvokeAsync(ReqPullMessage, nil, nil, func(cmd *Command, err error) { done <- cmd.Clone() }); err != nil {
		t.Fatal(err)
	}
	<-d.arrived
	resp, err := c2.Invoke(ctxT(t), ReqPullMessage, nil, nil)
	if err != nil || resp.Code != RespSystemBusy {
		t.Fatalf("second connection: %v %v, want SYSTEM_BUSY", resp, err)
	}
	d.replyAll(RespPullNotFound)
	if r := <-done; r.Code != RespPullNotFound {
		t.Fatalf("got %s", r)
	}
}

func TestShutdownWaitsForDeferredReplies(t *testing.T) {
	d := newDeferrer()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := NewServer(ServerConfig{Logger: quietLog}, d)
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	c, err := Dial(ln.Addr().String(), ClientConfig{Logger: quietLog})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	got := make(chan *Command, 1)
	if err := c.InvokeAsync(ReqSendMessage, nil, nil, func(cmd *Command, err error) {
		if err != nil {
			t.Error(err)
			got <- nil
			return
		}
		got <- cmd.Clone()
	}); err != nil {
		t.Fatal(err)
	}
	<-d.arrived
	shutdown := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		shutdown <- s.Shutdown(ctx)
	}()
	if err := <-served; err != nil { // Serve returns once Shutdown closed the listener
		t.Fatalf("serve: %v", err)
	}
	select {
	case err := <-shutdown:
		t.Fatalf("Shutdown returned (%v) with a reply in flight", err)
	default:
	}
	d.replyAll(RespFlushDiskTimeout)
	if err := <-shutdown; err != nil {
		t.Fatal(err)
	}
	if r := <-got; r == nil || r.Code != RespFlushDiskTimeout {
		t.Fatalf("deferred reply %v", r)
	}
}

func TestShutdownDeadlineDropsPending(t *testing.T) {
	d := newDeferrer()
	s := startServer(t, ServerConfig{}, d)
	c := dial(t, s, ClientConfig{})
	if err := c.InvokeAsync(ReqSendMessage, nil, nil, func(*Command, error) {}); err != nil {
		t.Fatal(err)
	}
	<-d.arrived
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Shutdown(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	// A late ReplyTo on the closed connection is dropped; it must not panic or block.
	d.replyAll(RespSuccess)
}

func TestOnewayDoneAndServerToClientRequest(t *testing.T) {
	var gotOneway atomic.Int32
	connCh := make(chan *Conn, 1)
	h := HandlerFunc(func(c *Conn, req *Command) {
		switch req.Code {
		case ReqUpdateConsumerOffset:
			gotOneway.Add(1)
			c.Done(req)
		case ReqHeartBeat:
			connCh <- c
			c.Reply(req, c.NewResponse())
		}
	})
	s := startServer(t, ServerConfig{}, h)
	fromServer := make(chan *Command, 1)
	c := dial(t, s, ClientConfig{OnRequest: func(_ *Client, req *Command) { fromServer <- req.Clone() }})
	if err := c.InvokeOneway(ReqUpdateConsumerOffset, nil, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Invoke(ctxT(t), ReqHeartBeat, nil, nil); err != nil {
		t.Fatal(err)
	}
	if gotOneway.Load() != 1 { // the cleanup's Shutdown fails if Done did not end the oneway request
		t.Fatalf("oneway served %d times, want 1", gotOneway.Load())
	}
	sc := <-connCh
	ext := []Field{{Key: []byte("consumerGroup"), Value: []byte("g1")}}
	if err := sc.SendRequestOneway(ReqNotifyConsumerIDsChanged, ext, nil); err != nil {
		t.Fatal(err)
	}
	req := <-fromServer
	if req.Code != ReqNotifyConsumerIDsChanged || req.Flag != FlagOneway || req.ExtString("consumerGroup") != "g1" {
		t.Fatalf("client got %s", req)
	}
}

func TestOnWrittenStampsAndReleaseHook(t *testing.T) {
	type rec struct {
		reqCode, code int16
		st            perf.Stamps
	}
	recs := make(chan rec, 4)
	released := make(chan struct{}, 4)
	h := HandlerFunc(func(c *Conn, req *Command) {
		req.Stamps.Mark(perf.StageQueued)
		r := c.NewResponse()
		r.Body = append(r.Body, []byte("pinned view"))
		r.OnWritten(func() { released <- struct{}{} })
		c.Reply(req, r)
	})
	s := startServer(t, ServerConfig{OnWritten: func(_ *Conn, r *Response) {
		recs <- rec{r.RequestCode, r.Code, r.Stamps}
	}}, h)
	c := dial(t, s, ClientConfig{})
	if _, err := c.Invoke(ctxT(t), ReqPullMessage, nil, nil); err != nil {
		t.Fatal(err)
	}
	<-released
	r := <-recs
	at := r.st.At
	if r.reqCode != ReqPullMessage || at[perf.StageRead] == 0 || at[perf.StageDecoded] < at[perf.StageRead] ||
		at[perf.StageQueued] < at[perf.StageDecoded] || at[perf.StageWritten] < at[perf.StageQueued] {
		t.Fatalf("record %+v", r)
	}
}

func TestClientAsyncTimeoutAndClose(t *testing.T) {
	d := newDeferrer()
	s := startServer(t, ServerConfig{}, d)
	c := dial(t, s, ClientConfig{CallTimeout: 50 * time.Millisecond, MaxInFlight: 1})
	errs := make(chan error, 2)
	if err := c.InvokeAsync(ReqSendMessage, nil, nil, func(_ *Command, err error) { errs <- err }); err != nil {
		t.Fatal(err)
	}
	if err := c.InvokeAsync(ReqSendMessage, nil, nil, func(*Command, error) {}); !errors.Is(err, ErrBusy) {
		t.Fatalf("second async call: %v, want ErrBusy", err)
	}
	if err := <-errs; !errors.Is(err, ErrTimeout) {
		t.Fatalf("got %v, want ErrTimeout", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := c.Invoke(ctx, ReqSendMessage, nil, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Invoke: %v, want DeadlineExceeded", err)
	}
	if err := c.InvokeAsync(ReqSendMessage, nil, nil, func(_ *Command, err error) { errs <- err }); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		<-d.arrived
	}
	_ = c.Close()
	if err := <-errs; !errors.Is(err, ErrClosed) {
		t.Fatalf("got %v, want ErrClosed", err)
	}
	if _, err := c.Invoke(ctxT(t), ReqSendMessage, nil, nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("Invoke after Close: %v", err)
	}
	d.replyAll(RespSuccess)
}

func TestOnCloseRunsOnPeerClose(t *testing.T) {
	closed := make(chan uint64, 1)
	h := HandlerFunc(func(c *Conn, req *Command) {
		c.OnClose(func(c *Conn) { closed <- c.ID() })
		if !c.RemoteAddr().IsValid() {
			t.Errorf("remote addr %v", c.RemoteAddr())
		}
		c.Reply(req, c.NewResponse())
	})
	s := startServer(t, ServerConfig{}, h)
	c := dial(t, s, ClientConfig{})
	if _, err := c.Invoke(ctxT(t), ReqHeartBeat, nil, nil); err != nil {
		t.Fatal(err)
	}
	_ = c.Close()
	if id := <-closed; id == 0 {
		t.Fatal("conn id 0")
	}
}

// BenchmarkRoundTrip measures one request -> response over loopback (client Invoke + server echo).
func BenchmarkRoundTrip(b *testing.B) {
	for _, size := range []int{0, 1024} {
		b.Run("body="+strconv.Itoa(size)+"B", func(b *testing.B) {
			s := startServer(b, ServerConfig{}, HandlerFunc(func(c *Conn, req *Command) {
				r := c.NewResponse()
				r.AddExtInt("queueOffset", 1)
				c.Reply(req, r)
			}))
			c := dial(b, s, ClientConfig{})
			body := bytes.Repeat([]byte("x"), size)
			ext := []Field{{Key: []byte("topic"), Value: []byte("T1")}}
			done := make(chan struct{}, 1)
			cb := func(_ *Command, err error) {
				if err != nil {
					b.Error(err)
				}
				done <- struct{}{}
			}
			b.ReportAllocs()
			b.SetBytes(int64(size))
			for b.Loop() {
				if err := c.InvokeAsync(ReqSendMessage, ext, body, cb); err != nil {
					b.Fatal(err)
				}
				<-done
			}
		})
	}
}

func TestResponseHandedTwicePanics(t *testing.T) {
	r := getResponse()
	r.encode(LangGo, ServerVersion)
	defer func() {
		if recover() == nil {
			t.Fatal("second hand-over did not panic")
		}
		r.release()
	}()
	r.encode(LangGo, ServerVersion)
}

// BenchmarkPipelined keeps a window of async calls in flight on one connection: throughput per request
// with the reader batching frames and the writer batching replies into one writev.
func BenchmarkPipelined(b *testing.B) {
	for _, window := range []int{8, 64} {
		b.Run("inflight="+strconv.Itoa(window), func(b *testing.B) {
			s := startServer(b, ServerConfig{}, HandlerFunc(func(c *Conn, req *Command) {
				r := c.NewResponse()
				r.AddExtInt("queueOffset", 1)
				c.Reply(req, r)
			}))
			c := dial(b, s, ClientConfig{MaxInFlight: window})
			body := bytes.Repeat([]byte("x"), 1024)
			ext := []Field{{Key: []byte("topic"), Value: []byte("T1")}}
			slots := make(chan struct{}, window)
			cb := func(_ *Command, err error) {
				if err != nil {
					b.Error(err)
				}
				<-slots
			}
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				slots <- struct{}{}
				if err := c.InvokeAsync(ReqSendMessage, ext, body, cb); err != nil {
					b.Fatal(err)
				}
			}
			for range window {
				slots <- struct{}{}
			}
		})
	}
}

// TestReplyToDuringHeldRun: deferred replies made by other goroutines while the reader serves a run of
// pipelined frames (and at any moment around it) are all delivered, none waits for a later request.
func TestReplyToDuringHeldRun(t *testing.T) {
	h := HandlerFunc(func(c *Conn, req *Command) {
		op := req.Opaque
		switch op % 3 {
		case 0:
			c.Reply(req, c.NewResponse())
		case 1: // answered from another goroutine while this Serve still runs
			enqueued := make(chan struct{})
			go func() { c.ReplyTo(op, c.NewResponse()); close(enqueued) }()
			<-enqueued
		default: // answered from another goroutine at an arbitrary moment
			go c.ReplyTo(op, c.NewResponse())
		}
	})
	s := startServer(t, ServerConfig{}, h)
	for round := range 20 {
		rc := dialRaw(t, s)
		const n = 300
		var all []byte
		for i := range n {
			all = append(all, frameOf(SerializeJSON, []byte(`{"code":34,"opaque":`+strconv.Itoa(i)+`}`), nil)...)
		}
		rc.write(all)
		seen := make(map[int32]bool, n)
		for range n {
			seen[rc.read().Opaque] = true
		}
		if len(seen) != n {
			t.Fatalf("round %d: %d distinct answers, want %d", round, len(seen), n)
		}
		// One last request on its own: its answer must not wait for another request.
		rc.write(frameOf(SerializeJSON, []byte(`{"code":34,"opaque":2}`), nil))
		if r := rc.read(); r.Opaque != 2 {
			t.Fatalf("round %d: got %s", round, r)
		}
	}
}
