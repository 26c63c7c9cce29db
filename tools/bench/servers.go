package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Starting the systems under test for side-by-side runs (tools/bench/compare) and for
// tests: `ringmq dev` and a JetStream nats-server, each a child process on loopback with
// free ports and its data under a directory the caller chooses (put both on the same disk).

const (
	// NATSServerModule and NATSServerVersion pin the peer: the version is installed with
	// `go install NATSServerModule@NATSServerVersion` (the Makefile's bench-compare does it).
	NATSServerModule  = "github.com/nats-io/nats-server/v2"
	NATSServerVersion = "v2.12.15"

	serverReadyTimeout = 30 * time.Second
	serverReadyPoll    = 20 * time.Millisecond
	serverStopTimeout  = 10 * time.Second
)

// Server is a started child process.
type Server struct {
	Name string
	Addr string // what the driver connects to: namesrv host:port, or nats://host:port
	cmd  *exec.Cmd
	log  *os.File
	done chan error
}

// FreePort returns a loopback port that was free a moment ago.
func FreePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// StartRingMQDev starts `bin dev` with its data in dataDir and flush mode "sync" or
// "async", and waits until both its ports accept connections.
func StartRingMQDev(ctx context.Context, bin, dataDir, flush string) (*Server, error) {
	nsPort, err := FreePort()
	if err != nil {
		return nil, err
	}
	brPort, err := FreePort()
	if err != nil {
		return nil, err
	}
	adminPort, err := FreePort()
	if err != nil {
		return nil, err
	}
	ns, br := fmt.Sprintf("127.0.0.1:%d", nsPort), fmt.Sprintf("127.0.0.1:%d", brPort)
	s, err := startServer(ctx, "ringmq", dataDir, bin, "dev", "--data", dataDir,
		"--namesrv-listen", ns, "--broker-listen", br, "--flush", flush,
		"--admin-listen", fmt.Sprintf("127.0.0.1:%d", adminPort))
	if err != nil {
		return nil, err
	}
	s.Addr = ns
	if err := s.waitPorts(ctx, ns, br); err != nil {
		_ = s.Stop()
		return nil, err
	}
	return s, nil
}

// StartNATS starts nats-server with JetStream on file storage in storeDir and
// sync_interval always (an fsync before every ack: its only durable-ack mode).
func StartNATS(ctx context.Context, bin, storeDir string) (*Server, error) {
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(storeDir, 0o755); err != nil {
		return nil, fmt.Errorf("nats store dir: %w", err)
	}
	conf := filepath.Join(storeDir, "js.conf")
	text := fmt.Sprintf("# ringmq-bench peer: JetStream file store, fsync before every ack\nlisten: 127.0.0.1:%d\n"+
		"jetstream {\n  store_dir: %q\n  sync_interval: always\n  max_file_store: 16GB\n  max_memory_store: 1GB\n}\n", port, storeDir)
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		return nil, fmt.Errorf("nats config: %w", err)
	}
	s, err := startServer(ctx, "nats", storeDir, bin, "-c", conf)
	if err != nil {
		return nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	s.Addr = "nats://" + addr
	if err := s.waitPorts(ctx, addr); err != nil {
		_ = s.Stop()
		return nil, err
	}
	return s, nil
}

func startServer(ctx context.Context, name, dir, bin string, args ...string) (*Server, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	logf, err := os.Create(filepath.Join(dir, name+".log"))
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s (%s): %w", name, bin, err)
	}
	s := &Server{Name: name, cmd: cmd, log: logf, done: make(chan error, 1)}
	go func() { s.done <- cmd.Wait() }()
	return s, nil
}

// waitPorts polls until every address accepts a TCP connection, the process exits (an
// error carrying the end of its log) or serverReadyTimeout passes.
func (s *Server) waitPorts(ctx context.Context, addrs ...string) error {
	deadline := time.NewTimer(serverReadyTimeout)
	defer deadline.Stop()
	poll := time.NewTicker(serverReadyPoll)
	defer poll.Stop()
	for _, a := range addrs {
		for {
			c, err := net.DialTimeout("tcp", a, time.Second)
			if err == nil {
				c.Close()
				break
			}
			select {
			case werr := <-s.done:
				s.done <- werr
				return fmt.Errorf("%s exited before listening on %s (%v): %s", s.Name, a, werr, s.logTail())
			case <-deadline.C:
				return fmt.Errorf("%s not listening on %s after %v: %s", s.Name, a, serverReadyTimeout, s.logTail())
			case <-ctx.Done():
				return ctx.Err()
			case <-poll.C:
			}
		}
	}
	return nil
}

// logTail returns the last lines of the server's log, for error messages.
func (s *Server) logTail() string {
	b, err := os.ReadFile(s.log.Name())
	if err != nil {
		return "(no log)"
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.Join(lines[max(0, len(lines)-8):], " | ")
}

// Stop sends SIGTERM, waits serverStopTimeout, then kills.
func (s *Server) Stop() error {
	defer s.log.Close()
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
		return nil
	case <-time.After(serverStopTimeout):
		_ = s.cmd.Process.Kill()
		<-s.done
		return errors.New(s.Name + " did not stop on SIGTERM; killed")
	}
}
