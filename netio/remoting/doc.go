// Package remoting speaks RocketMQ's remoting protocol: the frame and header codecs, a connection server
// and a client. The broker's request processors, the name server and the tools are built on it.
//
// # Frame
//
// Every message, request or response, is one frame (big-endian):
//
//	+-------------+------------------------------+---------------+-------------+
//	| int32       | int32                        | header        | body        |
//	| totalLen    | serializeType<<24 | hdrLen   | hdrLen bytes  | the rest    |
//	+-------------+------------------------------+---------------+-------------+
//	totalLen = 4 + hdrLen + bodyLen (it does not count itself)
//	serializeType 0 = JSON, 1 = ROCKETMQ (binary)
//
// A JSON header is one object; what the Go client sends and what we answer look like
//
//	{"code":105,"language":"GO","version":317,"opaque":1,"flag":0,"remark":"","extFields":{"topic":"T"}}
//	{"code":0,"language":"GO","version":407,"opaque":1,"flag":1,"extFields":{"queueId":"1"}}
//
// Ext values are always JSON strings on output (the Go client drops a frame with a number there);
// control bytes are escaped as \u00XX. On input unknown fields are skipped, remark, language and
// extFields may be null or missing, and bare numbers in extFields are accepted as their text.
//
// A ROCKETMQ binary header:
//
//	+------+------+---------+--------+------+-----------+--------+--------+---------------------------+
//	| code | lang | version | opaque | flag | remarkLen | remark | extLen | ext: { keyLen int16 | key |
//	| i16  | u8   | i16     | i32    | i32  | i32       | bytes  | i32    |        valLen i32 | val }* |
//	+------+------+---------+--------+------+-----------+--------+--------+---------------------------+
//
// Flag bit 0 (FlagResponse) marks a response, matched to its request by opaque only; bit 1 (FlagOneway)
// marks a request that wants no answer. A response uses its request's header type.
//
// # Decoding and memory
//
// Each connection owns a read buffer, a decoder scratch buffer and one Command. A decoded *Command and
// every []byte in it are views into those and are valid only until Handler.Serve returns; copy
// (Command.Clone, or just the fields) whatever must outlive it. Decoding and encoding allocate nothing per
// frame in steady state (tests prove it with testing.AllocsPerRun).
//
// # Server concurrency
//
// Each connection has one reader goroutine, which decodes pipelined frames from a buffered reader and
// calls Handler.Serve for each request in order, and one writer goroutine, which takes every queued
// response at once and writes them with one writev, with no lock held across the system call. Replies
// made while the reader serves a run of already-buffered frames are written by the reader itself, in
// one writev, once the run ends and before it reads again (no hand-off for synchronous answers);
// ReplyTo from other goroutines wakes the writer. Exactly one goroutine writes at a time (an atomic
// owner flag, not a lock).
// Conn.Reply, Conn.ReplyTo, Conn.Done and Conn.SendRequestOneway are safe from any goroutine.
//
// # In-flight rule
//
// A request is in flight from the moment it is handed to Serve until the handler ends it with exactly one
// of: Reply (synchronous), ReplyTo (deferred, any goroutine), or Done (no answer). A replied request leaves
// the in-flight count when its bytes were written (or dropped with a closed connection). Oneway requests
// (flag bit 1) follow the same rule; a Reply to them is not sent. Past MaxInFlightPerConn on the connection
// or MaxInFlightTotal on the server, a request is answered SYSTEM_BUSY at once and never reaches Serve
// (a oneway one is dropped). Shutdown waits until the count is zero. Ending a request twice panics.
//
// # Errors
//
// A frame over MaxFrameBytes or with a header over MaxHeaderBytes (ErrFrameTooLarge), or one that does not
// decode (ErrMalformedFrame), closes that connection only, with the reason logged. Unknown request codes
// are the handler's business (the broker answers REQUEST_CODE_NOT_SUPPORTED).
package remoting
