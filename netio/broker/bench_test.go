package broker

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/ringmq/ringmq/engine/meta"
	"github.com/ringmq/ringmq/internal/testkit"
	"github.com/ringmq/ringmq/netio/remoting"
)

// rawClient sends one pre-encoded request frame at a time and reads the answer into a
// reused buffer: it allocates nothing, so a benchmark's allocs/op are the broker's.
type rawClient struct {
	nc    net.Conn
	rd    *bufio.Reader
	frame []byte
	buf   []byte
	head  [8]byte // a field, not a local: io.ReadFull would make a local escape
}

func dialRaw(tb testing.TB, addr string, frame []byte) *rawClient {
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { nc.Close() })
	return &rawClient{nc: nc, rd: bufio.NewReaderSize(nc, 64<<10), frame: frame, buf: make([]byte, 0, 64<<10)}
}

// roundTrip writes the frame and returns the answer's header bytes.
func (c *rawClient) roundTrip() ([]byte, error) {
	if _, err := c.nc.Write(c.frame); err != nil {
		return nil, err
	}
	return c.readAnswer()
}

// readAnswer reads one frame and returns its header bytes.
func (c *rawClient) readAnswer() ([]byte, error) {
	if _, err := io.ReadFull(c.rd, c.head[:]); err != nil {
		return nil, err
	}
	total := int(binary.BigEndian.Uint32(c.head[0:]))
	hdrLen := int(binary.BigEndian.Uint32(c.head[4:]) & 0xFFFFFF)
	if cap(c.buf) < total-4 {
		c.buf = make([]byte, 0, total)
	}
	c.buf = c.buf[:total-4]
	if _, err := io.ReadFull(c.rd, c.buf); err != nil {
		return nil, err
	}
	return c.buf[:hdrLen], nil
}

// sendFrame encodes a SEND_MESSAGE request (JSON header, V1 names) like the Go client's.
func sendFrame(topic string, body []byte) []byte {
	hdr := []byte(`{"code":10,"language":"GO","version":317,"opaque":1,"flag":0,"remark":"","extFields":{` +
		`"producerGroup":"pg","topic":"` + topic + `","queueId":"0","sysFlag":"0","bornTimestamp":"1700000000000",` +
		`"flag":"0","properties":"TAGS\u0001tagA\u0002UNIQ_KEY\u0001C0000202398A00000000682018f00001\u0002",` +
		`"reconsumeTimes":"0","unitMode":"false","maxReconsumeTimes":"0","batch":"false",` +
		`"defaultTopic":"TBW102","defaultTopicQueueNums":"4"}}`)
	frame := binary.BigEndian.AppendUint32(nil, uint32(4+len(hdr)+len(body)))
	frame = binary.BigEndian.AppendUint32(frame, uint32(len(hdr)))
	frame = append(frame, hdr...)
	return append(frame, body...)
}

var codeOK = []byte(`"code":0,`)

// BenchmarkSyncSend measures a durable (SYNC_FLUSH) 1 KiB send over loopback, one at a
// time: allocs/op are the broker's (the raw client allocates nothing), and the p50 is
// compared with the floor measured in the same run: a 4 KiB pwrite+fdatasync into an
// already-written file in the same directory plus a loopback TCP round trip.
func BenchmarkSyncSend(b *testing.B) {
	tb := startBroker(b, b.TempDir(), nil)
	c := tb.dial(nil)
	createTopic(b, c, "BENCH", 1, meta.PermRW)
	rc := dialRaw(b, tb.addr.String(), sendFrame("BENCH", bytes.Repeat([]byte{'x'}, 1024)))
	for range 200 { // warm the pools, the segment and the connection
		if _, err := rc.roundTrip(); err != nil {
			b.Fatal(err)
		}
	}
	// The floor is measured before and after the loop, so a noisy neighbour affects both.
	fsyncs := fsyncSamples(b, tb.dir, 150)
	loops := loopbackSamples(b, 150)
	samples := make([]int64, 0, 1<<16)
	b.ReportAllocs()
	b.SetBytes(1024)
	for b.Loop() {
		t0 := time.Now()
		hdr, err := rc.roundTrip()
		if err != nil {
			b.Fatal(err)
		}
		if len(samples) < cap(samples) {
			samples = append(samples, int64(time.Since(t0)))
		}
		if !bytes.Contains(hdr, codeOK) {
			b.Fatalf("send failed: %s", hdr)
		}
	}
	b.StopTimer()
	fsyncs = append(fsyncs, fsyncSamples(b, tb.dir, 150)...)
	loops = append(loops, loopbackSamples(b, 150)...)
	sendP50 := p50(samples)
	floor := p50(fsyncs) + p50(loops)
	b.ReportMetric(float64(sendP50)/1e3, "p50-us")
	b.ReportMetric(float64(percentile(samples, 0.99))/1e3, "p99-us")
	b.ReportMetric(float64(floor)/1e3, "floor-p50-us")
	b.ReportMetric(float64(sendP50)/float64(floor), "p50/floor")
}

func p50(s []int64) int64 { return percentile(s, 0.5) }

func percentile(s []int64, p float64) int64 {
	if len(s) == 0 {
		return 0
	}
	s = slices.Clone(s)
	slices.Sort(s)
	return s[min(int(float64(len(s))*p), len(s)-1)]
}

// fsyncSamples times n 4 KiB pwrite+fdatasync (testkit.FsyncSamples) in nanoseconds.
func fsyncSamples(b *testing.B, dir string, n int) []int64 {
	var out []int64
	for _, d := range testkit.FsyncSamples(b, dir, n) {
		out = append(out, int64(d))
	}
	return out
}

// loopbackSamples times n 64-byte request/answer round trips over loopback TCP.
func loopbackSamples(b *testing.B, n int) []int64 {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		buf := make([]byte, 64)
		for {
			if _, err := io.ReadFull(c, buf); err != nil {
				return
			}
			if _, err := c.Write(buf); err != nil {
				return
			}
		}
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 64)
	out := make([]int64, 0, n)
	for range n {
		t0 := time.Now()
		if _, err := c.Write(buf); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(c, buf); err != nil {
			b.Fatal(err)
		}
		out = append(out, int64(time.Since(t0)))
	}
	return out
}

// TestSendPathAllocs proves the durable send path allocates nothing in steady state: a raw
// client (which allocates nothing itself) sends 1 KiB messages and the whole process's
// allocations are counted. The message has no UNIQ_KEY/KEYS, so the store's key index is not
// involved; rare background allocations (meta flusher, checkpoints, GC of pools) are
// tolerated by averaging.
func TestSendPathAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under the race detector (sync.Pool drops items)")
	}
	tb := startBroker(t, "", nil)
	c := tb.dial(nil)
	createTopic(t, c, "ALLOC", 1, meta.PermRW)
	frame := sendFrame("ALLOC", bytes.Repeat([]byte{'x'}, 1024))
	frame = bytes.Replace(frame, []byte(`TAGS\u0001tagA\u0002UNIQ_KEY\u0001C0000202398A00000000682018f00001\u0002`), []byte(`TAGS\u0001tagA\u0002`), 1)
	binary.BigEndian.PutUint32(frame[0:], uint32(len(frame)-4))
	hdrLen := bytes.Index(frame[8:], []byte("}}")) + 2 // the header ends with extFields
	binary.BigEndian.PutUint32(frame[4:], uint32(hdrLen))
	rc := dialRaw(t, tb.addr.String(), frame)
	send := func() {
		hdr, err := rc.roundTrip()
		if err != nil || !bytes.Contains(hdr, codeOK) {
			t.Fatalf("send: %s %v", hdr, err)
		}
	}
	for range 300 {
		send()
	}
	n := testing.AllocsPerRun(1000, send)
	t.Logf("%.3f allocations per durable send", n)
	if n > 0.1 {
		t.Fatalf("%.3f allocations per durable send, want 0", n)
	}
}

// TestPullPathAllocs: a pull answered with 32 stored 1 KiB records allocates nothing: the
// records go out as commit-log views. Both filters are checked: the group's tag filter from
// its heartbeat with an offset commit (a push consumer), and a subscription the pull carries
// (a pull consumer: compiled once, then cached).
func TestPullPathAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under the race detector (sync.Pool drops items)")
	}
	tb := startBroker(t, "", nil)
	c := tb.dial(nil)
	createTopic(t, c, "PA", 1, meta.PermRW)
	for range 40 {
		wantCode(t, sendV1(t, c, "PA", 0, props("TAGS", "a"), bytes.Repeat([]byte{'x'}, 1024)), remoting.RespSuccess)
	}
	tb.waitDispatched("PA", 0, 40)
	wantCode(t, invoke(t, c, remoting.ReqHeartBeat, nil, heartbeatJSON("cid1", "g", "CLUSTERING", "PA", "a || b")), remoting.RespSuccess)
	for _, tc := range []struct{ name, sysFlag, subscription string }{
		{"heartbeat filter", "3", ""},
		{"carried subscription", "7", "a || b"},
	} {
		hdr := []byte(`{"code":11,"language":"GO","version":317,"opaque":1,"flag":0,"remark":"","extFields":{"consumerGroup":"g","topic":"PA","queueId":"0","queueOffset":"0","maxMsgNums":"32","sysFlag":"` +
			tc.sysFlag + `","commitOffset":"5","suspendTimeoutMillis":"20000","subscription":"` + tc.subscription + `","subVersion":"0","expressionType":"TAG"}}`)
		frame := binary.BigEndian.AppendUint32(nil, uint32(4+len(hdr)))
		frame = binary.BigEndian.AppendUint32(frame, uint32(len(hdr)))
		frame = append(frame, hdr...)
		rc := dialRaw(t, tb.addr.String(), frame)
		pullOnce := func() {
			h, err := rc.roundTrip()
			if err != nil || !bytes.Contains(h, codeOK) {
				t.Fatalf("%s: pull: %s %v", tc.name, h, err)
			}
		}
		for range 200 {
			pullOnce()
		}
		n := testing.AllocsPerRun(500, pullOnce)
		t.Logf("%s: %.3f allocations per pull of 32 records", tc.name, n)
		if n > 0.1 {
			t.Fatalf("%s: %.3f allocations per pull, want 0", tc.name, n)
		}
	}
}

// pullFrame encodes a PULL_MESSAGE with the SUSPEND flag at offset (a push consumer's pull).
func pullFrame(topic string, offset int64) []byte {
	hdr := []byte(`{"code":11,"language":"GO","version":317,"opaque":2,"flag":0,"remark":"","extFields":{` +
		`"consumerGroup":"g","topic":"` + topic + `","queueId":"0","queueOffset":"` + strconv.FormatInt(offset, 10) + `",` +
		`"maxMsgNums":"32","sysFlag":"2","commitOffset":"-1","suspendTimeoutMillis":"20000","subscription":"",` +
		`"subVersion":"0","expressionType":"TAG"}}`)
	frame := binary.BigEndian.AppendUint32(nil, uint32(4+len(hdr)))
	frame = binary.BigEndian.AppendUint32(frame, uint32(len(hdr)))
	return append(frame, hdr...)
}

// BenchmarkEndToEnd measures a durable 1 KiB message from the producer's send to the
// consumer's held pull answering with it (SYNC_FLUSH: consumers see only durable messages),
// one message at a time: the long-poll wake path's latency on top of the durable send.
func BenchmarkEndToEnd(b *testing.B) {
	tb := startBroker(b, b.TempDir(), nil)
	c := tb.dial(nil)
	createTopic(b, c, "E2E", 1, meta.PermRW)
	producer := dialRaw(b, tb.addr.String(), sendFrame("E2E", bytes.Repeat([]byte{'x'}, 1024)))
	consumer := dialRaw(b, tb.addr.String(), nil)
	offset := int64(0)
	oneMessage := func() (time.Duration, error) {
		consumer.frame = pullFrame("E2E", offset) // allocates: the benchmark measures latency, not allocs
		if _, err := consumer.nc.Write(consumer.frame); err != nil {
			return 0, err
		}
		deadline := time.Now().Add(5 * time.Second)
		for tb.b.pulls.held() == 0 { // the pull must be held before the send, bounded
			if time.Now().After(deadline) {
				return 0, io.ErrNoProgress
			}
			<-time.After(10 * time.Microsecond)
		}
		t0 := time.Now()
		if _, err := producer.roundTrip(); err != nil {
			return 0, err
		}
		if _, err := consumer.readAnswer(); err != nil {
			return 0, err
		}
		offset++
		return time.Since(t0), nil
	}
	for range 50 {
		if _, err := oneMessage(); err != nil {
			b.Fatal(err)
		}
	}
	samples := make([]int64, 0, 1<<16)
	for b.Loop() {
		d, err := oneMessage()
		if err != nil {
			b.Fatal(err)
		}
		if len(samples) < cap(samples) {
			samples = append(samples, int64(d))
		}
	}
	b.ReportMetric(float64(p50(samples))/1e3, "e2e-p50-us")
	b.ReportMetric(float64(percentile(samples, 0.99))/1e3, "e2e-p99-us")
}
