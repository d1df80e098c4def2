// SPDX-License-Identifier: GPL-2.0 OR MIT

//! Device-mapper abstraction layer: every binding, C callback and `unsafe` block of orion_dm.
//!
//! Targets (in `crate::targets`) are safe Rust over this layer: they implement
//! [`target::Target`] and are registered with [`registration::Registrations`].
//!
//! C header: [include/linux/device-mapper.h](srctree/include/linux/device-mapper.h)

pub mod args;
pub mod bindings;
pub mod bio;
pub mod bufio;
pub mod dev;
pub mod event;
pub mod global;
pub mod internal_suspend;
pub mod kcopyd;
pub mod limits;
pub mod mutex;
pub mod params;
pub mod rcu;
pub mod registration;
pub mod stack;
pub mod status;
pub mod sync_io;
pub mod target;
pub mod time;
pub mod worker;
