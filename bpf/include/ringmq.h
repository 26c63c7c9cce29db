/* ringmq.h: what every ringmq probe shares, and the few kernel types they read.
 *
 * No vmlinux.h: the kernel structs below carry only the fields the probes read and are
 * marked preserve_access_index, so libbpf-style CO-RE relocations fix their offsets at
 * load time against the running kernel's BTF. The pt_regs layout and the io_uring CQE
 * are ABI (x86-64 and UAPI) and are read at fixed offsets, without BTF.
 *
 * Every probe writes struct rq_event records into its own ring buffer "events" and
 * log2 histograms into its own per-CPU array "hists"; the Go side (package bpf)
 * decodes both with one layout. Change them here and in bpf/events.go together.
 */
#ifndef RINGMQ_BPF_H
#define RINGMQ_BPF_H

typedef unsigned char __u8;
typedef signed char __s8;
typedef unsigned short __u16;
typedef short __s16;
typedef unsigned int __u32;
typedef int __s32;
typedef unsigned long long __u64;
typedef long long __s64;
typedef __u16 __be16;
typedef __u32 __be32;
typedef __u64 __be64;
typedef __u32 __wsum;

/* UAPI values (linux/bpf.h). */
#define BPF_MAP_TYPE_HASH 1
#define BPF_MAP_TYPE_PERCPU_ARRAY 6
#define BPF_MAP_TYPE_RINGBUF 27
#define BPF_ANY 0

#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

/* Event kinds: the Go side's Kind values. */
#define EV_BLOCK 1
#define EV_FSYNC 2
#define EV_URING 3
#define EV_FAULT 4
#define EV_RUNQ 5

/* One kernel event of the broker's process; 40 bytes, little-endian. */
struct rq_event {
	__u64 start_ns; /* bpf_ktime_get_ns (CLOCK_MONOTONIC) */
	__u64 end_ns;   /* == start_ns for point events (page faults) */
	__u64 arg;      /* block: sector; fsync: fd; uring: user_data; fault: address */
	__u32 tid;      /* the thread that submitted / called / faulted / waited */
	__u16 kind;     /* EV_* */
	__u16 op;       /* block: op class; fsync: 0 fdatasync, 1 fsync; uring: opcode; fault: error code; runq: cpu */
	__s32 res;      /* fsync: return value; uring: cqe res; otherwise 0 */
	__u32 bytes;    /* block: request bytes; otherwise 0 */
};

/* A log2 histogram of microseconds: slot i counts values in [2^i, 2^(i+1)) us, slot 0 also
 * those under 1 us, slot 31 everything from 2^31 us up. */
#define HIST_SLOTS 32
struct hist {
	__u64 slots[HIST_SLOTS];
	__u64 sum_ns;
	__u64 count;
};

/* The broker's process id; set by the loader before the programs are loaded. */
volatile const __u32 targ_tgid = 0;

static __always_inline int is_target(void)
{
	return (__u32)(bpf_get_current_pid_tgid() >> 32) == targ_tgid;
}

static __always_inline __u32 log2_us(__u64 ns)
{
	__u64 us = ns / 1000;
	__u32 r = 0;
	if (us >> 16) { us >>= 16; r += 16; }
	if (us >> 8) { us >>= 8; r += 8; }
	if (us >> 4) { us >>= 4; r += 4; }
	if (us >> 2) { us >>= 2; r += 2; }
	if (us >> 1) { r += 1; }
	return r;
}

/* hist_add counts delta_ns into histogram key of the per-CPU array map. */
static __always_inline void hist_add(void *map, __u32 key, __u64 delta_ns)
{
	struct hist *h = bpf_map_lookup_elem(map, &key);
	if (!h)
		return;
	__u32 slot = log2_us(delta_ns);
	if (slot >= HIST_SLOTS)
		slot = HIST_SLOTS - 1;
	h->slots[slot]++;
	h->sum_ns += delta_ns;
	h->count++;
}

/* lost counts events dropped because the ring buffer was full (per CPU, key 0). */
#define DECLARE_COMMON_MAPS(nhists, ringbuf_bytes)                                         \
	struct {                                                                           \
		__uint(type, BPF_MAP_TYPE_RINGBUF);                                        \
		__uint(max_entries, ringbuf_bytes);                                        \
	} events SEC(".maps");                                                             \
	struct {                                                                           \
		__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);                                   \
		__uint(max_entries, nhists);                                               \
		__type(key, __u32);                                                        \
		__type(value, struct hist);                                                \
	} hists SEC(".maps");                                                              \
	struct {                                                                           \
		__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);                                   \
		__uint(max_entries, 1);                                                    \
		__type(key, __u32);                                                        \
		__type(value, __u64);                                                      \
	} lost SEC(".maps")

static __always_inline void count_lost(void *lost_map)
{
	__u32 zero = 0;
	__u64 *n = bpf_map_lookup_elem(lost_map, &zero);
	if (n)
		(*n)++;
}

#define BPF_RB_NO_WAKEUP 1
#define BPF_RB_FORCE_WAKEUP 2
#define BPF_RB_AVAIL_DATA 0

/* Waking the reader for every event costs an irq_work each (about 1-3 us per event measured
 * here); the Go reader polls every few milliseconds instead and is woken early only when this
 * much is pending. */
#define WAKEUP_PENDING_BYTES (16 * 1024)

/* EMIT writes one event to the ring buffer, or counts it as lost. */
#define EMIT(ev)                                                                           \
	do {                                                                               \
		__u64 fl = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= WAKEUP_PENDING_BYTES \
				   ? BPF_RB_FORCE_WAKEUP                                   \
				   : BPF_RB_NO_WAKEUP;                                     \
		if (bpf_ringbuf_output(&events, &(ev), sizeof(ev), fl))                    \
			count_lost(&lost);                                                 \
	} while (0)

#endif
