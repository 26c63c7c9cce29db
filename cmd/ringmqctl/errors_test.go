package main

import (
	"strings"
	"testing"
)

func TestNewCmdErrors(t *testing.T) {
	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"group"}, 2, "Usage: ringmqctl group list"},
		{[]string{"group", "drop"}, 2, `unknown action "drop"`},
		{[]string{"group", "delete"}, 2, "want one GROUP"},
		{[]string{"topic", "delete"}, 2, "want one TOPIC"},
		{[]string{"cluster", "extra"}, 2, "want no arguments"},
		{[]string{"offset-at", "T"}, 2, "--timestamp is required"},
		{[]string{"offset-at", "--timestamp", "yesterday", "T"}, 1, `time "yesterday": want now`},
		{[]string{"msg", "--key", "k"}, 2, "want --topic with exactly one of --key and --uniq"},
		{[]string{"msg", "--topic", "T", "--key", "k", "--uniq", "u"}, 2, "exactly one of --key and --uniq"},
		{[]string{"msg", "--topic", "T", "--key", "k", "ID"}, 2, "want no OFFSET_MSG_ID with --key or --uniq"},
		{[]string{"msg", "--topic", "T", "--key", "k", "--max", "65"}, 1, "--max 65: want 1..64"},
		{[]string{"dlq"}, 2, "Usage: ringmqctl dlq list"},
		{[]string{"dlq", "list"}, 2, "--group is required"},
		{[]string{"dlq", "resend", "--group", "g"}, 2, "exactly one of --offset N and --all"},
		{[]string{"dlq", "resend", "--group", "g", "--all", "--offset", "1"}, 2, "exactly one of --offset N and --all"},
		{[]string{"cluster", "--namesrv", "127.0.0.1:1", "--timeout", "1s"}, 1, "connect 127.0.0.1:1"},
	}
	for _, tt := range tests {
		code, out, errOut := ctl(tt.args...)
		if code != tt.code || !strings.Contains(out+errOut, tt.want) {
			t.Errorf("ringmqctl %q: exit %d, output %q; want exit %d and %q", tt.args, code, out+errOut, tt.code, tt.want)
		}
	}
	for _, c := range commands {
		if c.name == "latency" {
			continue
		}
		args := []string{c.name, "--help"}
		switch c.name {
		case "topic", "group", "dlq":
			args = []string{c.name, "list", "--help"}
		}
		if code, _, errOut := ctl(args...); code != 0 || !strings.Contains(errOut, "Usage: ringmqctl "+c.name) {
			t.Errorf("ringmqctl %q: exit %d, %q; want usage", args, code, errOut)
		}
	}
}
