package bpf

import (
	"github.com/ringmq/ringmq/perf"
)

// RegisterMetrics exports the probes' histograms and counters through reg, beside the broker's
// own stage histograms:
//
//	ringmq_kernel_block_io_seconds{op}          block requests of the broker, submit to done
//	ringmq_kernel_sync_seconds{syscall}         fdatasync / fsync calls, enter to exit
//	ringmq_kernel_io_uring_seconds              io_uring requests, submit to CQE
//	ringmq_kernel_runq_delay_seconds            broker threads' waits for a CPU
//	ringmq_kernel_page_faults_total             user page faults of the broker
//	ringmq_kernel_events_lost_total{probe}      events dropped because a ring buffer was full
//	ringmq_kernel_probe_enabled{probe}          1 while attached
//	ringmq_slow_request_cause_total{cause}      slow requests by the main kernel cause
//
// Histograms are read from the kernel maps at scrape time (one lookup per series); a probe
// that is not loaded exports empty ones.
func (s *Set) RegisterMetrics(reg *perf.Registry) {
	for _, p := range s.probes {
		switch p.def.kind {
		case KindBlock:
			for op := range numBlockOps {
				reg.RegisterHistogramFunc("ringmq_kernel_block_io_seconds",
					"Block I/O requests submitted by the broker, block_io_start to block_io_done (eBPF).",
					s.histFunc(p, uint32(op)), perf.Label{Name: "op", Value: blockOpNames[op]})
			}
		case KindSync:
			for op := range numSyncOps {
				reg.RegisterHistogramFunc("ringmq_kernel_sync_seconds",
					"fdatasync and fsync calls of the broker's threads, syscall enter to exit (eBPF).",
					s.histFunc(p, uint32(op)), perf.Label{Name: "syscall", Value: syncOpNames[op]})
			}
		case KindUring:
			reg.RegisterHistogramFunc("ringmq_kernel_io_uring_seconds",
				"io_uring requests of the broker, submit to completion posted (eBPF).", s.histFunc(p, 0))
		case KindRunq:
			reg.RegisterHistogramFunc("ringmq_kernel_runq_delay_seconds",
				"Time the broker's threads waited runnable for a CPU (eBPF; off by default).", s.histFunc(p, 0))
		case KindFault:
			reg.RegisterCounter("ringmq_kernel_page_faults_total",
				"User page faults of the broker's threads (eBPF).", func() float64 {
					if p.impl == nil {
						return 0
					}
					n, _ := p.impl.count()
					return float64(n)
				})
		}
		reg.RegisterCounter("ringmq_kernel_events_lost_total",
			"Kernel events dropped because the probe's ring buffer was full (eBPF).", func() float64 {
				if p.impl == nil {
					return 0
				}
				n, _ := p.impl.lost()
				return float64(n)
			}, perf.Label{Name: "probe", Value: p.def.name})
		reg.RegisterGauge("ringmq_kernel_probe_enabled",
			"1 while the eBPF probe is attached; /api/probes says why one is off.", func() float64 {
				p.mu.Lock()
				defer p.mu.Unlock()
				if p.mu.enabled {
					return 1
				}
				return 0
			}, perf.Label{Name: "probe", Value: p.def.name})
	}
	for c := range numCauses {
		reg.RegisterCounter("ringmq_slow_request_cause_total",
			"Slow requests by the kernel event that overlapped them longest (eBPF evidence).",
			func() float64 { return float64(s.causes[c].Load()) }, perf.Label{Name: "cause", Value: c.String()})
	}
}

// histFunc reads histogram key of probe p at scrape time.
func (s *Set) histFunc(p *probe, key uint32) func() perf.HistogramSnapshot {
	return func() perf.HistogramSnapshot {
		var h histCounts
		if p.impl != nil {
			h, _ = p.impl.hist(key) // a failed read (set closed) exports an empty histogram
		}
		return perf.Log2MicrosHistogram(h.Slots[:], int64(h.SumNs))
	}
}
