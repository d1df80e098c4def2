// SPDX-License-Identifier: GPL-2.0 OR MIT

//! Fuzzing of device-mapper tables and target messages through the dm ioctls that
//! `dmsetup` uses, run against this project's targets and the kernel's C targets side by
//! side.
//!
//! A case ([`gen`]) is a table line (or a message) built from a valid template of one
//! target and then mutated: numbers at and past their limits, arguments dropped, repeated,
//! swapped or cut off, unknown feature words, devices that do not exist, repeat or are
//! huge strings, odd target lengths. The same case is rendered once per side, each side
//! with its own devices, and run ([`exec`]); the verdicts (accepted, or the errno and the
//! `ti->error` text dm core logs) are compared. Devices a case writes (thin metadata,
//! snapshot header, mirror log) are reset before it, so one case never depends on what an
//! earlier one left.
//!
//! [`metadata`] loads damaged thin-pool metadata ([`damage`]) into our pool.

pub mod damage;
pub mod exec;
pub mod gen;
pub mod kmsg;
pub mod metadata;
