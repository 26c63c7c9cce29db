package main

// The flags `ringmq broker` and `ringmq dev` share, and how they combine with broker.conf:
// defaults, then the file (-c), then every flag given on the command line (a flag wins).

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
)

// brokerFlags holds the raw flag values; apply copies the ones that were set.
type brokerFlags struct {
	fs          *flag.FlagSet
	confPath    string
	dataDir     string
	namesrv     string // broker: --namesrv
	brokerAddr  string
	flush       string
	ioBackend   string
	adminListen string
	hdrLog      string
	logLevel    string
}

// defineBrokerFlags registers the shared flags on fs. defaults supplies the values
// shown in --help; withNamesrv adds --namesrv (the broker's namesrvAddr).
func defineBrokerFlags(fs *flag.FlagSet, defaults brokerConf, withNamesrv bool) *brokerFlags {
	f := &brokerFlags{fs: fs}
	fs.StringVar(&f.confPath, "c", "", "broker.conf `FILE` (Java-properties syntax; docs/config.md lists the keys); flags win over it")
	fs.StringVar(&f.dataDir, "data", defaults.StoreRootDir, "data `DIR`: commit log, consume queues, offsets (broker.conf storePathRootDir)")
	if withNamesrv {
		fs.StringVar(&f.namesrv, "namesrv", strings.Join(defaults.NamesrvAddrs, ";"),
			"name server `ADDR[;ADDR]`, each IPv4:port (broker.conf namesrvAddr)")
	}
	fs.StringVar(&f.brokerAddr, "broker-listen", fmt.Sprintf("127.0.0.1:%d", defaults.ListenPort),
		"broker listen `HOST:PORT` for RocketMQ clients (broker.conf brokerIP1 + listenPort)")
	fs.StringVar(&f.flush, "flush", "sync", "flush mode `sync|async`: ack after fdatasync, or after the append (broker.conf flushDiskType)")
	fs.StringVar(&f.ioBackend, "io-backend", defaults.IOBackend, "commit-log I/O backend `"+strings.Join(ioBackends, "|")+"` (broker.conf ioBackend)")
	fs.StringVar(&f.adminListen, "admin-listen", defaults.AdminListen, "admin HTTP `HOST:PORT`: metrics, latency report, dashboard (broker.conf adminListen)")
	fs.StringVar(&f.hdrLog, "hdr-log", "", "write HdrHistogram interval logs to `PATH` (broker.conf hdrLog; empty = off)")
	fs.StringVar(&f.logLevel, "log-level", "info", "log `LEVEL`: debug, info, warn or error")
	return f
}

// parse parses args into fs, makes the logger the flags ask for, and resolves the broker
// settings from defaults, broker.conf and the flags: what `ringmq broker` and `ringmq dev`
// both do first.
func (f *brokerFlags) parse(fs *flag.FlagSet, args []string, defaults brokerConf, stderr io.Writer) (brokerConf, *slog.Logger, error) {
	if err := parseFlags(fs, args); err != nil {
		return brokerConf{}, nil, err
	}
	log, err := newLogger(stderr, f.logLevel)
	if err != nil {
		return brokerConf{}, nil, err
	}
	conf, err := f.resolve(defaults, log)
	return conf, log, err
}

// resolve builds the effective configuration: defaults, then the -c file, then the
// flags that were given. Unknown file keys are logged by name as warnings.
func (f *brokerFlags) resolve(defaults brokerConf, log *slog.Logger) (brokerConf, error) {
	c := defaults
	if f.confPath != "" {
		unknown, err := loadBrokerConf(f.confPath, &c)
		for _, u := range unknown {
			log.Warn("broker.conf: unknown key ignored", "key", u.Key, "line", u.Line, "file", f.confPath)
		}
		if err != nil {
			return c, err
		}
	}
	var err error
	f.fs.Visit(func(fl *flag.Flag) {
		if err == nil {
			err = f.applyFlag(&c, fl.Name)
		}
	})
	if err != nil {
		return c, err
	}
	return c, c.validate()
}

func (f *brokerFlags) applyFlag(c *brokerConf, name string) error {
	switch name {
	case "data":
		return flagErr(name, f.dataDir, setName(&c.StoreRootDir, f.dataDir))
	case "namesrv":
		return flagErr(name, f.namesrv, setNamesrvAddrs(&c.NamesrvAddrs, f.namesrv))
	case "broker-listen":
		ap, perr := netip.ParseAddrPort(f.brokerAddr)
		if perr != nil || !ap.Addr().Is4() {
			return flagErr(name, f.brokerAddr, fmt.Errorf("want IPv4:PORT"))
		}
		c.ListenAddr, c.ListenPort = ap, ap.Port()
	case "flush":
		switch f.flush {
		case "sync":
			c.FlushDiskType = flushSync
		case "async":
			c.FlushDiskType = flushAsync
		default:
			return flagErr(name, f.flush, fmt.Errorf("want sync or async"))
		}
	case "io-backend":
		return flagErr(name, f.ioBackend, setEnum(&c.IOBackend, f.ioBackend, ioBackends...))
	case "admin-listen":
		return flagErr(name, f.adminListen, setHostPort(&c.AdminListen, f.adminListen))
	case "hdr-log":
		c.HDRLogPath = f.hdrLog
	}
	return nil
}

func flagErr(name, value string, err error) error {
	if err == nil {
		return nil
	}
	return &ConfError{Key: "--" + name, Value: value, Err: err}
}

// listenAddr is where the broker listens: --broker-listen, else brokerIP1 (or
// 127.0.0.1) with listenPort.
func (c *brokerConf) listenAddr() netip.AddrPort {
	if c.ListenAddr.IsValid() {
		return c.ListenAddr
	}
	host := netip.AddrFrom4([4]byte{127, 0, 0, 1})
	if c.BrokerIP1.IsValid() {
		host = c.BrokerIP1
	}
	return netip.AddrPortFrom(host, c.ListenPort)
}

// advertisedAddr is the address clients are told (route, storeHost, msg ids) for a
// listener bound at bound: brokerIP1 if set, else the bound address, else (bound to all
// interfaces) the first non-loopback IPv4 of this host, as RocketMQ does.
func (c *brokerConf) advertisedAddr(bound netip.AddrPort) netip.AddrPort {
	if c.BrokerIP1.IsValid() {
		return netip.AddrPortFrom(c.BrokerIP1, bound.Port())
	}
	if !bound.Addr().IsUnspecified() {
		return bound
	}
	return netip.AddrPortFrom(firstIPv4(), bound.Port())
}

// firstIPv4 returns the first up, non-loopback IPv4 address of the host, or 127.0.0.1.
func firstIPv4() netip.Addr {
	addrs, err := net.InterfaceAddrs()
	if err == nil {
		for _, a := range addrs {
			ipn, ok := a.(*net.IPNet)
			if !ok {
				continue
			}
			if ip, ok := netip.AddrFromSlice(ipn.IP); ok && ip.Unmap().Is4() && !ip.IsLoopback() {
				return ip.Unmap()
			}
		}
	}
	return netip.AddrFrom4([4]byte{127, 0, 0, 1})
}

// parseFlags parses args; a parse error (already printed with the usage) becomes
// errUsage, and stray arguments are refused.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return err
		}
		return errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "%s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
		fs.Usage()
		return errUsage
	}
	return nil
}
