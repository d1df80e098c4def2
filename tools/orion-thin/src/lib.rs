// SPDX-License-Identifier: GPL-2.0 OR MIT

//! dm-thin pool metadata tools over the shared persistent-data code: check, dump (the XML
//! of `thin_dump`), restore (from that XML), repair and ls.

pub mod cache;
pub mod check;
pub mod cli;
pub mod dump;
pub mod ls;
pub mod repair;
pub mod restore;
pub mod xml;
