package main

// ringmq dev: a name server and a broker in one process, data under ./data: the
// embedded default `make run` starts, ready for a RocketMQ client at 127.0.0.1:9876.

import (
	"flag"
	"fmt"
	"io"
)

func runDev(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("ringmq dev", flag.ContinueOnError)
	fs.SetOutput(stderr)
	defaults := defaultBrokerConf()
	defaults.StoreRootDir = "./data"
	nf := defineNamesrvFlags(fs, "namesrv-listen")
	bf := defineBrokerFlags(fs, defaults, false)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "Usage: ringmq dev [flags]\n\n"+
			"Runs a name server and a broker in one process (data under ./data), ready for a\n"+
			"RocketMQ client at 127.0.0.1:9876. The broker registers with the embedded name\n"+
			"server; -c reads broker.conf keys (flags win; namesrvAddr is ignored).\n\nFlags:\n")
		fs.PrintDefaults()
	}
	conf, log, err := bf.parse(fs, args, defaults, stderr)
	if err != nil {
		return err
	}
	sigc := notifySignals()
	ns, err := startNamesrv(nf, log)
	if err != nil {
		return err
	}
	// The embedded broker registers with the embedded name server, wherever it listens.
	conf.NamesrvAddrs = []string{ns.addr}
	b, err := openBroker(conf, log)
	if err != nil {
		ns.closeListener()
		return err
	}
	return runUntilSignal(log, sigc, append([]server{ns.server}, b.servers...), b.close)
}
