package remoting

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"strings"
	"testing"
)

// frameOf builds a frame around a header and body.
func frameOf(serialize uint8, hdr, body []byte) []byte {
	f := binary.BigEndian.AppendUint32(nil, uint32(4+len(hdr)+len(body)))
	f = binary.BigEndian.AppendUint32(f, uint32(serialize)<<24|uint32(len(hdr)))
	f = append(f, hdr...)
	return append(f, body...)
}

var testLimits = frameLimits{maxFrameBytes: DefaultMaxFrameBytes, maxHeaderBytes: DefaultMaxHeaderBytes}

func decodeOne(t testing.TB, frame []byte) *Command {
	t.Helper()
	var d decoder
	var cmd Command
	if err := d.decodeFrame(testLimits, frame, &cmd); err != nil {
		t.Fatalf("decode %q: %v", frame, err)
	}
	return cmd.Clone()
}

func TestDecodeJSONObservedHeaders(t *testing.T) {
	cases := []struct {
		hdr  string
		want Command
		ext  [][2]string
	}{
		{hdr: `{"code":34,"language":"GO","version":317,"opaque":3,"flag":0,"remark":"","extFields":{}}`,
			want: Command{Code: 34, Language: LangGo, Version: 317, Opaque: 3}},
		{hdr: `{"code":105,"language":"GO","version":317,"opaque":1,"flag":0,"remark":"","extFields":{"topic":"%RETRY%g1"}}`,
			want: Command{Code: 105, Language: LangGo, Version: 317, Opaque: 1}, ext: [][2]string{{"topic", "%RETRY%g1"}}},
		{hdr: `{"code":10,"extFields":{"properties":"TAGS\u0001tagA\u0002KEYS\u0001k1 k2\u0002","queueId":"1"},"flag":0,"language":"JAVA","opaque":-7,"serializeTypeCurrentRPC":"JSON","version":407}`,
			want: Command{Code: 10, Language: LangJava, Version: 407, Opaque: -7},
			ext:  [][2]string{{"properties", "TAGS\x01tagA\x02KEYS\x01k1 k2\x02"}, {"queueId", "1"}}},
		{hdr: ` { "code" : 2 , "remark" : null , "extFields" : null , "flag" : 1 } `,
			want: Command{Code: 2, Flag: 1}},
		{hdr: `{"code":0,"unknown":{"a":[1,2.5e3,{"b":null}],"c":"\"}"},"flag":1,"x":true,"y":false,"z":-1}`,
			want: Command{Code: 0, Flag: 1}},
		{hdr: `{"code":0,"remark":"caf\u00e9 \ud83d\ude00 \n\"q\"","extFields":{"n":5,"b":true,"s":"a\/b"}}`,
			want: Command{Code: 0, Remark: []byte("café 😀 \n\"q\"")},
			ext:  [][2]string{{"n", "5"}, {"b", "true"}, {"s", "a/b"}}},
	}
	for _, tc := range cases {
		cmd := decodeOne(t, frameOf(SerializeJSON, []byte(tc.hdr), []byte("body!")))
		if cmd.Code != tc.want.Code || cmd.Language != tc.want.Language || cmd.Version != tc.want.Version ||
			cmd.Opaque != tc.want.Opaque || cmd.Flag != tc.want.Flag || string(cmd.Remark) != string(tc.want.Remark) {
			t.Errorf("%s: got %s lang=%d ver=%d, want %s", tc.hdr, cmd, cmd.Language, cmd.Version, &tc.want)
		}
		if len(cmd.Ext) != len(tc.ext) {
			t.Fatalf("%s: got %d ext fields, want %d", tc.hdr, len(cmd.Ext), len(tc.ext))
		}
		for i, kv := range tc.ext {
			if string(cmd.Ext[i].Key) != kv[0] || string(cmd.Ext[i].Value) != kv[1] {
				t.Errorf("%s: ext %d = %q:%q, want %q:%q", tc.hdr, i, cmd.Ext[i].Key, cmd.Ext[i].Value, kv[0], kv[1])
			}
		}
		if string(cmd.Body) != "body!" {
			t.Errorf("%s: body %q", tc.hdr, cmd.Body)
		}
	}
}

func TestDecodeRejectsMalformed(t *testing.T) {
	bad := []string{``, `[]`, `{`, `{"code":}`, `{"code":1,}`, `{"code":99999}`, `{"opaque":2147483648}`,
		`{"remark":"x\q"}`, `{"remark":"unterminated}`, `{"code":1} x`, `{"extFields":{"a":{}}}`,
		`{"extFields":[]}`, "{\"remark\":\"a\x01\"}", `{"a":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}`,
		`{"remark":"\u12"}`, `{"code":1 "flag":0}`, `{"x":tru}`}
	var d decoder
	var cmd Command
	for _, h := range bad {
		if err := d.decodeFrame(testLimits, frameOf(SerializeJSON, []byte(h), nil), &cmd); err == nil {
			t.Errorf("%q: decoded, want an error", h)
		}
	}
	frames := [][]byte{
		{0, 0, 0, 4, 0, 0, 0, 0},                   // ok prefix, empty header: "" is not JSON
		{0, 0, 0, 4, 2, 0, 0, 0},                   // serialize type 2
		{0, 0, 0, 4, 0, 0, 0, 9},                   // header longer than the frame
		frameOf(SerializeRocketMQ, []byte{1}, nil), // binary header too short
	}
	for _, f := range frames {
		if err := d.decodeFrame(testLimits, f, &cmd); err == nil {
			t.Errorf("%x: decoded, want an error", f)
		}
	}
}

func TestBinaryHeaderRoundTrip(t *testing.T) {
	ext := []Field{{Key: []byte("topic"), Value: []byte("T1")}, {Key: []byte("properties"), Value: []byte("A\x01b\x02")}}
	h := header{code: 10, lang: LangJava, version: 407, opaque: 77, flag: FlagOneway, serialize: SerializeRocketMQ,
		remark: []byte("hi"), ext: ext}
	frame := appendFramePrefix(nil, &h, 3)
	frame = append(frame, "xyz"...)
	cmd := decodeOne(t, frame)
	if cmd.Code != 10 || cmd.Language != LangJava || cmd.Version != 407 || cmd.Opaque != 77 || cmd.Flag != FlagOneway ||
		string(cmd.Remark) != "hi" || string(cmd.Body) != "xyz" || cmd.SerializeType != SerializeRocketMQ {
		t.Fatalf("got %s", cmd)
	}
	if len(cmd.Ext) != 2 || string(cmd.Ext[1].Value) != "A\x01b\x02" {
		t.Fatalf("ext %v", cmd.Ext)
	}
	// Fixed part is 21 bytes (PROTOCOL.md §1.3).
	empty := appendFramePrefix(nil, &header{serialize: SerializeRocketMQ}, 0)
	if got := len(empty) - framePrefixBytes; got != 21 {
		t.Fatalf("empty binary header %d bytes, want 21", got)
	}
}

func TestJSONRoundTripAndValidJSON(t *testing.T) {
	ext := []Field{{Key: []byte("msgId"), Value: []byte("7F00000100002A9F00000000000000A3")},
		{Key: []byte("p"), Value: []byte("K\x01V\x02\"\\\t")}}
	h := header{code: 17, lang: LangGo, version: 407, opaque: -5, flag: FlagResponse, remark: []byte("no \"such\" topic"), ext: ext}
	frame := appendFramePrefix(nil, &h, 0)
	var generic map[string]any
	if err := json.Unmarshal(frame[framePrefixBytes:], &generic); err != nil {
		t.Fatalf("encoded header is not JSON: %v\n%s", err, frame[framePrefixBytes:])
	}
	if generic["extFields"].(map[string]any)["p"] != "K\x01V\x02\"\\\t" {
		t.Fatalf("encoding/json reads p as %q", generic["extFields"].(map[string]any)["p"])
	}
	cmd := decodeOne(t, frame)
	if cmd.Code != 17 || cmd.Opaque != -5 || string(cmd.Remark) != string(h.remark) || string(cmd.Ext[1].Value) != string(ext[1].Value) {
		t.Fatalf("got %s", cmd)
	}
}

// TestEncodeGolden pins the bytes of a response frame. The header has the observed Go-client shape
// (PROTOCOL.md §1.2): the same key order, string ext values, flag 1.
func TestEncodeGolden(t *testing.T) {
	r := getResponse()
	r.Code = RespSuccess
	r.AddExtString("msgId", "7F00000100002A9F00000000000000A3")
	r.AddExtInt("queueId", 1)
	r.AddExtInt("queueOffset", 42)
	r.AppendBody([]byte("ok"))
	r.opaque, r.flag = 3, FlagResponse
	r.encode(LangGo, ServerVersion)
	const hdr = `{"code":0,"language":"GO","version":407,"opaque":3,"flag":1,"extFields":{"msgId":"7F00000100002A9F00000000000000A3","queueId":"1","queueOffset":"42"}}`
	want := frameOf(SerializeJSON, []byte(hdr), nil)
	binary.BigEndian.PutUint32(want, uint32(4+len(hdr)+2))
	if !bytes.Equal(r.head, want) {
		t.Fatalf("head\n got %q\nwant %q", r.head, want)
	}
	r.release()

	r = getResponse()
	r.Code = RespTopicNotExist
	r.SetRemark("No topic route info in name server for the topic: T")
	r.opaque, r.flag = 1, FlagResponse
	r.encode(LangGo, ServerVersion)
	const hdr2 = `{"code":17,"language":"GO","version":407,"opaque":1,"flag":1,"remark":"No topic route info in name server for the topic: T","extFields":{}}`
	if !bytes.Equal(r.head, frameOf(SerializeJSON, []byte(hdr2), nil)) {
		t.Fatalf("head\n got %q\nwant %q", r.head[8:], hdr2)
	}
	r.release()
}

func TestExtAccessors(t *testing.T) {
	hdr := `{"code":11,"extFields":{"queueOffset":"-12","maxMsgNums":"32","big":"9223372036854775808","wrap":"18446744073709551619","b":"TRUE","x":"1a"}}`
	cmd := decodeOne(t, frameOf(SerializeJSON, []byte(hdr), nil))
	if n, err := cmd.ExtInt64("queueOffset"); n != -12 || err != nil {
		t.Errorf("queueOffset = %d, %v", n, err)
	}
	if n, err := cmd.ExtInt32("maxMsgNums"); n != 32 || err != nil {
		t.Errorf("maxMsgNums = %d, %v", n, err)
	}
	if _, err := cmd.ExtInt64("big"); err == nil {
		t.Errorf("big: want overflow error")
	}
	if n, err := cmd.ExtInt64("wrap"); err == nil { // 2^64+3: once wrapped around to 3
		t.Errorf("wrap = %d: want overflow error", n)
	}
	if _, err := cmd.ExtInt64("x"); err == nil {
		t.Errorf("x: want syntax error")
	}
	if _, err := cmd.ExtInt64("nope"); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("nope: %v", err)
	}
	if b, err := cmd.ExtBool("b"); !b || err != nil {
		t.Errorf("b = %v, %v", b, err)
	}
	if cmd.ExtString("maxMsgNums") != "32" {
		t.Errorf("ExtString")
	}
}

// sendHeader is the header of a Go-client SEND_MESSAGE (PROTOCOL.md §2.2).
const sendHeader = `{"code":10,"language":"GO","version":317,"opaque":12345,"flag":0,"remark":"","extFields":{` +
	`"producerGroup":"pg1","topic":"T1","queueId":"1","sysFlag":"0","bornTimestamp":"1795238134515","flag":"0",` +
	`"properties":"TAGS\u0001tagA\u0002KEYS\u0001k1 k2\u0002UNIQ_KEY\u0001C0000202398A00000000682018f00001\u0002",` +
	`"reconsumeTimes":"0","unitMode":"false","maxReconsumeTimes":"0","batch":"false","defaultTopic":"TBW102",` +
	`"defaultTopicQueueNums":"4"}}`

func TestDecodeEncodeAllocateNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under the race detector")
	}
	frame := frameOf(SerializeJSON, []byte(sendHeader), make([]byte, 1024))
	var d decoder
	var cmd Command
	if err := d.decodeFrame(testLimits, frame, &cmd); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(200, func() {
		if err := d.decodeFrame(testLimits, frame, &cmd); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("JSON decode: %v allocs per frame, want 0", n)
	}
	bin := appendFramePrefix(nil, &header{code: 10, serialize: SerializeRocketMQ, ext: cmd.Clone().Ext}, 0)
	if n := testing.AllocsPerRun(200, func() {
		if err := d.decodeFrame(testLimits, bin, &cmd); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("binary decode: %v allocs per frame, want 0", n)
	}
	body := [][]byte{make([]byte, 512)}
	if n := testing.AllocsPerRun(200, func() {
		r := getResponse()
		r.Code = RespSuccess
		r.AddExtString("msgId", "7F00000100002A9F00000000000000A3")
		r.AddExtInt("queueId", 1)
		r.AddExtInt("queueOffset", 1<<40)
		r.AddExt("transactionId", cmd.Ext[0].Value)
		r.Body = append(r.Body, body...)
		r.opaque, r.flag = 9, FlagResponse
		r.encode(LangGo, ServerVersion)
		r.release()
	}); n != 0 {
		t.Errorf("encode: %v allocs per response, want 0", n)
	}
}

func BenchmarkDecodeJSONHeader(b *testing.B) {
	frame := frameOf(SerializeJSON, []byte(sendHeader), make([]byte, 1024))
	var d decoder
	var cmd Command
	b.ReportAllocs()
	b.SetBytes(int64(len(frame)))
	for b.Loop() {
		if err := d.decodeFrame(testLimits, frame, &cmd); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeResponse(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		r := getResponse()
		r.AddExtString("msgId", "7F00000100002A9F00000000000000A3")
		r.AddExtInt("queueId", 1)
		r.AddExtInt("queueOffset", 1<<40)
		r.opaque, r.flag = 9, FlagResponse
		r.encode(LangGo, ServerVersion)
		r.release()
	}
}
