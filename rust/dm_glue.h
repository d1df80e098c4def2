/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * C glue for orion_dm: the module parameter and the kernel's inline helpers and macros,
 * which bindgen cannot turn into callable functions.
 */
#ifndef ORION_DM_GLUE_H
#define ORION_DM_GLUE_H

#include <linux/types.h>
#include <linux/version.h>

struct bio;
struct block_device;
struct dm_kcopyd_client;
struct dm_target;
struct work_struct;

typedef void (*orion_work_fn)(struct work_struct *work);

/* The `prefix` module parameter: prepended to every target name ("" by default). */
const char *orion_dm_prefix(void);

/* The `no_space_timeout` parameter (seconds; dm-thin-pool's, for thin-pool): 60 by default. */
unsigned int orion_no_space_timeout(void);
unsigned int orion_map_cache_runs(void);

void orion_bio_set_dev(struct bio *bio, struct block_device *bdev);
/*
 * 1 where the dm layer sets a bio's device itself as bio_set_dev() does: the 6.12 kernels it
 * was written against (clear BIO_REMAPPED, and BIO_BPS_THROTTLED on a change of device, set
 * bi_bdev) without blk-cgroup (whose bio_associate_blkg() it leaves to the glue). Elsewhere
 * every remap calls orion_bio_set_dev().
 */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 12, 0) && \
	LINUX_VERSION_CODE < KERNEL_VERSION(6, 13, 0) && !defined(CONFIG_BLK_CGROUP)
#define ORION_INLINE_BIO_SET_DEV 1
#else
#define ORION_INLINE_BIO_SET_DEV 0
#endif
void orion_zero_fill_bio(struct bio *bio);
sector_t orion_bdev_nr_sectors(struct block_device *bdev);

/* A non-exclusive open of a block device by number (sleeps); released with fput. */
struct file;
struct file *orion_bdev_open(u32 devt, bool write);
void orion_bdev_close(struct file *file);
struct block_device *orion_file_bdev(struct file *file);

void orion_init_work(struct work_struct *work, orion_work_fn fn);
bool orion_queue_work(struct work_struct *work);

bool orion_cancel_work_sync(struct work_struct *work);

/* The mapped device of a target, and dm-mod's internal (noflush) suspend and resume. */
struct mapped_device;
struct mapped_device *orion_target_md(struct dm_target *ti);
void orion_internal_suspend_noflush(struct mapped_device *md);
void orion_internal_resume(struct mapped_device *md);

/* Whether `devt` is a device-mapper device. */
bool orion_is_dm_device(u32 devt);

/* The device number of the mapped device whose table holds `ti`. */
u32 orion_target_md_devt(struct dm_target *ti);

/* One module-wide mutex for the registries targets share (taken in ctr/dtr only). */
void orion_global_lock(void);
void orion_global_unlock(void);

/* kcopyd, asynchronous: `fn` runs in kcopyd's process context when the job ends. */
typedef void (*orion_copy_fn)(int read_err, unsigned long write_err, void *context);
void orion_kcopyd_copy(struct dm_kcopyd_client *kc, struct block_device *src,
		       sector_t src_sector, struct block_device *dst, sector_t dst_sector,
		       sector_t count, orion_copy_fn fn, void *context);
void orion_kcopyd_zero(struct dm_kcopyd_client *kc, struct block_device *dst,
		       sector_t sector, sector_t count, orion_copy_fn fn, void *context);

/*
 * A worker: its own ordered WQ_MEM_RECLAIM workqueue running fn(ctx), now (wake) or after a
 * delay (wake_after, which keeps an earlier pending delay), and a per-CPU one that writes
 * direct copies and runs after_fn(ctx) when asked (after). destroy cancels the delayed run
 * and drains both queues.
 */
struct orion_worker;
typedef void (*orion_ctx_fn)(void *ctx);
struct orion_worker *orion_worker_create(const char *name, orion_ctx_fn fn,
					 orion_ctx_fn after_fn, void *ctx);
void orion_worker_after(struct orion_worker *w);
void orion_worker_wake(struct orion_worker *w);
void orion_worker_prefer_local(struct orion_worker *w, bool on);
void orion_worker_wake_after(struct orion_worker *w, unsigned int ms);
unsigned int orion_noio_begin(void);
void orion_noio_end(unsigned int flags);
void orion_worker_destroy(struct orion_worker *w);

/*
 * Runs fn(ctx) on a kernel worker's fresh stack and waits (directly when already on a
 * workqueue worker). Sleeps.
 */
void orion_call_on_fresh_stack(orion_ctx_fn fn, void *ctx);

/* Milliseconds since boot (jiffies). */
u64 orion_now_ms(void);

unsigned int orion_bio_record_bytes(void);
void orion_bio_record(struct bio *bio);
void orion_bio_restore(struct bio *bio);

/*
 * Discards a range of bdev with bios chained to parent: parent completes (when ended) only
 * after them. Allocates with GFP_NOIO from the block layer's bio set.
 */
void orion_bio_chain_discard(struct bio *parent, struct block_device *bdev, sector_t sector,
			     sector_t nr_sects);
sector_t orion_bdev_max_discard_sectors(struct block_device *bdev);
/* The block device's name as the kernel prints it ("%pg": sda1, ram3, dm-2). */
void orion_bdev_name(struct block_device *bdev, char *buf, size_t len);

/* blkdev_issue_flush: 0 or a negative errno. Sleeps. */
int orion_blkdev_flush(struct block_device *bdev);

/* IS_ERR/PTR_ERR for pointers returned by the dm libraries. */
long orion_ptr_err(const void *ptr);

void orion_rcu_read_lock(void);
void orion_rcu_read_unlock(void);

#ifdef __BINDGEN__
#include <linux/blk_types.h>
/* Status codes are casts, which bindgen only evaluates in a constant's initialiser. */
const blk_status_t ORION_BLK_STS_NOTSUPP = BLK_STS_NOTSUPP;
const blk_status_t ORION_BLK_STS_IOERR = BLK_STS_IOERR;
const blk_status_t ORION_BLK_STS_NOSPC = BLK_STS_NOSPC;
const blk_status_t ORION_BLK_STS_DM_REQUEUE = BLK_STS_DM_REQUEUE;
#endif

/* Synchronous I/O of a vmalloc'd buffer (snapshot exception store). */
struct dm_io_client;
#define ORION_SYNC_READ 0
#define ORION_SYNC_WRITE 1
#define ORION_SYNC_WRITE_FLUSH_FUA 2
int orion_sync_io(struct dm_io_client *client, struct block_device *bdev, sector_t sector,
		  sector_t count, void *vmem, int op);
struct dm_io_client *orion_io_client_create(void);
unsigned int orion_bdev_logical_block_size(struct block_device *bdev);
void orion_msleep(unsigned int ms);
void orion_ti_set_max_io_len(struct dm_target *ti, u32 len);

/* A copy to several destinations (mirror recovery); errors per destination in write_err. */
void orion_kcopyd_copy_multi(struct dm_kcopyd_client *kc, struct block_device *src,
			     sector_t src_sector, unsigned int n, struct block_device *const *dsts,
			     const sector_t *dst_sectors, sector_t count, bool ignore_errors,
			     orion_copy_fn fn, void *context);

/* An asynchronous write of a bio's data (or its flush or discard) to several devices. */
typedef void (*orion_io_fn)(unsigned long error_bits, void *context);
#define ORION_MAX_IO_REGIONS 9
int orion_dm_io_write_bio(struct dm_io_client *client, struct bio *bio, unsigned int n,
			  struct block_device *const *bdevs, const sector_t *sectors,
			  orion_io_fn fn, void *context);
/* Writes zeroes (from the zero page) to `count` sectors; `fn` runs in I/O completion context. */
int orion_dm_io_zero(struct dm_io_client *client, struct block_device *bdev, sector_t sector,
		     sector_t count, orion_io_fn fn, void *context);
/* Copies at most this many sectors through a buffer, without kcopyd's thread. */
#define ORION_DIRECT_COPY_MAX_SECTORS 2048
/* Where orion_worker_copy does its I/O. */
/* Read from here, written from the worker's thread before its next run. */
#define ORION_PLACE_HERE 0
/* Read from here, written from the copy queue on the CPU the read ended on (a lone copy). */
#define ORION_PLACE_LOCAL 1
/* Read and written from the copy queue of another CPU: a busy worker's data work beside it. */
#define ORION_PLACE_SPREAD 2
/*
 * As ORION_PLACE_LOCAL, but when the read ends in a submitter's task (a device that completes
 * bios as they are submitted, such as brd), the write is submitted there at once.
 */
#define ORION_PLACE_INLINE 3
/*
 * Copies `count` sectors from `src` through a buffer, placed as `place` says; `fn` runs in I/O
 * completion context. 0, or an error before anything started (then `fn` never runs).
 */
int orion_worker_copy(struct orion_worker *w, struct block_device *src, sector_t src_sector,
		      struct block_device *dst, sector_t dst_sector, sector_t count,
		      unsigned int place, orion_io_fn fn, void *context);
/* Writes zeroes to `count` sectors from here, or from another CPU with ORION_PLACE_SPREAD. */
int orion_worker_zero(struct orion_worker *w, struct dm_io_client *client,
		      struct block_device *dst, sector_t sector, sector_t count,
		      unsigned int place, orion_io_fn fn, void *context);

/*
 * Whether this is a task running a bio submission loop (current->bio_list set, not in an
 * interrupt nor, where the kernel can tell, atomic): a bio submitted here only joins the
 * loop's list, so submitting never sleeps.
 * A completion that runs in such a task (a device that completes bios as they are submitted)
 * may go on with the next I/O of its work at once instead of handing it to a worker.
 */
bool orion_in_submitter(void);

/* The largest write orion_async_write takes. */
#define ORION_ASYNC_WRITE_MAX_SECTORS 64
/*
 * Writes a copy of `count` sectors of `data` asynchronously, with REQ_PREFLUSH | REQ_FUA when
 * `flush_fua`; `fn` runs in I/O completion context. Allocates without sleeping: on -ENOMEM
 * (or another error) nothing started and `fn` never runs.
 */
int orion_async_write(struct block_device *bdev, sector_t sector, sector_t count,
		      const void *data, bool flush_fua, orion_io_fn fn, void *context);

#endif /* ORION_DM_GLUE_H */
