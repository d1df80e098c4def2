// SPDX-License-Identifier: GPL-2.0 OR MIT

//! `ls`: each device with its mapped blocks and the blocks only it maps.

use orion_pdata::block::{BlockManager, Kind};
use orion_pdata::btree::Visit;
use orion_pdata::error::{Error, Result};
use orion_pdata::thin::superblock::{Superblock, LOCATION};
use orion_pdata::thin::{device_root, walk_devices, walk_mappings};
use std::collections::HashMap;

/// One line of `ls`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceUsage {
    /// Device id.
    pub id: u64,
    /// Mapped blocks.
    pub mapped: u64,
    /// Mapped blocks no other device maps.
    pub exclusive: u64,
    /// Creation time.
    pub creation_time: u32,
    /// Last snapshot time.
    pub snap_time: u32,
}

/// Lists the devices of the live metadata.
pub fn list<B: BlockManager>(bm: &B) -> Result<Vec<DeviceUsage>> {
    let sb = bm.read(LOCATION, Kind::Superblock, |d| {
        Superblock::unpack(LOCATION, d)
    })?;
    let mut devs = Vec::new();
    walk_devices(bm, sb.details_root, &mut |id, d| {
        devs.push((id, d));
        Ok(Visit::Continue)
    })?;
    let mut per_dev: Vec<Vec<u64>> = Vec::new();
    let mut refs: HashMap<u64, u32> = HashMap::new();
    for (id, _) in &devs {
        let root = device_root(bm, sb.mapping_root, *id)?.ok_or(Error::Corrupt {
            block: sb.mapping_root,
            what: "device without a mapping tree",
        })?;
        let mut blocks = Vec::new();
        walk_mappings(bm, root, 0, &mut |_, b, _| {
            blocks.push(b);
            Ok(Visit::Continue)
        })?;
        for b in &blocks {
            *refs.entry(*b).or_default() += 1;
        }
        per_dev.push(blocks);
    }
    Ok(devs
        .iter()
        .zip(per_dev)
        .map(|((id, d), blocks)| DeviceUsage {
            id: *id,
            mapped: blocks.len() as u64,
            exclusive: blocks.iter().filter(|b| refs.get(b) == Some(&1)).count() as u64,
            creation_time: d.creation_time,
            snap_time: d.snapshotted_time,
        })
        .collect())
}
