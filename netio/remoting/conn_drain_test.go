package remoting

import (
	"net"
	"sync/atomic"
	"testing"
	"time"
)

// A client that sends oneway requests (offset commits, unregistering) and then closes its
// socket without reading our reply: the reply's write fails, and the requests it sent
// before closing must still be served. A reader that stopped at the failed write lost
// them.
func TestOnewayRequestsAfterFailedReplyAreServed(t *testing.T) {
	started := make(chan struct{})
	release := make(chan struct{})
	var oneways atomic.Int32
	served := make(chan struct{})
	h := HandlerFunc(func(c *Conn, req *Command) {
		switch req.Code {
		case 1: // answered only after the client has gone
			close(started)
			<-release
			r := c.NewResponse()
			r.Body = append(r.Body, make([]byte, 64<<10))
			c.Reply(req, r)
		case 2:
			if oneways.Add(1) == 2 {
				close(served)
			}
			c.Done(req)
		}
	})
	s := startServer(t, ServerConfig{}, h)
	rc := dialRaw(t, s)
	rc.write(frameOf(SerializeJSON, []byte(`{"code":1,"opaque":1}`), nil))
	<-started // the reader is inside request 1: the oneways below stay in the socket
	oneway := `{"code":2,"flag":2,"opaque":`
	rc.write(frameOf(SerializeJSON, []byte(oneway+`2}`), nil))
	rc.write(frameOf(SerializeJSON, []byte(oneway+`3}`), nil))
	if err := rc.nc.(*net.TCPConn).SetLinger(0); err != nil { // close with a reset
		t.Fatal(err)
	}
	rc.nc.Close()
	time.Sleep(50 * time.Millisecond) // the reset reaches the server before the reply is written
	close(release)
	select {
	case <-served:
	case <-time.After(testTimeout):
		t.Fatalf("%d of 2 oneway requests sent before the close were served", oneways.Load())
	}
}
