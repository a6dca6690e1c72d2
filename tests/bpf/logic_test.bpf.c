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
_Static_assert(sizeof(struct ps_task) == 7 * 8 + sizeof(struct ps_counters) + 24 + 16 +
		       sizeof(struct ps_stack_key), "ps_task layout");
_Static_assert(sizeof(struct ps_counters) == (9 + PS_RUNQ_BUCKETS) * 8, "ps_counters layout");

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

/*
 * The totals' state transitions (ps_totals_state in core.bpf.h) on a leader's ps_task in .bss,
 * one program per step, as sched.bpf.c and iter.bpf.c call them.
 */

struct logic_adopt_args {
	struct ps_counters prev;
};

struct ps_task lead;
/* Anchors: the enums' values reach the BTF, where the test reads them. */
enum ps_totals_state totals_state_anchor;
enum ps_final final_anchor;

/* NONE -> OWN or ADOPTING; returns whether this call made the step. */
SEC("syscall")
int run_start(void *args)
{
	return ps_start_totals(&lead);
}

/* ADOPTING -> OWN with the previous leader's totals. */
SEC("syscall")
int run_adopt(struct logic_adopt_args *args)
{
	struct ps_counters prev;

	__builtin_memcpy(&prev, &args->prev, sizeof(prev)); /* constant offsets into the context */
	ps_adopt_totals(&lead, &prev);
	return 0;
}

/* What lead's final switch-out does (enum ps_final). */
SEC("syscall")
int run_final(void *args)
{
	return ps_final_step(&lead);
}

/* Context of the off-CPU helpers' programs: each reads the members it needs. */
struct logic_offcpu_args {
	__u64 a; /* off_ts, or now */
	__u64 b; /* arrival, or last_queued */
	__u64 c; /* d_runq */
	__u32 preempt;
	__u32 state; /* prev_state, or the epoch */
	__u32 key_epoch;
	__u32 pad;
};

__u64 offcpu_result;

/* ps_offcpu_kind(state). */
SEC("syscall")
int run_offcpu_kind(struct logic_offcpu_args *args)
{
	return ps_offcpu_kind(args->state);
}

/* ps_offcpu_ns(a, b, c) into offcpu_result. */
SEC("syscall")
int run_offcpu_ns(struct logic_offcpu_args *args)
{
	offcpu_result = ps_offcpu_ns(args->a, args->b, args->c);
	return 0;
}

/* ps_wait_ending(a, b) into offcpu_result. */
SEC("syscall")
int run_wait_ending(struct logic_offcpu_args *args)
{
	offcpu_result = ps_wait_ending(args->a, args->b);
	return 0;
}

/* ps_stack_epoch_live(state, key_epoch). */
SEC("syscall")
int run_epoch_live(struct logic_offcpu_args *args)
{
	return ps_stack_epoch_live(args->state, (__u16)args->key_epoch);
}
