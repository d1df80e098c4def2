// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * C glue for orion_dm; see dm_glue.h. Rust's module! in 6.12 has no parameters, so the
 * `prefix` parameter lives here.
 */
#include <linux/bio.h>
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
