// SPDX-License-Identifier: GPL-2.0 OR MIT

//! Removing from a btree: one pass from the root, refilling a child from a sibling before
//! entering it when it is down to a third of its capacity.

use super::super::block::{BlockManager, BlockNr, Kind};
use super::super::error::{corrupt, Error, Result};
use super::super::tm::TransactionManager;
use super::node::{Node, MAX_VALUE_SIZE};
use super::{header, lookup, shadow_child, shadow_node, Values, MAX_DEPTH};

/// Removes `key`, dropping its value's reference; returns the new root and whether the
/// key was there (when it was not, nothing is shadowed).
pub fn remove<B: BlockManager, V: Values<B>>(
    tm: &mut TransactionManager<B>,
    vals: &mut V,
    root: BlockNr,
    key: u64,
) -> Result<(BlockNr, bool)> {
    let mut old = [0u8; MAX_VALUE_SIZE];
    let old = old
        .get_mut(..V::SIZE)
        .ok_or(Error::Invalid("btree value too large"))?;
    if !lookup(tm.bm(), root, key, old)? {
        return Ok((root, false));
    }
    let mut root = shadow_node(tm, vals, root)?;
    let mut cur = root;
    let mut done = false;
    for _ in 0..MAX_DEPTH {
        let h = header(tm, cur)?;
        if h.leaf {
            tm.write(cur, Kind::Node, |d| match Node::lower_bound(d, &h, key) {
                Some(i) if Node::key(d, i) == key => {
                    let mut h = h;
                    Node::delete_at(d, &mut h, i);
                    Ok(())
                }
                _ => corrupt(cur, "btree key vanished during removal"),
            })?;
            vals.dec(tm, old)?;
            done = true;
            break;
        }
        let mut i = tm
            .read(cur, Kind::Node, |d| Ok(Node::lower_bound(d, &h, key)))?
            .ok_or(Error::Corrupt {
                block: cur,
                what: "btree key vanished during removal",
            })?;
        let child = tm.read(cur, Kind::Node, |d| Ok(Node::child(d, &h, i)))?;
        let ch = header(tm, child)?;
        if ch.nr <= ch.max / 3 && h.nr > 1 {
            i = refill(tm, vals, cur, i, key)?;
        }
        cur = shadow_child(tm, vals, cur, i)?;
    }
    if !done {
        return Err(Error::TooDeep(root));
    }
    // An internal root left with one child gives way to it.
    for _ in 0..MAX_DEPTH {
        let h = header(tm, root)?;
        if h.leaf || h.nr != 1 {
            break;
        }
        let child = tm.read(root, Kind::Node, |d| Ok(Node::child(d, &h, 0)))?;
        tm.dec(root)?;
        root = child;
    }
    Ok((root, true))
}

/// Gives child `i` of `parent` more entries by merging it with a neighbour or sharing the
/// neighbour's entries evenly; returns the index of the child that now covers `key`.
fn refill<B: BlockManager, V: Values<B>>(
    tm: &mut TransactionManager<B>,
    vals: &mut V,
    parent: BlockNr,
    i: usize,
    key: u64,
) -> Result<usize> {
    let ph = header(tm, parent)?;
    let (l, r) = if i + 1 < ph.nr {
        (i, i + 1)
    } else {
        (i - 1, i)
    };
    let lb = shadow_child(tm, vals, parent, l)?;
    let rb = shadow_child(tm, vals, parent, r)?;
    let lh = header(tm, lb)?;
    let rh = header(tm, rb)?;
    if lh.leaf != rh.leaf || lh.value_size != rh.value_size || lh.max != rh.max {
        return corrupt(parent, "sibling btree nodes of different shapes");
    }
    let bm = tm.bm();
    if lh.nr + rh.nr <= lh.max {
        bm.read(rb, Kind::Node, |src| {
            bm.write(lb, Kind::Node, |d| {
                let mut h = lh;
                Node::copy_entries(d, &h, lh.nr, src, &rh, 0, rh.nr);
                Node::set_nr(d, &mut h, lh.nr + rh.nr);
                Ok(())
            })
        })?;
        tm.write(parent, Kind::Node, |d| {
            let mut ph = ph;
            Node::delete_at(d, &mut ph, r);
            Ok(())
        })?;
        // The entries moved to the left node together with the references they hold.
        tm.dec(rb)?;
        return Ok(l);
    }
    let total = lh.nr + rh.nr;
    let want_left = total / 2;
    if lh.nr > want_left {
        let n = lh.nr - want_left;
        bm.write(rb, Kind::Node, |d| {
            Node::shift_entries(d, &rh, 0, n, rh.nr);
            let mut h = rh;
            Node::set_nr(d, &mut h, rh.nr + n);
            Ok(())
        })?;
        bm.read(lb, Kind::Node, |src| {
            bm.write(rb, Kind::Node, |d| {
                Node::copy_entries(d, &rh, 0, src, &lh, want_left, n);
                Ok(())
            })
        })?;
        bm.write(lb, Kind::Node, |d| {
            let mut h = lh;
            Node::set_nr(d, &mut h, want_left);
            Ok(())
        })?;
    } else {
        let n = want_left - lh.nr;
        bm.read(rb, Kind::Node, |src| {
            bm.write(lb, Kind::Node, |d| {
                Node::copy_entries(d, &lh, lh.nr, src, &rh, 0, n);
                let mut h = lh;
                Node::set_nr(d, &mut h, want_left);
                Ok(())
            })
        })?;
        bm.write(rb, Kind::Node, |d| {
            Node::shift_entries(d, &rh, n, 0, rh.nr - n);
            let mut h = rh;
            Node::set_nr(d, &mut h, rh.nr - n);
            Ok(())
        })?;
    }
    let first = bm.read(rb, Kind::Node, |d| Ok(Node::key(d, 0)))?;
    tm.write(parent, Kind::Node, |d| {
        Node::set_key(d, r, first);
        Ok(())
    })?;
    Ok(if key >= first { r } else { l })
}
