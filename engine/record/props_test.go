package record

import (
	"net/netip"
	"testing"
)

func TestTagsHash(t *testing.T) {
	tests := []struct {
		tag  string
		want int64
	}{
		{"", 0},
		{"tagA", 3552231}, // PROTOCOL.md §2.4 codeSet
		{"tagB", 3552232},
		{"TagA", 2598919},
		{"hello world", 1794106052},
		{"polygenelubricants", -2147483648}, // Java's famous MIN_VALUE hash
		{"é", 233},
		{"😀", 31*0xD83D + 0xDE00},  // surrogate pair D83D DE00
		{"\xff", 0xFFFD},           // invalid UTF-8 -> U+FFFD
		{"Aa", 2112}, {"BB", 2112}, // a classic collision
	}
	for _, tc := range tests {
		if got := TagsHash(tc.tag); got != tc.want {
			t.Errorf("TagsHash(%q) = %d, want %d", tc.tag, got, tc.want)
		}
		if got := TagsHashBytes([]byte(tc.tag)); got != tc.want {
			t.Errorf("TagsHashBytes(%q) = %d, want %d", tc.tag, got, tc.want)
		}
	}
}

func TestProperty(t *testing.T) {
	tests := []struct {
		props, key, want string
		ok               bool
	}{
		{"TAGS\x01a\x02KEYS\x01k1 k2\x02", "KEYS", "k1 k2", true},
		{"TAGS\x01a\x02KEYS\x01k1 k2", "KEYS", "k1 k2", true}, // no trailing 0x02
		{"TAGS\x01a\x02", "KEYS", "", false},
		{"", "TAGS", "", false},
		{"junk\x02TAGS\x01x\x02", "TAGS", "x", true}, // pair without 0x01 skipped
		{"TAGS\x01\x02", "TAGS", "", true},
		{"TAGSX\x01a\x02TAGS\x01b\x02", "TAGS", "b", true},
		{"TAGS\x01a\x02TAGS\x01b\x02", "TAGS", "a", true},
	}
	for _, tc := range tests {
		got, ok := Property([]byte(tc.props), tc.key)
		if ok != tc.ok || string(got) != tc.want {
			t.Errorf("Property(%q, %q) = %q, %v; want %q, %v", tc.props, tc.key, got, ok, tc.want, tc.ok)
		}
	}
}

func TestAppendPropertyAndWithout(t *testing.T) {
	p := AppendProperty(nil, PropTags, "a")
	p = AppendProperty(p, PropDelay, "3")
	p = AppendProperty(p, PropKeys, "x")
	if want := "TAGS\x01a\x02DELAY\x013\x02KEYS\x01x\x02"; string(p) != want {
		t.Fatalf("got %q, want %q", p, want)
	}
	if got, want := string(AppendWithout(nil, p, PropDelay)), "TAGS\x01a\x02KEYS\x01x\x02"; got != want {
		t.Fatalf("AppendWithout: got %q, want %q", got, want)
	}
}

func TestNextKey(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"k1 k2", []string{"k1", "k2"}},
		{"  k1   k2 ", []string{"k1", "k2"}},
		{"", nil},
		{"   ", nil},
		{"one", []string{"one"}},
	}
	for _, tc := range tests {
		var got []string
		rest := []byte(tc.in)
		for {
			tok, r, ok := NextKey(rest)
			if !ok {
				break
			}
			got = append(got, string(tok))
			rest = r
		}
		if len(got) != len(tc.want) {
			t.Fatalf("NextKey(%q): got %q, want %q", tc.in, got, tc.want)
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Fatalf("NextKey(%q): got %q, want %q", tc.in, got, tc.want)
			}
		}
	}
}

func TestTagsCode(t *testing.T) {
	if got := TagsCode([]byte("TAGS\x01tagA\x02")); got != 3552231 {
		t.Fatalf("got %d, want 3552231", got)
	}
	if got := TagsCode([]byte("KEYS\x01x\x02")); got != 0 {
		t.Fatalf("no tags: got %d, want 0", got)
	}
}

func TestOffsetMsgID(t *testing.T) {
	tests := []struct {
		host string
		phys int64
		hex  string
	}{
		{"127.0.0.1:10911", 0xA3, "7F00000100002A9F00000000000000A3"}, // PROTOCOL.md §3.1
		{"10.1.2.3:0", 0, "0A01020300000000" + "0000000000000000"},
		{"255.255.255.255:65535", 1<<62 + 5, "FFFFFFFF0000FFFF4000000000000005"},
	}
	for _, tc := range tests {
		ap := netip.MustParseAddrPort(tc.host)
		id := OffsetMsgID(ap, tc.phys)
		if got := string(AppendOffsetMsgIDHex(nil, id)); got != tc.hex {
			t.Errorf("OffsetMsgID(%s, %d) = %s, want %s", tc.host, tc.phys, got, tc.hex)
		}
		host, phys, err := ParseOffsetMsgID(tc.hex)
		if err != nil || host != ap || phys != tc.phys {
			t.Errorf("ParseOffsetMsgID(%s) = %v %d %v", tc.hex, host, phys, err)
		}
	}
	for _, bad := range []string{"", "7F00000100002A9F00000000000000A", "7F00000100002A9F00000000000000AZ", "7F000001FFFF2A9F00000000000000A3"} {
		if _, _, err := ParseOffsetMsgID(bad); err == nil {
			t.Errorf("ParseOffsetMsgID(%q) accepted", bad)
		}
	}
	if _, phys, err := ParseOffsetMsgID("7f00000100002a9f00000000000000a3"); err != nil || phys != 0xA3 {
		t.Errorf("lower case: %d %v", phys, err)
	}
}
