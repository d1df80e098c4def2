// SPDX-License-Identifier: GPL-2.0 OR MIT

//! Finding the roots of the device details and mapping trees without the superblock.
//!
//! Every metadata block is read as a btree node. A node that passes its checks is
//! classified bottom-up: a leaf of 24-byte values belongs to a device details tree; a leaf
//! of 8-byte values whose values are all blocks holding mapping trees is a top-level
//! mapping leaf; any other leaf of 8-byte values holds mappings; an internal node takes
//! the class of its children when they all agree and their keys ascend. A valid node that
//! no valid node refers to is a root. A details root and a top-level mapping root form a
//! pair when they name the same devices and the details' mapped-block counts add up to the
//! mappings under the mapping root, as they do for every committed transaction. Of the
//! pairs, the one with the latest time stamp wins, then the one with the most mappings.

use super::salvage::{read_node, salvage_tree, NodeView};
use orion_pdata::block::{BlockManager, BlockNr};
use orion_pdata::btree::MAX_DEPTH;
use orion_pdata::thin::device::{unpack_mapping, DeviceDetails};
use std::collections::{BTreeSet, HashMap, HashSet};

/// What a node can be part of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Class {
    /// The top level of the mapping tree (device id → mapping tree root).
    TopLevel,
    /// A device's mapping tree (virtual block → data block and time).
    Mappings,
    /// An empty leaf of 8-byte values: an empty top level or an empty device tree.
    EmptyLeaf,
    /// The device details tree.
    Details,
}

/// A summary of the subtree under a valid node.
#[derive(Clone, Copy, Debug)]
struct Info {
    class: Class,
    /// Leaf entries: devices for the top level and the details, mappings otherwise.
    entries: u64,
    /// Mappings under a top-level node; mapped-block counts summed for details.
    mappings: u64,
    /// The latest time stamp seen (mapping times, device creation and snapshot times).
    age: u32,
    /// Mappings stamped with `age`.
    at_age: u64,
    key_low: u64,
    key_high: u64,
}

impl Info {
    /// Takes `n` mappings stamped `age` into account.
    fn add_age(&mut self, age: u32, n: u64) {
        if age > self.age {
            (self.age, self.at_age) = (age, n);
        } else if age == self.age {
            self.at_age += n;
        }
    }
}

/// Roots found by a scan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FoundRoots {
    /// Root of the device details tree.
    pub details_root: BlockNr,
    /// Root of the top-level mapping tree.
    pub mapping_root: BlockNr,
    /// The latest time stamp under both.
    pub age: u32,
    /// Valid unreferenced details roots seen.
    pub details_candidates: usize,
    /// Valid unreferenced top-level mapping roots seen.
    pub mapping_candidates: usize,
}

struct Scanner<'a, B: BlockManager> {
    bm: &'a B,
    nr_blocks: u64,
    infos: HashMap<BlockNr, Option<Info>>,
    in_progress: HashSet<BlockNr>,
    referenced: HashSet<BlockNr>,
}

impl<B: BlockManager> Scanner<'_, B> {
    fn info(&mut self, b: BlockNr, depth: usize) -> Option<Info> {
        if let Some(i) = self.infos.get(&b) {
            return *i;
        }
        // A node met again below itself is part of a loop, and a tree deeper than two
        // stacked valid trees is not one.
        if depth > 2 * MAX_DEPTH || b >= self.nr_blocks || !self.in_progress.insert(b) {
            return None;
        }
        let info = read_node(self.bm, b)
            .ok()
            .and_then(|n| self.classify(&n, depth));
        self.in_progress.remove(&b);
        self.infos.insert(b, info);
        info
    }

    fn classify(&mut self, n: &NodeView, depth: usize) -> Option<Info> {
        let nr = n.keys.len();
        let (key_low, key_high) = (
            n.keys.first().copied().unwrap_or(0),
            n.keys.last().copied().unwrap_or(0),
        );
        if n.keys.windows(2).any(|w| w[0] >= w[1]) {
            return None;
        }
        let mut info = Info {
            class: Class::Details,
            entries: 0,
            mappings: 0,
            age: 0,
            at_age: 0,
            key_low,
            key_high,
        };
        if !n.leaf {
            let mut prev_high: Option<u64> = None;
            for i in 0..nr {
                let c = self.info(n.value_u64(i), depth + 1)?;
                let class = match c.class {
                    Class::EmptyLeaf => return None,
                    c => c,
                };
                if i == 0 {
                    info.class = class;
                } else if class != info.class {
                    return None;
                }
                if c.key_low < n.keys[i] || prev_high.is_some_and(|p| c.key_low <= p) {
                    return None;
                }
                prev_high = Some(c.key_high);
                info.entries += c.entries;
                info.mappings += c.mappings;
                info.add_age(c.age, c.at_age);
            }
            if nr == 0 {
                return None;
            }
            for i in 0..nr {
                self.referenced.insert(n.value_u64(i));
            }
            return Some(info);
        }
        info.entries = nr as u64;
        match n.value_size {
            DeviceDetails::SIZE => {
                for i in 0..nr {
                    let d = DeviceDetails::unpack(n.value(i));
                    info.mappings += d.mapped_blocks;
                    info.age = info.age.max(d.creation_time).max(d.snapshotted_time);
                }
                Some(info)
            }
            8 if nr == 0 => {
                info.class = Class::EmptyLeaf;
                Some(info)
            }
            8 => {
                let nr_blocks = self.nr_blocks;
                if (0..nr).all(|i| n.value_u64(i) < nr_blocks) {
                    if let Some(top) = self.top_level(n, info, depth) {
                        return Some(top);
                    }
                }
                info.class = Class::Mappings;
                info.mappings = nr as u64;
                for i in 0..nr {
                    info.add_age(unpack_mapping(n.value_u64(i)).1, 1);
                }
                Some(info)
            }
            _ => None,
        }
    }

    /// `info` for `n` as a top-level leaf, if every value is the root of a mapping tree.
    fn top_level(&mut self, n: &NodeView, mut info: Info, depth: usize) -> Option<Info> {
        info.class = Class::TopLevel;
        for i in 0..n.keys.len() {
            let c = self.info(n.value_u64(i), depth + 1)?;
            if !matches!(c.class, Class::Mappings | Class::EmptyLeaf) {
                return None;
            }
            if c.class == Class::Mappings {
                info.mappings += c.mappings;
                info.add_age(c.age, c.at_age);
            }
        }
        for i in 0..n.keys.len() {
            self.referenced.insert(n.value_u64(i));
        }
        Some(info)
    }
}

/// The device ids under a tree, if a salvaging walk finds no damage at all.
fn clean_ids<B: BlockManager>(bm: &B, root: BlockNr, value_size: usize) -> Option<BTreeSet<u64>> {
    let mut ids = BTreeSet::new();
    let walked = salvage_tree(bm, root, value_size, &HashSet::new(), |k, _| {
        ids.insert(k);
    });
    walked.damage.is_clean().then_some(ids)
}

/// How a pair of roots ranks: latest mapping time, then most mappings at that time (later
/// writes of the same period), then latest device time, most mappings, block numbers.
type Rank = (u32, u64, u32, u64, BlockNr, BlockNr);

/// Scans every block of `bm` for the best pair of details and mapping roots.
pub fn find_roots<B: BlockManager>(bm: &B) -> Option<FoundRoots> {
    let mut s = Scanner {
        bm,
        nr_blocks: bm.nr_blocks(),
        infos: HashMap::new(),
        in_progress: HashSet::new(),
        referenced: HashSet::new(),
    };
    for b in 0..s.nr_blocks {
        s.info(b, 0);
    }
    let mut details = Vec::new();
    let mut mappings = Vec::new();
    for (b, info) in &s.infos {
        let Some(i) = info else { continue };
        if s.referenced.contains(b) {
            continue;
        }
        match i.class {
            Class::Details => details.push((*b, *i)),
            Class::TopLevel | Class::EmptyLeaf => mappings.push((*b, *i)),
            Class::Mappings => {}
        }
    }
    let mut best: Option<(FoundRoots, Rank)> = None;
    let mut ids_cache: HashMap<(BlockNr, usize), Option<BTreeSet<u64>>> = HashMap::new();
    let mut ids = |b: BlockNr, vs: usize| {
        ids_cache
            .entry((b, vs))
            .or_insert_with(|| clean_ids(bm, b, vs))
            .clone()
    };
    for (db, di) in &details {
        for (mb, mi) in &mappings {
            if di.entries != mi.entries || di.mappings != mi.mappings {
                continue;
            }
            let (Some(d_ids), Some(m_ids)) = (ids(*db, DeviceDetails::SIZE), ids(*mb, 8)) else {
                continue;
            };
            if d_ids != m_ids {
                continue;
            }
            let found = FoundRoots {
                details_root: *db,
                mapping_root: *mb,
                age: di.age.max(mi.age),
                details_candidates: details.len(),
                mapping_candidates: mappings.len(),
            };
            let rank = (
                mi.age,
                mi.at_age,
                di.age,
                mi.mappings,
                found.details_root,
                found.mapping_root,
            );
            if best.as_ref().is_none_or(|(_, r)| rank > *r) {
                best = Some((found, rank));
            }
        }
    }
    best.map(|(f, _)| f)
}
