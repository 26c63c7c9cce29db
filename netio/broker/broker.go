// Package broker is ringmq's RocketMQ broker: the request processors behind a remoting
// server, on top of the message store (engine.Store) and the broker's tables (engine/meta).
//
// What it serves (PROTOCOL.md §2 for each request's fields and answer):
//
//	send      SEND_MESSAGE 10, SEND_MESSAGE_V2 310, SEND_BATCH_MESSAGE 320, CONSUMER_SEND_MSG_BACK 36,
//	          SEND_REPLY_MESSAGE 324/325 (request-reply; PUSH_REPLY_MESSAGE_TO_CLIENT 326 to the requester)
//	pull      PULL_MESSAGE 11 (long polling), QUERY_MESSAGE 12, VIEW_MESSAGE_BY_ID 33
//	clients   HEART_BEAT 34, UNREGISTER_CLIENT 35, GET_CONSUMER_LIST_BY_GROUP 38,
//	          LOCK_BATCH_MQ 41, UNLOCK_BATCH_MQ 42; NOTIFY_CONSUMER_IDS_CHANGED 40 to clients
//	offsets   QUERY_CONSUMER_OFFSET 14, UPDATE_CONSUMER_OFFSET 15, SEARCH_OFFSET_BY_TIMESTAMP 29,
//	          GET_MAX_OFFSET 30, GET_MIN_OFFSET 31, GET_EARLIEST_MSG_STORETIME 32
//	admin     UPDATE_AND_CREATE_TOPIC 17, GET_ALL_TOPIC_CONFIG 21, GET_ALL_SUBSCRIPTIONGROUP_CONFIG 201,
//	          DELETE_TOPIC_IN_BROKER 215, UPDATE_AND_CREATE_SUBSCRIPTIONGROUP 200,
//	          DELETE_SUBSCRIPTIONGROUP 207
//	txn       END_TRANSACTION 37 (commit / rollback of half messages); CHECK_TRANSACTION_STATE 39
//	          to producers for transactions left open
//
// Anything else is answered REQUEST_CODE_NOT_SUPPORTED (3) with a remark naming the code.
//
// # Durability and answers
//
// A send is answered only when the store's Waiter reports the append durable (under
// SYNC_FLUSH: after the fdatasync covering it). The answer is written from the store's
// flusher goroutine with Conn.ReplyTo, from a pooled per-request state, so the send path
// allocates nothing in steady state. Store errors map to response codes as DESIGN.md's
// durability contract says: flush timeout -> FLUSH_DISK_TIMEOUT (10), disk full or a failed
// write/fsync -> SERVICE_NOT_AVAILABLE (14) with the reason, a full queue -> SYSTEM_BUSY (2),
// an illegal message -> MESSAGE_ILLEGAL (13).
//
// # Concurrency
//
// Serve runs on each connection's reader goroutine and never blocks on disk durability:
// sends and long polls are answered later from other goroutines. Shared state (consumer
// groups, locks, held pulls) sits behind its own mutex, never held across a system call or a
// network write. Background goroutines: the long-poll waker, the client expiry scanner,
// the delivery service of delayed messages and retries (schedule.go), the transaction
// check service (txcheck.go), the name-server registrar; Shutdown stops them.
//
// # Limits
//
// Config.MaxInFlightSends, Config.MaxHeldPulls, the lock table and the client tables are
// bounded; past a bound the request is answered SYSTEM_BUSY. The remoting server bounds
// in-flight requests per connection and in total (Config.Server).
package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"path"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ringmq/ringmq/engine"
	"github.com/ringmq/ringmq/engine/meta"
	"github.com/ringmq/ringmq/flush/vfs"
	"github.com/ringmq/ringmq/netio/remoting"
	"github.com/ringmq/ringmq/perf"
)

// Broker roles (broker.conf brokerRole).
const (
	RoleAsyncMaster = "ASYNC_MASTER"
	RoleSyncMaster  = "SYNC_MASTER"
	RoleSlave       = "SLAVE"
)

// Defaults of Config (RocketMQ 4.9 where the concept exists).
const (
	DefaultClusterName         = "DefaultCluster"
	DefaultTopicQueueNums      = 8
	DefaultMaxMessageSizeBytes = 4 << 20
	DefaultMaxInFlightSends    = 10000
	DefaultMaxHeldPulls        = 65536
	DefaultMaxPullSuspend      = 20 * time.Second
	DefaultShortPollingTime    = time.Second
	DefaultConsumerExpiry      = 120 * time.Second
	DefaultOrderlyLockExpiry   = 60 * time.Second
	DefaultRegisterInterval    = 30 * time.Second
	DefaultMaxClients          = 65536 // client connections known through heartbeats
	DefaultMaxPullMsgs         = 32
	DefaultMaxPullBytes        = 256 << 10
)

// Config configures a Broker. Start from DefaultConfig; zero durations and limits take the
// defaults above.
type Config struct {
	BrokerClusterName string   // brokerClusterName; "DefaultCluster"
	BrokerName        string   // brokerName; required
	BrokerID          int64    // brokerId; 0 = master (the only role served for now)
	NamesrvAddrs      []string // name servers "ip:port"; empty = do not register
	// ListenAddr is the broker's reachable IPv4 "ip:port": the address registered with the
	// name servers and the storeHost inside offset message ids (it must equal the store's
	// engine.Config.StoreHost). It need not be the address Serve's listener is bound to.
	ListenAddr string
	// StoreDir is the store's root; the broker's tables live in StoreDir/config.
	StoreDir string
	// FS is the file system of StoreDir; nil = the OS (vfs.OS{}).
	FS vfs.FS

	AutoCreateTopicEnable bool   // create unknown topics on send from TBW102 (default true)
	DefaultTopicQueueNums int    // queues of an auto-created topic (8)
	BrokerRole            string // ASYNC_MASTER / SYNC_MASTER; SLAVE is refused by New for now
	LongPollingEnable     bool   // hold empty pulls until a message arrives (default true)
	MaxPullSuspend        time.Duration
	ShortPollingTime      time.Duration // hold time of empty pulls when LongPollingEnable is false
	MaxMessageSizeBytes   int           // maxMessageSize: body bytes (4 MiB)
	MaxInFlightSends      int           // sends appended and not yet answered; past it SYSTEM_BUSY
	MaxHeldPulls          int           // long-polling pulls held at once; past it SYSTEM_BUSY
	MaxClients            int           // distinct (group, client connection) registrations
	MaxLocks              int           // orderly lock table entries
	MaxPullMsgs           int           // messages per pull answer (the client asks 32)
	MaxPullBytes          int           // bytes per pull answer (256 KiB)
	ConsumerExpiry        time.Duration // drop a client silent for this long (120 s)
	OrderlyLockExpiry     time.Duration // a queue lock not renewed for this long may be taken (60 s)
	RegisterInterval      time.Duration // re-register with the name servers (30 s)
	MetaFlushInterval     time.Duration // persist offsets and configs (5 s)
	// Transaction check service (txcheck.go): how often it runs, how old a half message
	// must be before its producer is asked, and how many times it is asked.
	TransactionCheckInterval time.Duration // transactionCheckInterval (60 s)
	TransactionTimeout       time.Duration // transactionTimeOut (6 s)
	TransactionCheckMax      int           // transactionCheckMax (15)
	// DelayLevels is messageDelayLevel (nil = engine.DefaultDelayLevels, "1s 5s ... 2h");
	// it must equal the store's engine.Config.DelayLevels.
	DelayLevels []time.Duration
	// Timer messages (5.x, timer.go): timerWheelEnable, timerMaxDelaySec (3 days) and
	// timerPrecisionMs (1 s, the wheel's slot width). The wheel lives in StoreDir/timer.
	TimerWheelEnable bool
	TimerMaxDelay    time.Duration
	TimerPrecision   time.Duration

	Server   remoting.ServerConfig // frame and in-flight limits of the connection server
	Recorder *perf.Recorder        // stage latencies per request; nil = not recorded
}

// DefaultConfig returns a Config with RocketMQ's defaults; the caller sets BrokerName,
// ListenAddr, StoreDir and NamesrvAddrs.
func DefaultConfig() Config {
	return Config{
		BrokerClusterName:     DefaultClusterName,
		AutoCreateTopicEnable: true,
		DefaultTopicQueueNums: DefaultTopicQueueNums,
		BrokerRole:            RoleAsyncMaster,
		LongPollingEnable:     true,
		TimerWheelEnable:      true,
	}
}

func (c *Config) applyDefaults() {
	setDur := func(d *time.Duration, def time.Duration) {
		if *d <= 0 {
			*d = def
		}
	}
	setInt := func(n *int, def int) {
		if *n <= 0 {
			*n = def
		}
	}
	if c.BrokerClusterName == "" {
		c.BrokerClusterName = DefaultClusterName
	}
	if c.BrokerRole == "" {
		c.BrokerRole = RoleAsyncMaster
	}
	if c.FS == nil {
		c.FS = vfs.OS{}
	}
	setInt(&c.DefaultTopicQueueNums, DefaultTopicQueueNums)
	setInt(&c.MaxMessageSizeBytes, DefaultMaxMessageSizeBytes)
	setInt(&c.MaxInFlightSends, DefaultMaxInFlightSends)
	setInt(&c.MaxHeldPulls, DefaultMaxHeldPulls)
	setInt(&c.MaxClients, DefaultMaxClients)
	setInt(&c.MaxLocks, DefaultMaxLocks)
	setInt(&c.MaxPullMsgs, DefaultMaxPullMsgs)
	setInt(&c.MaxPullBytes, DefaultMaxPullBytes)
	setDur(&c.MaxPullSuspend, DefaultMaxPullSuspend)
	setDur(&c.ShortPollingTime, DefaultShortPollingTime)
	setDur(&c.ConsumerExpiry, DefaultConsumerExpiry)
	setDur(&c.OrderlyLockExpiry, DefaultOrderlyLockExpiry)
	setDur(&c.RegisterInterval, DefaultRegisterInterval)
	setDur(&c.MetaFlushInterval, meta.DefaultFlushInterval)
	setDur(&c.TransactionCheckInterval, DefaultTransactionCheckInterval)
	setDur(&c.TransactionTimeout, DefaultTransactionTimeout)
	setInt(&c.TransactionCheckMax, DefaultTransactionCheckMax)
	setDur(&c.TimerMaxDelay, DefaultTimerMaxDelay)
	setDur(&c.TimerPrecision, DefaultTimerPrecision)
}

func (c *Config) validate() (netip.AddrPort, error) {
	if c.BrokerName == "" {
		return netip.AddrPort{}, errors.New("broker: BrokerName is required")
	}
	if !meta.ValidTopicName(c.BrokerName) || !meta.ValidTopicName(c.BrokerClusterName) {
		return netip.AddrPort{}, fmt.Errorf("broker: broker name %q and cluster name %q must be 1..127 characters of [%%|a-zA-Z0-9_-]", c.BrokerName, c.BrokerClusterName)
	}
	switch c.BrokerRole {
	case RoleAsyncMaster, RoleSyncMaster:
	case RoleSlave:
		return netip.AddrPort{}, errors.New("broker: brokerRole SLAVE is not supported yet")
	default:
		return netip.AddrPort{}, fmt.Errorf("broker: brokerRole %q is not ASYNC_MASTER, SYNC_MASTER or SLAVE", c.BrokerRole)
	}
	if c.BrokerID != 0 {
		return netip.AddrPort{}, fmt.Errorf("broker: brokerId %d: only a master (0) is supported yet", c.BrokerID)
	}
	ap, err := netip.ParseAddrPort(c.ListenAddr)
	if err != nil || !ap.Addr().Unmap().Is4() || ap.Port() == 0 {
		return netip.AddrPort{}, fmt.Errorf("broker: ListenAddr %q must be a reachable IPv4 ip:port (clients dial it and it is the storeHost of every message)", c.ListenAddr)
	}
	if c.StoreDir == "" {
		return netip.AddrPort{}, errors.New("broker: StoreDir is required")
	}
	if c.DefaultTopicQueueNums > meta.MaxQueueNums {
		return netip.AddrPort{}, fmt.Errorf("broker: defaultTopicQueueNums %d over %d", c.DefaultTopicQueueNums, meta.MaxQueueNums)
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
}

// Broker serves RocketMQ clients. Create it with New, run it with Serve, stop it with
// Shutdown.
type Broker struct {
	cfg       Config
	log       *slog.Logger
	store     *engine.Store
	meta      *meta.Meta
	storeHost netip.AddrPort
	server    *remoting.Server
	reg       *registration

	sends     sendPool
	pullPool  sync.Pool // of *pullState
	pulls     *longPoll
	subs      subscriptionCache // filters of subscriptions carried by pulls
	clients   *clientManager
	locks     *lockTable
	sched     *scheduler
	txc       *txChecker
	timers    *timerService // nil when TimerWheelEnable is false
	resolved  resolvedTx    // half messages END_TRANSACTION resolved in this run
	queuePick atomic.Uint32 // round robin for sends with queueId < 0

	started  atomic.Bool
	stop     chan struct{}
	bg       sync.WaitGroup
	stopOnce sync.Once
}

// New opens the broker's tables under cfg.StoreDir/config, creates the default topics and
// prepares the server; it does not listen (see Serve). The store stays the caller's: close
// it after Shutdown.
func New(cfg Config, store *engine.Store, logger *slog.Logger) (*Broker, error) {
	if store == nil {
		panic("BUG: broker.New: nil store")
	}
	if logger == nil {
		logger = slog.Default()
	}
	cfg.applyDefaults()
	storeHost, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	if cfg.Server.Logger == nil {
		cfg.Server.Logger = logger
	}
	if cfg.Recorder != nil {
		cfg.Server.OnWritten = recordWritten(cfg.Recorder, cfg.Server.OnWritten)
	}
	m, err := meta.Open(meta.Config{
		Dir:           path.Join(cfg.StoreDir, "config"),
		FS:            cfg.FS,
		FlushInterval: cfg.MetaFlushInterval,
		Logger:        logger,
	})
	if err != nil {
		return nil, fmt.Errorf("broker: open tables: %w", err)
	}
	b := &Broker{
		cfg:       cfg,
		log:       logger.With("broker", cfg.BrokerName),
		store:     store,
		meta:      m,
		storeHost: storeHost,
		locks:     newLockTable(int64(cfg.OrderlyLockExpiry), cfg.MaxLocks),
		stop:      make(chan struct{}),
	}
	b.sends.init(b)
	b.pullPool.New = func() any {
		p := &pullState{b: b, heapIdx: -1}
		p.written = p.release
		return p
	}
	b.clients = newClientManager(b, cfg.MaxClients, int64(cfg.ConsumerExpiry))
	b.pulls = newLongPoll(b, cfg.MaxHeldPulls)
	b.sched = newScheduler(b, cfg.DelayLevels)
	b.txc = newTxChecker(b)
	if err := b.createDefaultTopics(); err != nil {
		_ = m.Close()
		return nil, err
	}
	if b.reg, err = newRegistration(b); err != nil {
		_ = m.Close()
		return nil, err
	}
	if cfg.TimerWheelEnable {
		if b.timers, err = newTimerService(b); err != nil {
			_ = m.Close()
			return nil, fmt.Errorf("broker: open the timer wheel: %w", err)
		}
	}
	b.server = remoting.NewServer(cfg.Server, handler{b})
	store.SetArrivalListener(b.onArrival)
	return b, nil
}

// Serve starts the background work (long-poll expiry, client expiry, registration with the
// name servers) and serves connections from ln until Shutdown. It returns nil after
// Shutdown, or the listener's error.
func (b *Broker) Serve(ln net.Listener) error {
	b.startBackground()
	return b.server.Serve(ln)
}

// Handler returns the request handler, for a caller that runs its own remoting.Server
// (then it must call Start and Shutdown itself).
func (b *Broker) Handler() remoting.Handler { return handler{b} }

// Start starts the background work without serving; Serve calls it. It is idempotent.
func (b *Broker) Start() { b.startBackground() }

// Shutdown unregisters from the name servers, stops accepting connections, answers held
// pulls, waits for in-flight requests to be answered (sends: until the store reported them
// durable or failed) and writes the tables. ctx bounds the wait.
func (b *Broker) Shutdown(ctx context.Context) error {
	var errs []error
	// Unregister first, as Java does, so clients route elsewhere while in-flight work drains.
	if err := b.reg.stop(ctx); err != nil {
		errs = append(errs, err)
	}
	b.stopOnce.Do(func() { close(b.stop) })
	b.pulls.shutdown()
	if err := b.server.Shutdown(ctx); err != nil {
		errs = append(errs, err)
	}
	b.bg.Wait()
	if b.timers != nil {
		if err := b.timers.close(); err != nil {
			errs = append(errs, fmt.Errorf("broker: close the timer wheel: %w", err))
		}
	}
	if err := b.meta.Close(); err != nil && !errors.Is(err, meta.ErrClosed) {
		errs = append(errs, fmt.Errorf("broker: write tables: %w", err))
	}
	return errors.Join(errs...)
}

// Addr returns the address Serve's listener is bound to (nil before Serve).
func (b *Broker) Addr() net.Addr { return b.server.Addr() }

// Meta exposes the broker's tables (topics, offsets, groups) to admin tools and tests.
func (b *Broker) Meta() *meta.Meta { return b.meta }

func (b *Broker) startBackground() {
	if !b.started.CompareAndSwap(false, true) {
		return
	}
	b.bg.Add(4)
	go func() { defer b.bg.Done(); b.pulls.run(b.stop) }()
	go func() { defer b.bg.Done(); b.sched.run(b.stop) }()
	go func() { defer b.bg.Done(); b.txc.run(b.stop) }()
	go func() { defer b.bg.Done(); b.housekeeping(b.stop) }()
	if b.timers != nil {
		b.bg.Add(2)
		go func() { defer b.bg.Done(); b.timers.runWheel(b.stop) }()
		go func() { defer b.bg.Done(); b.timers.runDelivery(b.stop) }()
	}
	b.reg.start()
}

// recordWritten returns the server's OnWritten hook: every written reply's stamps go to
// the recorder (after next, the caller's own hook, if any). It runs on the connection's
// writer goroutine and allocates nothing.
func recordWritten(rec *perf.Recorder, next func(*remoting.Conn, *remoting.Response)) func(*remoting.Conn, *remoting.Response) {
	return func(c *remoting.Conn, r *remoting.Response) {
		if next != nil {
			next(c, r)
		}
		n := 0
		for _, b := range r.Body {
			n += len(b)
		}
		rec.Record(r.RequestCode, &r.Stamps, n, r.Topic, r.QueueID)
	}
}

// onArrival is the store's arrival listener (dispatcher goroutine; must not block).
func (b *Broker) onArrival(topic string, queueID int32, maxOffset int64) {
	b.pulls.onArrival(topic, queueID, maxOffset)
	if topic == TopicSchedule {
		b.sched.onArrival()
	}
	if topic == TopicTimer && b.timers != nil {
		b.timers.onArrival()
	}
}

// housekeeping expires silent clients and stale locks every few seconds.
func (b *Broker) housekeeping(stop <-chan struct{}) {
	t := time.NewTicker(housekeepingInterval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			now := perf.Now()
			b.clients.expire(now)
			b.locks.sweep(now)
		}
	}
}

// housekeepingInterval is how often silent clients and stale locks are looked for (Java
// scans clients every 10 s).
const housekeepingInterval = 10 * time.Second

// handler is the broker as a remoting.Handler.
type handler struct{ b *Broker }

// Serve dispatches one request by code.
func (h handler) Serve(c *remoting.Conn, req *remoting.Command) { h.b.dispatch(c, req) }

func (b *Broker) dispatch(c *remoting.Conn, req *remoting.Command) {
	switch req.Code {
	case remoting.ReqSendMessage, remoting.ReqSendMessageV2, remoting.ReqSendBatchMessage:
		b.handleSend(c, req)
	case remoting.ReqSendReplyMessage, remoting.ReqSendReplyMessageV2:
		b.handleSendReply(c, req)
	case remoting.ReqPullMessage:
		b.handlePull(c, req)
	case remoting.ReqHeartBeat:
		b.handleHeartbeat(c, req)
	case remoting.ReqUnregisterClient:
		b.handleUnregister(c, req)
	case remoting.ReqCheckClientConfig:
		b.handleCheckClientConfig(c, req)
	case remoting.ReqGetConsumerListByGroup:
		b.handleConsumerList(c, req)
	case remoting.ReqQueryConsumerOffset:
		b.handleQueryOffset(c, req)
	case remoting.ReqUpdateConsumerOffset:
		b.handleUpdateOffset(c, req)
	case remoting.ReqGetMaxOffset, remoting.ReqGetMinOffset, remoting.ReqSearchOffsetByTimestamp,
		remoting.ReqGetEarliestMsgStoreTime:
		b.handleQueueOffset(c, req)
	case remoting.ReqLockBatchMQ:
		b.handleLock(c, req)
	case remoting.ReqUnlockBatchMQ:
		b.handleUnlock(c, req)
	case remoting.ReqConsumerSendMsgBack:
		b.handleSendBack(c, req)
	case remoting.ReqEndTransaction:
		b.handleEndTransaction(c, req)
	case remoting.ReqViewMessageByID:
		b.handleViewMessage(c, req)
	case remoting.ReqQueryMessage:
		b.handleQueryMessage(c, req)
	case remoting.ReqUpdateAndCreateTopic:
		b.handleCreateTopic(c, req)
	case remoting.ReqDeleteTopicInBroker:
		b.handleDeleteTopic(c, req)
	case remoting.ReqGetAllTopicConfig:
		b.handleAllTopicConfig(c, req)
	case remoting.ReqGetAllSubscriptionGroupConfig:
		b.handleAllGroupConfig(c, req)
	case reqUpdateAndCreateSubscriptionGroup:
		b.handleCreateGroup(c, req)
	case remoting.ReqDeleteSubscriptionGroup:
		b.handleDeleteGroup(c, req)
	default:
		b.replyError(c, req, remoting.RespRequestCodeNotSupported,
			fmt.Sprintf("request code %d (%s) is not supported by ringmq", req.Code, remoting.RequestName(req.Code)))
	}
}

// reply answers req with a bare code and remark (remark may be "").
func (b *Broker) replyError(c *remoting.Conn, req *remoting.Command, code int16, remark string) {
	r := c.NewResponse()
	r.Code = code
	if remark != "" {
		r.SetRemark(remark)
	}
	c.Reply(req, r)
}

// replyOK answers req with SUCCESS and no fields.
func (b *Broker) replyOK(c *remoting.Conn, req *remoting.Command) {
	r := c.NewResponse()
	r.Code = remoting.RespSuccess
	c.Reply(req, r)
}
