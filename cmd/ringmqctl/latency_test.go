package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/ringmq/ringmq/perf"
	"github.com/ringmq/ringmq/perf/admin"
)

// adminWithLoad starts an admin server on a free port over a recorder holding n sends of which
// every 100th took 3 ms (the rest 200 us), and n/10 pulls.
func adminWithLoad(t *testing.T, n int) string {
	t.Helper()
	rec := perf.NewRecorder(perf.RecorderConfig{})
	for i := range n {
		lat := int64(200_000)
		if i%100 == 0 {
			lat = 3_000_000
		}
		var s perf.Stamps
		s.At[perf.StageRead] = 1_000
		s.At[perf.StageAppended] = 1_000 + lat/4
		s.At[perf.StageDurable] = 1_000 + lat*3/4
		s.At[perf.StageWritten] = 1_000 + lat
		rec.Record(perf.CodeSendMessageV2, &s, 1024, "orders", int32(i%4))
		if i == 0 { // a heartbeat whose decoded stamp precedes its read one
			var bad perf.Stamps
			bad.At[perf.StageRead], bad.At[perf.StageDecoded], bad.At[perf.StageWritten] = 2_000, 1_000, 3_000
			rec.Record(perf.CodeHeartBeat, &bad, 0, "", -1)
		}
		if i%10 == 0 {
			var p perf.Stamps
			p.At[perf.StageRead], p.At[perf.StageWritten] = 1_000, 51_000
			rec.Record(perf.CodePullMessage, &p, 0, "orders", 0)
		}
	}
	s := admin.New(admin.Config{Listen: "127.0.0.1:0"}, rec, nil)
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Shutdown(ctx)
	})
	return s.Addr()
}

func TestLatencyTables(t *testing.T) {
	addr := adminWithLoad(t, 1000)
	var out, errOut bytes.Buffer
	if err := latencyCmd([]string{"--admin", addr, "--window", "all", "--codes"}, &out, &errOut); err != nil {
		t.Fatalf("latency: %v (stderr %s)", err, errOut.String())
	}
	text := out.String()
	t.Logf("output:\n%s", text)
	for _, want := range []string{
		"window all", "1,101 requests", "stamp order errors: 1 (into decoded 1)",
		"99.000%", "100.000%", // 990 of 1000 sends within 1 ms, all within 10 ms
		"2.50", // burn at 1 ms: 1% over / 0.4% allowed
		"p99.6", "p99.996", "max",
		"SEND_MESSAGE_V2 (310)", "PULL_MESSAGE (11)",
		"STAGES (sends)", "durable", "appended", "STAGES PULL_MESSAGE",
		"3.00ms", "200us", "50us",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	// The sends row: p50 200 us, p99 200 us (990 of 1000), p99.6 3 ms.
	for _, line := range strings.Split(text, "\n") {
		if f := strings.Fields(line); len(f) > 5 && f[0] == "sends" {
			if f[1] != "1,000" || f[2] != "200us" || f[4] != "200us" || f[5] != "3.00ms" {
				t.Errorf("sends row: got %q", line)
			}
		}
	}
}

func TestLatencyJSON(t *testing.T) {
	addr := adminWithLoad(t, 50)
	var out bytes.Buffer
	if err := latencyCmd([]string{"--admin", addr, "--json", "--window=10s"}, &out, &out); err != nil {
		t.Fatal(err)
	}
	var rep perf.LatencyReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("--json output does not decode: %v", err)
	}
	if rep.Sends.Count != 50 || rep.Window != "10s" {
		t.Fatalf("--json: got window %s, %d sends; want 10s, 50", rep.Window, rep.Sends.Count)
	}
}

func TestLatencyErrors(t *testing.T) {
	addr := adminWithLoad(t, 1)
	ln, err := net.Listen("tcp", "127.0.0.1:0") // a port nothing answers HTTP on once closed
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	for _, c := range []struct {
		args      []string
		want      string // in the error or on stderr
		wantUsage bool   // errUsage: explained on stderr, exit 2
	}{
		{[]string{"--admin", addr, "--window", "forever"}, "forever", false},
		{[]string{"--admin", dead, "--timeout", "2s"}, dead, false},
		{[]string{"--admin", addr, "extra"}, `unexpected argument "extra"`, true},
		{[]string{"--nope"}, "nope", true},
	} {
		var out, errOut bytes.Buffer
		err := latencyCmd(c.args, &out, &errOut)
		if err == nil || !strings.Contains(fmt.Sprint(err)+errOut.String(), c.want) {
			t.Errorf("latency %v: got error %v, stderr %q; want one mentioning %q", c.args, err, errOut.String(), c.want)
		}
		if errors.Is(err, errUsage) != c.wantUsage {
			t.Errorf("latency %v: got error %v, want errUsage %v", c.args, err, c.wantUsage)
		}
	}
	var out, errOut bytes.Buffer
	if err := latencyCmd([]string{"--help"}, &out, &errOut); !errors.Is(err, flag.ErrHelp) || !strings.Contains(errOut.String(), "--window") {
		t.Errorf("--help: got %v and %q, want flag.ErrHelp and the flags", err, errOut.String())
	}
}

func TestLatencySlow(t *testing.T) {
	addr := adminWithLoad(t, 300) // sends 0, 100, 200 took 3 ms
	var out, errOut bytes.Buffer
	if err := latencyCmd([]string{"--admin", addr, "--slow", "2"}, &out, &errOut); err != nil {
		t.Fatalf("latency --slow: %v (stderr %s)", err, errOut.String())
	}
	text := out.String()
	t.Logf("output:\n%s", text)
	for _, want := range []string{
		"SLOW REQUESTS over 1.00ms: 3 since start, 3 kept",
		"appended 750us, durable 1.50ms, written 750us", "SEND_MESSAGE_V2", "orders",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if n := strings.Count(text, "3.00ms  appended"); n != 2 {
		t.Errorf("slow rows: got %d, want 2 (--slow 2)", n)
	}
	if err := latencyCmd([]string{"--admin", addr, "--slow", "5000"}, &out, &errOut); !errors.Is(err, errUsage) {
		t.Errorf("--slow 5000: got %v, want errUsage", err)
	}
}
