// SPDX-License-Identifier: GPL-2.0 OR MIT

//! A btree walk that survives damage: it keeps every entry it can trust and skips the rest.
//!
//! The strict walk of the shared btree code stops at the first bad node. This one skips a
//! node that cannot be read or validated (with everything under it), enters a node at most
//! once per walk (so a loop ends), and filters leaf entries one by one: a key must lie in
//! the range its parents give it, above the last key kept, and below the next key of its
//! own leaf. A single damaged key so costs one or two entries instead of a whole leaf.

use orion_pdata::block::{BlockManager, BlockNr, Kind};
use orion_pdata::btree::node::Node;
use orion_pdata::btree::MAX_DEPTH;
use orion_pdata::error::{Error, Result};
use std::collections::HashSet;

/// The contents of one node that passed its checksum, location and header checks.
#[derive(Clone, Debug)]
pub(crate) struct NodeView {
    /// Whether the node is a leaf.
    pub leaf: bool,
    /// Size of each value.
    pub value_size: usize,
    /// The keys in on-disk order.
    pub keys: Vec<u64>,
    /// The values, `value_size` bytes each, in on-disk order.
    pub values: Vec<u8>,
}

impl NodeView {
    /// Value `i`.
    pub fn value(&self, i: usize) -> &[u8] {
        let start = i * self.value_size;
        self.values
            .get(start..start + self.value_size)
            .unwrap_or(&[])
    }

    /// Value `i` read as a little-endian `u64` (a child block, a subtree root, a mapping).
    pub fn value_u64(&self, i: usize) -> u64 {
        let mut a = [0u8; 8];
        if let Some(v) = self.value(i).get(..8) {
            a.copy_from_slice(v);
        }
        u64::from_le_bytes(a)
    }
}

/// Reads block `b` as a btree node.
pub(crate) fn read_node<B: BlockManager>(bm: &B, b: BlockNr) -> Result<NodeView> {
    bm.read(b, Kind::Node, |d| {
        let h = Node::header(b, d)?;
        let mut view = NodeView {
            leaf: h.leaf,
            value_size: h.value_size,
            keys: Vec::with_capacity(h.nr),
            values: Vec::with_capacity(h.nr * h.value_size),
        };
        for i in 0..h.nr {
            view.keys.push(Node::key(d, i));
            view.values.extend_from_slice(Node::value(d, &h, i));
        }
        Ok(view)
    })
}

/// What a salvaging walk had to leave out.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Damage {
    /// Nodes skipped, with everything under them: unreadable, bad checksum, wrong
    /// location, bad header, wrong value size, or deeper than any valid tree.
    pub bad_nodes: u64,
    /// Nodes reached a second time in one walk (a loop or a misdirected child pointer).
    pub repeated_nodes: u64,
    /// Leaf entries dropped because their key was out of order or out of range.
    pub bad_keys: u64,
    /// The first few reasons, one line each.
    pub reasons: Vec<String>,
}

/// Reasons kept per walk; the counts go on.
const MAX_REASONS: usize = 8;

impl Damage {
    /// Whether nothing was left out.
    pub fn is_clean(&self) -> bool {
        self.bad_nodes == 0 && self.repeated_nodes == 0 && self.bad_keys == 0
    }

    /// Adds `other`'s counts and reasons.
    pub fn merge(&mut self, other: &Damage) {
        self.bad_nodes += other.bad_nodes;
        self.repeated_nodes += other.repeated_nodes;
        self.bad_keys += other.bad_keys;
        for r in &other.reasons {
            self.note(r.clone());
        }
    }

    fn note(&mut self, reason: String) {
        if self.reasons.len() < MAX_REASONS {
            self.reasons.push(reason);
        }
    }

    fn bad_node(&mut self, e: Error) {
        self.bad_nodes += 1;
        self.note(e.to_string());
    }
}

/// A salvaging walk of one tree.
struct Walk<'a, B: BlockManager, F: FnMut(u64, &[u8])> {
    bm: &'a B,
    value_size: usize,
    exclude: &'a HashSet<BlockNr>,
    visited: HashSet<BlockNr>,
    last: Option<u64>,
    damage: Damage,
    f: F,
}

impl<B: BlockManager, F: FnMut(u64, &[u8])> Walk<'_, B, F> {
    /// Walks the subtree at `b`, whose keys must lie in `lo..hi`.
    fn visit(&mut self, b: BlockNr, lo: u64, hi: Option<u64>, depth: usize) {
        if depth >= MAX_DEPTH {
            self.damage.bad_node(Error::TooDeep(b));
            return;
        }
        if self.exclude.contains(&b) {
            self.damage.bad_nodes += 1;
            self.damage
                .note(format!("metadata block {b} belongs to another tree"));
            return;
        }
        if !self.visited.insert(b) {
            self.damage.repeated_nodes += 1;
            self.damage
                .note(format!("metadata block {b} is reached twice in one tree"));
            return;
        }
        let node = match read_node(self.bm, b) {
            Ok(n) => n,
            Err(e) => return self.damage.bad_node(e),
        };
        if node.leaf && node.value_size != self.value_size {
            return self.damage.bad_node(Error::Corrupt {
                block: b,
                what: "btree leaf has the wrong value size",
            });
        }
        let nr = node.keys.len();
        for i in 0..nr {
            let k = node.keys[i];
            let next = node.keys.get(i + 1).copied();
            if node.leaf {
                let in_range = k >= lo && hi.is_none_or(|h| k < h);
                let ordered = self.last.is_none_or(|l| k > l) && next.is_none_or(|n| k < n);
                if in_range && ordered {
                    (self.f)(k, node.value(i));
                    self.last = Some(k);
                } else {
                    self.damage.bad_keys += 1;
                }
            } else {
                // Child `i` holds keys from key `i` up to key `i + 1`; a key that breaks
                // that order cannot bound anything, so the parent's bounds stay.
                let child_lo = if k >= lo && hi.is_none_or(|h| k < h) {
                    k
                } else {
                    lo
                };
                let child_hi = match next {
                    Some(n) if n > k && hi.is_none_or(|h| n <= h) => Some(n),
                    _ => hi,
                };
                self.visit(node.value_u64(i), child_lo, child_hi, depth + 1);
            }
        }
    }
}

/// What a salvaging walk reached and left out.
pub(crate) struct Walked {
    /// What was left out.
    pub damage: Damage,
    /// The nodes entered.
    pub nodes: HashSet<BlockNr>,
}

/// Walks the tree at `root` with `value_size`-byte leaf values, handing every entry it can
/// trust to `f` in key order; nodes in `exclude` (those of another tree, such as the top
/// level a damaged pointer leads back to) are skipped as damaged.
pub(crate) fn salvage_tree<B: BlockManager>(
    bm: &B,
    root: BlockNr,
    value_size: usize,
    exclude: &HashSet<BlockNr>,
    f: impl FnMut(u64, &[u8]),
) -> Walked {
    let mut w = Walk {
        bm,
        value_size,
        exclude,
        visited: HashSet::new(),
        last: None,
        damage: Damage::default(),
        f,
    };
    w.visit(root, 0, None, 0);
    Walked {
        damage: w.damage,
        nodes: w.visited,
    }
}
