package perf

import (
	"errors"
	"sync"
	"time"
)

// loopState is the recorder's background goroutine: it closes an interval every Interval and
// gathers evidence for new slow requests every evidencePoll.
type loopState struct {
	mu struct {
		sync.Mutex
		started, closed bool
	}
	stop chan struct{}
	done chan struct{}
}

// Start launches the goroutine that closes intervals and gathers evidence. Call it once.
func (r *Recorder) Start() {
	r.loop.mu.Lock()
	defer r.loop.mu.Unlock()
	if r.loop.mu.started || r.loop.mu.closed {
		panic("BUG: perf: Recorder.Start called twice or after Close")
	}
	r.loop.mu.started = true
	r.loop.stop = make(chan struct{})
	r.loop.done = make(chan struct{})
	go r.run(r.loop.stop, r.loop.done)
}

func (r *Recorder) run(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	rotate := time.NewTicker(r.cfg.Interval)
	defer rotate.Stop()
	evidence := time.NewTicker(evidencePoll)
	defer evidence.Stop()
	for {
		select {
		case <-stop:
			return
		case <-rotate.C:
			r.Rotate()
		case <-evidence.C:
			r.CollectEvidence()
		}
	}
}

// Close stops the background goroutine, writes the last (partial) interval to the hdr log and
// closes it. It returns the log's first error, if any. Recording keeps working after Close.
func (r *Recorder) Close() error {
	r.loop.mu.Lock()
	if r.loop.mu.closed {
		r.loop.mu.Unlock()
		return errors.New("perf: Recorder closed twice")
	}
	r.loop.mu.closed = true
	started := r.loop.mu.started
	r.loop.mu.Unlock()
	if started {
		close(r.loop.stop)
		<-r.loop.done
	}
	r.CollectEvidence()
	r.Rotate()
	return r.closeHdrLog()
}
