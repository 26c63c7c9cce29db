package broker

import (
	"strconv"
	"strings"
	"testing"

	"github.com/ringmq/ringmq/engine/record"
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
