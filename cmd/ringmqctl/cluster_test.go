package main

import (
	"reflect"
	"strings"
	"testing"
)

func TestClusterCmd(t *testing.T) {
	c := startTestCluster(t)
	out := pollCtl(t, func(code int, out string) bool { return code == 0 && strings.Contains(out, "broker-ctl") },
		"cluster", "--namesrv", c.namesrvAddr, "--json")
	rows := decodeJSON[[]clusterRow](t, out)
	if want := []clusterRow{{"DefaultCluster", "broker-ctl", "0", c.brokerAddr}}; !reflect.DeepEqual(rows, want) {
		t.Errorf("cluster --json: got %+v, want %+v", rows, want)
	}
	_, out, _ = ctl("cluster", "--namesrv", c.namesrvAddr)
	wantTable(t, "cluster", out, [][]string{{"CLUSTER", "BROKER", "ID", "ADDRESS"}, {"DefaultCluster", "broker-ctl", "0", c.brokerAddr}})
}

func TestClusterRows(t *testing.T) {
	body := `{"brokerAddrTable":{"b":{"brokerAddrs":{"1":"10.0.0.2:10911","0":"10.0.0.1:10911"},"brokerName":"b","cluster":"C2"},
		"a":{"brokerAddrs":{"0":"10.0.0.3:10911"},"brokerName":"a","cluster":"C1"}},
		"clusterAddrTable":{"C2":["b","lost"],"C1":["a"]}}`
	rows, err := clusterRows([]byte(body))
	want := []clusterRow{{"C1", "a", "0", "10.0.0.3:10911"}, {"C2", "b", "0", "10.0.0.1:10911"},
		{"C2", "b", "1", "10.0.0.2:10911"}, {"C2", "lost", "", ""}}
	if err != nil || !reflect.DeepEqual(rows, want) {
		t.Errorf("clusterRows = %+v, %v; want %+v", rows, err, want)
	}
	if _, err := clusterRows([]byte("{0:")); err == nil {
		t.Error("clusterRows of a bad body: no error")
	}
}
