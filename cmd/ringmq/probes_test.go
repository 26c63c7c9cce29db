package main

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/ringmq/ringmq/bpf"
	"github.com/ringmq/ringmq/perf"
	"github.com/ringmq/ringmq/perf/admin"
)

func TestProbesFromEnv(t *testing.T) {
	cases := []struct {
		in      string
		names   []string
		off     bool
		wantErr bool
	}{
		{in: "", names: nil},
		{in: "default", names: nil},
		{in: "off", off: true},
		{in: "none", off: true},
		{in: "all", names: []string{"block_io", "fsync", "io_uring", "page_fault", "runq_delay"}},
		{in: "fsync, runq_delay", names: []string{"fsync", "runq_delay"}},
		{in: ",", names: []string{}},
		{in: "fsync,kprobe", wantErr: true},
	}
	for _, c := range cases {
		names, off, err := probesFromEnv(c.in)
		if (err != nil) != c.wantErr || off != c.off || !reflect.DeepEqual(names, c.names) {
			t.Errorf("probesFromEnv(%q): got %q, %v, %v; want %q, %v, error %v", c.in, names, off, err, c.names, c.off, c.wantErr)
		}
	}
}

// TestStartProbes wires the probes as the broker does and reads them back through the admin
// server: every probe is listed (on, or off with a reason, depending on the host), the metrics
// are registered, and stop removes them from /api/probes.
func TestStartProbes(t *testing.T) {
	t.Setenv(probesEnv, "")
	rec := perf.NewRecorder(perf.RecorderConfig{})
	defer rec.Close()
	reg := perf.NewRegistry()
	adm := admin.New(admin.Config{Listen: "127.0.0.1:0"}, rec, reg)
	if err := adm.Start(); err != nil {
		t.Fatal(err)
	}
	defer adm.Shutdown(t.Context())
	stop := startProbes(slog.New(slog.DiscardHandler), rec, reg, adm)
	list := func() []admin.ProbeStatus {
		t.Helper()
		resp, err := http.Get("http://" + adm.Addr() + "/api/probes")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out []admin.ProbeStatus
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	got := list()
	if len(got) != len(bpf.AllProbes()) {
		t.Fatalf("/api/probes: got %+v, want all of %v", got, bpf.AllProbes())
	}
	for _, p := range got {
		if p.Enabled == (p.Reason != "") {
			t.Errorf("probe %+v: want a reason exactly when off", p)
		}
		if (p.Name == bpf.ProbeRunq || p.Name == bpf.ProbeSync) && p.Enabled {
			t.Errorf("%s on by default", p.Name)
		}
	}
	var sb strings.Builder
	if err := perf.WritePrometheus(&sb, rec, reg); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(sb.String(), `ringmq_kernel_probe_enabled{probe="runq_delay"} 0`) {
		t.Errorf("/metrics lacks the probe gauges")
	}
	stop()
	if got := list(); len(got) != 0 {
		t.Errorf("/api/probes after stop: got %+v, want []", got)
	}
}
