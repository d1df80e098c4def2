/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/* Input to bindgen for the dm abstraction layer (see Kbuild). */
#include <linux/device-mapper.h>
#include <linux/dm-bufio.h>
#include <linux/dm-io.h>
#include <linux/dm-kcopyd.h>
#include "dm_glue.h"
