//go:build ignore

/* fdatasync and fsync duration of the broker's threads, from raw_syscalls sys_enter ->
 * sys_exit keyed by thread id. raw_tp needs neither tracefs nor BTF. Every syscall in the
 * system runs the enter program while it is attached (a compare of the syscall number, ~50 ns);
 * the exit program filters by tgid first and then looks the thread up. */

#include "ringmq.h"

char LICENSE[] SEC("license") = "GPL";

#define NR_FSYNC 74 /* x86-64 */
#define NR_FDATASYNC 75

#define SYNC_FDATASYNC 0
#define SYNC_FSYNC 1

/* x86-64 struct pt_regs (ABI): the first syscall argument, di, is at byte 112. */
#define PT_REGS_DI_OFFSET 112

struct start {
	__u64 ts_ns;
	__u64 fd;
	__u32 op;
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096); /* broker threads inside fsync at once */
	__type(key, __u32);
	__type(value, struct start);
} starts SEC(".maps");

DECLARE_COMMON_MAPS(2, 64 * 1024);

SEC("raw_tp/sys_enter")
int sys_enter(__u64 *ctx)
{
	long id = (long)ctx[1];
	if (id != NR_FDATASYNC && id != NR_FSYNC)
		return 0;
	if (!is_target())
		return 0;
	struct start s = {};
	s.ts_ns = bpf_ktime_get_ns();
	s.op = id == NR_FDATASYNC ? SYNC_FDATASYNC : SYNC_FSYNC;
	bpf_probe_read_kernel(&s.fd, sizeof(s.fd), (void *)(ctx[0] + PT_REGS_DI_OFFSET));
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	bpf_map_update_elem(&starts, &tid, &s, BPF_ANY);
	return 0;
}

SEC("raw_tp/sys_exit")
int sys_exit(__u64 *ctx)
{
	if (!is_target())
		return 0;
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct start *s = bpf_map_lookup_elem(&starts, &tid);
	if (!s)
		return 0;
	struct rq_event ev = {};
	ev.start_ns = s->ts_ns;
	ev.end_ns = bpf_ktime_get_ns();
	ev.arg = s->fd;
	ev.tid = tid;
	ev.kind = EV_FSYNC;
	ev.op = s->op;
	ev.res = (__s32)(long)ctx[1];
	bpf_map_delete_elem(&starts, &tid);
	hist_add(&hists, ev.op, ev.end_ns - ev.start_ns);
	EMIT(ev);
	return 0;
}
