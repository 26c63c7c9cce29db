package broker

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/ringmq/ringmq/engine/filter"
	"github.com/ringmq/ringmq/engine/meta"
	"github.com/ringmq/ringmq/engine/record"
	"github.com/ringmq/ringmq/netio/remoting"
)

func TestParseTagExpression(t *testing.T) {
	for _, tc := range []struct {
		expr    string
		all     bool
		tags    []string
		wantErr bool
	}{
		{expr: "", all: true},
		{expr: "*", all: true},
		{expr: "  * ", all: true},
		{expr: "tagA", tags: []string{"tagA"}},
		{expr: "tagA || tagB", tags: []string{"tagA", "tagB"}},
		{expr: "tagA||tagB||tagA", tags: []string{"tagA", "tagB"}},
		{expr: " || tagC ||", tags: []string{"tagC"}},
		{expr: "||", wantErr: true},
	} {
		f, err := parseTagExpression(tc.expr)
		if tc.wantErr {
			if err == nil {
				t.Errorf("%q: got no error, want one", tc.expr)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%q: %v", tc.expr, err)
		}
		if tc.all {
			if f != nil {
				t.Errorf("%q: got filter %v, want nil (all)", tc.expr, f.tags)
			}
			continue
		}
		if len(f.tags) != len(tc.tags) || len(f.codes) != len(tc.tags) {
			t.Fatalf("%q: got tags %v codes %v, want %v", tc.expr, f.tags, f.codes, tc.tags)
		}
		for _, tag := range tc.tags {
			if !f.MatchTagsCode(record.TagsHash(tag)) {
				t.Errorf("%q: code of %q does not match", tc.expr, tag)
			}
			props := record.AppendProperty(nil, record.PropTags, tag)
			if !f.MatchProperties(props) {
				t.Errorf("%q: properties with TAGS=%q do not match", tc.expr, tag)
			}
		}
	}
}

func TestTagFilterRejects(t *testing.T) {
	f, err := parseTagExpression("tagA || tagB")
	if err != nil {
		t.Fatal(err)
	}
	if f.MatchTagsCode(record.TagsHash("tagC")) {
		t.Error("tagC code matched")
	}
	if f.MatchTagsCode(0) {
		t.Error("code 0 (no tags) matched")
	}
	props := record.AppendProperty(nil, record.PropKeys, "tagA")
	if f.MatchProperties(props) {
		t.Error("a message without TAGS matched")
	}
	// "Aa" and "BB" share Java's hash: the code check passes, the exact check must not.
	g, _ := parseTagExpression("Aa")
	if !g.MatchTagsCode(record.TagsHash("BB")) {
		t.Fatal("test premise: Aa and BB should collide")
	}
	if g.MatchProperties(record.AppendProperty(nil, record.PropTags, "BB")) {
		t.Error("BB matched the exact check of Aa")
	}
	var all *tagFilter
	if !all.MatchTagsCode(42) || !all.MatchProperties(nil) {
		t.Error("nil filter must match everything")
	}
}

func TestTagFilterNoAllocs(t *testing.T) {
	f, _ := parseTagExpression("tagA || tagB")
	props := record.AppendProperty(record.AppendProperty(nil, record.PropKeys, "k1"), record.PropTags, "tagB")
	code := record.TagsHash("tagB")
	allocs := testing.AllocsPerRun(100, func() {
		if !f.MatchTagsCode(code) || !f.MatchProperties(props) {
			t.Fatal("no match")
		}
	})
	if allocs != 0 {
		t.Errorf("got %v allocs per match, want 0", allocs)
	}
}

// TestSubscriptionCache: a carried subscription is compiled once and shared, errors are
// kept too, and the cache stays within its bound.
func TestSubscriptionCache(t *testing.T) {
	var c subscriptionCache
	f1, err := c.compile([]byte("TAG"), []byte("a || b"))
	if err != nil || f1 == nil {
		t.Fatalf("compile: %v %v", f1, err)
	}
	if f2, _ := c.compile([]byte("TAG"), []byte("a || b")); f2 != f1 {
		t.Fatalf("second compile gave %p, want the cached %p", f2, f1)
	}
	if f, err := c.compile([]byte("SQL92"), []byte("a || b")); err == nil {
		t.Fatalf("SQL92 %q compiled to %v, want an error (the key includes the type)", "a || b", f)
	}
	for range 2 {
		if _, err := c.compile([]byte("TAG"), []byte("||")); err == nil {
			t.Fatal("expression with no tag compiled, want an error")
		}
	}
	if f, err := c.compile(nil, []byte("*")); f != nil || err != nil {
		t.Fatalf("\"*\" gave %v %v, want every message (nil, nil)", f, err)
	}
	long := strings.Repeat("t", maxCachedExpressionBytes)
	if f, err := c.compile([]byte("TAG"), []byte(long)); err != nil || !f.MatchProperties(record.AppendProperty(nil, record.PropTags, long)) {
		t.Fatalf("long expression: %v %v", f, err)
	}
	for i := range maxCachedSubscriptions + 10 {
		if _, err := c.compile([]byte("TAG"), []byte("t"+strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(c.mu.m); n > maxCachedSubscriptions {
		t.Fatalf("cache holds %d expressions, want at most %d", n, maxCachedSubscriptions)
	}
}

// sub is one subscription of a heartbeat built by heartbeatBody.
func sub(topic, expressionType, expr string) subscriptionData {
	return subscriptionData{Topic: topic, SubString: expr, ExpressionType: expressionType, SubVersion: 1, TagsSet: []string{}}
}

// heartbeatBody is a HEART_BEAT body with one clustering push consumer data per group
// (groups[i] subscribes to subs[i]) and producer groups.
func heartbeatBody(t *testing.T, clientID string, groups []string, subs [][]subscriptionData, producers ...string) []byte {
	t.Helper()
	hb := heartbeatData{ClientID: clientID}
	for i, g := range groups {
		hb.ConsumerDataSet = append(hb.ConsumerDataSet, consumerData{GroupName: g, ConsumeType: "CONSUME_PASSIVELY",
			MessageModel: modelClustering, ConsumeFromWhere: "CONSUME_FROM_FIRST_OFFSET", SubscriptionDataSet: subs[i]})
	}
	for _, p := range producers {
		hb.ProducerDataSet = append(hb.ProducerDataSet, struct {
			GroupName string `json:"groupName"`
		}{p})
	}
	b, err := json.Marshal(hb)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// pullBodies pulls group's messages of topic queue 0 from offset 0 (with the heartbeat's
// subscription, as a push consumer) and returns the code and the bodies.
func pullBodies(t *testing.T, c *remoting.Client, group, topic string) (int16, []string) {
	t.Helper()
	resp := pull(t, c, pullOpts{group: group, topic: topic, sysFlag: pullSuspend, suspendMs: 1000})
	var bodies []string
	if resp.Code == remoting.RespSuccess {
		for _, v := range records(t, resp.Body) {
			bodies = append(bodies, string(v.Body()))
		}
	}
	return resp.Code, bodies
}

// TestHeartbeatRefusesBadSubscription: a heartbeat carrying an SQL92 subscription that
// does not parse is answered SUBSCRIPTION_PARSE_FAILED with a remark naming the group, the
// topic, the expression and the parser's position; that subscription filters nothing and
// its pulls answer 23, while everything else of the same heartbeat registers and works:
// the member, the group's valid subscription, another group, a producer. A later
// heartbeat with a valid expression replaces the refusal.
func TestHeartbeatRefusesBadSubscription(t *testing.T) {
	tb := startBroker(t, "", nil)
	c := tb.dial(nil)
	for _, topic := range []string{"TF", "TG"} {
		createTopic(t, c, topic, 1, meta.PermRW)
		for a := range 4 {
			wantCode(t, sendV1(t, c, topic, 0, props("a", strconv.Itoa(a)), []byte(topic+strconv.Itoa(a))), remoting.RespSuccess)
		}
		tb.waitDispatched(topic, 0, 4)
	}
	const bad = "a BETWEEN AND ("
	_, parseErr := filter.Compile(bad)
	if parseErr == nil {
		t.Fatalf("BUG: %q compiles", bad)
	}
	body := heartbeatBody(t, "cid1", []string{"gbad", "ggood"}, [][]subscriptionData{
		{sub("%RETRY%gbad", "TAG", "*"), sub("TF", "SQL92", bad), sub("TG", "SQL92", "a >= 2")},
		{sub("TF", "TAG", "*")},
	}, "pg")
	for range 2 { // the same answer on every heartbeat while the expression stays
		resp := invoke(t, c, remoting.ReqHeartBeat, nil, body)
		wantCode(t, resp, remoting.RespSubscriptionParseFailed)
		want := fmt.Sprintf("subscription of group %q to topic %q refused: %v", "gbad", "TF", parseErr)
		if string(resp.Remark) != want {
			t.Fatalf("remark:\n got %q\nwant %q", resp.Remark, want)
		}
		if !strings.Contains(want, "at position ") || !strings.Contains(want, strconv.Quote(bad)) {
			t.Fatalf("BUG: the parser's error %q names no position or expression", parseErr)
		}
	}
	for _, g := range []string{"gbad", "ggood"} {
		if ids := consumerList(t, c, g); len(ids) != 1 || ids[0] != "cid1" {
			t.Fatalf("consumer list of %s: got %q, want [cid1]", g, ids)
		}
	}
	if _, ok := tb.b.clients.producerConn("pg"); !ok {
		t.Fatal("producer group pg of the refused heartbeat is not registered")
	}
	if code, got := pullBodies(t, c, "gbad", "TF"); code != remoting.RespSubscriptionParseFailed || len(got) != 0 {
		t.Fatalf("pull gbad/TF (refused): got code %d and %q, want %d and nothing", code, got, remoting.RespSubscriptionParseFailed)
	}
	if code, got := pullBodies(t, c, "gbad", "TG"); code != remoting.RespSuccess || strings.Join(got, ",") != "TG2,TG3" {
		t.Fatalf("pull gbad/TG (a >= 2): got code %d and %q, want TG2,TG3", code, got)
	}
	if code, got := pullBodies(t, c, "ggood", "TF"); code != remoting.RespSuccess || len(got) != 4 {
		t.Fatalf("pull ggood/TF (*): got code %d and %q, want all 4", code, got)
	}

	// The consumer fixes its expression: the next heartbeat succeeds and the filter applies.
	body = heartbeatBody(t, "cid1", []string{"gbad", "ggood"}, [][]subscriptionData{
		{sub("%RETRY%gbad", "TAG", "*"), sub("TF", "SQL92", "a BETWEEN 1 AND 2"), sub("TG", "SQL92", "a >= 2")},
		{sub("TF", "TAG", "*")},
	}, "pg")
	wantCode(t, invoke(t, c, remoting.ReqHeartBeat, nil, body), remoting.RespSuccess)
	if code, got := pullBodies(t, c, "gbad", "TF"); code != remoting.RespSuccess || strings.Join(got, ",") != "TF1,TF2" {
		t.Fatalf("pull gbad/TF after the fix: got code %d and %q, want TF1,TF2", code, got)
	}
}

// TestHeartbeatRefusesUnknownExpressionType: an expression type other than TAG and SQL92
// is refused the same way, and so is a TAG expression that names no tag; the remark names
// every refused subscription, at most maxRefusalsInRemark of them.
func TestHeartbeatRefusesUnknownExpressionType(t *testing.T) {
	tb := startBroker(t, "", nil)
	c := tb.dial(nil)
	createTopic(t, c, "TX", 1, meta.PermRW)
	wantCode(t, sendV1(t, c, "TX", 0, props("a", "1"), []byte("x")), remoting.RespSuccess)
	tb.waitDispatched("TX", 0, 1)
	resp := invoke(t, c, remoting.ReqHeartBeat, nil, heartbeatBody(t, "cid1", []string{"gx"},
		[][]subscriptionData{{sub("TX", "XML", "a > 1"), sub("TY", "TAG", "||")}}))
	wantCode(t, resp, remoting.RespSubscriptionParseFailed)
	for _, part := range []string{`group "gx" to topic "TX"`, `"XML"`, `"a > 1"`, `group "gx" to topic "TY"`, `"||"`} {
		if !strings.Contains(string(resp.Remark), part) {
			t.Errorf("remark %q does not name %s", resp.Remark, part)
		}
	}
	if code, got := pullBodies(t, c, "gx", "TX"); code != remoting.RespSubscriptionParseFailed || len(got) != 0 {
		t.Fatalf("pull gx/TX: got code %d and %q, want %d and nothing", code, got, remoting.RespSubscriptionParseFailed)
	}

	var many []subscriptionData
	for i := range maxRefusalsInRemark + 3 {
		many = append(many, sub("T"+strconv.Itoa(i), "SQL92", "a ="))
	}
	resp = invoke(t, c, remoting.ReqHeartBeat, nil, heartbeatBody(t, "cid1", []string{"gmany"}, [][]subscriptionData{many}))
	wantCode(t, resp, remoting.RespSubscriptionParseFailed)
	if n := strings.Count(string(resp.Remark), "refused: "); n != maxRefusalsInRemark {
		t.Errorf("remark names %d refusals, want %d: %q", n, maxRefusalsInRemark, resp.Remark)
	}
	if !strings.HasSuffix(string(resp.Remark), "; and 3 more") {
		t.Errorf("remark %q does not end with the count of the rest", resp.Remark)
	}
}

// TestCheckClientConfig: CHECK_CLIENT_CONFIG compiles the body's subscription and answers
// SUCCESS or SUBSCRIPTION_PARSE_FAILED with the reason; it registers nothing.
func TestCheckClientConfig(t *testing.T) {
	tb := startBroker(t, "", nil)
	c := tb.dial(nil)
	_, parseErr := filter.Compile("a BETWEEN AND (")
	for _, tc := range []struct {
		name   string
		fields []remoting.Field
		body   string
		code   int16
		remark string // exact when code is 23, else a part of it ("" = none)
	}{
		{name: "sql ok", body: `{"clientId":"cid","group":"g","subscriptionData":{"topic":"T","subString":"a > 1 AND b = 'x'","expressionType":"SQL92","tagsSet":[],"codeSet":[],"subVersion":1}}`},
		{name: "sql bad", body: `{"clientId":"cid","group":"g","subscriptionData":{"topic":"T","subString":"a BETWEEN AND (","expressionType":"SQL92"}}`,
			code: remoting.RespSubscriptionParseFailed, remark: fmt.Sprintf("subscription of group %q to topic %q refused: %v", "g", "T", parseErr)},
		{name: "tag", body: `{"clientId":"cid","group":"g","subscriptionData":{"topic":"T","subString":"tagA || tagB","expressionType":"TAG","tagsSet":["tagA","tagB"],"codeSet":[3552231,3552232]}}`},
		{name: "no type is TAG", body: `{"clientId":"cid","group":"g","subscriptionData":{"topic":"T","subString":"*"}}`},
		{name: "unknown type", body: `{"clientId":"cid","group":"g","subscriptionData":{"topic":"T","subString":"a > 1","expressionType":"XML"}}`,
			code:   remoting.RespSubscriptionParseFailed,
			remark: fmt.Sprintf("subscription of group %q to topic %q refused: expression type %q of %q is neither TAG nor SQL92", "g", "T", "XML", "a > 1")},
		{name: "group from ext", fields: ext("clientId", "cid", "group", "gext"),
			body: `{"subscriptionData":{"topic":"T","subString":"a =","expressionType":"SQL92"}}`,
			code: remoting.RespSubscriptionParseFailed, remark: `group "gext" to topic "T"`},
		{name: "nothing to check", body: `{"clientId":"cid","group":"g"}`},
		{name: "no body"},
		{name: "not json", body: `{"clientId":`, code: remoting.RespSystemError, remark: "bad CHECK_CLIENT_CONFIG body"},
	} {
		var body []byte
		if tc.body != "" {
			body = []byte(tc.body)
		}
		resp := invoke(t, c, remoting.ReqCheckClientConfig, tc.fields, body)
		if resp.Code != tc.code {
			t.Errorf("%s: got code %d (remark %q), want %d", tc.name, resp.Code, resp.Remark, tc.code)
			continue
		}
		switch {
		case tc.code == remoting.RespSubscriptionParseFailed && !strings.Contains(tc.remark, "refused: "):
			if !strings.Contains(string(resp.Remark), tc.remark) {
				t.Errorf("%s: remark %q does not name %s", tc.name, resp.Remark, tc.remark)
			}
		case tc.code == remoting.RespSubscriptionParseFailed:
			if string(resp.Remark) != tc.remark {
				t.Errorf("%s: remark\n got %q\nwant %q", tc.name, resp.Remark, tc.remark)
			}
		case !strings.Contains(string(resp.Remark), tc.remark):
			t.Errorf("%s: remark %q does not contain %q", tc.name, resp.Remark, tc.remark)
		}
	}
	if ids := consumerList(t, c, "g"); len(ids) != 0 {
		t.Fatalf("CHECK_CLIENT_CONFIG registered consumers %q", ids)
	}
}

// FuzzCompileSubscription: any (expression type, expression) a heartbeat, a pull or
// CHECK_CLIENT_CONFIG may carry either compiles to a filter that matches without
// panicking, or is refused with an error that names the expression (SQL92: a position
// inside it), which is what the refusal's remark shows the client.
func FuzzCompileSubscription(f *testing.F) {
	for _, s := range [][2]string{
		{"SQL92", "a > 1 AND b = 'x'"}, {"SQL92", "a BETWEEN AND ("}, {"SQL92", "TAGS IN ('a', 'b')"},
		{"TAG", "tagA || tagB"}, {"TAG", "||"}, {"", "*"}, {"XML", "a > 1"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, expressionType, expr string) {
		fl, err := compileSubscription(expressionType, expr)
		if err == nil {
			if fl != nil {
				fl.MatchTagsCode(record.TagsHash(expr))
				fl.MatchProperties(record.AppendProperty(record.AppendProperty(nil, record.PropTags, expr), "a", "1"))
			}
			return
		}
		if fl != nil {
			t.Fatalf("%q %q: got a filter and the error %v", expressionType, expr, err)
		}
		var se *filter.SyntaxError
		switch {
		case errors.As(err, &se):
			if expressionType != exprSQL92 {
				t.Fatalf("%q %q: SQL92 syntax error %v for another type", expressionType, expr, err)
			}
			if se.Pos < 0 || se.Pos > len(expr) {
				t.Fatalf("%q: position %d outside the expression (%d bytes)", expr, se.Pos, len(expr))
			}
			if len(expr) <= filter.MaxExprBytes && se.Expr != expr {
				t.Fatalf("%q: the error names %q", expr, se.Expr)
			}
		case !strings.Contains(err.Error(), strconv.Quote(expr)):
			t.Fatalf("%q %q: error %q does not name the expression", expressionType, expr, err)
		}
	})
}
