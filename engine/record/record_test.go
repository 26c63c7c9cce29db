package record

import (
	"bytes"
	"encoding/hex"
	"errors"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files")

func sampleHeader() Header {
	return Header{
		QueueID:                   3,
		Flag:                      7,
		QueueOffset:               42,
		PhysicalOffset:            0xA3,
		SysFlag:                   SysFlagCompressed,
		BornTimestampMs:           1795238134515,
		BornHost:                  netip.MustParseAddrPort("192.0.2.2:51234"),
		StoreTimestampMs:          1795238134600,
		StoreHost:                 netip.MustParseAddrPort("127.0.0.1:10911"),
		ReconsumeTimes:            1,
		PreparedTransactionOffset: 99,
	}
}

var sampleProps = []byte("TAGS\x01tagA\x02KEYS\x01k1 k2\x02UNIQ_KEY\x01C0000202398A00000000682018f00001\x02")

// hexDump renders bytes 16 to a line so the golden file diffs readably.
func hexDump(b []byte) string {
	var sb strings.Builder
	for len(b) > 0 {
		n := min(16, len(b))
		sb.WriteString(hex.EncodeToString(b[:n]))
		sb.WriteByte('\n')
		b = b[n:]
	}
	return sb.String()
}

func TestGolden(t *testing.T) {
	h := sampleHeader()
	got := Append(nil, &h, "T1", []byte("hello, ringmq"), sampleProps)
	if len(got) != Size(13, 2, len(sampleProps)) {
		t.Fatalf("got %d bytes, want %d", len(got), Size(13, 2, len(sampleProps)))
	}
	path := filepath.Join("testdata", "record_v1.hex")
	if *update {
		if err := os.WriteFile(path, []byte(hexDump(got)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if hexDump(got) != string(want) {
		t.Fatalf("encoding changed:\ngot\n%s\nwant\n%s", hexDump(got), want)
	}
}

func TestRoundTrip(t *testing.T) {
	h := sampleHeader()
	rec := Append([]byte("prefix"), &h, "TopicA", []byte{}, nil)[len("prefix"):]
	v, err := Check(rec, h.PhysicalOffset)
	if err != nil {
		t.Fatal(err)
	}
	if got := v.Header(); got != h {
		t.Fatalf("header: got %+v, want %+v", got, h)
	}
	if string(v.Topic()) != "TopicA" || len(v.Body()) != 0 || len(v.Properties()) != 0 {
		t.Fatalf("got topic %q body %q props %q", v.Topic(), v.Body(), v.Properties())
	}
	if v.TotalSize() != FixedSizeBytes+6 {
		t.Fatalf("total size %d, want %d", v.TotalSize(), FixedSizeBytes+6)
	}
}

func TestDecodeErrors(t *testing.T) {
	h := sampleHeader()
	good := Append(nil, &h, "T1", []byte("body"), sampleProps)
	mut := func(f func(b []byte)) []byte {
		b := bytes.Clone(good)
		f(b)
		return b
	}
	blank := make([]byte, 64)
	PutBlank(blank)
	var corruptErr *CorruptError
	tests := []struct {
		name string
		in   []byte
		phys int64
		want error // nil means *CorruptError
	}{
		{"short", good[:5], 0xA3, ErrTruncated},
		{"cut", good[:len(good)-1], 0xA3, ErrTruncated},
		{"blank", blank, 0xA3, ErrBlank},
		{"zero", make([]byte, 100), 0xA3, ErrZero},
		{"magic", mut(func(b []byte) { b[5] ^= 1 }), 0xA3, nil},
		{"crc", mut(func(b []byte) { b[offBody] ^= 1 }), 0xA3, nil},
		{"phys", good, 0xA4, nil},
		{"small total", mut(func(b []byte) { b[3] = 10; b[0], b[1], b[2] = 0, 0, 0 }), 0xA3, nil},
		{"body len", mut(func(b []byte) { b[offBodyLen+3] = 200 }), 0xA3, nil},
		{"topic len 0", mut(func(b []byte) { b[offBody+4] = 0 }), 0xA3, nil},
		{"props len", mut(func(b []byte) { b[len(b)-len(sampleProps)-1]++ }), 0xA3, nil},
		{"ipv6 flag", mut(func(b []byte) { b[offSysFlag+3] |= 0x10 }), 0xA3, nil},
		{"port", mut(func(b []byte) { b[offStoreHost+5] = 1 }), 0xA3, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Check(tc.in, tc.phys)
			if tc.want != nil {
				if !errors.Is(err, tc.want) {
					t.Fatalf("got %v, want %v", err, tc.want)
				}
				return
			}
			if !errors.As(err, &corruptErr) {
				t.Fatalf("got %v, want *CorruptError", err)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		topic            string
		body, props, max int
		ok               bool
	}{
		{"T", 10, 10, 100, true},
		{"", 10, 10, 100, false},
		{strings.Repeat("t", 127), 0, 0, 0, true},
		{strings.Repeat("t", 128), 0, 0, 0, false},
		{"T", 0, 32767, 0, true},
		{"T", 0, 32768, 0, false},
		{"T", 101, 0, 100, false},
	}
	for _, tc := range tests {
		if err := Validate(tc.topic, tc.body, tc.props, tc.max); (err == nil) != tc.ok {
			t.Errorf("Validate(len %d, %d, %d, %d) = %v, want ok=%v", len(tc.topic), tc.body, tc.props, tc.max, err, tc.ok)
		}
	}
}

func TestEncodeAllocs(t *testing.T) {
	h := sampleHeader()
	body := make([]byte, 1024)
	buf := make([]byte, 0, 4096)
	allocs := testing.AllocsPerRun(100, func() {
		buf = Append(buf[:0], &h, "T1", body, sampleProps)
		if _, err := Check(buf, h.PhysicalOffset); err != nil {
			t.Fatal(err)
		}
		if _, ok := Property(sampleProps, PropUniqKey); !ok {
			t.Fatal("no UNIQ_KEY")
		}
		_ = TagsCode(sampleProps)
	})
	if allocs != 0 {
		t.Fatalf("got %v allocs per encode+check, want 0", allocs)
	}
}

func BenchmarkEncodeCheck(b *testing.B) {
	h := sampleHeader()
	body := make([]byte, 1024)
	buf := make([]byte, 0, 4096)
	b.ReportAllocs()
	b.SetBytes(int64(Size(len(body), 2, len(sampleProps))))
	for b.Loop() {
		buf = Append(buf[:0], &h, "T1", body, sampleProps)
		if _, err := Check(buf, h.PhysicalOffset); err != nil {
			b.Fatal(err)
		}
	}
}
