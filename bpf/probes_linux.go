//go:build linux && (386 || amd64)

package bpf

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"

	"github.com/ringmq/ringmq/bpf/blockio"
	"github.com/ringmq/ringmq/bpf/fsync"
	"github.com/ringmq/ringmq/bpf/pagefault"
	"github.com/ringmq/ringmq/bpf/runq"
	"github.com/ringmq/ringmq/bpf/uring"
)

var specs = map[Kind]func() (*ebpf.CollectionSpec, error){
	KindBlock: blockio.Spec,
	KindSync:  fsync.Spec,
	KindUring: uring.Spec,
	KindFault: pagefault.Spec,
	KindRunq:  runq.Spec,
}

var (
	memlockOnce sync.Once
	memlockErr  error
)

// prepare lifts RLIMIT_MEMLOCK for kernels that charge BPF maps to it (before 5.11); on newer
// kernels it only probes. Without CAP_BPF it fails with EPERM, and no probe can load.
func prepare() error {
	memlockOnce.Do(func() { memlockErr = rlimit.RemoveMemlock() })
	return memlockErr
}

// linuxProbe is a loaded probe: its collection, the links while attached, and the goroutine
// that reads its ring buffer into the Set's event ring.
type linuxProbe struct {
	name   string
	spec   *ebpf.CollectionSpec
	coll   *ebpf.Collection
	rd     *ringbuf.Reader
	done   chan struct{}
	mu     sync.Mutex // guards links (attach, detach and close come from the Set, under the probe's lock)
	links  []link.Link
	closed bool
}

func loadProbe(d probeDef, cfg Config, ring *eventRing) (probeImpl, error) {
	spec, err := specs[d.kind]()
	if err != nil {
		return nil, fmt.Errorf("load %s spec: %w", d.name, err)
	}
	if err := spec.Variables["targ_tgid"].Set(uint32(cfg.PID)); err != nil {
		return nil, fmt.Errorf("%s: set targ_tgid: %w", d.name, err)
	}
	if v, ok := spec.Variables["min_event_ns"]; ok {
		if err := v.Set(uint64(cfg.RunqMinEventNs)); err != nil {
			return nil, fmt.Errorf("%s: set min_event_ns: %w", d.name, err)
		}
	}
	coll, err := ebpf.NewCollection(spec)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", d.name, err)
	}
	rd, err := ringbuf.NewReader(coll.Maps["events"])
	if err != nil {
		coll.Close()
		return nil, fmt.Errorf("%s: ring buffer reader: %w", d.name, err)
	}
	p := &linuxProbe{name: d.name, spec: spec, coll: coll, rd: rd, done: make(chan struct{})}
	go p.read(ring)
	return p, nil
}

// readPoll is how often the reader looks at the kernel ring buffer: the programs do not wake
// it for each event (include/ringmq.h, EMIT), only when 16 KiB are pending.
const readPoll = 5 * time.Millisecond

// read moves events from the kernel ring buffer into ring until the reader is closed.
func (p *linuxProbe) read(ring *eventRing) {
	defer close(p.done)
	var rec ringbuf.Record
	for {
		p.rd.SetDeadline(time.Now().Add(readPoll))
		if err := p.rd.ReadInto(&rec); err != nil {
			if errors.Is(err, ringbuf.ErrClosed) || errors.Is(err, os.ErrClosed) {
				return
			}
			continue // the poll interval passed, or a corrupt record (cannot happen); keep reading
		}
		if ev, err := decodeEvent(rec.RawSample); err == nil {
			ring.add(ev)
		}
	}
}

func (p *linuxProbe) attach() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return errors.New("probe closed")
	}
	if len(p.links) > 0 {
		return nil
	}
	for name, ps := range p.spec.Programs {
		l, err := attachProgram(ps.SectionName, p.coll.Programs[name])
		if err != nil {
			p.detachLocked()
			return fmt.Errorf("%s (%s): %w", name, ps.SectionName, err)
		}
		p.links = append(p.links, l)
	}
	return nil
}

func attachProgram(section string, prog *ebpf.Program) (link.Link, error) {
	kind, event, _ := strings.Cut(section, "/")
	switch kind {
	case "raw_tp", "raw_tracepoint":
		return link.AttachRawTracepoint(link.RawTracepointOptions{Name: event, Program: prog})
	case "tp_btf":
		return link.AttachTracing(link.TracingOptions{Program: prog})
	}
	return nil, fmt.Errorf("BUG: bpf: no attach rule for section %q", section)
}

func (p *linuxProbe) detach() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.detachLocked()
}

func (p *linuxProbe) detachLocked() error {
	var errs []error
	for _, l := range p.links {
		if err := l.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	p.links = nil
	return errors.Join(errs...)
}

func (p *linuxProbe) hist(key uint32) (histCounts, error) {
	var perCPU []histCounts
	if err := p.coll.Maps["hists"].Lookup(key, &perCPU); err != nil {
		return histCounts{}, fmt.Errorf("%s: read histogram %d: %w", p.name, key, err)
	}
	var h histCounts
	for _, c := range perCPU {
		for i := range h.Slots {
			h.Slots[i] += c.Slots[i]
		}
		h.SumNs += c.SumNs
		h.Count += c.Count
	}
	return h, nil
}

func sumPerCPU(m *ebpf.Map) (uint64, error) {
	var perCPU []uint64
	if err := m.Lookup(uint32(0), &perCPU); err != nil {
		return 0, err
	}
	var n uint64
	for _, v := range perCPU {
		n += v
	}
	return n, nil
}

func (p *linuxProbe) lost() (uint64, error) {
	n, err := sumPerCPU(p.coll.Maps["lost"])
	if err != nil {
		return 0, fmt.Errorf("%s: read lost: %w", p.name, err)
	}
	return n, nil
}

func (p *linuxProbe) count() (uint64, error) {
	m := p.coll.Maps["count"]
	if m == nil {
		return 0, nil
	}
	n, err := sumPerCPU(m)
	if err != nil {
		return 0, fmt.Errorf("%s: read count: %w", p.name, err)
	}
	return n, nil
}

func (p *linuxProbe) close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	err := p.detachLocked()
	p.mu.Unlock()
	err = errors.Join(err, p.rd.Close())
	<-p.done
	p.coll.Close()
	return err
}

// monoNowNs reads CLOCK_MONOTONIC, the clock of bpf_ktime_get_ns.
func monoNowNs() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		panic("BUG: clock_gettime(CLOCK_MONOTONIC): " + err.Error())
	}
	return ts.Nano()
}

// describeErr says in one line why a probe is off.
func describeErr(err error) string {
	var ve *ebpf.VerifierError
	switch {
	case errors.As(err, &ve):
		// EACCES also matches os.ErrPermission: a rejected program is a ringmq bug, not the host.
		return fmt.Sprintf("verifier rejected the program (a ringmq bug, please report): %v", err)
	case errors.Is(err, os.ErrPermission):
		return fmt.Sprintf("not permitted: eBPF needs root or CAP_BPF and CAP_PERFMON (%v)", err)
	case errors.Is(err, ebpf.ErrNotSupported):
		return fmt.Sprintf("the kernel lacks a feature (BTF at /sys/kernel/btf/vmlinux, or the program type): %v", err)
	case errors.Is(err, os.ErrNotExist):
		return fmt.Sprintf("the kernel has no such tracepoint: %v", err)
	}
	return err.Error()
}

// IsUnavailable reports whether err means the host cannot run the probe (no permission,
// missing kernel feature or tracepoint), as opposed to a bug such as a verifier rejection.
func IsUnavailable(err error) bool {
	var ve *ebpf.VerifierError
	if err == nil || errors.As(err, &ve) {
		return false
	}
	return errors.Is(err, os.ErrPermission) || errors.Is(err, ebpf.ErrNotSupported) || errors.Is(err, os.ErrNotExist)
}
