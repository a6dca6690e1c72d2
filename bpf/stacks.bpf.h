/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Stack capture and counting, shared by the on-CPU sampler (profile.bpf.c) and the off-CPU
 * sampling in the scheduler hook (sched.bpf.c). Maps: stacks0/stacks1, stack_counts and
 * profile_notify in maps.bpf.h.
 */
#ifndef PROCSCOPE_BPF_STACKS_BPF_H_
#define PROCSCOPE_BPF_STACKS_BPF_H_

#include "maps.bpf.h"

#include <bpf/bpf_core_read.h>

#ifndef EEXIST
#define EEXIST 17
#endif
#ifndef EFAULT
#define EFAULT 14
#endif
#ifndef ENODATA
#define ENODATA 61
#endif

/* One stack id of the current task into the current epoch's map, or -errno. */
static __always_inline __s32 ps_stack_id(void *ctx, __u32 epoch, __u64 flags)
{
	long id;

	if (epoch & 1)
		id = bpf_get_stackid(ctx, &stacks1, flags);
	else
		id = bpf_get_stackid(ctx, &stacks0, flags);
	return (__s32)id;
}

/*
 * Fills k->kstack, k->ustack and k->epoch with the current task's stacks. `user`: the task has a
 * user address space (no user stack is asked of a kernel thread). Every failure is counted; a
 * failed stack still lets the caller count the time under "no stack". A kernel stack of -EFAULT
 * is no failure: a perf_event sample that interrupted user mode has no kernel frames.
 */
static __always_inline void ps_capture_stacks(void *ctx, struct ps_stack_key *k, bool user)
{
	__u32 epoch = ps_epoch;
	__s32 id;

	k->epoch = (__u16)epoch;
	id = ps_stack_id(ctx, epoch, 0);
	if (id < 0 && id != -EFAULT)
		ps_stat_add(id == -EEXIST ? PS_STAT_STACK_COLLISIONS : PS_STAT_STACK_FAILED, 1);
	k->kstack = id;
	if (!user) {
		k->ustack = -EFAULT;
		return;
	}
	id = ps_stack_id(ctx, epoch, BPF_F_USER_STACK);
	if (id < 0)
		ps_stat_add(id == -EEXIST ? PS_STAT_STACK_COLLISIONS : PS_STAT_STACK_FAILED, 1);
	/* -EFAULT stays the kernel thread's "no user stack"; a task with an address space whose
	 * walk found no frame (its mm not loaded: mid-switch) gets -ENODATA, a missing stack. */
	k->ustack = id == -EFAULT ? -ENODATA : id;
}

/* Tells user space that `task`'s process has a new stack_counts entry. */
static __always_inline void ps_notify_profiled(const struct ps_stack_key *k, struct task_struct *task)
{
	struct ps_profiled *n = bpf_ringbuf_reserve(&profile_notify, sizeof(*n), 0);

	if (!n) {
		ps_stat_add(PS_STAT_DROP_PROFILE_NOTIFY, 1);
		return;
	}
	n->key = k->key;
	n->tid = k->tid;
	n->pad = 0;
	n->cgroup_id = BPF_CORE_READ(task, cgroups, dfl_cgrp, kn, id);
	bpf_probe_read_kernel_str(n->comm, sizeof(n->comm), task->comm);
	bpf_ringbuf_submit(n, 0);
}

/* Adds `value` to the count of `k`; the first count of a key notifies user space. */
static __always_inline void ps_add_stack_count(const struct ps_stack_key *k, __u64 value,
					       struct task_struct *task)
{
	__u64 *v = bpf_map_lookup_elem(&stack_counts, k);

	if (v) {
		__sync_fetch_and_add(v, value);
		return;
	}
	if (bpf_map_update_elem(&stack_counts, k, &value, BPF_NOEXIST)) {
		/* another CPU inserted it meanwhile, or the map is full */
		v = bpf_map_lookup_elem(&stack_counts, k);
		if (v)
			__sync_fetch_and_add(v, value);
		else
			ps_stat_add(PS_STAT_DROP_STACK_COUNTS, 1);
		return;
	}
	ps_notify_profiled(k, task);
}

#endif /* PROCSCOPE_BPF_STACKS_BPF_H_ */
