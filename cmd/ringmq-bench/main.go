// Command ringmq-bench is ringmq's open-loop load generator: it runs an OpenMessaging
// Benchmark workload file against ringmq (or Apache RocketMQ), NATS JetStream or an
// in-process null responder, and reports publish latency, publish delay and end-to-end
// latency measured from each message's intended send time. The generator is package
// github.com/ringmq/ringmq/tools/bench; this main only parses flags.
//
//	ringmq-bench --driver ringmq --namesrv 127.0.0.1:9876 --workload tools/bench/workloads/reference.yaml --out result.json
//	ringmq-bench --driver nats --nats-url nats://127.0.0.1:4222 --workload ... [--duration 30s] [--rate N] [--hdr-log FILE]
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
	floor                                           bool
}

func parseFlags(args []string) (*options, error) {
	fs := flag.NewFlagSet("ringmq-bench", flag.ContinueOnError)
	o := &options{}
	fs.StringVar(&o.driver, "driver", "", "driver: "+strings.Join(bench.DriverNames(), "|"))
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
	fs.DurationVar(&o.floorDuration, "floor-duration", 30*time.Second, "longest measurement of the floor run")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if o.driver == "" || o.workload == "" {
		return nil, errors.New("--driver and --workload are required")
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %v", fs.Args())
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
	cfg := bench.Config{Workload: w, RatePerSec: o.rate, Duration: o.duration, Warmup: o.warmup, WarmupSet: o.warmupSet,
		Progress: os.Stdout, HDRLog: hdrOut}
	res, err := runDriver(ctx, o.driver, bench.DriverOptions{NamesrvAddr: o.namesrv, BrokerAddr: o.broker, NATSURL: o.natsURL}, cfg)
	if err != nil {
		return err
	}
	if o.floor && o.driver != "null" && ctx.Err() == nil {
		fmt.Printf("\nfloor: null driver at %.0f msg/s\n", res.PublishRate)
		fcfg := cfg
		fcfg.HDRLog, fcfg.RatePerSec = nil, max(res.PublishRate, 1)
		fcfg.Duration = min(res.DurationValue(), o.floorDuration)
		fcfg.Warmup, fcfg.WarmupSet = min(w.WarmupDuration(), maxFloorWarmup), true
		if o.warmupSet {
			fcfg.Warmup = min(o.warmup, maxFloorWarmup)
		}
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

func runDriver(ctx context.Context, name string, do bench.DriverOptions, cfg bench.Config) (*bench.Result, error) {
	d, err := bench.OpenDriver(ctx, name, do)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	cfg.Driver = d
	return bench.Run(ctx, cfg)
}
