package admin

import (
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/ringmq/ringmq/perf"
)

// fakeProbes is a Probes kept in memory: two probes, one of which the host cannot run.
type fakeProbes struct {
	mu    sync.Mutex
	state []ProbeStatus
}

func (f *fakeProbes) ProbeStatus() []ProbeStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]ProbeStatus(nil), f.state...)
}

func (f *fakeProbes) SetProbeEnabled(name string, on bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.state {
		if f.state[i].Name != name {
			continue
		}
		if f.state[i].Reason == "no BTF" {
			return errors.New("not available: no BTF")
		}
		f.state[i].Enabled = on
		return nil
	}
	return errors.New("unknown probe")
}

func TestProbesEndpoint(t *testing.T) {
	rec := perf.NewRecorder(perf.RecorderConfig{})
	s := New(Config{Listen: "127.0.0.1:0"}, rec, nil)
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown(t.Context())
	base := "http://" + s.Addr()
	list := func(query string, wantCode int) []ProbeStatus {
		t.Helper()
		code, body, _ := get(t, base+"/api/probes"+query)
		if code != wantCode {
			t.Fatalf("/api/probes%s: got %d %s, want %d", query, code, body, wantCode)
		}
		var out []ProbeStatus
		if code == 200 {
			if err := json.Unmarshal(body, &out); err != nil {
				t.Fatalf("/api/probes%s: %v in %s", query, err, body)
			}
		}
		return out
	}
	if got := list("", 200); len(got) != 0 {
		t.Fatalf("without probes: got %+v, want []", got)
	}
	list("?enable=runq_delay", 400)

	s.SetProbes(&fakeProbes{state: []ProbeStatus{
		{Name: "block_io", Reason: "no BTF"},
		{Name: "runq_delay", Reason: "off by default"},
	}})
	got := list("?enable=runq_delay", 200)
	if len(got) != 2 || got[0].Enabled || !got[1].Enabled {
		t.Fatalf("after enable: got %+v, want block_io off, runq_delay on", got)
	}
	code, body, _ := get(t, base+"/api/probes?enable=block_io")
	if code != 400 || !strings.Contains(string(body), "no BTF") {
		t.Fatalf("enable of an unavailable probe: got %d %s, want 400 with the reason", code, body)
	}
	if got := list("?disable=runq_delay", 200); got[1].Enabled {
		t.Fatalf("after disable: got %+v, want runq_delay off", got)
	}
}
