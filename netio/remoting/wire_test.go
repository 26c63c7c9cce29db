package remoting

import (
	"errors"
	"io"
	"strconv"
	"testing"
)

func TestFrameReaderReassemblesAndGrows(t *testing.T) {
	big := make([]byte, 3*readBufBytes)
	for i := range big {
		big[i] = byte(i)
	}
	var stream []byte
	const frames = 50
	for i := range frames {
		body := []byte("small")
		if i%10 == 5 {
			body = big
		}
		stream = append(stream, frameOf(SerializeJSON, []byte(`{"code":10,"opaque":`+strconv.Itoa(i)+`}`), body)...)
	}
	for _, chunk := range []int{1, 7, 4096, 1 << 20} {
		fr := newFrameReader(&chunkReader{data: stream, chunk: chunk}, testLimits)
		for i := range frames {
			cmd, err := fr.next()
			if err != nil {
				t.Fatalf("chunk %d frame %d: %v", chunk, i, err)
			}
			if int(cmd.Opaque) != i || (i%10 == 5) != (len(cmd.Body) == len(big)) {
				t.Fatalf("chunk %d frame %d: got %s", chunk, i, cmd)
			}
			if cmd.Stamps.At[0] == 0 || cmd.Stamps.At[1] < cmd.Stamps.At[0] {
				t.Fatalf("stamps %v", cmd.Stamps.At)
			}
		}
		if _, err := fr.next(); !errors.Is(err, io.EOF) {
			t.Fatalf("chunk %d: after the last frame got %v, want EOF", chunk, err)
		}
	}
}

func TestFrameReaderLimits(t *testing.T) {
	lim := frameLimits{maxFrameBytes: 1024, maxHeaderBytes: 64}
	cases := []struct {
		name   string
		stream []byte
		want   error
	}{
		{"frame over max", frameOf(SerializeJSON, []byte(`{}`), make([]byte, 1100)), ErrFrameTooLarge},
		{"header over max", frameOf(SerializeJSON, []byte(`{"remark":"`+string(make([]byte, 70))+`"}`), nil), ErrFrameTooLarge},
		{"negative length", []byte{0xff, 0xff, 0xff, 0xff}, ErrMalformedFrame},
		{"bad json", frameOf(SerializeJSON, []byte(`{`), nil), ErrMalformedFrame},
		{"cut frame", frameOf(SerializeJSON, []byte(`{}`), nil)[:6], io.ErrUnexpectedEOF},
	}
	for _, tc := range cases {
		fr := newFrameReader(&chunkReader{data: tc.stream, chunk: 3}, lim)
		if _, err := fr.next(); !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, err, tc.want)
		}
	}
}

func TestFrameReaderNoAllocsPipelined(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under the race detector")
	}
	one := frameOf(SerializeJSON, []byte(sendHeader), make([]byte, 200))
	var stream []byte
	for range 300 {
		stream = append(stream, one...)
	}
	src := &chunkReader{}
	fr := newFrameReader(src, testLimits)
	n := testing.AllocsPerRun(20, func() {
		src.data, src.chunk = stream, 1<<20
		for range 300 {
			if _, err := fr.next(); err != nil {
				t.Fatal(err)
			}
		}
	})
	if n != 0 {
		t.Fatalf("%v allocs per 300 frames, want 0", n)
	}
}
