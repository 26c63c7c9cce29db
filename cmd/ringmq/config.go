package main

// broker.conf: the broker's settings file, in Java-properties syntax, with RocketMQ's key
// names where ringmq has the same concept (docs/config.md lists every key).
//
//	# a comment (also "!")
//	brokerClusterName = DefaultCluster
//	namesrvAddr = 127.0.0.1:9876;127.0.0.2:9876
//	flushDiskType: SYNC_FLUSH          ("=", ":" or whitespace separate key and value)
//	messageDelayLevel = 1s 5s 10s \
//	                    30s 1m         (a trailing backslash continues the line)
//
// Keys and values are trimmed. A key given twice: the last one wins (as in Java).
// An unknown key is reported by name and otherwise ignored; a bad value is an error
// naming the key, the value and the line.

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/ringmq/ringmq/flush"
)

// Flush modes (flushDiskType).
const (
	flushSync  = "SYNC_FLUSH"
	flushAsync = "ASYNC_FLUSH"
)

// Broker roles (brokerRole).
const (
	roleAsyncMaster = "ASYNC_MASTER"
	roleSyncMaster  = "SYNC_MASTER"
	roleSlave       = "SLAVE"
)

// ioBackends are the values ioBackend / --io-backend accept: the backends compiled
// into flush/.
var ioBackends = flush.BackendNames()

// defaultDelayLevels is RocketMQ's messageDelayLevel default.
const defaultDelayLevels = "1s 5s 10s 30s 1m 2m 3m 4m 5m 6m 7m 8m 9m 10m 20m 30m 1h 2h"

// maxConfLineBytes bounds one logical line of broker.conf (continuations included).
const maxConfLineBytes = 1 << 20

// brokerConf is everything the broker reads from broker.conf and its flags.
type brokerConf struct {
	ClusterName  string
	BrokerName   string
	BrokerID     int64
	NamesrvAddrs []string
	ListenPort   uint16
	// BrokerIP1 is the address the broker advertises (route, storeHost); invalid = derive
	// it from the listen address.
	BrokerIP1 netip.Addr
	// ListenAddr is --broker-listen; invalid = BrokerIP1 (or 127.0.0.1) : ListenPort.
	ListenAddr   netip.AddrPort
	StoreRootDir string
	// CommitLogDir is storePathCommitLog; ringmq keeps it at StoreRootDir/commitlog.
	CommitLogDir        string
	SegmentSizeBytes    int64
	CQEntriesPerFile    int // mappedFileSizeConsumeQueue / 20
	IndexSlots          int // maxHashSlotNum
	IndexEntries        int // maxIndexNum
	FlushDiskType       string
	BrokerRole          string
	SyncFlushTimeout    time.Duration
	FlushInterval       time.Duration
	FileReservedTime    time.Duration
	DeleteWhenHour      int
	DiskMaxUsedPercent  int
	MaxMessageSizeBytes int
	DelayLevels         []time.Duration
	AutoCreateTopic     bool
	DefaultTopicQueues  int
	LongPolling         bool
	TransactionTimeout  time.Duration
	TransactionCheckMax int
	TransactionCheckInt time.Duration
	RegisterPeriod      time.Duration // registerNameServerPeriod
	LockMaxLiveTime     time.Duration // rebalanceLockMaxLiveTime
	TimerWheelEnable    bool          // timerWheelEnable: 5.x timer messages
	TimerMaxDelay       time.Duration // timerMaxDelaySec
	TimerPrecision      time.Duration // timerPrecisionMs: the wheel's slot width
	IOBackend           string
	AdminListen         string
	HDRLogPath          string
}

// defaultBrokerConf returns RocketMQ 4.9's defaults, except where ringmq chooses otherwise
// (SYNC_FLUSH, loopback addresses, ./data): docs/config.md says which.
func defaultBrokerConf() brokerConf {
	delays, err := parseDelayLevels(defaultDelayLevels)
	if err != nil {
		panic("BUG: default messageDelayLevel: " + err.Error())
	}
	return brokerConf{
		ClusterName:         "DefaultCluster",
		BrokerName:          "broker-a",
		NamesrvAddrs:        []string{"127.0.0.1:9876"},
		ListenPort:          10911,
		StoreRootDir:        "data",
		SegmentSizeBytes:    1 << 30,
		CQEntriesPerFile:    300_000,
		IndexSlots:          5_000_000,
		IndexEntries:        20_000_000,
		FlushDiskType:       flushSync,
		BrokerRole:          roleAsyncMaster,
		SyncFlushTimeout:    2500 * time.Millisecond, // under the Go client's 3 s async-send wait: docs/differences.md
		FlushInterval:       500 * time.Millisecond,
		FileReservedTime:    72 * time.Hour,
		DeleteWhenHour:      4,
		DiskMaxUsedPercent:  75,
		MaxMessageSizeBytes: 4 << 20,
		DelayLevels:         delays,
		AutoCreateTopic:     true,
		DefaultTopicQueues:  8,
		LongPolling:         true,
		TransactionTimeout:  6 * time.Second,
		TransactionCheckMax: 15,
		TransactionCheckInt: 60 * time.Second,
		RegisterPeriod:      30 * time.Second,
		LockMaxLiveTime:     60 * time.Second,
		TimerWheelEnable:    true,
		TimerMaxDelay:       259200 * time.Second,
		TimerPrecision:      time.Second,
		IOBackend:           "pwrite",
		AdminListen:         "127.0.0.1:10980",
	}
}

// confKey is one broker.conf key: its name and how its value is applied.
type confKey struct {
	name string
	set  func(c *brokerConf, v string) error
}

// confKeys lists every key ringmq reads, in docs/config.md's order.
var confKeys = []confKey{
	{"brokerClusterName", func(c *brokerConf, v string) error { return setName(&c.ClusterName, v) }},
	{"brokerName", func(c *brokerConf, v string) error { return setName(&c.BrokerName, v) }},
	{"brokerId", func(c *brokerConf, v string) error { return setInt(&c.BrokerID, v, 0, 1<<31-1) }},
	{"namesrvAddr", func(c *brokerConf, v string) error { return setNamesrvAddrs(&c.NamesrvAddrs, v) }},
	{"listenPort", func(c *brokerConf, v string) error { return setPort(&c.ListenPort, v) }},
	{"brokerIP1", func(c *brokerConf, v string) error { return setIPv4(&c.BrokerIP1, v) }},
	{"storePathRootDir", func(c *brokerConf, v string) error { return setName(&c.StoreRootDir, v) }},
	{"storePathCommitLog", func(c *brokerConf, v string) error { return setName(&c.CommitLogDir, v) }},
	{"mappedFileSizeCommitLog", func(c *brokerConf, v string) error { return setSegmentSize(&c.SegmentSizeBytes, v) }},
	{"mappedFileSizeConsumeQueue", func(c *brokerConf, v string) error { return setCQFileSize(&c.CQEntriesPerFile, v) }},
	{"maxHashSlotNum", func(c *brokerConf, v string) error { return setIntRange(&c.IndexSlots, v, 1, 1<<28) }},
	{"maxIndexNum", func(c *brokerConf, v string) error { return setIntRange(&c.IndexEntries, v, 1, 1<<28) }},
	{"flushDiskType", func(c *brokerConf, v string) error {
		return setEnum(&c.FlushDiskType, v, flushSync, flushAsync)
	}},
	{"brokerRole", func(c *brokerConf, v string) error {
		return setEnum(&c.BrokerRole, v, roleAsyncMaster, roleSyncMaster, roleSlave)
	}},
	{"syncFlushTimeout", func(c *brokerConf, v string) error { return setMillis(&c.SyncFlushTimeout, v) }},
	{"flushIntervalCommitLog", func(c *brokerConf, v string) error { return setMillis(&c.FlushInterval, v) }},
	{"fileReservedTime", func(c *brokerConf, v string) error { return setHours(&c.FileReservedTime, v) }},
	{"deleteWhen", func(c *brokerConf, v string) error { return setDeleteWhen(&c.DeleteWhenHour, v) }},
	{"diskMaxUsedSpaceRatio", func(c *brokerConf, v string) error { return setIntRange(&c.DiskMaxUsedPercent, v, 10, 95) }},
	{"maxMessageSize", func(c *brokerConf, v string) error { return setIntRange(&c.MaxMessageSizeBytes, v, 1, 1<<30) }},
	{"messageDelayLevel", func(c *brokerConf, v string) error {
		levels, err := parseDelayLevels(v)
		if err != nil {
			return err
		}
		c.DelayLevels = levels
		return nil
	}},
	{"autoCreateTopicEnable", func(c *brokerConf, v string) error { return setBool(&c.AutoCreateTopic, v) }},
	{"defaultTopicQueueNums", func(c *brokerConf, v string) error { return setIntRange(&c.DefaultTopicQueues, v, 1, 1024) }},
	{"longPollingEnable", func(c *brokerConf, v string) error { return setBool(&c.LongPolling, v) }},
	{"transactionTimeOut", func(c *brokerConf, v string) error { return setMillis(&c.TransactionTimeout, v) }},
	{"transactionCheckMax", func(c *brokerConf, v string) error { return setIntRange(&c.TransactionCheckMax, v, 1, 1<<20) }},
	{"transactionCheckInterval", func(c *brokerConf, v string) error { return setMillis(&c.TransactionCheckInt, v) }},
	{"registerNameServerPeriod", func(c *brokerConf, v string) error { return setRegisterPeriod(&c.RegisterPeriod, v) }},
	{"rebalanceLockMaxLiveTime", func(c *brokerConf, v string) error { return setMillis(&c.LockMaxLiveTime, v) }},
	{"timerWheelEnable", func(c *brokerConf, v string) error { return setBool(&c.TimerWheelEnable, v) }},
	{"timerMaxDelaySec", func(c *brokerConf, v string) error { return setTimerMaxDelay(&c.TimerMaxDelay, v) }},
	{"timerPrecisionMs", func(c *brokerConf, v string) error { return setTimerPrecision(&c.TimerPrecision, v) }},
	// ringmq's own keys.
	{"ioBackend", func(c *brokerConf, v string) error { return setEnum(&c.IOBackend, v, ioBackends...) }},
	{"adminListen", func(c *brokerConf, v string) error { return setHostPort(&c.AdminListen, v) }},
	{"hdrLog", func(c *brokerConf, v string) error { return setName(&c.HDRLogPath, v) }},
}

// confKeyIndex maps a key name to its entry in confKeys.
var confKeyIndex = func() map[string]*confKey {
	m := make(map[string]*confKey, len(confKeys))
	for i := range confKeys {
		m[confKeys[i].name] = &confKeys[i]
	}
	return m
}()

// ConfError is a bad value in broker.conf: it names the line, the key and the value.
type ConfError struct {
	Line  int // 1-based line of the key; 0 for a flag
	Key   string
	Value string
	Err   error
}

func (e *ConfError) Error() string {
	if e.Line == 0 {
		return fmt.Sprintf("%s: bad value %q: %v", e.Key, e.Value, e.Err)
	}
	return fmt.Sprintf("line %d: %s: bad value %q: %v", e.Line, e.Key, e.Value, e.Err)
}

func (e *ConfError) Unwrap() error { return e.Err }

// unknownKey is a key parseBrokerConf does not know, and where it was.
type unknownKey struct {
	Line int
	Key  string
}

// loadBrokerConf reads the file at path over c. It returns the keys it did not know.
func loadBrokerConf(path string, c *brokerConf) ([]unknownKey, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read broker.conf: %w", err)
	}
	defer f.Close()
	unknown, err := parseBrokerConf(f, c)
	if err != nil {
		return unknown, fmt.Errorf("%s: %w", path, err)
	}
	return unknown, nil
}

// parseBrokerConf applies every key=value of r to c, in order. Unknown keys are returned
// (c is untouched by them); the first bad value stops parsing with a *ConfError.
func parseBrokerConf(r io.Reader, c *brokerConf) ([]unknownKey, error) {
	props, err := readProperties(r)
	if err != nil {
		return nil, err
	}
	var unknown []unknownKey
	for _, p := range props {
		k, ok := confKeyIndex[p.key]
		if !ok {
			unknown = append(unknown, unknownKey{Line: p.line, Key: p.key})
			continue
		}
		if err := k.set(c, p.value); err != nil {
			return unknown, &ConfError{Line: p.line, Key: p.key, Value: p.value, Err: err}
		}
	}
	return unknown, nil
}

// property is one key/value line of a properties file.
type property struct {
	line       int
	key, value string
}

// readProperties splits r into key/value pairs: Java-properties syntax without escapes
// other than the line-continuing backslash.
func readProperties(r io.Reader) ([]property, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxConfLineBytes)
	var (
		props   []property
		lineNo  int
		pending strings.Builder // a logical line continued with '\'
		startNo int
	)
	for sc.Scan() {
		lineNo++
		text := strings.TrimSpace(sc.Text())
		if pending.Len() == 0 {
			if text == "" || text[0] == '#' || text[0] == '!' {
				continue
			}
			startNo = lineNo
		}
		if cont, ok := strings.CutSuffix(text, `\`); ok && !strings.HasSuffix(cont, `\`) {
			pending.WriteString(cont)
			if pending.Len() > maxConfLineBytes {
				return nil, fmt.Errorf("line %d: continued line longer than %d bytes", startNo, maxConfLineBytes)
			}
			continue
		}
		pending.WriteString(text)
		props = append(props, splitProperty(startNo, pending.String()))
		pending.Reset()
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("line %d: %w", lineNo+1, err)
	}
	if pending.Len() > 0 {
		props = append(props, splitProperty(startNo, pending.String()))
	}
	return props, nil
}

// splitProperty splits a logical line at the first '=', ':' or whitespace.
func splitProperty(lineNo int, s string) property {
	i := strings.IndexAny(s, "=: \t\f")
	if i < 0 {
		return property{line: lineNo, key: s}
	}
	key := strings.TrimSpace(s[:i])
	rest := strings.TrimLeft(s[i:], " \t\f")
	if rest != "" && (rest[0] == '=' || rest[0] == ':') {
		rest = rest[1:]
	}
	return property{line: lineNo, key: key, value: strings.TrimSpace(rest)}
}

func setName(dst *string, v string) error {
	if v == "" {
		return errors.New("empty")
	}
	*dst = v
	return nil
}

func setInt(dst *int64, v string, lo, hi int64) error {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return errors.New("not an integer")
	}
	if n < lo || n > hi {
		return fmt.Errorf("out of range [%d, %d]", lo, hi)
	}
	*dst = n
	return nil
}

func setIntRange(dst *int, v string, lo, hi int) error {
	var n int64
	if err := setInt(&n, v, int64(lo), int64(hi)); err != nil {
		return err
	}
	*dst = int(n)
	return nil
}

func setBool(dst *bool, v string) error {
	switch strings.ToLower(v) {
	case "true":
		*dst = true
	case "false":
		*dst = false
	default:
		return errors.New("want true or false")
	}
	return nil
}

func setEnum(dst *string, v string, allowed ...string) error {
	for _, a := range allowed {
		if v == a {
			*dst = v
			return nil
		}
	}
	return fmt.Errorf("want one of %s", strings.Join(allowed, ", "))
}

func setPort(dst *uint16, v string) error {
	var n int64
	if err := setInt(&n, v, 1, 65535); err != nil {
		return err
	}
	*dst = uint16(n)
	return nil
}

func setIPv4(dst *netip.Addr, v string) error {
	a, err := netip.ParseAddr(v)
	if err != nil || !a.Is4() {
		return errors.New("want an IPv4 address (the RocketMQ client reads 4-byte hosts)")
	}
	*dst = a
	return nil
}

// setMillis reads a duration in milliseconds (RocketMQ's unit for these keys).
func setMillis(dst *time.Duration, v string) error {
	var n int64
	if err := setInt(&n, v, 1, int64(24*time.Hour/time.Millisecond)); err != nil {
		return fmt.Errorf("want milliseconds: %w", err)
	}
	*dst = time.Duration(n) * time.Millisecond
	return nil
}

// setTimerMaxDelay reads timerMaxDelaySec: 1 s to 30 days (the wheel file holds two
// horizons of slots: 16 MiB for the 3-day default at 1 s).
func setTimerMaxDelay(dst *time.Duration, v string) error {
	var n int64
	if err := setInt(&n, v, 1, 30*86400); err != nil {
		return fmt.Errorf("want seconds: %w", err)
	}
	*dst = time.Duration(n) * time.Second
	return nil
}

// setTimerPrecision reads timerPrecisionMs: 10 ms to 1 min. It is the width of a wheel
// slot (how early a slot is read), not a rounding of due times: ringmq delivers at the
// exact TIMER_DELIVER_MS.
func setTimerPrecision(dst *time.Duration, v string) error {
	var n int64
	if err := setInt(&n, v, 10, 60000); err != nil {
		return fmt.Errorf("want milliseconds: %w", err)
	}
	*dst = time.Duration(n) * time.Millisecond
	return nil
}

// setRegisterPeriod reads registerNameServerPeriod: milliseconds between registrations
// with the name servers. RocketMQ clamps it to 10-60 s; ringmq takes 1 s to 10 min
// (short periods are for tests) and refuses the rest.
func setRegisterPeriod(dst *time.Duration, v string) error {
	var n int64
	if err := setInt(&n, v, 1000, 600_000); err != nil {
		return fmt.Errorf("want milliseconds: %w", err)
	}
	*dst = time.Duration(n) * time.Millisecond
	return nil
}

// setHours reads fileReservedTime: whole hours, as RocketMQ does.
func setHours(dst *time.Duration, v string) error {
	var n int64
	if err := setInt(&n, v, 1, 24*365*10); err != nil {
		return fmt.Errorf("want hours: %w", err)
	}
	*dst = time.Duration(n) * time.Hour
	return nil
}

// setDeleteWhen reads deleteWhen: the hour of day (00-23) at which expired segments go.
// RocketMQ also allows "04;16"; ringmq's store takes one hour, so a list is refused
// rather than half-honoured.
func setDeleteWhen(dst *int, v string) error {
	if strings.Contains(v, ";") {
		return errors.New("ringmq takes one hour of day (00-23), not a list")
	}
	var n int64
	if err := setInt(&n, v, 0, 23); err != nil {
		return fmt.Errorf("want an hour of day 00-23: %w", err)
	}
	*dst = int(n)
	return nil
}

// setSegmentSize reads mappedFileSizeCommitLog: bytes, a multiple of 4096 (the store
// pre-writes whole pages), from 64 KiB to 16 GiB.
func setSegmentSize(dst *int64, v string) error {
	var n int64
	if err := setInt(&n, v, 64<<10, 16<<30); err != nil {
		return fmt.Errorf("want bytes: %w", err)
	}
	if n%4096 != 0 {
		return errors.New("want a multiple of 4096 bytes")
	}
	*dst = n
	return nil
}

// cqEntryBytes is the size of one consume-queue entry.
const cqEntryBytes = 20

// setCQFileSize reads mappedFileSizeConsumeQueue: bytes per consume-queue file, a
// multiple of the 20-byte entry.
func setCQFileSize(dst *int, v string) error {
	var n int64
	if err := setInt(&n, v, cqEntryBytes, cqEntryBytes<<26); err != nil {
		return fmt.Errorf("want bytes: %w", err)
	}
	if n%cqEntryBytes != 0 {
		return fmt.Errorf("want a multiple of %d bytes (one entry)", cqEntryBytes)
	}
	*dst = int(n / cqEntryBytes)
	return nil
}

// setNamesrvAddrs reads a ';'-separated list of IPv4:port (the client needs IP:port).
func setNamesrvAddrs(dst *[]string, v string) error {
	var addrs []string
	for part := range strings.SplitSeq(v, ";") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		ap, err := netip.ParseAddrPort(part)
		if err != nil || !ap.Addr().Is4() || ap.Port() == 0 {
			return fmt.Errorf("%q is not IPv4:port", part)
		}
		addrs = append(addrs, ap.String())
	}
	if len(addrs) == 0 {
		return errors.New("empty")
	}
	*dst = addrs
	return nil
}

// setHostPort reads a HOST:PORT listen address (host may be empty for all interfaces).
func setHostPort(dst *string, v string) error {
	if err := checkHostPort(v); err != nil {
		return err
	}
	*dst = v
	return nil
}

func checkHostPort(v string) error {
	_, port, err := net.SplitHostPort(v)
	if err != nil {
		return errors.New("want HOST:PORT")
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return errors.New("want HOST:PORT with a port 0-65535")
	}
	return nil
}

// parseDelayLevels reads messageDelayLevel: space-separated durations with a unit of
// s, m, h or d ("1s 5s 10s 30s 1m ... 2h"), at most 64 levels.
func parseDelayLevels(v string) ([]time.Duration, error) {
	const maxLevels = 64
	units := map[byte]time.Duration{'s': time.Second, 'm': time.Minute, 'h': time.Hour, 'd': 24 * time.Hour}
	var levels []time.Duration
	for f := range strings.FieldsSeq(v) {
		unit, ok := units[f[len(f)-1]]
		n, err := strconv.ParseInt(f[:len(f)-1], 10, 32)
		if !ok || err != nil || n <= 0 {
			return nil, fmt.Errorf("level %d %q: want a positive number with unit s, m, h or d", len(levels)+1, f)
		}
		levels = append(levels, time.Duration(n)*unit)
		if len(levels) > maxLevels {
			return nil, fmt.Errorf("more than %d levels", maxLevels)
		}
	}
	if len(levels) == 0 {
		return nil, errors.New("no levels")
	}
	return levels, nil
}

// validate checks what no single key can: the combination, and the commit-log path.
func (c *brokerConf) validate() error {
	if c.CommitLogDir != "" {
		want := filepath.Join(c.StoreRootDir, "commitlog")
		if filepath.Clean(c.CommitLogDir) != want {
			return &ConfError{Key: "storePathCommitLog", Value: c.CommitLogDir,
				Err: fmt.Errorf("ringmq keeps the commit log at storePathRootDir/commitlog (%s)", want)}
		}
	}
	if int64(c.MaxMessageSizeBytes) > c.SegmentSizeBytes/2 {
		return &ConfError{Key: "maxMessageSize", Value: strconv.Itoa(c.MaxMessageSizeBytes),
			Err: fmt.Errorf("over half of mappedFileSizeCommitLog (%d bytes): a message must fit a segment with room to spare", c.SegmentSizeBytes)}
	}
	if c.BrokerRole == roleSlave && c.BrokerID == 0 {
		return &ConfError{Key: "brokerId", Value: "0", Err: errors.New("a SLAVE needs brokerId > 0")}
	}
	if c.BrokerRole != roleSlave && c.BrokerID != 0 {
		return &ConfError{Key: "brokerId", Value: strconv.FormatInt(c.BrokerID, 10),
			Err: fmt.Errorf("a %s has brokerId 0", c.BrokerRole)}
	}
	return nil
}
