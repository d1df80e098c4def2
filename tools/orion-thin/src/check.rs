// SPDX-License-Identifier: GPL-2.0 OR MIT

//! `check`: walks every structure of the pool metadata and recounts every reference.
//!
//! Each tree is walked with the structural checks of the shared btree code (checksums,
//! locations, key order and ranges, equal leaf depth, value sizes); every node, bitmap and
//! index block reached adds one reference to a metadata block and every mapping one to a
//! data block, shared subtrees being entered once. The recount must equal both space maps
//! entry for entry.

use orion_pdata::block::{BlockManager, BlockNr, Kind};
use orion_pdata::btree::node::Header;
use orion_pdata::btree::{Visit, Visitor};
use orion_pdata::error::{Error, Result};
use orion_pdata::space_map::metadata::{INDEX_HEADER, MAX_BITMAPS};
use orion_pdata::space_map::{bitmap_get, IndexEntry, SmRoot, ENTRIES_PER_BLOCK};
use orion_pdata::thin::device::{unpack_mapping, DeviceDetails};
use orion_pdata::thin::superblock::{Superblock, LOCATION};
use orion_pdata::thin::walk_tree;
use std::collections::{BTreeMap, HashMap};

/// What a check found.
#[derive(Debug, Default)]
pub struct Report {
    /// Problems, one line each.
    pub errors: Vec<String>,
    /// Inconsistencies in summary fields that the kernel and thin_check tolerate
    /// (free-entry counts in index entries, the allocated-block total).
    pub warnings: Vec<String>,
    /// The superblock, when it could be read.
    pub superblock: Option<Superblock>,
    /// Free metadata blocks by the recount.
    pub metadata_free: u64,
}

impl Report {
    /// Whether nothing is wrong.
    pub fn is_clean(&self) -> bool {
        self.errors.is_empty()
    }
}

/// Counts references to metadata blocks and enters each node once.
struct Refs {
    counts: Vec<u32>,
    out_of_range: Vec<BlockNr>,
}

impl Refs {
    fn add(&mut self, b: BlockNr) -> bool {
        match self.counts.get_mut(b as usize) {
            Some(c) => {
                *c += 1;
                *c == 1
            }
            None => {
                self.out_of_range.push(b);
                false
            }
        }
    }
}

/// A walk that counts its nodes and hands entries to `f`; nodes reached before are not
/// entered again (`skipped` says whether there were any).
struct Counting<'a, F: FnMut(u64, &[u8]) -> Result<Visit>> {
    refs: &'a mut Refs,
    f: F,
    skipped: bool,
}

impl<F: FnMut(u64, &[u8]) -> Result<Visit>> Visitor for Counting<'_, F> {
    fn node(&mut self, b: BlockNr, _h: &Header, _depth: usize) -> Result<bool> {
        let first = self.refs.add(b);
        self.skipped |= !first;
        Ok(first)
    }

    fn entry(&mut self, key: u64, value: &[u8]) -> Result<Visit> {
        (self.f)(key, value)
    }
}

/// Walks a tree counting its nodes; returns whether a shared subtree was left out.
fn walk_counting<B: BlockManager>(
    bm: &B,
    refs: &mut Refs,
    root: BlockNr,
    value_size: usize,
    f: impl FnMut(u64, &[u8]) -> Result<Visit>,
) -> Result<bool> {
    let mut c = Counting {
        refs,
        f,
        skipped: false,
    };
    walk_tree(bm, root, value_size, &mut c)?;
    Ok(c.skipped)
}

fn u64_at(v: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&v[..8]);
    u64::from_le_bytes(a)
}

/// Checks the metadata on `bm`.
pub fn check<B: BlockManager>(bm: &B) -> Report {
    let mut r = Report::default();
    let sb = match bm.read(LOCATION, Kind::Superblock, |d| {
        Superblock::unpack(LOCATION, d)
    }) {
        Ok(sb) => sb,
        Err(e) => {
            r.errors.push(format!("superblock: {e}"));
            return r;
        }
    };
    r.superblock = Some(sb);
    let nr_meta = sb.metadata_sm.nr_blocks;
    if nr_meta > bm.nr_blocks() {
        r.errors.push(format!(
            "metadata space map counts {nr_meta} blocks but the device has {}",
            bm.nr_blocks()
        ));
        return r;
    }
    let mut refs = Refs {
        counts: vec![0; nr_meta as usize],
        out_of_range: Vec::new(),
    };
    let mut data_refs: HashMap<u64, u32> = HashMap::new();
    refs.add(LOCATION);

    let mut views = vec![("", sb)];
    if sb.held_root != 0 {
        if refs.add(sb.held_root) {
            match bm.read(sb.held_root, Kind::Superblock, |d| {
                Superblock::unpack(sb.held_root, d)
            }) {
                Ok(held) => views.push(("metadata snapshot ", held)),
                Err(e) => r.errors.push(format!("metadata snapshot superblock: {e}")),
            }
        } else {
            r.errors
                .push("metadata snapshot root is the superblock or out of range".into());
        }
    }
    let mut live_devices: BTreeMap<u64, (DeviceDetails, u64)> = BTreeMap::new();
    for (view, (label, vsb)) in views.iter().enumerate() {
        let mut details = BTreeMap::new();
        if let Err(e) = walk_counting(
            bm,
            &mut refs,
            vsb.details_root,
            DeviceDetails::SIZE,
            |k, v| {
                details.insert(k, DeviceDetails::unpack(v));
                Ok(Visit::Continue)
            },
        ) {
            r.errors.push(format!("{label}device details tree: {e}"));
        }
        let mut roots = Vec::new();
        if let Err(e) = walk_counting(bm, &mut refs, vsb.mapping_root, 8, |k, v| {
            roots.push((k, u64_at(v)));
            Ok(Visit::Continue)
        }) {
            r.errors.push(format!("{label}mapping tree: {e}"));
        }
        let nr_data = sb.data_sm.nr_blocks;
        for &(dev, root) in &roots {
            let mut mapped = 0u64;
            let mut beyond = 0u64;
            let mut res = walk_counting(bm, &mut refs, root, 8, |_, v| {
                mapped += 1;
                let (b, _) = unpack_mapping(u64_at(v));
                if b >= nr_data {
                    beyond += 1;
                }
                *data_refs.entry(b).or_default() += 1;
                Ok(Visit::Continue)
            });
            if let Ok(true) = res {
                // The tree, or a subtree of it, is shared with a device already walked and
                // was left out: count the mappings with a full walk.
                mapped = 0;
                res = walk_tree(bm, root, 8, &mut |_: u64, _: &[u8]| {
                    mapped += 1;
                    Ok(Visit::Continue)
                })
                .map(|()| false);
            }
            if let Err(e) = res {
                r.errors
                    .push(format!("{label}mapping tree of device {dev}: {e}"));
            }
            if beyond > 0 {
                r.errors.push(format!(
                    "{label}device {dev}: {beyond} mappings beyond the data device ({nr_data} blocks)"
                ));
            }
            match details.get(&dev) {
                None => r
                    .errors
                    .push(format!("{label}device {dev} has mappings but no details")),
                Some(d) if view == 0 => {
                    live_devices.insert(dev, (*d, mapped));
                }
                Some(_) => {}
            }
        }
        for dev in details.keys() {
            if !roots.iter().any(|(d, _)| d == dev) {
                r.errors.push(format!(
                    "{label}device {dev} has details but no mapping tree"
                ));
            }
        }
    }
    for (dev, (d, mapped)) in &live_devices {
        if d.mapped_blocks != *mapped {
            r.errors.push(format!(
                "device {dev}: details say {} mapped blocks, the tree holds {mapped}",
                d.mapped_blocks
            ));
        }
    }

    // The metadata space map's own blocks.
    let meta_index = match read_metadata_index(bm, &sb.metadata_sm) {
        Ok(ix) => ix,
        Err(e) => {
            r.errors.push(format!("metadata space map index: {e}"));
            Vec::new()
        }
    };
    refs.add(sb.metadata_sm.bitmap_root);
    for e in &meta_index {
        refs.add(e.blocknr);
    }
    let mut meta_overflow = HashMap::new();
    if let Err(e) = walk_counting(bm, &mut refs, sb.metadata_sm.ref_count_root, 4, |k, v| {
        meta_overflow.insert(k, u32::from_le_bytes([v[0], v[1], v[2], v[3]]));
        Ok(Visit::Continue)
    }) {
        r.errors
            .push(format!("metadata space map reference count tree: {e}"));
    }

    // The data space map's blocks.
    let mut data_index = Vec::new();
    if let Err(e) = walk_counting(
        bm,
        &mut refs,
        sb.data_sm.bitmap_root,
        IndexEntry::SIZE,
        |_, v| {
            data_index.push(IndexEntry::unpack(v));
            Ok(Visit::Continue)
        },
    ) {
        r.errors.push(format!("data space map index: {e}"));
    }
    if data_index.len() as u64 != sb.data_sm.nr_bitmaps() {
        r.errors.push(format!(
            "data space map index has {} bitmaps, {} needed",
            data_index.len(),
            sb.data_sm.nr_bitmaps()
        ));
    }
    for e in &data_index {
        refs.add(e.blocknr);
    }
    let mut data_overflow = HashMap::new();
    if let Err(e) = walk_counting(bm, &mut refs, sb.data_sm.ref_count_root, 4, |k, v| {
        data_overflow.insert(k, u32::from_le_bytes([v[0], v[1], v[2], v[3]]));
        Ok(Visit::Continue)
    }) {
        r.errors
            .push(format!("data space map reference count tree: {e}"));
    }

    for b in &refs.out_of_range {
        r.errors
            .push(format!("reference to metadata block {b} beyond the device"));
    }
    let expected_meta: HashMap<u64, u32> = refs
        .counts
        .iter()
        .enumerate()
        .filter(|(_, c)| **c > 0)
        .map(|(b, c)| (b as u64, *c))
        .collect();
    r.metadata_free = nr_meta - expected_meta.len() as u64;
    compare_counts(
        bm,
        "metadata",
        &sb.metadata_sm,
        &meta_index,
        &meta_overflow,
        &expected_meta,
        &mut r,
    );
    compare_counts(
        bm,
        "data",
        &sb.data_sm,
        &data_index,
        &data_overflow,
        &data_refs,
        &mut r,
    );
    r
}

fn read_metadata_index<B: BlockManager>(bm: &B, root: &SmRoot) -> Result<Vec<IndexEntry>> {
    let n = root.nr_bitmaps();
    if n > MAX_BITMAPS as u64 {
        return Err(Error::Corrupt {
            block: root.bitmap_root,
            what: "metadata space map needs more bitmaps than its index holds",
        });
    }
    bm.read(root.bitmap_root, Kind::Index, |d| {
        Ok((0..n as usize)
            .map(|i| {
                let off = INDEX_HEADER + i * IndexEntry::SIZE;
                IndexEntry::unpack(&d[off..off + IndexEntry::SIZE])
            })
            .collect())
    })
}

/// Compares a space map with the recounted references.
fn compare_counts<B: BlockManager>(
    bm: &B,
    name: &str,
    root: &SmRoot,
    index: &[IndexEntry],
    overflow: &HashMap<u64, u32>,
    expected: &HashMap<u64, u32>,
    r: &mut Report,
) {
    let mut wrong = Vec::new();
    let mut allocated = 0u64;
    for (i, e) in index.iter().enumerate() {
        let start = i as u64 * ENTRIES_PER_BLOCK;
        let end = (start + ENTRIES_PER_BLOCK).min(root.nr_blocks);
        let res = bm.read(e.blocknr, Kind::Bitmap, |d| {
            let mut free = 0u32;
            for b in start..end {
                let v = bitmap_get(d, (b - start) as u32);
                let have = if v == 3 {
                    overflow.get(&b).copied().unwrap_or(3)
                } else {
                    v
                };
                if have == 0 {
                    free += 1;
                } else {
                    allocated += 1;
                }
                let want = expected.get(&b).copied().unwrap_or(0);
                if have != want {
                    wrong.push((b, have, want));
                }
            }
            Ok(free)
        });
        match res {
            Ok(free) => {
                // Entries past the end of the device count as free in the last bitmap.
                let tail = (start + ENTRIES_PER_BLOCK - end) as u32;
                if e.nr_free != free + tail && e.nr_free != free {
                    r.warnings.push(format!(
                        "{name} space map bitmap {i}: index says {} free, bitmap has {free}",
                        e.nr_free
                    ));
                }
            }
            Err(e) => r.errors.push(format!("{name} space map bitmap {i}: {e}")),
        }
    }
    for (b, c) in expected {
        if *b >= root.nr_blocks {
            wrong.push((*b, 0, *c));
        }
    }
    if !wrong.is_empty() {
        wrong.sort();
        let shown: Vec<String> = wrong
            .iter()
            .take(8)
            .map(|(b, have, want)| format!("block {b}: count {have}, referenced {want} times"))
            .collect();
        r.errors.push(format!(
            "{name} space map: {} reference counts wrong ({}{})",
            wrong.len(),
            shown.join("; "),
            if wrong.len() > 8 { "; ..." } else { "" }
        ));
    }
    if allocated != root.nr_allocated && !index.is_empty() {
        r.warnings.push(format!(
            "{name} space map: root says {} allocated, bitmaps have {allocated}",
            root.nr_allocated
        ));
    }
}
