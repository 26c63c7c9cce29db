package remoting

import (
	"bytes"
	"io"
	"testing"
)

// checkReencode asserts that a decoded command survives encode -> decode unchanged.
func checkReencode(t *testing.T, cmd *Command) {
	t.Helper()
	for _, ser := range []uint8{SerializeJSON, SerializeRocketMQ} {
		h := header{code: cmd.Code, lang: cmd.Language, version: cmd.Version, opaque: cmd.Opaque, flag: cmd.Flag,
			serialize: ser, remark: cmd.Remark, ext: cmd.Ext}
		if ser == SerializeJSON && cmd.Language > LangRust {
			h.lang = LangOther
		}
		frame := appendFramePrefix(nil, &h, len(cmd.Body))
		frame = append(frame, cmd.Body...)
		var d decoder
		var got Command
		if err := d.decodeFrame(frameLimits{maxFrameBytes: 1 << 30, maxHeaderBytes: 1 << 24}, frame, &got); err != nil {
			t.Fatalf("re-decode (serialize %d) of %s: %v", ser, cmd, err)
		}
		if got.Code != cmd.Code || got.Version != cmd.Version || got.Opaque != cmd.Opaque || got.Flag != cmd.Flag ||
			!bytes.Equal(got.Remark, cmd.Remark) || !bytes.Equal(got.Body, cmd.Body) || len(got.Ext) != len(cmd.Ext) {
			t.Fatalf("serialize %d: re-decoded %s, want %s", ser, &got, cmd)
		}
		for i := range got.Ext {
			if !bytes.Equal(got.Ext[i].Key, cmd.Ext[i].Key) || !bytes.Equal(got.Ext[i].Value, cmd.Ext[i].Value) {
				t.Fatalf("serialize %d: ext %d %q:%q, want %q:%q", ser, i, got.Ext[i].Key, got.Ext[i].Value,
					cmd.Ext[i].Key, cmd.Ext[i].Value)
			}
		}
	}
}

func FuzzJSONHeader(f *testing.F) {
	f.Add([]byte(sendHeader))
	f.Add([]byte(`{"code":34,"language":"GO","version":317,"opaque":3,"flag":0,"remark":"","extFields":{}}`))
	f.Add([]byte(`{"code":0,"remark":"\ud83d\ude00\u0001","extFields":{"n":5,"x":null},"z":[{"a":[]}]}`))
	f.Fuzz(func(t *testing.T, hdr []byte) {
		var d decoder
		var cmd Command
		if err := d.decodeJSONHeader(hdr, &cmd); err != nil {
			return
		}
		checkReencode(t, cmd.Clone())
	})
}

func FuzzBinaryHeader(f *testing.F) {
	f.Add(appendBinaryHeader(nil, 10, LangJava, 407, 5, 0, []byte("r"),
		[]Field{{Key: []byte("topic"), Value: []byte("T")}}))
	f.Add(make([]byte, binaryFixedBytes))
	f.Fuzz(func(t *testing.T, hdr []byte) {
		var d decoder
		var cmd Command
		if err := d.decodeBinaryHeader(hdr, &cmd); err != nil {
			return
		}
		checkReencode(t, cmd.Clone())
	})
}

// chunkReader returns its data a few bytes per Read, to exercise frame reassembly.
type chunkReader struct {
	data  []byte
	chunk int
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	n := min(len(p), r.chunk, len(r.data))
	copy(p, r.data[:n])
	r.data = r.data[n:]
	return n, nil
}

// FuzzFrameStream feeds arbitrary bytes to the frame reader in arbitrary chunk sizes: it must never
// panic, and every frame it yields must re-encode to itself.
func FuzzFrameStream(f *testing.F) {
	two := append(frameOf(SerializeJSON, []byte(sendHeader), []byte("body")), frameOf(SerializeRocketMQ,
		appendBinaryHeader(nil, 11, 0, 1, 2, 0, nil, nil), nil)...)
	f.Add(two, uint8(3))
	f.Add([]byte{0, 0, 0, 1}, uint8(1))
	f.Add([]byte{0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0}, uint8(7))
	f.Fuzz(func(t *testing.T, stream []byte, chunk uint8) {
		fr := newFrameReader(&chunkReader{data: stream, chunk: int(chunk%64) + 1},
			frameLimits{maxFrameBytes: 1 << 20, maxHeaderBytes: 1 << 16})
		for range 1 << 16 {
			cmd, err := fr.next()
			if err != nil {
				return
			}
			checkReencode(t, cmd.Clone())
		}
		t.Fatal("more frames than the loop bound")
	})
}
