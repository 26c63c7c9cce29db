package record

import (
	"bytes"
	"testing"
)

// FuzzDecode checks that Decode never panics, that whatever it accepts re-encodes to the
// same bytes (with a freshly computed CRC), and that Check agrees with the CRC.
func FuzzDecode(f *testing.F) {
	h := sampleHeader()
	f.Add(Append(nil, &h, "T1", []byte("hello"), sampleProps))
	f.Add(Append(nil, &h, "x", nil, nil))
	blank := make([]byte, 16)
	PutBlank(blank)
	f.Add(blank)
	f.Add(make([]byte, 120))
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := Decode(b)
		if err != nil {
			return
		}
		h := v.Header()
		re := Append(nil, &h, string(v.Topic()), v.Body(), v.Properties())
		orig := v.Bytes()
		if len(re) != len(orig) {
			t.Fatalf("re-encoded %d bytes, decoded %d", len(re), len(orig))
		}
		crcOK := bytes.Equal(re[offBodyCRC:offBodyCRC+4], orig[offBodyCRC:offBodyCRC+4])
		copy(re[offBodyCRC:offBodyCRC+4], orig[offBodyCRC:offBodyCRC+4])
		if !bytes.Equal(re, orig) {
			t.Fatalf("re-encoding differs:\n got %x\nwant %x", re, orig)
		}
		_, cerr := Check(b, h.PhysicalOffset)
		if crcOK != (cerr == nil) {
			t.Fatalf("Check = %v, CRC equal = %v", cerr, crcOK)
		}
		for props := v.Properties(); ; {
			_, _, rest, ok := NextProperty(props)
			if !ok {
				break
			}
			if len(rest) >= len(props) {
				t.Fatal("NextProperty made no progress")
			}
			props = rest
		}
	})
}

// FuzzParseOffsetMsgID checks that a parsed id formats back to the same (upper-case) text.
func FuzzParseOffsetMsgID(f *testing.F) {
	f.Add("7F00000100002A9F00000000000000A3")
	f.Fuzz(func(t *testing.T, s string) {
		host, phys, err := ParseOffsetMsgID(s)
		if err != nil {
			return
		}
		if got := string(AppendOffsetMsgIDHex(nil, OffsetMsgID(host, phys))); got != string(bytes.ToUpper([]byte(s))) {
			t.Fatalf("got %s, want %s", got, s)
		}
	})
}
