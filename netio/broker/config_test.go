package broker

import (
	"strings"
	"testing"
)

func TestConfigValidate(t *testing.T) {
	good := func() Config {
		c := DefaultConfig()
		c.BrokerName, c.ListenAddr, c.StoreDir = "b", "127.0.0.1:10911", "/data"
		return c
	}
	for _, tc := range []struct {
		name   string
		mutate func(*Config)
		want   string // substring of the error, "" = valid
	}{
		{"defaults", func(*Config) {}, ""},
		{"no broker name", func(c *Config) { c.BrokerName = "" }, "BrokerName"},
		{"bad broker name", func(c *Config) { c.BrokerName = "a b" }, "broker name"},
		{"host name, not an ip", func(c *Config) { c.ListenAddr = "localhost:10911" }, "ListenAddr"},
		{"IPv6", func(c *Config) { c.ListenAddr = "[::1]:10911" }, "IPv4"},
		{"no port", func(c *Config) { c.ListenAddr = "127.0.0.1:0" }, "ListenAddr"},
		{"slave", func(c *Config) { c.BrokerRole = RoleSlave }, "SLAVE"},
		{"unknown role", func(c *Config) { c.BrokerRole = "MASTER" }, "brokerRole"},
		{"slave id", func(c *Config) { c.BrokerID = 1 }, "brokerId"},
		{"no store dir", func(c *Config) { c.StoreDir = "" }, "StoreDir"},
		{"too many queues", func(c *Config) { c.DefaultTopicQueueNums = 5000 }, "defaultTopicQueueNums"},
	} {
		c := good()
		tc.mutate(&c)
		c.applyDefaults()
		_, err := c.validate()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: unexpected error %v", tc.name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: got %v, want an error mentioning %q", tc.name, err, tc.want)
		}
	}
	c := Config{BrokerName: "b", ListenAddr: "127.0.0.1:1", StoreDir: "/d"}
	c.applyDefaults()
	if c.MaxPullSuspend != DefaultMaxPullSuspend || c.ConsumerExpiry != DefaultConsumerExpiry ||
		c.OrderlyLockExpiry != DefaultOrderlyLockExpiry || c.BrokerClusterName != DefaultClusterName || c.FS == nil {
		t.Errorf("zero values did not take the defaults: %+v", c)
	}
}
