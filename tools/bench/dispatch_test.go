package bench

import (
	"context"
	"testing"
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
