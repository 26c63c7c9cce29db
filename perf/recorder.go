package perf

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// SLO thresholds of the design: 99.6% of durable sends acked within 1 ms, 99.996% within 10 ms.
const (
	SLOFastNs = 1_000_000  // 1 ms
	SLOSlowNs = 10_000_000 // 10 ms
)

// Limits on the configuration.
const (
	maxSlowLogSize     = 1 << 16
	maxWindowIntervals = 8640 // one day of 10 s intervals
	minInterval        = time.Millisecond
)

// RecorderConfig configures a Recorder. The zero value gives the defaults.
type RecorderConfig struct {
	// SlowThreshold is the end-to-end latency above which a request goes to the slow-request
	// log. Default 1 ms.
	SlowThreshold time.Duration
	// SlowLogSize is the number of slow requests kept (the most recent ones). Default 1000,
	// at most 65536.
	SlowLogSize int
	// Interval is the length of one interval histogram. Default 10 s.
	Interval time.Duration
	// WindowIntervals is the number of closed intervals kept for windowed reports. Default 60
	// (10 min at 10 s), at most 8640.
	WindowIntervals int
	// HdrLogMaxBytes bounds the interval log (OpenHdrLog): past it the file is renamed to
	// PATH.1 (replacing the previous one) and a new PATH is started, so the log never takes
	// more than about twice this. Default 256 MiB, at least 1 KiB.
	HdrLogMaxBytes int64
}

func (c RecorderConfig) withDefaults() RecorderConfig {
	if c.SlowThreshold == 0 {
		c.SlowThreshold = time.Millisecond
	}
	if c.SlowLogSize == 0 {
		c.SlowLogSize = 1000
	}
	if c.Interval == 0 {
		c.Interval = 10 * time.Second
	}
	if c.WindowIntervals == 0 {
		c.WindowIntervals = 60
	}
	if c.HdrLogMaxBytes == 0 {
		c.HdrLogMaxBytes = 256 << 20
	}
	return c
}

func (c RecorderConfig) validate() error {
	switch {
	case c.SlowThreshold < 0:
		return fmt.Errorf("SlowThreshold %v is negative", c.SlowThreshold)
	case c.SlowLogSize < 1 || c.SlowLogSize > maxSlowLogSize:
		return fmt.Errorf("SlowLogSize %d outside [1, %d]", c.SlowLogSize, maxSlowLogSize)
	case c.Interval < minInterval:
		return fmt.Errorf("Interval %v below %v", c.Interval, minInterval)
	case c.WindowIntervals < 1 || c.WindowIntervals > maxWindowIntervals:
		return fmt.Errorf("WindowIntervals %d outside [1, %d]", c.WindowIntervals, maxWindowIntervals)
	case c.HdrLogMaxBytes < 1<<10:
		return fmt.Errorf("HdrLogMaxBytes %d below 1 KiB", c.HdrLogMaxBytes)
	}
	return nil
}

// codeStats holds everything recorded for one request code. All fields are atomics.
//
// The request count is not a counter of its own: it is the number of values in the end-to-end
// histogram, so Record pays no extra atomic for it. The SLO counters count misses, not hits, so
// the common fast request pays nothing for them either (within = total - over); Record adds to
// the histogram before it adds to over, and readers load over first, so within is never
// negative. Body bytes are spread over byteStripes cache lines by queue id, so that two CPUs
// recording sends to different queues do not pass one cache line back and forth.
type codeStats struct {
	// hists[0] is end to end; hists[st] is the transition into stage st. Allocated on first
	// use (sends up front), never freed.
	hists    [NumStages]atomic.Pointer[atomicHist]
	over1ms  atomic.Int64 // requests with end to end > SLOFastNs
	over10ms atomic.Int64 // requests with end to end > SLOSlowNs
	bytes    [byteStripes]paddedInt64
}

// byteStripes is the number of cache lines a code's byte counter is spread over.
const byteStripes = 4

// paddedInt64 is an atomic counter alone on its cache line.
type paddedInt64 struct {
	v atomic.Int64
	_ [56]byte
}

// hist returns histogram i, allocating it the first time (once per code and stage for the
// life of the process).
func (c *codeStats) hist(i int) *atomicHist {
	if h := c.hists[i].Load(); h != nil {
		return h
	}
	n := new(atomicHist)
	if c.hists[i].CompareAndSwap(nil, n) {
		return n
	}
	return c.hists[i].Load()
}

// Recorder collects per-stage latency histograms, SLO counters and the slow-request log. See the
// package documentation for the contract. Create one with NewRecorder.
type Recorder struct {
	cfg             RecorderConfig
	slowThresholdNs int64
	intervalNs      int64

	codes       [numCodes]codeStats
	unstamped   atomic.Int64            // Record calls with no stamp at all
	orderErrors [NumStages]atomic.Int64 // negative durations into each stage (stamps out of order)
	slow        slowRing

	mu struct {
		sync.Mutex
		win windowState
	}
	evid evidenceState
	loop loopState
	hlog hdrLogState
}

// NewRecorder returns a Recorder. It panics with "BUG:" on an invalid configuration. Call Start
// to have it close intervals on its own, and Close when done.
func NewRecorder(cfg RecorderConfig) *Recorder {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		panic("BUG: perf: NewRecorder: " + err.Error())
	}
	r := &Recorder{
		cfg:             cfg,
		slowThresholdNs: int64(cfg.SlowThreshold),
		intervalNs:      int64(cfg.Interval),
	}
	r.slow.init(cfg.SlowLogSize)
	r.evid.init(cfg.SlowLogSize)
	r.mu.win.init(cfg.WindowIntervals, Now())
	// Sends are the hot codes: allocate their histograms now, not on the first request.
	for i := range codeTable {
		if codeTable[i].send {
			for st := range NumStages {
				r.codes[i].hist(int(st))
			}
		}
	}
	return r
}

// Record records one finished request: code is its RocketMQ request code, s its stamps, sizeBytes
// the message body size, topic and queueID where it went (queueID -1 when none). It takes no lock,
// allocates nothing (after a code's first request through a stage) and does not keep s. Safe for
// concurrent use.
func (r *Recorder) Record(code int16, s *Stamps, sizeBytes int, topic string, queueID int32) {
	ci := codeIndex(code)
	c := &r.codes[ci]
	var first, prev int64
	for st := range NumStages {
		t := s.At[st]
		if t == 0 {
			continue
		}
		if first == 0 {
			first = t
		} else {
			d := t - prev
			if d < 0 {
				r.orderErrors[st].Add(1)
				d = 0
			}
			c.hist(int(st)).record(d)
		}
		prev = t
	}
	if first == 0 {
		r.unstamped.Add(1)
		return
	}
	e2e := prev - first
	if e2e < 0 {
		e2e = 0
	}
	c.hist(0).record(e2e)
	if sizeBytes != 0 {
		c.bytes[uint32(queueID)%byteStripes].v.Add(int64(sizeBytes))
	}
	if e2e > SLOFastNs {
		c.over1ms.Add(1)
		if e2e > SLOSlowNs {
			c.over10ms.Add(1)
		}
	}
	if e2e > r.slowThresholdNs && codeTable[ci].slowLog {
		r.slow.add(code, s, sizeBytes, topic, queueID)
	}
}

// StampOrderErrors returns how many stage durations were negative (recorded as 0): a stage was
// stamped before the one it follows, a bug or a race in the callers' stamping.
func (r *Recorder) StampOrderErrors() int64 {
	var n int64
	for i := range r.orderErrors {
		n += r.orderErrors[i].Load()
	}
	return n
}

// StampOrderErrorsInto returns StampOrderErrors split by the stage whose stamp came out earlier
// than the stage before it.
func (r *Recorder) StampOrderErrorsInto(st Stage) int64 { return r.orderErrors[st].Load() }

// Unstamped returns how many Record calls carried no stamp at all (and were dropped).
func (r *Recorder) Unstamped() int64 { return r.unstamped.Load() }

// Config returns the configuration in effect, defaults filled in.
func (r *Recorder) Config() RecorderConfig { return r.cfg }
