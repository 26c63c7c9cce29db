package main

// ringmqctl offsets --group G TOPIC: per queue, the broker's max offset, the group's
// committed offset, and the lag between them.

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strconv"
	"text/tabwriter"

	"github.com/ringmq/ringmq/netio/remoting"
)

func runOffsets(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("ringmqctl offsets", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c := defineConnFlags(fs)
	group := fs.String("group", "", "consumer `GROUP` (required)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "Usage: ringmqctl offsets --group GROUP [flags] TOPIC\n\n"+
			"For each queue of TOPIC: the max offset (next to be written), the group's committed\n"+
			"offset (\"-\" if it has none) and the lag.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args, 1, "one TOPIC"); err != nil {
		return err
	}
	if *group == "" {
		fmt.Fprintln(stderr, "ringmqctl offsets: --group is required")
		return errUsage
	}
	topic := fs.Arg(0)
	r, err := c.route(topic)
	if err != nil {
		return err
	}
	sort.Slice(r.QueueDatas, func(i, j int) bool { return r.QueueDatas[i].BrokerName < r.QueueDatas[j].BrokerName })
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "BROKER\tQUEUE\tMAX_OFFSET\tCOMMITTED\tLAG\t")
	var totalLag int64
	for _, q := range r.QueueDatas {
		addr := r.masterOf(q.BrokerName)
		if addr == "" {
			return fmt.Errorf("broker %s of topic %s has no master in the route", q.BrokerName, topic)
		}
		for id := range q.ReadQueueNums {
			maxOff, committed, err := c.queueOffsets(addr, *group, topic, id)
			if err != nil {
				return err
			}
			committedS, lagS := "-", "-"
			if committed >= 0 {
				committedS = strconv.FormatInt(committed, 10)
				lagS = strconv.FormatInt(maxOff-committed, 10)
				totalLag += maxOff - committed
			}
			fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t\n", q.BrokerName, id, maxOff, committedS, lagS)
		}
	}
	fmt.Fprintf(tw, "total\t\t\t\t%d\t\n", totalLag)
	return tw.Flush()
}

// queueOffsets returns a queue's max offset and the group's committed offset (-1 if the
// broker has none).
func (c *conn) queueOffsets(addr, group, topic string, queueID int) (maxOff, committed int64, err error) {
	q := strconv.Itoa(queueID)
	resp, err := c.call(addr, remoting.ReqGetMaxOffset, map[string]string{"topic": topic, "queueId": q}, nil)
	if err != nil {
		return 0, 0, err
	}
	if maxOff, err = resp.ExtInt64("offset"); err != nil {
		return 0, 0, fmt.Errorf("GET_MAX_OFFSET %s/%d: %w", topic, queueID, err)
	}
	resp, err = c.call(addr, remoting.ReqQueryConsumerOffset,
		map[string]string{"consumerGroup": group, "topic": topic, "queueId": q}, nil, remoting.RespQueryNotFound)
	if err != nil {
		return 0, 0, err
	}
	if resp.Code == remoting.RespQueryNotFound {
		return maxOff, -1, nil
	}
	committed, err = resp.ExtInt64("offset")
	if err != nil {
		return 0, 0, errors.Join(fmt.Errorf("QUERY_CONSUMER_OFFSET %s/%d", topic, queueID), err)
	}
	return maxOff, committed, nil
}
