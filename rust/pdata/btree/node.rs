// SPDX-License-Identifier: GPL-2.0 OR MIT

//! The btree node layout: a 32-byte header, then `max_entries` keys, then `max_entries`
//! values.
//!
//! ```text
//! 0  csum   4 flags (1 internal, 2 leaf)   8 blocknr   16 nr_entries   20 max_entries
//! 24 value_size   28 padding   32 keys[max_entries]   32 + 8 * max_entries values[]
//! ```
//!
//! Internal nodes hold 8-byte child block numbers; key `i` is no greater than any key under
//! child `i`. `max_entries` is the largest multiple of three that fits, as `dm-btree`
//! computes it.

use super::super::block::{BlockNr, BLOCK_SIZE};
use super::super::bytes::{copy, get_u32, get_u64, move_within, put_u32, put_u64};
use super::super::error::{corrupt, Result};

const INTERNAL: u32 = 1;
const LEAF: u32 = 2;
const HEADER: usize = 32;

/// Largest value this implementation handles (device details are 24 bytes).
pub const MAX_VALUE_SIZE: usize = 64;

/// The capacity of a node holding `value_size`-byte values.
pub const fn max_entries(value_size: usize) -> usize {
    ((BLOCK_SIZE - HEADER) / (8 + value_size)) / 3 * 3
}

/// A validated node header.
#[derive(Clone, Copy, Debug)]
pub struct Header {
    /// Whether the node is a leaf.
    pub leaf: bool,
    /// Entries in use.
    pub nr: usize,
    /// Capacity.
    pub max: usize,
    /// Size of each value.
    pub value_size: usize,
}

impl Header {
    fn value_offset(&self, i: usize) -> usize {
        HEADER + 8 * self.max + self.value_size * i
    }

    /// Whether no entry can be added.
    pub fn is_full(&self) -> bool {
        self.nr >= self.max
    }
}

/// Operations on a node's bytes.
pub struct Node;

impl Node {
    /// Formats `d` as an empty node.
    pub fn init(d: &mut [u8], leaf: bool, value_size: usize) {
        d.fill(0);
        put_u32(d, 4, if leaf { LEAF } else { INTERNAL });
        put_u32(d, 16, 0);
        put_u32(d, 20, max_entries(value_size) as u32);
        put_u32(d, 24, value_size as u32);
    }

    /// Reads and validates the header of node `b`.
    pub fn header(b: BlockNr, d: &[u8]) -> Result<Header> {
        let flags = get_u32(d, 4);
        let nr = get_u32(d, 16) as usize;
        let max = get_u32(d, 20) as usize;
        let value_size = get_u32(d, 24) as usize;
        let leaf = match flags {
            INTERNAL => false,
            LEAF => true,
            _ => return corrupt(b, "btree node is neither internal nor leaf"),
        };
        if value_size == 0 || value_size > MAX_VALUE_SIZE {
            return corrupt(b, "btree node has an unsupported value size");
        }
        if HEADER + (8 + value_size) * max > d.len() {
            return corrupt(b, "btree node max_entries too large");
        }
        if nr > max {
            return corrupt(b, "btree node has more entries than it can hold");
        }
        if !leaf && value_size != 8 {
            return corrupt(b, "internal btree node with a value size other than 8");
        }
        Ok(Header {
            leaf,
            nr,
            max,
            value_size,
        })
    }

    /// Key `i`.
    pub fn key(d: &[u8], i: usize) -> u64 {
        get_u64(d, HEADER + 8 * i)
    }

    /// Sets key `i`.
    pub fn set_key(d: &mut [u8], i: usize, k: u64) {
        put_u64(d, HEADER + 8 * i, k)
    }

    /// The child block of internal entry `i`.
    pub fn child(d: &[u8], h: &Header, i: usize) -> BlockNr {
        get_u64(d, h.value_offset(i))
    }

    /// Sets the child block of internal entry `i`.
    pub fn set_child(d: &mut [u8], h: &Header, i: usize, b: BlockNr) {
        put_u64(d, h.value_offset(i), b)
    }

    /// The bytes of value `i`.
    pub fn value<'a>(d: &'a [u8], h: &Header, i: usize) -> &'a [u8] {
        let off = h.value_offset(i);
        d.get(off..off + h.value_size).unwrap_or(&[])
    }

    /// Copies value `i` into `out` (which must be `value_size` long).
    pub fn value_into(d: &[u8], h: &Header, i: usize, out: &mut [u8]) {
        copy(out, 0, d, h.value_offset(i), h.value_size);
    }

    /// Sets value `i`.
    pub fn set_value(d: &mut [u8], h: &Header, i: usize, v: &[u8]) {
        copy(d, h.value_offset(i), v, 0, h.value_size.min(v.len()));
    }

    /// Sets the entry count.
    pub fn set_nr(d: &mut [u8], h: &mut Header, nr: usize) {
        h.nr = nr;
        put_u32(d, 16, nr as u32);
    }

    /// Index of the last key not greater than `key`, if any (binary search).
    pub fn lower_bound(d: &[u8], h: &Header, key: u64) -> Option<usize> {
        let (mut lo, mut hi) = (0usize, h.nr);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if Self::key(d, mid) <= key {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo.checked_sub(1)
    }

    /// Opens a gap at `i` (entries `i..nr` move up one); the caller fills it.
    pub fn insert_gap(d: &mut [u8], h: &mut Header, i: usize) {
        let n = h.nr.saturating_sub(i);
        Self::shift_entries(d, h, i, i + 1, n);
        Self::set_nr(d, h, h.nr + 1);
    }

    /// Deletes entry `i`.
    pub fn delete_at(d: &mut [u8], h: &mut Header, i: usize) {
        let n = h.nr.saturating_sub(i + 1);
        Self::shift_entries(d, h, i + 1, i, n);
        Self::set_nr(d, h, h.nr.saturating_sub(1));
    }

    /// Copies entries `from..from + n` of `src` to `to..` of `dst` (same value size).
    pub fn copy_entries(
        dst: &mut [u8],
        dh: &Header,
        to: usize,
        src: &[u8],
        sh: &Header,
        from: usize,
        n: usize,
    ) {
        copy(dst, HEADER + 8 * to, src, HEADER + 8 * from, 8 * n);
        copy(
            dst,
            dh.value_offset(to),
            src,
            sh.value_offset(from),
            sh.value_size * n,
        );
    }

    /// Moves entries `from..from + n` of node `d` to `to..` (ranges may overlap).
    pub fn shift_entries(d: &mut [u8], h: &Header, from: usize, to: usize, n: usize) {
        move_within(d, HEADER + 8 * from, HEADER + 8 * to, 8 * n);
        move_within(
            d,
            h.value_offset(from),
            h.value_offset(to),
            h.value_size * n,
        );
    }
}
