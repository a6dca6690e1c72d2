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

#endif /* PROCSCOPE_BPF_CORE_BPF_H_ */
