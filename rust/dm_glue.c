// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * C glue for orion_dm; see dm_glue.h. Rust's module! in 6.12 has no parameters, so the
 * `prefix` parameter lives here.
 */
#include <linux/bio.h>
#include <linux/completion.h>
#include <linux/device-mapper.h>
#include <linux/dm-kcopyd.h>
#include <linux/err.h>
#include <linux/mutex.h>
#include <linux/blkdev.h>
#include <linux/moduleparam.h>
#include <linux/rcupdate.h>
#include <linux/workqueue.h>

#include "dm_glue.h"

static char *prefix = "";
module_param(prefix, charp, 0444);
MODULE_PARM_DESC(prefix, "Prefix for every registered target name (default: none)");

const char *orion_dm_prefix(void)
{
	return prefix ? prefix : "";
}

void orion_bio_set_dev(struct bio *bio, struct block_device *bdev)
{
	bio_set_dev(bio, bdev);
}

void orion_zero_fill_bio(struct bio *bio)
{
	zero_fill_bio(bio);
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

struct orion_sync_copy {
	struct completion done;
	int error;
};

static void orion_sync_copy_done(int read_err, unsigned long write_err, void *context)
{
	struct orion_sync_copy *sc = context;

	sc->error = (read_err || write_err) ? -EIO : 0;
	complete(&sc->done);
}

int orion_kcopyd_copy_sync(struct dm_kcopyd_client *kc, struct block_device *src,
			   sector_t src_sector, struct block_device *dst,
			   sector_t dst_sector, sector_t count)
{
	struct dm_io_region from = { .bdev = src, .sector = src_sector, .count = count };
	struct dm_io_region to = { .bdev = dst, .sector = dst_sector, .count = count };
	struct orion_sync_copy sc;

	init_completion(&sc.done);
	dm_kcopyd_copy(kc, &from, 1, &to, 0, orion_sync_copy_done, &sc);
	wait_for_completion(&sc.done);
	return sc.error;
}

int orion_kcopyd_zero_sync(struct dm_kcopyd_client *kc, struct block_device *dst,
			   sector_t sector, sector_t count)
{
	struct dm_io_region to = { .bdev = dst, .sector = sector, .count = count };
	struct orion_sync_copy sc;

	init_completion(&sc.done);
	dm_kcopyd_zero(kc, 1, &to, 0, orion_sync_copy_done, &sc);
	wait_for_completion(&sc.done);
	return sc.error;
}

long orion_ptr_err(const void *ptr)
{
	return IS_ERR(ptr) ? PTR_ERR(ptr) : 0;
}
