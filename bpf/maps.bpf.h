/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Maps shared by all procscope BPF programs, and the task readers they share. sched.bpf.c defines them (PS_DEFINE_MAPS); the other
 * objects declare them extern and `bpftool gen object` links them into one.
 */
#ifndef PROCSCOPE_BPF_MAPS_BPF_H_
#define PROCSCOPE_BPF_MAPS_BPF_H_

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "procscope.h"
#include "core.bpf.h"

#ifdef PS_DEFINE_MAPS
#define PS_MAP
#else
#define PS_MAP extern
#endif

/* The kernel's page size, set by the loader before load from sysconf(_SC_PAGESIZE) (4K on x86-64;
 * 4K, 16K or 64K on arm64). A .rodata constant: the verifier sees it fixed. */
#ifdef PS_DEFINE_MAPS
const volatile __u64 ps_page_size = 4096;
#else
extern const volatile __u64 ps_page_size;
#endif

/*
 * tasks: task_struct -> struct ps_task. One entry per thread seen switching out, created lazily;
 * freed by the kernel with the task, and the leader's entry deleted when the exit event is sent.
 * No size limit beyond memory (allocation failure counts PS_STAT_DROP_TASK_STORAGE).
 */
PS_MAP struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct ps_task);
} tasks SEC(".maps");

/*
 * proc_io: ps_key -> struct ps_io, block I/O and page-cache dirtying per process. Created in the
 * process's own context (first request or first dirtied page), so only live processes get one;
 * deleted when the process's exit event is sent. Sized for 32k processes doing I/O at once.
 */
PS_MAP struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 32768);
	__type(key, struct ps_key);
	__type(value, struct ps_io);
} proc_io SEC(".maps");

/*
 * inode_owner: inode address -> ps_key of the last process that dirtied its page cache, so that
 * writeback submitted later by a kernel flusher is charged to the writer. LRU: old files age out.
 */
PS_MAP struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct ps_key);
} inode_owner SEC(".maps");

/*
 * leader_handover: ps_key -> the process totals of a leader that died while its process lives on.
 * When a non-leader thread calls execve() the kernel makes it the leader and frees the old one
 * (and its task storage); the new leader adopts these totals and deletes the entry. The exit
 * event deletes a leftover entry (a leader that called pthread_exit). Full counts
 * PS_STAT_DROP_HANDOVER.
 */
PS_MAP struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct ps_key);
	__type(value, struct ps_counters);
} leader_handover SEC(".maps");

/*
 * requests: a table of the block requests in flight (struct ps_request, procscope.h), from
 * request allocation (block_getrq, in the submitter's context) through issue (and re-issue after
 * a requeue) to completion, which frees the slot. Two-way set associative: the address of the
 * request's first bio hashes to a set of two slots (ps_request_set), and a slot is claimed with a
 * compare-and-swap of its tag. An array, so that every lookup is inlined and nothing takes a lock
 * or allocates (with a hash map the three block hooks cost 1.27 us per I/O, now 0.94:
 * docs/PERFORMANCE.md, issue 14).
 * Both slots of a set busy: the request is not tracked (PS_STAT_DROP_REQUESTS), unless one holds
 * a request claimed PS_REQUEST_STALE_JIFFIES ago, which was freed without completing (merged into
 * another) and is reclaimed. PS_REQUEST_SLOTS x 48 bytes.
 */
PS_MAP struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, PS_REQUEST_SLOTS);
	__type(key, __u32);
	__type(value, struct ps_request);
} requests SEC(".maps");

/*
 * oom_victims: ps_key -> 1 for a process the OOM killer chose, until its exit event is sent
 * (which deletes it). Full counts PS_STAT_DROP_OOM_MAP.
 */
PS_MAP struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct ps_key);
	__type(value, __u8);
} oom_victims SEC(".maps");

/* events: ring buffer of struct ps_exit_event; full counts PS_STAT_DROP_RINGBUF. */
PS_MAP struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 22);
} events SEC(".maps");

/* stats: enum ps_stat -> per-CPU counter; user space sums the CPUs. */
PS_MAP struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, PS_STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

/*
 * stacks0, stacks1: stack id -> up to PS_STACK_DEPTH instruction pointers (kernel and user stacks
 * share them). The programs fill the map of the current epoch (ps_epoch, even: stacks0); user space
 * advances the epoch, drains stack_counts, reads the ids it references from the previous epoch's
 * map and clears that map before its turn comes again. Preallocated by the kernel: 8192 entries
 * x ~1 KiB each. A bucket already holding another stack counts PS_STAT_STACK_COLLISIONS.
 */
struct ps_stack_map {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(max_entries, 8192);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, PS_STACK_DEPTH * sizeof(__u64));
};
PS_MAP struct ps_stack_map stacks0 SEC(".maps");
PS_MAP struct ps_stack_map stacks1 SEC(".maps");

/*
 * stack_counts: struct ps_stack_key -> samples (on-CPU) or ns (off-CPU). User space drains it
 * (reads and deletes every entry) once per pass. Full counts PS_STAT_DROP_STACK_COUNTS.
 */
PS_MAP struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct ps_stack_key);
	__type(value, __u64);
} stack_counts SEC(".maps");

/* profile_notify: ring buffer of struct ps_profiled, one per new stack_counts entry. Full counts
 * PS_STAT_DROP_PROFILE_NOTIFY. */
PS_MAP struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 16);
} profile_notify SEC(".maps");

/*
 * contention: (culprit, victim) process pair -> run-queue wait of the victim's episodes of at
 * least ps_contention_min_ns that ended when the culprit left the CPU (bpf/sched.bpf.c). User
 * space drains it (reads and deletes every entry) once per pass; a plain hash, not an LRU, so
 * that a full map is counted (PS_STAT_DROP_CONTENTION) instead of silently evicting a pair.
 */
PS_MAP struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__type(key, struct ps_contention_key);
	__type(value, struct ps_contention_val);
} contention SEC(".maps");

/* The stack-map epoch, advanced by user space (in .bss: one writer, any number of readers). */
#ifdef PS_DEFINE_MAPS
volatile __u32 ps_epoch;
#else
extern volatile __u32 ps_epoch;
#endif

static __always_inline void ps_stat_add(__u32 idx, __u64 n)
{
	__u64 *v = bpf_map_lookup_elem(&stats, &idx);

	if (v)
		__sync_fetch_and_add(v, n); /* an interrupt's program may hit the same CPU's slot */
}

/* The kernel's current PS_FOLDED counters and switch-in count of one thread: what the
 * scheduler hook folds (the PS_SUMMED ones are left unset). */
static __always_inline void ps_read_folded(struct task_struct *task, struct ps_thread_counters *c)
{
	c->pcount = task->sched_info.pcount;
#define PS_READ_FIELD(f, member, kind) PS_IF_FOLDED(kind, c->f = task->member)
	PS_COUNTER_FIELDS(PS_READ_FIELD)
#undef PS_READ_FIELD
}

/* The state of ps_walk_thread over a process's thread list: the list head, the node visited
 * next, and the PS_SUMMED counters added so far. */
struct ps_thread_walk {
	__u64 head; /* &signal->thread_head */
	__u64 node; /* a task's thread_node */
	struct ps_thread_counters sum;
};

/* bpf_loop callback: adds one thread's PS_SUMMED counters, moves to the next; 1 stops. The list
 * is RCU-protected and every program runs in an RCU read section; probe reads, so a node that
 * the kernel is unlinking reads safely (a thread released meanwhile may count twice or not at
 * all in this one read, as in /proc). */
static long ps_walk_thread(__u32 i, void *ctx)
{
	struct ps_thread_walk *w = ctx;
	struct task_struct *t;
	__u64 next = 0;

	if (!w->node || w->node == w->head)
		return 1;
	t = (struct task_struct *)(w->node - bpf_core_field_offset(struct task_struct, thread_node));
#define PS_WALK_FIELD(f, member, kind) PS_IF_SUMMED(kind, w->sum.f += BPF_CORE_READ(t, member))
	PS_COUNTER_FIELDS(PS_WALK_FIELD)
#undef PS_WALK_FIELD
	bpf_probe_read_kernel(&next, sizeof(next), (void *)w->node); /* list_head.next */
	w->node = next;
	return 0;
}

/* Most threads walked per process; a bigger one's total misses the rest (counted). */
#define PS_MAX_THREAD_WALK 65536

/* Attempts at a consistent read of a process's summed counters (ps_add_summed). */
#define PS_SUMMED_READS 4
/* Reads of the sequence count per attempt while a writer is in its section: a release takes
 * well under a microsecond, but its CPU can be preempted by the hypervisor in the middle. The
 * writer may need this CPU's run-queue lock (a pidfd waiter's wakeup), so the wait is bounded:
 * ~16k probe reads, a few hundred microseconds at most, and only while a release is under way. */
#define PS_SEQ_SPINS 16384

/* bpf_loop callback: reads the sequence count of the signal struct at `sig` into `seq`; stops
 * (1) once it is even: no writer in its section. */
struct ps_seq_wait {
	__u64 sig; /* struct signal_struct * */
	unsigned int seq;
};

static long ps_wait_seq_even(__u32 i, void *ctx)
{
	struct ps_seq_wait *w = ctx;
	struct signal_struct *sig = (struct signal_struct *)w->sig; /* not in the CO-RE access */

	w->seq = BPF_CORE_READ(sig, stats_lock.seqcount.seqcount.sequence);
	return !(w->seq & 1);
}

/*
 * Adds to `c` the PS_SUMMED counters of the process whose signal struct is `sig`: what its
 * released threads left there plus the current values of the threads not released yet, as the
 * kernel's thread_group_cputime() adds them, and like it under sig->stats_lock's sequence count:
 * release_task() adds a thread's counters to the signal struct and unlinks it from the thread
 * list in one write section of that lock, so a read that a release overlapped (a parent reaping
 * a child at its final switch-out, on the other CPU) counted the thread twice or not at all and
 * is made again, once the writer has left its section (x86 orders the loads). After
 * PS_SUMMED_READS attempts the last read stands and PS_STAT_DROP_SUMMED_READ counts it.
 * `only` is the process's one thread when the caller knows there is exactly one and it is not
 * being released (read directly, no lock needed); NULL walks the thread list.
 */
static __always_inline void ps_add_summed(struct signal_struct *sig, struct task_struct *only,
					  struct ps_counters *c)
{
	struct ps_seq_wait sw = {.sig = (__u64)sig};
	struct ps_thread_walk w = {};
	struct ps_thread_counters s = {};
	unsigned int seq2;
	bool stable = false;
	long n = 0;
	int i;

	/* PS_SIG_FIELD: the signal struct's member of each summed counter, into `s`. */
#undef PS_SUMMED
#define PS_SUMMED(member) (sig->member)
#define PS_SIG_FIELD(f, member, kind) PS_IF_SUMMED(kind, s.f = (kind))
	if (only) {
		/* Into w.sum, so that one add follows both ways (the verifier rejects an instruction
		 * that the compiler merged to load through a task or the stack pointer). */
#define PS_ONLY_FIELD(f, member, kind) PS_IF_SUMMED(kind, w.sum.f = only->member)
		PS_COUNTER_FIELDS(PS_ONLY_FIELD)
#undef PS_ONLY_FIELD
		PS_COUNTER_FIELDS(PS_SIG_FIELD)
	} else {
		for (i = 0; i < PS_SUMMED_READS && !stable; i++) {
			bpf_loop(PS_SEQ_SPINS, ps_wait_seq_even, &sw, 0);
			asm volatile("" ::: "memory");
			PS_COUNTER_FIELDS(PS_SIG_FIELD)
			__builtin_memset(&w, 0, sizeof(w));
			w.head = (__u64)&sig->thread_head;
			w.node = (__u64)BPF_CORE_READ(sig, thread_head.next);
			n = bpf_loop(PS_MAX_THREAD_WALK, ps_walk_thread, &w, 0);
			asm volatile("" ::: "memory");
			seq2 = BPF_CORE_READ(sig, stats_lock.seqcount.seqcount.sequence);
			stable = seq2 == sw.seq && !(sw.seq & 1); /* odd: the wait ran out */
		}
		if (!stable)
			ps_stat_add(PS_STAT_DROP_SUMMED_READ, 1);
		if (n >= PS_MAX_THREAD_WALK)
			ps_stat_add(PS_STAT_DROP_THREAD_WALK, 1);
	}
#undef PS_SIG_FIELD
#undef PS_SUMMED
#define PS_SUMMED(member) (((struct signal_struct *)0)->member)
#define PS_SUM_FIELD(f, member, kind) PS_IF_SUMMED(kind, c->f += s.f + w.sum.f)
	PS_COUNTER_FIELDS(PS_SUM_FIELD)
#undef PS_SUM_FIELD
}

static __always_inline void ps_key_of(struct task_struct *leader, struct ps_key *k)
{
	k->tgid = leader->tgid;
	k->pad = 0;
	k->start_ns = leader->start_boottime;
}

/* The totals a previous leader of process `k` handed over, or NULL. */
static __always_inline struct ps_counters *ps_handover(const struct ps_key *k)
{
	return bpf_map_lookup_elem(&leader_handover, k);
}

#endif /* PROCSCOPE_BPF_MAPS_BPF_H_ */
