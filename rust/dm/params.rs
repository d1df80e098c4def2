// SPDX-License-Identifier: GPL-2.0 OR MIT

//! The module's parameters that targets read (defined in the C glue: `module!` of 6.12 has
//! none): `no_space_timeout`, as dm-thin-pool's, and `map_cache_runs`.

use super::bindings;

/// `no_space_timeout`: how long a thin pool out of data space queues bios, in seconds (0:
/// forever). Writable at run time through sysfs.
pub fn no_space_timeout_secs() -> u32 {
    // SAFETY: reads a module parameter; no precondition.
    unsafe { bindings::orion_no_space_timeout() }
}

/// `map_cache_runs`: how many mapping runs a thin device keeps in memory for its `map` fast
/// path (its table is emptied when it would hold more; 0: no fast path). Writable at run
/// time through sysfs.
pub fn map_cache_runs() -> usize {
    // SAFETY: reads a module parameter; no precondition.
    unsafe { bindings::orion_map_cache_runs() as usize }
}
