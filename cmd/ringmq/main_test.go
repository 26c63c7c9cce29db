package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The test binary doubles as the ringmq binary: with RINGMQ_TEST_MAIN=1 it runs main,
// so the tests below start real processes and signal them.
func TestMain(m *testing.M) {
	if os.Getenv("RINGMQ_TEST_MAIN") == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

// child is a ringmq process started by a test.
type child struct {
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
	err  error
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func startChild(t *testing.T, args ...string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "RINGMQ_TEST_MAIN=1")
	c := &child{cmd: cmd, out: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = c.out, c.out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		c.err = cmd.Wait()
		close(c.done)
	}()
	t.Cleanup(func() {
		select {
		case <-c.done:
		default:
			cmd.Process.Kill()
			<-c.done
		}
		if t.Failed() {
			t.Logf("ringmq %s output:\n%s", strings.Join(args, " "), c.out.String())
		}
	})
	return c
}

// wait waits for the exit and returns its status.
func (c *child) wait(t *testing.T, timeout time.Duration) int {
	t.Helper()
	select {
	case <-c.done:
	case <-time.After(timeout):
		t.Fatalf("still running after %v", timeout)
	}
	var ee *exec.ExitError
	if errors.As(c.err, &ee) {
		return ee.ExitCode()
	}
	if c.err != nil {
		t.Fatal(c.err)
	}
	return 0
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// waitDialable polls addr until it accepts a connection (or the child exits).
func waitDialable(t *testing.T, c *child, addr string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			conn.Close()
			return
		}
		select {
		case <-c.done:
			t.Fatalf("exited before listening on %s: %v", addr, c.err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not accepting within 30s: %v", addr, err)
		}
		<-tick.C
	}
}

func TestUsageExitCodes(t *testing.T) {
	tests := []struct {
		args []string
		code int
		want string
	}{
		{nil, 2, "Usage:"},
		{[]string{"help"}, 0, "ringmq dev"},
		{[]string{"frobnicate"}, 2, `unknown command "frobnicate"`},
		{[]string{"namesrv", "--help"}, 0, "-listen HOST:PORT"},
		{[]string{"broker", "--help"}, 0, "-namesrv ADDR[;ADDR]"},
		{[]string{"dev", "--no-such-flag"}, 2, "flag provided but not defined"},
		{[]string{"namesrv", "extra"}, 2, `unexpected argument "extra"`},
		{[]string{"broker", "--flush", "fast"}, 1, `--flush: bad value "fast": want sync or async`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := run(tt.args, &out, &errOut)
			if code != tt.code {
				t.Errorf("exit code %d, want %d", code, tt.code)
			}
			if all := out.String() + errOut.String(); !strings.Contains(all, tt.want) {
				t.Errorf("output does not contain %q:\n%s", tt.want, all)
			}
		})
	}
}

// TestBrokerConfErrorsNameKeyAndValue: a bad value stops the broker before it opens
// anything, naming the key and the value; unknown keys are warned about by name.
func TestBrokerConfErrorsNameKeyAndValue(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "broker.conf")
	text := "warmMapedFileEnable=true\nflushDiskType=SOMETIMES\n"
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	c := startChild(t, "broker", "-c", conf, "--data", filepath.Join(dir, "data"))
	if code := c.wait(t, 30*time.Second); code != 1 {
		t.Errorf("exit code %d, want 1", code)
	}
	out := c.out.String()
	for _, want := range []string{"key=warmMapedFileEnable", `line 2: flushDiskType: bad value "SOMETIMES"`} {
		if !strings.Contains(out, want) {
			t.Errorf("output does not contain %q:\n%s", want, out)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "data")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("data dir created despite the bad config (stat: %v)", err)
	}
}

// TestNamesrvSIGTERM: the name server logs its address, and SIGTERM stops it with 0.
func TestNamesrvSIGTERM(t *testing.T) {
	addr := freeAddr(t)
	c := startChild(t, "namesrv", "--listen", addr)
	waitDialable(t, c, addr)
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := c.wait(t, 30*time.Second); code != 0 {
		t.Errorf("exit code %d after SIGTERM, want 0", code)
	}
	out := c.out.String()
	for _, want := range []string{fmt.Sprintf("addr=%s", addr), "signal received", "component=namesrv"} {
		if !strings.Contains(out, want) {
			t.Errorf("log does not contain %q:\n%s", want, out)
		}
	}
}

// TestDevStartsAndStops: `ringmq dev` opens its store, logs where the data lives, the
// flush mode, the I/O backend and both addresses, and SIGTERM stops it with 0.
func TestDevStartsAndStops(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "broker.conf")
	if err := os.WriteFile(conf, []byte("mappedFileSizeCommitLog=8388608\nflushDiskType=ASYNC_FLUSH\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	nsAddr, brokerAddr, adminAddr := freeAddr(t), freeAddr(t), freeAddr(t)
	data := filepath.Join(dir, "data")
	c := startChild(t, "dev", "-c", conf, "--data", data, "--flush", "sync",
		"--namesrv-listen", nsAddr, "--broker-listen", brokerAddr, "--admin-listen", adminAddr)
	waitDialable(t, c, brokerAddr)
	// The listener is bound before the store opens; a SIGTERM during the open must
	// still end in a clean shutdown.
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := c.wait(t, 40*time.Second); code != 0 {
		t.Errorf("exit code %d after SIGTERM, want 0", code)
	}
	out := c.out.String()
	for _, want := range []string{
		"addr=" + nsAddr,
		"listen=" + brokerAddr,
		"data=" + data,
		"flush=SYNC_FLUSH", // the flag wins over the file's ASYNC_FLUSH
		"io_backend=pwrite",
		"component=broker took=",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("log does not contain %q", want)
		}
	}
}

// TestDevAdminAndHdrLog: --admin-listen serves /metrics while the broker runs, and
// --hdr-log creates its file. (Its content is perf's to test: with no request served,
// no interval line is written.)
func TestDevAdminAndHdrLog(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "broker.conf")
	if err := os.WriteFile(conf, []byte("mappedFileSizeCommitLog=8388608\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	hdrLog := filepath.Join(dir, "latency.hlog")
	adminAddr := freeAddr(t)
	c := startChild(t, "dev", "-c", conf, "--data", filepath.Join(dir, "data"), "--hdr-log", hdrLog,
		"--namesrv-listen", freeAddr(t), "--broker-listen", freeAddr(t), "--admin-listen", adminAddr)
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(c.out.String(), "broker ready") {
		if time.Now().After(deadline) {
			t.Fatal("no \"broker ready\" within 30s")
		}
		select {
		case <-c.done:
			t.Fatalf("exited: %v", c.err)
		case <-time.After(10 * time.Millisecond):
		}
	}
	resp, err := http.Get("http://" + adminAddr + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || len(body) == 0 {
		t.Errorf("GET /metrics: status %d, %d bytes; want 200 with metrics", resp.StatusCode, len(body))
	}
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := c.wait(t, 40*time.Second); code != 0 {
		t.Errorf("exit code %d after SIGTERM, want 0", code)
	}
	if _, err := os.Stat(hdrLog); err != nil {
		t.Errorf("hdr log: %v", err)
	}
}
