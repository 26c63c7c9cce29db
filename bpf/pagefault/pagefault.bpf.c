//go:build ignore

/* User page faults of the broker's threads: exceptions:page_fault_user (x86) counted and
 * recorded with the faulting address. The tracepoint fires on entry only, so a fault's duration
 * cannot be measured here (no kprobes or fentry on these kernels): faults are counted per
 * request window instead. raw_tp: no tracefs, no BTF. */

#include "ringmq.h"

char LICENSE[] SEC("license") = "GPL";

DECLARE_COMMON_MAPS(1, 256 * 1024);

/* count: faults seen (per CPU, key 0), including those whose event was lost. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} count SEC(".maps");

SEC("raw_tp/page_fault_user")
int page_fault_user(__u64 *ctx)
{
	if (!is_target())
		return 0;
	__u32 zero = 0;
	__u64 *n = bpf_map_lookup_elem(&count, &zero);
	if (n)
		(*n)++;
	struct rq_event ev = {};
	ev.start_ns = bpf_ktime_get_ns();
	ev.end_ns = ev.start_ns;
	ev.arg = ctx[0];
	ev.tid = (__u32)bpf_get_current_pid_tgid();
	ev.kind = EV_FAULT;
	ev.op = (__u16)ctx[2];
	EMIT(ev);
	return 0;
}
