package remoting

import (
	"strconv"
	"sync"

	"github.com/ringmq/ringmq/perf"
)

// Response is an outgoing frame built by a handler: reusable and pooled. Get one from Conn.NewResponse,
// fill it, hand it to Conn.Reply or Conn.ReplyTo; after that the server owns it and returns it to the pool
// once its bytes were written (or dropped with the connection). Never touch a Response after handing it
// over. The client uses the same type for its requests.
//
// Ext keys and values added with AddExt/AddExtInt/SetRemark are copied into the Response's scratch, so
// they may come from a request that is about to become invalid. Ext entries set directly and Body
// slices are NOT copied: they must stay valid and unchanged until the release hook (OnWritten) runs.
// Body is vectored: each slice goes to writev as its own iovec (pull responses send commit-log views).
type Response struct {
	Code   int16
	Remark []byte
	Ext    []Field
	Body   [][]byte

	// For ServerConfig.OnWritten (latency recording). Reply fills RequestCode and Stamps from the request;
	// a handler answering with ReplyTo sets them itself (copy req.Stamps before Serve returns). The server
	// marks StageWritten after the write syscall returned. Topic and QueueID are optional labels.
	RequestCode int16
	Stamps      perf.Stamps
	Topic       string
	QueueID     int32

	// Set by Reply/ReplyTo/SendRequestOneway and by the client.
	opaque    int32
	flag      int32
	lang      byte
	version   int16
	serialize uint8

	scratch   []byte // AddExt/SetRemark copies; grows by new chunks so earlier views stay valid
	head      []byte // the encoded length prefix + header
	onWritten func() // release hook
	counted   *Conn  // the connection whose in-flight slot this response releases, or nil
	handed    bool   // encoded and handed to a writer: handing it over again is a bug
}

// maxPooledScratchBytes bounds the scratch and head buffers a pooled Response keeps.
const maxPooledScratchBytes = 64 << 10

var responsePool = sync.Pool{New: func() any { return &Response{} }}

func getResponse() *Response {
	return responsePool.Get().(*Response)
}

// release runs the hook and returns r to the pool. It is called exactly once per handed-over Response.
func (r *Response) release() {
	if fn := r.onWritten; fn != nil {
		r.onWritten = nil
		fn()
	}
	r.reset()
	responsePool.Put(r)
}

func (r *Response) reset() {
	r.Code, r.opaque, r.flag, r.lang, r.version, r.serialize = 0, 0, 0, 0, 0, 0
	r.Remark = nil
	clear(r.Ext)
	r.Ext = r.Ext[:0]
	clear(r.Body)
	r.Body = r.Body[:0]
	r.counted, r.handed = nil, false
	r.RequestCode, r.Stamps, r.Topic, r.QueueID = 0, perf.Stamps{}, "", 0
	if cap(r.scratch) > maxPooledScratchBytes {
		r.scratch = nil
	}
	r.scratch = r.scratch[:0]
	if cap(r.head) > maxPooledScratchBytes {
		r.head = nil
	}
	r.head = r.head[:0]
}

// reserve makes room for n more scratch bytes without moving the bytes earlier views point at.
func (r *Response) reserve(n int) {
	if len(r.scratch)+n <= cap(r.scratch) {
		return
	}
	size := max(2*cap(r.scratch), n, 256)
	r.scratch = make([]byte, 0, size)
}

func (r *Response) keepString(s string) []byte {
	r.reserve(len(s))
	start := len(r.scratch)
	r.scratch = append(r.scratch, s...)
	return r.scratch[start:len(r.scratch):len(r.scratch)]
}

func (r *Response) keepBytes(b []byte) []byte {
	r.reserve(len(b))
	start := len(r.scratch)
	r.scratch = append(r.scratch, b...)
	return r.scratch[start:len(r.scratch):len(r.scratch)]
}

// newRequest returns an encoded request frame from the pool; ext and body are copied into it.
func newRequest(code int16, ext []Field, body []byte, opaque, flag int32, version int16) *Response {
	r := getResponse()
	r.Code = code
	for _, f := range ext {
		r.Ext = append(r.Ext, Field{Key: r.keepBytes(f.Key), Value: r.keepBytes(f.Value)})
	}
	if len(body) > 0 {
		r.Body = append(r.Body, r.keepBytes(body))
	}
	r.opaque, r.flag, r.serialize = opaque, flag, SerializeJSON
	return r.encode(LangGo, version)
}

// AddExt appends an ext field; key and value are copied. On the wire every value is a JSON string.
func (r *Response) AddExt(key string, value []byte) {
	r.Ext = append(r.Ext, Field{Key: r.keepString(key), Value: r.keepBytes(value)})
}

// AddExtString is AddExt for a string value.
func (r *Response) AddExtString(key, value string) {
	r.Ext = append(r.Ext, Field{Key: r.keepString(key), Value: r.keepString(value)})
}

// AddExtInt appends an ext field with the decimal value v (sent as a JSON string), without allocating.
func (r *Response) AddExtInt(key string, v int64) {
	k := r.keepString(key)
	r.reserve(20)
	start := len(r.scratch)
	r.scratch = strconv.AppendInt(r.scratch, v, 10)
	r.Ext = append(r.Ext, Field{Key: k, Value: r.scratch[start:len(r.scratch):len(r.scratch)]})
}

// AddExtBool appends "true" or "false".
func (r *Response) AddExtBool(key string, v bool) {
	if v {
		r.AddExtString(key, "true")
	} else {
		r.AddExtString(key, "false")
	}
}

// SetRemark sets the remark (copied).
func (r *Response) SetRemark(s string) { r.Remark = r.keepString(s) }

// AppendBody adds one body slice (not copied; see the type comment).
func (r *Response) AppendBody(b []byte) { r.Body = append(r.Body, b) }

// OnWritten sets the release hook: it runs once, after the response's bytes were written, or when they
// were dropped because the connection closed. Use it to release pinned commit-log views. It runs on the
// goroutine that wrote (the connection's writer or reader) or dropped the response, and must not block.
// A second call replaces the first hook.
func (r *Response) OnWritten(fn func()) { r.onWritten = fn }

// bodyLen is the total number of body bytes.
func (r *Response) bodyLen() int {
	n := 0
	for _, b := range r.Body {
		n += len(b)
	}
	return n
}
