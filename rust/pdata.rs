// SPDX-License-Identifier: GPL-2.0 OR MIT

//! Persistent data: the on-disk formats of device-mapper metadata.
//!
//! Checksummed 4 KiB blocks behind a [`block::BlockManager`], a copy-on-write
//! [`tm::TransactionManager`] with the metadata space map that allocates from itself, btrees
//! with the kernel's node layout, the data space map, and the dm-thin metadata built on them.
//! The layout follows `drivers/md/persistent-data/` and `drivers/md/dm-thin-metadata.c` of
//! Linux 6.12 bit for bit, so the kernel's thin-pool and thin-provisioning-tools read what
//! this code writes and the other way round.
//!
//! This code depends on `core` only: it builds into the kernel module (which has no `alloc`
//! crate) and into the userspace tools. It never panics on bad data: every on-disk value is
//! checked before it is used as an index, and tree walks use fixed-depth stacks.

#![forbid(unsafe_code)]

pub mod block;
pub mod btree;
pub mod checksum;
pub mod error;
pub mod space_map;
pub mod thin;
pub mod tm;

pub(crate) mod bytes;
