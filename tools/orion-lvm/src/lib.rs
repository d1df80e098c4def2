// SPDX-License-Identifier: GPL-2.0 OR MIT

//! orion-lvm: LVM2's on-disk format (PV label, metadata areas, text metadata), the VG
//! model, extent allocation and the volume-manager commands.

pub mod cli;
pub mod commands;
pub mod config;
pub mod crc;
pub mod dm;
pub mod exit;
pub mod label;
pub mod lvmconf;
pub mod mda;
pub mod pv;
pub mod report;
pub mod vg;
