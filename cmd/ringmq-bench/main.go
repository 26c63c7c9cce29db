// Command ringmq-bench is ringmq's open-loop load generator: it runs an OpenMessaging
// Benchmark workload file against ringmq (or Apache RocketMQ), NATS JetStream or an
// in-process null responder, and reports publish latency, publish delay and end-to-end
// latency measured from each message's intended send time. The generator is package
// github.com/ringmq/ringmq/tools/bench; this main only parses flags.
//
//	ringmq-bench --driver ringmq --namesrv 127.0.0.1:9876 --workload tools/bench/workloads/reference.yaml --out result.json
//	ringmq-bench --driver nats --nats-url nats://127.0.0.1:4222 --workload ... [--duration 30s] [--rate N] [--hdr-log FILE]
//	ringmq-bench --driver timer --workload ... [--rate N]   # the machine floor alone: the pacer, nothing sent
//
// Every run holds /dev/cpu_dma_latency at 0 while it lasts (--cpu-idle-poll, when it can
// be opened: root), and after the result measures the machine floor (the pacer alone at the
// same rate, --machine-floor) and the generator floor (the null driver, --floor).
//
// Exit status: 0 on a completed run, 1 on any error, 2 on bad usage.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/ringmq/ringmq/tools/bench"
)

// maxFloorWarmup bounds the floor run's warm-up: the null driver has nothing to warm.
const maxFloorWarmup = 5 * time.Second

type options struct {
	driver, namesrv, broker, natsURL, workload, out string
	hdrLog                                          string
	duration, warmup, floorDuration                 time.Duration
	warmupSet                                       bool
	rate                                            float64
	floor, machineFloor, cpuIdlePoll                bool
	spinProbe                                       time.Duration
}

func parseFlags(args []string) (*options, error) {
	fs := flag.NewFlagSet("ringmq-bench", flag.ContinueOnError)
	o := &options{}
	fs.StringVar(&o.driver, "driver", "", "driver: "+strings.Join(append(bench.DriverNames(), bench.MachineDriverName), "|")+
		" ("+bench.MachineDriverName+": the machine floor alone)")
	fs.StringVar(&o.namesrv, "namesrv", "127.0.0.1:9876", "name server HOST:PORT (driver ringmq)")
	fs.StringVar(&o.broker, "broker", "", "drive this one broker HOST:PORT directly, without a name server (driver ringmq)")
	fs.StringVar(&o.natsURL, "nats-url", "nats://127.0.0.1:4222", "NATS server URL (driver nats)")
	fs.StringVar(&o.workload, "workload", "", "OMB workload YAML file")
	fs.StringVar(&o.out, "out", "", "write the OMB-shaped JSON result to FILE")
	fs.StringVar(&o.hdrLog, "hdr-log", "", "write HdrHistogram interval logs to FILE")
	fs.DurationVar(&o.duration, "duration", 0, "measurement duration (overrides testDurationMinutes)")
	fs.Func("warmup", "warm-up duration (overrides warmupDurationMinutes)", func(s string) error {
		d, err := time.ParseDuration(s)
		o.warmup, o.warmupSet = d, true
		return err
	})
	fs.Float64Var(&o.rate, "rate", 0, "fixed total rate in msg/s (overrides producerRate)")
	fs.BoolVar(&o.floor, "floor", true, "also run the null driver at the same rate and report it beside the result")
	fs.DurationVar(&o.floorDuration, "floor-duration", 30*time.Second, "longest measurement of the floor runs")
	fs.BoolVar(&o.machineFloor, "machine-floor", true, "also run the pacer alone (nothing sent) at the same rate and report its wake-up lateness")
	fs.DurationVar(&o.spinProbe, "spin-probe", 2*time.Second, "with the machine floor, first spin a thread on the clock this long and report the gaps over 20 us (0: off)")
	fs.BoolVar(&o.cpuIdlePoll, "cpu-idle-poll", true, "hold /dev/cpu_dma_latency at 0 for the whole run so idle CPUs poll instead of halting (needs root)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if o.driver == "" || o.workload == "" {
		return nil, errors.New("--driver and --workload are required")
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	if o.spinProbe < 0 {
		return nil, fmt.Errorf("--spin-probe %v: want 0 (off) or a positive duration", o.spinProbe)
	}
	return o, nil
}

func main() {
	bench.SetDefaultGOMAXPROCS()
	o, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "ringmq-bench:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "ringmq-bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o *options) error {
	w, err := bench.LoadWorkload(o.workload)
	if err != nil {
		return err
	}
	if o.out != "" { // fail on an unwritable --out before any load, not after the run
		f, err := os.Create(o.out)
		if err != nil {
			return fmt.Errorf("create result file: %w", err)
		}
		f.Close()
	}
	var hdrOut io.Writer
	if o.hdrLog != "" {
		f, err := os.Create(o.hdrLog)
		if err != nil {
			return fmt.Errorf("create hdr log: %w", err)
		}
		defer f.Close()
		hdrOut = f
	}
	hold := bench.HoldCPUIdlePoll(o.cpuIdlePoll)
	defer hold.Release()
	idle := hold.Status
	fmt.Printf("cpu idle poll: %s\n", idle)
	if o.driver == bench.MachineDriverName {
		return runMachineAlone(ctx, o, w, idle)
	}
	cfg := bench.Config{Workload: w, RatePerSec: o.rate, Duration: o.duration, Warmup: o.warmup, WarmupSet: o.warmupSet,
		Progress: os.Stdout, HDRLog: hdrOut}
	res, err := runDriver(ctx, o.driver, bench.DriverOptions{NamesrvAddr: o.namesrv, BrokerAddr: o.broker, NATSURL: o.natsURL}, cfg)
	if err != nil {
		return err
	}
	res.CPUIdlePoll = &idle
	// The floors run at the rate the result achieved, for as long (up to --floor-duration).
	floorRate := max(res.PublishRate, 1)
	floorDuration := min(res.DurationValue(), o.floorDuration)
	floorWarmup := min(w.WarmupDuration(), maxFloorWarmup)
	if o.warmupSet {
		floorWarmup = min(o.warmup, maxFloorWarmup)
	}
	if o.machineFloor && floorDuration > 0 && ctx.Err() == nil {
		fmt.Printf("\nmachine floor: the pacer alone at %.0f wake-ups/s, nothing sent\n", floorRate)
		m, err := bench.MeasureMachineFloor(ctx, bench.MachineConfig{RatePerSec: floorRate, Duration: floorDuration,
			Warmup: floorWarmup, SpinProbe: o.spinProbe, Progress: os.Stdout})
		if err != nil {
			return fmt.Errorf("machine floor: %w", err)
		}
		res.Machine = m
	}
	if o.floor && o.driver != "null" && floorDuration > 0 && ctx.Err() == nil {
		fmt.Printf("\nfloor: null driver at %.0f msg/s\n", floorRate)
		fcfg := cfg
		fcfg.HDRLog, fcfg.RatePerSec = nil, floorRate
		fcfg.Duration, fcfg.Warmup, fcfg.WarmupSet = floorDuration, floorWarmup, true
		floor, err := runDriver(ctx, "null", bench.DriverOptions{}, fcfg)
		if err != nil {
			return fmt.Errorf("floor run: %w", err)
		}
		res.Floor = floor
	}
	res.WriteTable(os.Stdout)
	if o.out != "" {
		return res.WriteJSON(o.out)
	}
	return nil
}

// runMachineAlone is --driver timer: the machine floor at the workload's (or --rate's) rate
// for its (or --duration's) duration, reported like a result.
func runMachineAlone(ctx context.Context, o *options, w *bench.Workload, idle bench.CPUIdlePoll) error {
	rate, err := bench.MachineRate(w, o.rate)
	if err != nil {
		return err
	}
	mc := bench.MachineConfig{RatePerSec: rate, Duration: w.TestDuration(), Warmup: min(w.WarmupDuration(), maxFloorWarmup),
		SpinProbe: o.spinProbe, Progress: os.Stdout}
	if o.duration > 0 {
		mc.Duration = o.duration
	}
	if o.warmupSet {
		mc.Warmup = o.warmup
	}
	m, err := bench.MeasureMachineFloor(ctx, mc)
	if err != nil {
		return err
	}
	res := bench.MachineResult(w, m, idle)
	res.WriteTable(os.Stdout)
	if o.out != "" {
		return res.WriteJSON(o.out)
	}
	return nil
}

func runDriver(ctx context.Context, name string, do bench.DriverOptions, cfg bench.Config) (*bench.Result, error) {
	d, err := bench.OpenDriver(ctx, name, do)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	cfg.Driver = d
	return bench.Run(ctx, cfg)
}
