package main

// ringmqctl offsets --group G TOPIC: per queue, the broker's max offset, the group's
// committed offset, and the lag between them.

import (
	"encoding/json"
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
	asJSON := fs.Bool("json", false, "print JSON (one object per queue) instead of a table")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "Usage: ringmqctl offsets --group GROUP [flags] TOPIC\n\n"+
			"For each queue of TOPIC: the max offset (next to be written), the group's committed\n"+
			"offset (\"-\" if the broker has none) and the lag. As in RocketMQ, a group that never\n"+
			"committed reads 0 on a queue that still holds its first message.\n\nFlags:\n")
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
	var rows []queueOffsetRow
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
			rows = append(rows, queueOffsetRow{Broker: q.BrokerName, Queue: id, MaxOffset: maxOff, Committed: committed})
		}
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rows)
	}
	return printOffsets(stdout, rows)
}

// queueOffsetRow is one queue's line; Committed is -1 when the group has no offset.
type queueOffsetRow struct {
	Broker    string `json:"broker"`
	Queue     int    `json:"queue"`
	MaxOffset int64  `json:"maxOffset"`
	Committed int64  `json:"committed"`
}

func printOffsets(w io.Writer, rows []queueOffsetRow) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "BROKER\tQUEUE\tMAX_OFFSET\tCOMMITTED\tLAG\t")
	var totalLag int64
	for _, r := range rows {
		committed, lag := "-", "-"
		if r.Committed >= 0 {
			committed = strconv.FormatInt(r.Committed, 10)
			lag = strconv.FormatInt(r.MaxOffset-r.Committed, 10)
			totalLag += r.MaxOffset - r.Committed
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t\n", r.Broker, r.Queue, r.MaxOffset, committed, lag)
	}
	fmt.Fprintf(tw, "total\t\t\t\t%d\t\n", totalLag)
	return tw.Flush()
}

// queueOffsets returns a queue's max offset and the group's committed offset (-1 if the
// broker has none).
func (c *conn) queueOffsets(addr, group, topic string, queueID int) (maxOff, committed int64, err error) {
	q := strconv.Itoa(queueID)
	if maxOff, err = c.maxOffset(addr, topic, queueID); err != nil {
		return 0, 0, err
	}
	resp, err := c.call(addr, remoting.ReqQueryConsumerOffset,
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
