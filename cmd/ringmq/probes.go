package main

// The broker's eBPF probes (package bpf): loaded at start-up, their histograms exported with
// the broker's own, their events attached as evidence to slow requests, their state served at
// /api/probes. eBPF never stops the broker from starting: without root, BTF or a tracepoint,
// the probes concerned are off and the log says why.
//
// RINGMQ_PROBES chooses the probes attached at start: unset or "default" (all but
// runq_delay), "all", "off" (nothing is loaded), or a comma-separated list of names
// (block_io, fsync, io_uring, page_fault, runq_delay). Probes not listed are still loaded
// and can be attached later with /api/probes?enable=NAME.

import (
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/ringmq/ringmq/bpf"
	"github.com/ringmq/ringmq/perf"
	"github.com/ringmq/ringmq/perf/admin"
)

// probesEnv is the environment variable that chooses the probes.
const probesEnv = "RINGMQ_PROBES"

// startProbes loads and attaches the probes, installs them as rec's evidence source, registers
// their metrics in reg and serves them on adm. It returns the function that undoes all of it
// (call it before closing rec); it never fails.
func startProbes(log *slog.Logger, rec *perf.Recorder, reg *perf.Registry, adm *admin.Server) (stop func()) {
	names, off, err := probesFromEnv(os.Getenv(probesEnv))
	if err != nil {
		log.Warn("eBPF probes off: bad "+probesEnv, "err", err)
		return func() {}
	}
	if off {
		log.Info("eBPF probes off", probesEnv, "off")
		return func() {}
	}
	set, err := bpf.Open(bpf.Config{Probes: names})
	if err != nil {
		log.Warn("eBPF probes off", "err", err)
		return func() {}
	}
	loaded := false
	for _, st := range set.Status() {
		if st.Enabled {
			log.Info("eBPF probe on", "probe", st.Name)
		} else {
			log.Info("eBPF probe off", "probe", st.Name, "reason", st.Reason)
		}
		loaded = loaded || set.Err(st.Name) == nil
	}
	set.RegisterMetrics(reg)
	adm.SetProbes(adminProbes{set})
	if loaded {
		rec.SetEvidenceSource(set.Evidence)
	}
	return func() {
		rec.SetEvidenceSource(nil)
		adm.SetProbes(nil)
		if err := set.Close(); err != nil {
			log.Warn("close eBPF probes", "err", err)
		}
	}
}

// probesFromEnv parses RINGMQ_PROBES: nil names for the default set, off for none.
func probesFromEnv(v string) (names []string, off bool, err error) {
	switch v = strings.TrimSpace(v); v {
	case "", "default":
		return nil, false, nil
	case "off", "none":
		return nil, true, nil
	case "all":
		return bpf.AllProbes(), false, nil
	}
	names = []string{}
	for _, n := range strings.Split(v, ",") {
		n = strings.TrimSpace(n)
		if n == "" {
			continue
		}
		known := false
		for _, k := range bpf.AllProbes() {
			known = known || k == n
		}
		if !known {
			return nil, false, fmt.Errorf("unknown probe %q (have %s, or default, all, off)", n, strings.Join(bpf.AllProbes(), ", "))
		}
		names = append(names, n)
	}
	return names, false, nil
}

// adminProbes serves a bpf.Set on /api/probes (perf/admin may not import bpf).
type adminProbes struct{ set *bpf.Set }

func (a adminProbes) ProbeStatus() []admin.ProbeStatus {
	st := a.set.Status()
	out := make([]admin.ProbeStatus, len(st))
	for i, s := range st {
		out[i] = admin.ProbeStatus{Name: s.Name, Enabled: s.Enabled, Reason: s.Reason}
	}
	return out
}

func (a adminProbes) SetProbeEnabled(name string, on bool) error { return a.set.SetEnabled(name, on) }
