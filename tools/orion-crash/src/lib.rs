// SPDX-License-Identifier: GPL-2.0 OR MIT

//! Power-cut (crash) testing of block devices with the kernel's dm-log-writes target.
//!
//! A workload ([`workload`]) writes self-describing 4 KiB blocks ([`stamp`]) to a device
//! stacked over `log-writes`, flushes every few writes and records what each flush
//! acknowledged in a journal ([`journal`]). The log ([`log`]) holds every write that
//! reached the disk, in the order the disk made it durable; replaying a prefix of it
//! ([`replay`]) gives the disk as a power cut at that point would have left it. The
//! verifier ([`verify`]) then reads the device back and checks that nothing acknowledged
//! was lost and nothing that was never written (or written elsewhere) is read. For a thin
//! pool, a device-mapper snapshot or a mirror, [`walk`] does all of that at each of hundreds
//! of cut points ([`cuts`]) in one pass over the log, bringing the stack up afresh on each.

pub mod cuts;
pub mod dev;
pub mod error;
pub mod journal;
pub mod log;
pub mod replay;
pub mod rng;
pub mod stamp;
pub mod verify;
pub mod walk;
pub mod workload;

pub use error::{Error, Result};
