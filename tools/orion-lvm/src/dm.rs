// SPDX-License-Identifier: GPL-2.0 OR MIT

//! Device-mapper: the ioctl handle and LV activation with LVM2's names, UUIDs and tables.

pub mod activate;
pub mod ioctl;
pub mod mirror;
pub mod thin;
