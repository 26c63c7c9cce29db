package main

// ringmqctl offset-at --timestamp TIME TOPIC: per queue, the first offset whose message
// was stored at or after TIME (SEARCH_OFFSET_BY_TIMESTAMP), where a consumer reset to
// TIME would start.

import (
	"flag"
	"fmt"
	"io"
	"sort"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/ringmq/ringmq/netio/remoting"
)

// offsetAtRow is one queue's answer.
type offsetAtRow struct {
	Broker    string `json:"broker"`
	Queue     int    `json:"queue"`
	Offset    int64  `json:"offset"`
	MaxOffset int64  `json:"maxOffset"`
}

func runOffsetAt(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("ringmqctl offset-at", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c := defineConnFlags(fs)
	ts := fs.String("timestamp", "", "`TIME` to search for (required): now, -DURATION, RFC 3339, \"YYYY-MM-DD hh:mm:ss\" (UTC), epoch ms")
	asJSON := fs.Bool("json", false, "print JSON (one object per queue) instead of a table")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "Usage: ringmqctl offset-at --timestamp TIME [flags] TOPIC\n\n"+
			"For each queue of TOPIC: the first offset whose message was stored at or after TIME\n"+
			"(the max offset when none was), and the max offset.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args, 1, "one TOPIC"); err != nil {
		return err
	}
	if *ts == "" {
		fmt.Fprintln(stderr, "ringmqctl offset-at: --timestamp is required")
		return errUsage
	}
	ms, err := parseTimeArg(*ts, time.Now())
	if err != nil {
		return fmt.Errorf("--timestamp: %w", err)
	}
	topic := fs.Arg(0)
	r, err := c.route(topic)
	if err != nil {
		return err
	}
	sort.Slice(r.QueueDatas, func(i, j int) bool { return r.QueueDatas[i].BrokerName < r.QueueDatas[j].BrokerName })
	rows := []offsetAtRow{}
	for _, q := range r.QueueDatas {
		addr := r.masterOf(q.BrokerName)
		if addr == "" {
			return fmt.Errorf("broker %s of topic %s has no master in the route", q.BrokerName, topic)
		}
		for id := range q.ReadQueueNums {
			ext := map[string]string{"topic": topic, "queueId": strconv.Itoa(id), "timestamp": strconv.FormatInt(ms, 10)}
			resp, err := c.call(addr, remoting.ReqSearchOffsetByTimestamp, ext, nil)
			if err != nil {
				return err
			}
			off, err := resp.ExtInt64("offset")
			if err != nil {
				return fmt.Errorf("SEARCH_OFFSET_BY_TIMESTAMP %s/%d: %w", topic, id, err)
			}
			maxOff, err := c.maxOffset(addr, topic, id)
			if err != nil {
				return err
			}
			rows = append(rows, offsetAtRow{Broker: q.BrokerName, Queue: id, Offset: off, MaxOffset: maxOff})
		}
	}
	if *asJSON {
		return writeJSON(stdout, rows)
	}
	fmt.Fprintf(stdout, "offsets of %s at %s\n", topic, formatMs(ms))
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "BROKER\tQUEUE\tOFFSET\tMAX_OFFSET\t")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t\n", r.Broker, r.Queue, r.Offset, r.MaxOffset)
	}
	return tw.Flush()
}

// maxOffset returns a queue's next offset to be written (GET_MAX_OFFSET).
func (c *conn) maxOffset(addr, topic string, queueID int) (int64, error) {
	resp, err := c.call(addr, remoting.ReqGetMaxOffset, map[string]string{"topic": topic, "queueId": strconv.Itoa(queueID)}, nil)
	if err != nil {
		return 0, err
	}
	off, err := resp.ExtInt64("offset")
	if err != nil {
		return 0, fmt.Errorf("GET_MAX_OFFSET %s/%d: %w", topic, queueID, err)
	}
	return off, nil
}
