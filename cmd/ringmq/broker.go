package main

// ringmq broker: one broker, configured by broker.conf (-c) and flags.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"path/filepath"
	"strings"

	"github.com/ringmq/ringmq/engine"
	"github.com/ringmq/ringmq/netio/broker"
	"github.com/ringmq/ringmq/perf"
)

func runBroker(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("ringmq broker", flag.ContinueOnError)
	fs.SetOutput(stderr)
	defaults := defaultBrokerConf()
	bf := defineBrokerFlags(fs, defaults, true)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "Usage: ringmq broker -c broker.conf [flags]\n\n"+
			"Runs one broker. Settings come from the defaults, then broker.conf, then the flags\n"+
			"given (a flag wins). docs/config.md lists every broker.conf key.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	conf, log, err := bf.parse(fs, args, defaults, stderr)
	if err != nil {
		return err
	}
	sigc := notifySignals()
	b, err := openBroker(conf, log)
	if err != nil {
		return err
	}
	return runUntilSignal(log, sigc, b.servers, b.close)
}

// openedBroker is a broker whose store is open and whose listeners are bound.
type openedBroker struct {
	servers []server
	close   func() error // after every server is shut down: flush and close the store
}

// openBroker binds the broker's listener, opens the store, starts the latency recorder
// and the admin server, and creates the broker on them.
func openBroker(conf brokerConf, log *slog.Logger) (*openedBroker, error) {
	ln, err := net.Listen("tcp", conf.listenAddr().String())
	if err != nil {
		return nil, fmt.Errorf("broker: listen: %w", err)
	}
	b, err := openBrokerOn(ln, conf, log)
	if err != nil {
		ln.Close()
		return nil, err
	}
	return b, nil
}

func openBrokerOn(ln net.Listener, conf brokerConf, log *slog.Logger) (*openedBroker, error) {
	bound, err := netip.ParseAddrPort(ln.Addr().String())
	if err != nil {
		return nil, fmt.Errorf("broker: listen address %s: %w", ln.Addr(), err)
	}
	advertised := conf.advertisedAddr(bound)
	dataDir, err := filepath.Abs(conf.StoreRootDir)
	if err != nil {
		return nil, fmt.Errorf("broker: data dir: %w", err)
	}
	obs, err := startObservability(conf, log)
	if err != nil {
		return nil, err
	}
	stopProbes := startProbes(log, obs.rec, obs.reg, obs.admin)
	closeObs := func() error {
		stopProbes()
		ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		return obs.close(ctx)
	}
	store, err := engine.Open(storeConfig(conf, dataDir, advertised, log))
	if err != nil {
		return nil, errors.Join(fmt.Errorf("broker: open store in %s: %w", dataDir, err), closeObs())
	}
	b, err := broker.New(brokerConfig(conf, dataDir, advertised, obs.rec), store, log.With("component", "broker"))
	if err != nil {
		return nil, errors.Join(fmt.Errorf("broker: %w", err), closeStore(store), closeObs())
	}
	b.RegisterMetrics(obs.reg)

	log.Info("broker ready",
		"data", dataDir,
		"commitlog", filepath.Join(dataDir, "commitlog"),
		"flush", conf.FlushDiskType,
		"io_backend", conf.IOBackend,
		"listen", bound.String(),
		"advertised", advertised.String(),
		"namesrv", strings.Join(conf.NamesrvAddrs, ";"),
		"cluster", conf.ClusterName,
		"broker_name", conf.BrokerName,
		"role", conf.BrokerRole)
	return &openedBroker{
		servers: []server{{
			name:     "broker",
			serve:    func() error { return b.Serve(ln) },
			shutdown: b.Shutdown,
		}},
		// The store is flushed and closed first: the admin server and the recorder
		// stay up until the last request's latency is recorded.
		close: func() error { return errors.Join(closeStore(store), closeObs()) },
	}, nil
}

// storeConfig maps the broker settings onto the store's.
func storeConfig(conf brokerConf, dataDir string, storeHost netip.AddrPort, log *slog.Logger) engine.Config {
	flushMode := engine.SyncFlush
	if conf.FlushDiskType == flushAsync {
		flushMode = engine.AsyncFlush
	}
	return engine.Config{
		Dir:                   dataDir,
		SegmentSizeBytes:      conf.SegmentSizeBytes,
		FlushMode:             flushMode,
		Backend:               conf.IOBackend,
		SyncFlushTimeout:      conf.SyncFlushTimeout,
		FlushInterval:         conf.FlushInterval,
		FileReservedTime:      conf.FileReservedTime,
		DeleteWhenHour:        conf.DeleteWhenHour,
		DiskMaxUsedSpaceRatio: conf.DiskMaxUsedPercent,
		MaxMessageSizeBytes:   conf.MaxMessageSizeBytes,
		StoreHost:             storeHost,
		CQEntriesPerFile:      conf.CQEntriesPerFile,
		IndexSlotsPerFile:     conf.IndexSlots,
		IndexEntriesPerFile:   conf.IndexEntries,
		DelayLevels:           conf.DelayLevels,
		Logger:                log.With("component", "store"),
	}
}

// brokerConfig maps the broker settings onto the request processors'.
func brokerConfig(conf brokerConf, dataDir string, advertised netip.AddrPort, rec *perf.Recorder) broker.Config {
	c := broker.DefaultConfig()
	c.BrokerClusterName = conf.ClusterName
	c.BrokerName = conf.BrokerName
	c.BrokerID = conf.BrokerID
	c.NamesrvAddrs = conf.NamesrvAddrs
	c.ListenAddr = advertised.String()
	c.StoreDir = dataDir
	c.AutoCreateTopicEnable = conf.AutoCreateTopic
	c.DefaultTopicQueueNums = conf.DefaultTopicQueues
	c.BrokerRole = conf.BrokerRole
	c.LongPollingEnable = conf.LongPolling
	c.MaxMessageSizeBytes = conf.MaxMessageSizeBytes
	c.DelayLevels = conf.DelayLevels
	c.RegisterInterval = conf.RegisterPeriod
	c.TransactionCheckInterval = conf.TransactionCheckInt
	c.TransactionTimeout = conf.TransactionTimeout
	c.TransactionCheckMax = conf.TransactionCheckMax
	c.OrderlyLockExpiry = conf.LockMaxLiveTime
	c.TimerWheelEnable = conf.TimerWheelEnable
	c.TimerMaxDelay = conf.TimerMaxDelay
	c.TimerPrecision = conf.TimerPrecision
	c.Recorder = rec
	return c
}

func closeStore(s *engine.Store) error {
	if err := s.Close(); err != nil {
		return fmt.Errorf("close store: %w", err)
	}
	return nil
}
