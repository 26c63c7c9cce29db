package main

// Helpers the tests of the subcommands share (ctl_test.go starts the servers).

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ringmq/ringmq/engine/record"
)

// pollCtl runs ringmqctl until ok accepts its exit code and output, and returns the output.
func pollCtl(t *testing.T, ok func(code int, out string) bool, args ...string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		code, out, errOut := ctl(args...)
		if ok(code, out) {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("ringmqctl %s: exit %d, output %q %q: not what the test waits for", strings.Join(args, " "), code, out, errOut)
		}
		<-tick.C
	}
}

// tableRows splits a table into the fields of each line.
func tableRows(out string) [][]string {
	var rows [][]string
	for line := range strings.SplitSeq(strings.TrimRight(out, "\n"), "\n") {
		rows = append(rows, strings.Fields(line))
	}
	return rows
}

func wantTable(t *testing.T, what, out string, want [][]string) {
	t.Helper()
	if got := tableRows(out); !reflect.DeepEqual(got, want) {
		t.Errorf("%s: got rows %q, want %q; output:\n%s", what, got, want, out)
	}
}

func decodeJSON[T any](t *testing.T, out string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("bad JSON %q: %v", out, err)
	}
	return v
}

// createTopic creates topic with queues queues and waits until the name server routes it.
func (c *testCluster) createTopic(t *testing.T, topic string, queues int) {
	t.Helper()
	q := fmt.Sprint(queues)
	if code, out, errOut := ctl("topic", "create", "--namesrv", c.namesrvAddr, "--broker", c.brokerAddr,
		"--read-queues", q, "--write-queues", q, topic); code != 0 {
		t.Fatalf("topic create: exit %d, %q %q", code, out, errOut)
	}
	waitCtl(t, "route", "--namesrv", c.namesrvAddr, topic)
}

func (c *testCluster) conn() *conn { return &conn{namesrv: c.namesrvAddr, timeout: 5 * time.Second} }

// sendOne sends body with props to queue 0 of topic as the Go client does.
func (c *testCluster) sendOne(t *testing.T, topic string, props []byte, body string) sendResult {
	t.Helper()
	res, err := c.conn().send(sendTarget{broker: "broker-ctl", addr: c.brokerAddr}, topic, 0, 0, props, []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// pollQueue pulls queue 0 of topic from offset until it holds want records (the consume
// queue is built asynchronously from the commit log), and returns them.
func (c *testCluster) pollQueue(t *testing.T, topic string, from int64, want int) []record.View {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		vs, err := c.conn().readQueue(c.brokerAddr, topic, 0, from, 100)
		if err != nil {
			t.Fatal(err)
		}
		if len(vs) >= want {
			return vs
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s queue 0 from offset %d holds %d messages, want %d", topic, from, len(vs), want)
		}
		<-tick.C
	}
}
