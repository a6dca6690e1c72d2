/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Small pure helpers shared by the BPF programs (and run on fixed inputs by the tests). */
#ifndef PROCSCOPE_BPF_CORE_BPF_H_
#define PROCSCOPE_BPF_CORE_BPF_H_

#include "procscope.h"

/* Histogram bucket of one run-queue wait episode (see PS_RUNQ_BUCKETS). */
static __always_inline __u32 ps_runq_bucket(__u64 wait_ns)
{
	__u64 ns = wait_ns;
	__u32 b = 0;

	/* floor(log2(ns / 1000)), unrolled (the verifier sees a bounded result) and without the
	 * division, which costs the hot path ~10 ns: floor(ns / 2^k) >= 1000 * 2^j exactly when
	 * ns >= 1000 * 2^(j + k), so each step compares the shifted value with 1000 << j. */
	if (ns >= (1000ULL << 16)) { b += 16; ns >>= 16; }
	if (ns >= (1000ULL << 8)) { b += 8; ns >>= 8; }
	if (ns >= (1000ULL << 4)) { b += 4; ns >>= 4; }
	if (ns >= (1000ULL << 2)) { b += 2; ns >>= 2; }
	if (ns >= (1000ULL << 1)) { b += 1; }
	return b < PS_RUNQ_BUCKETS ? b : PS_RUNQ_BUCKETS - 1;
}

/* Bytes in a folio; nr_pages is 0 for a small folio (its count is only kept for large ones). */
static __always_inline __u64 ps_folio_bytes(__u64 nr_pages, __u64 page_size)
{
	return (nr_pages ? nr_pages : 1) * page_size;
}

/* One thread's kernel counters: the PS_COUNTER_FIELDS, named as in struct ps_counters, and the
 * switch-in count. As a thread's snapshot at its last fold, only pcount and the PS_FOLDED
 * counters are kept (the PS_SUMMED ones stay 0: they are never folded). */
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
	PS_SCALAR_FIELDS(PS_ADD_FIELD)
#undef PS_ADD_FIELD
#define PS_ADD_ARRAY(f, n)                                                                         \
	for (i = 0; i < (n); i++)                                                                 \
		PS_ADD(shared, dst->f[i], src->f[i]);
	PS_COUNTER_ARRAYS(PS_ADD_ARRAY)
#undef PS_ADD_ARRAY
}

/*
 * PS_IF_FOLDED(kind, stmt) / PS_IF_SUMMED(kind, stmt): `stmt` for a PS_COUNTER_FIELDS entry of
 * that kind only; nothing at all (no load, no add of 0) for the other kind. The kind's constness
 * decides it: PS_FOLDED is 0, a constant; PS_SUMMED(member) is a member of struct signal_struct,
 * not a constant (never evaluated: __builtin_constant_p does not). A site that reads the member
 * redefines PS_SUMMED(member) as its own signal pointer's member around its expansion
 * (ps_add_summed, maps.bpf.h).
 */
#define PS_SUMMED(member) (((struct signal_struct *)0)->member)
#define PS_FOLDED 0
#define PS_IF_FOLDED(kind, stmt)                                                                  \
	if (__builtin_constant_p(kind)) {                                                         \
		stmt;                                                                             \
	}
#define PS_IF_SUMMED(kind, stmt)                                                                  \
	if (!__builtin_constant_p(kind)) {                                                        \
		stmt;                                                                             \
	}

/* Moves the increase of the PS_FOLDED counters from `snap` to `cur` into the process totals `p`
 * and advances `snap` (pcount too). `shared`: other threads may fold into `p` at the same time
 * (atomic adds). The PS_SUMMED counters are neither read nor folded. */
static __always_inline void ps_fold_values(struct ps_thread_counters *snap,
					   const struct ps_thread_counters *cur,
					   struct ps_counters *p, bool shared)
{
	__u64 d_runq = cur->runq_ns - snap->runq_ns;

#define PS_FOLD_FIELD(f, member, kind)                                                             \
	PS_IF_FOLDED(kind, PS_ADD(shared, p->f, cur->f - snap->f); snap->f = cur->f)
	PS_COUNTER_FIELDS(PS_FOLD_FIELD)
#undef PS_FOLD_FIELD
	/* Exactly one switch-in since the last fold: d_runq is one wait episode. */
	if (cur->pcount - snap->pcount == 1) {
		__u32 b = ps_runq_bucket(d_runq);

		if (b < PS_RUNQ_BUCKETS)
			PS_ADD(shared, p->runq_hist[b], 1);
	}
	snap->pcount = cur->pcount;
}

/*
 * Off-CPU accounting (PS_ACCOUNTED_FIELDS blocked_ns, sleep_ns). The kernel keeps no per-thread
 * sleep time here: delay accounting is off by default (kernel.task_delayacct=0, and it times
 * only I/O and a few other waits) and schedstats (se.statistics.sleep_start/block_start) is off
 * too. So the hook takes one timestamp, the rq clock, at a switch-out into D or S, and the
 * episode is closed at the thread's next switch-out, when the thread is `current` and its
 * process's totals are at hand anyway: the kernel has stamped its switch-in meanwhile
 * (sched_info.last_arrival, same rq clock) and added its wait after the wakeup to run_delay. So
 * no lookup of `next`'s task storage at all (and the raw_tp twin, which has no BTF pointer to
 * `next`, works the same).
 */
#define PS_TASK_INTERRUPTIBLE 0x1
#define PS_TASK_UNINTERRUPTIBLE 0x2
#define PS_TASK_NOLOAD 0x400 /* with UNINTERRUPTIBLE: TASK_IDLE, an idle kernel thread ("I") */

/*
 * What a switch-out starts: PS_STACK_OFFCPU_BLOCKED (D), PS_STACK_OFFCPU_SLEEP (S, or TASK_IDLE)
 * or 0: nothing, the task stays runnable or stops for another reason (stopped, traced, frozen,
 * dead). A task preempted after it set its sleep state (between set_current_state() and
 * schedule()) stays queued, but the kernel does not count that wait as run_delay
 * (sched_info_depart queues only a TASK_RUNNING task): it goes to its state's counter like a
 * sleep, so that runq + blocked + sleep is all of the time off-CPU. (Measured: on a loaded
 * machine that wait was up to half of a fsync-heavy child's D time.)
 */
static __always_inline __u32 ps_offcpu_kind(__u32 prev_state)
{
	if (prev_state & PS_TASK_UNINTERRUPTIBLE)
		return (prev_state & PS_TASK_NOLOAD) ? PS_STACK_OFFCPU_SLEEP : PS_STACK_OFFCPU_BLOCKED;
	if (prev_state & PS_TASK_INTERRUPTIBLE)
		return PS_STACK_OFFCPU_SLEEP;
	return 0;
}

/* Time asleep of an episode that began with the switch-out at `off_ts` and ended with the switch-in
 * at `arrival` (both rq clock): that span less the run-queue wait after the wakeup, `d_runq`. 0 if
 * the thread has not switched in since (arrival before off_ts) or the CPUs' clocks disagree. */
static __always_inline __u64 ps_offcpu_ns(__u64 off_ts, __u64 arrival, __u64 d_runq)
{
	__u64 span;

	if (arrival <= off_ts)
		return 0;
	span = arrival - off_ts;
	return span > d_runq ? span - d_runq : 0;
}

/* Run-queue wait of the episode that ends now: the rq clock `now` less the task's
 * sched_info.last_queued (0: it was not queued, e.g. the idle task). At sched_switch the kernel's
 * sched_info_arrive (which adds the same difference to run_delay) has not run yet. */
static __always_inline __u64 ps_wait_ending(__u64 now, __u64 last_queued)
{
	return last_queued && now > last_queued ? now - last_queued : 0;
}

/* Whether an off-CPU stack key of epoch `key_epoch` still names ids in a live stack map: the map
 * of the current epoch or the previous one (which user space drains before it clears it). */
static __always_inline bool ps_stack_epoch_live(__u32 epoch, __u16 key_epoch)
{
	return (__u16)((__u16)epoch - key_epoch) <= 1;
}

/*
 * Where a process's totals (in its leader's ps_task) stand:
 *
 *   PS_TOTALS_NONE ---- first fold or exit of a thread, leader not by exec ----> PS_TOTALS_OWN
 *        |              (ps_start_totals)                                          ^
 *        '-- leader by exec (was_thread) --> PS_TOTALS_ADOPTING -- ps_adopt_totals -'
 *                                            (the old leader's totals, once handed over)
 *
 * A task whose totals are not NONE holds them: at its final switch-out it sends the exit event
 * (group_dead) or hands them over to the next leader (ps_final_step).
 */
enum ps_totals_state {
	PS_TOTALS_NONE = 0, /* not started yet */
	PS_TOTALS_OWN,      /* started, or the previous leader's totals adopted */
	PS_TOTALS_ADOPTING, /* a leader by exec: the previous leader's totals may wait in
			     * leader_handover */
};

/* Per-thread state, in task storage so that it lives and dies with the task_struct. */
struct ps_task {
	/* This thread's kernel counters as of its last fold into the process totals. */
	struct ps_thread_counters snap;
	/* Process totals; used on the thread-group leader only. */
	struct ps_counters proc;
	__u32 totals;     /* enum ps_totals_state of proc */
	__u32 group_dead; /* set at sched_process_exit of the process's last thread */
	__u32 was_thread; /* folded as a non-leader thread: if it becomes the leader, an exec did it */
	/* Leader only, written by the process iterator alone: the signature of what its last full
	 * record said (ps_emit_sig) and the reading session (ps_iter_session) that received it. */
	__u32 emit_session;
	__u64 emit_sig;
	/* The off-CPU episode in progress: rq clock at its D/S switch-out (0: none), its kind
	 * (enum ps_stack_kind) and, when sampled, its stacks (off_stack.kind != 0). */
	__u64 off_ts;
	__u32 off_kind;
	__u32 pad2;
	struct ps_stack_key off_stack;
};

/* NONE -> OWN or ADOPTING, once, whichever thread gets there first (a leader by exec adopts the
 * previous leader's totals). True for the call that made the step. */
static __always_inline bool ps_start_totals(struct ps_task *p)
{
	__u32 next;

	if (p->totals != PS_TOTALS_NONE)
		return false;
	next = p->was_thread ? PS_TOTALS_ADOPTING : PS_TOTALS_OWN;
	return __sync_val_compare_and_swap(&p->totals, PS_TOTALS_NONE, next) == PS_TOTALS_NONE;
}

/* ADOPTING -> OWN (or OWN stays OWN): adds a previous leader's totals. */
static __always_inline void ps_adopt_totals(struct ps_task *p, const struct ps_counters *prev)
{
	ps_add_counters(&p->proc, prev, true);
	p->totals = PS_TOTALS_OWN;
}

/* What a task's final switch-out (TASK_DEAD) does. */
enum ps_final {
	PS_FINAL_NOTHING = 0, /* a thread that never held the totals */
	PS_FINAL_EXIT,        /* the process's last thread: send the exit event */
	PS_FINAL_HAND_OVER,   /* it held the totals (it is or was the leader), the process lives on */
};

static __always_inline enum ps_final ps_final_step(const struct ps_task *t)
{
	if (t->group_dead)
		return PS_FINAL_EXIT;
	if (t->totals != PS_TOTALS_NONE)
		return PS_FINAL_HAND_OVER;
	return PS_FINAL_NOTHING;
}

#endif /* PROCSCOPE_BPF_CORE_BPF_H_ */
