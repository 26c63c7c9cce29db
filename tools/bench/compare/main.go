// Command compare is the side-by-side run behind `make bench-compare`: it starts
// `ringmq dev` and a JetStream nats-server (file store, sync_interval always) on loopback
// with their data on the same disk, runs the same OMB workloads against each in turn
// (A, B, A, B: ringmq, nats, ringmq, nats, each on a fresh server), measures the
// generator's own floors at the same rate (the pacer alone: the machine's wake-up lateness;
// then the null driver), and prints one table of throughput and latency percentiles
// (medians over the runs, with spread) and ratios. For the whole run it holds
// /dev/cpu_dma_latency at 0 (--cpu-idle-poll, when root), so both systems, the generator
// and the floors see the same CPU idle setting.
//
//	go run ./tools/bench/compare [--quick] [--runs 2] [--data-dir DIR] [--out DIR]
//	    [--nats-server PATH] [--ringmq PATH] [--workloads reference,max-rate-1p,...]
//
// --quick runs each workload for 10 s after a 2 s warm-up, one A/B pair: a sanity run,
// not a result. Every run's OMB-shaped JSON is written under --out.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/ringmq/ringmq/tools/bench"
)

type options struct {
	quick                 bool
	runs                  int
	dataDir, outDir       string
	natsServer, ringmqBin string
	natsVersion           string // what the binary says, shown in the table
	workloads             string
	duration, warmup      time.Duration
	cpuIdlePoll           bool
	spinProbe             time.Duration
	idle                  bench.CPUIdlePoll // what the run got, shown in the table and the JSON
}

func parseFlags() (*options, error) {
	o := &options{}
	flag.BoolVar(&o.quick, "quick", false, "short runs (10 s + 2 s warm-up, one A/B pair): a sanity check")
	flag.IntVar(&o.runs, "runs", 2, "A/B pairs per workload")
	flag.StringVar(&o.dataDir, "data-dir", os.TempDir(), "where the servers' data directories are made (one disk for both)")
	flag.StringVar(&o.outDir, "out", "bench-results", "directory for each run's JSON result")
	flag.StringVar(&o.natsServer, "nats-server", "", "nats-server binary (default: PATH, then GOBIN/GOPATH/bin, else go install "+bench.NATSServerVersion+")")
	flag.StringVar(&o.ringmqBin, "ringmq", "", "ringmq binary (default: go build ./cmd/ringmq)")
	flag.StringVar(&o.workloads, "workloads", "reference,max-rate-1p,max-rate-16p,e2e-1k", "workload names in tools/bench/workloads")
	flag.DurationVar(&o.duration, "duration", 0, "measurement duration per run (default: the workload's)")
	flag.DurationVar(&o.warmup, "warmup", -1, "warm-up per run (default: the workload's)")
	flag.BoolVar(&o.cpuIdlePoll, "cpu-idle-poll", true, "hold /dev/cpu_dma_latency at 0 for the whole run so idle CPUs poll instead of halting (needs root)")
	flag.DurationVar(&o.spinProbe, "spin-probe", 2*time.Second, "before each machine floor, spin a thread on the clock this long and report gaps over 20 us (0: off)")
	flag.Parse()
	if o.runs < 1 || o.spinProbe < 0 || flag.NArg() > 0 {
		return nil, errors.New("usage: compare [--quick] [--runs N] [--data-dir DIR] [--out DIR] [--workloads a,b]")
	}
	if o.quick {
		o.runs = 1
		if o.duration == 0 {
			o.duration = 10 * time.Second
		}
		if o.warmup < 0 {
			o.warmup = 2 * time.Second
		}
	}
	return o, nil
}

func main() {
	bench.SetDefaultGOMAXPROCS()
	o, err := parseFlags()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "compare:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o *options) error {
	hold := bench.HoldCPUIdlePoll(o.cpuIdlePoll)
	defer hold.Release()
	o.idle = hold.Status
	fmt.Printf("cpu idle poll: %s\n", o.idle)
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	work, err := os.MkdirTemp(o.dataDir, "ringmq-bench-compare-")
	if err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	defer os.RemoveAll(work)
	if o.natsServer, err = findNATSServer(ctx, o.natsServer); err != nil {
		return err
	}
	out, err := exec.CommandContext(ctx, o.natsServer, "--version").Output()
	if err != nil {
		return fmt.Errorf("%s --version: %w", o.natsServer, err)
	}
	o.natsVersion = strings.TrimSpace(string(out))
	if !strings.Contains(o.natsVersion, bench.NATSServerVersion) {
		fmt.Fprintf(os.Stderr, "compare: warning: %s is %q, the pinned peer is %s\n", o.natsServer, o.natsVersion, bench.NATSServerVersion)
	}
	if o.ringmqBin == "" {
		o.ringmqBin = filepath.Join(work, "ringmq")
		if err := goCmd(ctx, root, "build", "-o", o.ringmqBin, "./cmd/ringmq"); err != nil {
			return fmt.Errorf("build ringmq: %w", err)
		}
	}
	if err := os.MkdirAll(o.outDir, 0o755); err != nil {
		return fmt.Errorf("out dir: %w", err)
	}
	var rows []row
	for _, name := range strings.Split(o.workloads, ",") {
		w, err := bench.LoadWorkload(filepath.Join(root, "tools/bench/workloads", strings.TrimSpace(name)+".yaml"))
		if err != nil {
			return err
		}
		wr, err := compareWorkload(ctx, o, work, w)
		if err != nil {
			return fmt.Errorf("workload %s: %w", w.Name, err)
		}
		rows = append(rows, wr...)
	}
	printTable(os.Stdout, o, rows)
	return nil
}

// compareWorkload runs A (ringmq), B (nats) o.runs times, then the machine floor and the
// null floor at ringmq's median rate.
func compareWorkload(ctx context.Context, o *options, work string, w *bench.Workload) ([]row, error) {
	var rm, nt []*bench.Result
	for i := 0; i < o.runs; i++ {
		r, err := runOnce(ctx, o, work, w, "ringmq", i, 0)
		if err != nil {
			return nil, err
		}
		rm = append(rm, r)
		n, err := runOnce(ctx, o, work, w, "nats", i, 0)
		if err != nil {
			return nil, err
		}
		nt = append(nt, n)
	}
	floorRate := max(median(collect(rm, func(r *bench.Result) float64 { return r.PublishRate })), 1)
	mf, err := machineFloor(ctx, o, w, floorRate)
	if err != nil {
		return nil, err
	}
	fl, err := runOnce(ctx, o, work, w, "null", 0, floorRate)
	if err != nil {
		return nil, err
	}
	return []row{{workload: w.Name, system: "ringmq", results: rm}, {workload: w.Name, system: "nats", results: nt},
		{workload: w.Name, system: "floor (null)", results: []*bench.Result{fl}},
		{workload: w.Name, system: "floor (machine)", results: []*bench.Result{mf}}}, nil
}

// machineFloor runs the pacer alone (nothing sent) at rate for the run's duration and
// warm-up, and writes its JSON beside the runs'.
func machineFloor(ctx context.Context, o *options, w *bench.Workload, rate float64) (*bench.Result, error) {
	fmt.Printf("\n=== %s: machine floor, the pacer alone at %.0f wake-ups/s ===\n", w.Name, rate)
	mc := bench.MachineConfig{RatePerSec: rate, Duration: w.TestDuration(), Warmup: w.WarmupDuration(), SpinProbe: o.spinProbe, Progress: os.Stdout}
	if o.duration > 0 {
		mc.Duration = o.duration
	}
	if o.warmup >= 0 {
		mc.Warmup = o.warmup
	}
	m, err := bench.MeasureMachineFloor(ctx, mc)
	if err != nil {
		return nil, fmt.Errorf("machine floor: %w", err)
	}
	res := bench.MachineResult(w, m, o.idle)
	res.WriteTable(os.Stdout)
	return res, res.WriteJSON(filepath.Join(o.outDir, fmt.Sprintf("%s-%s-1.json", w.Name, bench.MachineDriverName)))
}

// runOnce starts a fresh server (none for null), runs the workload, stops the server.
func runOnce(ctx context.Context, o *options, work string, w *bench.Workload, driver string, i int, rate float64) (*bench.Result, error) {
	dir := filepath.Join(work, fmt.Sprintf("%s-%s-%d", w.Name, driver, i))
	do := bench.DriverOptions{}
	var srv *bench.Server
	var err error
	switch driver {
	case "ringmq":
		flush := "sync"
		if w.FlushDiskType == bench.FlushAsync {
			flush = "async"
		}
		srv, err = bench.StartRingMQDev(ctx, o.ringmqBin, dir, flush)
		if srv != nil {
			do.NamesrvAddr = srv.Addr
		}
	case "nats":
		srv, err = bench.StartNATS(ctx, o.natsServer, dir)
		if srv != nil {
			do.NATSURL = srv.Addr
		}
	}
	if err != nil {
		return nil, err
	}
	if srv != nil {
		defer func() {
			if err := srv.Stop(); err != nil {
				fmt.Fprintln(os.Stderr, "compare:", err)
			}
			_ = os.RemoveAll(dir)
		}()
	}
	fmt.Printf("\n=== %s on %s, run %d ===\n", w.Name, driver, i+1)
	d, err := bench.OpenDriver(ctx, driver, do)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	cfg := bench.Config{Workload: w, Driver: d, RatePerSec: rate, Duration: o.duration, Progress: os.Stdout}
	if o.warmup >= 0 {
		cfg.Warmup, cfg.WarmupSet = o.warmup, true
	}
	res, err := bench.Run(ctx, cfg)
	if err != nil {
		return nil, err
	}
	res.CPUIdlePoll = &o.idle
	res.WriteTable(os.Stdout)
	out := filepath.Join(o.outDir, fmt.Sprintf("%s-%s-%d.json", w.Name, driver, i+1))
	return res, res.WriteJSON(out)
}

func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("run compare inside the ringmq module (go run ./tools/bench/compare)")
	}
	return filepath.Dir(mod), nil
}

func goCmd(ctx context.Context, dir string, args ...string) error {
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir, cmd.Stdout, cmd.Stderr = dir, os.Stderr, os.Stderr
	return cmd.Run()
}

// findNATSServer returns path if set, else nats-server from PATH, GOBIN or GOPATH/bin, else
// installs the pinned version into GOBIN (or GOPATH/bin).
func findNATSServer(ctx context.Context, path string) (string, error) {
	if path != "" {
		return path, nil
	}
	if p, err := exec.LookPath("nats-server"); err == nil {
		return p, nil
	}
	bin, err := goBinDir()
	if err != nil {
		return "", err
	}
	p := filepath.Join(bin, "nats-server")
	if _, err := os.Stat(p); err == nil {
		return p, nil
	}
	fmt.Printf("installing %s@%s into %s\n", bench.NATSServerModule, bench.NATSServerVersion, bin)
	if err := goCmd(ctx, "", "install", bench.NATSServerModule+"@"+bench.NATSServerVersion); err != nil {
		return "", fmt.Errorf("install nats-server: %w", err)
	}
	return p, nil
}

func goBinDir() (string, error) {
	out, err := exec.Command("go", "env", "GOBIN", "GOPATH").Output()
	if err != nil {
		return "", fmt.Errorf("go env: %w", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) > 0 && strings.TrimSpace(lines[0]) != "" {
		return strings.TrimSpace(lines[0]), nil
	}
	gopath := strings.TrimSpace(lines[len(lines)-1])
	return filepath.Join(strings.Split(gopath, string(os.PathListSeparator))[0], "bin"), nil
}
