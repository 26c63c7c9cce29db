package remoting

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/ringmq/ringmq/perf"
)

// Flag bits of a frame header.
const (
	FlagResponse int32 = 1 // the frame answers the request with the same opaque
	FlagOneway   int32 = 2 // the sender wants no answer
)

// Serialize types: the high byte of a frame's second int32.
const (
	SerializeJSON     uint8 = 0
	SerializeRocketMQ uint8 = 1
)

// Language codes (RocketMQ LanguageCode ordinals); the JSON header carries the name.
const (
	LangJava   byte = 0
	LangCPP    byte = 1
	LangDotnet byte = 2
	LangPython byte = 3
	LangDelphi byte = 4
	LangErlang byte = 5
	LangRuby   byte = 6
	LangOther  byte = 7
	LangHTTP   byte = 8
	LangGo     byte = 9
	LangPHP    byte = 10
	LangOMS    byte = 11
	LangRust   byte = 12
)

var languageNames = [...]string{"JAVA", "CPP", "DOTNET", "PYTHON", "DELPHI", "ERLANG", "RUBY", "OTHER", "HTTP",
	"GO", "PHP", "OMS", "RUST"}

// LanguageName returns the JSON name of a language code ("OTHER" when unknown).
func LanguageName(lang byte) string {
	if int(lang) < len(languageNames) {
		return languageNames[lang]
	}
	return "OTHER"
}

// languageCode maps a JSON language name to its code without allocating.
func languageCode(name []byte) byte {
	for i, n := range languageNames {
		if string(name) == n {
			return byte(i)
		}
	}
	return LangOther
}

// Field is one extFields entry: views, never copies.
type Field struct{ Key, Value []byte }

// Command is one decoded frame. Decoding reuses the connection's buffers: a *Command and every []byte in
// it are valid only until the Handler's Serve (or the client's callback) returns. Ext is an ordered list of
// key/value views into the header (JSON-unescaped into a per-connection scratch buffer when needed).
type Command struct {
	Code          int16
	Language      byte
	Version       int16
	Opaque        int32
	Flag          int32
	Remark        []byte
	Ext           []Field
	Body          []byte
	SerializeType uint8
	// Stamps: the server marks StageRead (when the read syscall that completed the frame returned) and
	// StageDecoded; handlers mark the stages they pass. Reply copies them into the Response.
	Stamps perf.Stamps
}

// ErrExtMissing is returned by the Ext accessors when the key is absent.
var ErrExtMissing = errors.New("remoting: ext field missing")

// ExtValue returns the value of key, and whether it is present. Linear scan: headers carry ~15 fields.
func (c *Command) ExtValue(key string) ([]byte, bool) {
	for i := range c.Ext {
		if string(c.Ext[i].Key) == key {
			return c.Ext[i].Value, true
		}
	}
	return nil, false
}

// ExtInt64 parses the decimal value of key. It allocates only on error.
func (c *Command) ExtInt64(key string) (int64, error) {
	v, ok := c.ExtValue(key)
	if !ok {
		return 0, fmt.Errorf("ext %q: %w", key, ErrExtMissing)
	}
	n, ok := ParseInt64(v)
	if !ok {
		return 0, fmt.Errorf("ext %q: %q is not an int64", key, v)
	}
	return n, nil
}

// ExtInt32 parses the decimal value of key as an int32.
func (c *Command) ExtInt32(key string) (int32, error) {
	n, err := c.ExtInt64(key)
	if err != nil {
		return 0, err
	}
	if n < -1<<31 || n > 1<<31-1 {
		return 0, fmt.Errorf("ext %q: %d overflows int32", key, n)
	}
	return int32(n), nil
}

// ExtBool reads key as Java's Boolean.parseBoolean does: "true" in any case is true, anything else false.
// Only a missing key is an error.
func (c *Command) ExtBool(key string) (bool, error) {
	v, ok := c.ExtValue(key)
	if !ok {
		return false, fmt.Errorf("ext %q: %w", key, ErrExtMissing)
	}
	return len(v) == 4 && (v[0]|0x20) == 't' && (v[1]|0x20) == 'r' && (v[2]|0x20) == 'u' && (v[3]|0x20) == 'e', nil
}

// ExtString returns a copy of key's value ("" when absent). It allocates: for cold paths.
func (c *Command) ExtString(key string) string {
	v, _ := c.ExtValue(key)
	return string(v)
}

// ParseInt64 parses an optionally signed decimal (an ext value) without allocating; ok is
// false for anything else, including values outside int64.
func ParseInt64(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 20 {
		return 0, false
	}
	neg := b[0] == '-'
	if neg || b[0] == '+' {
		b = b[1:]
		if len(b) == 0 {
			return 0, false
		}
	}
	var u uint64
	for _, ch := range b {
		// u stays below 10*(2^63/10)+9 < 2^64: the checks below see the true value, never
		// one that wrapped around.
		if ch < '0' || ch > '9' || u > (1<<63)/10 {
			return 0, false
		}
		u = u*10 + uint64(ch-'0')
	}
	if neg {
		if u > 1<<63 {
			return 0, false
		}
		return -int64(u), true
	}
	if u > 1<<63-1 {
		return 0, false
	}
	return int64(u), true
}

// Clone returns a deep copy that owns its memory (one allocation for all bytes).
func (c *Command) Clone() *Command {
	n := len(c.Remark) + len(c.Body)
	for _, f := range c.Ext {
		n += len(f.Key) + len(f.Value)
	}
	buf := make([]byte, 0, n)
	keep := func(b []byte) []byte {
		if b == nil {
			return nil
		}
		s := len(buf)
		buf = append(buf, b...)
		return buf[s:len(buf):len(buf)]
	}
	out := &Command{Code: c.Code, Language: c.Language, Version: c.Version, Opaque: c.Opaque, Flag: c.Flag,
		SerializeType: c.SerializeType, Stamps: c.Stamps}
	out.Remark = keep(c.Remark)
	if len(c.Ext) > 0 {
		out.Ext = make([]Field, len(c.Ext))
		for i, f := range c.Ext {
			out.Ext[i] = Field{Key: keep(f.Key), Value: keep(f.Value)}
		}
	}
	out.Body = keep(c.Body)
	return out
}

// String renders the command for logs and test failures (allocates).
func (c *Command) String() string {
	s := "code=" + strconv.Itoa(int(c.Code)) + " opaque=" + strconv.Itoa(int(c.Opaque)) +
		" flag=" + strconv.Itoa(int(c.Flag))
	if len(c.Remark) > 0 {
		s += " remark=" + strconv.Quote(string(c.Remark))
	}
	for _, f := range c.Ext {
		s += " " + string(f.Key) + "=" + strconv.Quote(string(f.Value))
	}
	return s + " body=" + strconv.Itoa(len(c.Body)) + "B"
}
