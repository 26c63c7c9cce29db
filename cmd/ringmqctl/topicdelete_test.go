package main

import (
	"strings"
	"testing"
)

func TestTopicDelete(t *testing.T) {
	c := startTestCluster(t)
	ns := "--namesrv=" + c.namesrvAddr
	c.createTopic(t, "gone-topic", 2)
	code, out, errOut := ctl("topic", "delete", ns, "gone-topic")
	want := "deleted topic gone-topic on broker " + c.brokerAddr + "\ndeleted topic gone-topic on name server " + c.namesrvAddr + "\n"
	if code != 0 || out != want {
		t.Fatalf("topic delete: exit %d, output %q %q; want %q", code, out, errOut, want)
	}
	// The broker re-registers its table without the topic asynchronously; a registration
	// already in flight may bring the route back for a moment.
	pollCtl(t, func(code int, _ string) bool { return code == 1 }, "route", ns, "gone-topic")
	if _, out, _ := ctl("topic", "list", ns); strings.Contains(out, "gone-topic") {
		t.Errorf("topic list after delete: %q still has gone-topic", out)
	}
	if code, _, errOut := ctl("topic", "delete", ns, "never-was"); code != 1 || !strings.Contains(errOut, `topic "never-was": no route`) {
		t.Errorf("topic delete of an unknown topic: exit %d, %q", code, errOut)
	}
}
