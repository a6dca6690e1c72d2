/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The only contract between the BPF programs and user space. Plain C, fixed-width types and
 * explicit padding so that clang -target bpf and g++ agree on every offset.
 */
#ifndef PROCSCOPE_BPF_PROCSCOPE_H_
#define PROCSCOPE_BPF_PROCSCOPE_H_

#ifndef __bpf__
#include <linux/types.h>
#endif

#define PS_COMM_LEN 16

/*
 * Run-queue wait histogram, per process, one count per wait episode (wakeup or preemption to
 * switch-in). Bucket 0 counts waits below 2 us, bucket i (1..N-2) waits in [2^i, 2^(i+1)) us,
 * the last bucket everything from 2^(N-1) us (about 0.5 s) up.
 */
#define PS_RUNQ_BUCKETS 20

/* A process (thread group) incarnation: a reused pid gets a new start time. */
struct ps_key {
	__u32 tgid;
	__u32 pad;
	__u64 start_ns; /* leader's start_boottime: ns since boot, suspend included */
};

/*
 * The per-process counters: one line each, and everything that is per counter (the BPF fold, sum
 * and add helpers, every C++ copy/add/max/restore, the proto fields, the exposition) is generated
 * from these lists. Adding a counter: docs/ARCHITECTURE.md, "Adding a counter".
 *
 * PS_COUNTER_FIELDS: scheduler and memory counters the kernel keeps per thread.
 * X(field, task_struct member, kind) where kind says how a process's total is made:
 *   PS_SUMMED(signal_struct member): the kernel adds a thread's value there when it is released,
 *     so the total is that member plus the values of the threads not released yet, read when it
 *     is needed (the process iterator, the exit event), as thread_group_cputime() does: nothing
 *     on the switch path;
 *   PS_FOLDED: not kept for dead threads, so the scheduler hook folds each thread's increase into
 *     the process totals at its switch-outs (bpf/core.bpf.h).
 */
#define PS_COUNTER_FIELDS(X)                                                                       \
	X(cpu_ns, se.sum_exec_runtime, PS_SUMMED(sum_sched_runtime)) /* on-CPU time */            \
	X(runq_ns, sched_info.run_delay, PS_FOLDED) /* runnable but waiting for a CPU */         \
	X(vol_cs, nvcsw, PS_SUMMED(nvcsw))     /* voluntary context switches (the task blocked) */ \
	X(invol_cs, nivcsw, PS_SUMMED(nivcsw)) /* involuntary context switches (preempted) */      \
	X(min_flt, min_flt, PS_SUMMED(min_flt)) /* minor page faults */                            \
	X(maj_flt, maj_flt, PS_SUMMED(maj_flt)) /* major page faults (needed I/O) */

/*
 * PS_ACCOUNTED_FIELDS: counters the kernel does not keep per thread (delay accounting is off by
 * default, task_delayacct=0, and even on it only times I/O waits; schedstats is off too), measured
 * by the scheduler hook itself (bpf/sched.bpf.c) and added straight to the process totals. X(field).
 * Off-CPU time is split by the state the thread slept in, from its switch-out to its wakeup: the
 * wait between wakeup and switch-in is runq_ns, so runq_ns + blocked_ns + sleep_ns is the time it
 * was off-CPU for its own reasons or the scheduler's.
 */
#define PS_ACCOUNTED_FIELDS(X)                                                                     \
	X(blocked_ns)     /* off-CPU in uninterruptible sleep (D): disk, locks */                \
	X(sleep_ns)       /* off-CPU in interruptible sleep (S, and idle kernel threads) */       \
	X(runq_caused_ns) /* run-queue wait of others that ended when this process left the CPU */

/* Every scalar of struct ps_counters, in struct order: what is per counter and not about how it is
 * measured (adds, copies, the API, the exposition) iterates this. X(field, ...). */
#define PS_SCALAR_FIELDS(X) PS_COUNTER_FIELDS(X) PS_ACCOUNTED_FIELDS(X)

/*
 * Arrays of counters that follow the scalar ones in struct ps_counters: X(field, length). They are
 * added, maxed, copied and restored like the scalars; the fold fills runq_hist from the run_delay
 * of one wait episode (bpf/core.bpf.h).
 */
#define PS_COUNTER_ARRAYS(X) X(runq_hist, PS_RUNQ_BUCKETS)

/*
 * Block I/O charged to the process that caused it: the submitter for direct, synchronous and
 * fsync'd I/O and for reads; the last process that dirtied the file's page cache for writeback
 * that a kernel flusher submits later. Latency is the device time, issue to completion. Measured
 * in bpf/block.bpf.c. X(field).
 */
#define PS_IO_FIELDS(X)                                                                            \
	X(read_bytes)                                                                             \
	X(write_bytes)                                                                            \
	X(read_ops)                                                                               \
	X(write_ops)                                                                              \
	X(read_lat_ns)                                                                            \
	X(write_lat_ns)                                                                           \
	X(dirtied_bytes) /* page-cache bytes this process dirtied (buffered writes) */

#define PS_U64_MEMBER(field, ...) __u64 field;
#define PS_U64_ARRAY_MEMBER(field, n) __u64 field[n];

/* Scheduler and memory counters of one process, every thread included. */
struct ps_counters {
	PS_SCALAR_FIELDS(PS_U64_MEMBER)
	PS_COUNTER_ARRAYS(PS_U64_ARRAY_MEMBER)
};

struct ps_io {
	PS_IO_FIELDS(PS_U64_MEMBER)
};

/* Record flags of the process iterator. */
#define PS_REC_DELTA 0x1 /* counters not yet folded from one running non-leader thread */
/* A process unchanged since the record the same reading session last received for it: only the
 * record's first PS_REC_SAME_SIZE bytes (key to flags) are written. */
#define PS_REC_SAME 0x2
#define PS_REC_SAME_SIZE 32

/* One record of the process iterator (iter/task): one per live process, plus deltas; a PS_REC_SAME
 * record is cut after `flags`. */
struct ps_proc_rec {
	struct ps_key key;
	__u32 ppid;
	__u32 uid;
	__u32 nr_threads;
	__u32 flags; /* PS_REC_* */
	__u64 cgroup_id; /* cgroup v2 id (inode number of the cgroup directory) */
	__u64 rss_bytes;
	char comm[PS_COMM_LEN];
	struct ps_counters c;
	struct ps_io io;
};

/* A block request in flight: a slot of the `requests` table (bpf/maps.bpf.h). */
struct ps_request {
	__u64 tag;       /* address of the request's first bio; 0: a free slot */
	struct ps_key owner;
	__u64 claimed;   /* jiffies when the slot was claimed (stale after PS_REQUEST_STALE_JIFFIES) */
	__u64 issue_ns;  /* when it went to the device (0: not yet) */
	__u32 bytes;
	__u32 write;
};
#define PS_REQUEST_SLOTS 4096 /* 2048 sets of 2 */
#define PS_REQUEST_STALE_JIFFIES 60000ULL /* 60 s at HZ=1000 (4 min at 250): longer than any
						 * request takes */

/* Exit event flags. */
#define PS_EXIT_OOM_KILLED 0x1 /* chosen by the OOM killer (oom:mark_victim) */

/* One per process exit (its last thread), sent on the `events` ring buffer. */
struct ps_exit_event {
	struct ps_key key;
	__u32 ppid;
	__u32 uid;
	__u64 cgroup_id;
	__u64 exit_ns; /* boot-time ns */
	__u32 exit_code; /* as wait(2) reports it: status << 8, or signal | 0x80 if core dumped */
	__u32 flags;     /* PS_EXIT_* */
	__u64 rss_max_bytes; /* peak resident memory */
	char comm[PS_COMM_LEN];
	struct ps_counters c;
	struct ps_io io;
};

/*
 * Stacks (bpf/stacks.bpf.h): on-CPU samples and sampled off-CPU time, counted per process, thread
 * and (kernel, user) stack in `stack_counts`. Stack ids index the stack map of the key's epoch
 * (stacks0 for an even epoch, stacks1 for an odd one), so that user space can drain one map while
 * the programs fill the other.
 */
#define PS_STACK_DEPTH 127 /* PERF_MAX_STACK_DEPTH: frames kept per stack */
/* Off-CPU stacks: an S switch-out is sampled this many times less often than a D one (S sleeps are
 * most switches, and a capture costs microseconds: at 64 the captures of a pipe ping-pong still
 * cost 19 ns per switch on average). An S stack's time is weighted by it. */
#define PS_OFFCPU_SLEEP_FACTOR 1024

enum ps_stack_kind {
	PS_STACK_ONCPU = 0,       /* value: samples, each 1/profile_hz s of CPU */
	PS_STACK_OFFCPU_BLOCKED,  /* value: ns off-CPU in uninterruptible sleep (D) */
	PS_STACK_OFFCPU_SLEEP,    /* value: ns off-CPU in interruptible sleep (S) */
	PS_STACK_KINDS,
};

struct ps_stack_key {
	struct ps_key key; /* the process */
	__u32 tid;
	__s32 kstack;      /* stack id, or -errno: none (failed, or not collected) */
	__s32 ustack;      /* stack id, or -errno: none (kernel thread, failed) */
	__u16 kind;        /* enum ps_stack_kind */
	__u16 epoch;       /* the epoch whose stack map holds kstack/ustack (low 16 bits) */
};

/* Sent on `profile_notify` when a process gets a new stack_counts entry, so that user space reads
 * its mappings while it lives (a short-lived process is gone by the next drain). */
struct ps_profiled {
	struct ps_key key;
	__u32 tid;
	__u32 pad;
	__u64 cgroup_id;
	char comm[PS_COMM_LEN]; /* the thread's */
};

/*
 * Contention (bpf/sched.bpf.c): a run-queue wait episode of `victim` of at least
 * ps_contention_min_ns, charged to `culprit`, the process that left the CPU when it ended. The
 * `contention` map holds one entry per pair; user space drains it every pass.
 */
struct ps_contention_key {
	struct ps_key culprit;
	struct ps_key victim;
};

struct ps_contention_val {
	__u64 wait_ns;
	__u64 episodes;
};

/* Indexes of the `stats` per-CPU array: drop counters for every lossy path, and I/O that could
 * not be charged to a process. */
enum ps_stat {
	PS_STAT_DROP_RINGBUF = 0,   /* exit event lost: ring buffer full */
	PS_STAT_DROP_TASK_STORAGE,  /* task storage could not be allocated: counters lost */
	PS_STAT_DROP_IO_MAP,        /* proc_io full: a process's block I/O not tracked */
	PS_STAT_DROP_REQUESTS,      /* requests insert failed: one request not accounted */
	PS_STAT_DROP_INODE_OWNER,   /* inode_owner update failed: writeback may go unattributed */
	PS_STAT_DROP_OOM_MAP,       /* oom_victims full: an OOM kill not flagged */
	PS_STAT_DROP_HANDOVER,      /* leader_handover full: totals before a thread's exec lost */
	PS_STAT_IO_UNATTRIBUTED_OPS,   /* requests of no traced process (journal, metadata, ...) */
	PS_STAT_IO_UNATTRIBUTED_BYTES,
	PS_STAT_IO_ORPHAN_OPS,      /* requests completed after their process exited */
	PS_STAT_EXITS,              /* exit events emitted */
	PS_STAT_PROFILE_SAMPLES,    /* on-CPU samples taken (perf_event), idle ones included */
	PS_STAT_PROFILE_IDLE,       /* on-CPU samples of an idle CPU: charged to no one */
	PS_STAT_DROP_STACK_COUNTS,  /* stack_counts full: a sample or an off-CPU block lost */
	PS_STAT_STACK_COLLISIONS,   /* bpf_get_stackid -EEXIST: the stack's bucket held another */
	PS_STAT_STACK_FAILED,       /* bpf_get_stackid failed otherwise (a task with an mm) */
	PS_STAT_DROP_PROFILE_NOTIFY, /* profile_notify full: a process's mappings may be missed */
	PS_STAT_OFFCPU_STACK_EXPIRED, /* an off-CPU block outlived its stack map's epoch */
	PS_STAT_DROP_CONTENTION,    /* contention full: a culprit/victim pair's wait not kept */
	PS_STAT_DROP_THREAD_WALK,   /* a process of more than PS_MAX_THREAD_WALK threads: the CPU
				     * time and counts of the threads past it not in one read */
	PS_STAT_DROP_SUMMED_READ,   /* a process's summed counters read while threads were being
				     * released, every attempt: a thread counted twice or not at all */
	PS_STAT_MAX,
};

/*
 * Layout of the state procscoped pins in bpffs (maps, ring buffer, links) so that the BPF side
 * keeps counting across a daemon restart. Bump PS_LAYOUT_VERSION on any change to a struct above
 * or in maps.bpf.h, to a map's definition or to what a stats index means, and on any change to
 * the programs that must take effect at upgrade: a daemon that adopts pinned state keeps the
 * programs that are running. It adopts only when this version and a hash of the maps'
 * definitions and BTF types both match, and otherwise starts fresh. The "meta" pin is an array map of one struct ps_meta.
 */
#define PS_LAYOUT_VERSION 6

struct ps_meta {
	__u32 layout;  /* PS_LAYOUT_VERSION of the daemon that pinned the state */
	__u32 pad;
	__u64 hash;    /* of the pinned maps' definitions and key/value BTF types */
};

/*
 * The records that cross to user space, pinned: clang -target bpf and the C++ compiler both check
 * these, so a field added, moved or padded differently fails the build on either side instead of
 * being misread. Changing a number here means a layout change: bump PS_LAYOUT_VERSION.
 */
#ifdef __cplusplus
#define PS_ABI_ASSERT(cond) static_assert(cond, #cond)
#else
#define PS_ABI_ASSERT(cond) _Static_assert(cond, #cond)
#endif
#define PS_ABI_OFFSET(type, field, off) PS_ABI_ASSERT(__builtin_offsetof(struct type, field) == (off))
PS_ABI_ASSERT(sizeof(struct ps_key) == 16);
PS_ABI_ASSERT(sizeof(struct ps_counters) == 8 * (9 + PS_RUNQ_BUCKETS));
PS_ABI_ASSERT(sizeof(struct ps_io) == 56);
PS_ABI_ASSERT(sizeof(struct ps_proc_rec) == 352);
PS_ABI_OFFSET(ps_proc_rec, ppid, 16);
PS_ABI_OFFSET(ps_proc_rec, flags, 28); /* PS_REC_SAME_SIZE - 4 */
PS_ABI_OFFSET(ps_proc_rec, cgroup_id, 32);
PS_ABI_OFFSET(ps_proc_rec, rss_bytes, 40);
PS_ABI_OFFSET(ps_proc_rec, comm, 48);
PS_ABI_OFFSET(ps_proc_rec, c, 64);
PS_ABI_OFFSET(ps_proc_rec, io, 296);
PS_ABI_ASSERT(sizeof(struct ps_exit_event) == 360);
PS_ABI_OFFSET(ps_exit_event, cgroup_id, 24);
PS_ABI_OFFSET(ps_exit_event, exit_ns, 32);
PS_ABI_OFFSET(ps_exit_event, exit_code, 40);
PS_ABI_OFFSET(ps_exit_event, flags, 44);
PS_ABI_OFFSET(ps_exit_event, rss_max_bytes, 48);
PS_ABI_OFFSET(ps_exit_event, comm, 56);
PS_ABI_OFFSET(ps_exit_event, c, 72);
PS_ABI_OFFSET(ps_exit_event, io, 304);
PS_ABI_ASSERT(sizeof(struct ps_meta) == 16);
PS_ABI_ASSERT(sizeof(struct ps_request) == 48);
PS_ABI_ASSERT(sizeof(struct ps_stack_key) == 32);
PS_ABI_OFFSET(ps_stack_key, tid, 16);
PS_ABI_OFFSET(ps_stack_key, kstack, 20);
PS_ABI_OFFSET(ps_stack_key, kind, 28);
PS_ABI_ASSERT(sizeof(struct ps_profiled) == 48);
PS_ABI_ASSERT(sizeof(struct ps_contention_key) == 32);
PS_ABI_ASSERT(sizeof(struct ps_contention_val) == 16);

#endif /* PROCSCOPE_BPF_PROCSCOPE_H_ */
