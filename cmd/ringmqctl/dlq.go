package main

// ringmqctl dlq list --group G | ringmqctl dlq resend --group G (--offset N | --all)
//
// A group's dead letters are in %DLQ%<group>, queue 0, on each broker. list reads them
// with PULL_MESSAGE; resend sends each again to its original topic (the RETRY_TOPIC
// property), keeping body, flag, tags, keys, UNIQ_KEY and user properties and dropping
// what the retry path added. The dead letters stay in the DLQ: RocketMQ has no delete.

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"

	"github.com/ringmq/ringmq/engine/record"
)

// dlqPrefix and dlqQueue are where a broker puts a group's dead letters.
const (
	dlqPrefix = "%DLQ%"
	dlqQueue  = 0
)

// maxDeadLetters bounds what one list or resend reads, unless --max says otherwise.
const maxDeadLetters = 10000

// dlqDroppedProps are the properties resend drops: the retry path's bookkeeping, the
// broker's own, the consumer's, and the half-message mark (a resend is a plain message).
var dlqDroppedProps = []string{
	record.PropRetryTopic, record.PropOriginMessageID, record.PropRealTopic, record.PropRealQueueID,
	record.PropDelay, record.PropCluster, record.PropMinOffset, record.PropMaxOffset,
	record.PropReconsumeTime, record.PropMaxReconsumeTimes, "CONSUME_START_TIME",
	record.PropTranMsg, record.PropTranPreparedQueueOff, record.PropTransactionCheckTimes,
	record.PropMsgRegion, record.PropTraceOn,
}

// deadLetter is one record of a DLQ and the broker it is on.
type deadLetter struct {
	broker string
	v      record.View
}

type dlqFlags struct {
	c          *conn
	group      string
	brokerAddr string
	from       int64
	maxMsgs    int
	asJSON     bool
}

func defineDLQFlags(fs *flag.FlagSet) *dlqFlags {
	f := &dlqFlags{c: defineConnFlags(fs)}
	fs.StringVar(&f.group, "group", "", "consumer `GROUP` whose dead letters to read (required)")
	fs.StringVar(&f.brokerAddr, "broker", "", "read the DLQ on this broker `ADDR` only (default: every master in its route)")
	fs.IntVar(&f.maxMsgs, "max", maxDeadLetters, "read at most `N` dead letters per broker")
	fs.BoolVar(&f.asJSON, "json", false, "print JSON instead of a table")
	return f
}

func runDLQ(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, "Usage: ringmqctl dlq list --group GROUP [flags] | ringmqctl dlq resend --group GROUP (--offset N | --all) [flags]\n")
		return errUsage
	}
	switch args[0] {
	case "list":
		return runDLQList(args[1:], stdout, stderr)
	case "resend":
		return runDLQResend(args[1:], stdout, stderr)
	default:
		fmt.Fprintf(stderr, "ringmqctl dlq: unknown action %q (want list or resend)\n", args[0])
		return errUsage
	}
}

// read returns the dead letters from offset from on (at most max per broker).
func (f *dlqFlags) read(from int64, maxMsgs int) ([]deadLetter, error) {
	topic := dlqPrefix + f.group
	brokers, err := f.c.brokersOf(topic, f.brokerAddr)
	if errors.Is(err, errNoRoute) {
		return nil, nil // no broker made the DLQ topic: no dead letters
	}
	if err != nil {
		return nil, err
	}
	var out []deadLetter
	for _, addr := range brokers {
		vs, err := f.c.readQueue(addr, topic, dlqQueue, from, maxMsgs)
		if err != nil {
			return nil, err
		}
		for _, v := range vs {
			out = append(out, deadLetter{broker: addr, v: v})
		}
	}
	return out, nil
}

func (f *dlqFlags) check(stderr io.Writer, name string) error {
	if f.group == "" {
		fmt.Fprintf(stderr, "ringmqctl dlq %s: --group is required\n", name)
		return errUsage
	}
	if f.maxMsgs < 1 {
		return fmt.Errorf("--max %d: want at least 1", f.maxMsgs)
	}
	return nil
}

// dlqEntry is one dead letter in dlq list --json.
type dlqEntry struct {
	Broker        string `json:"broker"`
	OriginalTopic string `json:"originalTopic"`
	msgInfo
}

func runDLQList(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("ringmqctl dlq list", flag.ContinueOnError)
	fs.SetOutput(stderr)
	f := defineDLQFlags(fs)
	from := fs.Int64("from", 0, "first DLQ queue `OFFSET` to read")
	bodyBytes := fs.Int("body-bytes", 40, "print at most `N` bytes of each body")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: ringmqctl dlq list --group GROUP [flags]\n\n"+
			"Lists the group's dead letters (%sGROUP, queue 0): DLQ offset, original topic,\n"+
			"message id (UNIQ_KEY), offset message id, reconsume times, store time and body.\n\nFlags:\n", dlqPrefix)
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args, 0, "no arguments"); err != nil {
		return err
	}
	if err := f.check(stderr, "list"); err != nil {
		return err
	}
	dls, err := f.read(*from, f.maxMsgs)
	if err != nil {
		return err
	}
	if f.asJSON {
		entries := make([]dlqEntry, 0, len(dls))
		for _, d := range dls {
			orig, _ := d.v.Property(record.PropRetryTopic)
			entries = append(entries, dlqEntry{Broker: d.broker, OriginalTopic: string(orig), msgInfo: newMsgInfo(d.v, *bodyBytes)})
		}
		return writeJSON(stdout, entries)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "BROKER\tOFFSET\tTOPIC\tMSG_ID\tOFFSET_MSG_ID\tRECONSUMES\tSTORED\tBODY")
	for _, d := range dls {
		m := newMsgInfo(d.v, *bodyBytes)
		orig, _ := d.v.Property(record.PropRetryTopic)
		body := "0x" + strOr(m.BodyHex)
		if m.Body != nil {
			body = strconv.Quote(*m.Body)
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%d\t%s\t%s\n", d.broker, m.QueueOffset, orig, m.Properties[record.PropUniqKey],
			m.OffsetMsgID, m.ReconsumeTimes, m.StoreTimestamp, body)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(stdout, deadLetters(len(dls)))
	return nil
}

func strOr(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// resendResult is one resent dead letter.
type resendResult struct {
	DLQBroker string `json:"dlqBroker"`
	DLQOffset int64  `json:"dlqOffset"`
	MsgID     string `json:"msgId"`
	sendResult
}

func runDLQResend(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("ringmqctl dlq resend", flag.ContinueOnError)
	fs.SetOutput(stderr)
	f := defineDLQFlags(fs)
	offset := fs.Int64("offset", -1, "resend the dead letter at DLQ queue `OFFSET` (as dlq list shows)")
	all := fs.Bool("all", false, "resend every dead letter")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "Usage: ringmqctl dlq resend --group GROUP (--offset N | --all) [flags]\n\n"+
			"Sends dead letters again to their original topic (the RETRY_TOPIC property), keeping\n"+
			"body, flag, tags, keys, UNIQ_KEY and user properties, and prints each new offset\n"+
			"message id. The dead letters stay in the DLQ.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args, 0, "no arguments"); err != nil {
		return err
	}
	if err := f.check(stderr, "resend"); err != nil {
		return err
	}
	if (*offset >= 0) == *all {
		fmt.Fprintln(stderr, "ringmqctl dlq resend: want exactly one of --offset N and --all")
		return errUsage
	}
	var dls []deadLetter
	var err error
	if *all {
		dls, err = f.read(0, f.maxMsgs)
	} else {
		dls, err = f.read(*offset, 1)
		dls = keepOffset(dls, *offset)
		if err == nil && len(dls) == 0 {
			err = fmt.Errorf("no dead letter of group %s at DLQ offset %d", f.group, *offset)
		}
		if err == nil && len(dls) > 1 {
			err = fmt.Errorf("DLQ offset %d is on %d brokers; name one with --broker", *offset, len(dls))
		}
	}
	if err != nil {
		return err
	}
	results, err := resendAll(f.c, dls)
	if f.asJSON {
		if jerr := writeJSON(stdout, results); jerr != nil {
			return jerr
		}
		return err
	}
	for _, r := range results {
		fmt.Fprintf(stdout, "resent DLQ offset %d (msg id %s) to %s queue %d on %s: %s, offset msg id %s\n",
			r.DLQOffset, r.MsgID, r.Topic, r.QueueID, r.Broker, r.Status, r.OffsetMsgID)
	}
	if err == nil {
		fmt.Fprintln(stdout, deadLetters(len(results)), "resent")
	}
	return err
}

func keepOffset(dls []deadLetter, offset int64) []deadLetter {
	var out []deadLetter
	for _, d := range dls {
		if d.v.QueueOffset() == offset {
			out = append(out, d)
		}
	}
	return out
}

// resendAll sends each dead letter to its original topic, spreading them round-robin over
// the topic's writable queues. It stops at the first failure and returns what was sent.
func resendAll(c *conn, dls []deadLetter) ([]resendResult, error) {
	results := []resendResult{}
	targets := map[string][]sendTarget{}
	for i, d := range dls {
		orig, ok := d.v.Property(record.PropRetryTopic)
		if !ok || len(orig) == 0 {
			return results, fmt.Errorf("dead letter at DLQ offset %d on %s has no %s property: its original topic is unknown",
				d.v.QueueOffset(), d.broker, record.PropRetryTopic)
		}
		topic := string(orig)
		ts, ok := targets[topic]
		if !ok {
			var err error
			if ts, err = c.writableQueues(topic); err != nil {
				return results, fmt.Errorf("resend DLQ offset %d: %w", d.v.QueueOffset(), err)
			}
			targets[topic] = ts
		}
		props := resendProps(d.v.Properties())
		if len(props) > record.MaxPropertiesLen {
			return results, errors.New("BUG: properties grew on resend")
		}
		// Keep the compressed and multi-tags bits; the transaction bits go with TRAN_MSG.
		sysFlag := d.v.SysFlag() & 0x3
		res, err := c.send(ts[i%len(ts)], topic, d.v.Flag(), sysFlag, props, d.v.Body())
		if err != nil {
			return results, fmt.Errorf("resend DLQ offset %d to %s: %w", d.v.QueueOffset(), topic, err)
		}
		uniq, _ := d.v.Property(record.PropUniqKey)
		results = append(results, resendResult{DLQBroker: d.broker, DLQOffset: d.v.QueueOffset(), MsgID: string(uniq), sendResult: res})
	}
	return results, nil
}

// resendProps returns props without dlqDroppedProps.
func resendProps(props []byte) []byte {
	var out []byte
	for {
		k, v, rest, ok := record.NextProperty(props)
		if !ok {
			return out
		}
		drop := false
		for _, d := range dlqDroppedProps {
			if string(k) == d {
				drop = true
				break
			}
		}
		if !drop {
			out = record.AppendProperty(out, k, v)
		}
		props = rest
	}
}

// deadLetters spells a count of dead letters.
func deadLetters(n int) string {
	if n == 1 {
		return "1 dead letter"
	}
	return strconv.Itoa(n) + " dead letters"
}
