package main

// ringmqctl topic list | ringmqctl topic create --broker ADDR TOPIC | ringmqctl topic delete TOPIC
// (topicdelete.go)

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"sort"
	"strconv"

	"github.com/ringmq/ringmq/netio/remoting"
)

func runTopic(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, "Usage: ringmqctl topic list [flags] | ringmqctl topic create [flags] TOPIC | ringmqctl topic delete [flags] TOPIC\n")
		return errUsage
	}
	switch args[0] {
	case "list":
		return runTopicList(args[1:], stdout, stderr)
	case "create":
		return runTopicCreate(args[1:], stdout, stderr)
	case "delete":
		return runTopicDelete(args[1:], stdout, stderr)
	default:
		fmt.Fprintf(stderr, "ringmqctl topic: unknown action %q (want list, create or delete)\n", args[0])
		return errUsage
	}
}

func runTopicList(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("ringmqctl topic list", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c := defineConnFlags(fs)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "Usage: ringmqctl topic list [flags]\n\nLists every topic the name server routes.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args, 0, "no arguments"); err != nil {
		return err
	}
	addr, err := c.namesrvAddr()
	if err != nil {
		return err
	}
	resp, err := c.call(addr, remoting.ReqGetAllTopicListFromNameServer, nil, nil)
	if err != nil {
		return err
	}
	var body struct {
		TopicList []string `json:"topicList"`
	}
	if err := json.Unmarshal(resp.Body, &body); err != nil {
		return fmt.Errorf("topic list: bad body: %w", err)
	}
	sort.Strings(body.TopicList)
	for _, t := range body.TopicList {
		fmt.Fprintln(stdout, t)
	}
	return nil
}

func runTopicCreate(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("ringmqctl topic create", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c := defineConnFlags(fs)
	brokerAddr := fs.String("broker", "127.0.0.1:10911", "broker `ADDR` to create the topic on")
	readQueues := fs.Int("read-queues", 8, "read queue `COUNT`")
	writeQueues := fs.Int("write-queues", 8, "write queue `COUNT`")
	perm := fs.Int("perm", 6, "permission `BITS`: 4 read, 2 write, 1 inherit")
	order := fs.Bool("order", false, "mark the topic ordered")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "Usage: ringmqctl topic create [flags] TOPIC\n\nCreates (or updates) a topic on one broker, which registers it with its name servers.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args, 1, "one TOPIC"); err != nil {
		return err
	}
	if *readQueues < 1 || *writeQueues < 1 || *perm < 0 || *perm > 15 {
		return fmt.Errorf("--read-queues %d, --write-queues %d must be at least 1 and --perm %d in 0..15",
			*readQueues, *writeQueues, *perm)
	}
	topic := fs.Arg(0)
	ext := map[string]string{
		"topic":           topic,
		"defaultTopic":    "TBW102",
		"readQueueNums":   strconv.Itoa(*readQueues),
		"writeQueueNums":  strconv.Itoa(*writeQueues),
		"perm":            strconv.Itoa(*perm),
		"topicFilterType": "SINGLE_TAG",
		"topicSysFlag":    "0",
		"order":           strconv.FormatBool(*order),
	}
	if _, err := c.call(*brokerAddr, remoting.ReqUpdateAndCreateTopic, ext, nil); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "created topic %s on %s: %d read / %d write queues, perm %s\n",
		topic, *brokerAddr, *readQueues, *writeQueues, permString(*perm))
	return nil
}
