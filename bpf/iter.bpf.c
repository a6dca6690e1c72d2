// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Process iterator: one read() of this iterator returns every live process's totals in one pass
 * over the task list: its CPU time, switches and faults summed as /proc does, with what its
 * running threads have not folded yet of the rest (no missing last slice),
 * its block I/O, resident memory and thread count. It replaces a /proc walk.
 */
#include "maps.bpf.h"

#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>


char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Set by user space, before the hooks attach, for one pass that registers every existing thread
 * (snapshots taken, counters folded), so that later reads need no per-thread record for them. */
volatile __u32 ps_registering;

/* Set by user space before each read: records go to one reader, which keeps what it received.
 * Non-zero: a process whose last full record went to this session and whose signature has not
 * changed since gets a PS_REC_SAME record. 0: every process gets a full record (registration,
 * adoption). User space changes it to have every process sent whole again. */
volatile __u32 ps_iter_session;

/* scratch: one record per CPU; too big for the BPF stack. Never deleted. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ps_proc_rec);
} scratch SEC(".maps");

/* MM_FILEPAGES, MM_ANONPAGES and MM_SHMEMPAGES, as /proc/<pid>/status VmRSS adds them. */
static __always_inline __u64 ps_rss_bytes(struct mm_struct *mm)
{
	if (!mm)
		return 0;
	__s64 pages = mm->rss_stat[0].count + mm->rss_stat[1].count + mm->rss_stat[3].count;
	return pages > 0 ? (__u64)pages * ps_page_size : 0;
}

/* A signature of everything a single-threaded process's full record says that can change:
 * switch-ins (the counters, the off-CPU episodes and the run-queue wait move only when it runs),
 * CPU time, resident memory (reclaim lowers it while the process sleeps), cgroup (a migration),
 * parent (reparenting), uid, threads, and block I/O (writeback is charged to a sleeping dirtier).
 * A change of any one term changes it: each is multiplied by an odd constant. Its comm changes
 * only by its own hand. */
static __always_inline __u64 ps_emit_sig(struct task_struct *task, struct signal_struct *sig,
					 const struct ps_io *io)
{
	const __u64 k = 0x9e3779b97f4a7c15ULL;
	__u64 h = task->sched_info.pcount;

	h = h * k + task->se.sum_exec_runtime;
	h = h * k + ps_rss_bytes(task->mm);
	h = h * k + task->cgroups->dfl_cgrp->kn->id;
	h = h * k + (((__u64)task->real_parent->tgid << 32) | task->real_cred->uid.val);
	h = h * k + sig->nr_threads;
	if (io)
		h = h * k + io->read_bytes + io->write_bytes + io->read_ops + io->write_ops +
		    io->dirtied_bytes;
	return h;
}

/* What one thread has not folded into its process yet: the increase of its PS_FOLDED counters
 * since its snapshot (their whole value for a thread that never folded) and an off-CPU episode
 * that ended with a switch-in since its last switch-out. The PS_SUMMED counters are never folded
 * (ps_add_summed reads them whole). */
static __always_inline bool ps_unfolded(struct task_struct *task, struct ps_task *t,
					struct ps_counters *c)
{
	struct ps_thread_counters now;

	__u64 any = 0;

	ps_read_folded(task, &now);
#define PS_UNFOLDED_FIELD(f, member, kind)                                                         \
	PS_IF_FOLDED(kind, c->f = now.f - (t ? t->snap.f : 0); any |= c->f)
	PS_COUNTER_FIELDS(PS_UNFOLDED_FIELD)
#undef PS_UNFOLDED_FIELD
	/* An off-CPU episode that ended with a switch-in but is not folded yet (the thread has run
	 * since without switching out); 0 while it still sleeps. runq_caused_ns is never pending. */
	c->blocked_ns = 0;
	c->sleep_ns = 0;
	c->runq_caused_ns = 0;
	if (t && t->off_ts) {
		__u64 ns = ps_offcpu_ns(t->off_ts, task->sched_info.last_arrival, c->runq_ns);

		if (t->off_kind == PS_STACK_OFFCPU_BLOCKED)
			c->blocked_ns = ns;
		else
			c->sleep_ns = ns;
		any |= ns;
	}
	return any;
}

/* Registration pass: snapshot the thread and fold its lifetime PS_FOLDED counters into its
 * process. Runs before any hook is attached: no races. */
static __always_inline void ps_register(struct task_struct *task, struct task_struct *leader,
					struct ps_counters *c)
{
	struct ps_task *t, *p;

	t = bpf_task_storage_get(&tasks, task, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	p = bpf_task_storage_get(&tasks, leader, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!t || !p) {
		ps_stat_add(PS_STAT_DROP_TASK_STORAGE, 1);
		return;
	}
	ps_start_totals(p);
	if (t->snap.pcount || t->snap.runq_ns) /* already registered */
		return;
	t->was_thread = task != leader;
	ps_unfolded(task, NULL, c);
	ps_add_counters(&p->proc, c, false);
	ps_read_folded(task, &t->snap);
}

SEC("iter/task")
int ps_dump_procs(struct bpf_iter__task *ctx)
{
	struct seq_file *seq = ctx->meta->seq;
	struct task_struct *task = ctx->task;
	struct task_struct *leader;
	struct signal_struct *sig;
	struct ps_proc_rec *rec;
	struct ps_task *t, *p;
	struct ps_io *io;
	__u64 emit_sig = 0;
	__u32 session;
	__u32 zero = 0;

	if (!task)
		return 0;
	sig = task->signal;
	/* An exiting process is reported by its exit event, not here. */
	if (!sig || sig->live.counter == 0)
		return 0;
	rec = bpf_map_lookup_elem(&scratch, &zero);
	if (!rec)
		return 0;
	leader = task->group_leader;
	if (ps_registering) {
		__builtin_memset(rec, 0, sizeof(*rec));
		ps_register(task, leader, &rec->c);
		return 0;
	}

	t = bpf_task_storage_get(&tasks, task, 0, 0);
	if (leader != task) {
		/* A thread's unfolded counters; most threads have none (they folded at switch-out). */
		__builtin_memset(rec, 0, sizeof(*rec));
		if (!ps_unfolded(task, t, &rec->c))
			return 0;
		rec->key.tgid = leader->tgid;
		rec->key.start_ns = leader->start_boottime;
		rec->flags = PS_REC_DELTA;
		bpf_seq_write(seq, rec, sizeof(*rec));
		return 0;
	}

	p = t;
	__builtin_memset(rec, 0, PS_REC_SAME_SIZE);
	rec->key.tgid = leader->tgid;
	rec->key.start_ns = leader->start_boottime;
	io = bpf_map_lookup_elem(&proc_io, &rec->key);
	/* A single-threaded process (most idle ones), not exiting: unchanged since the full record
	 * this session received, it costs 32 bytes and none of the reads below. */
	session = ps_iter_session;
	if (session && p && p->totals == PS_TOTALS_OWN && sig->nr_threads == 1 && !task->exit_state &&
	    !task->on_cpu) {
		emit_sig = ps_emit_sig(task, sig, io);
		if (p->emit_session == session && p->emit_sig == emit_sig) {
			rec->flags = PS_REC_SAME;
			bpf_seq_write(seq, rec, PS_REC_SAME_SIZE);
			return 0;
		}
	} else {
		session = 0; /* not one to skip next time */
	}
	__builtin_memset((char *)rec + PS_REC_SAME_SIZE, 0, sizeof(*rec) - PS_REC_SAME_SIZE);
	/* The PS_FOLDED and accounted totals (zero for a process not seen since registration whose
	 * threads all unfold from zero, and for a leader by exec that has not switched out since:
	 * its totals are the old leader's, handed over, below). */
	if (p && p->totals != PS_TOTALS_NONE)
		__builtin_memcpy(&rec->c, &p->proc, sizeof(rec->c));
	/* A leader by exec: the old leader's totals may still wait in leader_handover. */
	if (p && (p->totals == PS_TOTALS_ADOPTING ||
		  (p->totals == PS_TOTALS_NONE && p->was_thread))) {
		struct ps_counters *h = ps_handover(&rec->key);

		if (h)
			ps_add_counters(&rec->c, h, false);
	}
	{
		struct ps_counters own = {}; /* ps_unfolded sets the scalars, not the histogram */

		ps_unfolded(task, t, &own);
		ps_add_counters(&rec->c, &own, false);
	}
	/* CPU time, switches, faults: one thread (this leader) read directly, else the list. */
	ps_add_summed(sig, sig->nr_threads == 1 ? task : NULL, &rec->c);
	rec->ppid = task->real_parent->tgid;
	rec->uid = task->real_cred->uid.val;
	rec->nr_threads = sig->nr_threads;
	rec->cgroup_id = task->cgroups->dfl_cgrp->kn->id;
	rec->rss_bytes = ps_rss_bytes(task->mm);
	bpf_probe_read_kernel(rec->comm, sizeof(rec->comm), task->comm);
	if (io)
		__builtin_memcpy(&rec->io, io, sizeof(rec->io));
	/* A write that overflows the read's buffer is dropped, and the kernel shows this task again
	 * at the next read(): only a record that went out may be answered by PS_REC_SAME later. */
	if (bpf_seq_write(seq, rec, sizeof(*rec)))
		return 0;
	/* The signature was taken before the reads above: anything newer changes it by next time. */
	if (p) {
		p->emit_session = session;
		p->emit_sig = emit_sig;
	}
	return 0;
}
