// Command ringmq runs the ringmq name server and broker.
//
//	ringmq namesrv [--listen 127.0.0.1:9876]   the name server
//	ringmq broker -c broker.conf [flags]        one broker
//	ringmq dev [flags]                          name server + broker in one process
//
// Each subcommand lives in its own file; `ringmq <command> --help` lists its flags and
// docs/config.md lists every flag and broker.conf key.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

// command is one subcommand: its name, a one-line summary and its entry point.
type command struct {
	name    string
	summary string
	run     func(args []string, stderr io.Writer) error
}

// commands lists the subcommands in the order usage shows them.
var commands = []command{
	{"namesrv", "run the name server", runNamesrv},
	{"broker", "run one broker (-c broker.conf)", runBroker},
	{"dev", "run a name server and a broker in one process (data in ./data)", runDev},
}

// errUsage reports bad command-line input whose explanation is already printed.
var errUsage = errors.New("usage")

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func usage() string {
	var b strings.Builder
	b.WriteString("ringmq: a RocketMQ-compatible message broker and name server.\n\nUsage:\n")
	for _, c := range commands {
		fmt.Fprintf(&b, "  ringmq %-9s %s\n", c.name, c.summary)
	}
	b.WriteString("  ringmq help      show this text\n\n" +
		"Run \"ringmq <command> --help\" for a command's flags; docs/config.md lists every\n" +
		"flag and broker.conf key.\n")
	return b.String()
}

// run dispatches to a subcommand and returns the process exit code.
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
		err := c.run(args[1:], stderr)
		switch {
		case err == nil, errors.Is(err, flag.ErrHelp):
			return 0
		case errors.Is(err, errUsage):
			return 2
		default:
			fmt.Fprintf(stderr, "ringmq %s: %v\n", c.name, err)
			return 1
		}
	}
	fmt.Fprintf(stderr, "ringmq: unknown command %q\n\n%s", args[0], usage())
	return 2
}
