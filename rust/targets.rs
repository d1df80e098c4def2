// SPDX-License-Identifier: GPL-2.0 OR MIT

//! The device-mapper targets, in safe Rust over `crate::dm`.

#![forbid(unsafe_code)]

pub(crate) mod divisor;
pub mod extents;
pub mod linear;
pub mod mirror;
pub mod snapshot;
pub mod snapshot_origin;
pub mod striped;
pub mod thin;
pub mod thin_pool;
