//go:build ignore

/* Block I/O latency of the broker's own requests: block_io_start -> block_io_done, keyed by the
 * struct request pointer. block_io_start runs in the submitter's context (the broker thread that
 * wrote or fdatasync'ed, or its io_uring worker), so the tgid filter there selects the broker's
 * requests; block_io_done runs wherever the request completes (often an IRQ) and only finds the
 * requests the start side stored. An fdatasync's cache flush is an empty PREFLUSH write issued by
 * the caller: its start -> done spans the device flush. */

#include "ringmq.h"

char LICENSE[] SEC("license") = "GPL";

/* Op classes: histogram keys and rq_event.op. */
#define OP_READ 0
#define OP_WRITE 1
#define OP_FLUSH 2
#define OP_DISCARD 3
#define OP_OTHER 4
#define NUM_OPS 5

#define REQ_OP_MASK 0xff
#define REQ_OP_READ 0
#define REQ_OP_WRITE 1
#define REQ_OP_FLUSH 2
#define REQ_OP_DISCARD 3

struct request {
	unsigned int cmd_flags;
	unsigned int __data_len;
	unsigned long long __sector;
} __attribute__((preserve_access_index));

struct start {
	__u64 ts_ns;
	__u64 sector;
	__u32 tid;
	__u32 op;
	__u32 bytes;
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192); /* requests in flight at once; more are not timed */
	__type(key, __u64);
	__type(value, struct start);
} starts SEC(".maps");

DECLARE_COMMON_MAPS(NUM_OPS, 256 * 1024);

static __always_inline __u32 op_class(__u32 flags, __u32 bytes)
{
	switch (flags & REQ_OP_MASK) {
	case REQ_OP_READ:
		return OP_READ;
	case REQ_OP_WRITE:
		return bytes == 0 ? OP_FLUSH : OP_WRITE; /* an empty write carries only PREFLUSH */
	case REQ_OP_FLUSH:
		return OP_FLUSH;
	case REQ_OP_DISCARD:
		return OP_DISCARD;
	}
	return OP_OTHER;
}

SEC("raw_tp/block_io_start")
int block_io_start(__u64 *ctx)
{
	if (!is_target())
		return 0;
	struct request *rq = (struct request *)ctx[0];
	__u64 key = (__u64)rq;
	struct start s = {};
	s.ts_ns = bpf_ktime_get_ns();
	s.tid = (__u32)bpf_get_current_pid_tgid();
	s.bytes = BPF_CORE_READ(rq, __data_len);
	s.sector = BPF_CORE_READ(rq, __sector);
	s.op = op_class(BPF_CORE_READ(rq, cmd_flags), s.bytes);
	bpf_map_update_elem(&starts, &key, &s, BPF_ANY);
	return 0;
}

SEC("raw_tp/block_io_done")
int block_io_done(__u64 *ctx)
{
	__u64 key = ctx[0];
	struct start *s = bpf_map_lookup_elem(&starts, &key);
	if (!s)
		return 0;
	struct rq_event ev = {};
	ev.start_ns = s->ts_ns;
	ev.end_ns = bpf_ktime_get_ns();
	ev.arg = s->sector;
	ev.tid = s->tid;
	ev.kind = EV_BLOCK;
	ev.op = s->op;
	ev.bytes = s->bytes;
	bpf_map_delete_elem(&starts, &key);
	hist_add(&hists, ev.op, ev.end_ns - ev.start_ns);
	EMIT(ev);
	return 0;
}
