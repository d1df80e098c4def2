// SPDX-License-Identifier: GPL-2.0 OR MIT

//! dm-thin pool metadata: devices, their block mappings, and the pool's transactions.
//!
//! The superblock points at a two-level mapping tree (device id → root of that device's
//! tree of virtual block → data block and time), a device details tree, and the two space
//! maps. A snapshot shares its origin's mapping tree; a later write to either copies the
//! path it changes. A metadata snapshot is a copy of a committed superblock whose trees are
//! held with an extra reference so userspace can read a consistent view of a live pool.

pub mod device;
pub mod superblock;

use super::block::{BlockManager, BlockNr, Kind};
use super::btree::{self, Plain, Values, Visit, Visitor};
use super::bytes::get_u64;
use super::error::{Error, Result};
use super::space_map::disk::DiskSpaceMap;
use super::space_map::metadata::MAX_BLOCKS;
use super::space_map::IndexEntry;
use super::tm::TransactionManager;
use device::{pack_mapping, unpack_mapping, DevId, DeviceDetails};
use superblock::{Superblock, LOCATION, METADATA_BLOCK_SECTORS, VERSION};

/// Mapping values: each holds a reference on its data block.
struct DataBlocks<'a, I>(&'a mut DiskSpaceMap<I>);

impl<B: BlockManager, I: AsRef<[IndexEntry]> + AsMut<[IndexEntry]>> Values<B>
    for DataBlocks<'_, I>
{
    const SIZE: usize = 8;

    fn inc(&mut self, tm: &mut TransactionManager<B>, v: &[u8]) -> Result<()> {
        self.0.inc(tm, unpack_mapping(get_u64(v, 0)).0)
    }

    fn dec(&mut self, tm: &mut TransactionManager<B>, v: &[u8]) -> Result<()> {
        self.0.dec(tm, unpack_mapping(get_u64(v, 0)).0)
    }

    fn same(&self, a: &[u8], b: &[u8]) -> bool {
        unpack_mapping(get_u64(a, 0)).0 == unpack_mapping(get_u64(b, 0)).0
    }
}

/// Top-level values: each holds a reference on a device's mapping tree.
struct Subtrees<'a, I>(&'a mut DiskSpaceMap<I>);

impl<B: BlockManager, I: AsRef<[IndexEntry]> + AsMut<[IndexEntry]>> Values<B> for Subtrees<'_, I> {
    const SIZE: usize = 8;

    fn inc(&mut self, tm: &mut TransactionManager<B>, v: &[u8]) -> Result<()> {
        tm.inc(get_u64(v, 0))
    }

    fn dec(&mut self, tm: &mut TransactionManager<B>, v: &[u8]) -> Result<()> {
        btree::del(tm, &mut DataBlocks(self.0), get_u64(v, 0))
    }
}

/// Device details whose mapped-block counts changed since the last write to the details
/// tree; bounded so the structure stays a fixed size.
const DETAILS_CACHE: usize = 16;

/// Open pool metadata.
///
/// After any error the in-memory state may be ahead of what is on disk; the caller must
/// drop this value and reopen, which yields the last committed transaction.
pub struct ThinMetadata<B: BlockManager> {
    tm: TransactionManager<B>,
    data_sm: DiskSpaceMap<B::SpaceMapIndex>,
    sb: Superblock,
    cache: [Option<(DevId, DeviceDetails)>; DETAILS_CACHE],
    next_victim: usize,
}

impl<B: BlockManager> ThinMetadata<B> {
    /// Formats fresh metadata over the whole device for a pool of `nr_data_blocks` blocks
    /// of `data_block_size` sectors, and commits it.
    pub fn format(bm: B, data_block_size: u32, nr_data_blocks: u64) -> Result<Self> {
        let nr_blocks = bm.nr_blocks().min(MAX_BLOCKS);
        let mut tm = TransactionManager::format(bm, LOCATION)?;
        let data_sm = DiskSpaceMap::create(&mut tm, nr_data_blocks)?;
        let sb = Superblock {
            version: VERSION,
            mapping_root: btree::empty(&mut tm, 8)?,
            details_root: btree::empty(&mut tm, DeviceDetails::SIZE)?,
            data_block_size,
            metadata_block_size: METADATA_BLOCK_SECTORS,
            metadata_nr_blocks: nr_blocks,
            ..Superblock::default()
        };
        let mut md = ThinMetadata {
            tm,
            data_sm,
            sb,
            cache: [None; DETAILS_CACHE],
            next_victim: 0,
        };
        md.commit()?;
        Ok(md)
    }

    /// Opens committed metadata.
    pub fn open(bm: B) -> Result<Self> {
        let sb = bm.read(LOCATION, Kind::Superblock, |d| {
            Superblock::unpack(LOCATION, d)
        })?;
        let tm = TransactionManager::open(bm, &sb.metadata_sm.pack())?;
        let data_sm = DiskSpaceMap::open(&tm, &sb.data_sm.pack())?;
        Ok(ThinMetadata {
            tm,
            data_sm,
            sb,
            cache: [None; DETAILS_CACHE],
            next_victim: 0,
        })
    }

    /// The superblock as it will be written at the next commit.
    pub fn superblock(&self) -> &Superblock {
        &self.sb
    }

    /// The transaction manager (for walks and checks).
    pub fn tm(&self) -> &TransactionManager<B> {
        &self.tm
    }

    /// The data space map.
    pub fn data_sm(&self) -> &DiskSpaceMap<B::SpaceMapIndex> {
        &self.data_sm
    }

    /// Gives the block manager back, dropping anything not committed.
    pub fn into_bm(self) -> B {
        self.tm.into_bm()
    }

    /// Sets the pool time and transaction id as restored metadata records them.
    pub fn set_time_and_transaction(&mut self, time: u32, trans_id: u64) {
        self.sb.time = time;
        self.sb.trans_id = trans_id;
    }

    /// Sets the format version written at commit (1 or 2; they differ only in what the
    /// kernel accepts in `flags`).
    pub fn set_version(&mut self, version: u32) {
        self.sb.version = version;
    }

    /// Replaces the details of an existing device (restoring metadata).
    pub fn set_details(&mut self, dev: DevId, details: &DeviceDetails) -> Result<()> {
        if self.details(dev)?.is_none() {
            return Err(Error::Invalid("no such thin device"));
        }
        self.forget_details(dev);
        self.write_details(dev, details)
    }

    /// Sets the superblock flags.
    pub fn set_flags(&mut self, flags: u32) {
        self.sb.flags = flags;
    }

    /// Changes the transaction id from `old` to `new`, as the pool message does.
    pub fn set_transaction_id(&mut self, old: u64, new: u64) -> Result<()> {
        if self.sb.trans_id != old {
            return Err(Error::Invalid("transaction id mismatch"));
        }
        self.sb.trans_id = new;
        Ok(())
    }

    fn device_root(&self, dev: DevId) -> Result<Option<BlockNr>> {
        device_root(self.tm.bm(), self.sb.mapping_root, dev)
    }

    /// The details of device `dev`.
    pub fn details(&mut self, dev: DevId) -> Result<Option<DeviceDetails>> {
        if let Some((_, d)) = self.cache.iter().flatten().find(|(id, _)| *id == dev) {
            return Ok(Some(*d));
        }
        let mut raw = [0u8; DeviceDetails::SIZE];
        if btree::lookup(self.tm.bm(), self.sb.details_root, dev, &mut raw)? {
            Ok(Some(DeviceDetails::unpack(&raw)))
        } else {
            Ok(None)
        }
    }

    fn write_details(&mut self, dev: DevId, d: &DeviceDetails) -> Result<()> {
        self.sb.details_root = btree::insert(
            &mut self.tm,
            &mut Plain::<{ DeviceDetails::SIZE }>,
            self.sb.details_root,
            dev,
            &d.pack(),
        )?;
        Ok(())
    }

    /// Changes the cached details of `dev` (loading them first).
    fn update_details(&mut self, dev: DevId, f: impl FnOnce(&mut DeviceDetails)) -> Result<()> {
        if let Some((_, d)) = self.cache.iter_mut().flatten().find(|(id, _)| *id == dev) {
            f(d);
            return Ok(());
        }
        let mut d = self
            .details(dev)?
            .ok_or(Error::Invalid("no such thin device"))?;
        f(&mut d);
        let slot = self.next_victim;
        self.next_victim = (slot + 1) % DETAILS_CACHE;
        if let Some(Some((id, old))) = self.cache.get(slot).copied() {
            self.write_details(id, &old)?;
        }
        if let Some(s) = self.cache.get_mut(slot) {
            *s = Some((dev, d));
        }
        Ok(())
    }

    fn flush_details(&mut self) -> Result<()> {
        for i in 0..DETAILS_CACHE {
            if let Some(Some((id, d))) = self.cache.get_mut(i).map(Option::take) {
                self.write_details(id, &d)?;
            }
        }
        Ok(())
    }

    /// Points the top-level entry of `dev` at `root`. A new entry takes over the caller's
    /// reference on `root`; replacing an entry moves the reference of the shadowed old
    /// root (`replace`), so nothing is dropped.
    fn set_device_root(&mut self, dev: DevId, root: BlockNr, replace: bool) -> Result<()> {
        let vals = &mut Subtrees(&mut self.data_sm);
        let (tm, top, v) = (&mut self.tm, self.sb.mapping_root, root.to_le_bytes());
        self.sb.mapping_root = if replace {
            btree::set_child(tm, vals, top, dev, &v)?
        } else {
            btree::insert(tm, vals, top, dev, &v)?
        };
        Ok(())
    }

    fn forget_details(&mut self, dev: DevId) {
        for s in self.cache.iter_mut() {
            if s.is_some_and(|(id, _)| id == dev) {
                *s = None;
            }
        }
    }

    /// Creates an empty thin device.
    pub fn create_thin(&mut self, dev: DevId) -> Result<()> {
        let details = DeviceDetails {
            mapped_blocks: 0,
            transaction_id: self.sb.trans_id,
            creation_time: self.sb.time,
            snapshotted_time: self.sb.time,
        };
        self.create_thin_with(dev, &details)
    }

    /// Creates an empty thin device with the given details (restoring metadata).
    pub fn create_thin_with(&mut self, dev: DevId, details: &DeviceDetails) -> Result<()> {
        if self.details(dev)?.is_some() {
            return Err(Error::Invalid("thin device already exists"));
        }
        let root = btree::empty(&mut self.tm, 8)?;
        self.set_device_root(dev, root, false)?;
        self.write_details(dev, details)
    }

    /// Creates `dev` as a snapshot of `origin`: it shares the origin's mappings, and the
    /// pool time moves on so later writes to either can tell shared blocks apart.
    pub fn create_snap(&mut self, dev: DevId, origin: DevId) -> Result<()> {
        if self.details(dev)?.is_some() {
            return Err(Error::Invalid("thin device already exists"));
        }
        let origin_root = self
            .device_root(origin)?
            .ok_or(Error::Invalid("snapshot origin does not exist"))?;
        let origin_details = self
            .details(origin)?
            .ok_or(Error::Invalid("snapshot origin does not exist"))?;
        self.tm.inc(origin_root)?;
        self.set_device_root(dev, origin_root, false)?;
        self.sb.time = self.sb.time.wrapping_add(1);
        let time = self.sb.time;
        self.update_details(origin, |d| d.snapshotted_time = time)?;
        let snap = DeviceDetails {
            mapped_blocks: origin_details.mapped_blocks,
            transaction_id: self.sb.trans_id,
            creation_time: time,
            snapshotted_time: time,
        };
        self.write_details(dev, &snap)
    }

    /// Deletes a device and every mapping only it held.
    pub fn delete(&mut self, dev: DevId) -> Result<()> {
        self.forget_details(dev);
        let (root, found) = btree::remove(
            &mut self.tm,
            &mut Plain::<{ DeviceDetails::SIZE }>,
            self.sb.details_root,
            dev,
        )?;
        if !found {
            return Err(Error::Invalid("no such thin device"));
        }
        self.sb.details_root = root;
        self.sb.mapping_root = btree::remove(
            &mut self.tm,
            &mut Subtrees(&mut self.data_sm),
            self.sb.mapping_root,
            dev,
        )?
        .0;
        Ok(())
    }

    /// Allocates a data block (free now and at the last commit) with one reference.
    pub fn alloc_data_block(&mut self) -> Result<BlockNr> {
        self.data_sm.new_block(&mut self.tm)
    }

    /// Adds a reference to data block `b`.
    pub fn inc_data_block(&mut self, b: BlockNr) -> Result<()> {
        self.data_sm.inc(&mut self.tm, b)
    }

    /// Drops a reference to data block `b`.
    pub fn dec_data_block(&mut self, b: BlockNr) -> Result<()> {
        self.data_sm.dec(&mut self.tm, b)
    }

    /// The reference count of data block `b`.
    pub fn data_block_count(&self, b: BlockNr) -> Result<u32> {
        self.data_sm.count(&self.tm, b)
    }

    /// Shadows the top-level path to `dev` so its subtree root can be replaced in place,
    /// and returns that root.
    fn open_subtree(&mut self, dev: DevId) -> Result<BlockNr> {
        let root = self
            .device_root(dev)?
            .ok_or(Error::Invalid("no such thin device"))?;
        self.set_device_root(dev, root, true)?;
        // If the top-level leaf was shared, shadowing it added a reference to the subtree
        // root, so the caller's shadow of the root will copy it as it must.
        Ok(root)
    }

    fn close_subtree(&mut self, dev: DevId, old: BlockNr, new: BlockNr) -> Result<()> {
        if old != new {
            self.set_device_root(dev, new, true)?;
        }
        Ok(())
    }

    /// Maps virtual block `vblock` of `dev` to data block `dblock` stamped with `time`.
    /// The mapping takes over one reference the caller holds on `dblock` (from
    /// [`Self::alloc_data_block`] or [`Self::inc_data_block`]); a replaced mapping drops
    /// its reference.
    pub fn insert(&mut self, dev: DevId, vblock: u64, dblock: BlockNr, time: u32) -> Result<()> {
        if dblock >= self.data_sm.nr_blocks() {
            return Err(Error::Invalid("data block beyond the data device"));
        }
        let root = self.open_subtree(dev)?;
        let v = pack_mapping(dblock, time);
        let (new, existed) = btree::insert_or_replace(
            &mut self.tm,
            &mut DataBlocks(&mut self.data_sm),
            root,
            vblock,
            &v.to_le_bytes(),
        )?;
        self.close_subtree(dev, root, new)?;
        if !existed {
            self.update_details(dev, |d| d.mapped_blocks += 1)?;
        }
        Ok(())
    }

    /// Maps `vblock` of `dev` to a newly allocated data block stamped with the pool time,
    /// as a first write to a thin device does; returns the data block.
    pub fn provision(&mut self, dev: DevId, vblock: u64) -> Result<BlockNr> {
        let b = self.alloc_data_block()?;
        let time = self.sb.time;
        self.insert(dev, vblock, b, time)?;
        Ok(b)
    }

    /// Unmaps `vblock` of `dev`; returns whether it was mapped.
    pub fn remove(&mut self, dev: DevId, vblock: u64) -> Result<bool> {
        let root = self.open_subtree(dev)?;
        let (new, found) = btree::remove(
            &mut self.tm,
            &mut DataBlocks(&mut self.data_sm),
            root,
            vblock,
        )?;
        self.close_subtree(dev, root, new)?;
        if found {
            self.update_details(dev, |d| d.mapped_blocks = d.mapped_blocks.saturating_sub(1))?;
        }
        Ok(found)
    }

    /// The data block and time `vblock` of `dev` maps to.
    pub fn lookup(&self, dev: DevId, vblock: u64) -> Result<Option<(BlockNr, u32)>> {
        let root = self
            .device_root(dev)?
            .ok_or(Error::Invalid("no such thin device"))?;
        let mut raw = [0u8; 8];
        if btree::lookup(self.tm.bm(), root, vblock, &mut raw)? {
            Ok(Some(unpack_mapping(u64::from_le_bytes(raw))))
        } else {
            Ok(None)
        }
    }

    /// The highest mapped virtual block of `dev` (`None` when nothing is mapped).
    pub fn highest_mapped(&self, dev: DevId) -> Result<Option<u64>> {
        match self.device_root(dev)? {
            Some(root) => btree::highest_key(self.tm.bm(), root),
            None => Err(Error::Invalid("no such thin device")),
        }
    }

    /// Metadata blocks counted by the metadata space map, and how many of them are free.
    pub fn metadata_space(&self) -> (u64, u64) {
        let r = self.tm.sm_root();
        (r.nr_blocks, r.nr_blocks.saturating_sub(r.nr_allocated))
    }

    /// Blocks the metadata space map counts: the size of the metadata device in use
    /// (`dm_pool_get_metadata_dev_size`). The superblock's `metadata_nr_blocks` keeps the
    /// size at format time, as the kernel leaves it.
    pub fn metadata_nr_blocks(&self) -> u64 {
        self.tm.sm_root().nr_blocks
    }

    /// Grows the metadata device to `nr_blocks` (`dm_pool_resize_metadata_dev`), capped at
    /// [`MAX_BLOCKS`] as dm-thin caps the device; the block manager must already reach
    /// that far. The new size is durable with the next [`Self::commit`]; until then a
    /// reopen finds the old one.
    ///
    /// A smaller size is refused and a size beyond the block manager's device too, both
    /// without changing anything. Any other error (the added area too small to hold the
    /// space map's own new blocks, I/O) leaves this value unusable, as every error does.
    pub fn resize_metadata(&mut self, nr_blocks: u64) -> Result<()> {
        let nr_blocks = nr_blocks.min(MAX_BLOCKS);
        let cur = self.metadata_nr_blocks();
        if nr_blocks < cur {
            return Err(Error::Invalid("the metadata device cannot shrink"));
        }
        self.tm.sm_extend(nr_blocks - cur)
    }

    /// Grows the data device to `nr_blocks`.
    pub fn resize_data(&mut self, nr_blocks: u64) -> Result<()> {
        let cur = self.data_sm.nr_blocks();
        if nr_blocks < cur {
            return Err(Error::Invalid("the data device cannot shrink"));
        }
        self.data_sm.extend(&mut self.tm, nr_blocks - cur)
    }

    /// Takes a metadata snapshot: commits, then holds a copy of the superblock and its
    /// trees until [`Self::release_metadata_snap`].
    pub fn reserve_metadata_snap(&mut self) -> Result<BlockNr> {
        if self.sb.held_root != 0 {
            return Err(Error::Invalid("a metadata snapshot already exists"));
        }
        self.commit()?;
        self.tm.inc(LOCATION)?;
        let (copy, _) = self.tm.shadow(LOCATION, Kind::Superblock)?;
        let committed = self.sb;
        self.tm.write(copy, Kind::Superblock, |d| {
            let mut held = committed;
            held.data_sm = Default::default();
            held.metadata_sm = Default::default();
            d.fill(0);
            held.pack(d);
            Ok(())
        })?;
        self.tm.inc(committed.mapping_root)?;
        self.tm.inc(committed.details_root)?;
        self.sb.held_root = copy;
        Ok(copy)
    }

    /// Drops the metadata snapshot and whatever only it held.
    pub fn release_metadata_snap(&mut self) -> Result<()> {
        let held = self.sb.held_root;
        if held == 0 {
            return Err(Error::Invalid("no metadata snapshot"));
        }
        let snap = self
            .tm
            .read(held, Kind::Superblock, |d| Superblock::unpack(held, d))?;
        btree::del(
            &mut self.tm,
            &mut Subtrees(&mut self.data_sm),
            snap.mapping_root,
        )?;
        btree::del(
            &mut self.tm,
            &mut Plain::<{ DeviceDetails::SIZE }>,
            snap.details_root,
        )?;
        self.tm.dec(held)?;
        self.sb.held_root = 0;
        Ok(())
    }

    /// Commits: every changed block, then the superblock.
    pub fn commit(&mut self) -> Result<()> {
        self.flush_details()?;
        self.data_sm.commit(&mut self.tm)?;
        self.tm.pre_commit()?;
        self.sb.data_sm = self.data_sm.root();
        self.sb.metadata_sm = self.tm.sm_root();
        let sb = self.sb;
        self.tm.commit(LOCATION, |d| {
            sb.pack(d);
            Ok(())
        })
    }
}

/// The root of `dev`'s mapping tree under `mapping_root`.
pub fn device_root<B: BlockManager>(
    bm: &B,
    mapping_root: BlockNr,
    dev: DevId,
) -> Result<Option<BlockNr>> {
    let mut raw = [0u8; 8];
    if btree::lookup(bm, mapping_root, dev, &mut raw)? {
        Ok(Some(u64::from_le_bytes(raw)))
    } else {
        Ok(None)
    }
}

/// Calls `f` with each device and its details, in id order.
pub fn walk_devices<B: BlockManager>(
    bm: &B,
    details_root: BlockNr,
    f: &mut dyn FnMut(DevId, DeviceDetails) -> Result<Visit>,
) -> Result<()> {
    btree::walk(
        bm,
        details_root,
        DeviceDetails::SIZE,
        0,
        &mut |k: u64, v: &[u8]| f(k, DeviceDetails::unpack(v)),
    )
}

/// Calls `f` with each mapping (virtual block, data block, time) of the device tree at
/// `root` from `from` on, in order.
pub fn walk_mappings<B: BlockManager>(
    bm: &B,
    root: BlockNr,
    from: u64,
    f: &mut dyn FnMut(u64, BlockNr, u32) -> Result<Visit>,
) -> Result<()> {
    btree::walk(bm, root, 8, from, &mut |k: u64, v: &[u8]| {
        let (b, t) = unpack_mapping(get_u64(v, 0));
        f(k, b, t)
    })
}

/// Walks a tree reporting nodes to `v` (for checkers that count block references).
pub fn walk_tree<B: BlockManager, V: Visitor>(
    bm: &B,
    root: BlockNr,
    value_size: usize,
    v: &mut V,
) -> Result<()> {
    btree::walk(bm, root, value_size, 0, v)
}
