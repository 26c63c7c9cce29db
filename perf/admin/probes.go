package admin

import (
	"fmt"
	"sync"

	"github.com/valyala/fasthttp"
)

// /api/probes lists the eBPF probes and switches them at run time:
//
//	GET /api/probes                    [{"name","enabled","reason"}, ...]
//	GET /api/probes?enable=NAME        attach probe NAME, then list (e.g. runq_delay)
//	GET /api/probes?disable=NAME       detach probe NAME, then list
//
// A server without probes (SetProbes not called) answers an empty list. A switch that fails
// answers 400 with the reason (unknown probe, or one the host cannot run). The admin port
// listens on localhost by default; the switch is a GET so that curl and the dashboard can
// use it, like the rest of this GET-only server.

// ProbeStatus is one eBPF probe's state as /api/probes lists it.
type ProbeStatus struct {
	Name    string `json:"name"`
	Enabled bool   `json:"enabled"`
	Reason  string `json:"reason"` // why it is off; "" when enabled
}

// Probes is what /api/probes reads and switches (package bpf's Set, adapted by cmd/ringmq;
// admin may not import bpf).
type Probes interface {
	ProbeStatus() []ProbeStatus
	SetProbeEnabled(name string, on bool) error
}

// probesOf maps a *Server to its Probes; kept beside the server rather than in it so that
// this endpoint stays in its own file.
var probesOf sync.Map

// SetProbes installs the probes /api/probes serves (nil removes them).
func (s *Server) SetProbes(p Probes) {
	if p == nil {
		probesOf.Delete(s)
		return
	}
	probesOf.Store(s, p)
}

func (s *Server) probes(ctx *fasthttp.RequestCtx) {
	v, _ := probesOf.Load(s)
	p, _ := v.(Probes)
	args := ctx.QueryArgs()
	for _, sw := range []struct {
		arg string
		on  bool
	}{{"enable", true}, {"disable", false}} {
		name := args.Peek(sw.arg)
		if name == nil {
			continue
		}
		if p == nil {
			ctx.Error("no eBPF probes in this process", fasthttp.StatusBadRequest)
			return
		}
		if err := p.SetProbeEnabled(string(name), sw.on); err != nil {
			ctx.Error(fmt.Sprintf("%s=%s: %v", sw.arg, name, err), fasthttp.StatusBadRequest)
			return
		}
	}
	list := []ProbeStatus{}
	if p != nil {
		list = p.ProbeStatus()
	}
	writeJSON(ctx, list)
}
