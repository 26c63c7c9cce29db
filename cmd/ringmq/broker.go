package main

// ringmq broker: one broker, configured by broker.conf (-c) and flags.

import (
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
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	log, err := newLogger(stderr, bf.logLevel)
	if err != nil {
		return err
	}
	conf, err := bf.resolve(defaults, log)
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

// openBroker binds the broker's listener, opens the store and the broker on it.
func openBroker(conf brokerConf, log *slog.Logger) (*openedBroker, error) {
	ln, err := net.Listen("tcp", conf.listenAddr().String())
	if err != nil {
		return nil, fmt.Errorf("broker: listen: %w", err)
	}
	bound, err := netip.ParseAddrPort(ln.Addr().String())
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("broker: listen address %s: %w", ln.Addr(), err)
	}
	advertised := conf.advertisedAddr(bound)
	dataDir, err := filepath.Abs(conf.StoreRootDir)
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("broker: data dir: %w", err)
	}

	flushMode := engine.SyncFlush
	if conf.FlushDiskType == flushAsync {
		flushMode = engine.AsyncFlush
	}
	store, err := engine.Open(engine.Config{
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
		StoreHost:             advertised,
		CQEntriesPerFile:      conf.CQEntriesPerFile,
		IndexSlotsPerFile:     conf.IndexSlots,
		IndexEntriesPerFile:   conf.IndexEntries,
		DelayLevels:           conf.DelayLevels,
		Logger:                log.With("component", "store"),
	})
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("broker: open store in %s: %w", dataDir, err)
	}
	bcfg := broker.DefaultConfig()
	bcfg.BrokerClusterName = conf.ClusterName
	bcfg.BrokerName = conf.BrokerName
	bcfg.BrokerID = conf.BrokerID
	bcfg.NamesrvAddrs = conf.NamesrvAddrs
	bcfg.ListenAddr = advertised.String()
	bcfg.StoreDir = dataDir
	bcfg.AutoCreateTopicEnable = conf.AutoCreateTopic
	bcfg.DefaultTopicQueueNums = conf.DefaultTopicQueues
	bcfg.BrokerRole = conf.BrokerRole
	bcfg.LongPollingEnable = conf.LongPolling
	bcfg.MaxMessageSizeBytes = conf.MaxMessageSizeBytes
	b, err := broker.New(bcfg, store, log.With("component", "broker"))
	if err != nil {
		ln.Close()
		return nil, errors.Join(fmt.Errorf("broker: %w", err), closeStore(store))
	}

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
		close: func() error { return closeStore(store) },
	}, nil
}

func closeStore(s *engine.Store) error {
	if err := s.Close(); err != nil {
		return fmt.Errorf("close store: %w", err)
	}
	return nil
}
