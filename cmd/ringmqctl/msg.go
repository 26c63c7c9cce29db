package main

// ringmqctl msg: stored messages, by offset message id (VIEW_MESSAGE_BY_ID, from the
// broker the id names) or by key (QUERY_MESSAGE on every master of the topic): --uniq for
// the client message id (UNIQ_KEY), --key for a token of KEYS.

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/ringmq/ringmq/engine/record"
	"github.com/ringmq/ringmq/netio/remoting"
)

// maxBodyShownBytes bounds the body printed unless --body-bytes says otherwise.
const maxBodyShownBytes = 256

// maxQueryMessages bounds --max: what one broker answers to one QUERY_MESSAGE.
const maxQueryMessages = 64

type msgFlags struct {
	c          *conn
	brokerAddr string
	bodyBytes  int
	asJSON     bool
	topic      string
	key, uniq  string
	begin, end string
	maxNum     int
}

func runMsg(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("ringmqctl msg", flag.ContinueOnError)
	fs.SetOutput(stderr)
	f := &msgFlags{c: defineConnFlags(fs)}
	fs.StringVar(&f.brokerAddr, "broker", "", "broker `ADDR` to ask (default: the store host inside the id, or every master of --topic)")
	fs.IntVar(&f.bodyBytes, "body-bytes", maxBodyShownBytes, "print at most `N` bytes of the body")
	fs.BoolVar(&f.asJSON, "json", false, "print JSON (a list of messages) instead of text")
	fs.StringVar(&f.topic, "topic", "", "`TOPIC` to query (with --key or --uniq)")
	fs.StringVar(&f.key, "key", "", "find the messages whose KEYS hold `KEY`")
	fs.StringVar(&f.uniq, "uniq", "", "find the message whose UNIQ_KEY (the client's message id) is `ID`")
	fs.StringVar(&f.begin, "begin", "0", "with --key/--uniq: stored at or after `TIME` (now, -DURATION, RFC 3339, epoch ms)")
	fs.StringVar(&f.end, "end", "now", "with --key/--uniq: stored at or before `TIME`")
	fs.IntVar(&f.maxNum, "max", 32, fmt.Sprintf("with --key/--uniq: at most `N` messages per broker (1..%d)", maxQueryMessages))
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "Usage: ringmqctl msg [flags] OFFSET_MSG_ID\n"+
			"       ringmqctl msg [flags] --topic TOPIC --uniq UNIQ_KEY\n"+
			"       ringmqctl msg [flags] --topic TOPIC --key KEY [--begin TIME] [--end TIME] [--max N]\n\n"+
			"Shows messages: queue, offsets, times, hosts, properties and body.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	byKey := false
	for _, a := range args {
		for _, p := range []string{"-key", "--key", "-uniq", "--uniq"} {
			if a == p || len(a) > len(p) && a[:len(p)+1] == p+"=" {
				byKey = true
			}
		}
	}
	want, wantName := 1, "one OFFSET_MSG_ID"
	if byKey {
		want, wantName = 0, "no OFFSET_MSG_ID with --key or --uniq"
	}
	if err := parseFlags(fs, args, want, wantName); err != nil {
		return err
	}
	var msgs []record.View
	var err error
	if byKey {
		msgs, err = f.query(stderr)
	} else {
		msgs, err = f.byID(fs.Arg(0))
	}
	if err != nil {
		return err
	}
	return printMessages(stdout, msgs, f.bodyBytes, f.asJSON)
}

func (f *msgFlags) byID(id string) ([]record.View, error) {
	host, physOffset, err := record.ParseOffsetMsgID(id)
	if err != nil {
		return nil, fmt.Errorf("offset message id %q: %w", id, err)
	}
	addr := f.brokerAddr
	if addr == "" {
		addr = host.String()
	}
	resp, err := f.c.call(addr, remoting.ReqViewMessageByID,
		map[string]string{"offset": strconv.FormatInt(physOffset, 10)}, nil)
	if err != nil {
		return nil, err
	}
	v, err := record.Decode(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("message at offset %d: %w", physOffset, err)
	}
	return []record.View{v}, nil
}

// query asks each master of the topic (or --broker) for the messages with the key and
// keeps those whose UNIQ_KEY is it (--uniq) or whose KEYS holds it (--key): the index is a
// hash, and a Java broker answers its candidates unchecked.
func (f *msgFlags) query(stderr io.Writer) ([]record.View, error) {
	if f.topic == "" || (f.key == "") == (f.uniq == "") {
		fmt.Fprintln(stderr, "ringmqctl msg: want --topic with exactly one of --key and --uniq")
		return nil, errUsage
	}
	if f.maxNum < 1 || f.maxNum > maxQueryMessages {
		return nil, fmt.Errorf("--max %d: want 1..%d", f.maxNum, maxQueryMessages)
	}
	now := time.Now()
	beginMs, err := parseTimeArg(f.begin, now)
	if err != nil {
		return nil, fmt.Errorf("--begin: %w", err)
	}
	endMs, err := parseTimeArg(f.end, now)
	if err != nil {
		return nil, fmt.Errorf("--end: %w", err)
	}
	brokers, err := f.c.brokersOf(f.topic, f.brokerAddr)
	if err != nil {
		return nil, err
	}
	key := f.key + f.uniq
	ext := map[string]string{"topic": f.topic, "key": key, "maxNum": strconv.Itoa(f.maxNum),
		"beginTimestamp": strconv.FormatInt(beginMs, 10), "endTimestamp": strconv.FormatInt(endMs, 10)}
	if f.uniq != "" {
		ext["_UNIQUE_KEY_QUERY"] = "true" // what Java's admin sends; ringmq ignores it
	}
	var out []record.View
	for _, addr := range brokers {
		resp, err := f.c.call(addr, remoting.ReqQueryMessage, ext, nil, remoting.RespQueryNotFound)
		if err != nil {
			return nil, err
		}
		if resp.Code == remoting.RespQueryNotFound {
			continue
		}
		vs, err := decodeRecords(resp.Body)
		if err != nil {
			return nil, fmt.Errorf("QUERY_MESSAGE answer of %s: %w", addr, err)
		}
		for _, v := range vs {
			if string(v.Topic()) == f.topic && matchesKey(v, f.key, f.uniq) {
				out = append(out, v)
			}
		}
	}
	if len(out) == 0 {
		what := "KEYS holding " + strconv.Quote(f.key)
		if f.uniq != "" {
			what = "UNIQ_KEY " + strconv.Quote(f.uniq)
		}
		return nil, fmt.Errorf("no message of topic %s with %s stored between %s and %s", f.topic, what, formatMs(beginMs), formatMs(endMs))
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.StoreTimestampMs() != b.StoreTimestampMs() {
			return a.StoreTimestampMs() < b.StoreTimestampMs()
		}
		return a.PhysicalOffset() < b.PhysicalOffset()
	})
	return out, nil
}

func matchesKey(v record.View, key, uniq string) bool {
	if uniq != "" {
		u, ok := v.Property(record.PropUniqKey)
		return ok && string(u) == uniq
	}
	keys, _ := v.Property(record.PropKeys)
	for {
		tok, rest, ok := record.NextKey(keys)
		if !ok {
			return false
		}
		if string(tok) == key {
			return true
		}
		keys = rest
	}
}

// decodeRecords splits a body of stored records laid back to back.
func decodeRecords(body []byte) ([]record.View, error) {
	var out []record.View
	for len(body) > 0 {
		if len(body) < 4 {
			return nil, errors.New("truncated record")
		}
		size := int(uint32(body[0])<<24 | uint32(body[1])<<16 | uint32(body[2])<<8 | uint32(body[3]))
		if size <= 4 || size > len(body) {
			return nil, fmt.Errorf("record size %d with %d bytes left", size, len(body))
		}
		v, err := record.Decode(bytes.Clone(body[:size]))
		if err != nil {
			return nil, err
		}
		out = append(out, v)
		body = body[size:]
	}
	return out, nil
}

func printMessages(w io.Writer, msgs []record.View, bodyBytes int, asJSON bool) error {
	if asJSON {
		infos := make([]msgInfo, 0, len(msgs))
		for _, v := range msgs {
			infos = append(infos, newMsgInfo(v, bodyBytes))
		}
		return writeJSON(w, infos)
	}
	for i, v := range msgs {
		if i > 0 {
			fmt.Fprintln(w)
		}
		if err := printMessage(w, v, bodyBytes); err != nil {
			return err
		}
	}
	return nil
}

func printMessage(w io.Writer, v record.View, bodyBytes int) error {
	m := newMsgInfo(v, bodyBytes)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "offset msg id\t%s\n", m.OffsetMsgID)
	fmt.Fprintf(tw, "topic\t%s\n", m.Topic)
	fmt.Fprintf(tw, "queue\t%d\n", m.QueueID)
	fmt.Fprintf(tw, "queue offset\t%d\n", m.QueueOffset)
	fmt.Fprintf(tw, "commit-log offset\t%d\n", m.CommitLogOffset)
	fmt.Fprintf(tw, "size\t%d bytes\n", m.SizeBytes)
	fmt.Fprintf(tw, "sys flag\t%#x\n", m.SysFlag)
	fmt.Fprintf(tw, "born\t%s from %s\n", m.BornTimestamp, m.BornHost)
	fmt.Fprintf(tw, "stored\t%s on %s\n", m.StoreTimestamp, m.StoreHost)
	fmt.Fprintf(tw, "reconsume times\t%d\n", m.ReconsumeTimes)
	for rest := v.Properties(); ; { // in stored order, duplicates too
		k, val, next, ok := record.NextProperty(rest)
		if !ok {
			break
		}
		fmt.Fprintf(tw, "property %s\t%s\n", k, val)
		rest = next
	}
	label := fmt.Sprintf("body (%d bytes)", m.BodyBytes)
	if m.BodyInflated {
		label = fmt.Sprintf("body (%d bytes zlib, inflated)", m.BodyBytes)
	}
	if m.Body != nil {
		fmt.Fprintf(tw, "%s\t%q\n", label, *m.Body)
	} else {
		fmt.Fprintf(tw, "%s\t%s\n", label, *m.BodyHex)
	}
	return tw.Flush()
}
