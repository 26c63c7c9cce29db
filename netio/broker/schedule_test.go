package broker

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ringmq/ringmq/engine"
	"github.com/ringmq/ringmq/engine/meta"
	"github.com/ringmq/ringmq/engine/record"
	"github.com/ringmq/ringmq/flush/vfs"
	"github.com/ringmq/ringmq/netio/remoting"
)

func TestDueTime(t *testing.T) {
	for _, tc := range []struct {
		storeMs int64
		d       time.Duration
		want    time.Time
	}{
		{1000, 0, time.UnixMilli(1001)},
		{1000, time.Second, time.UnixMilli(2001)},
		{1_700_000_000_123, 2 * time.Hour, time.UnixMilli(1_700_000_000_124).Add(2 * time.Hour)},
	} {
		if got := dueTime(tc.storeMs, tc.d); !got.Equal(tc.want) {
			t.Errorf("dueTime(%d, %v) = %v, want %v", tc.storeMs, tc.d, got, tc.want)
		}
	}
}

// idleBroker is a broker on a fresh store whose background work (the delivery service
// among it) is not started, so a test can drive the scheduler's rounds itself. Every
// level of its table is an hour long.
func idleBroker(t testing.TB) *Broker {
	t.Helper()
	dir := t.TempDir()
	levels := make([]time.Duration, MaxDelayLevel)
	for i := range levels {
		levels[i] = time.Duration(i+1) * time.Hour
	}
	// The address is only stamped on records: the broker never listens.
	addr := netip.MustParseAddrPort("127.0.0.1:10911")
	store, err := engine.Open(engine.Config{Dir: dir, FS: vfs.OS{}, FlushMode: engine.SyncFlush, StoreHost: addr,
		Logger: quietLogger(), SegmentSizeBytes: 16 << 20, DelayLevels: levels})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	cfg := DefaultConfig()
	cfg.BrokerName, cfg.ListenAddr, cfg.StoreDir, cfg.FS, cfg.DelayLevels = "broker-a", addr.String(), dir, vfs.OS{}, levels
	b, err := New(cfg, store, quietLogger())
	if err != nil {
		store.Close()
		t.Fatalf("new broker: %v", err)
	}
	t.Cleanup(func() {
		if err := b.meta.Close(); err != nil {
			t.Errorf("close tables: %v", err)
		}
		if err := store.Close(); err != nil {
			t.Errorf("close store: %v", err)
		}
	})
	return b
}

// park appends n messages (bodies "<level>-<i>") for queue 0 of topic at level, as the
// send path parks them, and waits until they are durable and dispatched.
func park(t testing.TB, b *Broker, topic string, level, n int) {
	t.Helper()
	q := int32(level - 1)
	want := b.store.MaxOffset(TopicSchedule, q) + int64(n)
	var w putWaiter
	res := make([]engine.PutResult, n)
	for i := range n {
		p := record.AppendProperty(nil, record.PropDelay, strconv.Itoa(level))
		p = record.AppendProperty(p, record.PropRealTopic, topic)
		p = record.AppendProperty(p, record.PropRealQueueID, "0")
		m := engine.Message{Topic: TopicSchedule, QueueID: q, Body: fmt.Appendf(nil, "%d-%d", level, i), Properties: p}
		w.add()
		if err := b.store.Append(&m, &res[i], &w); err != nil {
			t.Fatalf("park %d at level %d: %v", i, level, err)
		}
	}
	if err := w.wait(); err != nil {
		t.Fatalf("park at level %d: %v", level, err)
	}
	waitFor(t, "parked messages dispatched", func() bool { return b.store.MaxOffset(TopicSchedule, q) >= want })
}

// delivered returns the bodies in queue 0 of topic, in queue order, once it holds n.
func delivered(t *testing.T, b *Broker, topic string, n int) []string {
	t.Helper()
	waitFor(t, fmt.Sprintf("%d messages in %s", n, topic), func() bool { return b.store.MaxOffset(topic, 0) >= int64(n) })
	var out []string
	var res engine.GetResult
	for offset := int64(0); offset < b.store.MaxOffset(topic, 0); {
		if err := b.store.GetMessages(topic, 0, offset, scheduleBatch, DefaultMaxPullBytes, nil, &res); err != nil || res.Status != engine.Found {
			res.Release()
			t.Fatalf("read %s at %d: %v (status %v)", topic, offset, err, res.Status)
		}
		for _, rec := range res.Records {
			v, err := record.Decode(rec)
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := record.Property(v.Properties(), record.PropDelay); ok {
				t.Errorf("%s delivered with DELAY", v.Body())
			}
			out = append(out, string(v.Body()))
			offset = v.QueueOffset() + 1
		}
		res.Release()
	}
	return out
}

// TestScheduleRound drives the delivery service's rounds by hand: nothing is delivered
// before its due time and the round says when the first one is; once due, each round
// delivers at most scheduleMaxPerRound of every level, so a backlog of 300 at level 1
// holds the 10 of level 2 and the 5 of level 3 back by scheduleMaxPerRound appends, not by
// the whole backlog; rounds go on while a level was cut off; each message arrives once, in
// its level's order, and the progress of each level is committed.
func TestScheduleRound(t *testing.T) {
	b := idleBroker(t)
	if _, err := b.ensureSystemTopic("FAIR", 1); err != nil {
		t.Fatal(err)
	}
	parkedAt := time.Now()
	counts := map[int]int{1: 300, 2: 10, 3: 5}
	for level := 1; level <= 3; level++ {
		park(t, b, "FAIR", level, counts[level])
	}
	s := b.sched

	next, more := s.round(time.Now())
	if more || b.store.MaxOffset("FAIR", 0) != 0 {
		t.Fatalf("a round before anything is due: more %v, %d delivered; want false, 0", more, b.store.MaxOffset("FAIR", 0))
	}
	// The first due time is an hour away: the round asks to be run again after the idle
	// re-check, and knows when level 1 is due.
	if lo, hi := time.Now(), time.Now().Add(scheduleMaxIdle); next.Before(lo.Add(scheduleMaxIdle-time.Second/2)) || next.After(hi) {
		t.Fatalf("next round at %v, want about %v from now", next, scheduleMaxIdle)
	}
	if due, lo, hi := s.lv[0].nextDue, parkedAt.Add(time.Hour), time.Now().Add(time.Hour+time.Millisecond); due.Before(lo) || due.After(hi) {
		t.Fatalf("level 1 due at %v, want the first message's store time + 1 ms + 1 h, in [%v, %v]", due, lo, hi)
	}

	later := time.Now().Add(4 * time.Hour)
	if _, more = s.round(later); !more {
		t.Fatal("a round that cut level 1 off: more = false, want true")
	}
	got := delivered(t, b, "FAIR", scheduleMaxPerRound+10+5)
	if n := len(got); n != scheduleMaxPerRound+10+5 {
		t.Fatalf("after one due round: %d delivered, want %d (%d of level 1, all of levels 2 and 3)", n, scheduleMaxPerRound+15, scheduleMaxPerRound)
	}
	rounds := 1
	for more && rounds < 10 {
		_, more = s.round(later)
		rounds++
	}
	if more {
		t.Fatalf("still more after %d rounds", rounds)
	}
	got = delivered(t, b, "FAIR", 315)
	perLevel := map[int]int{}
	for _, body := range got {
		var level, i int
		if _, err := fmt.Sscanf(body, "%d-%d", &level, &i); err != nil {
			t.Fatalf("body %q: %v", body, err)
		}
		if i != perLevel[level] {
			t.Fatalf("level %d: got message %d, want %d (each once, in order)", level, i, perLevel[level])
		}
		perLevel[level]++
	}
	for level, n := range counts {
		if perLevel[level] != n {
			t.Errorf("level %d: %d delivered, want %d", level, perLevel[level], n)
		}
		if off, _ := b.meta.QueryOffset(TopicSchedule, scheduleProgressGroup, int32(level-1)); off != int64(n) {
			t.Errorf("level %d: progress %d, want %d", level, off, n)
		}
	}
	if len(got) != 315 {
		t.Errorf("%d delivered in all, want 315", len(got))
	}
}

// BenchmarkScheduleRound measures one round of the delivery service. "due" rounds
// deliver scheduleMaxPerRound messages at each of the first levels-many levels,
// SYNC_FLUSH, so an op includes the round's one durability wait; parking the next batch
// is not timed. "idle" rounds find a message pending at every level of the table and not
// yet due: the cost of the wake-up each parked message causes.
func BenchmarkScheduleRound(b *testing.B) {
	for _, levels := range []int{1, 4, MaxDelayLevel} {
		b.Run(fmt.Sprintf("due/levels=%d", levels), func(b *testing.B) {
			br := idleBroker(b)
			if _, err := br.ensureSystemTopic("BENCH", 1); err != nil {
				b.Fatal(err)
			}
			later := time.Now().Add(48 * time.Hour)
			b.ReportAllocs()
			for b.Loop() {
				b.StopTimer()
				for level := 1; level <= levels; level++ {
					park(b, br, "BENCH", level, scheduleMaxPerRound)
				}
				b.StartTimer()
				if _, more := br.sched.round(later); !more {
					b.Fatal("a round cut off at scheduleMaxPerRound: more = false")
				}
			}
			b.ReportMetric(float64(b.N*levels*scheduleMaxPerRound)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
	b.Run("idle", func(b *testing.B) {
		br := idleBroker(b)
		if _, err := br.ensureSystemTopic("BENCH", 1); err != nil {
			b.Fatal(err)
		}
		for level := 1; level <= MaxDelayLevel; level++ {
			park(b, br, "BENCH", level, 1)
		}
		now := time.Now()
		br.sched.round(now) // learns every level's due time
		b.ReportAllocs()
		for b.Loop() {
			br.sched.round(now)
		}
	})
}

// The load of TestDelayedDeliveryP99: delayLoadMessages messages parked at once over
// delayLoadLevelsUsed levels (the first of which is delayLoadFirst long, each next one
// delayLoadStep longer), sent by delayLoadSenders connections to delayLoadQueues queues.
const (
	delayLoadLevelsUsed = 4
	delayLoadFirst      = 4 * time.Second
	delayLoadStep       = 500 * time.Millisecond
	delayLoadSenders    = 8
	delayLoadQueues     = 4
	delayLoadP99        = 100 * time.Millisecond
)

// delayLoadBound is the p99 the test holds the delivery service to: the goal, or under
// the race detector (which slows every goroutine several times, and runs beside the other
// packages' tests in make test) a bound that still catches a service that sleeps a round
// or waits for its idle re-check; the goal itself is held by tools/compat's
// TestDelayP99UnderLoad, run alone.
func delayLoadBound() time.Duration {
	if raceEnabled {
		return 5 * delayLoadP99
	}
	return delayLoadP99
}

// delayLoadMessages is 10k; the race detector makes sends several times slower, so it
// parks fewer there (all must be parked before the first is due).
func delayLoadMessages() int {
	if raceEnabled {
		return 2000
	}
	return 10000
}

func delayLoadTable(c *Config, e *engine.Config) {
	levels := make([]time.Duration, MaxDelayLevel)
	for i := range levels {
		levels[i] = delayLoadFirst + time.Duration(i)*delayLoadStep
	}
	c.DelayLevels, e.DelayLevels = levels, levels
}

// TestDelayedDeliveryP99: 10,000 delayed messages spread over four levels (4-5.5 s), all
// parked before the first is due, each arrive in their real queue exactly once, not
// before their store time + 1 ms + the level's delay, and at most 100 ms after store
// time + delay at p99. Arrival is when a held pull on the real queue (one connection per
// queue) is answered with the message; the store time is the parked record's, read from
// SCHEDULE_TOPIC_XXXX afterwards.
func TestDelayedDeliveryP99(t *testing.T) {
	tb := startBroker(t, "", nil, delayLoadTable)
	createTopic(t, tb.dial(nil), "DLOAD", delayLoadQueues, meta.PermRW)
	n := delayLoadMessages()
	var pullers sync.WaitGroup
	arrivals := make([][]arrival, delayLoadQueues)
	pullErrs := make([]error, delayLoadQueues)
	ctx, cancel := context.WithTimeout(context.Background(), delayLoadFirst+time.Duration(delayLoadLevelsUsed)*delayLoadStep+30*time.Second)
	defer cancel()
	for q := range delayLoadQueues {
		c := tb.dial(nil)
		want := n / delayLoadQueues
		if q < n%delayLoadQueues {
			want++
		}
		pullers.Go(func() { arrivals[q], pullErrs[q] = pullArrivals(ctx, c, "DLOAD", q, want) })
	}

	acked, lastAck, err := sendParked(tb, "DLOAD", n)
	if err != nil {
		cancel()
		pullers.Wait()
		t.Fatal(err)
	}
	pullers.Wait()
	for q, err := range pullErrs {
		if err != nil {
			t.Fatalf("queue %d: %v", q, err)
		}
	}

	stored := parkedStoreTimes(t, tb, n)
	seen := make([]bool, n)
	var late []time.Duration
	firstDue := time.Time{}
	for _, a := range slices.Concat(arrivals...) {
		if seen[a.i] {
			t.Errorf("message %d arrived twice", a.i)
			continue
		}
		seen[a.i] = true
		st, ok := stored[a.i]
		if !ok {
			t.Fatalf("message %d has no parked record", a.i)
		}
		due := time.UnixMilli(st.storeMs).Add(st.delay)
		if firstDue.IsZero() || due.Before(firstDue) {
			firstDue = due
		}
		if a.at.Before(dueTime(st.storeMs, st.delay)) {
			t.Errorf("message %d arrived %v before its due time", a.i, dueTime(st.storeMs, st.delay).Sub(a.at))
		}
		late = append(late, a.at.Sub(due))
	}
	for i, ok := range seen {
		if !ok {
			t.Errorf("message %d never arrived", i)
		}
	}
	if !lastAck.Before(firstDue) {
		t.Fatalf("the %d sends ended %v after the first message was due: they were not all parked at once", acked, lastAck.Sub(firstDue))
	}
	p50, p99, worst := quantile(late, 0.5), quantile(late, 0.99), quantile(late, 1)
	t.Logf("%d delayed messages over %d levels: arrival - (store time + delay) p50 %v, p99 %v, max %v; the last ack %v before the first due time",
		len(late), delayLoadLevelsUsed, p50, p99, worst, firstDue.Sub(lastAck).Round(time.Millisecond))
	if p99 > delayLoadBound() {
		t.Errorf("p99 lateness %v, want <= %v", p99, delayLoadBound())
	}
}

// arrival is message i seen by a held pull at time at.
type arrival struct {
	i  int
	at time.Time
}

// pullArrivals pulls queue q of topic from offset 0 with held pulls until want messages
// arrived, and returns them with the time their pull was answered.
func pullArrivals(ctx context.Context, c *remoting.Client, topic string, q, want int) ([]arrival, error) {
	out := make([]arrival, 0, want)
	offset := int64(0)
	for len(out) < want {
		resp, err := c.Invoke(ctx, remoting.ReqPullMessage, ext(
			"consumerGroup", "delay-load", "topic", topic, "queueId", strconv.Itoa(q),
			"queueOffset", strconv.FormatInt(offset, 10), "maxMsgNums", "32",
			"sysFlag", strconv.Itoa(pullSuspend), "commitOffset", "0", "suspendTimeoutMillis", "1000",
			"subscription", "*", "subVersion", "0", "expressionType", "TAG"), nil)
		at := time.Now()
		if err != nil {
			return out, fmt.Errorf("pull at offset %d after %d of %d messages: %w", offset, len(out), want, err)
		}
		switch resp.Code {
		case remoting.RespSuccess:
		case remoting.RespPullNotFound, remoting.RespPullRetryImmediately:
			continue
		default:
			return out, fmt.Errorf("pull at offset %d: code %d (%s)", offset, resp.Code, resp.Remark)
		}
		for body := resp.Body; len(body) > 0; {
			v, err := record.Decode(body)
			if err != nil {
				return out, fmt.Errorf("pull at offset %d: %w", offset, err)
			}
			body = body[v.TotalSize():]
			i, err := strconv.Atoi(string(v.Body()))
			if err != nil {
				return out, fmt.Errorf("pull at offset %d: body %q: %w", offset, v.Body(), err)
			}
			out = append(out, arrival{i: i, at: at})
			offset = v.QueueOffset() + 1
		}
	}
	return out, nil
}

// sendParked sends messages 0..n-1 (body: the decimal index) to queue i % delayLoadQueues
// of topic, at level 1 + i % delayLoadLevelsUsed, from delayLoadSenders connections. It
// returns how many were acked and when the last ack came.
func sendParked(tb *testBroker, topic string, n int) (int, time.Time, error) {
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		acked   int
		lastAck time.Time
		errs    []error
	)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for w := range delayLoadSenders {
		c := tb.dial(nil)
		wg.Go(func() {
			for i := w; i < n; i += delayLoadSenders {
				level := 1 + i%delayLoadLevelsUsed
				resp, err := c.Invoke(ctx, remoting.ReqSendMessage, ext(
					"producerGroup", "pg", "topic", topic, "queueId", strconv.Itoa(i%delayLoadQueues), "sysFlag", "0",
					"bornTimestamp", strconv.FormatInt(time.Now().UnixMilli(), 10), "flag", "0",
					"properties", props("DELAY", strconv.Itoa(level)), "reconsumeTimes", "0", "unitMode", "false",
					"maxReconsumeTimes", "0", "batch", "false"), []byte(strconv.Itoa(i)))
				if err == nil && resp.Code != remoting.RespSuccess {
					err = fmt.Errorf("code %d (%s)", resp.Code, resp.Remark)
				}
				mu.Lock()
				if err != nil {
					errs = append(errs, fmt.Errorf("send %d: %w", i, err))
				} else {
					acked++
					lastAck = time.Now()
				}
				mu.Unlock()
				if err != nil {
					return
				}
			}
		})
	}
	wg.Wait()
	return acked, lastAck, errors.Join(errs...)
}

// parked is a message's parked record: its store time and its level's delay.
type parked struct {
	storeMs int64
	delay   time.Duration
}

// parkedStoreTimes reads the n parked records back from SCHEDULE_TOPIC_XXXX, by index.
func parkedStoreTimes(t *testing.T, tb *testBroker, n int) map[int]parked {
	t.Helper()
	out := make(map[int]parked, n)
	var res engine.GetResult
	for level := 1; level <= delayLoadLevelsUsed; level++ {
		q := int32(level - 1)
		for offset := tb.store.MinOffset(TopicSchedule, q); offset < tb.store.MaxOffset(TopicSchedule, q); {
			if err := tb.store.GetMessages(TopicSchedule, q, offset, scheduleBatch, DefaultMaxPullBytes, nil, &res); err != nil || res.Status != engine.Found {
				res.Release()
				t.Fatalf("read parked level %d at %d: %v (status %v)", level, offset, err, res.Status)
			}
			for _, rec := range res.Records {
				v, err := record.Decode(rec)
				if err != nil {
					t.Fatalf("parked level %d: %v", level, err)
				}
				i, err := strconv.Atoi(string(v.Body()))
				if err != nil {
					t.Fatalf("parked level %d: body %q", level, v.Body())
				}
				out[i] = parked{storeMs: v.StoreTimestampMs(), delay: tb.cfg.DelayLevels[level-1]}
				offset = v.QueueOffset() + 1
			}
			res.Release()
		}
	}
	if len(out) != n {
		t.Fatalf("%d parked records, want %d", len(out), n)
	}
	return out
}

// quantile returns the q-quantile (0..1, nearest rank) of ds, sorting ds.
func quantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	return ds[max(0, min(len(ds)-1, int(math.Ceil(q*float64(len(ds))))-1))]
}
