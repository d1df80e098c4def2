// SPDX-License-Identifier: GPL-2.0 OR MIT

//! Little-endian field access in byte slices that never panics.
//!
//! Callers validate layouts before computing offsets, so the out-of-range fallbacks (reads
//! give zero, writes are dropped) are never taken on valid structures; they exist so that a
//! mistake cannot become a kernel panic.

pub(crate) fn get_u32(b: &[u8], off: usize) -> u32 {
    let mut a = [0u8; 4];
    if let Some(s) = off.checked_add(4).and_then(|end| b.get(off..end)) {
        a.copy_from_slice(s);
    }
    u32::from_le_bytes(a)
}

pub(crate) fn get_u64(b: &[u8], off: usize) -> u64 {
    let mut a = [0u8; 8];
    if let Some(s) = off.checked_add(8).and_then(|end| b.get(off..end)) {
        a.copy_from_slice(s);
    }
    u64::from_le_bytes(a)
}

pub(crate) fn put_u32(b: &mut [u8], off: usize, v: u32) {
    if let Some(s) = off.checked_add(4).and_then(|end| b.get_mut(off..end)) {
        s.copy_from_slice(&v.to_le_bytes());
    }
}

pub(crate) fn put_u64(b: &mut [u8], off: usize, v: u64) {
    if let Some(s) = off.checked_add(8).and_then(|end| b.get_mut(off..end)) {
        s.copy_from_slice(&v.to_le_bytes());
    }
}

/// Copies `len` bytes inside `b` from `src` to `dst` (ranges may overlap).
pub(crate) fn move_within(b: &mut [u8], src: usize, dst: usize, len: usize) {
    let fits = |o: usize| o.checked_add(len).is_some_and(|end| end <= b.len());
    if fits(src) && fits(dst) {
        b.copy_within(src..src + len, dst);
    }
}

/// Copies `len` bytes from `src[so..]` to `dst[do_..]`.
pub(crate) fn copy(dst: &mut [u8], do_: usize, src: &[u8], so: usize, len: usize) {
    let d = do_.checked_add(len).and_then(|end| dst.get_mut(do_..end));
    let s = so.checked_add(len).and_then(|end| src.get(so..end));
    if let (Some(d), Some(s)) = (d, s) {
        d.copy_from_slice(s);
    }
}
