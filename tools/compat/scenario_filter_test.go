package compat

import (
	"fmt"
	"strconv"
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
// parse. What the client sees: Subscribe and Start succeed (the client never parses
// SQL92); the broker refuses the subscription on pull (SUBSCRIPTION_PARSE_FAILED, 23,
// with the parser's message), which the client treats as a pull error and retries every
// 3 s, so consumption never starts: over a window in which a consumer of another group
// with a valid subscription receives all the messages, the bad one receives none.
func TestFilterBadSQL(t *testing.T) {
	t.Parallel()
	c := startCluster(t, clusterOptions{})
	const topic = "compat-filter-bad"
	c.createTopic(topic, defaultQueues)
	r := newRecorder()
	_, err := c.tryConsumer(r, consumerSpec{group: "compat-filter-bad-sql", name: "bad", topic: topic,
		selector: consumer.MessageSelector{Type: consumer.SQL92, Expression: "a BETWEEN AND ("}})
	if err != nil {
		t.Fatalf("bad SQL92: Subscribe/Start: %v; want them to succeed (the client does not parse SQL92)", err)
	}
	c.startConsumer(r, consumerSpec{group: "compat-filter-bad-good", name: "good", topic: topic})
	ids := sendFilterSeries(t, c, topic)
	r.waitCount(t, "valid subscription", len(ids), 30*time.Second, byWho("good"))
	// Several of the bad consumer's 3 s pull retries fit in this window.
	if gs := r.quiet(7*time.Second, byWho("bad")); len(gs) > 0 {
		t.Errorf("consumer with an unparsable SQL92 expression received %d messages, want none", len(gs))
	}
}
