// SPDX-License-Identifier: GPL-2.0 OR MIT

//! `restore`: writes pool metadata from the XML model.

use crate::xml::Metadata;
use orion_pdata::block::BlockManager;
use orion_pdata::error::{Error, Result};
use orion_pdata::thin::device::DeviceDetails;
use orion_pdata::thin::ThinMetadata;

/// Formats `bm` and fills it with `md`, committing once at the end.
pub fn restore<B: BlockManager>(bm: B, md: &Metadata) -> Result<ThinMetadata<B>> {
    if md.data_block_size == 0 {
        return Err(Error::Invalid("data_block_size must not be 0"));
    }
    if md.version == 0 || md.version > 2 {
        return Err(Error::Invalid("unsupported metadata version"));
    }
    let mut t = ThinMetadata::format(bm, md.data_block_size, md.nr_data_blocks)?;
    t.set_time_and_transaction(md.time, md.transaction);
    t.set_flags(md.flags);
    t.set_version(md.version);
    for d in &md.devices {
        let details = DeviceDetails {
            mapped_blocks: 0,
            transaction_id: d.transaction,
            creation_time: d.creation_time,
            snapshotted_time: d.snap_time,
        };
        t.create_thin_with(d.id, &details)?;
        for m in &d.mappings {
            let end = m
                .data
                .checked_add(m.len)
                .filter(|e| *e <= md.nr_data_blocks);
            if end.is_none() || m.origin.checked_add(m.len).is_none() {
                return Err(Error::Invalid("mapping beyond the data device"));
            }
            for i in 0..m.len {
                t.inc_data_block(m.data + i)?;
                t.insert(d.id, m.origin + i, m.data + i, m.time)?;
            }
        }
        // The XML's count is what the pool recorded; keep it as it was.
        t.set_details(
            d.id,
            &DeviceDetails {
                mapped_blocks: d.mapped_blocks,
                ..details
            },
        )?;
    }
    t.commit()?;
    Ok(t)
}
