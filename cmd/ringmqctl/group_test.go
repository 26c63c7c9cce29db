package main

import (
	"reflect"
	"strings"
	"testing"
)

func TestGroupListDelete(t *testing.T) {
	c := startTestCluster(t)
	const reqCreateGroup = 200 // UPDATE_AND_CREATE_SUBSCRIPTIONGROUP
	// Fields the body leaves out keep the broker's defaults (consumeBroadcastEnable true).
	body := []byte(`{"groupName":"g-ctl","consumeEnable":true,"retryQueueNums":1,"retryMaxTimes":3}`)
	if _, err := c.conn().call(c.brokerAddr, reqCreateGroup, nil, body); err != nil {
		t.Fatal(err)
	}
	br := "--broker=" + c.brokerAddr
	code, out, errOut := ctl("group", "list", br, "--json")
	if code != 0 {
		t.Fatalf("group list: exit %d %q", code, errOut)
	}
	var found []groupRow
	for _, g := range decodeJSON[[]groupRow](t, out) {
		if g.GroupName == "g-ctl" {
			found = append(found, g)
		}
	}
	if want := []groupRow{{GroupName: "g-ctl", ConsumeEnable: true, ConsumeBroadcastEnable: true, RetryQueueNums: 1, RetryMaxTimes: 3}}; !reflect.DeepEqual(found, want) {
		t.Errorf("group list --json: got %+v, want %+v", found, want)
	}
	_, out, _ = ctl("group", "list", br)
	if rows := tableRows(out); !reflect.DeepEqual(rows[0], []string{"GROUP", "CONSUME", "BROADCAST", "RETRY_QUEUES", "RETRY_MAX"}) ||
		!strings.Contains(out, "\ng-ctl ") || !reflect.DeepEqual(strings.Fields(out[strings.Index(out, "\ng-ctl "):])[:5], []string{"g-ctl", "true", "true", "1", "3"}) {
		t.Errorf("group list: got\n%s", out)
	}
	code, out, errOut = ctl("group", "delete", br, "g-ctl")
	if want := "deleted group g-ctl on " + c.brokerAddr + "\n"; code != 0 || out != want {
		t.Errorf("group delete: exit %d, output %q %q; want %q", code, out, errOut, want)
	}
	if _, out, _ = ctl("group", "list", br); strings.Contains(out, "g-ctl") {
		t.Errorf("group list after delete still has g-ctl:\n%s", out)
	}
}
