// Package bpf is ringmq's kernel side of the latency story: eBPF probes that time what the
// broker's own threads wait for in the kernel, and the attribution of those waits to slow
// requests.
//
// # Probes
//
// Each probe lives in its own folder with its C source and the committed bpf2go output
// (blockio, fsync, uring, pagefault, runq); this package loads them, attaches and detaches them
// by name, and reads their ring buffers. All are tracepoints (raw_tp or tp_btf): kprobes and
// fentry are not available on ringmq's machines. Every probe filters on the broker's tgid.
//
//	name        tracepoints                                  needs      default
//	block_io    block_io_start -> block_io_done (by request)  BTF        on
//	fsync       raw_syscalls sys_enter -> sys_exit (by tid)   -          on
//	io_uring    io_uring_submit_req -> io_uring_complete     BTF        on
//	page_fault  exceptions page_fault_user (count, no time)   -          on
//	runq_delay  sched_wakeup(_new) -> sched_switch (by tid)   BTF        off: costs every switch
//
// # Contract
//
// Open never fails because of the host: a probe that cannot be loaded (no root or CAP_BPF, no
// kernel BTF, a missing tracepoint) or attached is off, and Status gives the reason that the
// broker logs and /api/probes serves. A verifier rejection is reported as a ringmq bug, never as
// a missing feature (IsUnavailable tells them apart). SetEnabled attaches or detaches a probe at
// run time.
//
// Events from all probes go into one bounded ring (Config.EventRingSize, default 65536, about
// 3 MB); the oldest are overwritten. Set.Evidence, installed with
// perf.Recorder.SetEvidenceSource, turns the events that overlap a slow request into
// perf.Evidence ("fdatasync 3.2 ms (fd 7, tid 812), of which block flush 2.9 ms", "run-queue
// wait 1.4 ms on tid 815", "12 page faults (...)") and counts the main cause. Overlap is by
// time over all the broker's threads, so evidence is the likely cause, not a proof.
//
// # Concurrency and costs
//
// All methods are safe for concurrent use. One goroutine per loaded probe reads its kernel
// ring buffer; the event ring's lock is held only to copy events. Kernel ring buffers are
// bounded (64-256 KiB); events that do not fit are counted as lost
// (ringmq_kernel_events_lost_total). Per-hit costs and the measured overhead are in
// docs/ebpf.md.
package bpf
