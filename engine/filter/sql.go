// Package filter compiles RocketMQ's SQL92 message selectors and evaluates them on a
// stored message's properties, on the broker.
//
// The grammar is the one RocketMQ documents for `MessageSelector.bySql`:
//
//	expr       = orExpr
//	orExpr     = andExpr { OR andExpr }
//	andExpr    = notExpr { AND notExpr }
//	notExpr    = NOT notExpr | predicate
//	predicate  = "(" expr ")"
//	           | ident cmpOp literal
//	           | ident [NOT] BETWEEN number AND number
//	           | ident [NOT] IN "(" string { "," string } ")"
//	           | ident IS [NOT] NULL
//	           | TRUE | FALSE
//	cmpOp      = "=" | "<>" | "!=" | ">" | ">=" | "<" | "<="
//	literal    = string | number | TRUE | FALSE
//	string     = "'" { any char, '' for a quote } "'"
//	number     = ["-"] digits ["." digits] [("e"|"E") ["-"|"+"] digits]  (a trailing L is allowed)
//	ident      = letter { letter | digit | "_" | "." | "$" }   (a property name, TAGS included)
//
// Keywords are case-insensitive. Evaluation is three-valued like SQL: a comparison with
// a missing property is UNKNOWN, NOT UNKNOWN is UNKNOWN, and a message matches only when
// the whole expression is TRUE. Property values are strings on the wire; a numeric
// comparison parses the value as a number, and a value that is not a number makes the
// comparison UNKNOWN.
//
// Concurrency: a compiled Expr is immutable and safe for concurrent Match calls. Match
// allocates nothing. Compile returns a *SyntaxError naming the position on bad input.
package filter

import (
	"fmt"
	"strconv"
)

// Limits on an expression, so a subscription cannot make the broker do unbounded work
// per message.
const (
	MaxExprBytes = 4096 // longest selector text accepted
	MaxDepth     = 64   // deepest nesting of parentheses and NOT
	MaxInItems   = 256  // most values in one IN list
)

// SyntaxError is a selector the grammar does not accept.
type SyntaxError struct {
	Expr string
	Pos  int // byte offset in Expr
	Msg  string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("sql92 filter: %s at position %d in %q", e.Msg, e.Pos, e.Expr)
}

// Expr is a compiled selector.
type Expr struct {
	src  string
	root node
}

// String returns the selector text the expression was compiled from.
func (e *Expr) String() string { return e.src }

// Match reports whether a message with these stored properties ("k\x01v\x02...")
// satisfies the selector.
func (e *Expr) Match(props []byte) bool { return e.root.eval(props) == isTrue }

// Compile parses a selector.
func Compile(src string) (*Expr, error) {
	if len(src) > MaxExprBytes {
		return nil, &SyntaxError{Expr: src[:64] + "...", Pos: MaxExprBytes, Msg: fmt.Sprintf("selector longer than %d bytes", MaxExprBytes)}
	}
	p := parser{lx: lexer{src: src}}
	p.next()
	root := p.parseOr(0)
	if p.err == nil && p.tok.kind != tEOF {
		p.fail(p.tok.pos, "unexpected "+p.tok.describe())
	}
	if p.err != nil {
		return nil, p.err
	}
	return &Expr{src: src, root: root}, nil
}

// truth is SQL's three-valued logic.
type truth uint8

const (
	isUnknown truth = iota
	isFalse
	isTrue
)

func truthOf(b bool) truth {
	if b {
		return isTrue
	}
	return isFalse
}

type node interface{ eval(props []byte) truth }

type andNode struct{ l, r node }
type orNode struct{ l, r node }
type notNode struct{ x node }
type constNode struct{ v truth }

func (n andNode) eval(p []byte) truth {
	l := n.l.eval(p)
	if l == isFalse {
		return isFalse
	}
	r := n.r.eval(p)
	switch {
	case r == isFalse:
		return isFalse
	case l == isTrue && r == isTrue:
		return isTrue
	}
	return isUnknown
}

func (n orNode) eval(p []byte) truth {
	l := n.l.eval(p)
	if l == isTrue {
		return isTrue
	}
	r := n.r.eval(p)
	switch {
	case r == isTrue:
		return isTrue
	case l == isFalse && r == isFalse:
		return isFalse
	}
	return isUnknown
}

func (n notNode) eval(p []byte) truth {
	switch n.x.eval(p) {
	case isTrue:
		return isFalse
	case isFalse:
		return isTrue
	}
	return isUnknown
}

func (n constNode) eval([]byte) truth { return n.v }

// number is a parsed numeric literal or property value: exact as an integer when it
// is one, else a float.
type number struct {
	isInt bool
	i     int64
	f     float64
}

func parseNumber(b []byte) (number, bool) {
	s := string(b) // does not escape: no allocation for short values
	if n := len(s); n > 1 && (s[n-1] == 'L' || s[n-1] == 'l') {
		s = s[:n-1]
	}
	if i, err := strconv.ParseInt(s, 10, 64); err == nil {
		return number{isInt: true, i: i, f: float64(i)}, true
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return number{}, false
	}
	return number{f: f}, true
}

// compare returns -1, 0 or 1.
func (a number) compare(b number) int {
	if a.isInt && b.isInt {
		switch {
		case a.i < b.i:
			return -1
		case a.i > b.i:
			return 1
		}
		return 0
	}
	switch {
	case a.f < b.f:
		return -1
	case a.f > b.f:
		return 1
	}
	return 0
}
