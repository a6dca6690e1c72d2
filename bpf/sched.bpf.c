// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Scheduler hooks: per-process on-CPU time, run-queue wait, context switches and page faults, and
 * the exit event.
 *
 * The kernel already keeps exact per-thread counters (se.sum_exec_runtime, sched_info.run_delay,
 * nvcsw/nivcsw, min_flt/maj_flt). Those it also sums for released threads in the signal struct
 * (PS_SUMMED: CPU time, context switches, faults) cost the switch nothing: a process's total is
 * read when needed, as /proc does (ps_add_summed). The run-queue wait (PS_FOLDED) is not kept for
 * dead threads, so at each switch-out we fold the thread's increase since its last fold into its
 * process's totals, which live in the leader's task storage: one or two task-storage lookups and
 * no hash update on the hot path. The numbers match /proc by construction, including the
 * run-queue wait from wakeup or preemption to switch-in, which the kernel adds at switch-in. A
 * thread that runs without switching out is picked up by the process iterator (iter.bpf.c).
 * Off-CPU time and contention need one clock read per switch (core.bpf.h, "Off-CPU accounting").
 */
#define PS_DEFINE_MAPS
#include "maps.bpf.h"
#include "stacks.bpf.h"

#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>

/* Set by the loader from CollectorOptions before load. .rodata: when one is off, the verifier
 * sees a constant and drops its code from the hot path. */
const volatile bool ps_offcpu = true;               /* blocked_ns, sleep_ns */
const volatile bool ps_contention = true;           /* runq_caused_ns, the contention map */
/* Off-CPU stacks: 1 in ps_offcpu_stack_ratio D switch-outs and 1 in ps_offcpu_stack_ratio *
 * PS_OFFCPU_SLEEP_FACTOR S switch-outs are sampled (0: off), as thresholds on a 32-bit hash: the
 * loader sets ps_offcpu_stack_thresh_{d,s} to 2^32 / that. S sleeps (pipes, futexes, epoll) are
 * the bulk of all switches and a capture costs microseconds, so they are sampled far less than D
 * (disk, locks). */
const volatile __u32 ps_offcpu_stack_ratio = 0;
const volatile __u32 ps_offcpu_stack_thresh_d = 0;
const volatile __u32 ps_offcpu_stack_thresh_s = 0;
const volatile __u64 ps_contention_min_ns = 1000000; /* smallest episode kept per victim */


/*
 * Cost (bench/overhead.sh, docs/PERFORMANCE.md "Off-CPU accounting and contention"): one rq clock
 * read per switch (three dependent loads) shared by both features; contention reads next's
 * last_queued and adds to prev's totals; off-CPU stores a timestamp at a D/S switch-out and, at
 * that thread's next switch-out, reads its last_arrival. Stacks only on 1 in ps_offcpu_stack_ratio
 * of the D/S switch-outs.
 */
/*
 * The clock of this CPU's run queue, which sched_info stamps (last_queued, last_arrival) and
 * __schedule has just updated. Reached through `curr` (prev: it runs on this CPU, so its cfs_rq is
 * this CPU's): the per-CPU `runqueues` ksym would need CONFIG_KALLSYMS_ALL, which kernels such as
 * this VM's lack (the verifier cannot resolve a data ksym without it), and bpf_ktime_get_ns() is
 * another clock (sched_clock vs CLOCK_MONOTONIC drift apart). Without group scheduling the cfs_rq
 * is embedded in the rq.
 */
static __always_inline __u64 ps_rq_clock(struct task_struct *curr)
{
	struct cfs_rq *cfs = curr->se.cfs_rq;
	__u64 clock = 0;

	if (bpf_core_field_exists(cfs->rq))
		return cfs->rq->clock;
	bpf_probe_read_kernel(&clock, sizeof(clock),
			      (void *)((unsigned long)cfs - bpf_core_field_offset(struct rq, cfs) +
				       bpf_core_field_offset(struct rq, clock)));
	return clock;
}


#define TASK_DEAD 0x80        /* prev_state of a task's final switch-out */
#ifndef ENOENT
#define ENOENT 2
#endif
#define SIGNAL_GROUP_EXIT 0x4 /* signal->flags: group_exit_code is the process's status */

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* The leader's state (the process totals) for `task`, whose own state is `t`. */
static __always_inline struct ps_task *ps_proc_state(struct task_struct *task, struct ps_task *t,
						     struct task_struct *leader)
{
	struct ps_task *p = t;

	if (leader != task) {
		t->was_thread = 1;
		p = bpf_task_storage_get(&tasks, leader, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
		if (!p) {
			ps_stat_add(PS_STAT_DROP_TASK_STORAGE, 1);
			return NULL;
		}
	}
	/* Once (ps_totals_state in core.bpf.h); a leader by execve() is left to adopt the previous
	 * leader's totals (ps_adopt). */
	ps_start_totals(p);
	return p;
}

/* Adds the totals the previous leader handed over, once they are there. */
static __always_inline void ps_adopt(struct ps_task *p, struct task_struct *leader)
{
	struct ps_counters *h;
	struct ps_key key;

	ps_key_of(leader, &key);
	h = ps_handover(&key);
	if (!h)
		return; /* not yet: the old leader has not switched out for the last time */
	ps_adopt_totals(p, h);
	bpf_map_delete_elem(&leader_handover, &key);
}

/*
 * `task` held its process's totals (it is or was the leader) and is switching out for the last
 * time while the process lives on: after a pthread_exit() of the leader, or because another
 * thread's execve() is making that thread the leader. If the new leader is already in place, it
 * gets the totals now; if not, they wait in leader_handover for it.
 */
static __always_inline void ps_hand_over(struct task_struct *task, struct ps_task *t,
					 struct task_struct *leader, struct ps_task *p)
{
	struct ps_key key;

	if (leader != task) {
		ps_adopt_totals(p, &t->proc);
		return;
	}
	ps_key_of(leader, &key);
	if (bpf_map_update_elem(&leader_handover, &key, &t->proc, BPF_ANY))
		ps_stat_add(PS_STAT_DROP_HANDOVER, 1);
}

/* Sends the exit event of the process whose last thread `task` is switching out for good. */
static __always_inline void ps_emit_exit(struct task_struct *task, struct task_struct *leader,
					 struct ps_task *p)
{
	struct signal_struct *sig = task->signal;
	struct ps_exit_event *e;
	struct ps_io *io;
	struct ps_key key;

	ps_key_of(leader, &key);
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		ps_stat_add(PS_STAT_DROP_RINGBUF, 1);
		goto cleanup;
	}
	e->key = key;
	e->ppid = leader->real_parent->tgid;
	e->uid = leader->real_cred->uid.val;
	e->cgroup_id = task->cgroups->dfl_cgrp->kn->id;
	e->exit_ns = bpf_ktime_get_boot_ns();
	e->exit_code = (sig->flags & SIGNAL_GROUP_EXIT) ? sig->group_exit_code : task->exit_code;
	e->flags = bpf_map_lookup_elem(&oom_victims, &key) ? PS_EXIT_OOM_KILLED : 0;
	e->rss_max_bytes = sig->maxrss * ps_page_size; /* maxrss is in pages */
	if (p->totals == PS_TOTALS_ADOPTING)
		ps_adopt(p, leader);
	bpf_probe_read_kernel(e->comm, sizeof(e->comm), leader->comm);
	__builtin_memcpy(&e->c, &p->proc, sizeof(e->c));
	/* Released threads are in the signal struct; this one and a zombie leader may not be yet,
	 * nor a thread still on its way out of do_exit() (its later time is not in the event). */
	ps_add_summed(sig, NULL, &e->c);
	io = bpf_map_lookup_elem(&proc_io, &key);
	if (io)
		__builtin_memcpy(&e->io, io, sizeof(e->io));
	else
		__builtin_memset(&e->io, 0, sizeof(e->io));
	bpf_ringbuf_submit(e, 0);
	ps_stat_add(PS_STAT_EXITS, 1);
cleanup:
	bpf_map_delete_elem(&proc_io, &key);
	bpf_map_delete_elem(&oom_victims, &key);
	bpf_map_delete_elem(&leader_handover, &key);
	bpf_task_storage_delete(&tasks, leader);
}

/* Closes the off-CPU episode `prev` began at its last switch-out (it has run since): its time
 * asleep goes to the process totals and, when its stacks were sampled, to their count. Before
 * the fold: t->snap.runq_ns is still the run_delay of that switch-out. */
static __always_inline void ps_end_offcpu(struct task_struct *prev, struct ps_task *t,
					  struct ps_counters *proc,
					  const struct ps_thread_counters *cur, bool shared)
{
	__u64 ns = ps_offcpu_ns(t->off_ts, prev->sched_info.last_arrival,
				cur->runq_ns - t->snap.runq_ns);

	if (t->off_kind == PS_STACK_OFFCPU_BLOCKED)
		PS_ADD(shared, proc->blocked_ns, ns);
	else
		PS_ADD(shared, proc->sleep_ns, ns);
	t->off_ts = 0;
	if (ps_offcpu_stack_ratio && t->off_stack.kind) {
		if (!ps_stack_epoch_live(ps_epoch, t->off_stack.epoch)) {
			/* The stack map the ids point into has been recycled: the time still counts. */
			ps_stat_add(PS_STAT_OFFCPU_STACK_EXPIRED, 1);
			t->off_stack.kstack = -ENOENT;
			t->off_stack.ustack = -ENOENT;
		}
		if (ns) {
			/* Weighted by the sampling ratio; capped at 2^62 rather than wrapped (an hour's
			 * sleep at the largest ratio would overflow). Sampled episodes only. */
			__u64 w = (__u64)ps_offcpu_stack_ratio *
				  (t->off_kind == PS_STACK_OFFCPU_BLOCKED ? 1 : PS_OFFCPU_SLEEP_FACTOR);

			ps_add_stack_count(&t->off_stack, ns > (1ULL << 62) / w ? 1ULL << 62 : ns * w, prev);
		}
		t->off_stack.kind = 0;
	}
}

/* Starts an off-CPU episode of kind `kind` at the switch-out at `now`; samples its stacks (prev
 * is `current`, so they are its blocking path). The coin is a multiplicative hash of the rq clock
 * (ns: its low bits are noise to any workload) and the tid: no helper call, no division, where
 * bpf_get_prandom_u32() % ratio cost 25-40 ns per switch-out. */
static __always_inline void ps_start_offcpu(void *ctx, struct task_struct *prev,
					    struct task_struct *leader, struct ps_task *t,
					    __u32 kind, __u64 now)
{
	__u32 coin;

	t->off_ts = now;
	t->off_kind = kind;
	if (!ps_offcpu_stack_ratio)
		return;
	coin = (__u32)(((now ^ (__u64)prev->pid) * 0x9E3779B97F4A7C15ULL) >> 32);
	if (coin >= (kind == PS_STACK_OFFCPU_BLOCKED ? ps_offcpu_stack_thresh_d
						      : ps_offcpu_stack_thresh_s))
		return;
	ps_key_of(leader, &t->off_stack.key);
	t->off_stack.tid = prev->pid;
	t->off_stack.kind = kind;
	ps_capture_stacks(ctx, &t->off_stack, prev->mm != NULL);
}

/*
 * Contention: the run-queue wait of `next`'s episode, which ends now, is charged to the process
 * leaving the CPU. Exact for the wait itself (the same rq clock difference the kernel adds to
 * next's run_delay right after this tracepoint); the attribution is to the last holder of the
 * CPU, which is the one that held it for the whole wait when two tasks share a CPU, and the one
 * whose slice ended the wait otherwise. Episodes of at least ps_contention_min_ns also go to the
 * (culprit, victim) map, so that the hot path pays a hash update only for waits that matter.
 */
static __always_inline void ps_charge_wait(struct task_struct *next, struct task_struct *leader,
					   struct ps_counters *proc, __u64 wait, bool shared,
					   bool next_btf)
{
	struct ps_contention_key k;
	struct ps_contention_val one, *v;
	struct task_struct *nl;

	PS_ADD(shared, proc->runq_caused_ns, wait);
	if (wait < ps_contention_min_ns)
		return;
	ps_key_of(leader, &k.culprit);
	if (next_btf) {
		nl = next->group_leader;
		k.victim.tgid = nl->tgid;
		k.victim.start_ns = nl->start_boottime;
	} else {
		nl = BPF_CORE_READ(next, group_leader);
		k.victim.tgid = BPF_CORE_READ(nl, tgid);
		k.victim.start_ns = BPF_CORE_READ(nl, start_boottime);
	}
	k.victim.pad = 0;
	v = bpf_map_lookup_elem(&contention, &k);
	if (v) {
		__sync_fetch_and_add(&v->wait_ns, wait);
		__sync_fetch_and_add(&v->episodes, 1);
		return;
	}
	one.wait_ns = wait;
	one.episodes = 1;
	if (bpf_map_update_elem(&contention, &k, &one, BPF_NOEXIST)) {
		v = bpf_map_lookup_elem(&contention, &k); /* another CPU inserted it, or full */
		if (v) {
			__sync_fetch_and_add(&v->wait_ns, wait);
			__sync_fetch_and_add(&v->episodes, 1);
		} else {
			ps_stat_add(PS_STAT_DROP_CONTENTION, 1);
		}
	}
}

/* `next_btf`: `next` is a BTF pointer (tp_btf); the raw_tp twin reads it with probes. */
static __always_inline int ps_on_switch(void *ctx, struct task_struct *prev,
					struct task_struct *next, unsigned int prev_state,
					bool next_btf)
{
	struct ps_thread_counters cur;
	struct task_struct *leader;
	struct ps_task *t, *p;
	__u64 now = 0;
	__u32 kind = 0;
	bool shared;

	if (!prev->pid) /* this CPU's idle task */
		return 0;
	t = bpf_task_storage_get(&tasks, prev, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!t) {
		ps_stat_add(PS_STAT_DROP_TASK_STORAGE, 1);
		return 0;
	}
	leader = prev->group_leader;
	p = ps_proc_state(prev, t, leader);
	if (!p)
		return 0;
	if (p->totals == PS_TOTALS_ADOPTING)
		ps_adopt(p, leader);
	ps_read_folded(prev, &cur);
	shared = leader != prev || prev->signal->nr_threads > 1;
	if (ps_offcpu || ps_contention)
		now = ps_rq_clock(prev);
	if (ps_offcpu && t->off_ts)
		ps_end_offcpu(prev, t, &p->proc, &cur, shared);
	if (ps_contention) {
		__u64 q = next_btf ? next->sched_info.last_queued
				   : BPF_CORE_READ(next, sched_info.last_queued);
		__u64 wait = ps_wait_ending(now, q);

		if (wait)
			ps_charge_wait(next, leader, &p->proc, wait, shared, next_btf);
	}
	ps_fold_values(&t->snap, &cur, &p->proc, shared);
	if (ps_offcpu) {
		kind = ps_offcpu_kind(prev_state);
		if (kind)
			ps_start_offcpu(ctx, prev, leader, t, kind, now);
	}
	if (prev_state == TASK_DEAD) {
		switch (ps_final_step(t)) {
		case PS_FINAL_EXIT:
			ps_emit_exit(prev, leader, p);
			break;
		case PS_FINAL_HAND_OVER:
			ps_hand_over(prev, t, leader, p);
			break;
		case PS_FINAL_NOTHING:
			break;
		}
	}
	return 0;
}

/* sched_process_exit fires for every thread; group_dead only for the process's last one. Its
 * counters keep growing until the final switch-out, so the event is sent there. */
static __always_inline int ps_on_exit(struct task_struct *task, bool group_dead)
{
	struct ps_task *t;

	t = bpf_task_storage_get(&tasks, task, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!t) {
		ps_stat_add(PS_STAT_DROP_TASK_STORAGE, 1);
		return 0;
	}
	/* The leader's entry, where the final switch-out of the last thread finds the totals. */
	if (!ps_proc_state(task, t, task->group_leader))
		return 0;
	if (group_dead)
		t->group_dead = 1;
	return 0;
}

static __always_inline int ps_on_oom_victim(struct task_struct *victim)
{
	struct task_struct *leader;
	struct ps_key key = {};
	__u8 one = 1;

	if (!victim)
		return 0;
	leader = BPF_CORE_READ(victim, group_leader);
	key.tgid = BPF_CORE_READ(leader, tgid);
	key.start_ns = BPF_CORE_READ(leader, start_boottime);
	if (bpf_map_update_elem(&oom_victims, &key, &one, BPF_ANY))
		ps_stat_add(PS_STAT_DROP_OOM_MAP, 1);
	return 0;
}

/* tp_btf programs, and raw_tp twins that the loader picks when the kernel has no btf_trace_* type
 * for a tracepoint. In these hooks the task of interest is `current`, whose BTF pointer
 * bpf_get_current_task_btf() gives the raw_tp twins. */

SEC("tp_btf/sched_switch")
int BPF_PROG(ps_sched_switch, bool preempt, struct task_struct *prev, struct task_struct *next,
	     unsigned int prev_state)
{
	return ps_on_switch(ctx, prev, next, prev_state, true);
}

SEC("raw_tp/sched_switch")
int BPF_PROG(ps_sched_switch_raw, bool preempt, struct task_struct *prev,
	     struct task_struct *next, unsigned int prev_state)
{
	return ps_on_switch(ctx, bpf_get_current_task_btf(), next, prev_state, false);
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(ps_sched_exit, struct task_struct *task, bool group_dead)
{
	return ps_on_exit(task, group_dead);
}

SEC("raw_tp/sched_process_exit")
int BPF_PROG(ps_sched_exit_raw, struct task_struct *task, bool group_dead)
{
	return ps_on_exit(bpf_get_current_task_btf(), group_dead);
}

SEC("tp_btf/mark_victim")
int BPF_PROG(ps_oom_victim, struct task_struct *task, uid_t uid)
{
	return ps_on_oom_victim(task);
}

SEC("raw_tp/mark_victim")
int BPF_PROG(ps_oom_victim_raw, struct task_struct *task, uid_t uid)
{
	return ps_on_oom_victim(task);
}
