// SPDX-License-Identifier: GPL-2.0 OR MIT

//! Copy-on-write btrees with the node layout of `dm-btree`.
//!
//! A tree maps 64-bit keys to fixed-size values. Every change shadows the path from the root
//! to the leaf through the [`TransactionManager`], so the last committed tree stays intact
//! until the superblock moves. Nodes are split before they are descended into when full and
//! refilled from a sibling before they are descended into when at a third of capacity, so
//! every node but the root stays between a third and all of its capacity, as the kernel and
//! `thin_check` expect. Values that refer to other blocks (data blocks, subtrees) have their
//! reference counts kept by a [`Values`] implementation.

mod insert;
pub mod node;
mod remove;
mod walk;

pub use insert::{insert, insert_or_replace, set_child};
pub use remove::remove;
pub use walk::{highest_key, lookup, lookup_ge, walk, Visit, Visitor};

use super::block::{BlockManager, BlockNr, Kind};
use super::error::{Error, Result};
use super::tm::TransactionManager;
use node::Node;

/// Deepest tree accepted: a full tree of depth 16 with the smallest fan-out the kernel allows
/// holds more keys than a 64-bit key space.
pub const MAX_DEPTH: usize = 16;

/// How the values of a tree hold references to other blocks.
pub trait Values<B: BlockManager> {
    /// Size of one value in bytes.
    const SIZE: usize;

    /// Takes one more reference on whatever `value` refers to (a shared leaf was copied).
    fn inc(&mut self, tm: &mut TransactionManager<B>, value: &[u8]) -> Result<()>;

    /// Drops the reference `value` held (the entry was removed or overwritten).
    fn dec(&mut self, tm: &mut TransactionManager<B>, value: &[u8]) -> Result<()>;

    /// Whether `a` and `b` refer to the same thing (overwriting one with the other keeps
    /// the reference).
    fn same(&self, a: &[u8], b: &[u8]) -> bool {
        a == b
    }
}

/// Values that refer to nothing: index entries, reference counts, device details.
pub struct Plain<const N: usize>;

impl<B: BlockManager, const N: usize> Values<B> for Plain<N> {
    const SIZE: usize = N;

    fn inc(&mut self, _tm: &mut TransactionManager<B>, _value: &[u8]) -> Result<()> {
        Ok(())
    }

    fn dec(&mut self, _tm: &mut TransactionManager<B>, _value: &[u8]) -> Result<()> {
        Ok(())
    }
}

/// Values that are roots of other trees whose blocks are simply shared (one level of a
/// nested tree where the caller deletes subtrees itself).
pub struct BlockRefs;

impl<B: BlockManager> Values<B> for BlockRefs {
    const SIZE: usize = 8;

    fn inc(&mut self, tm: &mut TransactionManager<B>, value: &[u8]) -> Result<()> {
        tm.inc(super::bytes::get_u64(value, 0))
    }

    fn dec(&mut self, tm: &mut TransactionManager<B>, value: &[u8]) -> Result<()> {
        tm.dec(super::bytes::get_u64(value, 0))
    }
}

/// Creates an empty tree (one empty leaf) and returns its root.
pub fn empty<B: BlockManager>(
    tm: &mut TransactionManager<B>,
    value_size: usize,
) -> Result<BlockNr> {
    let b = tm.new_block(Kind::Node)?;
    tm.write(b, Kind::Node, |d| {
        Node::init(d, true, value_size);
        Ok(())
    })?;
    Ok(b)
}

/// Shadows `b` for writing; when the old block was shared, every child or value it refers
/// to gains a reference because both copies now refer to it.
pub(crate) fn shadow_node<B: BlockManager, V: Values<B>>(
    tm: &mut TransactionManager<B>,
    vals: &mut V,
    b: BlockNr,
) -> Result<BlockNr> {
    let (nb, shared) = tm.shadow(b, Kind::Node)?;
    if shared {
        inc_children(tm, vals, nb)?;
    }
    Ok(nb)
}

/// The validated header of node `b`.
pub(crate) fn header<B: BlockManager>(
    tm: &TransactionManager<B>,
    b: BlockNr,
) -> Result<node::Header> {
    tm.read(b, Kind::Node, |d| Node::header(b, d))
}

/// Shadows child `i` of internal node `parent` (already writable) and points the parent at
/// the copy; returns the child's writable block.
pub(crate) fn shadow_child<B: BlockManager, V: Values<B>>(
    tm: &mut TransactionManager<B>,
    vals: &mut V,
    parent: BlockNr,
    i: usize,
) -> Result<BlockNr> {
    let h = header(tm, parent)?;
    let child = tm.read(parent, Kind::Node, |d| Ok(Node::child(d, &h, i)))?;
    let c = shadow_node(tm, vals, child)?;
    if c != child {
        tm.write(parent, Kind::Node, |d| {
            Node::set_child(d, &h, i, c);
            Ok(())
        })?;
    }
    Ok(c)
}

fn inc_children<B: BlockManager, V: Values<B>>(
    tm: &mut TransactionManager<B>,
    vals: &mut V,
    b: BlockNr,
) -> Result<()> {
    let h = tm.read(b, Kind::Node, |d| Node::header(b, d))?;
    for i in 0..h.nr {
        if h.leaf {
            let mut v = [0u8; node::MAX_VALUE_SIZE];
            let v = v.get_mut(..h.value_size).unwrap_or(&mut []);
            tm.read(b, Kind::Node, |d| {
                Node::value_into(d, &h, i, v);
                Ok(())
            })?;
            vals.inc(tm, v)?;
        } else {
            let child = tm.read(b, Kind::Node, |d| Ok(Node::child(d, &h, i)))?;
            tm.inc(child)?;
        }
    }
    Ok(())
}

/// Drops the reference held on the tree at `root`, freeing every node (and dropping every
/// value's reference) no longer shared with another tree.
pub fn del<B: BlockManager, V: Values<B>>(
    tm: &mut TransactionManager<B>,
    vals: &mut V,
    root: BlockNr,
) -> Result<()> {
    // Each level remembers the node and the next child to visit.
    let mut stack = [(0u64, 0usize); MAX_DEPTH];
    if tm.count(root)? > 1 {
        return tm.dec(root);
    }
    stack[0] = (root, 0);
    let mut depth = 1;
    while depth > 0 {
        let (b, i) = stack.get(depth - 1).copied().ok_or(Error::TooDeep(root))?;
        let h = tm.read(b, Kind::Node, |d| Node::header(b, d))?;
        if h.leaf {
            if h.value_size != V::SIZE {
                return Err(Error::Corrupt {
                    block: b,
                    what: "btree leaf has the wrong value size",
                });
            }
            for j in 0..h.nr {
                let mut v = [0u8; node::MAX_VALUE_SIZE];
                let v = v.get_mut(..h.value_size).unwrap_or(&mut []);
                tm.read(b, Kind::Node, |d| {
                    Node::value_into(d, &h, j, v);
                    Ok(())
                })?;
                vals.dec(tm, v)?;
            }
            tm.dec(b)?;
            depth -= 1;
        } else if i < h.nr {
            let child = tm.read(b, Kind::Node, |d| Ok(Node::child(d, &h, i)))?;
            if let Some(top) = stack.get_mut(depth - 1) {
                top.1 = i + 1;
            }
            if tm.count(child)? > 1 {
                tm.dec(child)?;
            } else {
                let slot = stack.get_mut(depth).ok_or(Error::TooDeep(root))?;
                *slot = (child, 0);
                depth += 1;
            }
        } else {
            tm.dec(b)?;
            depth -= 1;
        }
    }
    Ok(())
}
