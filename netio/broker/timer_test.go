package broker

import (
	"cmp"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ringmq/ringmq/engine"
	"github.com/ringmq/ringmq/engine/meta"
	"github.com/ringmq/ringmq/engine/record"
	"github.com/ringmq/ringmq/engine/timer"
	"github.com/ringmq/ringmq/flush/vfs"
	"github.com/ringmq/ringmq/internal/testkit"
	"github.com/ringmq/ringmq/netio/remoting"
)

// shortTimer: a 10 s horizon at 100 ms slots, so the wheel file is small.
func shortTimer(c *Config, _ *engine.Config) {
	c.TimerMaxDelay, c.TimerPrecision = 10*time.Second, 100*time.Millisecond
}

// timerSend is one message sent with a timer property and when it is due.
// A relative one (relMs > 0) is due relMs after the broker received it: between sentMs
// and ackMs plus relMs.
type timerSend struct {
	key           string
	props         string
	due           int64 // absolute ones
	relMs         int64
	sentMs, ackMs int64
}

// timerSends returns one message per way of giving the time, all due about d from now.
func timerSends(d time.Duration, tag string) []timerSend {
	now := time.Now().UnixMilli()
	ms := d.Milliseconds()
	sec := (ms + 999) / 1000
	return []timerSend{
		{key: tag + "-deliver", props: props("UNIQ_KEY", tag+"-deliver", propTimerDeliverMs, strconv.FormatInt(now+ms, 10)), due: now + ms},
		{key: tag + "-delay-ms", props: props("UNIQ_KEY", tag+"-delay-ms", propTimerDelayMs, strconv.FormatInt(ms+100, 10)), relMs: ms + 100},
		{key: tag + "-delay-sec", props: props("UNIQ_KEY", tag+"-delay-sec", propTimerDelaySec, strconv.FormatInt(sec, 10)), relMs: sec * 1000},
	}
}

// pullDelivered pulls queue 0 of topic until n messages came and returns them by
// UNIQ_KEY.
func pullDelivered(t *testing.T, c *remoting.Client, topic string, n int) map[string]record.View {
	t.Helper()
	got := map[string]record.View{}
	deadline := time.Now().Add(15 * time.Second)
	offset := int64(0)
	for len(got) < n && time.Now().Before(deadline) {
		resp := pullWait(t, c, pullOpts{group: "g", topic: topic, offset: offset})
		if resp.Code != remoting.RespSuccess {
			continue
		}
		for _, v := range records(t, resp.Body) {
			uk, _ := v.Property(record.PropUniqKey)
			if _, dup := got[string(uk)]; dup {
				t.Fatalf("%s delivered twice", uk)
			}
			got[string(uk)] = v
			offset = v.QueueOffset() + 1
		}
	}
	if len(got) != n {
		t.Fatalf("%d of %d timer messages delivered within 15 s", len(got), n)
	}
	return got
}

// checkTimerDelivered checks each delivery against its send: stored not before its due
// time (the re-put's store timestamp), with the client's properties and UNIQ_KEY, and
// without the broker's TIMER_OUT_MS.
func checkTimerDelivered(t *testing.T, sends []timerSend, got map[string]record.View) {
	t.Helper()
	for _, s := range sends {
		v, ok := got[s.key]
		if !ok {
			t.Fatalf("%s not delivered", s.key)
		}
		p := v.Properties()
		if _, ok := record.Property(p, propTimerOutMs); ok {
			t.Errorf("%s delivered with TIMER_OUT_MS: %q", s.key, p)
		}
		raw, _ := record.Property(p, propTimerDeliverMs)
		due, err := strconv.ParseInt(string(raw), 10, 64)
		lo, hi := s.due, s.due
		if s.relMs > 0 {
			lo, hi = s.sentMs+s.relMs, s.ackMs+s.relMs
		}
		if err != nil || due < lo || due > hi {
			t.Errorf("%s delivered with TIMER_DELIVER_MS %q, want %d..%d", s.key, raw, lo, hi)
			continue
		}
		if st := v.StoreTimestampMs(); st < due {
			t.Errorf("%s stored at %d, %d ms before its due time", s.key, st, due-st)
		} else {
			t.Logf("%s stored %d ms after its due time", s.key, st-due)
		}
		if string(v.Body()) != "body-"+s.key {
			t.Errorf("%s body %q", s.key, v.Body())
		}
	}
}

func sendTimers(t *testing.T, c *remoting.Client, topic string, sends []timerSend) {
	t.Helper()
	for i := range sends {
		s := &sends[i]
		s.sentMs = time.Now().UnixMilli()
		wantCode(t, sendV1(t, c, topic, 0, s.props, []byte("body-"+s.key)), remoting.RespSuccess)
		s.ackMs = time.Now().UnixMilli()
	}
}

// Each way of giving the time parks the message in rmq_sys_wheel_timer, invisible on its
// topic, and it is delivered there, once, not before its due time.
func TestTimerSendParksAndDelivers(t *testing.T) {
	tb := startBroker(t, "", nil, shortTimer)
	c := tb.dial(nil)
	createTopic(t, c, "TM", 1, meta.PermRW)
	sends := timerSends(700*time.Millisecond, "a")
	sendTimers(t, c, "TM", sends)
	tb.waitDispatched(TopicTimer, 0, int64(len(sends)))
	if n := tb.store.MaxOffset("TM", 0); n != 0 {
		t.Fatalf("TM holds %d messages before any is due", n)
	}
	got := pullDelivered(t, c, "TM", len(sends))
	checkTimerDelivered(t, sends, got)
	if rt, _ := got["a-deliver"].Property(record.PropRealTopic); string(rt) != "TM" {
		t.Errorf("REAL_TOPIC %q", rt)
	}
}

// A delay past timerMaxDelaySec, a time that is not a number and a disabled wheel are
// MESSAGE_ILLEGAL, and nothing is stored.
func TestTimerRefused(t *testing.T) {
	tb := startBroker(t, "", nil, shortTimer)
	c := tb.dial(nil)
	createTopic(t, c, "TR", 1, meta.PermRW)
	far := strconv.FormatInt(time.Now().Add(11*time.Second).UnixMilli(), 10)
	for _, tc := range []struct{ props, remark string }{
		{props(propTimerDeliverMs, far), "max delay 10000ms"},
		{props(propTimerDelaySec, "11"), "max delay 10000ms"},
		{props(propTimerDelayMs, "10001"), "max delay 10000ms"},
		{props(propTimerDelaySec, "soon"), "not a number"},
	} {
		resp := sendV1(t, c, "TR", 0, tc.props, []byte("x"))
		wantCode(t, resp, remoting.RespMessageIllegal)
		if !strings.Contains(string(resp.Remark), tc.remark) {
			t.Errorf("remark %q, want it to say %q", resp.Remark, tc.remark)
		}
	}
	// One accepted message after the refusals: the only one stored.
	wantCode(t, sendV1(t, c, "TR", 0, props("UNIQ_KEY", "ok"), []byte("x")), remoting.RespSuccess)
	tb.waitDispatched("TR", 0, 1)
	if n, p := tb.store.MaxOffset("TR", 0), tb.store.MaxOffset(TopicTimer, 0); n != 1 || p != 0 {
		t.Fatalf("after the refusals TR holds %d and the timer topic %d, want 1 and 0", n, p)
	}

	off := startBroker(t, "", nil, shortTimer, func(c *Config, _ *engine.Config) { c.TimerWheelEnable = false })
	c2 := off.dial(nil)
	createTopic(t, c2, "TR", 1, meta.PermRW)
	resp := sendV1(t, c2, "TR", 0, props(propTimerDelaySec, "1"), []byte("x"))
	wantCode(t, resp, remoting.RespMessageIllegal)
	if !strings.Contains(string(resp.Remark), "timerWheelEnable is false") {
		t.Errorf("remark %q", resp.Remark)
	}
}

// A due time now or past is stored on its topic at once; a delay level wins over the
// timer properties, which are dropped.
func TestTimerPastAndDelayLevel(t *testing.T) {
	tb := startBroker(t, "", nil, shortTimer)
	c := tb.dial(nil)
	createTopic(t, c, "TP", 1, meta.PermRW)
	past := strconv.FormatInt(time.Now().Add(-time.Second).UnixMilli(), 10)
	wantCode(t, sendV1(t, c, "TP", 0, props(propTimerDeliverMs, past), []byte("now")), remoting.RespSuccess)
	recs := records(t, pullWait(t, c, pullOpts{group: "g", topic: "TP"}).Body)
	if len(recs) != 1 || string(recs[0].Body()) != "now" {
		t.Fatalf("past due time: %d records on the topic", len(recs))
	}

	soon := strconv.FormatInt(time.Now().Add(5*time.Second).UnixMilli(), 10)
	wantCode(t, sendV1(t, c, "TP", 0, props("DELAY", "1", propTimerDeliverMs, soon, propTimerDelaySec, "3"), []byte("level")), remoting.RespSuccess)
	tb.waitDispatched(TopicSchedule, 0, 1)
	recs = records(t, pullWait(t, c, pullOpts{group: "g", topic: TopicSchedule}).Body)
	if len(recs) != 1 {
		t.Fatalf("delay level: %d records in %s queue 0", len(recs), TopicSchedule)
	}
	for _, k := range []string{propTimerDeliverMs, propTimerDelaySec, propTimerOutMs} {
		if v, ok := recs[0].Property(k); ok {
			t.Errorf("delay-level message stored with %s=%s", k, v)
		}
	}
	if n := tb.store.MaxOffset(TopicTimer, 0); n != 0 {
		t.Errorf("the timer topic holds %d messages", n)
	}
}

// Timer messages pending across a clean restart and across a crash (only what was
// synced survives) are all delivered after it, once, not before their time.
func TestTimerSurvivesRestart(t *testing.T) {
	t.Run("shutdown", func(t *testing.T) {
		dir := t.TempDir()
		tb := startBroker(t, dir, nil, shortTimer)
		c := tb.dial(nil)
		createTopic(t, c, "TS", 1, meta.PermRW)
		sends := timerSends(1500*time.Millisecond, "s")
		sendTimers(t, c, "TS", sends)
		tb.waitDispatched(TopicTimer, 0, int64(len(sends)))
		tb.stop()
		tb2 := startBroker(t, dir, nil, shortTimer)
		checkTimerDelivered(t, sends, pullDelivered(t, tb2.dial(nil), "TS", len(sends)))
	})
	t.Run("down past the due time", func(t *testing.T) {
		// Every slot missed while down is read at once at the start, and delivered then.
		dir := t.TempDir()
		tb := startBroker(t, dir, nil, shortTimer)
		c := tb.dial(nil)
		createTopic(t, c, "TS", 1, meta.PermRW)
		sends := timerSends(500*time.Millisecond, "d")
		sendTimers(t, c, "TS", sends)
		tb.waitDispatched(TopicTimer, 0, int64(len(sends)))
		tb.stop()
		<-time.After(2 * time.Second) // the broker is down when they come due
		started := time.Now().UnixMilli()
		tb2 := startBroker(t, dir, nil, shortTimer)
		got := pullDelivered(t, tb2.dial(nil), "TS", len(sends))
		checkTimerDelivered(t, sends, got)
		for k, v := range got {
			if late := v.StoreTimestampMs() - started; late > 1000 {
				t.Errorf("%s delivered %d ms after the restart, want at once", k, late)
			}
		}
	})
	t.Run("crash", func(t *testing.T) {
		mem := vfs.NewMem()
		tb := startBroker(t, "/store", mem, shortTimer)
		c := tb.dial(nil)
		createTopic(t, c, "TS", 1, meta.PermRW)
		sends := timerSends(1500*time.Millisecond, "k")
		sendTimers(t, c, "TS", sends)
		crashed := mem.Crash() // the acks came after fdatasync: the parked messages are in it
		tb2 := startBroker(t, "/store", crashed, shortTimer)
		checkTimerDelivered(t, sends, pullDelivered(t, tb2.dial(nil), "TS", len(sends)))
	})
}

// The heap pops by due time, then queue offset, whatever the push order.
func TestTimerHeapOrder(t *testing.T) {
	var h timerHeap
	var want []timer.Entry
	for i := range 500 {
		e := timer.Entry{DeliverMs: int64((i * 7919) % 97), QueueOffset: int64((i * 104729) % 500)}
		h.push(e)
		want = append(want, e)
		if i%7 == 0 { // interleave pops with pushes
			want = slices.DeleteFunc(want, func(x timer.Entry) bool { return x == h[0] })
			h.pop()
		}
	}
	slices.SortFunc(want, func(a, b timer.Entry) int {
		return cmp.Or(cmp.Compare(a.DeliverMs, b.DeliverMs), cmp.Compare(a.QueueOffset, b.QueueOffset))
	})
	for i, w := range want {
		if got := h.pop(); got != w {
			t.Fatalf("pop %d: got %+v, want %+v", i, got, w)
		}
	}
	if len(h) != 0 {
		t.Fatalf("%d entries left", len(h))
	}
}

// A crash at a random moment while timer messages are being linked and delivered loses
// none: after the restart every acknowledged one is on its topic at least once (a re-put
// whose progress was not yet committed may come twice), none stored before its due time.
// The crash point fails every later write and fsync first, so that the copy of the
// durable state (file by file) is one a single instant could have left. Replay a crash
// point with RINGMQ_SEED.
func TestTimerCrashWhileDelivering(t *testing.T) {
	seed := testkit.Seed(t)
	rng := rand.New(rand.NewPCG(seed, seed^0x5eed))
	for cycle := range 3 {
		mem := vfs.NewMem()
		in := vfs.NewInjector()
		tb := startBroker(t, "/store", vfs.NewFaulty(mem, in), shortTimer)
		c := tb.dial(nil)
		createTopic(t, c, "TC", 1, meta.PermRW)
		due := map[string]int64{}
		for i := range 40 {
			key := "c" + strconv.Itoa(cycle) + "-" + strconv.Itoa(i)
			deliver := time.Now().Add(time.Duration(200+rng.IntN(1200)) * time.Millisecond).UnixMilli()
			wantCode(t, sendV1(t, c, "TC", 0, props("UNIQ_KEY", key, propTimerDeliverMs, strconv.FormatInt(deliver, 10)), []byte(key)), remoting.RespSuccess)
			due[key] = deliver
		}
		<-time.After(time.Duration(rng.IntN(1500)) * time.Millisecond) // the crash point
		for _, op := range []vfs.Op{vfs.OpWrite, vfs.OpSync, vfs.OpSyncDir, vfs.OpCreate, vfs.OpRename} {
			in.Add(vfs.Rule{Op: op, Err: syscall.EIO})
		}
		crashed := mem.CrashKeeping(rng.Uint64())
		tb2 := startBroker(t, "/store", crashed, shortTimer)
		c2 := tb2.dial(nil)
		seen := map[string]int{}
		deadline := time.Now().Add(15 * time.Second)
		for offset := int64(0); len(seen) < len(due) && time.Now().Before(deadline); {
			resp := pullWait(t, c2, pullOpts{group: "g", topic: "TC", offset: offset})
			if resp.Code != remoting.RespSuccess {
				continue
			}
			for _, v := range records(t, resp.Body) {
				key := string(v.Body())
				if v.StoreTimestampMs() < due[key] {
					t.Errorf("cycle %d (seed %d): %s stored %d ms before its due time", cycle, seed, key, due[key]-v.StoreTimestampMs())
				}
				seen[key]++
				offset = v.QueueOffset() + 1
			}
		}
		for key := range due {
			if seen[key] == 0 {
				t.Fatalf("cycle %d (seed %d): acknowledged timer message %s lost in the crash", cycle, seed, key)
			}
		}
		tb2.stop()
		in.Reset()            // the first broker's shutdown writes its tables again
		tb.storeFailed = true // its store saw the injected fsync failures
		tb.stop()
	}
}

// Timer messages whose topic was deleted before they came due are dropped and count as
// delivered: delivery goes on (the batches they were in come back) and later ones arrive.
func TestTimerDroppedDoNotStall(t *testing.T) {
	tb := startBroker(t, "", nil, shortTimer)
	c := tb.dial(nil)
	createTopic(t, c, "TX", 1, meta.PermRW)
	createTopic(t, c, "TY", 1, meta.PermRW)
	now := time.Now()
	for i := range 2 * timerMaxInFlight {
		at := now.Add(time.Duration(300+40*i) * time.Millisecond).UnixMilli()
		wantCode(t, sendV1(t, c, "TX", 0, props(propTimerDeliverMs, strconv.FormatInt(at, 10)), []byte("gone")), remoting.RespSuccess)
	}
	wantCode(t, invoke(t, c, remoting.ReqDeleteTopicInBroker, ext("topic", "TX"), nil), remoting.RespSuccess)
	sends := []timerSend{{key: "y", props: props("UNIQ_KEY", "y", propTimerDeliverMs, strconv.FormatInt(now.Add(1500*time.Millisecond).UnixMilli(), 10)), due: now.Add(1500 * time.Millisecond).UnixMilli()}}
	sendTimers(t, c, "TY", sends)
	checkTimerDelivered(t, sends, pullDelivered(t, c, "TY", 1))
}
