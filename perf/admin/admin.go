// Package admin is ringmq's admin HTTP server (fasthttp): metrics, latency reports, the
// slow-request log and the dashboard page. It is off the data path: it only reads a
// perf.Recorder and a perf.Registry, and a slow or hostile client costs it at most its own
// connection (bounded request size, timeouts, a cap on concurrent connections).
//
// Endpoints (all GET):
//
//	/metrics                  Prometheus text exposition (perf.WritePrometheus)
//	/api/latency?window=W     perf.LatencyReport as JSON; W = 10s | 1m | 10m | all | a duration
//	/api/slow?limit=N         the slow-request log, newest first, with evidence
//	/api/hdr?window=W         the window's histograms as an HdrHistogram interval log
//	/api/probes               the eBPF probes and why each is off; ?enable=NAME or
//	                          ?disable=NAME switches one first (probes.go)
//	/                         the dashboard (one self-contained page, no external assets)
//
// Concurrency: fasthttp serves requests on its own goroutines (at most maxConns at once);
// handlers only call the Recorder's and Registry's read side, which never blocks
// Recorder.Record. Start, Addr and Shutdown may be called from any goroutine.
//
// Errors: a bad query parameter answers 400 with the reason; another method than GET or
// HEAD 405; an unknown path 404.
package admin

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/ringmq/ringmq/perf"
)

// DefaultListen is the admin address when Config.Listen is empty.
const DefaultListen = "127.0.0.1:10980"

// Limits of the admin server.
const (
	maxConns = 64
	// readTimeout bounds reading a request, including waiting for the first one on a new
	// connection, and idle keep-alive time. Shutdown waits for every open connection, and an
	// HTTP client can leave a dialed connection on which it never sends a request (Go's
	// transport does when requests race): that connection closes after readTimeout, so it
	// bounds how long a broker's SIGTERM waits for the admin server.
	readTimeout    = 2 * time.Second
	writeTimeout   = 10 * time.Second
	maxSlowListed  = 1000
	defaultSlowMax = 100
)

//go:embed dashboard.html
var dashboardHTML []byte

// Config configures the admin server.
type Config struct {
	// Listen is HOST:PORT to listen on (port 0 picks a free port). Default DefaultListen.
	Listen string
}

// Server is the admin HTTP server. Create it with New, then Start; Shutdown stops it.
type Server struct {
	cfg Config
	rec *perf.Recorder
	reg *perf.Registry
	srv *fasthttp.Server
	mu  struct {
		sync.Mutex
		ln      net.Listener
		serveCh chan error
	}
}

// New returns a server for rec and reg (reg may be nil; rec must not be).
func New(cfg Config, rec *perf.Recorder, reg *perf.Registry) *Server {
	if rec == nil {
		panic("BUG: admin.New with nil recorder")
	}
	if cfg.Listen == "" {
		cfg.Listen = DefaultListen
	}
	s := &Server{cfg: cfg, rec: rec, reg: reg}
	s.srv = &fasthttp.Server{
		Handler:               s.handle,
		Name:                  "ringmq-admin",
		Concurrency:           maxConns,
		ReadTimeout:           readTimeout,
		WriteTimeout:          writeTimeout,
		IdleTimeout:           readTimeout,
		MaxRequestBodySize:    4 << 10,
		NoDefaultServerHeader: true,
		Logger:                discardLogger{},
	}
	return s
}

type discardLogger struct{}

func (discardLogger) Printf(string, ...any) {}

// Start listens on the configured address and serves in the background.
func (s *Server) Start() error {
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("admin listen %s: %w", s.cfg.Listen, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.ln != nil {
		ln.Close()
		panic("BUG: admin.Server.Start called twice")
	}
	s.mu.ln = ln
	s.mu.serveCh = make(chan error, 1)
	go func(ch chan<- error) { ch <- s.srv.Serve(ln) }(s.mu.serveCh)
	return nil
}

// Addr returns the address the server listens on ("" before Start).
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.ln == nil {
		return ""
	}
	return s.mu.ln.Addr().String()
}

// Shutdown stops accepting connections and waits for open requests, at most until ctx is done.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	ch := s.mu.serveCh
	s.mu.Unlock()
	if ch == nil {
		return nil
	}
	if err := s.srv.ShutdownWithContext(ctx); err != nil {
		return fmt.Errorf("admin shutdown: %w", err)
	}
	if err := <-ch; err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("admin serve: %w", err)
	}
	return nil
}

func (s *Server) handle(ctx *fasthttp.RequestCtx) {
	if !ctx.IsGet() && !ctx.IsHead() {
		ctx.Error("method not allowed", fasthttp.StatusMethodNotAllowed)
		return
	}
	switch string(ctx.Path()) {
	case "/metrics":
		s.metrics(ctx)
	case "/api/latency":
		s.latency(ctx)
	case "/api/slow":
		s.slow(ctx)
	case "/api/hdr":
		s.hdr(ctx)
	case "/api/probes":
		s.probes(ctx)
	case "/", "/index.html":
		ctx.SetContentType("text/html; charset=utf-8")
		ctx.Response.Header.Set("Cache-Control", "no-store")
		ctx.Write(dashboardHTML)
	default:
		ctx.Error("not found", fasthttp.StatusNotFound)
	}
}

func (s *Server) metrics(ctx *fasthttp.RequestCtx) {
	ctx.SetContentType("text/plain; version=0.0.4; charset=utf-8")
	if err := perf.WritePrometheus(ctx, s.rec, s.reg); err != nil {
		ctx.Error(err.Error(), fasthttp.StatusInternalServerError)
	}
}

func (s *Server) latency(ctx *fasthttp.RequestCtx) {
	rep, err := s.rec.Report(string(ctx.QueryArgs().Peek("window")))
	if err != nil {
		ctx.Error(err.Error(), fasthttp.StatusBadRequest)
		return
	}
	writeJSON(ctx, rep)
}

// SlowResponse is what /api/slow serves.
type SlowResponse struct {
	ThresholdUs float64            `json:"threshold_us"`
	Total       uint64             `json:"total"`   // slow requests since start
	Dropped     int64              `json:"dropped"` // not logged: slot busy
	Kept        int                `json:"kept"`    // entries in the log
	Requests    []perf.SlowRequest `json:"requests"`
}

func (s *Server) slow(ctx *fasthttp.RequestCtx) {
	limit := defaultSlowMax
	if v := ctx.QueryArgs().Peek("limit"); len(v) > 0 {
		n, err := strconv.Atoi(string(v))
		if err != nil || n < 1 || n > maxSlowListed {
			ctx.Error(fmt.Sprintf("limit %q: want 1..%d", v, maxSlowListed), fasthttp.StatusBadRequest)
			return
		}
		limit = n
	}
	s.rec.CollectEvidence()
	reqs := s.rec.SlowRequests()
	resp := SlowResponse{
		ThresholdUs: float64(s.rec.Config().SlowThreshold) / 1e3,
		Total:       s.rec.SlowTotal(), Dropped: s.rec.SlowDropped(), Kept: len(reqs),
		Requests: reqs[:min(limit, len(reqs))],
	}
	writeJSON(ctx, resp)
}

func (s *Server) hdr(ctx *fasthttp.RequestCtx) {
	ctx.SetContentType("text/plain; charset=utf-8")
	if err := s.rec.WriteHdrWindow(ctx, string(ctx.QueryArgs().Peek("window"))); err != nil {
		ctx.ResetBody()
		ctx.Error(err.Error(), fasthttp.StatusBadRequest)
	}
}

func writeJSON(ctx *fasthttp.RequestCtx, v any) {
	ctx.SetContentType("application/json")
	ctx.Response.Header.Set("Cache-Control", "no-store")
	if err := json.NewEncoder(ctx).Encode(v); err != nil {
		ctx.ResetBody()
		ctx.Error("encode: "+err.Error(), fasthttp.StatusInternalServerError)
	}
}
