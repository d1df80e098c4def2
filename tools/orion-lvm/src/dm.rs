// SPDX-License-Identifier: GPL-2.0 OR MIT

//! Device-mapper: the ioctl handle, the backend trait over it (with a recording
//! simulation for host tests) and LV activation with LVM2's names, UUIDs and tables.

pub mod activate;
pub mod backend;
pub mod ioctl;
pub mod mirror;
pub mod recording;
pub mod thin;
