/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Small pure helpers shared by the BPF programs (and run on fixed inputs by the tests). */
#ifndef PROCSCOPE_BPF_CORE_BPF_H_
#define PROCSCOPE_BPF_CORE_BPF_H_

#include "procscope.h"

/* Histogram bucket of one run-queue wait episode (see PS_RUNQ_BUCKETS). */
static __always_inline __u32 ps_runq_bucket(__u64 wait_ns)
{
	__u64 us = wait_ns / 1000;
	__u32 b = 0;

	/* floor(log2(us)), unrolled: the verifier sees a bounded result. */
	if (us >= (1ULL << 16)) { b += 16; us >>= 16; }
	if (us >= (1ULL << 8)) { b += 8; us >>= 8; }
	if (us >= (1ULL << 4)) { b += 4; us >>= 4; }
	if (us >= (1ULL << 2)) { b += 2; us >>= 2; }
	if (us >= (1ULL << 1)) { b += 1; }
	return b < PS_RUNQ_BUCKETS ? b : PS_RUNQ_BUCKETS - 1;
}

/* Bytes in a folio; nr_pages is 0 for a small folio (its count is only kept for large ones). */
static __always_inline __u64 ps_folio_bytes(__u64 nr_pages)
{
	return (nr_pages ? nr_pages : 1) * 4096ULL;
}

/* One thread's kernel counters (or their snapshot at its last fold): the PS_COUNTER_FIELDS, named
 * as in struct ps_counters, and the switch-in count. */
struct ps_thread_counters {
	__u64 pcount; /* sched_info.pcount: switch-ins, one per run-queue wait episode */
	PS_COUNTER_FIELDS(PS_U64_MEMBER)
};

#define PS_ADD(shared, dst, val)                                                                  \
	do {                                                                                      \
		if (shared)                                                                       \
			__sync_fetch_and_add(&(dst), (val));                                      \
		else                                                                              \
			(dst) += (val);                                                           \
	} while (0)

/* Adds every counter of `src` (the histogram too) to `dst`; atomically when `shared`. */
static __always_inline void ps_add_counters(struct ps_counters *dst, const struct ps_counters *src,
					    bool shared)
{
	int i;

#define PS_ADD_FIELD(f, ...) PS_ADD(shared, dst->f, src->f);
	PS_COUNTER_FIELDS(PS_ADD_FIELD)
#undef PS_ADD_FIELD
#define PS_ADD_ARRAY(f, n)                                                                         \
	for (i = 0; i < (n); i++)                                                                 \
		PS_ADD(shared, dst->f[i], src->f[i]);
	PS_COUNTER_ARRAYS(PS_ADD_ARRAY)
#undef PS_ADD_ARRAY
}

/* Moves the increase from `snap` to `cur` into the process totals `p` and advances `snap`.
 * `shared`: other threads may fold into `p` at the same time (atomic adds). */
static __always_inline void ps_fold_values(struct ps_thread_counters *snap,
					   const struct ps_thread_counters *cur,
					   struct ps_counters *p, bool shared)
{
	__u64 d_runq = cur->runq_ns - snap->runq_ns;

#define PS_FOLD_FIELD(f, ...) PS_ADD(shared, p->f, cur->f - snap->f);
	PS_COUNTER_FIELDS(PS_FOLD_FIELD)
#undef PS_FOLD_FIELD
	/* Exactly one switch-in since the last fold: d_runq is one wait episode. */
	if (cur->pcount - snap->pcount == 1) {
		__u32 b = ps_runq_bucket(d_runq);

		if (b < PS_RUNQ_BUCKETS)
			PS_ADD(shared, p->runq_hist[b], 1);
	}
	*snap = *cur;
}

#endif /* PROCSCOPE_BPF_CORE_BPF_H_ */
