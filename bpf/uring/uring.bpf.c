//go:build ignore

/* io_uring submit -> complete for the broker's rings: io_uring_submit_req (in the submitting
 * thread, filtered by tgid) -> io_uring_complete (when the CQE is posted, in any context),
 * keyed by the struct io_kiocb pointer. The opcode and user_data come from the io_kiocb (CO-RE),
 * the result from the CQE (UAPI layout: user_data u64, res s32). */

#include "ringmq.h"

char LICENSE[] SEC("license") = "GPL";

struct io_cqe {
	__u64 user_data;
} __attribute__((preserve_access_index));

struct io_kiocb {
	__u8 opcode;
	struct io_cqe cqe;
} __attribute__((preserve_access_index));

#define CQE_RES_OFFSET 8

struct start {
	__u64 ts_ns;
	__u64 user_data;
	__u32 tid;
	__u32 opcode;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192); /* operations in flight at once */
	__type(key, __u64);
	__type(value, struct start);
} starts SEC(".maps");

DECLARE_COMMON_MAPS(1, 256 * 1024);

SEC("raw_tp/io_uring_submit_req")
int io_uring_submit_req(__u64 *ctx)
{
	if (!is_target())
		return 0;
	struct io_kiocb *req = (struct io_kiocb *)ctx[0];
	__u64 key = (__u64)req;
	struct start s = {};
	s.ts_ns = bpf_ktime_get_ns();
	s.tid = (__u32)bpf_get_current_pid_tgid();
	s.opcode = BPF_CORE_READ(req, opcode);
	s.user_data = BPF_CORE_READ(req, cqe.user_data);
	bpf_map_update_elem(&starts, &key, &s, BPF_ANY);
	return 0;
}

SEC("raw_tp/io_uring_complete")
int io_uring_complete(__u64 *ctx)
{
	__u64 key = ctx[1];
	struct start *s = bpf_map_lookup_elem(&starts, &key);
	if (!s)
		return 0;
	struct rq_event ev = {};
	ev.start_ns = s->ts_ns;
	ev.end_ns = bpf_ktime_get_ns();
	ev.arg = s->user_data;
	ev.tid = s->tid;
	ev.kind = EV_URING;
	ev.op = s->opcode;
	bpf_probe_read_kernel(&ev.res, sizeof(ev.res), (void *)(ctx[2] + CQE_RES_OFFSET));
	bpf_map_delete_elem(&starts, &key);
	hist_add(&hists, 0, ev.end_ns - ev.start_ns);
	EMIT(ev);
	return 0;
}
