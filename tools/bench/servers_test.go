package bench

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ringmq/ringmq/netio/remoting"
)

// natsServerForTest finds nats-server: $RINGMQ_NATS_SERVER, PATH, then GOBIN/GOPATH/bin.
func natsServerForTest(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("RINGMQ_NATS_SERVER"); p != "" {
		return p
	}
	if p, err := exec.LookPath("nats-server"); err == nil {
		return p
	}
	out, err := exec.Command("go", "env", "GOBIN", "GOPATH").Output()
	if err == nil {
		for _, dir := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			if dir = strings.TrimSpace(dir); dir == "" {
				continue
			}
			if !strings.HasSuffix(dir, "bin") {
				dir = filepath.Join(strings.Split(dir, string(os.PathListSeparator))[0], "bin")
			}
			if p := filepath.Join(dir, "nats-server"); fileExists(p) {
				return p
			}
		}
	}
	t.Skipf("nats-server not installed (go install %s@%s, or set RINGMQ_NATS_SERVER; make bench-compare installs it)",
		NATSServerModule, NATSServerVersion)
	return ""
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// TestNATSRun drives a real JetStream nats-server (file store, sync_interval always)
// for 1 s at 1000 msg/s: every message is acked and consumed once.
func TestNATSRun(t *testing.T) {
	bin := natsServerForTest(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	srv, err := StartNATS(ctx, bin, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	res := runDriver(t, "nats", DriverOptions{NATSURL: srv.Addr}, testWorkload(t), nil)
	if res.Sent != 1000 || res.Acked != 1000 || res.Errors != 0 || res.Received != 1000 {
		t.Fatalf("got sent %d acked %d errors %d (%s) received %d, want 1000/1000/0/1000",
			res.Sent, res.Acked, res.Errors, res.LastError, res.Received)
	}
}

// TestUnreachable: a system that is not there is reported by OpenDriver, before load.
func TestUnreachable(t *testing.T) {
	port, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, tc := range []struct {
		driver string
		o      DriverOptions
	}{{"ringmq", DriverOptions{NamesrvAddr: addr}}, {"nats", DriverOptions{NATSURL: "nats://" + addr}}} {
		d, err := OpenDriver(ctx, tc.driver, tc.o)
		if err == nil {
			d.Close()
			t.Fatalf("%s at a closed port: OpenDriver succeeded, want an error", tc.driver)
		}
		if !strings.Contains(err.Error(), tc.driver) || !strings.Contains(err.Error(), addr) {
			t.Errorf("%s: error %q does not name the driver and the address", tc.driver, err)
		}
	}
}

// buildRingMQ builds cmd/ringmq into a temp dir, or skips with the reason.
func buildRingMQ(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Skipf("go env GOMOD: %v", err)
	}
	root := filepath.Dir(strings.TrimSpace(string(out)))
	bin := filepath.Join(t.TempDir(), "ringmq")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/ringmq")
	cmd.Dir = root
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Skipf("cmd/ringmq does not build yet: %v: %s", err, msg)
	}
	if msg, _ := exec.Command(bin, "dev", "--help").CombinedOutput(); strings.Contains(string(msg), "unknown command") {
		t.Skipf("cmd/ringmq has no dev command yet: %s", strings.SplitN(string(msg), "\n", 2)[0])
	}
	return bin
}

// TestRingMQDevRun starts a real `ringmq dev` (SYNC_FLUSH) on free ports and runs 1 s at
// 1000 msg/s through it with the ringmq driver: all acked, all consumed.
func TestRingMQDevRun(t *testing.T) {
	bin := buildRingMQ(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	srv, err := StartRingMQDev(ctx, bin, t.TempDir(), "sync")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	res := runDriver(t, "ringmq", DriverOptions{NamesrvAddr: srv.Addr}, testWorkload(t), nil)
	if res.Sent != 1000 || res.Acked != 1000 || res.Errors != 0 || res.Received != 1000 || res.ConsumeErrors != 0 {
		t.Fatalf("got sent %d acked %d errors %d (%s) received %d consume errors %d (%s), want 1000/1000/0/1000/0",
			res.Sent, res.Acked, res.Errors, res.LastError, res.Received, res.ConsumeErrors, res.LastConsumeError)
	}
}

// TestStalledBrokerEndsOnTime: against a broker that never answers a send, the pacer
// fills the producer's in-flight limit, then stops when the schedule ends instead of waiting for
// slots; the messages it could not send are counted, not lost from the result.
func TestStalledBrokerEndsOnTime(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := remoting.NewServer(remoting.ServerConfig{MaxInFlightPerConn: 2 * MaxInFlightPerProducer},
		remoting.HandlerFunc(func(c *remoting.Conn, req *remoting.Command) {
			if req.Code == remoting.ReqSendMessage {
				return // held: never answered
			}
			c.Reply(req, c.NewResponse()) // topic creation: SUCCESS
		}))
	go srv.Serve(ln)
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}()
	w := testWorkload(t)
	w.ProducersPerTopic, w.SubscriptionsPerTopic = 1, 0
	d, err := OpenDriver(context.Background(), "ringmq", DriverOptions{BrokerAddr: ln.Addr().String()})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	start := time.Now()
	res, err := Run(context.Background(), Config{Workload: w, Driver: d, RatePerSec: 20_000, Duration: time.Second,
		DrainTimeout: 100 * time.Millisecond, Seed: 5})
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("run took %v, want about 1 s (the schedule's end)", took)
	}
	// The ringmq driver's producer keeps at most rmqMaxInFlight sends in flight.
	if res.Sent != rmqMaxInFlight || res.Acked != 0 || res.Unacked != rmqMaxInFlight || res.NotSent != 20_000-rmqMaxInFlight {
		t.Fatalf("got sent %d acked %d unacked %d not sent %d, want %d/0/%d/%d", res.Sent, res.Acked, res.Unacked,
			res.NotSent, rmqMaxInFlight, rmqMaxInFlight, 20_000-rmqMaxInFlight)
	}
}
