package main

// ringmqctl msg OFFSET_MSG_ID: one stored message, fetched from the broker the id names
// (VIEW_MESSAGE_BY_ID); the id is the 32-hex offset message id a send result carries.

import (
	"flag"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/ringmq/ringmq/engine/record"
	"github.com/ringmq/ringmq/netio/remoting"
)

// maxBodyShownBytes bounds the body printed unless --body-bytes says otherwise.
const maxBodyShownBytes = 256

func runMsg(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("ringmqctl msg", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c := defineConnFlags(fs)
	brokerAddr := fs.String("broker", "", "broker `ADDR` to ask (default: the store host inside the id)")
	bodyBytes := fs.Int("body-bytes", maxBodyShownBytes, "print at most `N` bytes of the body")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "Usage: ringmqctl msg [flags] OFFSET_MSG_ID\n\n"+
			"Shows one message: its queue, offsets, times, hosts, properties and body.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args, 1, "one OFFSET_MSG_ID"); err != nil {
		return err
	}
	host, physOffset, err := record.ParseOffsetMsgID(fs.Arg(0))
	if err != nil {
		return fmt.Errorf("offset message id %q: %w", fs.Arg(0), err)
	}
	addr := *brokerAddr
	if addr == "" {
		addr = host.String()
	}
	resp, err := c.call(addr, remoting.ReqViewMessageByID,
		map[string]string{"offset": strconv.FormatInt(physOffset, 10)}, nil)
	if err != nil {
		return err
	}
	v, err := record.Decode(resp.Body)
	if err != nil {
		return fmt.Errorf("message at offset %d: %w", physOffset, err)
	}
	return printMessage(stdout, v, *bodyBytes)
}

func printMessage(w io.Writer, v record.View, bodyBytes int) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	ms := func(t int64) string { return time.UnixMilli(t).UTC().Format(time.RFC3339Nano) }
	fmt.Fprintf(tw, "topic\t%s\n", v.Topic())
	fmt.Fprintf(tw, "queue\t%d\n", v.QueueID())
	fmt.Fprintf(tw, "queue offset\t%d\n", v.QueueOffset())
	fmt.Fprintf(tw, "commit-log offset\t%d\n", v.PhysicalOffset())
	fmt.Fprintf(tw, "size\t%d bytes\n", v.TotalSize())
	fmt.Fprintf(tw, "sys flag\t%#x\n", v.SysFlag())
	fmt.Fprintf(tw, "born\t%s from %s\n", ms(v.BornTimestampMs()), v.BornHost())
	fmt.Fprintf(tw, "stored\t%s on %s\n", ms(v.StoreTimestampMs()), v.StoreHost())
	fmt.Fprintf(tw, "reconsume times\t%d\n", v.ReconsumeTimes())
	for rest := v.Properties(); ; {
		k, val, next, ok := record.NextProperty(rest)
		if !ok {
			break
		}
		fmt.Fprintf(tw, "property %s\t%s\n", k, val)
		rest = next
	}
	body := v.Body()
	shown := body[:min(len(body), max(bodyBytes, 0))]
	if utf8.Valid(shown) {
		fmt.Fprintf(tw, "body (%d bytes)\t%q\n", len(body), shown)
	} else {
		fmt.Fprintf(tw, "body (%d bytes)\t%x\n", len(body), shown)
	}
	return tw.Flush()
}
