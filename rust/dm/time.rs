// SPDX-License-Identifier: GPL-2.0 OR MIT

//! The monotonic clock targets use for periodic work and timeouts (jiffies, in milliseconds).
//!
//! C header: [include/linux/jiffies.h](srctree/include/linux/jiffies.h)

use super::bindings;

/// Milliseconds since boot, at jiffy resolution.
pub fn now_ms() -> u64 {
    // SAFETY: reads the jiffies counter; no precondition.
    unsafe { bindings::orion_now_ms() }
}

/// Sleeps for at least `ms` milliseconds (process context only).
pub fn sleep_ms(ms: u32) {
    // SAFETY: `msleep` only sleeps; callers are in process context, as documented.
    unsafe { bindings::orion_msleep(ms) }
}
