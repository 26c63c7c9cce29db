package main

import (
	"errors"
	"flag"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseBrokerConf(t *testing.T) {
	tests := []struct {
		name    string
		text    string
		check   func(c brokerConf) bool
		unknown []string
	}{
		{
			name:  "empty file keeps defaults",
			text:  "\n# only a comment\n! another\n",
			check: func(c brokerConf) bool { return reflect.DeepEqual(c, defaultBrokerConf()) },
		},
		{
			name: "identity and addresses",
			text: "brokerClusterName=C1\nbrokerName = broker-b\nbrokerId=0\n" +
				"namesrvAddr=127.0.0.1:9876; 10.0.0.2:9877\nlistenPort=20911\nbrokerIP1=192.0.2.7\n",
			check: func(c brokerConf) bool {
				return c.ClusterName == "C1" && c.BrokerName == "broker-b" &&
					reflect.DeepEqual(c.NamesrvAddrs, []string{"127.0.0.1:9876", "10.0.0.2:9877"}) &&
					c.ListenPort == 20911 && c.BrokerIP1 == netip.MustParseAddr("192.0.2.7")
			},
		},
		{
			name: "separators: colon, whitespace, equals with spaces",
			text: "brokerName: b1\nbrokerClusterName   C9\n  listenPort \t=\t 1234  \n",
			check: func(c brokerConf) bool {
				return c.BrokerName == "b1" && c.ClusterName == "C9" && c.ListenPort == 1234
			},
		},
		{
			name: "storage and flush",
			text: "storePathRootDir=/var/ringmq\nstorePathCommitLog=/var/ringmq/commitlog\n" +
				"mappedFileSizeCommitLog=1048576\nflushDiskType=ASYNC_FLUSH\nsyncFlushTimeout=2500\n" +
				"flushIntervalCommitLog=200\nfileReservedTime=48\ndeleteWhen=03\ndiskMaxUsedSpaceRatio=88\n" +
				"maxMessageSize=1024\nioBackend=uring-direct\nmappedFileSizeConsumeQueue=6000\n" +
				"maxHashSlotNum=1000\nmaxIndexNum=4000\n",
			check: func(c brokerConf) bool {
				return c.StoreRootDir == "/var/ringmq" && c.CommitLogDir == "/var/ringmq/commitlog" &&
					c.SegmentSizeBytes == 1<<20 && c.FlushDiskType == flushAsync &&
					c.SyncFlushTimeout == 2500*time.Millisecond && c.FlushInterval == 200*time.Millisecond &&
					c.FileReservedTime == 48*time.Hour && c.DeleteWhenHour == 3 && c.DiskMaxUsedPercent == 88 &&
					c.MaxMessageSizeBytes == 1024 && c.IOBackend == "uring-direct" &&
					c.CQEntriesPerFile == 300 && c.IndexSlots == 1000 && c.IndexEntries == 4000
			},
		},
		{
			name: "topics, polling, transactions, role, admin",
			text: "autoCreateTopicEnable=false\ndefaultTopicQueueNums=4\nlongPollingEnable=FALSE\n" +
				"transactionTimeOut=3000\ntransactionCheckMax=5\ntransactionCheckInterval=10000\n" +
				"brokerRole=SYNC_MASTER\nadminListen=0.0.0.0:10981\nhdrLog=/tmp/x.hlog\nregisterNameServerPeriod=2000\n",
			check: func(c brokerConf) bool {
				return !c.AutoCreateTopic && c.DefaultTopicQueues == 4 && !c.LongPolling &&
					c.TransactionTimeout == 3*time.Second && c.TransactionCheckMax == 5 &&
					c.TransactionCheckInt == 10*time.Second && c.BrokerRole == roleSyncMaster &&
					c.AdminListen == "0.0.0.0:10981" && c.HDRLogPath == "/tmp/x.hlog" &&
					c.RegisterPeriod == 2*time.Second
			},
		},
		{
			name: "delay levels with continuation line",
			text: "messageDelayLevel=1s 2m \\\n   3h 1d\n",
			check: func(c brokerConf) bool {
				return reflect.DeepEqual(c.DelayLevels,
					[]time.Duration{time.Second, 2 * time.Minute, 3 * time.Hour, 24 * time.Hour})
			},
		},
		{
			name: "timer messages",
			text: "timerWheelEnable=false\ntimerMaxDelaySec=86400\ntimerPrecisionMs=100\n",
			check: func(c brokerConf) bool {
				return !c.TimerWheelEnable && c.TimerMaxDelay == 24*time.Hour && c.TimerPrecision == 100*time.Millisecond
			},
		},
		{
			name:  "last duplicate wins",
			text:  "brokerName=a\nbrokerName=b\n",
			check: func(c brokerConf) bool { return c.BrokerName == "b" },
		},
		{
			name:    "unknown keys are reported by name and skipped",
			text:    "brokerName=x\nwarmMapedFileEnable=true\n# c\nslaveReadEnable\n",
			check:   func(c brokerConf) bool { return c.BrokerName == "x" },
			unknown: []string{"warmMapedFileEnable", "slaveReadEnable"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := defaultBrokerConf()
			unknown, err := parseBrokerConf(strings.NewReader(tt.text), &c)
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			if !tt.check(c) {
				t.Errorf("got %+v", c)
			}
			var names []string
			for _, u := range unknown {
				names = append(names, u.Key)
			}
			if !reflect.DeepEqual(names, tt.unknown) {
				t.Errorf("unknown keys: got %q, want %q", names, tt.unknown)
			}
		})
	}
}

func TestParseBrokerConfBadValues(t *testing.T) {
	tests := []struct {
		line string
		key  string
		want string // in the message
	}{
		{"flushDiskType=SYNC", "flushDiskType", "SYNC_FLUSH"},
		{"brokerRole=MASTER", "brokerRole", "ASYNC_MASTER"},
		{"listenPort=70000", "listenPort", "out of range"},
		{"listenPort=abc", "listenPort", "not an integer"},
		{"brokerId=-1", "brokerId", "out of range"},
		{"namesrvAddr=localhost:9876", "namesrvAddr", "IPv4:port"},
		{"namesrvAddr=;", "namesrvAddr", "empty"},
		{"brokerIP1=::1", "brokerIP1", "IPv4"},
		{"mappedFileSizeCommitLog=1000000", "mappedFileSizeCommitLog", "4096"},
		{"mappedFileSizeCommitLog=1g", "mappedFileSizeCommitLog", "not an integer"},
		{"syncFlushTimeout=0", "syncFlushTimeout", "milliseconds"},
		{"fileReservedTime=2.5", "fileReservedTime", "hours"},
		{"deleteWhen=04;16", "deleteWhen", "one hour"},
		{"deleteWhen=24", "deleteWhen", "00-23"},
		{"diskMaxUsedSpaceRatio=99", "diskMaxUsedSpaceRatio", "[10, 95]"},
		{"messageDelayLevel=1s 5x", "messageDelayLevel", `level 2 "5x"`},
		{"messageDelayLevel=", "messageDelayLevel", "no levels"},
		{"autoCreateTopicEnable=yes", "autoCreateTopicEnable", "true or false"},
		{"ioBackend=mmap", "ioBackend", "pwrite, uring, uring-direct, uring-direct-dsync"},
		{"adminListen=10980", "adminListen", "HOST:PORT"},
		{"brokerName=", "brokerName", "empty"},
		{"mappedFileSizeConsumeQueue=6001", "mappedFileSizeConsumeQueue", "multiple of 20"},
		{"maxIndexNum=0", "maxIndexNum", "out of range"},
		{"registerNameServerPeriod=500", "registerNameServerPeriod", "milliseconds"},
		{"timerWheelEnable=on", "timerWheelEnable", "true or false"},
		{"timerMaxDelaySec=0", "timerMaxDelaySec", "seconds"},
		{"timerMaxDelaySec=2592001", "timerMaxDelaySec", "seconds"},
		{"timerPrecisionMs=5", "timerPrecisionMs", "milliseconds"},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			c := defaultBrokerConf()
			_, err := parseBrokerConf(strings.NewReader("# header\n"+tt.line+"\n"), &c)
			var ce *ConfError
			if !errors.As(err, &ce) {
				t.Fatalf("got error %v, want a *ConfError", err)
			}
			value := strings.TrimSpace(tt.line[strings.IndexByte(tt.line, '=')+1:])
			if ce.Key != tt.key || ce.Value != value || ce.Line != 2 {
				t.Errorf("got key %q value %q line %d, want %q %q 2", ce.Key, ce.Value, ce.Line, tt.key, value)
			}
			msg := err.Error()
			for _, want := range []string{tt.key, "line 2", tt.want} {
				if !strings.Contains(msg, want) {
					t.Errorf("message %q does not mention %q", msg, want)
				}
			}
		})
	}
}

func TestBrokerConfValidate(t *testing.T) {
	tests := []struct {
		text    string
		wantKey string // "" = valid
	}{
		{"storePathRootDir=/d\nstorePathCommitLog=/d/commitlog/\n", ""},
		{"storePathRootDir=/d\nstorePathCommitLog=/elsewhere\n", "storePathCommitLog"},
		{"brokerRole=SLAVE\nbrokerId=1\n", ""},
		{"brokerRole=SLAVE\n", "brokerId"},
		{"brokerId=2\n", "brokerId"},
		{"mappedFileSizeCommitLog=4194304\n", "maxMessageSize"},
		{"mappedFileSizeCommitLog=4194304\nmaxMessageSize=2097152\n", ""},
	}
	for _, tt := range tests {
		c := defaultBrokerConf()
		if _, err := parseBrokerConf(strings.NewReader(tt.text), &c); err != nil {
			t.Fatalf("%q: parse: %v", tt.text, err)
		}
		err := c.validate()
		var ce *ConfError
		switch {
		case tt.wantKey == "" && err != nil:
			t.Errorf("%q: got %v, want valid", tt.text, err)
		case tt.wantKey != "" && (!errors.As(err, &ce) || ce.Key != tt.wantKey):
			t.Errorf("%q: got %v, want an error naming %s", tt.text, err, tt.wantKey)
		}
	}
}

// TestFlagsWinOverFile checks the precedence defaults < broker.conf < flags, and that
// unknown keys are logged by name.
func TestFlagsWinOverFile(t *testing.T) {
	dir := t.TempDir()
	confPath := filepath.Join(dir, "broker.conf")
	conf := "storePathRootDir=/from/file\nflushDiskType=ASYNC_FLUSH\nlistenPort=20000\n" +
		"namesrvAddr=10.1.1.1:9876\nioBackend=uring\nnoSuchKey=1\ntransactionCheckMax=3\nrebalanceLockMaxLiveTime=5000\n"
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	fs := flag.NewFlagSet("broker", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	f := defineBrokerFlags(fs, defaultBrokerConf(), true)
	args := []string{"-c", confPath, "--data", "/from/flag", "--broker-listen", "127.0.0.2:30000",
		"--namesrv", "127.0.0.1:1;127.0.0.1:2"}
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	var logBuf strings.Builder
	log := slog.New(slog.NewTextHandler(&logBuf, nil))
	c, err := f.resolve(defaultBrokerConf(), log)
	if err != nil {
		t.Fatal(err)
	}
	if c.StoreRootDir != "/from/flag" {
		t.Errorf("data dir: got %q, want the flag's", c.StoreRootDir)
	}
	if c.FlushDiskType != flushAsync || c.IOBackend != "uring" {
		t.Errorf("file values lost: flush %s backend %s", c.FlushDiskType, c.IOBackend)
	}
	if got, want := c.listenAddr(), netip.MustParseAddrPort("127.0.0.2:30000"); got != want {
		t.Errorf("listen: got %v, want %v", got, want)
	}
	if !reflect.DeepEqual(c.NamesrvAddrs, []string{"127.0.0.1:1", "127.0.0.1:2"}) {
		t.Errorf("namesrv: got %q", c.NamesrvAddrs)
	}
	if !strings.Contains(logBuf.String(), "key=noSuchKey") {
		t.Errorf("unknown key not named in the log: %s", logBuf.String())
	}
	if bc := brokerConfig(c, c.StoreRootDir, c.listenAddr(), nil); bc.TransactionCheckMax != 3 {
		t.Errorf("transactionCheckMax from the file: broker got %d, want 3", bc.TransactionCheckMax)
	} else if bc.OrderlyLockExpiry != 5*time.Second {
		t.Errorf("rebalanceLockMaxLiveTime from the file: broker got %v, want 5s", bc.OrderlyLockExpiry)
	}

	fs = flag.NewFlagSet("broker", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	f = defineBrokerFlags(fs, defaultBrokerConf(), true)
	if err := fs.Parse([]string{"--flush", "fast"}); err != nil {
		t.Fatal(err)
	}
	_, err = f.resolve(defaultBrokerConf(), log)
	if err == nil || !strings.Contains(err.Error(), `--flush: bad value "fast"`) {
		t.Errorf("bad flag: got %v", err)
	}
}

func TestAdvertisedAddr(t *testing.T) {
	c := defaultBrokerConf()
	bound := netip.MustParseAddrPort("127.0.0.1:10911")
	if got := c.advertisedAddr(bound); got != bound {
		t.Errorf("got %v, want %v", got, bound)
	}
	c.BrokerIP1 = netip.MustParseAddr("192.0.2.9")
	if got, want := c.advertisedAddr(netip.MustParseAddrPort("0.0.0.0:1")), netip.MustParseAddrPort("192.0.2.9:1"); got != want {
		t.Errorf("got %v, want %v", got, want)
	}
	c.BrokerIP1 = netip.Addr{}
	if got := c.advertisedAddr(netip.MustParseAddrPort("0.0.0.0:7")); !got.Addr().Is4() || got.Addr().IsUnspecified() || got.Port() != 7 {
		t.Errorf("unspecified bind: got %v, want a concrete IPv4 with port 7", got)
	}
}
