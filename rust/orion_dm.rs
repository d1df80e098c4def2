// SPDX-License-Identifier: GPL-2.0 OR MIT

//! orion_dm: device-mapper targets in Rust, compatible with the kernel's C targets.
//!
//! Load with `prefix=orion-` to run each target beside its C twin (`orion-linear` next to
//! `linear`); with no prefix each target takes its standard name unless another module
//! already provides it.

// pin_init! of the larger target objects (the mirror set) nests deeper than the default.
#![recursion_limit = "256"]

use kernel::prelude::*;

pub mod dm;
pub mod pdata;
pub mod targets;

module! {
    type: OrionDm,
    name: "orion_dm",
    author: "Orion DM developers",
    description: "Device-mapper targets in Rust: linear, striped, thin-pool, thin, snapshot, mirror",
    license: "Dual MIT/GPL",
}

struct OrionDm {
    _targets: dm::registration::Registrations,
}

impl kernel::Module for OrionDm {
    fn init(module: &'static ThisModule) -> Result<Self> {
        let mut regs = dm::registration::Registrations::new(module, dm::registration::prefix());
        regs.add::<targets::linear::Linear>()?;
        regs.add::<targets::striped::Striped>()?;
        regs.add::<targets::thin_pool::ThinPool>()?;
        regs.add::<targets::thin::Thin>()?;
        regs.add::<targets::snapshot_origin::SnapshotOrigin>()?;
        regs.add::<targets::snapshot::SnapshotTarget>()?;
        regs.add::<targets::snapshot::SnapshotMerge>()?;
        regs.add::<targets::mirror::Mirror>()?;
        Ok(OrionDm {
            _targets: regs.finish()?,
        })
    }
}

impl Drop for OrionDm {
    fn drop(&mut self) {
        // No table is left (the module is unused); the registries' buffers go with it.
        targets::thin::pool::free_registry();
        targets::snapshot::origin::free_registry();
        // Values replaced under RCU are freed by callbacks in this module's text.
        dm::rcu::barrier();
    }
}
