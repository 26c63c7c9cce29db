package namesrv

import (
	"bytes"
	"compress/zlib"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ringmq/ringmq/netio/remoting"
)

// Registrar defaults and limits.
const (
	DefaultRegisterInterval = 30 * time.Second
	DefaultRegisterTimeout  = 6 * time.Second // RocketMQ's registerBrokerTimeoutMills
	// CompressOverBytes: registration bodies larger than this are zlib-compressed (compressed=true).
	CompressOverBytes = 32 << 10
)

// RegistrarConfig configures a broker's registration with its name servers.
type RegistrarConfig struct {
	NameServers  []string // "ip:port" each
	ClusterName  string
	BrokerName   string
	BrokerID     int64
	BrokerAddr   string // "ip:port" clients reach the broker at
	HAServerAddr string
	Interval     time.Duration // re-registration (heartbeat) period; default 30 s
	Timeout      time.Duration // per request; default 6 s
	Logger       *slog.Logger
}

// Registrar keeps one broker registered with every name server. Each name server has its own goroutine
// and connection, so a slow or dead one delays none of the others. Methods are safe for concurrent use.
type Registrar struct {
	cfg     RegistrarConfig
	topics  func() []TopicConfig
	log     *slog.Logger
	targets []*nsTarget
	startMs int64
	stop    chan struct{}
	wg      sync.WaitGroup
	once    struct{ start, stop sync.Once }
	counter atomic.Int64 // the data version's counter: one more per registration body
}

// nsTarget is one name server; its client belongs to its goroutine (and to Stop after that exits).
type nsTarget struct {
	addr    string
	client  *remoting.Client
	trigger chan struct{}   // cap 1: register soon
	now     chan chan error // RegisterNow requests
}

// NewRegistrar returns a Registrar; topics is called for each registration and returns the broker's
// whole topic table.
func NewRegistrar(cfg RegistrarConfig, topics func() []TopicConfig) *Registrar {
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultRegisterInterval
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultRegisterTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if topics == nil {
		panic("BUG: namesrv.NewRegistrar with a nil topics func")
	}
	r := &Registrar{cfg: cfg, topics: topics, log: cfg.Logger, stop: make(chan struct{}), startMs: time.Now().UnixMilli()}
	for _, a := range cfg.NameServers {
		r.targets = append(r.targets, &nsTarget{addr: a, trigger: make(chan struct{}, 1), now: make(chan chan error)})
	}
	return r
}

// Start registers with every name server at once, then every Interval.
func (r *Registrar) Start() {
	r.once.start.Do(func() {
		for _, t := range r.targets {
			r.wg.Add(1)
			go r.loop(t)
		}
	})
}

// TriggerNow asks for a registration with every name server as soon as possible and returns at once.
func (r *Registrar) TriggerNow() {
	for _, t := range r.targets {
		select {
		case t.trigger <- struct{}{}:
		default:
		}
	}
}

// RegisterNow registers with every name server in parallel and waits for all of them (or ctx). It returns
// the errors joined; nil when every name server accepted. Requires Start.
func (r *Registrar) RegisterNow(ctx context.Context) error {
	return r.eachTarget(func(t *nsTarget) error {
		done := make(chan error, 1)
		select {
		case t.now <- done:
		case <-ctx.Done():
			return fmt.Errorf("register with %s: %w", t.addr, ctx.Err())
		case <-r.stop:
			return fmt.Errorf("register with %s: registrar stopped", t.addr)
		}
		select {
		case err := <-done:
			return err
		case <-ctx.Done():
			return fmt.Errorf("register with %s: %w", t.addr, ctx.Err())
		}
	})
}

// eachTarget runs fn for every name server, each in its own goroutine, and returns their
// errors joined once all returned.
func (r *Registrar) eachTarget(fn func(t *nsTarget) error) error {
	errs := make([]error, len(r.targets))
	var wg sync.WaitGroup
	for i, t := range r.targets {
		wg.Go(func() { errs[i] = fn(t) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (r *Registrar) loop(t *nsTarget) {
	defer r.wg.Done()
	tick := time.NewTicker(r.cfg.Interval)
	defer tick.Stop()
	r.registerLogged(t)
	for {
		select {
		case <-r.stop:
			return
		case <-tick.C:
			r.registerLogged(t)
		case <-t.trigger:
			r.registerLogged(t)
		case done := <-t.now:
			done <- r.register(t)
		}
	}
}

func (r *Registrar) registerLogged(t *nsTarget) {
	if err := r.register(t); err != nil {
		r.log.Warn("namesrv registrar: registration failed; retrying at the next interval", "namesrv", t.addr,
			"err", err)
	}
}

// register sends one REGISTER_BROKER to t; a failed connection is dropped and redialled next time.
func (r *Registrar) register(t *nsTarget) error {
	body, compressed, err := r.body()
	if err != nil {
		return err
	}
	ext := r.header(
		remoting.Field{Key: []byte("compressed"), Value: []byte(strconv.FormatBool(compressed))},
		remoting.Field{Key: []byte("bodyCrc32"), Value: []byte(strconv.FormatUint(uint64(crc32.ChecksumIEEE(body)&0x7FFFFFFF), 10))},
	)
	resp, err := r.invoke(t, remoting.ReqRegisterBroker, ext, body)
	if err != nil {
		return err
	}
	if resp.Code != remoting.RespSuccess {
		return fmt.Errorf("register with %s: code %d: %s", t.addr, resp.Code, resp.Remark)
	}
	return nil
}

func (r *Registrar) invoke(t *nsTarget, code int16, ext []remoting.Field, body []byte) (*remoting.Command, error) {
	if t.client == nil || t.client.Err() != nil {
		if t.client != nil {
			_ = t.client.Close()
		}
		c, err := remoting.Dial(t.addr, remoting.ClientConfig{DialTimeout: r.cfg.Timeout, MaxInFlight: 4, Logger: r.log})
		if err != nil {
			t.client = nil
			return nil, err
		}
		t.client = c
	}
	ctx, cancel := context.WithTimeout(context.Background(), r.cfg.Timeout)
	defer cancel()
	resp, err := t.client.Invoke(ctx, code, ext, body)
	if err != nil {
		_ = t.client.Close()
		t.client = nil
		return nil, err
	}
	return resp, nil
}

func (r *Registrar) header(extra ...remoting.Field) []remoting.Field {
	f := func(k, v string) remoting.Field { return remoting.Field{Key: []byte(k), Value: []byte(v)} }
	return append([]remoting.Field{
		f("brokerName", r.cfg.BrokerName), f("brokerAddr", r.cfg.BrokerAddr), f("clusterName", r.cfg.ClusterName),
		f("haServerAddr", r.cfg.HAServerAddr), f("brokerId", strconv.FormatInt(r.cfg.BrokerID, 10)),
	}, extra...)
}

// body builds the RegisterBrokerBody JSON, zlib-compressed past CompressOverBytes.
func (r *Registrar) body() ([]byte, bool, error) {
	var rb registerBody
	rb.TopicConfigSerializeWrapper.TopicConfigTable = make(map[string]TopicConfig)
	for _, tc := range r.topics() {
		rb.TopicConfigSerializeWrapper.TopicConfigTable[tc.TopicName] = tc
	}
	rb.TopicConfigSerializeWrapper.DataVersion = dataVersion{Timestamp: r.startMs, Counter: r.counter.Add(1)}
	rb.FilterServerList = []string{}
	plain, err := json.Marshal(rb)
	if err != nil {
		return nil, false, fmt.Errorf("encode registration: %w", err)
	}
	if len(plain) <= CompressOverBytes {
		return plain, false, nil
	}
	var buf bytes.Buffer
	zw := zlib.NewWriter(&buf)
	if _, err := zw.Write(plain); err != nil {
		return nil, false, fmt.Errorf("compress registration: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, false, fmt.Errorf("compress registration: %w", err)
	}
	return buf.Bytes(), true, nil
}

// Stop stops the periodic registration and sends UNREGISTER_BROKER to every name server in parallel
// (bounded by ctx). It returns the unregister errors joined.
func (r *Registrar) Stop(ctx context.Context) error {
	var err error
	r.once.stop.Do(func() {
		close(r.stop)
		r.wg.Wait()
		err = r.eachTarget(func(t *nsTarget) error { return r.unregister(ctx, t) })
	})
	return err
}

func (r *Registrar) unregister(ctx context.Context, t *nsTarget) error {
	done := make(chan error, 1)
	go func() {
		resp, err := r.invoke(t, remoting.ReqUnregisterBroker, r.header(), nil)
		if err == nil && resp.Code != remoting.RespSuccess {
			err = fmt.Errorf("code %d: %s", resp.Code, resp.Remark)
		}
		if t.client != nil {
			_ = t.client.Close()
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("unregister from %s: %w", t.addr, err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("unregister from %s: %w", t.addr, ctx.Err())
	}
}
