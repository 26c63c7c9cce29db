package main

// ringmqctl group list --broker ADDR | ringmqctl group delete --broker ADDR GROUP

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"sort"
	"text/tabwriter"

	"github.com/ringmq/ringmq/netio/remoting"
)

// groupRow is one subscription group config as GET_ALL_SUBSCRIPTIONGROUP_CONFIG gives it.
type groupRow struct {
	GroupName              string `json:"groupName"`
	ConsumeEnable          bool   `json:"consumeEnable"`
	ConsumeBroadcastEnable bool   `json:"consumeBroadcastEnable"`
	RetryQueueNums         int    `json:"retryQueueNums"`
	RetryMaxTimes          int    `json:"retryMaxTimes"`
	BrokerID               int64  `json:"brokerId"`
}

func runGroup(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, "Usage: ringmqctl group list [flags] | ringmqctl group delete [flags] GROUP\n")
		return errUsage
	}
	switch args[0] {
	case "list":
		return runGroupList(args[1:], stdout, stderr)
	case "delete":
		return runGroupDelete(args[1:], stdout, stderr)
	default:
		fmt.Fprintf(stderr, "ringmqctl group: unknown action %q (want list or delete)\n", args[0])
		return errUsage
	}
}

func runGroupList(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("ringmqctl group list", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c := defineConnFlags(fs)
	brokerAddr := fs.String("broker", "127.0.0.1:10911", "broker `ADDR` to ask")
	asJSON := fs.Bool("json", false, "print JSON (one object per group) instead of a table")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "Usage: ringmqctl group list [flags]\n\n"+
			"Lists the subscription groups one broker knows, with their retry settings.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args, 0, "no arguments"); err != nil {
		return err
	}
	resp, err := c.call(*brokerAddr, remoting.ReqGetAllSubscriptionGroupConfig, nil, nil)
	if err != nil {
		return err
	}
	var body struct {
		SubscriptionGroupTable map[string]groupRow `json:"subscriptionGroupTable"`
	}
	if err := json.Unmarshal(resp.Body, &body); err != nil {
		return fmt.Errorf("subscription groups of %s: bad body: %w", *brokerAddr, err)
	}
	rows := make([]groupRow, 0, len(body.SubscriptionGroupTable))
	for name, g := range body.SubscriptionGroupTable {
		if g.GroupName == "" {
			g.GroupName = name
		}
		rows = append(rows, g)
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].GroupName < rows[j].GroupName })
	if *asJSON {
		return writeJSON(stdout, rows)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "GROUP\tCONSUME\tBROADCAST\tRETRY_QUEUES\tRETRY_MAX")
	for _, g := range rows {
		fmt.Fprintf(tw, "%s\t%t\t%t\t%d\t%d\n", g.GroupName, g.ConsumeEnable, g.ConsumeBroadcastEnable, g.RetryQueueNums, g.RetryMaxTimes)
	}
	return tw.Flush()
}

func runGroupDelete(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("ringmqctl group delete", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c := defineConnFlags(fs)
	brokerAddr := fs.String("broker", "127.0.0.1:10911", "broker `ADDR` to delete the group on")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "Usage: ringmqctl group delete [flags] GROUP\n\n"+
			"Deletes a subscription group's config on one broker (its committed offsets stay, as in RocketMQ).\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args, 1, "one GROUP"); err != nil {
		return err
	}
	group := fs.Arg(0)
	if _, err := c.call(*brokerAddr, remoting.ReqDeleteSubscriptionGroup, map[string]string{"groupName": group}, nil); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "deleted group %s on %s\n", group, *brokerAddr)
	return nil
}
