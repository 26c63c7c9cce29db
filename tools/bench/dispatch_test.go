package bench

import (
	"context"
	"runtime"
	"testing"
	"time"
)

// newTestRun sets up a run of w on the named driver without pacing it.
func newTestRun(t testing.TB, w *Workload, driver string) *run {
	t.Helper()
	ctx := context.Background()
	d, err := OpenDriver(ctx, driver, DriverOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	r, err := newRun(Config{Workload: w, Driver: d, Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.CreateTopics(ctx, r.topics, w.PartitionsPerTopic); err != nil {
		t.Fatal(err)
	}
	if err := r.startConsumers(ctx); err != nil {
		t.Fatal(err)
	}
	if err := r.openProducers(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.closeClients)
	return r
}

// TestDispatchAllocs: the generator's per-message path (slot, key, payload stamp, send,
// delay recording; and with null-inproc, the ack and consume recording) allocates nothing.
func TestDispatchAllocs(t *testing.T) {
	r := newTestRun(t, testWorkload(t), "null-inproc")
	i := uint64(0)
	allocs := testing.AllocsPerRun(2000, func() {
		r.dispatch(i, MonoNowNs())
		i++
	})
	if allocs != 0 {
		t.Fatalf("dispatch allocates %.2f times per message, want 0", allocs)
	}
}

// TestAckPathAllocs: the responder's side of null-inproc (ack, consume hand-off) and the
// generator's ack and consume recording allocate nothing either. AllocsPerRun cannot see
// them (it runs with one P, so the responder only runs afterwards): this counts every
// allocation of the process until all messages are acked and consumed. Garbage here is a
// GC cycle every few seconds, and a GC's stop-the-world holds the pacer's return from its
// sleep.
func TestAckPathAllocs(t *testing.T) {
	r := newTestRun(t, testWorkload(t), "null-inproc")
	const n = 4000
	settle := func(want int64) {
		deadline := time.Now().Add(10 * time.Second)
		for r.acked.Load() < want || r.received.Load() < want {
			if time.Now().After(deadline) {
				t.Fatalf("acked %d received %d, want %d", r.acked.Load(), r.received.Load(), want)
			}
			runtime.Gosched()
		}
	}
	for i := uint64(0); i < 100; i++ { // warm up: first sends may grow internal buffers
		r.dispatch(i, MonoNowNs())
	}
	settle(100)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for i := uint64(100); i < 100+n; i++ {
		r.dispatch(i, MonoNowNs())
	}
	settle(100 + n)
	runtime.ReadMemStats(&after)
	allocs := after.Mallocs - before.Mallocs
	t.Logf("%d allocations for %d messages", allocs, n)
	if allocs > n/100 {
		t.Fatalf("%d messages sent, acked and consumed made %d allocations, want none per message", n, allocs)
	}
}

// BenchmarkDispatch is the generator's CPU cost per message, without pacing, against
// the in-process responder.
func BenchmarkDispatch(b *testing.B) {
	w, err := ParseWorkload([]byte(validYAML))
	if err != nil {
		b.Fatal(err)
	}
	r := newTestRun(b, w, "null-inproc")
	b.ReportAllocs()
	b.SetBytes(int64(w.MessageSize))
	i := uint64(0)
	for b.Loop() {
		r.dispatch(i, MonoNowNs())
		i++
	}
}
