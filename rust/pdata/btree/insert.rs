// SPDX-License-Identifier: GPL-2.0 OR MIT

//! Inserting into a btree: one pass from the root, splitting full nodes before entering them.

use super::super::block::{BlockManager, BlockNr, Kind};
use super::super::error::{corrupt, Error, Result};
use super::super::tm::TransactionManager;
use super::node::{Header, Node, MAX_VALUE_SIZE};
use super::{header, shadow_node, Values, MAX_DEPTH};

/// Inserts or overwrites `key` and returns the new root. An overwritten value's reference
/// is dropped unless it refers to the same thing as the new one.
pub fn insert<B: BlockManager, V: Values<B>>(
    tm: &mut TransactionManager<B>,
    vals: &mut V,
    root: BlockNr,
    key: u64,
    value: &[u8],
) -> Result<BlockNr> {
    insert_impl(tm, vals, root, key, value, true).map(|(r, _)| r)
}

/// [`insert`], also telling whether `key` was there already (its value overwritten).
pub fn insert_or_replace<B: BlockManager, V: Values<B>>(
    tm: &mut TransactionManager<B>,
    vals: &mut V,
    root: BlockNr,
    key: u64,
    value: &[u8],
) -> Result<(BlockNr, bool)> {
    insert_impl(tm, vals, root, key, value, true)
}

/// Sets the value of `key` without dropping a reference on the old value: the caller moved
/// that reference (a subtree root that was shadowed into a new block).
pub fn set_child<B: BlockManager, V: Values<B>>(
    tm: &mut TransactionManager<B>,
    vals: &mut V,
    root: BlockNr,
    key: u64,
    value: &[u8],
) -> Result<BlockNr> {
    insert_impl(tm, vals, root, key, value, false).map(|(r, _)| r)
}

/// Each node on the path is held once to read its header and once to change it (every
/// block access goes through the buffer cache's lookup and locks, the main cost of a
/// provision).
fn insert_impl<B: BlockManager, V: Values<B>>(
    tm: &mut TransactionManager<B>,
    vals: &mut V,
    root: BlockNr,
    key: u64,
    value: &[u8],
    release_old: bool,
) -> Result<(BlockNr, bool)> {
    if value.len() != V::SIZE || V::SIZE > MAX_VALUE_SIZE {
        return Err(Error::Invalid("btree value of the wrong size"));
    }
    let root = shadow_node(tm, vals, root)?;
    let mut h = header(tm, root)?;
    if h.is_full() {
        split_beneath(tm, root)?;
        h = header(tm, root)?;
    }
    let mut cur = root;
    for _ in 0..MAX_DEPTH {
        if h.leaf {
            if h.value_size != V::SIZE {
                return corrupt(cur, "btree leaf has the wrong value size");
            }
            let mut old = [0u8; MAX_VALUE_SIZE];
            let old = old.get_mut(..V::SIZE).unwrap_or(&mut []);
            let replaced = tm.write(cur, Kind::Node, |d| {
                let i = match Node::lower_bound(d, &h, key) {
                    Some(i) if Node::key(d, i) == key => {
                        Node::value_into(d, &h, i, old);
                        Node::set_value(d, &h, i, value);
                        return Ok(true);
                    }
                    Some(i) => i + 1,
                    None => 0,
                };
                let mut h = h;
                Node::insert_gap(d, &mut h, i);
                Node::set_key(d, i, key);
                Node::set_value(d, &h, i, value);
                Ok(false)
            })?;
            if replaced && release_old && !vals.same(old, value) {
                vals.dec(tm, old)?;
            }
            return Ok((root, replaced));
        }
        if h.nr == 0 {
            return corrupt(cur, "empty internal btree node");
        }
        let (i, child) = tm.write(cur, Kind::Node, |d| {
            let i = Node::lower_bound(d, &h, key).unwrap_or_else(|| {
                // The new key is the smallest: it becomes the lower bound of the first
                // child.
                Node::set_key(d, 0, key);
                0
            });
            Ok((i, Node::child(d, &h, i)))
        })?;
        let c = shadow_node(tm, vals, child)?;
        if c != child {
            tm.write(cur, Kind::Node, |d| {
                Node::set_child(d, &h, i, c);
                Ok(())
            })?;
        }
        let hc = header(tm, c)?;
        (cur, h) = if hc.is_full() {
            let (sibling, first) = split_child(tm, cur, i, c, key)?;
            let next = if key >= first { sibling } else { c };
            (next, header(tm, next)?)
        } else {
            (c, hc)
        };
    }
    Err(Error::TooDeep(root))
}

/// Fills new node `dst` with entries `from..from + n` of node `src` (header `h`); returns
/// the first key.
fn fill_new_node<B: BlockManager>(
    tm: &TransactionManager<B>,
    src: BlockNr,
    h: &Header,
    dst: BlockNr,
    from: usize,
    n: usize,
) -> Result<u64> {
    let bm = tm.bm();
    bm.read(src, Kind::Node, |sd| {
        bm.write(dst, Kind::Node, |d| {
            Node::init(d, h.leaf, h.value_size);
            let mut nh = Node::header(dst, d)?;
            Node::copy_entries(d, &nh, 0, sd, h, from, n);
            Node::set_nr(d, &mut nh, n);
            Ok(Node::key(d, 0))
        })
    })
}

/// Moves the entries of a full root into two new children, keeping the root's location.
fn split_beneath<B: BlockManager>(tm: &mut TransactionManager<B>, root: BlockNr) -> Result<()> {
    let h = header(tm, root)?;
    let left = tm.new_block(Kind::Node)?;
    let right = tm.new_block(Kind::Node)?;
    let nl = h.nr / 2;
    let keys = [
        fill_new_node(tm, root, &h, left, 0, nl)?,
        fill_new_node(tm, root, &h, right, nl, h.nr - nl)?,
    ];
    tm.write(root, Kind::Node, |d| {
        Node::init(d, false, 8);
        let mut nh = Node::header(root, d)?;
        Node::set_nr(d, &mut nh, 2);
        Node::set_key(d, 0, keys[0]);
        Node::set_child(d, &nh, 0, left);
        Node::set_key(d, 1, keys[1]);
        Node::set_child(d, &nh, 1, right);
        Ok(())
    })
}

/// Splits full child `c` (entry `i` of `parent`) and returns the new right sibling and its
/// first key. Appending past the last key leaves the left node two thirds full, so trees
/// filled in key order are not left half empty.
fn split_child<B: BlockManager>(
    tm: &mut TransactionManager<B>,
    parent: BlockNr,
    i: usize,
    c: BlockNr,
    key: u64,
) -> Result<(BlockNr, u64)> {
    let h = header(tm, c)?;
    let s = tm.new_block(Kind::Node)?;
    let bm = tm.bm();
    let appending = bm.read(c, Kind::Node, |d| {
        Ok(h.nr > 0 && key > Node::key(d, h.nr - 1))
    })?;
    let keep = if appending { h.nr - h.nr / 3 } else { h.nr / 2 };
    let moved = h.nr - keep;
    let first = fill_new_node(tm, c, &h, s, keep, moved)?;
    tm.write(c, Kind::Node, |d| {
        let mut h = h;
        Node::set_nr(d, &mut h, keep);
        Ok(())
    })?;
    tm.write(parent, Kind::Node, |d| {
        let mut ph = Node::header(parent, d)?;
        Node::insert_gap(d, &mut ph, i + 1);
        Node::set_key(d, i + 1, first);
        Node::set_child(d, &ph, i + 1, s);
        Ok(())
    })?;
    Ok((s, first))
}
