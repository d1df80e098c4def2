// SPDX-License-Identifier: GPL-2.0 OR MIT

//! The completed exceptions of a snapshot (origin chunk → COW chunk), read on the I/O path
//! without a lock.
//!
//! A hash table of buckets published under RCU: a bucket is an immutable list of runs of
//! consecutive chunks, replaced as a whole by the one writer (the origin's worker, or the
//! constructor while it loads the store). Chunks hash by their 256-chunk group, so a COW of a
//! sequential range grows one run instead of adding entries (dm-snap's consecutive chunks).

use crate::dm::rcu::{RcuSlots, ReadGuard, Writer};
use kernel::{alloc::Flags, prelude::*};

/// Chunks of one group hash to one bucket; runs never cross a group.
const GROUP_SHIFT: u32 = 8;
/// At most 2^17 buckets (1 MiB of slots), as dm-snap caps its table at 2 MiB.
const MAX_BUCKETS: u64 = 1 << 17;
const MIN_BUCKETS: u64 = 64;

/// Chunks `old..old + len` of the origin are stored at `new..new + len` of the COW device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Run {
    /// First origin chunk.
    pub old: u64,
    /// Its COW chunk.
    pub new: u64,
    /// Number of chunks (at least 1).
    pub len: u64,
}

impl Run {
    fn contains(&self, chunk: u64) -> bool {
        chunk >= self.old && chunk - self.old < self.len
    }
}

/// Why an exception could not be removed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RemoveError {
    /// No exception covers the chunk.
    Missing,
    /// The chunk is inside a run, not at one of its ends (merges remove from the ends).
    Middle(Run),
    /// Allocation failed.
    NoMem,
}

/// The exception table of one snapshot.
pub struct ExceptionTable {
    buckets: RcuSlots<KVec<Run>>,
    mask: u64,
}

/// The writer of an [`ExceptionTable`].
pub struct TableWriter<'a> {
    w: Writer<'a, KVec<Run>>,
    mask: u64,
}

fn bucket_of(mask: u64, chunk: u64) -> usize {
    ((chunk >> GROUP_SHIFT) & mask) as usize
}

fn same_group(a: u64, b: u64) -> bool {
    a >> GROUP_SHIFT == b >> GROUP_SHIFT
}

impl ExceptionTable {
    /// A table sized for a COW device of `cow_chunks` chunks (as dm-snap sizes its table).
    pub fn new(cow_chunks: u64) -> Result<Self> {
        let n = cow_chunks.clamp(MIN_BUCKETS, MAX_BUCKETS);
        // Round down to a power of two.
        let n = 1u64 << (63 - n.leading_zeros());
        Ok(ExceptionTable {
            buckets: RcuSlots::new(n as usize, GFP_KERNEL)?,
            mask: n - 1,
        })
    }

    /// The COW chunk holding origin chunk `chunk`, if it has an exception.
    pub fn lookup(&self, chunk: u64, g: &ReadGuard) -> Option<u64> {
        let runs = self.buckets.get(bucket_of(self.mask, chunk), g)?;
        runs.iter()
            .find(|r| r.contains(chunk))
            .map(|r| r.new + (chunk - r.old))
    }

    /// The COW chunk of `chunk`, looked up in a read-side section of its own (which ends
    /// before this returns, so the caller may sleep or submit I/O afterwards).
    pub fn find(&self, chunk: u64) -> Option<u64> {
        let g = crate::dm::rcu::read_lock();
        self.lookup(chunk, &g)
    }

    /// Becomes the table's writer (`EBUSY` if there is one).
    pub fn writer(&self) -> Result<TableWriter<'_>> {
        Ok(TableWriter {
            w: self.buckets.writer()?,
            mask: self.mask,
        })
    }
}

impl TableWriter<'_> {
    fn runs(&self, b: usize) -> &[Run] {
        self.w.get(b).map(|v| v.as_slice()).unwrap_or(&[])
    }

    /// The COW chunk of `chunk`, as the writer sees it.
    pub fn lookup(&self, chunk: u64) -> Option<u64> {
        self.runs(bucket_of(self.mask, chunk))
            .iter()
            .find(|r| r.contains(chunk))
            .map(|r| r.new + (chunk - r.old))
    }

    /// Publishes the exception `old → new`, joining a run it extends at either end.
    pub fn insert(&mut self, old: u64, new: u64, flags: Flags) -> Result {
        let b = bucket_of(self.mask, old);
        let cur = self.runs(b);
        let mut next = KVec::with_capacity(cur.len() + 1, flags)?;
        let mut placed = false;
        for r in cur {
            let mut r = *r;
            if !placed && same_group(r.old, old) {
                if r.old + r.len == old && r.new + r.len == new {
                    r.len += 1;
                    placed = true;
                } else if old + 1 == r.old && new + 1 == r.new {
                    r.old = old;
                    r.new = new;
                    r.len += 1;
                    placed = true;
                }
            }
            if !placed && old < r.old {
                next.push(Run { old, new, len: 1 }, flags)?;
                placed = true;
            }
            next.push(r, flags)?;
        }
        if !placed {
            next.push(Run { old, new, len: 1 }, flags)?;
        }
        self.w.replace(b, Some(next), flags)
    }

    /// Removes the exception of `old`, which must be the first or last chunk of its run.
    pub fn remove(&mut self, old: u64, flags: Flags) -> Result<(), RemoveError> {
        let b = bucket_of(self.mask, old);
        let cur = self.runs(b);
        let i = cur
            .iter()
            .position(|r| r.contains(old))
            .ok_or(RemoveError::Missing)?;
        let r = *cur.get(i).ok_or(RemoveError::Missing)?;
        if r.len > 1 && old != r.old && old != r.old + r.len - 1 {
            return Err(RemoveError::Middle(r));
        }
        let mut next = KVec::with_capacity(cur.len(), flags).map_err(|_| RemoveError::NoMem)?;
        for (j, x) in cur.iter().enumerate() {
            let mut x = *x;
            if j == i {
                if x.len == 1 {
                    continue;
                }
                if old == x.old {
                    x.old += 1;
                    x.new += 1;
                }
                x.len -= 1;
            }
            next.push(x, flags).map_err(|_| RemoveError::NoMem)?;
        }
        let next = if next.is_empty() { None } else { Some(next) };
        self.w
            .replace(b, next, flags)
            .map_err(|_| RemoveError::NoMem)
    }
}
