// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The pure helpers of core.bpf.h, compiled by the BPF compiler and run by the BPF verifier and
 * interpreter/JIT on fixed inputs: tests/bpf/logic_test.cc drives these programs with
 * BPF_PROG_TEST_RUN (BPF_PROG_TYPE_SYSCALL takes its context from a user buffer).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "core.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* The test mirrors these layouts; keep them fixed. */
_Static_assert(sizeof(struct ps_thread_counters) == 7 * 8, "ps_thread_counters layout");
_Static_assert(sizeof(struct ps_counters) == (6 + PS_RUNQ_BUCKETS) * 8, "ps_counters layout");

/* Context of run_bucket. */
struct logic_bucket_args {
	__u64 wait_ns;
};

/* Context of run_fold: the thread's current kernel counters and whether to add atomically. */
struct logic_fold_args {
	struct ps_thread_counters cur;
	__u32 shared;
	__u32 pad;
};

/* State of run_fold, set and read by the test through the skeleton's bss. */
struct ps_thread_counters fold_snap;
struct ps_counters fold_totals;
__u64 fold_runs;

/* Returns the run-queue histogram bucket of args->wait_ns. */
SEC("syscall")
int run_bucket(struct logic_bucket_args *args)
{
	return ps_runq_bucket(args->wait_ns);
}

/* Folds args->cur against fold_snap into fold_totals, as a context switch does. */
SEC("syscall")
int run_fold(struct logic_fold_args *args)
{
	struct ps_thread_counters cur = args->cur;

	ps_fold_values(&fold_snap, &cur, &fold_totals, args->shared != 0);
	__sync_fetch_and_add(&fold_runs, 1);
	return 0;
}
