package compat

// The harness: TestMain builds the ringmq binary once; each test starts `ringmq namesrv`
// and `ringmq broker` (or `ringmq dev`) as real child processes on free loopback ports
// with a temp data dir, waits until they accept connections, and stops them at the end.
// Their output goes to a file per process and is copied into the test log when the test
// fails.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/admin"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/rlog"
)

// The binaries TestMain builds.
var ringmqBin, ringmqctlBin string

// Limits of the harness.
const (
	startTimeout = 30 * time.Second // a process accepts connections within it
	stopTimeout  = 40 * time.Second // SIGTERM to exit (the broker's own bound is 30 s)
	pollInterval = 20 * time.Millisecond
	logTailBytes = 64 << 10 // of each process's output copied to a failing test's log
	segmentBytes = 16 << 20 // commit-log segment size for the tests' brokers
	// Short registration intervals: a broker re-registers every 2 s and the name server
	// drops one silent for 30 s (it also drops a broker whose connection closes).
	registerPeriodMs = 2000
	brokerExpiry     = "30s"
	clusterName      = "CompatCluster"
	brokerName       = "broker-compat"
	defaultQueues    = 4
)

// offsetDirEnv names the directory where broadcasting consumers keep their offsets.
// The client reads it once, when its package initialises, so TestMain cannot set it for
// itself: it runs the test binary again with it set to a temp dir (otherwise offsets
// would go under $HOME and leak into the next run).
const offsetDirEnv = "rocketmq.client.localOffsetStoreDir"

func TestMain(m *testing.M) {
	if os.Getenv(offsetDirEnv) == "" {
		os.Exit(rerunWithOffsetDir())
	}
	rlog.SetLogLevel("error")
	dir, err := os.MkdirTemp("", "ringmq-compat-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "compat:", err)
		os.Exit(1)
	}
	ringmqBin, ringmqctlBin = filepath.Join(dir, "ringmq"), filepath.Join(dir, "ringmqctl")
	// Built from the product module's root: this module does not contain it.
	build := exec.Command("go", "build", "-o", dir+"/", "./cmd/ringmq", "./cmd/ringmqctl")
	build.Dir = filepath.Join("..", "..")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "compat: build ringmq and ringmqctl:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	// The client runs its callbacks under primitive.WithRecover, which recovers only when
	// a handler is set: without one a client panic (an async send unanswered for 3 s
	// panics after reporting the timeout) kills the test binary. Record them instead;
	// every cluster's cleanup fails its test if one happened.
	primitive.PanicHandler = func(v any) {
		clientPanics.Add(1)
		lastClientPanic.Store(fmt.Sprintf("%v", v))
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// rerunWithOffsetDir runs this test binary again, with the same arguments and
// offsetDirEnv set to a fresh temp dir, and returns its exit status.
func rerunWithOffsetDir() int {
	dir, err := os.MkdirTemp("", "ringmq-compat-offsets-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "compat:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	cmd := exec.Command(os.Args[0], os.Args[1:]...)
	cmd.Env = append(os.Environ(), offsetDirEnv+"="+dir)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	err = cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee) && ee.ExitCode() >= 0:
		return ee.ExitCode()
	default:
		fmt.Fprintln(os.Stderr, "compat: run tests:", err)
		return 1
	}
}

// Panics the client recovered through primitive.PanicHandler.
var (
	clientPanics    atomic.Int64
	lastClientPanic atomic.Value // string
)

// failOnClientPanic fails t at cleanup if the client panicked while t ran. The handler is
// process-wide: with parallel tests, a panic fails every test that was running.
func failOnClientPanic(t testing.TB) {
	before := clientPanics.Load()
	t.Cleanup(func() {
		if n := clientPanics.Load() - before; n > 0 {
			t.Errorf("the RocketMQ client panicked %d times during the test (recovered); last: %v", n, lastClientPanic.Load())
		}
	})
}

// freePort returns a loopback port nothing listens on right now.
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// waitFor polls cond every pollInterval until it returns nil or timeout passes; then it
// fails the test with what and cond's last error.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v: %v", what, timeout, err)
		}
		<-tick.C
	}
}

func dialable(addr string) func() error {
	return func() error {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return err
		}
		return c.Close()
	}
}

// proc is one ringmq child process.
type proc struct {
	t       testing.TB
	name    string
	args    []string
	logPath string
	cmd     *exec.Cmd
	done    chan struct{} // closed when the process has exited
	exitErr error
}

// startProc runs ringmq with args; its output is appended to logPath.
func startProc(t testing.TB, name, logPath string, args ...string) *proc {
	t.Helper()
	p := &proc{t: t, name: name, args: args, logPath: logPath}
	p.start()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			p.dumpLog()
		}
	})
	return p
}

func (p *proc) start() {
	p.t.Helper()
	out, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		p.t.Fatalf("%s: log file: %v", p.name, err)
	}
	fmt.Fprintf(out, "=== %s: ringmq %s\n", time.Now().Format(time.RFC3339Nano), strings.Join(p.args, " "))
	cmd := exec.Command(ringmqBin, p.args...)
	cmd.Stdout, cmd.Stderr = out, out
	// The suite starts dozens of brokers; as root each would attach its own eBPF programs,
	// which run on every syscall of the machine. The probes have their own tests (bpf/).
	cmd.Env = append(os.Environ(), "RINGMQ_PROBES=off")
	// If the test binary dies, the kernel kills the child too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		out.Close()
		p.t.Fatalf("%s: start: %v", p.name, err)
	}
	p.cmd, p.done, p.exitErr = cmd, make(chan struct{}), nil
	go func() {
		err := cmd.Wait()
		out.Close()
		p.exitErr = err
		close(p.done)
	}()
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// waitListening waits until addr accepts connections, failing early if p exits.
func (p *proc) waitListening(addr string) {
	p.t.Helper()
	dial := dialable(addr)
	waitFor(p.t, startTimeout, p.name+" listening on "+addr, func() error {
		if p.exited() {
			return fmt.Errorf("exited: %v (see its log)", p.exitErr)
		}
		return dial()
	})
}

// stop sends SIGTERM and waits for the exit; it returns the exit error (nil = status 0).
func (p *proc) stop() error {
	p.t.Helper()
	if p.exited() {
		return p.exitErr
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		p.t.Fatalf("%s: SIGTERM: %v", p.name, err)
	}
	select {
	case <-p.done:
		return p.exitErr
	case <-time.After(stopTimeout):
		p.kill()
		p.t.Fatalf("%s: still running %v after SIGTERM; killed", p.name, stopTimeout)
		return nil
	}
}

// kill sends SIGKILL and waits for the exit.
func (p *proc) kill() {
	if p.exited() {
		return
	}
	if err := p.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		p.t.Errorf("%s: SIGKILL: %v", p.name, err)
	}
	<-p.done
}

// restart starts the same command again (the previous run must have exited).
func (p *proc) restart() {
	p.t.Helper()
	if !p.exited() {
		p.t.Fatalf("BUG: restart of %s while it runs", p.name)
	}
	p.start()
}

// dumpLog copies the tail of the process's output into the test log.
func (p *proc) dumpLog() {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		p.t.Logf("%s: read log: %v", p.name, err)
		return
	}
	if len(b) > logTailBytes {
		b = b[len(b)-logTailBytes:]
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:]
		}
	}
	p.t.Logf("---- %s output (%s) ----\n%s---- end of %s ----", p.name, p.logPath, b, p.name)
}

// cluster is a name server and one broker, as separate processes.
type cluster struct {
	t           testing.TB
	dir         string
	namesrvAddr string
	brokerAddr  string
	namesrv     *proc
	broker      *proc // nil for a `ringmq dev` cluster
}

// clusterOptions tunes startCluster; the zero value is SYNC_FLUSH with defaults.
type clusterOptions struct {
	asyncFlush bool
	extraConf  string // more broker.conf lines
}

// startCluster starts `ringmq namesrv` and `ringmq broker -c broker.conf` on free loopback
// ports with a fresh data dir, and waits until both accept connections.
func startCluster(t testing.TB, opts clusterOptions) *cluster {
	t.Helper()
	failOnClientPanic(t)
	dir := t.TempDir()
	c := &cluster{
		t:           t,
		dir:         dir,
		namesrvAddr: fmt.Sprintf("127.0.0.1:%d", freePort(t)),
	}
	brokerPort := freePort(t)
	c.brokerAddr = fmt.Sprintf("127.0.0.1:%d", brokerPort)

	c.namesrv = startProc(t, "namesrv", filepath.Join(dir, "namesrv.log"),
		"namesrv", "--listen", c.namesrvAddr, "--broker-expiry", brokerExpiry, "--scan-interval", "1s")
	c.namesrv.waitListening(c.namesrvAddr)

	flush := "SYNC_FLUSH"
	if opts.asyncFlush {
		flush = "ASYNC_FLUSH"
	}
	conf := strings.Join([]string{
		"# written by tools/compat",
		"brokerClusterName=" + clusterName,
		"brokerName=" + brokerName,
		"brokerId=0",
		"namesrvAddr=" + c.namesrvAddr,
		"brokerIP1=127.0.0.1",
		"listenPort=" + strconv.Itoa(brokerPort),
		"storePathRootDir=" + filepath.Join(dir, "store"),
		"mappedFileSizeCommitLog=" + strconv.Itoa(segmentBytes),
		"flushDiskType=" + flush,
		"autoCreateTopicEnable=true",
		"defaultTopicQueueNums=" + strconv.Itoa(defaultQueues),
		"registerNameServerPeriod=" + strconv.Itoa(registerPeriodMs),
		fmt.Sprintf("adminListen=127.0.0.1:%d", freePort(t)),
		opts.extraConf,
	}, "\n") + "\n"
	confPath := filepath.Join(dir, "broker.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	c.broker = startProc(t, "broker", filepath.Join(dir, "broker.log"), "broker", "-c", confPath)
	c.broker.waitListening(c.brokerAddr)
	c.waitRegistered()
	return c
}

// autoCreateTopic is RocketMQ's template topic for auto-created topics (TBW102); a broker
// with autoCreateTopicEnable registers it, so its route says the broker is registered.
const autoCreateTopic = "TBW102"

// waitRegistered waits until the name server routes TBW102 to the broker: the broker's
// listener accepts before the broker serves and registers.
func (c *cluster) waitRegistered() {
	c.t.Helper()
	mqs := c.waitRoute(autoCreateTopic, 0)
	if mqs[0].BrokerName == "" {
		c.t.Fatalf("route of %s has no broker name", autoCreateTopic)
	}
}

// startDev starts `ringmq dev` (name server + broker in one process) on free ports.
func startDev(t testing.TB) *cluster {
	t.Helper()
	failOnClientPanic(t)
	dir := t.TempDir()
	c := &cluster{
		t:           t,
		dir:         dir,
		namesrvAddr: fmt.Sprintf("127.0.0.1:%d", freePort(t)),
		brokerAddr:  fmt.Sprintf("127.0.0.1:%d", freePort(t)),
	}
	// Small segments: the default 1 GiB ones are pre-written at start (2 GiB of zeros),
	// which takes tens of seconds when other tests load the disk.
	confPath := filepath.Join(dir, "broker.conf")
	conf := "# written by tools/compat\nmappedFileSizeCommitLog=" + strconv.Itoa(segmentBytes) + "\n"
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	c.namesrv = startProc(t, "dev", filepath.Join(dir, "dev.log"), "dev", "-c", confPath,
		"--data", filepath.Join(dir, "data"),
		"--namesrv-listen", c.namesrvAddr,
		"--broker-listen", c.brokerAddr,
		"--admin-listen", fmt.Sprintf("127.0.0.1:%d", freePort(t)))
	c.namesrv.waitListening(c.namesrvAddr)
	c.namesrv.waitListening(c.brokerAddr)
	c.waitRegistered()
	return c
}

// restartBroker stops the broker (SIGKILL when kill, else SIGTERM expecting status 0),
// starts it again on the same data, and waits until it accepts connections.
func (c *cluster) restartBroker(kill bool) {
	c.t.Helper()
	if kill {
		c.broker.kill()
	} else if err := c.broker.stop(); err != nil {
		c.t.Fatalf("broker: SIGTERM: want exit status 0, got %v", err)
	}
	c.broker.restart()
	c.broker.waitListening(c.brokerAddr)
	c.waitRegistered()
}

// committedOffsets returns queue id -> the offset group has committed on the broker
// (-1 = none) and queue id -> max offset, as `ringmqctl offsets --json` reports them.
func (c *cluster) committedOffsets(group, topic string) (committed, maxOffsets map[int]int64) {
	c.t.Helper()
	cmd := exec.Command(ringmqctlBin, "offsets", "--json", "--namesrv", c.namesrvAddr, "--group", group, topic)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		c.t.Fatalf("ringmqctl offsets: %v: %s", err, stderr.String())
	}
	var rows []struct {
		Queue     int   `json:"queue"`
		MaxOffset int64 `json:"maxOffset"`
		Committed int64 `json:"committed"`
	}
	if err := json.Unmarshal(out, &rows); err != nil {
		c.t.Fatalf("ringmqctl offsets: %v in %q", err, out)
	}
	committed, maxOffsets = map[int]int64{}, map[int]int64{}
	for _, r := range rows {
		committed[r.Queue], maxOffsets[r.Queue] = r.Committed, r.MaxOffset
	}
	return committed, maxOffsets
}

// instanceSeq makes client instance names unique in this process: clients that share
// an instance name share one underlying client, which must not outlive its cluster.
var instanceSeq atomic.Int64

func instance(role string) string {
	return fmt.Sprintf("%s-%d", role, instanceSeq.Add(1))
}

// createTopic creates topic on the broker with queues read and write queues, and waits
// until the name server routes it. It returns the topic's queues in route order.
func (c *cluster) createTopic(topic string, queues int) []*primitive.MessageQueue {
	c.t.Helper()
	a := c.newAdmin()
	defer a.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := a.CreateTopic(ctx, admin.WithTopicCreate(topic), admin.WithBrokerAddrCreate(c.brokerAddr),
		admin.WithReadQueueNums(queues), admin.WithWriteQueueNums(queues))
	if err != nil {
		c.t.Fatalf("create topic %s: %v", topic, err)
	}
	return c.waitRoute(topic, queues)
}

// waitRoute waits until the name server routes topic with queues queues (0 = any
// number) and returns them.
func (c *cluster) waitRoute(topic string, queues int) []*primitive.MessageQueue {
	c.t.Helper()
	a := c.newAdmin()
	defer a.Close()
	var mqs []*primitive.MessageQueue
	waitFor(c.t, startTimeout, "route of "+topic, func() error {
		var err error
		// The admin caches a route once found, so a wrong queue count stays wrong
		// until the timeout fails the test.
		mqs, err = a.FetchPublishMessageQueues(context.Background(), topic)
		switch {
		case err != nil:
			return err
		case len(mqs) == 0 || queues > 0 && len(mqs) != queues:
			return fmt.Errorf("got %d queues, want %d", len(mqs), queues)
		}
		return nil
	})
	return mqs
}

func (c *cluster) newAdmin() admin.Admin {
	c.t.Helper()
	a, err := admin.NewAdmin(admin.WithResolver(primitive.NewPassthroughResolver([]string{c.namesrvAddr})))
	if err != nil {
		c.t.Fatalf("admin: %v", err)
	}
	return a
}

// lockedLog collects lines from client callbacks for the test log.
type lockedLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *lockedLog) add(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.lines) < 20 {
		l.lines = append(l.lines, fmt.Sprintf(format, args...))
	}
}

func (l *lockedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}
