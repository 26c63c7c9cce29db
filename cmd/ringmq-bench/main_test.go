package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestFlagDefaults: the CPU idle hold, the machine floor and its spin probe are on by
// default and each can be switched off; a negative probe is a usage error.
func TestFlagDefaults(t *testing.T) {
	o, err := parseFlags([]string{"--driver", "timer", "--workload", "w.yaml"})
	if err != nil {
		t.Fatal(err)
	}
	if !o.cpuIdlePoll || !o.machineFloor || !o.floor || o.spinProbe != 2*time.Second {
		t.Fatalf("defaults: cpu-idle-poll %v machine-floor %v floor %v spin-probe %v", o.cpuIdlePoll, o.machineFloor, o.floor, o.spinProbe)
	}
	o, err = parseFlags([]string{"--driver", "null", "--workload", "w.yaml", "--cpu-idle-poll=false", "--machine-floor=false", "--spin-probe", "0"})
	if err != nil {
		t.Fatal(err)
	}
	if o.cpuIdlePoll || o.machineFloor || o.spinProbe != 0 {
		t.Fatalf("switched off: cpu-idle-poll %v machine-floor %v spin-probe %v", o.cpuIdlePoll, o.machineFloor, o.spinProbe)
	}
	if _, err := parseFlags([]string{"--driver", "null", "--workload", "w.yaml", "--spin-probe", "-1s"}); err == nil {
		t.Fatal("--spin-probe -1s: no error")
	}
}

func writeWorkload(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "w.yaml")
	err := os.WriteFile(p, []byte("name: tiny\ntopics: 1\npartitionsPerTopic: 2\nmessageSize: 64\nsubscriptionsPerTopic: 0\n"+
		"producersPerTopic: 1\nproducerRate: 1000\ntestDurationMinutes: 0.005\nwarmupDurationMinutes: 0\n"), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

type jsonOut struct {
	Machine *struct {
		RatePerSec float64 `json:"ratePerSec"`
		Wake       struct {
			Count int64 `json:"count"`
		} `json:"wakeLateness"`
	} `json:"ringmqMachineFloor"`
	Idle *struct {
		Requested bool   `json:"requested"`
		Held      bool   `json:"held"`
		Reason    string `json:"reason"`
	} `json:"ringmqCpuIdlePoll"`
	Floor *json.RawMessage `json:"ringmqGeneratorFloor"`
}

func runToJSON(t *testing.T, args ...string) jsonOut {
	t.Helper()
	out := filepath.Join(t.TempDir(), "r.json")
	o, err := parseFlags(append(args, "--workload", writeWorkload(t), "--out", out, "--spin-probe", "10ms"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := run(ctx, o); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var j jsonOut
	if err := json.Unmarshal(b, &j); err != nil {
		t.Fatal(err)
	}
	return j
}

// TestMachineAloneJSON: --driver timer measures the pacer alone at the workload's rate and
// writes the machine floor and the idle-poll status (here switched off) to the JSON.
func TestMachineAloneJSON(t *testing.T) {
	j := runToJSON(t, "--driver", "timer", "--cpu-idle-poll=false")
	if j.Machine == nil || j.Machine.RatePerSec != 1000 || j.Machine.Wake.Count != 300 {
		t.Fatalf("ringmqMachineFloor = %+v, want 300 wake-ups at 1000/s", j.Machine)
	}
	if j.Idle == nil || j.Idle.Requested || j.Idle.Held || !strings.Contains(j.Idle.Reason, "off") {
		t.Fatalf("ringmqCpuIdlePoll = %+v, want not requested (off)", j.Idle)
	}
}

// TestRunWithFloors: a run reports the machine floor beside the result and the idle-poll
// status it asked for (held when root can open /dev/cpu_dma_latency, else the reason).
func TestRunWithFloors(t *testing.T) {
	j := runToJSON(t, "--driver", "null-inproc", "--floor=false")
	if j.Machine == nil || j.Machine.Wake.Count != 300 || j.Floor != nil {
		t.Fatalf("machine floor %+v, null floor %v: want 300 wake-ups and no null floor (--floor=false)", j.Machine, j.Floor != nil)
	}
	if j.Idle == nil || !j.Idle.Requested || (!j.Idle.Held && j.Idle.Reason == "") {
		t.Fatalf("ringmqCpuIdlePoll = %+v, want requested and held or a reason", j.Idle)
	}
	if os.Geteuid() != 0 {
		t.Logf("not root: %s", j.Idle.Reason)
	}
}
