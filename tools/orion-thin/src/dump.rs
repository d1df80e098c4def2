// SPDX-License-Identifier: GPL-2.0 OR MIT

//! `dump`: the pool metadata as `thin_dump` XML.

use crate::xml::{Device, Mapping, Metadata};
use orion_pdata::block::{BlockManager, Kind};
use orion_pdata::btree::Visit;
use orion_pdata::error::{Error, Result};
use orion_pdata::thin::superblock::{Superblock, LOCATION};
use orion_pdata::thin::{device_root, walk_devices, walk_mappings};

/// Where to read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// The live superblock.
    Live,
    /// The metadata snapshot the superblock holds.
    HeldSnapshot,
    /// A metadata snapshot at this block.
    Snapshot(u64),
}

/// Reads the whole metadata into the XML model.
pub fn read<B: BlockManager>(bm: &B, source: Source) -> Result<Metadata> {
    let live: Superblock = bm.read(LOCATION, Kind::Superblock, |d| {
        Superblock::unpack(LOCATION, d)
    })?;
    let at = match source {
        Source::Live => LOCATION,
        Source::HeldSnapshot if live.held_root == 0 => {
            return Err(Error::Invalid("no metadata snapshot is held"))
        }
        Source::HeldSnapshot => live.held_root,
        Source::Snapshot(b) => b,
    };
    let sb = if at == LOCATION {
        live
    } else {
        bm.read(at, Kind::Superblock, |d| Superblock::unpack(at, d))?
    };
    let mut md = Metadata {
        uuid: String::new(),
        time: sb.time,
        transaction: sb.trans_id,
        flags: sb.flags,
        version: sb.version,
        data_block_size: sb.data_block_size,
        // A metadata snapshot has zeroed space-map roots, so like thin_dump this reports
        // 0 data blocks for it.
        nr_data_blocks: sb.data_sm.nr_blocks,
        devices: Vec::new(),
    };
    let mut devs = Vec::new();
    walk_devices(bm, sb.details_root, &mut |id, d| {
        devs.push((id, d));
        Ok(Visit::Continue)
    })?;
    for (id, d) in devs {
        let root = device_root(bm, sb.mapping_root, id)?.ok_or(Error::Corrupt {
            block: sb.mapping_root,
            what: "device in the details tree has no mapping tree",
        })?;
        let mut mappings: Vec<Mapping> = Vec::new();
        walk_mappings(bm, root, 0, &mut |v, b, t| {
            Mapping::append(&mut mappings, v, b, t);
            Ok(Visit::Continue)
        })?;
        md.devices.push(Device {
            id,
            mapped_blocks: d.mapped_blocks,
            transaction: d.transaction_id,
            creation_time: d.creation_time,
            snap_time: d.snapshotted_time,
            mappings,
        });
    }
    Ok(md)
}
