package main

// ringmqctl topic delete TOPIC: DELETE_TOPIC_IN_BROKER on every master that serves the
// topic (or the one --broker names), then DELETE_TOPIC_IN_NAMESRV on every name server.

import (
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/ringmq/ringmq/netio/remoting"
)

func runTopicDelete(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("ringmqctl topic delete", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c := defineConnFlags(fs)
	brokerAddr := fs.String("broker", "", "delete on this broker `ADDR` only (default: every master in the topic's route)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "Usage: ringmqctl topic delete [flags] TOPIC\n\n"+
			"Deletes a topic (its config, stored queues and offsets) on its brokers, then its route\n"+
			"on every name server of --namesrv (a ;-separated list).\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args, 1, "one TOPIC"); err != nil {
		return err
	}
	topic := fs.Arg(0)
	brokers, err := c.brokersOf(topic, *brokerAddr)
	if err != nil {
		return err
	}
	for _, a := range brokers {
		if _, err := c.call(a, remoting.ReqDeleteTopicInBroker, map[string]string{"topic": topic}, nil); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "deleted topic %s on broker %s\n", topic, a)
	}
	for ns := range strings.SplitSeq(c.namesrv, ";") {
		if ns = strings.TrimSpace(ns); ns == "" {
			continue
		}
		if _, err := c.call(ns, remoting.ReqDeleteTopicInNamesrv, map[string]string{"topic": topic}, nil); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "deleted topic %s on name server %s\n", topic, ns)
	}
	return nil
}
