// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * C glue for orion_dm; see dm_glue.h. Rust's module! in 6.12 has no parameters, so the
 * `prefix` parameter lives here.
 */
#include <linux/bio.h>
#include <linux/completion.h>
#include <linux/device-mapper.h>
#include <linux/dm-io.h>
#include <linux/dm-kcopyd.h>
#include <linux/delay.h>
#include <linux/err.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/highmem.h>
#include <linux/mutex.h>
#include <linux/blkdev.h>
#include <linux/moduleparam.h>
#include <linux/rcupdate.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>
#include <linux/vmalloc.h>
#include <linux/jiffies.h>
#include <linux/llist.h>
#include <linux/workqueue.h>

#include "dm_glue.h"

static char *prefix = "";
module_param(prefix, charp, 0444);
MODULE_PARM_DESC(prefix, "Prefix for every registered target name (default: none)");

const char *orion_dm_prefix(void)
{
	return prefix ? prefix : "";
}

static unsigned int no_space_timeout = 60;
module_param(no_space_timeout, uint, 0644);
MODULE_PARM_DESC(no_space_timeout, "Out of data space queue IO timeout in seconds");

static unsigned int map_cache_runs = 1 << 18;
module_param(map_cache_runs, uint, 0644);
MODULE_PARM_DESC(map_cache_runs,
		 "Mapping runs a thin device keeps in memory for its fast path (0: none)");

unsigned int orion_map_cache_runs(void)
{
	return READ_ONCE(map_cache_runs);
}

unsigned int orion_no_space_timeout(void)
{
	return READ_ONCE(no_space_timeout);
}

void orion_bio_set_dev(struct bio *bio, struct block_device *bdev)
{
	bio_set_dev(bio, bdev);
}

void orion_zero_fill_bio(struct bio *bio)
{
	zero_fill_bio(bio);
}

struct file *orion_bdev_open(u32 devt, bool write)
{
	return bdev_file_open_by_dev(devt, BLK_OPEN_READ | (write ? BLK_OPEN_WRITE : 0), NULL,
				     NULL);
}

void orion_bdev_close(struct file *file)
{
	fput(file);
}

struct block_device *orion_file_bdev(struct file *file)
{
	return file_bdev(file);
}

sector_t orion_bdev_nr_sectors(struct block_device *bdev)
{
	return bdev_nr_sectors(bdev);
}

void orion_init_work(struct work_struct *work, orion_work_fn fn)
{
	INIT_WORK(work, fn);
}

bool orion_queue_work(struct work_struct *work)
{
	return queue_work(system_wq, work);
}

void orion_rcu_read_lock(void)
{
	rcu_read_lock();
}

void orion_rcu_read_unlock(void)
{
	rcu_read_unlock();
}

bool orion_cancel_work_sync(struct work_struct *work)
{
	return cancel_work_sync(work);
}

/* Exported by dm-mod, declared in its private drivers/md/dm.h. */
void dm_internal_suspend_noflush(struct mapped_device *md);
void dm_internal_resume(struct mapped_device *md);

struct mapped_device *orion_target_md(struct dm_target *ti)
{
	return dm_table_get_md(ti->table);
}

void orion_internal_suspend_noflush(struct mapped_device *md)
{
	dm_internal_suspend_noflush(md);
}

void orion_internal_resume(struct mapped_device *md)
{
	dm_internal_resume(md);
}

bool orion_is_dm_device(u32 devt)
{
	struct mapped_device *md = dm_get_md(devt);

	if (!md)
		return false;
	dm_put(md);
	return true;
}

u32 orion_target_md_devt(struct dm_target *ti)
{
	return disk_devt(dm_disk(dm_table_get_md(ti->table)));
}

static DEFINE_MUTEX(orion_global_mutex);

void orion_global_lock(void)
{
	mutex_lock(&orion_global_mutex);
}

void orion_global_unlock(void)
{
	mutex_unlock(&orion_global_mutex);
}

void orion_kcopyd_copy(struct dm_kcopyd_client *kc, struct block_device *src,
		       sector_t src_sector, struct block_device *dst, sector_t dst_sector,
		       sector_t count, orion_copy_fn fn, void *context)
{
	struct dm_io_region from = { .bdev = src, .sector = src_sector, .count = count };
	struct dm_io_region to = { .bdev = dst, .sector = dst_sector, .count = count };

	dm_kcopyd_copy(kc, &from, 1, &to, 0, fn, context);
}

void orion_kcopyd_zero(struct dm_kcopyd_client *kc, struct block_device *dst,
		       sector_t sector, sector_t count, orion_copy_fn fn, void *context)
{
	struct dm_io_region to = { .bdev = dst, .sector = sector, .count = count };

	dm_kcopyd_zero(kc, 1, &to, 0, fn, context);
}

void orion_kcopyd_copy_multi(struct dm_kcopyd_client *kc, struct block_device *src,
			     sector_t src_sector, unsigned int n, struct block_device *const *dsts,
			     const sector_t *dst_sectors, sector_t count, bool ignore_errors,
			     orion_copy_fn fn, void *context)
{
	struct dm_io_region from = { .bdev = src, .sector = src_sector, .count = count };
	struct dm_io_region to[DM_KCOPYD_MAX_REGIONS];
	unsigned int i;

	if (n > DM_KCOPYD_MAX_REGIONS)
		n = DM_KCOPYD_MAX_REGIONS;
	for (i = 0; i < n; i++) {
		to[i].bdev = dsts[i];
		to[i].sector = dst_sectors[i];
		to[i].count = count;
	}
	dm_kcopyd_copy(kc, &from, n, to, ignore_errors ? BIT(DM_KCOPYD_IGNORE_ERROR) : 0, fn,
		       context);
}

int orion_dm_io_write_bio(struct dm_io_client *client, struct bio *bio, unsigned int n,
			  struct block_device *const *bdevs, const sector_t *sectors,
			  orion_io_fn fn, void *context)
{
	struct dm_io_region where[ORION_MAX_IO_REGIONS];
	blk_opf_t flags = bio->bi_opf & (REQ_FUA | REQ_PREFLUSH);
	struct dm_io_request req = {
		.bi_opf = REQ_OP_WRITE | flags,
		.mem.type = DM_IO_BIO,
		.mem.ptr.bio = bio,
		.notify.fn = fn,
		.notify.context = context,
		.client = client,
	};
	unsigned int i;

	if (n > ORION_MAX_IO_REGIONS)
		return -EINVAL;
	if (bio_op(bio) == REQ_OP_DISCARD) {
		req.bi_opf = REQ_OP_DISCARD | flags;
		req.mem.type = DM_IO_KMEM;
		req.mem.ptr.addr = NULL;
	}
	for (i = 0; i < n; i++) {
		where[i].bdev = bdevs[i];
		where[i].sector = bio->bi_iter.bi_size ? sectors[i] : 0;
		where[i].count = bio_sectors(bio);
	}
	return dm_io(&req, n, where, NULL, IOPRIO_DEFAULT);
}

/* Every entry is the zero page: a list as long as any write (as kcopyd zeroes). */
static struct page_list orion_zero_pages;

int orion_dm_io_zero(struct dm_io_client *client, struct block_device *bdev, sector_t sector,
		     sector_t count, orion_io_fn fn, void *context)
{
	struct dm_io_region where = { .bdev = bdev, .sector = sector, .count = count };
	struct dm_io_request req = {
		/* As kcopyd: a device that zeroes itself is asked to, with no data sent. */
		.bi_opf = bdev_write_zeroes_sectors(bdev) ? REQ_OP_WRITE_ZEROES : REQ_OP_WRITE,
		.mem.type = DM_IO_PAGE_LIST,
		.mem.ptr.pl = &orion_zero_pages,
		.mem.offset = 0,
		.notify.fn = fn,
		.notify.context = context,
		.client = client,
	};

	/* The same two values every time: concurrent callers write what is already there. */
	WRITE_ONCE(orion_zero_pages.next, &orion_zero_pages);
	WRITE_ONCE(orion_zero_pages.page, ZERO_PAGE(0));
	return dm_io(&req, 1, &where, NULL, IOPRIO_DEFAULT);
}

/*
 * A worker: an ordered WQ_MEM_RECLAIM workqueue with an immediate and a delayed work item,
 * and the copies whose reads ended, waiting for the worker's thread to write them. Beside it
 * a per-CPU WQ_MEM_RECLAIM workqueue (as kcopyd's) that writes the local copies and runs the
 * job's after-copy hook on the CPU that completed the I/O, so a lone copy costs no wake-up
 * of another CPU.
 */
struct orion_worker {
	struct workqueue_struct *wq;
	struct work_struct work;
	struct delayed_work dwork;
	struct workqueue_struct *copy_wq;
	struct work_struct copy_work;
	struct work_struct after_work;
	/* A run on the waker's CPU (copy_wq), for a lone submitter. */
	struct work_struct local_work;
	/*
	 * A write of the copy work's own run ended in that run's task (brd, or any device that
	 * completes in the submitter): the run calls the after hook itself once its writes are
	 * out. Only the copy work's run touches it, and a work item never runs twice at once.
	 */
	bool after_in_run;
	/* Runs of work, dwork and local_work never overlap. */
	struct mutex run_lock;
	bool prefer_local;
	bool dying;
	/* Copies and zeroing started on another CPU's copy queue (ORION_PLACE_SPREAD). */
	struct orion_spread __percpu *spread;
	int spread_last;
	struct llist_head copies;
	struct llist_head local_copies;
	orion_ctx_fn fn;
	orion_ctx_fn after_fn;
	void *ctx;
};

/*
 * A copy through a buffer: read by its own bio, which is then reset and written from the
 * worker's thread (or the copy queue of the CPU the read ended on). With no source device,
 * zeroing of `to` (by dm-io).
 */
struct orion_copy {
	struct llist_node node;
	struct orion_worker *w;
	struct dm_io_client *client;
	struct dm_io_region from;
	struct dm_io_region to;
	/* A copy's buffer (physically contiguous); NULL for zeroing. */
	void *buf;
	bool local;
	/* ORION_PLACE_INLINE: written at once when the read ends in a submitter's task. */
	bool inline_write;
	orion_io_fn fn;
	void *context;
	/* A copy's bio and its one (multi-page) vector; unused by zeroing. */
	struct bio bio;
	struct bio_vec bvec;
};

/* One CPU's share of a worker's spread copies: started by a work item on that CPU. */
struct orion_spread {
	struct work_struct work;
	struct llist_head ops;
};

static void orion_copy_end(struct orion_copy *c, unsigned long error)
{
	orion_io_fn fn = c->fn;
	void *context = c->context;

	if (c->buf) {
		bio_uninit(&c->bio);
		kfree(c->buf);
	}
	kfree(c);
	fn(error ? 1 : 0, context);
}

static void orion_copy_written(unsigned long error, void *context)
{
	orion_copy_end(context, error);
}

static void orion_copy_bio_written(struct bio *bio)
{
	orion_copy_end(container_of(bio, struct orion_copy, bio), bio->bi_status != BLK_STS_OK);
}

/* Points the copy's bio at its buffer, all of it in one (multi-page) vector. */
static void orion_copy_bio_fill(struct orion_copy *c, const struct dm_io_region *where,
				bio_end_io_t *end_io)
{
	c->bio.bi_iter.bi_sector = where->sector;
	bio_add_virt_nofail(&c->bio, c->buf, where->count << SECTOR_SHIFT);
	c->bio.bi_end_io = end_io;
}

static void orion_copy_bio_read(struct bio *bio)
{
	struct orion_copy *c = container_of(bio, struct orion_copy, bio);

	if (bio->bi_status) {
		orion_copy_end(c, 1);
		return;
	}
	/* In a submitter's task the write only joins its bio list: submit it now. */
	if (c->inline_write && orion_in_submitter()) {
		bio_reset(&c->bio, c->to.bdev, REQ_OP_WRITE);
		orion_copy_bio_fill(c, &c->to, orion_copy_bio_written);
		submit_bio(&c->bio);
		return;
	}
	/* Submitting can sleep (a request to allocate): not here, maybe in interrupt context. */
	if (c->local) {
		llist_add(&c->node, &c->w->local_copies);
		queue_work(c->w->copy_wq, &c->w->copy_work);
	} else {
		llist_add(&c->node, &c->w->copies);
		orion_worker_wake(c->w);
	}
}

/* Writes the copies of `copies` whose reads ended (process context: submitting may sleep). */
static void orion_worker_write_copies(struct llist_head *copies)
{
	struct llist_node *list = llist_reverse_order(llist_del_all(copies));
	struct orion_copy *c, *next;

	llist_for_each_entry_safe(c, next, list, node) {
		bio_reset(&c->bio, c->to.bdev, REQ_OP_WRITE);
		orion_copy_bio_fill(c, &c->to, orion_copy_bio_written);
		submit_bio(&c->bio);
	}
}

static void orion_worker_write_local(struct work_struct *work)
{
	struct orion_worker *w = container_of(work, struct orion_worker, copy_work);
	unsigned int noio = memalloc_noio_save();

	orion_worker_write_copies(&w->local_copies);
	/* The hook can start a copy whose end (a failed start, say) comes back here at once. */
	while (w->after_in_run) {
		w->after_in_run = false;
		w->after_fn(w->ctx);
	}
	memalloc_noio_restore(noio);
}

/* On the copy workqueue: the job's hook after direct copies ended. */
static void orion_worker_after_run(struct work_struct *work)
{
	struct orion_worker *w = container_of(work, struct orion_worker, after_work);
	unsigned int noio = memalloc_noio_save();

	w->after_fn(w->ctx);
	memalloc_noio_restore(noio);
}

void orion_worker_after(struct orion_worker *w)
{
	/*
	 * Inside the copy work's run, it calls it (current_work() is NULL in an interrupt, even
	 * one that came in on that run's task).
	 */
	if (current_work() == &w->copy_work) {
		w->after_in_run = true;
		return;
	}
	queue_work(w->copy_wq, &w->after_work);
}

/* Starts copy `c` (its read) or zeroing from this CPU; a failure ends it with an error. */
static void orion_copy_start(struct orion_copy *c)
{
	if (!c->from.bdev) {
		if (orion_dm_io_zero(c->client, c->to.bdev, c->to.sector, c->to.count,
				     orion_copy_written, c))
			orion_copy_end(c, 1);
		return;
	}
	submit_bio(&c->bio);
}

/* On the copy queue of one CPU: starts the copies spread to it. */
static void orion_worker_spread_run(struct work_struct *work)
{
	struct orion_spread *s = container_of(work, struct orion_spread, work);
	struct llist_node *list = llist_reverse_order(llist_del_all(&s->ops));
	unsigned int noio = memalloc_noio_save();
	struct orion_copy *c, *next;

	llist_for_each_entry_safe(c, next, list, node)
		orion_copy_start(c);
	memalloc_noio_restore(noio);
}

/* The next online CPU after the last one used, other than this one when there is another. */
static int orion_spread_cpu(struct orion_worker *w)
{
	int self = raw_smp_processor_id();
	int cpu = READ_ONCE(w->spread_last);
	int i;

	for (i = 0; i < 2; i++) {
		cpu = cpumask_next(cpu, cpu_online_mask);
		if (cpu >= nr_cpu_ids)
			cpu = cpumask_first(cpu_online_mask);
		if (cpu != self)
			break;
	}
	if (cpu >= nr_cpu_ids)
		cpu = self;
	WRITE_ONCE(w->spread_last, cpu);
	return cpu;
}

/* Hands copy `c` to another CPU's copy queue, which starts it there. */
static void orion_copy_spread(struct orion_copy *c)
{
	int cpu = orion_spread_cpu(c->w);
	struct orion_spread *s = per_cpu_ptr(c->w->spread, cpu);

	llist_add(&c->node, &s->ops);
	queue_work_on(cpu, c->w->copy_wq, &s->work);
}

int orion_worker_copy(struct orion_worker *w, struct block_device *src, sector_t src_sector,
		      struct block_device *dst, sector_t dst_sector, sector_t count,
		      unsigned int place, orion_io_fn fn, void *context)
{
	struct orion_copy *c;

	if (count > ORION_DIRECT_COPY_MAX_SECTORS || !count)
		return -EINVAL;
	c = kmalloc(sizeof(*c), GFP_NOIO | __GFP_NOWARN);
	if (!c)
		return -ENOMEM;
	c->buf = kmalloc(count << SECTOR_SHIFT, GFP_NOIO | __GFP_NOWARN | __GFP_NORETRY);
	if (!c->buf) {
		kfree(c);
		return -ENOMEM;
	}
	bio_init(&c->bio, src, &c->bvec, 1, REQ_OP_READ);
	c->w = w;
	/* Only zeroing uses dm-io. */
	c->client = NULL;
	c->from = (struct dm_io_region){ .bdev = src, .sector = src_sector, .count = count };
	c->to = (struct dm_io_region){ .bdev = dst, .sector = dst_sector, .count = count };
	/* A spread copy is written where its read ended: on the CPU it was spread to. */
	c->local = place != ORION_PLACE_HERE;
	c->inline_write = place == ORION_PLACE_INLINE;
	c->fn = fn;
	c->context = context;
	orion_copy_bio_fill(c, &c->from, orion_copy_bio_read);
	if (place == ORION_PLACE_SPREAD)
		orion_copy_spread(c);
	else
		orion_copy_start(c);
	return 0;
}

int orion_worker_zero(struct orion_worker *w, struct dm_io_client *client,
		      struct block_device *dst, sector_t sector, sector_t count,
		      unsigned int place, orion_io_fn fn, void *context)
{
	struct orion_copy *c = NULL;

	if (place == ORION_PLACE_SPREAD)
		c = kmalloc(sizeof(*c), GFP_NOIO | __GFP_NOWARN);
	/* Not spread, or no memory to hand it over: zeroed from here. */
	if (!c)
		return orion_dm_io_zero(client, dst, sector, count, fn, context);
	*c = (struct orion_copy){
		.w = w,
		.client = client,
		.to = { .bdev = dst, .sector = sector, .count = count },
		.fn = fn,
		.context = context,
	};
	orion_copy_spread(c);
	return 0;
}

/* The job runs on the I/O path: every allocation in it is GFP_NOIO. */
static void orion_worker_call(struct orion_worker *w)
{
	unsigned int noio = memalloc_noio_save();

	mutex_lock(&w->run_lock);
	/*
	 * A local copy waits for its CPU's kworker, which a busy submitter can hold off; the
	 * worker takes it too, so the exceptions committed after it are not held up.
	 */
	orion_worker_write_copies(&w->local_copies);
	orion_worker_write_copies(&w->copies);
	w->fn(w->ctx);
	mutex_unlock(&w->run_lock);
	memalloc_noio_restore(noio);
}

static void orion_worker_run(struct work_struct *work)
{
	orion_worker_call(container_of(work, struct orion_worker, work));
}

static void orion_worker_run_local(struct work_struct *work)
{
	orion_worker_call(container_of(work, struct orion_worker, local_work));
}

static void orion_worker_run_delayed(struct work_struct *work)
{
	orion_worker_call(container_of(to_delayed_work(work), struct orion_worker, dwork));
}

struct orion_worker *orion_worker_create(const char *name, orion_ctx_fn fn,
					 orion_ctx_fn after_fn, void *ctx)
{
	struct orion_worker *w = kzalloc(sizeof(*w), GFP_KERNEL);
	int cpu;

	if (!w)
		return NULL;
	w->wq = alloc_ordered_workqueue("%s", WQ_MEM_RECLAIM, name);
	if (!w->wq)
		goto fail_wq;
	w->copy_wq = alloc_workqueue("%s-copy", WQ_MEM_RECLAIM, 0, name);
	if (!w->copy_wq)
		goto fail_copy_wq;
	w->spread = alloc_percpu(struct orion_spread);
	if (!w->spread)
		goto fail_spread;
	for_each_possible_cpu(cpu) {
		struct orion_spread *s = per_cpu_ptr(w->spread, cpu);

		INIT_WORK(&s->work, orion_worker_spread_run);
		init_llist_head(&s->ops);
	}
	INIT_WORK(&w->work, orion_worker_run);
	INIT_WORK(&w->copy_work, orion_worker_write_local);
	INIT_WORK(&w->after_work, orion_worker_after_run);
	INIT_WORK(&w->local_work, orion_worker_run_local);
	mutex_init(&w->run_lock);
	init_llist_head(&w->copies);
	init_llist_head(&w->local_copies);
	INIT_DELAYED_WORK(&w->dwork, orion_worker_run_delayed);
	w->fn = fn;
	w->after_fn = after_fn;
	w->ctx = ctx;
	return w;

fail_spread:
	destroy_workqueue(w->copy_wq);
fail_copy_wq:
	destroy_workqueue(w->wq);
fail_wq:
	kfree(w);
	return NULL;
}

/*
 * A lone submitter's runs (the job says so) go to the waker's CPU: the submitter is about to
 * sleep, so the run costs no wake-up of an idle CPU, and neither does the submitter's own
 * wake-up at the end. Otherwise, and for runs the ordered queue asked for itself, the
 * unbound ordered queue runs it beside a busy submitter.
 */
void orion_worker_wake(struct orion_worker *w)
{
	struct work_struct *cur = current_work();

	if (READ_ONCE(w->prefer_local) && !READ_ONCE(w->dying) && cur != &w->work &&
	    cur != &w->dwork.work)
		queue_work(w->copy_wq, &w->local_work);
	else
		queue_work(w->wq, &w->work);
}

void orion_worker_prefer_local(struct orion_worker *w, bool on)
{
	WRITE_ONCE(w->prefer_local, on);
}

void orion_worker_wake_after(struct orion_worker *w, unsigned int ms)
{
	queue_delayed_work(w->wq, &w->dwork, msecs_to_jiffies(ms));
}

unsigned int orion_noio_begin(void)
{
	return memalloc_noio_save();
}

void orion_noio_end(unsigned int flags)
{
	memalloc_noio_restore(flags);
}

void orion_worker_destroy(struct orion_worker *w)
{
	cancel_delayed_work_sync(&w->dwork);
	/* From here wakes go to the ordered queue. */
	WRITE_ONCE(w->dying, true);
	/* Its after-copy hook and local runs may wake the worker: drained first. */
	destroy_workqueue(w->copy_wq);
	destroy_workqueue(w->wq);
	free_percpu(w->spread);
	kfree(w);
}

struct orion_call {
	struct work_struct work;
	orion_ctx_fn fn;
	void *ctx;
};

static void orion_call_fn(struct work_struct *work)
{
	struct orion_call *c = container_of(work, struct orion_call, work);

	c->fn(c->ctx);
}

void orion_call_on_fresh_stack(orion_ctx_fn fn, void *ctx)
{
	struct orion_call c = { .fn = fn, .ctx = ctx };

	/* A workqueue worker's stack is fresh already (and it must not wait on system_wq). */
	if (current_work()) {
		fn(ctx);
		return;
	}
	INIT_WORK_ONSTACK(&c.work, orion_call_fn);
	queue_work(system_unbound_wq, &c.work);
	flush_work(&c.work);
	destroy_work_on_stack(&c.work);
}

u64 orion_now_ms(void)
{
	return jiffies64_to_msecs(get_jiffies_64());
}

/*
 * What a bio looked like when `map` saw it, so that a failed read can be sent again
 * (dm-bio-record.h's role; that header is private to drivers/md). It sits in the per-bio
 * data just before the 8-byte tag.
 */
struct orion_bio_record {
	struct block_device *bdev;
	struct bvec_iter iter;
	bio_end_io_t *end_io;
#if defined(CONFIG_BLK_DEV_INTEGRITY)
	struct bio_integrity_payload *integrity;
#endif
	int remaining;
	unsigned short flags;
};

#define ORION_BIO_RECORD_BYTES ALIGN(sizeof(struct orion_bio_record), sizeof(u64))

unsigned int orion_bio_record_bytes(void)
{
	return ORION_BIO_RECORD_BYTES;
}

static struct orion_bio_record *orion_bio_record_of(struct bio *bio)
{
	return (void *)((char *)dm_per_bio_data(bio, sizeof(u64)) - ORION_BIO_RECORD_BYTES);
}

void orion_bio_record(struct bio *bio)
{
	struct orion_bio_record *r = orion_bio_record_of(bio);

	r->bdev = bio->bi_bdev;
	r->iter = bio->bi_iter;
	r->end_io = bio->bi_end_io;
#if defined(CONFIG_BLK_DEV_INTEGRITY)
	r->integrity = bio_integrity(bio);
#endif
	r->remaining = atomic_read(&bio->__bi_remaining);
	r->flags = bio->bi_flags;
}

void orion_bio_restore(struct bio *bio)
{
	struct orion_bio_record *r = orion_bio_record_of(bio);

	bio->bi_bdev = r->bdev;
	bio->bi_iter = r->iter;
	bio->bi_end_io = r->end_io;
#if defined(CONFIG_BLK_DEV_INTEGRITY)
	bio->bi_integrity = r->integrity;
#endif
	atomic_set(&bio->__bi_remaining, r->remaining);
	bio->bi_flags = r->flags;
	bio->bi_status = BLK_STS_OK;
}

void orion_bio_chain_discard(struct bio *parent, struct block_device *bdev, sector_t sector,
			     sector_t nr_sects)
{
	struct bio *bio = NULL;

	/* The bio set behind GFP_NOIO allocations guarantees progress: no failure here. */
	__blkdev_issue_discard(bdev, sector, nr_sects, GFP_NOIO, &bio);
	if (bio) {
		bio_chain(bio, parent);
		submit_bio(bio);
	}
}

void orion_bdev_name(struct block_device *bdev, char *buf, size_t len)
{
	snprintf(buf, len, "%pg", bdev);
}

sector_t orion_bdev_max_discard_sectors(struct block_device *bdev)
{
	return bdev_max_discard_sectors(bdev);
}

int orion_blkdev_flush(struct block_device *bdev)
{
	return blkdev_issue_flush(bdev);
}

long orion_ptr_err(const void *ptr)
{
	return IS_ERR(ptr) ? PTR_ERR(ptr) : 0;
}

struct dm_io_client *orion_io_client_create(void)
{
	return dm_io_client_create();
}

/* Transfers of at most this many pages go in one bio on the stack; larger ones through dm-io. */
#define ORION_SYNC_BVECS 8

/*
 * One bio on the stack for a small transfer (a snapshot commit's area write): without dm-io's
 * per-request allocations and region bookkeeping, which cost about as much as brd's copy of
 * the data. The block layer splits it if the device's limits ask for it.
 */
static int orion_sync_bio(struct block_device *bdev, sector_t sector, sector_t count,
			  void *vmem, blk_opf_t opf)
{
	struct bio_vec bvecs[ORION_SYNC_BVECS];
	size_t len = count << SECTOR_SHIFT;
	void *p = vmem;
	struct bio bio;
	int r;

	bio_init(&bio, bdev, bvecs, ORION_SYNC_BVECS, opf);
	bio.bi_iter.bi_sector = sector;
	while (len) {
		unsigned int off = offset_in_page(p);
		unsigned int n = min_t(size_t, len, PAGE_SIZE - off);

		if (bio_add_page(&bio, vmalloc_to_page(p), n, off) != n) {
			bio_uninit(&bio);
			return -EIO;
		}
		p += n;
		len -= n;
	}
	/* As dm-io: no dirty line of the mapping may land over what a read brings in. */
	flush_kernel_vmap_range(vmem, count << SECTOR_SHIFT);
	r = submit_bio_wait(&bio);
	if (!op_is_write(opf))
		invalidate_kernel_vmap_range(vmem, count << SECTOR_SHIFT);
	bio_uninit(&bio);
	return r;
}

int orion_sync_io(struct dm_io_client *client, struct block_device *bdev, sector_t sector,
		  sector_t count, void *vmem, int op)
{
	struct dm_io_region where = {
		.bdev = bdev,
		.sector = sector,
		.count = count,
	};
	struct dm_io_request req = {
		.mem.type = DM_IO_VMA,
		.mem.ptr.vma = vmem,
		.client = client,
		.notify.fn = NULL,
	};
	/* The pages the buffer spans (it need not start on a page). */
	size_t pages = DIV_ROUND_UP(offset_in_page(vmem) + (count << SECTOR_SHIFT), PAGE_SIZE);

	switch (op) {
	case ORION_SYNC_READ:
		req.bi_opf = REQ_OP_READ;
		break;
	case ORION_SYNC_WRITE:
		req.bi_opf = REQ_OP_WRITE;
		break;
	default:
		req.bi_opf = REQ_OP_WRITE | REQ_PREFLUSH | REQ_FUA | REQ_SYNC;
		break;
	}
	if (count && pages <= ORION_SYNC_BVECS)
		return orion_sync_bio(bdev, sector, count, vmem, req.bi_opf);
	return dm_io(&req, 1, &where, NULL, IOPRIO_DEFAULT);
}

bool orion_in_submitter(void)
{
	/*
	 * Not under a spinlock or RCU either, where the kernel counts those (a blk-mq driver may
	 * complete a request inside its dispatch, under rcu_read_lock); where it does not (no
	 * PREEMPT_COUNT), nothing done from here sleeps anyway: locks are tried and allocations
	 * do not wait.
	 */
	return in_task() && current->bio_list && !in_atomic() && !irqs_disabled() &&
	       !rcu_preempt_depth();
}

/* An asynchronous write of a copy of a few pages of data. */
struct orion_async_write {
	struct bio bio;
	struct bio_vec bvec;
	orion_io_fn fn;
	void *context;
	/* Its own kmalloc: sizes that are multiples of 512 come aligned to at least 512. */
	void *data;
};

static void orion_async_written(struct bio *bio)
{
	struct orion_async_write *a = container_of(bio, struct orion_async_write, bio);
	orion_io_fn fn = a->fn;
	void *context = a->context;
	unsigned long error = bio->bi_status != BLK_STS_OK;

	kfree(a->data);
	kfree(a);
	fn(error, context);
}

int orion_async_write(struct block_device *bdev, sector_t sector, sector_t count,
		      const void *data, bool flush_fua, orion_io_fn fn, void *context)
{
	blk_opf_t opf = REQ_OP_WRITE | REQ_SYNC | (flush_fua ? REQ_PREFLUSH | REQ_FUA : 0);
	size_t len = count << SECTOR_SHIFT;
	struct orion_async_write *a;

	if (!count || count > ORION_ASYNC_WRITE_MAX_SECTORS)
		return -EINVAL;
	a = kmalloc(sizeof(*a), GFP_NOWAIT | __GFP_NOWARN);
	if (!a)
		return -ENOMEM;
	/* Physically contiguous: one (multi-page) vector. */
	a->data = kmalloc(len, GFP_NOWAIT | __GFP_NOWARN);
	if (!a->data) {
		kfree(a);
		return -ENOMEM;
	}
	memcpy(a->data, data, len);
	bio_init(&a->bio, bdev, &a->bvec, 1, opf);
	a->bio.bi_iter.bi_sector = sector;
	a->bio.bi_end_io = orion_async_written;
	a->fn = fn;
	a->context = context;
	bio_add_virt_nofail(&a->bio, a->data, len);
	submit_bio(&a->bio);
	return 0;
}

unsigned int orion_bdev_logical_block_size(struct block_device *bdev)
{
	return bdev_logical_block_size(bdev);
}

void orion_msleep(unsigned int ms)
{
	msleep(ms);
}

void orion_ti_set_max_io_len(struct dm_target *ti, u32 len)
{
	WRITE_ONCE(ti->max_io_len, len);
}
