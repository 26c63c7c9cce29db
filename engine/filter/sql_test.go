package filter

import (
	"errors"
	"strings"
	"testing"
)

// props builds stored properties from key/value pairs.
func props(kv ...string) []byte {
	var b []byte
	for i := 0; i+1 < len(kv); i += 2 {
		b = append(b, kv[i]...)
		b = append(b, 1)
		b = append(b, kv[i+1]...)
		b = append(b, 2)
	}
	return b
}

func TestMatch(t *testing.T) {
	msg := props("TAGS", "tagA", "a", "5", "b", "abc", "price", "12.5", "flag", "true", "big", "9007199254740993")
	cases := []struct {
		expr string
		want bool
	}{
		{"a = 5", true},
		{"a = 5.0", true},
		{"a <> 5", false},
		{"a != 4", true},
		{"a > 4 AND a < 6", true},
		{"a >= 5 and a <= 5", true},
		{"a > 5", false},
		{"price > 12", true},
		{"price BETWEEN 12 AND 13", true},
		{"price NOT BETWEEN 12 AND 13", false},
		{"a BETWEEN 6 AND 10", false},
		{"b = 'abc'", true},
		{"b <> 'abc'", false},
		{"b IN ('x', 'abc')", true},
		{"b NOT IN ('x', 'abc')", false},
		{"TAGS IN ('tagA','tagB')", true},
		{"missing IS NULL", true},
		{"a IS NOT NULL", true},
		{"missing IS NOT NULL", false},
		{"missing = 1", false},
		{"NOT missing = 1", false}, // NOT UNKNOWN is UNKNOWN
		{"missing = 1 OR a = 5", true},
		{"missing = 1 AND a = 5", false},
		{"NOT (a = 4)", true},
		{"(a = 4 OR b = 'abc') AND TAGS = 'tagA'", true},
		{"b > 3", false}, // not a number: UNKNOWN
		{"flag = TRUE", true},
		{"flag <> true", false},
		{"TRUE", true},
		{"FALSE OR a = 5", true},
		{"big = 9007199254740993", true}, // exact integer compare beyond 2^53
		{"big = 9007199254740992", false},
		{"a = 5L", true},
		{"a > -1", true},
		{"b = 'it''s'", false},
	}
	for _, c := range cases {
		e, err := Compile(c.expr)
		if err != nil {
			t.Errorf("Compile(%q): %v", c.expr, err)
			continue
		}
		if got := e.Match(msg); got != c.want {
			t.Errorf("%q: got %v, want %v", c.expr, got, c.want)
		}
	}
}

func TestQuotedString(t *testing.T) {
	e, err := Compile("b = 'it''s'")
	if err != nil {
		t.Fatal(err)
	}
	if !e.Match(props("b", "it's")) {
		t.Errorf("got no match for b = it's, want a match")
	}
}

func TestSyntaxErrors(t *testing.T) {
	cases := []struct{ expr, wantMsg string }{
		{"", "expected a property name"},
		{"a =", "expected a string, number or boolean"},
		{"a > 'x'", "strings can only be compared with = or <>"},
		{"a = 'x", "unterminated string"},
		{"a BETWEEN 1", "expected AND"},
		{"a IN 'x'", "expected '('"},
		{"a IN ('x' 'y')", "expected ',' or ')'"},
		{"a IN (1)", "expected a string in the IN list"},
		{"(a = 1", "expected ')'"},
		{"a = 1 b", "unexpected 'b'"},
		{"a IS 1", "expected NULL"},
		{"a # 1", "unexpected character"},
		{"a = 1.2.3", "malformed number"},
		{"a ! 1", "'!' must be followed by '='"},
		{strings.Repeat("NOT ", MaxDepth+2) + "a = 1", "nested deeper"},
		{strings.Repeat("a", MaxExprBytes+1), "longer than"},
	}
	for _, c := range cases {
		_, err := Compile(c.expr)
		var se *SyntaxError
		if !errors.As(err, &se) {
			t.Errorf("Compile(%.40q): got %v, want a *SyntaxError", c.expr, err)
			continue
		}
		if !strings.Contains(se.Error(), c.wantMsg) {
			t.Errorf("Compile(%.40q): got %q, want it to contain %q", c.expr, se.Error(), c.wantMsg)
		}
	}
}

func TestMatchAllocatesNothing(t *testing.T) {
	e, err := Compile("(a BETWEEN 1 AND 10 OR price > 3.5) AND b IN ('x', 'abc') AND missing IS NULL AND TAGS <> 'z'")
	if err != nil {
		t.Fatal(err)
	}
	msg := props("TAGS", "tagA", "a", "5", "b", "abc", "price", "12.5")
	if !e.Match(msg) {
		t.Fatalf("got no match, want a match")
	}
	if n := testing.AllocsPerRun(1000, func() { e.Match(msg) }); n != 0 {
		t.Errorf("Match allocates %v times per call, want 0", n)
	}
}

func FuzzCompile(f *testing.F) {
	for _, s := range []string{"a = 1", "a BETWEEN 1 AND 2", "b IN ('x','y')", "NOT (a IS NULL) OR TRUE", "a = 'it''s'", "x >= -1.5e3"} {
		f.Add(s, []byte("a\x015\x02b\x01x\x02"))
	}
	f.Fuzz(func(t *testing.T, expr string, p []byte) {
		e, err := Compile(expr)
		if err != nil {
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("Compile(%q): error %v is not a *SyntaxError", expr, err)
			}
			return
		}
		e.Match(p) // must not panic on any properties
	})
}

func BenchmarkMatch(b *testing.B) {
	e, err := Compile("a BETWEEN 1 AND 10 AND b IN ('x', 'abc')")
	if err != nil {
		b.Fatal(err)
	}
	msg := props("TAGS", "tagA", "KEYS", "k1 k2", "UNIQ_KEY", "C0000202398A00000000682018f00001", "a", "5", "b", "abc")
	b.ReportAllocs()
	for b.Loop() {
		e.Match(msg)
	}
}
