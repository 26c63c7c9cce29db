package filter

import (
	"strconv"
	"strings"
)

type tokKind uint8

const (
	tEOF tokKind = iota
	tIdent
	tString
	tNumber
	tOp     // = <> != < <= > >=
	tLParen // (
	tRParen // )
	tComma  // ,
	tKeyword
)

type token struct {
	kind tokKind
	pos  int
	text string // identifier, keyword (upper case), operator, or the decoded string
}

func (t token) describe() string {
	switch t.kind {
	case tEOF:
		return "end of selector"
	case tString:
		return "string '" + t.text + "'"
	}
	return "'" + t.text + "'"
}

var keywords = map[string]bool{
	"AND": true, "OR": true, "NOT": true, "BETWEEN": true, "IN": true,
	"IS": true, "NULL": true, "TRUE": true, "FALSE": true,
}

type lexer struct {
	src string
	pos int
}

// scan returns the next token, or an error message and its position.
func (lx *lexer) scan() (token, string) {
	for lx.pos < len(lx.src) && isSpace(lx.src[lx.pos]) {
		lx.pos++
	}
	start := lx.pos
	if start >= len(lx.src) {
		return token{kind: tEOF, pos: start}, ""
	}
	c := lx.src[start]
	switch {
	case c == '(' || c == ')' || c == ',':
		lx.pos++
		kind := tComma
		if c == '(' {
			kind = tLParen
		} else if c == ')' {
			kind = tRParen
		}
		return token{kind: kind, pos: start, text: string(c)}, ""
	case c == '=':
		lx.pos++
		return token{kind: tOp, pos: start, text: "="}, ""
	case c == '<' || c == '>' || c == '!':
		lx.pos++
		if lx.pos < len(lx.src) && (lx.src[lx.pos] == '=' || (c == '<' && lx.src[lx.pos] == '>')) {
			lx.pos++
		}
		op := lx.src[start:lx.pos]
		if op == "!" {
			return token{}, "'!' must be followed by '='"
		}
		return token{kind: tOp, pos: start, text: op}, ""
	case c == '\'':
		return lx.scanString()
	case c == '-' || c == '.' || isDigit(c):
		return lx.scanNumber()
	case isIdentStart(c):
		for lx.pos < len(lx.src) && isIdentPart(lx.src[lx.pos]) {
			lx.pos++
		}
		word := lx.src[start:lx.pos]
		if up := strings.ToUpper(word); keywords[up] {
			return token{kind: tKeyword, pos: start, text: up}, ""
		}
		return token{kind: tIdent, pos: start, text: word}, ""
	}
	return token{}, "unexpected character " + strconv.QuoteRune(rune(c))
}

func (lx *lexer) scanString() (token, string) {
	start := lx.pos
	lx.pos++ // opening quote
	var b strings.Builder
	for lx.pos < len(lx.src) {
		c := lx.src[lx.pos]
		lx.pos++
		if c != '\'' {
			b.WriteByte(c)
			continue
		}
		if lx.pos < len(lx.src) && lx.src[lx.pos] == '\'' { // '' is a quote
			b.WriteByte('\'')
			lx.pos++
			continue
		}
		return token{kind: tString, pos: start, text: b.String()}, ""
	}
	lx.pos = start
	return token{}, "unterminated string"
}

func (lx *lexer) scanNumber() (token, string) {
	start := lx.pos
	if lx.src[lx.pos] == '-' {
		lx.pos++
	}
	for lx.pos < len(lx.src) {
		c := lx.src[lx.pos]
		if isDigit(c) || c == '.' || c == 'e' || c == 'E' ||
			((c == '-' || c == '+') && (lx.src[lx.pos-1] == 'e' || lx.src[lx.pos-1] == 'E')) {
			lx.pos++
			continue
		}
		break
	}
	if lx.pos < len(lx.src) && (lx.src[lx.pos] == 'L' || lx.src[lx.pos] == 'l') {
		lx.pos++
	}
	text := lx.src[start:lx.pos]
	if _, ok := parseNumber([]byte(text)); !ok {
		lx.pos = start
		return token{}, "malformed number " + strconv.Quote(text)
	}
	return token{kind: tNumber, pos: start, text: text}, ""
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }
func isDigit(c byte) bool { return c >= '0' && c <= '9' }
func isIdentStart(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c == '$'
}
func isIdentPart(c byte) bool { return isIdentStart(c) || isDigit(c) || c == '.' }

// parser is a recursive-descent parser; the first error stops it.
type parser struct {
	lx  lexer
	tok token
	err *SyntaxError
}

func (p *parser) fail(pos int, msg string) {
	if p.err == nil {
		p.err = &SyntaxError{Expr: p.lx.src, Pos: pos, Msg: msg}
	}
	p.tok = token{kind: tEOF, pos: pos}
}

func (p *parser) next() {
	if p.err != nil {
		return
	}
	t, msg := p.lx.scan()
	if msg != "" {
		p.fail(p.lx.pos, msg)
		return
	}
	p.tok = t
}

func (p *parser) isKeyword(k string) bool { return p.tok.kind == tKeyword && p.tok.text == k }

func (p *parser) expectKeyword(k string) {
	if !p.isKeyword(k) {
		p.fail(p.tok.pos, "expected "+k+", got "+p.tok.describe())
		return
	}
	p.next()
}

func (p *parser) parseOr(depth int) node {
	n := p.parseAnd(depth)
	for p.err == nil && p.isKeyword("OR") {
		p.next()
		n = orNode{n, p.parseAnd(depth)}
	}
	return n
}

func (p *parser) parseAnd(depth int) node {
	n := p.parseNot(depth)
	for p.err == nil && p.isKeyword("AND") {
		p.next()
		n = andNode{n, p.parseNot(depth)}
	}
	return n
}

func (p *parser) parseNot(depth int) node {
	if depth > MaxDepth {
		p.fail(p.tok.pos, "expression nested deeper than the limit")
		return constNode{}
	}
	if p.isKeyword("NOT") {
		p.next()
		return notNode{p.parseNot(depth + 1)}
	}
	return p.parsePredicate(depth)
}

func (p *parser) parsePredicate(depth int) node {
	switch {
	case p.tok.kind == tLParen:
		p.next()
		n := p.parseOr(depth + 1)
		if p.err == nil && p.tok.kind != tRParen {
			p.fail(p.tok.pos, "expected ')', got "+p.tok.describe())
		}
		p.next()
		return n
	case p.isKeyword("TRUE") || p.isKeyword("FALSE"):
		v := truthOf(p.tok.text == "TRUE")
		p.next()
		return constNode{v}
	case p.tok.kind == tIdent:
		key := p.tok.text
		p.next()
		return p.parseAfterIdent(key)
	}
	p.fail(p.tok.pos, "expected a property name, '(' or NOT, got "+p.tok.describe())
	return constNode{}
}

func (p *parser) parseAfterIdent(key string) node {
	switch {
	case p.tok.kind == tOp:
		return p.parseComparison(key)
	case p.isKeyword("IS"):
		p.next()
		not := p.isKeyword("NOT")
		if not {
			p.next()
		}
		p.expectKeyword("NULL")
		return nullNode{key: key, not: not}
	}
	not := p.isKeyword("NOT")
	if not {
		p.next()
	}
	switch {
	case p.isKeyword("BETWEEN"):
		p.next()
		lo := p.parseNumberLiteral()
		p.expectKeyword("AND")
		hi := p.parseNumberLiteral()
		return betweenNode{key: key, lo: lo, hi: hi, not: not}
	case p.isKeyword("IN"):
		p.next()
		return inNode{key: key, values: p.parseStringList(), not: not}
	}
	p.fail(p.tok.pos, "expected a comparison, BETWEEN, IN or IS after "+strconv.Quote(key)+", got "+p.tok.describe())
	return constNode{}
}

func (p *parser) parseComparison(key string) node {
	opText, opPos := p.tok.text, p.tok.pos
	op := map[string]cmpOp{"=": opEq, "<>": opNe, "!=": opNe, "<": opLt, "<=": opLe, ">": opGt, ">=": opGe}[opText]
	p.next()
	var lit literal
	switch {
	case p.tok.kind == tString:
		if op != opEq && op != opNe {
			p.fail(opPos, "strings can only be compared with = or <>, not "+opText)
			return constNode{}
		}
		lit = literal{kind: litString, s: p.tok.text}
	case p.tok.kind == tNumber:
		n, _ := parseNumber([]byte(p.tok.text))
		lit = literal{kind: litNumber, n: n}
	case p.isKeyword("TRUE") || p.isKeyword("FALSE"):
		if op != opEq && op != opNe {
			p.fail(opPos, "booleans can only be compared with = or <>, not "+opText)
			return constNode{}
		}
		lit = literal{kind: litBool, b: p.tok.text == "TRUE"}
	default:
		p.fail(p.tok.pos, "expected a string, number or boolean after "+opText+", got "+p.tok.describe())
		return constNode{}
	}
	p.next()
	return cmpNode{key: key, op: op, lit: lit}
}

func (p *parser) parseNumberLiteral() number {
	if p.tok.kind != tNumber {
		p.fail(p.tok.pos, "expected a number, got "+p.tok.describe())
		return number{}
	}
	n, _ := parseNumber([]byte(p.tok.text))
	p.next()
	return n
}

func (p *parser) parseStringList() []string {
	if p.tok.kind != tLParen {
		p.fail(p.tok.pos, "expected '(' after IN, got "+p.tok.describe())
		return nil
	}
	p.next()
	var values []string
	for p.err == nil {
		if p.tok.kind != tString {
			p.fail(p.tok.pos, "expected a string in the IN list, got "+p.tok.describe())
			return nil
		}
		if len(values) == MaxInItems {
			p.fail(p.tok.pos, "IN list longer than the limit")
			return nil
		}
		values = append(values, p.tok.text)
		p.next()
		if p.tok.kind == tRParen {
			p.next()
			return values
		}
		if p.tok.kind != tComma {
			p.fail(p.tok.pos, "expected ',' or ')' in the IN list, got "+p.tok.describe())
			return nil
		}
		p.next()
	}
	return nil
}
