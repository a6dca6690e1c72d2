// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The floor under procscope's BPF costs (bench/overhead_all.sh): programs that do nothing, on the
 * hooks procscope uses, so that bpf_stats' own cost (two clock reads per run) and the
 * attachment's are measured under the same workload as procscope's programs. `storage` adds the
 * one task-storage lookup that the scheduler hook cannot avoid.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* floor_tasks: task -> 8 bytes, as procscope's `tasks`; freed with the task. */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, __u64);
} floor_tasks SEC(".maps");

SEC("tp_btf/sched_switch")
int BPF_PROG(floor_sched_switch, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	return 0;
}

SEC("tp_btf/sched_switch")
int BPF_PROG(floor_sched_switch_storage, bool preempt, struct task_struct *prev,
	     struct task_struct *next)
{
	__u64 *v = bpf_task_storage_get(&floor_tasks, prev, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);

	if (v)
		*v += 1;
	return 0;
}

SEC("tp_btf/block_getrq")
int BPF_PROG(floor_block_getrq, struct bio *bio)
{
	return 0;
}

SEC("tp_btf/block_rq_issue")
int BPF_PROG(floor_block_rq_issue, struct request *rq)
{
	return 0;
}

SEC("tp_btf/block_rq_complete")
int BPF_PROG(floor_block_rq_complete, struct request *rq, blk_status_t error, unsigned int nr_bytes)
{
	return 0;
}

SEC("tp_btf/writeback_dirty_folio")
int BPF_PROG(floor_dirty_folio, struct folio *folio, struct address_space *mapping)
{
	return 0;
}
