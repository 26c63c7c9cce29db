// Command ringmqctl administers ringmq (and Apache RocketMQ) over the RocketMQ remoting
// protocol: clusters, routes, topics, groups, consumer offsets, messages by id or key, dead
// letters, and the latency report.
//
//	ringmqctl cluster                         clusters, brokers and addresses from the name server
//	ringmqctl route TOPIC                     a topic's route from the name server
//	ringmqctl topic list|create|delete ...    topics
//	ringmqctl group list|delete ...           a broker's subscription groups
//	ringmqctl offsets --group G TOPIC         a group's committed offsets and lag per queue
//	ringmqctl offset-at --timestamp T TOPIC   per queue, the first offset stored at or after T
//	ringmqctl msg OFFSET_MSG_ID               a message by its offset message id
//	ringmqctl msg --topic T --key K|--uniq U  messages by key or by client message id
//	ringmqctl dlq list|resend --group G       a group's dead letters; resending them
//	ringmqctl latency                         the broker's latency report (latency.go)
//
// Each subcommand lives in its own file; `ringmqctl <command> --help` lists its flags.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

type command struct {
	name    string
	summary string
	run     func(args []string, stdout, stderr io.Writer) error
}

// commands lists the subcommands in the order usage shows them.
var commands = []command{
	{"cluster", "list clusters, their brokers and addresses from the name server", runCluster},
	{"route", "show a topic's route (brokers and queues) from the name server", runRoute},
	{"topic", "list topics, create one on a broker, or delete one everywhere", runTopic},
	{"group", "list or delete the subscription groups of a broker", runGroup},
	{"offsets", "show a consumer group's committed offsets and lag per queue", runOffsets},
	{"offset-at", "show each queue's first offset stored at or after a time", runOffsetAt},
	{"msg", "show messages by offset message id, key (--key) or client id (--uniq)", runMsg},
	{"dlq", "list a group's dead letters, or resend them to their original topic", runDLQ},
	{"latency", "show the broker's latency report from its admin HTTP server", latencyCmd},
}

// errUsage reports bad command-line input whose explanation is already printed.
var errUsage = errors.New("usage")

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func usage() string {
	var b strings.Builder
	b.WriteString("ringmqctl: administer ringmq over the RocketMQ protocol.\n\nUsage:\n")
	for _, c := range commands {
		fmt.Fprintf(&b, "  ringmqctl %-9s %s\n", c.name, c.summary)
	}
	b.WriteString("  ringmqctl help      show this text\n\nRun \"ringmqctl <command> --help\" for a command's flags.\n")
	return b.String()
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage())
		return 2
	}
	switch args[0] {
	case "help", "-h", "--help", "-help":
		fmt.Fprint(stdout, usage())
		return 0
	}
	for _, c := range commands {
		if c.name != args[0] {
			continue
		}
		err := c.run(args[1:], stdout, stderr)
		switch {
		case err == nil, errors.Is(err, flag.ErrHelp):
			return 0
		case errors.Is(err, errUsage):
			return 2
		default:
			fmt.Fprintf(stderr, "ringmqctl %s: %v\n", c.name, err)
			return 1
		}
	}
	fmt.Fprintf(stderr, "ringmqctl: unknown command %q\n\n%s", args[0], usage())
	return 2
}

// parseFlags parses args into fs and checks the number of positional arguments.
func parseFlags(fs *flag.FlagSet, args []string, wantArgs int, argsName string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if fs.NArg() != wantArgs {
		fmt.Fprintf(fs.Output(), "%s: want %s\n", fs.Name(), argsName)
		fs.Usage()
		return errUsage
	}
	return nil
}

// writeJSON prints v as indented JSON (what --json gives).
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
