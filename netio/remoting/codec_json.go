package remoting

import (
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// MaxExtFields bounds the ext fields of one header; more is a malformed header.
const MaxExtFields = 256

// maxJSONDepth bounds nesting while skipping unknown JSON values.
const maxJSONDepth = 32

var errHeaderSyntax = errors.New("malformed header")

// decoder decodes headers into a reused Command. scratch holds JSON-unescaped strings; it is sized to the
// header before decoding so it never moves while views into it exist (unescaping only shrinks text).
type decoder struct {
	scratch []byte
}

// jscan is a cursor over one JSON header.
type jscan struct {
	b   []byte
	i   int
	dec *decoder
}

func (s *jscan) fail(what string) error {
	return fmt.Errorf("%w: %s at byte %d", errHeaderSyntax, what, s.i)
}

func (s *jscan) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// peek returns the next non-space byte (0 at the end).
func (s *jscan) peek() byte {
	s.ws()
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

func (s *jscan) lit(word string) bool {
	if len(s.b)-s.i >= len(word) && string(s.b[s.i:s.i+len(word)]) == word {
		s.i += len(word)
		return true
	}
	return false
}

// decodeJSONHeader decodes a JSON RemotingCommand header into cmd (Code..SerializeType, not Body).
// Unknown fields are skipped; remark, language and extFields may be null or missing.
func (d *decoder) decodeJSONHeader(h []byte, cmd *Command) error {
	if cap(d.scratch) < len(h) {
		d.scratch = make([]byte, 0, max(len(h), 512))
	}
	d.scratch = d.scratch[:0]
	*cmd = Command{Ext: cmd.Ext[:0], SerializeType: SerializeJSON}
	s := jscan{b: h, dec: d}
	if s.peek() != '{' {
		return s.fail("want '{'")
	}
	s.i++
	if s.peek() == '}' {
		s.i++
		return s.end()
	}
	for {
		if s.peek() != '"' {
			return s.fail("want a key")
		}
		key, err := s.str()
		if err != nil {
			return err
		}
		if s.peek() != ':' {
			return s.fail("want ':'")
		}
		s.i++
		if err := s.field(key, cmd); err != nil {
			return err
		}
		switch s.peek() {
		case ',':
			s.i++
		case '}':
			s.i++
			return s.end()
		default:
			return s.fail("want ',' or '}'")
		}
	}
}

func (s *jscan) end() error {
	if s.peek() != 0 {
		return s.fail("trailing bytes")
	}
	return nil
}

func (s *jscan) field(key []byte, cmd *Command) error {
	var err error
	switch string(key) {
	case "code":
		cmd.Code, err = s.int16()
	case "version":
		cmd.Version, err = s.int16()
	case "opaque":
		cmd.Opaque, err = s.int32()
	case "flag":
		cmd.Flag, err = s.int32()
	case "language":
		if s.peek() == 'n' && s.lit("null") {
			return nil
		}
		var v []byte
		if v, err = s.str(); err == nil {
			cmd.Language = languageCode(v)
		}
	case "remark":
		if s.peek() == 'n' && s.lit("null") {
			return nil
		}
		cmd.Remark, err = s.str()
	case "extFields":
		err = s.ext(cmd)
	default:
		err = s.skip(0)
	}
	return err
}

func (s *jscan) ext(cmd *Command) error {
	switch s.peek() {
	case 'n':
		if s.lit("null") {
			return nil
		}
		return s.fail("bad literal")
	case '{':
		s.i++
	default:
		return s.fail("extFields: want an object")
	}
	if s.peek() == '}' {
		s.i++
		return nil
	}
	for {
		if s.peek() != '"' {
			return s.fail("extFields: want a key")
		}
		k, err := s.str()
		if err != nil {
			return err
		}
		if s.peek() != ':' {
			return s.fail("extFields: want ':'")
		}
		s.i++
		v, err := s.scalar()
		if err != nil {
			return err
		}
		if len(cmd.Ext) == MaxExtFields {
			return s.fail("too many ext fields")
		}
		cmd.Ext = append(cmd.Ext, Field{Key: k, Value: v})
		switch s.peek() {
		case ',':
			s.i++
		case '}':
			s.i++
			return nil
		default:
			return s.fail("extFields: want ',' or '}'")
		}
	}
}

// scalar reads an ext value: a string, or (leniently, for other servers' output) a bare number/bool
// whose text becomes the value. null becomes an empty value.
func (s *jscan) scalar() ([]byte, error) {
	c := s.peek()
	if c == '"' {
		return s.str()
	}
	if c == 'n' && s.lit("null") {
		return nil, nil
	}
	start := s.i
	for s.i < len(s.b) {
		ch := s.b[s.i]
		if ch == ',' || ch == '}' || ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' {
			break
		}
		if ch == '"' || ch == '{' || ch == '[' || ch == ':' {
			return nil, s.fail("extFields: bad value")
		}
		s.i++
	}
	if s.i == start {
		return nil, s.fail("extFields: empty value")
	}
	return s.b[start:s.i:s.i], nil
}

func (s *jscan) int64() (int64, error) {
	s.ws()
	start := s.i
	if s.i < len(s.b) && s.b[s.i] == '-' {
		s.i++
	}
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		s.i++
	}
	n, ok := ParseInt64(s.b[start:s.i])
	if !ok {
		return 0, s.fail("want an integer")
	}
	return n, nil
}

func (s *jscan) int16() (int16, error) {
	n, err := s.int64()
	if err == nil && (n < -1<<15 || n > 1<<15-1) {
		err = s.fail("int16 out of range")
	}
	return int16(n), err
}

func (s *jscan) int32() (int32, error) {
	n, err := s.int64()
	if err == nil && (n < -1<<31 || n > 1<<31-1) {
		err = s.fail("int32 out of range")
	}
	return int32(n), err
}

// str reads a JSON string at s.i (which is '"'). Without escapes it returns a view into the header;
// with escapes it unescapes into the decoder's scratch and returns a view of that.
func (s *jscan) str() ([]byte, error) {
	s.i++ // opening quote
	start := s.i
	for s.i < len(s.b) {
		switch ch := s.b[s.i]; {
		case ch == '"':
			s.i++
			return s.b[start : s.i-1 : s.i-1], nil
		case ch == '\\':
			return s.strEscaped(start)
		case ch < 0x20:
			return nil, s.fail("control byte in string")
		default:
			s.i++
		}
	}
	return nil, s.fail("unterminated string")
}

func (s *jscan) strEscaped(start int) ([]byte, error) {
	d := s.dec
	out := len(d.scratch)
	d.scratch = append(d.scratch, s.b[start:s.i]...)
	for s.i < len(s.b) {
		ch := s.b[s.i]
		switch {
		case ch == '"':
			s.i++
			return d.scratch[out:len(d.scratch):len(d.scratch)], nil
		case ch < 0x20:
			return nil, s.fail("control byte in string")
		case ch != '\\':
			d.scratch = append(d.scratch, ch)
			s.i++
			continue
		}
		if s.i+1 >= len(s.b) {
			return nil, s.fail("unterminated escape")
		}
		esc := s.b[s.i+1]
		s.i += 2
		switch esc {
		case '"', '\\', '/':
			d.scratch = append(d.scratch, esc)
		case 'b':
			d.scratch = append(d.scratch, '\b')
		case 'f':
			d.scratch = append(d.scratch, '\f')
		case 'n':
			d.scratch = append(d.scratch, '\n')
		case 'r':
			d.scratch = append(d.scratch, '\r')
		case 't':
			d.scratch = append(d.scratch, '\t')
		case 'u':
			r, err := s.unicodeEscape()
			if err != nil {
				return nil, err
			}
			d.scratch = utf8.AppendRune(d.scratch, r)
		default:
			return nil, s.fail("bad escape")
		}
	}
	return nil, s.fail("unterminated string")
}

// unicodeEscape reads the XXXX of \uXXXX (s.i is past the 'u'), joining a surrogate pair when one follows.
func (s *jscan) unicodeEscape() (rune, error) {
	r, ok := hex4(s.b, s.i)
	if !ok {
		return 0, s.fail("bad \\u escape")
	}
	s.i += 4
	if r < 0xD800 || r > 0xDFFF {
		return r, nil
	}
	if r <= 0xDBFF && s.i+6 <= len(s.b) && s.b[s.i] == '\\' && s.b[s.i+1] == 'u' {
		if lo, ok := hex4(s.b, s.i+2); ok && lo >= 0xDC00 && lo <= 0xDFFF {
			s.i += 6
			return 0x10000 + (r-0xD800)<<10 + (lo - 0xDC00), nil
		}
	}
	return utf8.RuneError, nil
}

func hex4(b []byte, i int) (rune, bool) {
	if i+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, ch := range b[i : i+4] {
		switch {
		case ch >= '0' && ch <= '9':
			r = r<<4 | rune(ch-'0')
		case ch >= 'a' && ch <= 'f':
			r = r<<4 | rune(ch-'a'+10)
		case ch >= 'A' && ch <= 'F':
			r = r<<4 | rune(ch-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}

// skip skips one JSON value of any kind (unknown header fields).
func (s *jscan) skip(depth int) error {
	if depth > maxJSONDepth {
		return s.fail("nested too deep")
	}
	switch c := s.peek(); c {
	case '"':
		_, err := s.str()
		return err
	case '{', '[':
		return s.skipContainer(c, depth)
	case 't':
		return s.litOr("true")
	case 'f':
		return s.litOr("false")
	case 'n':
		return s.litOr("null")
	default:
		start := s.i
		for s.i < len(s.b) && (s.b[s.i] == '-' || s.b[s.i] == '+' || s.b[s.i] == '.' || s.b[s.i] == 'e' ||
			s.b[s.i] == 'E' || (s.b[s.i] >= '0' && s.b[s.i] <= '9')) {
			s.i++
		}
		if s.i == start {
			return s.fail("want a value")
		}
		return nil
	}
}

func (s *jscan) litOr(word string) error {
	if s.lit(word) {
		return nil
	}
	return s.fail("bad literal")
}

func (s *jscan) skipContainer(open byte, depth int) error {
	closeCh := byte('}')
	if open == '[' {
		closeCh = ']'
	}
	s.i++
	if s.peek() == closeCh {
		s.i++
		return nil
	}
	for {
		if open == '{' {
			if s.peek() != '"' {
				return s.fail("want a key")
			}
			if _, err := s.str(); err != nil {
				return err
			}
			if s.peek() != ':' {
				return s.fail("want ':'")
			}
			s.i++
		}
		if err := s.skip(depth + 1); err != nil {
			return err
		}
		switch s.peek() {
		case ',':
			s.i++
		case closeCh:
			s.i++
			return nil
		default:
			return s.fail("want ',' or a closing bracket")
		}
	}
}

// appendJSONHeader appends the JSON header of an outgoing frame. The shape is the Go client's own:
//
//	{"code":0,"language":"GO","version":407,"opaque":3,"flag":1,"remark":"...","extFields":{"k":"v"}}
//
// remark is left out when empty; extFields is always an object of JSON strings.
func appendJSONHeader(dst []byte, code int16, lang byte, version int16, opaque, flag int32, remark []byte,
	ext []Field) []byte {
	dst = append(dst, `{"code":`...)
	dst = strconv.AppendInt(dst, int64(code), 10)
	dst = append(dst, `,"language":"`...)
	dst = append(dst, LanguageName(lang)...)
	dst = append(dst, `","version":`...)
	dst = strconv.AppendInt(dst, int64(version), 10)
	dst = append(dst, `,"opaque":`...)
	dst = strconv.AppendInt(dst, int64(opaque), 10)
	dst = append(dst, `,"flag":`...)
	dst = strconv.AppendInt(dst, int64(flag), 10)
	if len(remark) > 0 {
		dst = append(dst, `,"remark":`...)
		dst = appendJSONString(dst, remark)
	}
	dst = append(dst, `,"extFields":{`...)
	for i, f := range ext {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendJSONString(dst, f.Key)
		dst = append(dst, ':')
		dst = appendJSONString(dst, f.Value)
	}
	return append(dst, "}}"...)
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s quoted: '"' and '\' escaped, control bytes as \u00XX, other bytes as is
// (the properties separators 0x01/0x02 travel as \u0001/\u0002, as the Go client writes them).
func appendJSONString(dst, s []byte) []byte {
	dst = append(dst, '"')
	start := 0
	for i, ch := range s {
		if ch >= 0x20 && ch != '"' && ch != '\\' {
			continue
		}
		dst = append(dst, s[start:i]...)
		switch ch {
		case '"', '\\':
			dst = append(dst, '\\', ch)
		default:
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[ch>>4], hexDigits[ch&0xF])
		}
		start = i + 1
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
