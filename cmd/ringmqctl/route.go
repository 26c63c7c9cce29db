package main

// ringmqctl route TOPIC: the topic's brokers and queues as the name server routes them.

import (
	"flag"
	"fmt"
	"io"
	"sort"
	"text/tabwriter"
)

func runRoute(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("ringmqctl route", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c := defineConnFlags(fs)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "Usage: ringmqctl route [flags] TOPIC\n\nShows the topic's route: each broker, its address and its queues.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args, 1, "one TOPIC"); err != nil {
		return err
	}
	r, err := c.route(fs.Arg(0))
	if err != nil {
		return err
	}
	return printRoute(stdout, r)
}

func printRoute(w io.Writer, r *topicRoute) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "BROKER\tCLUSTER\tID\tADDRESS\tREAD_QUEUES\tWRITE_QUEUES\tPERM")
	queues := map[string][3]int{}
	for _, q := range r.QueueDatas {
		queues[q.BrokerName] = [3]int{q.ReadQueueNums, q.WriteQueueNums, q.Perm}
	}
	for _, b := range r.BrokerDatas {
		ids := make([]string, 0, len(b.BrokerAddrs))
		for id := range b.BrokerAddrs {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		q := queues[b.BrokerName]
		for _, id := range ids {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%s\n", b.BrokerName, b.Cluster, id, b.BrokerAddrs[id],
				q[0], q[1], permString(q[2]))
		}
	}
	return tw.Flush()
}

// permString spells RocketMQ's perm bits: 4 read, 2 write, 1 inherit.
func permString(perm int) string {
	s := []byte("---")
	if perm&4 != 0 {
		s[0] = 'r'
	}
	if perm&2 != 0 {
		s[1] = 'w'
	}
	if perm&1 != 0 {
		s[2] = 'i'
	}
	return fmt.Sprintf("%s(%d)", s, perm)
}
