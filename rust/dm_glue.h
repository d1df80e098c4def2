/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * C glue for orion_dm: the module parameter and the kernel's inline helpers and macros,
 * which bindgen cannot turn into callable functions.
 */
#ifndef ORION_DM_GLUE_H
#define ORION_DM_GLUE_H

#include <linux/types.h>

struct bio;
struct block_device;
struct work_struct;

typedef void (*orion_work_fn)(struct work_struct *work);

/* The `prefix` module parameter: prepended to every target name ("" by default). */
const char *orion_dm_prefix(void);

void orion_bio_set_dev(struct bio *bio, struct block_device *bdev);
sector_t orion_bdev_nr_sectors(struct block_device *bdev);

void orion_init_work(struct work_struct *work, orion_work_fn fn);
bool orion_queue_work(struct work_struct *work);

void orion_rcu_read_lock(void);
void orion_rcu_read_unlock(void);

#ifdef __BINDGEN__
#include <linux/blk_types.h>
/* Status codes are casts, which bindgen only evaluates in a constant's initialiser. */
const blk_status_t ORION_BLK_STS_NOTSUPP = BLK_STS_NOTSUPP;
const blk_status_t ORION_BLK_STS_IOERR = BLK_STS_IOERR;
#endif

#endif /* ORION_DM_GLUE_H */
