package main

// ringmqctl cluster: the name server's clusters, their brokers and the brokers' addresses
// (GET_BROKER_CLUSTER_INFO).

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"sort"
	"text/tabwriter"

	"github.com/ringmq/ringmq/netio/remoting"
)

// clusterRow is one broker address of one cluster.
type clusterRow struct {
	Cluster  string `json:"cluster"`
	Broker   string `json:"broker"`
	BrokerID string `json:"brokerId"`
	Address  string `json:"address"`
}

func runCluster(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("ringmqctl cluster", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c := defineConnFlags(fs)
	asJSON := fs.Bool("json", false, "print JSON (one object per broker address) instead of a table")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "Usage: ringmqctl cluster [flags]\n\n"+
			"Lists each cluster the name server knows, its brokers and their addresses (id 0 is the master).\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args, 0, "no arguments"); err != nil {
		return err
	}
	addr, err := c.namesrvAddr()
	if err != nil {
		return err
	}
	resp, err := c.call(addr, remoting.ReqGetBrokerClusterInfo, nil, nil)
	if err != nil {
		return err
	}
	rows, err := clusterRows(resp.Body)
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(stdout, rows)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CLUSTER\tBROKER\tID\tADDRESS")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.Cluster, r.Broker, r.BrokerID, r.Address)
	}
	return tw.Flush()
}

// clusterRows decodes a ClusterInfo body into rows sorted by cluster, broker and id. A
// broker a cluster names but without addresses gets one row with an empty address.
func clusterRows(body []byte) ([]clusterRow, error) {
	var info struct {
		BrokerAddrTable map[string]struct {
			BrokerAddrs map[string]string `json:"brokerAddrs"`
		} `json:"brokerAddrTable"`
		ClusterAddrTable map[string][]string `json:"clusterAddrTable"`
	}
	if err := json.Unmarshal(quoteBareKeys(body), &info); err != nil {
		return nil, fmt.Errorf("cluster info: bad body: %w", err)
	}
	rows := []clusterRow{}
	for cluster, brokers := range info.ClusterAddrTable {
		for _, name := range brokers {
			addrs := info.BrokerAddrTable[name].BrokerAddrs
			if len(addrs) == 0 {
				rows = append(rows, clusterRow{Cluster: cluster, Broker: name})
			}
			for id, a := range addrs {
				rows = append(rows, clusterRow{Cluster: cluster, Broker: name, BrokerID: id, Address: a})
			}
		}
	}
	sort.Slice(rows, func(i, j int) bool {
		a, b := rows[i], rows[j]
		if a.Cluster != b.Cluster {
			return a.Cluster < b.Cluster
		}
		if a.Broker != b.Broker {
			return a.Broker < b.Broker
		}
		return a.BrokerID < b.BrokerID
	})
	return rows, nil
}
