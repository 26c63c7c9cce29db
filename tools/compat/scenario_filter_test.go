package compat

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
)

// filterMsgs is the series every filter test consumes: message i has tag
// tagA/tagB/tagC/none (i%4), property a = i%10 and property b = "x" when i%3 == 0, else
// "y".
const filterMsgs = 120

func filterTag(i int) string { return [...]string{"tagA", "tagB", "tagC", ""}[i%4] }

func filterProps(i int) (a int, b string) {
	b = "y"
	if i%3 == 0 {
		b = "x"
	}
	return i % 10, b
}

// sendFilterSeries sends the series and returns its ids, by index.
func sendFilterSeries(t *testing.T, c *cluster, topic string) []string {
	t.Helper()
	p := c.newProducer()
	return sendIDs(t, p, newLedger(), topic, "filter", filterMsgs, func(i int, m *primitive.Message) {
		// newTestMsg set a tag; replace it (or remove it) per the series' rule.
		m.RemoveProperty(primitive.PropertyTags)
		if tag := filterTag(i); tag != "" {
			m.WithTag(tag)
		}
		a, b := filterProps(i)
		m.WithProperty("a", strconv.Itoa(a))
		m.WithProperty("b", b)
	})
}

func selectIDs(ids []string, keep func(i int) bool) []string {
	var out []string
	for i, id := range ids {
		if keep(i) {
			out = append(out, id)
		}
	}
	return out
}

// TestFilters: one topic, 120 messages with tags tagA/tagB/tagC/none and properties a
// and b. Four consumer groups subscribe at once:
//   - TAG "tagA || tagB" receives exactly the 60 tagA and tagB messages, once each;
//   - SQL92 "a BETWEEN 3 AND 5 AND b = 'x'" receives exactly the messages with a in 3..5
//     and b = x (the broker alone filters SQL92: the Go client does not re-check it, and
//     takes the subscription from the heartbeat, as the Go push consumer never sends it
//     on pull);
//   - SQL92 "TAGS = 'tagC' OR a > 8" (the tag as a property) receives exactly those;
//   - "*" receives all 120.
func TestFilters(t *testing.T) {
	t.Parallel()
	c := startCluster(t, clusterOptions{})
	const topic = "compat-filter"
	c.createTopic(topic, defaultQueues)
	r := newRecorder()
	cases := []struct {
		name string
		sel  consumer.MessageSelector
		keep func(i int) bool
	}{
		{"tag", consumer.MessageSelector{Type: consumer.TAG, Expression: "tagA || tagB"},
			func(i int) bool { return filterTag(i) == "tagA" || filterTag(i) == "tagB" }},
		{"sql", consumer.MessageSelector{Type: consumer.SQL92, Expression: "a BETWEEN 3 AND 5 AND b = 'x'"},
			func(i int) bool { a, b := filterProps(i); return a >= 3 && a <= 5 && b == "x" }},
		{"sql-tags", consumer.MessageSelector{Type: consumer.SQL92, Expression: "TAGS = 'tagC' OR a > 8"},
			func(i int) bool { a, _ := filterProps(i); return filterTag(i) == "tagC" || a > 8 }},
		{"all", consumer.MessageSelector{Type: consumer.TAG, Expression: "*"}, func(int) bool { return true }},
	}
	for _, tc := range cases {
		c.startConsumer(r, consumerSpec{group: "compat-filter-" + tc.name, name: tc.name, topic: topic, selector: tc.sel})
	}
	ids := sendFilterSeries(t, c, topic)
	for _, tc := range cases {
		want := selectIDs(ids, tc.keep)
		if len(want) == 0 || tc.name != "all" && len(want) == len(ids) {
			t.Fatalf("BUG: case %s selects %d of %d", tc.name, len(want), len(ids))
		}
		r.waitCount(t, tc.name, len(want), 30*time.Second, byWho(tc.name))
	}
	// Anything that should have been filtered out would have come with the rest.
	r.quiet(time.Second, nil)
	for _, tc := range cases {
		want := selectIDs(ids, tc.keep)
		checkOnce(t, fmt.Sprintf("%s (%d of %d)", tc.name, len(want), len(ids)), r.snapshot(byWho(tc.name)), want)
	}
}

// TestFilterBadSQL: a push consumer subscribing with an SQL92 expression that does not
// parse, as the official client can observe it:
//   - Subscribe and Start succeed: the client never parses SQL92 and never sends
//     CHECK_CLIENT_CONFIG (its CheckClientInBroker does nothing), so the heartbeat is
//     where the broker first sees the subscription;
//   - the broker refuses it there: it answers the heartbeat SUBSCRIPTION_PARSE_FAILED (23)
//     with a remark naming group, topic, expression and parse position (the client only
//     logs a heartbeat failure), and logs the refusal once, however many heartbeats
//     repeat it;
//   - the consumer never receives a message: its pulls are refused with 23 as well and
//     the client retries every 3 s, so over a window in which the valid consumers receive
//     everything they select, it receives none;
//   - a consumer with a valid SQL92 expression in the same client instance (same client
//     id, so its subscription travels in the very heartbeat the broker answers 23)
//     receives exactly its messages, once each: the refusal costs only the bad
//     subscription, as in Java each consumer data of a heartbeat registers on its own;
//   - so does a consumer of another client.
func TestFilterBadSQL(t *testing.T) {
	t.Parallel()
	c := startCluster(t, clusterOptions{})
	const (
		topic    = "compat-filter-bad"
		badGroup = "compat-filter-bad-sql"
		badExpr  = "a BETWEEN AND ("
		sameExpr = "a > 4 AND b = 'x'"
	)
	c.createTopic(topic, defaultQueues)
	r := newRecorder()
	shared := []consumer.Option{consumer.WithInstance(instance("bad-and-same"))}
	_, err := c.tryConsumer(r, consumerSpec{group: badGroup, name: "bad", topic: topic,
		selector: consumer.MessageSelector{Type: consumer.SQL92, Expression: badExpr}, opts: shared})
	if err != nil {
		t.Fatalf("bad SQL92: Subscribe/Start: %v; want them to succeed (the client does not parse SQL92)", err)
	}
	c.startConsumer(r, consumerSpec{group: "compat-filter-bad-same", name: "same", topic: topic,
		selector: consumer.MessageSelector{Type: consumer.SQL92, Expression: sameExpr}, opts: shared})
	c.startConsumer(r, consumerSpec{group: "compat-filter-bad-good", name: "good", topic: topic})
	ids := sendFilterSeries(t, c, topic)
	same := selectIDs(ids, func(i int) bool { a, b := filterProps(i); return a > 4 && b == "x" })
	r.waitCount(t, "valid subscription of another client", len(ids), 30*time.Second, byWho("good"))
	r.waitCount(t, "valid SQL92 subscription of the same client", len(same), 30*time.Second, byWho("same"))
	// Several of the bad consumer's 3 s pull retries fit in this window.
	if gs := r.quiet(7*time.Second, byWho("bad")); len(gs) > 0 {
		t.Errorf("consumer with an unparsable SQL92 expression received %d messages, want none", len(gs))
	}
	checkOnce(t, fmt.Sprintf("same client, SQL92 %q (%d of %d)", sameExpr, len(same), len(ids)), r.snapshot(byWho("same")), same)
	checkOnce(t, "another client, *", r.snapshot(byWho("good")), ids)
	checkRefusalLogged(t, c, badGroup, topic, badExpr)
}

// checkRefusalLogged checks the broker's log: exactly one "subscription refused" line,
// naming group, topic, the expression and the parser's position (the client heartbeats
// at start, a second later and after each rebalance, each time with the same expression).
func checkRefusalLogged(t *testing.T, c *cluster, group, topic, expr string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(c.dir, "broker.log"))
	if err != nil {
		t.Fatal(err)
	}
	var refusals []string
	for line := range strings.Lines(string(b)) {
		if strings.Contains(line, `msg="subscription refused"`) {
			refusals = append(refusals, line)
		}
	}
	if len(refusals) != 1 {
		t.Fatalf("broker log: %d \"subscription refused\" lines, want 1:\n%s", len(refusals), strings.Join(refusals, ""))
	}
	for _, part := range []string{"group=" + group, "topic=" + topic, "expressionType=SQL92",
		"expression=" + strconv.Quote(expr), "at position "} {
		if !strings.Contains(refusals[0], part) {
			t.Errorf("broker log line %q does not name %s", refusals[0], part)
		}
	}
}
