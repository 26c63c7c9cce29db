package main

// ringmq namesrv: the name server alone.

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"time"

	"github.com/ringmq/ringmq/netio/namesrv"
)

// namesrvFlags are the name server's settings, shared with `ringmq dev`.
type namesrvFlags struct {
	listen       string
	brokerExpiry time.Duration
	scanInterval time.Duration
}

func defineNamesrvFlags(fs *flag.FlagSet, listenName string) *namesrvFlags {
	f := &namesrvFlags{}
	fs.StringVar(&f.listen, listenName, "127.0.0.1:9876", "name server listen `HOST:PORT` (clients need an IPv4 address)")
	fs.DurationVar(&f.brokerExpiry, "broker-expiry", 120*time.Second, "drop a broker not heard from for this `DURATION`")
	fs.DurationVar(&f.scanInterval, "scan-interval", 10*time.Second, "look for expired brokers every `DURATION`")
	return f
}

func runNamesrv(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("ringmq namesrv", flag.ContinueOnError)
	fs.SetOutput(stderr)
	nf := defineNamesrvFlags(fs, "listen")
	logLevel := fs.String("log-level", "info", "log `LEVEL`: debug, info, warn or error")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "Usage: ringmq namesrv [flags]\n\nRuns the name server: the route registry brokers register with and clients ask.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	log, err := newLogger(stderr, *logLevel)
	if err != nil {
		return err
	}
	sigc := notifySignals()
	s, err := startNamesrv(nf, log)
	if err != nil {
		return err
	}
	return runUntilSignal(log, sigc, []server{s.server}, nil)
}

// namesrvServer is a name server with its listener bound.
type namesrvServer struct {
	server
	addr string // IPv4:port the broker of `ringmq dev` registers at
	ln   net.Listener
}

func (n *namesrvServer) closeListener() { n.ln.Close() }

// startNamesrv binds the name server's listener and returns it as a server to run.
func startNamesrv(f *namesrvFlags, log *slog.Logger) (*namesrvServer, error) {
	if f.brokerExpiry <= 0 || f.scanInterval <= 0 {
		return nil, fmt.Errorf("--broker-expiry %v and --scan-interval %v must be positive", f.brokerExpiry, f.scanInterval)
	}
	if err := checkHostPort(f.listen); err != nil {
		return nil, &ConfError{Key: "--listen", Value: f.listen, Err: err}
	}
	ln, err := net.Listen("tcp", f.listen)
	if err != nil {
		return nil, fmt.Errorf("name server: listen: %w", err)
	}
	bound, err := netip.ParseAddrPort(ln.Addr().String())
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("name server: listen address %s: %w", ln.Addr(), err)
	}
	if bound.Addr().IsUnspecified() {
		bound = netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), bound.Port())
	}
	ns := namesrv.New(namesrv.Config{
		BrokerExpiry: f.brokerExpiry,
		ScanInterval: f.scanInterval,
		Logger:       log.With("component", "namesrv"),
	})
	log.Info("name server listening", "addr", ln.Addr().String(),
		"broker_expiry", f.brokerExpiry, "scan_interval", f.scanInterval)
	return &namesrvServer{
		server: server{
			name:     "namesrv",
			serve:    func() error { return ns.Serve(ln) },
			shutdown: func(ctx context.Context) error { return ns.Shutdown(ctx) },
		},
		addr: bound.String(),
		ln:   ln,
	}, nil
}
