package broker

import (
	"strings"
	"syscall"
	"testing"

	"github.com/ringmq/ringmq/engine/meta"
	"github.com/ringmq/ringmq/flush/vfs"
	"github.com/ringmq/ringmq/netio/remoting"
)

// A failed fdatasync stops the store: the send that waited for it and every later send are
// answered SERVICE_NOT_AVAILABLE with the reason, and reads keep working.
func TestSendServiceNotAvailableOnFailedSync(t *testing.T) {
	in := vfs.NewInjector()
	tb := startBroker(t, "", vfs.NewFaulty(vfs.NewMem(), in))
	c := tb.dial(nil)
	createTopic(t, c, "F", 1, meta.PermRW)
	wantCode(t, sendV1(t, c, "F", 0, "", []byte("durable")), remoting.RespSuccess)

	in.Add(vfs.Rule{Op: vfs.OpSync, PathContains: "commitlog", Err: syscall.EIO})
	tb.storeFailed = true
	// The send waiting for the failed fdatasync, then a send the stopped store refuses.
	for i, body := range []string{"lost", "refused"} {
		resp := sendV1(t, c, "F", 0, "", []byte(body))
		wantCode(t, resp, remoting.RespServiceNotAvailable)
		if !strings.Contains(string(resp.Remark), "fsync") {
			t.Errorf("send %d: remark %q does not say why", i, resp.Remark)
		}
	}
	recs := records(t, pullWait(t, c, pullOpts{group: "g", topic: "F"}).Body)
	if len(recs) != 1 || string(recs[0].Body()) != "durable" {
		t.Fatalf("reads after the failure: got %d records, want the one durable message", len(recs))
	}
}

// A full disk answers SERVICE_NOT_AVAILABLE saying so, and sends resume by themselves when
// space returns.
func TestSendServiceNotAvailableOnFullDisk(t *testing.T) {
	in := vfs.NewInjector()
	tb := startBroker(t, "", vfs.NewFaulty(vfs.NewMem(), in))
	c := tb.dial(nil)
	createTopic(t, c, "F", 1, meta.PermRW)
	wantCode(t, sendV1(t, c, "F", 0, "", []byte("before")), remoting.RespSuccess)
	in.SetNoSpace(true)
	resp := sendV1(t, c, "F", 0, "", []byte("no room"))
	wantCode(t, resp, remoting.RespServiceNotAvailable)
	if !strings.Contains(string(resp.Remark), "disk full") {
		t.Errorf("remark %q does not say the disk is full", resp.Remark)
	}
	in.SetNoSpace(false)
	waitFor(t, "sends to resume after space returned", func() bool {
		return sendV1(t, c, "F", 0, "", []byte("room")).Code == remoting.RespSuccess
	})
}
