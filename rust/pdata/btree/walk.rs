// SPDX-License-Identifier: GPL-2.0 OR MIT

//! Reading btrees: point lookup and in-order walks that check the structure on the way.

use super::super::block::{BlockManager, BlockNr, Kind};
use super::super::error::{corrupt, Error, Result};
use super::node::{Header, Node};
use super::MAX_DEPTH;

/// Whether a walk goes on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Visit {
    /// Visit the next entry.
    Continue,
    /// End the walk.
    Stop,
}

/// What a walk reports.
pub trait Visitor {
    /// Called for each node before its contents; `false` skips them (a shared subtree
    /// that was already visited).
    fn node(&mut self, _b: BlockNr, _h: &Header, _depth: usize) -> Result<bool> {
        Ok(true)
    }

    /// Called for each leaf entry in key order.
    fn entry(&mut self, key: u64, value: &[u8]) -> Result<Visit>;
}

impl<F: FnMut(u64, &[u8]) -> Result<Visit>> Visitor for F {
    fn entry(&mut self, key: u64, value: &[u8]) -> Result<Visit> {
        self(key, value)
    }
}

/// Looks `key` up in the tree at `root`; copies its value into `out` (which must be the
/// value size long) and returns whether it was found.
pub fn lookup<B: BlockManager>(bm: &B, root: BlockNr, key: u64, out: &mut [u8]) -> Result<bool> {
    let mut b = root;
    for _ in 0..MAX_DEPTH {
        let next = bm.read(b, Kind::Node, |d| {
            let h = Node::header(b, d)?;
            let i = match Node::lower_bound(d, &h, key) {
                Some(i) => i,
                None => return Ok(None),
            };
            if !h.leaf {
                return Ok(Some(Some(Node::child(d, &h, i))));
            }
            if Node::key(d, i) != key {
                return Ok(None);
            }
            if h.value_size != out.len() {
                return corrupt(b, "btree leaf has the wrong value size");
            }
            Node::value_into(d, &h, i, out);
            Ok(Some(None))
        })?;
        match next {
            None => return Ok(false),
            Some(None) => return Ok(true),
            Some(Some(child)) => b = child,
        }
    }
    Err(Error::TooDeep(root))
}

/// The first entry with a key not below `key`: its key, with the value copied into `out`
/// (which must be `value_size` long).
pub fn lookup_ge<B: BlockManager>(
    bm: &B,
    root: BlockNr,
    key: u64,
    out: &mut [u8],
) -> Result<Option<u64>> {
    let mut found = None;
    let size = out.len();
    walk(bm, root, size, key, &mut |k: u64, v: &[u8]| {
        if let (Some(dst), true) = (out.get_mut(..v.len()), v.len() == size) {
            dst.copy_from_slice(v);
        }
        found = Some(k);
        Ok(Visit::Stop)
    })?;
    Ok(found)
}

/// The highest key in the tree at `root`, if the tree has any entry.
pub fn highest_key<B: BlockManager>(bm: &B, root: BlockNr) -> Result<Option<u64>> {
    let mut b = root;
    for _ in 0..MAX_DEPTH {
        let next = bm.read(b, Kind::Node, |d| {
            let h = Node::header(b, d)?;
            let Some(last) = h.nr.checked_sub(1) else {
                return Ok(Err(None));
            };
            if h.leaf {
                Ok(Err(Some(Node::key(d, last))))
            } else {
                Ok(Ok(Node::child(d, &h, last)))
            }
        })?;
        match next {
            Ok(child) => b = child,
            Err(key) => return Ok(key),
        }
    }
    Err(Error::TooDeep(root))
}

#[derive(Clone, Copy, Default)]
struct Frame {
    block: BlockNr,
    next: usize,
    lo: u64,
    hi: Option<u64>,
}

/// Walks the entries with keys from `from` on, in order, checking on the way that keys are
/// sorted and within their parent's range, that leaves hold `value_size`-byte values and
/// that all leaves are at the same depth.
pub fn walk<B: BlockManager, V: Visitor>(
    bm: &B,
    root: BlockNr,
    value_size: usize,
    from: u64,
    v: &mut V,
) -> Result<()> {
    let mut stack = [Frame::default(); MAX_DEPTH];
    let mut leaf_depth: Option<usize> = None;
    let mut depth = 0usize;
    stack[0] = Frame {
        block: root,
        next: 0,
        lo: 0,
        hi: None,
    };
    // Whether the frame on top has not been looked at yet.
    let mut fresh = true;
    loop {
        let f = *stack.get(depth).ok_or(Error::TooDeep(root))?;
        let b = f.block;
        let h = bm.read(b, Kind::Node, |d| {
            let h = Node::header(b, d)?;
            if fresh {
                check_keys(b, d, &h, f.lo, f.hi)?;
            }
            Ok(h)
        })?;
        if fresh {
            fresh = false;
            if !v.node(b, &h, depth)? {
                if depth == 0 {
                    return Ok(());
                }
                depth -= 1;
                continue;
            }
            if h.leaf {
                match leaf_depth {
                    None => leaf_depth = Some(depth),
                    Some(ld) if ld != depth => {
                        return corrupt(b, "btree leaves at different depths")
                    }
                    Some(_) => {}
                }
                if h.value_size != value_size {
                    return corrupt(b, "btree leaf has the wrong value size");
                }
                let stop = bm.read(b, Kind::Node, |d| {
                    for i in 0..h.nr {
                        let k = Node::key(d, i);
                        if k < from {
                            continue;
                        }
                        if v.entry(k, Node::value(d, &h, i))? == Visit::Stop {
                            return Ok(true);
                        }
                    }
                    Ok(false)
                })?;
                if stop || depth == 0 {
                    return Ok(());
                }
                depth -= 1;
                continue;
            }
        }
        if h.leaf || f.next >= h.nr {
            if depth == 0 {
                return Ok(());
            }
            depth -= 1;
            continue;
        }
        let (child, lo, hi, skip) = bm.read(b, Kind::Node, |d| {
            let i = f.next;
            let hi = if i + 1 < h.nr {
                Some(Node::key(d, i + 1))
            } else {
                f.hi
            };
            let skip = hi.is_some_and(|hi| hi <= from);
            Ok((Node::child(d, &h, i), Node::key(d, i), hi, skip))
        })?;
        if let Some(top) = stack.get_mut(depth) {
            top.next += 1;
        }
        if skip {
            continue;
        }
        depth += 1;
        let slot = stack.get_mut(depth).ok_or(Error::TooDeep(root))?;
        *slot = Frame {
            block: child,
            next: 0,
            lo,
            hi,
        };
        fresh = true;
    }
}

fn check_keys(b: BlockNr, d: &[u8], h: &Header, lo: u64, hi: Option<u64>) -> Result<()> {
    let mut prev: Option<u64> = None;
    for i in 0..h.nr {
        let k = Node::key(d, i);
        if prev.is_some_and(|p| p >= k) {
            return corrupt(b, "btree keys out of order");
        }
        if k < lo || hi.is_some_and(|hi| k >= hi) {
            return corrupt(b, "btree key outside the range of its parent");
        }
        prev = Some(k);
    }
    Ok(())
}
