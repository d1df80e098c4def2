// SPDX-License-Identifier: GPL-2.0 OR MIT

//! The module's parameters that targets read (defined in the C glue: `module!` of 6.12 has
//! none): `no_space_timeout`, as dm-thin-pool's.

use super::bindings;

/// `no_space_timeout`: how long a thin pool out of data space queues bios, in seconds (0:
/// forever). Writable at run time through sysfs.
pub fn no_space_timeout_secs() -> u32 {
    // SAFETY: reads a module parameter; no precondition.
    unsafe { bindings::orion_no_space_timeout() }
}
