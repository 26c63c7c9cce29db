package filter

import "github.com/ringmq/ringmq/engine/record"

// cmpOp is a comparison operator.
type cmpOp uint8

const (
	opEq cmpOp = iota
	opNe
	opLt
	opLe
	opGt
	opGe
)

func (op cmpOp) holds(c int) bool {
	switch op {
	case opEq:
		return c == 0
	case opNe:
		return c != 0
	case opLt:
		return c < 0
	case opLe:
		return c <= 0
	case opGt:
		return c > 0
	}
	return c >= 0
}

// literalKind is the type of the literal a property is compared with.
type literalKind uint8

const (
	litString literalKind = iota
	litNumber
	litBool
)

type literal struct {
	kind literalKind
	s    string
	n    number
	b    bool
}

// cmpNode is `ident op literal`. Strings support only = and <> (as in RocketMQ);
// the parser refuses the ordering operators on them.
type cmpNode struct {
	key string
	op  cmpOp
	lit literal
}

func (n cmpNode) eval(p []byte) truth {
	v, ok := record.Property(p, n.key)
	if !ok {
		return isUnknown
	}
	switch n.lit.kind {
	case litString:
		return truthOf(n.op.holds(compareStrings(v, n.lit.s)))
	case litBool:
		b, ok := parseBool(v)
		if !ok {
			return isUnknown
		}
		return truthOf((b == n.lit.b) == (n.op == opEq))
	}
	num, ok := parseNumber(v)
	if !ok {
		return isUnknown
	}
	return truthOf(n.op.holds(num.compare(n.lit.n)))
}

func compareStrings(v []byte, s string) int {
	switch vs := string(v); {
	case vs < s:
		return -1
	case vs > s:
		return 1
	}
	return 0
}

func parseBool(v []byte) (bool, bool) {
	switch string(v) {
	case "true", "TRUE", "True":
		return true, true
	case "false", "FALSE", "False":
		return false, true
	}
	return false, false
}

// betweenNode is `ident [NOT] BETWEEN lo AND hi`, inclusive.
type betweenNode struct {
	key    string
	lo, hi number
	not    bool
}

func (n betweenNode) eval(p []byte) truth {
	v, ok := record.Property(p, n.key)
	if !ok {
		return isUnknown
	}
	num, ok := parseNumber(v)
	if !ok {
		return isUnknown
	}
	in := num.compare(n.lo) >= 0 && num.compare(n.hi) <= 0
	return truthOf(in != n.not)
}

// inNode is `ident [NOT] IN ('a', 'b', ...)`.
type inNode struct {
	key    string
	values []string
	not    bool
}

func (n inNode) eval(p []byte) truth {
	v, ok := record.Property(p, n.key)
	if !ok {
		return isUnknown
	}
	found := false
	for _, s := range n.values {
		if string(v) == s {
			found = true
			break
		}
	}
	return truthOf(found != n.not)
}

// nullNode is `ident IS [NOT] NULL`; it is never UNKNOWN.
type nullNode struct {
	key string
	not bool
}

func (n nullNode) eval(p []byte) truth {
	_, present := record.Property(p, n.key)
	return truthOf(present == n.not)
}
