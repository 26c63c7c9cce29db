package bpf

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/ringmq/ringmq/perf"
)

// Probe names, as /api/probes, the startup log and Config.Probes spell them.
const (
	ProbeBlockIO   = "block_io"
	ProbeSync      = "fsync" // fdatasync and fsync
	ProbeUring     = "io_uring"
	ProbePageFault = "page_fault"
	ProbeRunq      = "runq_delay"
)

// probeDef describes one probe to the Set.
type probeDef struct {
	name      string
	kind      Kind
	defaultOn bool
	offReason string // why it is off by default
}

var probeDefs = []probeDef{
	{name: ProbeBlockIO, kind: KindBlock, defaultOn: true},
	{name: ProbeSync, kind: KindSync, offReason: "off by default: it hooks raw_syscalls, which run on every system call in the system " +
		"(about a quarter of the median publish latency at the reference load, docs/ebpf.md); the broker times its own fdatasyncs"},
	{name: ProbeUring, kind: KindUring, defaultOn: true},
	{name: ProbePageFault, kind: KindFault, defaultOn: true},
	{name: ProbeRunq, kind: KindRunq, offReason: "off by default: it runs on every context switch in the system"},
}

// AllProbes returns every probe's name; DefaultProbes those attached when Config.Probes is nil.
func AllProbes() []string {
	out := make([]string, len(probeDefs))
	for i, d := range probeDefs {
		out[i] = d.name
	}
	return out
}

// DefaultProbes returns the probes attached when Config.Probes is nil (all but fsync and
// runq_delay, which run on every system call or context switch of the system).
func DefaultProbes() []string {
	var out []string
	for _, d := range probeDefs {
		if d.defaultOn {
			out = append(out, d.name)
		}
	}
	return out
}

// Limits and defaults.
const (
	DefaultEventRingSize  = 1 << 16
	MaxEventRingSize      = 1 << 20
	DefaultRunqMinEventNs = 50_000
)

// Config configures a Set. The zero value traces the calling process with the default probes.
type Config struct {
	// PID is the process whose threads are traced. Default: this process.
	PID int
	// Probes are the probes attached at Open; nil means DefaultProbes, empty means none (they
	// are still loaded, so they can be attached later with SetEnabled).
	Probes []string
	// RunqMinEventNs is the shortest run-queue wait recorded as an event (every wait is counted
	// in the histogram). Default 50 us.
	RunqMinEventNs int64
	// EventRingSize is how many recent kernel events are kept for attribution. Default 65536,
	// at most 1<<20.
	EventRingSize int
}

// Status is one probe's state.
type Status struct {
	Name    string `json:"name"`
	Enabled bool   `json:"enabled"`
	Reason  string `json:"reason"` // why it is off, or "" when enabled
}

// Set is the broker's probes: loaded at Open, attached and detached by name, their events
// kept in one bounded ring. All methods are safe for concurrent use.
type Set struct {
	cfg          Config
	monoOffsetNs int64 // CLOCK_MONOTONIC - perf.Now
	ring         *eventRing
	probes       []*probe
	causes       [numCauses]atomic.Int64
}

type probe struct {
	def     probeDef
	impl    probeImpl // nil when the probe could not be loaded
	loadErr error
	mu      struct {
		sync.Mutex // held across attach and detach (start-up and admin calls only)
		enabled    bool
		closed     bool
		reason     string
		attachErr  error
	}
}

// probeImpl is a loaded probe (probes_linux.go).
type probeImpl interface {
	attach() error
	detach() error
	hist(key uint32) (histCounts, error) // summed over CPUs
	lost() (uint64, error)
	count() (uint64, error) // page faults seen; 0 for other probes
	close() error
}

// histCounts is one log2-microsecond histogram (struct hist of include/ringmq.h).
type histCounts struct {
	Slots [32]uint64
	SumNs uint64
	Count uint64
}

// Open loads every probe and attaches cfg.Probes. It never fails: a probe that cannot be loaded
// or attached is off, and Status and Err say why. Close releases everything.
func Open(cfg Config) (*Set, error) {
	if cfg.PID == 0 {
		cfg.PID = os.Getpid()
	}
	if cfg.RunqMinEventNs == 0 {
		cfg.RunqMinEventNs = DefaultRunqMinEventNs
	}
	if cfg.EventRingSize == 0 {
		cfg.EventRingSize = DefaultEventRingSize
	}
	if cfg.EventRingSize < 1 || cfg.EventRingSize > MaxEventRingSize {
		return nil, fmt.Errorf("bpf: EventRingSize %d outside [1, %d]", cfg.EventRingSize, MaxEventRingSize)
	}
	if cfg.PID < 0 || cfg.RunqMinEventNs < 0 {
		return nil, fmt.Errorf("bpf: negative PID %d or RunqMinEventNs %d", cfg.PID, cfg.RunqMinEventNs)
	}
	enable := cfg.Probes
	if enable == nil {
		enable = DefaultProbes()
	}
	for _, name := range enable {
		if !slices.Contains(AllProbes(), name) {
			return nil, fmt.Errorf("bpf: unknown probe %q (have %s)", name, strings.Join(AllProbes(), ", "))
		}
	}
	s := &Set{cfg: cfg, ring: newEventRing(cfg.EventRingSize), monoOffsetNs: perf.KernelMonotonicNs(0)}
	prepErr := prepare()
	for _, d := range probeDefs {
		p := &probe{def: d}
		s.probes = append(s.probes, p)
		if prepErr != nil {
			p.loadErr = prepErr
		} else {
			p.impl, p.loadErr = loadProbe(d, cfg, s.ring)
		}
		switch {
		case p.loadErr != nil:
			p.mu.reason = describeErr(p.loadErr)
		case slices.Contains(enable, d.name):
			if err := s.attach(p); err != nil {
				p.mu.attachErr = err
			}
		case d.offReason != "":
			p.mu.reason = d.offReason
		default:
			p.mu.reason = "not in the configured probe list"
		}
	}
	return s, nil
}

func (s *Set) attach(p *probe) error {
	if err := p.impl.attach(); err != nil {
		p.mu.reason = describeErr(err)
		return fmt.Errorf("attach %s: %w", p.def.name, err)
	}
	p.mu.enabled, p.mu.reason = true, ""
	return nil
}

func (s *Set) probe(name string) (*probe, error) {
	for _, p := range s.probes {
		if p.def.name == name {
			return p, nil
		}
	}
	return nil, fmt.Errorf("bpf: unknown probe %q (have %s)", name, strings.Join(AllProbes(), ", "))
}

// SetEnabled attaches (on) or detaches a probe at run time. A probe that could not be loaded
// cannot be attached: the error says why.
func (s *Set) SetEnabled(name string, on bool) error {
	p, err := s.probe(name)
	if err != nil {
		return err
	}
	if p.impl == nil {
		return fmt.Errorf("bpf: probe %s is not available: %w", name, p.loadErr)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.mu.closed:
		return fmt.Errorf("bpf: probe %s: the set is closed", name)
	case on == p.mu.enabled:
		return nil
	case on:
		err := s.attach(p)
		p.mu.attachErr = err
		return err
	}
	if err := p.impl.detach(); err != nil {
		return fmt.Errorf("bpf: detach %s: %w", name, err)
	}
	p.mu.enabled, p.mu.reason = false, "disabled at run time"
	return nil
}

// Status returns every probe's state, in a fixed order.
func (s *Set) Status() []Status {
	out := make([]Status, 0, len(s.probes))
	for _, p := range s.probes {
		p.mu.Lock()
		out = append(out, Status{Name: p.def.name, Enabled: p.mu.enabled, Reason: p.mu.reason})
		p.mu.Unlock()
	}
	return out
}

// Err returns why a probe is off: its load error, or its last attach error; nil when it is
// loaded and attached or merely disabled.
func (s *Set) Err(name string) error {
	p, err := s.probe(name)
	if err != nil {
		return err
	}
	if p.loadErr != nil {
		return p.loadErr
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mu.attachErr
}

// Evidence is the perf.EvidenceSource: the kernel events that overlapped the request, and the
// main cause counted in ringmq_slow_request_cause_total.
func (s *Set) Evidence(q perf.EvidenceQuery) []perf.Evidence {
	start, end := q.StartMonoNs, q.EndMonoNs
	events := s.ring.overlapping(nil, start, end)
	ev, cause := explain(events, start, end, s.monoOffsetNs)
	s.causes[cause].Add(1)
	return ev
}

// CauseCount returns how many slow requests were attributed to c so far.
func (s *Set) CauseCount(c Cause) int64 { return s.causes[c].Load() }

// Close detaches and unloads every probe.
func (s *Set) Close() error {
	var errs []error
	for _, p := range s.probes {
		if p.impl == nil {
			continue
		}
		p.mu.Lock()
		if err := p.impl.close(); err != nil {
			errs = append(errs, fmt.Errorf("close %s: %w", p.def.name, err))
		}
		p.mu.enabled, p.mu.closed, p.mu.reason = false, true, "closed"
		p.mu.Unlock()
	}
	return errors.Join(errs...)
}
