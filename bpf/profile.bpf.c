// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * On-CPU sampler: runs on a software CPU-clock perf event per CPU (the loader opens them at
 * --profile_hz) and counts the interrupted task's kernel and user stacks per process and thread
 * in stack_counts (bpf/stacks.bpf.h). An idle CPU's sample is counted, charged to no one.
 */
#include "stacks.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

SEC("perf_event")
int ps_profile(struct bpf_perf_event_data *ctx)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct ps_stack_key k = {};

	ps_stat_add(PS_STAT_PROFILE_SAMPLES, 1);
	if (!task->pid) { /* this CPU's idle task */
		ps_stat_add(PS_STAT_PROFILE_IDLE, 1);
		return 0;
	}
	ps_key_of(task->group_leader, &k.key);
	k.tid = task->pid;
	k.kind = PS_STACK_ONCPU;
	ps_capture_stacks(ctx, &k, task->mm != NULL);
	ps_add_stack_count(&k, 1, task);
	return 0;
}
