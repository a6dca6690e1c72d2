// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Block I/O and page-cache dirtying, charged to the process that caused the I/O.
 *
 * The owner is decided where the submitter is still `current`: when a request is allocated for a
 * bio (block_getrq). A kernel flusher writing back dirty pages is not the owner: the bio's file is
 * looked up in inode_owner, filled where a process dirtied the page cache (writeback_dirty_folio).
 * The owner travels with the request (a slot of the `requests` table, tagged with its first bio)
 * to its completion (in interrupt context), where bytes, operations and device latency are
 * charged.
 */
#include "maps.bpf.h"

#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>

#include "core.bpf.h"

#define PF_KTHREAD 0x00200000
#define E2BIG 7
#define REQ_OP_MASK 0xff
#define REQ_OP_READ 0
#define REQ_OP_WRITE 1
#define PAGE_MAPPING_FLAGS 0x3 /* anon or movable: not a file's address_space */

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* The process `current` belongs to; false for kernel threads. */
static __always_inline bool ps_current_owner(struct ps_key *k)
{
	struct task_struct *cur = bpf_get_current_task_btf();
	struct task_struct *leader;

	if (cur->flags & PF_KTHREAD)
		return false;
	leader = cur->group_leader;
	k->tgid = leader->tgid;
	k->pad = 0;
	k->start_ns = leader->start_boottime;
	return true;
}

/* The process's I/O counters, created if needed; call in the process's own context only. */
static __always_inline struct ps_io *ps_io_of_current(const struct ps_key *k)
{
	struct ps_io *io = bpf_map_lookup_elem(&proc_io, k);
	struct ps_io zero = {};

	if (io)
		return io;
	if (bpf_map_update_elem(&proc_io, k, &zero, BPF_NOEXIST) == -E2BIG)
		ps_stat_add(PS_STAT_DROP_IO_MAP, 1);
	return bpf_map_lookup_elem(&proc_io, k);
}

/* The process that last dirtied the file that the bio's first page belongs to. */
static __always_inline bool ps_bio_writer(struct bio *bio, struct ps_key *k)
{
	struct page *page = BPF_CORE_READ(bio, bi_io_vec, bv_page);
	unsigned long head = BPF_CORE_READ(page, compound_head);
	unsigned long mapping;
	struct ps_key *owner;
	__u64 inode;

	if (head & 1) /* a tail page of a large folio: the head holds the mapping */
		page = (struct page *)(head - 1);
	mapping = (unsigned long)BPF_CORE_READ(page, mapping);
	if (!mapping || (mapping & PAGE_MAPPING_FLAGS))
		return false;
	inode = (__u64)BPF_CORE_READ((struct address_space *)mapping, host);
	owner = bpf_map_lookup_elem(&inode_owner, &inode);
	if (!owner)
		return false;
	*k = *owner;
	return true;
}

/* Reads ptr->field: a direct, CO-RE relocated load from a tp_btf program's typed arguments
 * (cheap), a probe read from a raw_tp program's untyped ones. `btf` is a compile-time constant. */
#define PS_RD(btf, ptr, field) ((btf) ? (ptr)->field : BPF_CORE_READ(ptr, field))

/* The first of the two slots of the set of a request whose first bio starts at `sector`
 * (multiplicative hash). The set comes from the sector, not the bio's address: the verifier allows
 * no arithmetic on a pointer but adding offsets, and the sector is the same at allocation, issue
 * and completion (remapped before block_getrq, advanced only after block_rq_complete). */
static __always_inline __u32 ps_request_set(__u64 sector)
{
	return (__u32)((sector * 0x9E3779B97F4A7C15ULL) >> 53) * 2; /* 2^11 sets */
}

/* The slot tagged `key` (the first bio's address) in the set of `sector`, or NULL. */
static __always_inline struct ps_request *ps_request_find(__u64 key, __u64 sector)
{
	__u32 i = ps_request_set(sector);
	struct ps_request *r = bpf_map_lookup_elem(&requests, &i);

	if (r && r->tag == key)
		return r;
	i++;
	r = bpf_map_lookup_elem(&requests, &i);
	return r && r->tag == key ? r : NULL;
}

/* Claims a slot of `key`'s set for it: a free one, else one claimed so long ago that its request
 * was freed without completing. NULL (counted): both hold requests in flight. */
static __always_inline struct ps_request *ps_request_claim(__u64 key, __u64 sector, __u64 now)
{
	__u32 i = ps_request_set(sector);
	struct ps_request *r;
	__u64 old;
	int n;

	for (n = 0; n < 2; n++, i++) {
		r = bpf_map_lookup_elem(&requests, &i);
		if (!r)
			return NULL;
		old = r->tag;
		if (old == key) /* an entry of a bio freed before completing, at the same address */
			goto claimed;
		if (old && now - r->claimed < PS_REQUEST_STALE_JIFFIES)
			continue;
		if (__sync_val_compare_and_swap(&r->tag, old, key) == old)
			goto claimed;
	}
	ps_stat_add(PS_STAT_DROP_REQUESTS, 1);
	return NULL;
claimed:
	r->claimed = now;
	r->issue_ns = 0;
	return r;
}

static __always_inline int ps_on_getrq(struct bio *bio, bool btf)
{
	struct ps_request *r;
	struct ps_key owner;
	__u32 op;

	if (!bio)
		return 0;
	/* Only reads and writes with data are charged: flush and discard requests are never issued
	 * as allocated (the kernel issues its own in their place), so an entry would only linger. */
	op = PS_RD(btf, bio, bi_opf) & REQ_OP_MASK;
	if ((op != REQ_OP_READ && op != REQ_OP_WRITE) || !PS_RD(btf, bio, bi_iter.bi_size))
		return 0;
	if (ps_current_owner(&owner))
		ps_io_of_current(&owner); /* so that completion, in interrupt context, finds it */
	else if (!ps_bio_writer(bio, &owner))
		__builtin_memset(&owner, 0, sizeof(owner)); /* the kernel's own I/O: nobody's, so
							  * whoever dispatches it is not charged */
	r = ps_request_claim((__u64)bio, PS_RD(btf, bio, bi_iter.bi_sector),
			     bpf_jiffies64());
	if (!r)
		return 0;
	r->owner = owner;
	r->write = op == REQ_OP_WRITE;
	return 0;
}

static __always_inline int ps_on_rq_issue(struct request *rq, bool btf)
{
	struct ps_request *r;
	struct bio *bio;
	__u64 key, sector;
	__u32 op;

	if (!rq)
		return 0;
	op = PS_RD(btf, rq, cmd_flags) & REQ_OP_MASK;
	bio = PS_RD(btf, rq, bio);
	if ((op != REQ_OP_READ && op != REQ_OP_WRITE) || !bio)
		return 0;
	key = (__u64)bio;
	sector = PS_RD(btf, bio, bi_iter.bi_sector);
	/* Found: claimed at block_getrq, or a requeued request issued again (often from a kworker),
	 * which keeps its owner. */
	r = ps_request_find(key, sector);
	if (!r) {
		/* Not made from a bio we saw (passthrough, a front merge changed the first bio, or
		 * allocated before we attached): the issuing process, if any. */
		r = ps_request_claim(key, sector, bpf_jiffies64());
		if (!r)
			return 0;
		if (!ps_current_owner(&r->owner))
			__builtin_memset(&r->owner, 0, sizeof(r->owner));
		r->write = op == REQ_OP_WRITE;
	}
	r->bytes = PS_RD(btf, rq, __data_len);
	r->issue_ns = bpf_ktime_get_ns();
	return 0;
}

static __always_inline int ps_on_rq_complete(struct request *rq, bool btf)
{
	struct ps_request *r;
	struct ps_key owner;
	struct bio *bio;
	struct ps_io *io;
	__u64 key, lat, issued;
	__u32 bytes, write;

	if (!rq)
		return 0;
	bio = PS_RD(btf, rq, bio);
	if (!bio)
		return 0;
	key = (__u64)bio;
	r = ps_request_find(key, PS_RD(btf, bio, bi_iter.bi_sector));
	if (!r)
		return 0; /* issued before we attached, or a partial completion already charged */
	issued = r->issue_ns;
	owner = r->owner;
	bytes = r->bytes;
	write = r->write;
	/* Free the slot (once, if two CPUs see partial completions of one request). */
	if (__sync_val_compare_and_swap(&r->tag, key, 0) != key || !issued)
		return 0;
	lat = bpf_ktime_get_ns() - issued;
	io = owner.tgid ? bpf_map_lookup_elem(&proc_io, &owner) : NULL;
	if (io) {
		if (write) {
			__sync_fetch_and_add(&io->write_bytes, bytes);
			__sync_fetch_and_add(&io->write_ops, 1);
			__sync_fetch_and_add(&io->write_lat_ns, lat);
		} else {
			__sync_fetch_and_add(&io->read_bytes, bytes);
			__sync_fetch_and_add(&io->read_ops, 1);
			__sync_fetch_and_add(&io->read_lat_ns, lat);
		}
	} else if (owner.tgid) {
		ps_stat_add(PS_STAT_IO_ORPHAN_OPS, 1);
	} else {
		ps_stat_add(PS_STAT_IO_UNATTRIBUTED_OPS, 1);
		ps_stat_add(PS_STAT_IO_UNATTRIBUTED_BYTES, bytes);
	}
	return 0;
}

static __always_inline int ps_on_dirty_folio(struct folio *folio, struct address_space *mapping)
{
	__u64 flags = 0, nr = 0, inode;
	struct ps_key k, *owner;
	struct ps_io *io;

	if (!folio || !mapping || !ps_current_owner(&k))
		return 0;
	inode = (__u64)BPF_CORE_READ(mapping, host);
	bpf_core_read(&flags, sizeof(flags), &folio->flags);
	if (flags & (1ULL << bpf_core_enum_value(enum pageflags, PG_head)))
		nr = BPF_CORE_READ(folio, _nr_pages);
	io = ps_io_of_current(&k);
	if (io)
		__sync_fetch_and_add(&io->dirtied_bytes, ps_folio_bytes(nr, ps_page_size));
	owner = bpf_map_lookup_elem(&inode_owner, &inode);
	if (!owner || owner->tgid != k.tgid || owner->start_ns != k.start_ns) {
		if (bpf_map_update_elem(&inode_owner, &inode, &k, BPF_ANY))
			ps_stat_add(PS_STAT_DROP_INODE_OWNER, 1);
	}
	return 0;
}

SEC("tp_btf/block_getrq")
int BPF_PROG(ps_block_getrq, struct bio *bio)
{
	return ps_on_getrq(bio, true);
}

SEC("raw_tp/block_getrq")
int BPF_PROG(ps_block_getrq_raw, struct bio *bio)
{
	return ps_on_getrq(bio, false);
}

SEC("tp_btf/block_rq_issue")
int BPF_PROG(ps_block_rq_issue, struct request *rq)
{
	return ps_on_rq_issue(rq, true);
}

SEC("raw_tp/block_rq_issue")
int BPF_PROG(ps_block_rq_issue_raw, struct request *rq)
{
	return ps_on_rq_issue(rq, false);
}

SEC("tp_btf/block_rq_complete")
int BPF_PROG(ps_block_rq_complete, struct request *rq, blk_status_t error, unsigned int nr_bytes)
{
	return ps_on_rq_complete(rq, true);
}

SEC("raw_tp/block_rq_complete")
int BPF_PROG(ps_block_rq_complete_raw, struct request *rq, blk_status_t error,
	     unsigned int nr_bytes)
{
	return ps_on_rq_complete(rq, false);
}

SEC("tp_btf/writeback_dirty_folio")
int BPF_PROG(ps_dirty_folio, struct folio *folio, struct address_space *mapping)
{
	return ps_on_dirty_folio(folio, mapping);
}

SEC("raw_tp/writeback_dirty_folio")
int BPF_PROG(ps_dirty_folio_raw, struct folio *folio, struct address_space *mapping)
{
	return ps_on_dirty_folio(folio, mapping);
}
