//go:build ignore

/* Run-queue delay of the broker's threads: from the moment a thread becomes runnable
 * (sched_wakeup, sched_wakeup_new, or preempted while running at sched_switch) to the moment it
 * is switched in. tp_btf programs read task_struct directly (needs kernel BTF). Every context
 * switch in the system runs sched_switch while attached, so this probe is off by default. Only
 * waits of at least min_event_ns become events; the histogram counts them all. */

#include "ringmq.h"

char LICENSE[] SEC("license") = "GPL";

#define TASK_RUNNING 0

struct task_struct {
	int pid;
	int tgid;
} __attribute__((preserve_access_index));

volatile const __u64 min_event_ns = 50000;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096); /* broker threads runnable at once */
	__type(key, __u32);
	__type(value, __u64);
} starts SEC(".maps");

DECLARE_COMMON_MAPS(1, 256 * 1024);

static __always_inline void enqueued(struct task_struct *p)
{
	if ((__u32)p->tgid != targ_tgid)
		return;
	__u32 tid = p->pid;
	__u64 ts = bpf_ktime_get_ns();
	bpf_map_update_elem(&starts, &tid, &ts, BPF_ANY);
}

SEC("tp_btf/sched_wakeup")
int sched_wakeup(__u64 *ctx)
{
	enqueued((struct task_struct *)ctx[0]);
	return 0;
}

SEC("tp_btf/sched_wakeup_new")
int sched_wakeup_new(__u64 *ctx)
{
	enqueued((struct task_struct *)ctx[0]);
	return 0;
}

SEC("tp_btf/sched_switch")
int sched_switch(__u64 *ctx)
{
	struct task_struct *prev = (struct task_struct *)ctx[1];
	struct task_struct *next = (struct task_struct *)ctx[2];
	unsigned int prev_state = (unsigned int)ctx[3];
	if (prev_state == TASK_RUNNING)
		enqueued(prev);
	if ((__u32)next->tgid != targ_tgid)
		return 0;
	__u32 tid = next->pid;
	__u64 *ts = bpf_map_lookup_elem(&starts, &tid);
	if (!ts)
		return 0;
	__u64 now = bpf_ktime_get_ns();
	__u64 delta = now - *ts;
	bpf_map_delete_elem(&starts, &tid);
	hist_add(&hists, 0, delta);
	if (delta < min_event_ns)
		return 0;
	struct rq_event ev = {};
	ev.start_ns = now - delta;
	ev.end_ns = now;
	ev.tid = tid;
	ev.kind = EV_RUNQ;
	ev.op = (__u16)bpf_get_smp_processor_id();
	EMIT(ev);
	return 0;
}
