// SPDX-License-Identifier: GPL-2.0 OR MIT

//! An extent table read on the I/O path without a lock: runs of consecutive keys mapped to
//! consecutive values (snapshot exceptions: origin chunk → COW chunk; thin mappings: virtual
//! block → data block).
//!
//! A hash table of buckets published under RCU; keys hash by their 256-key group, so a
//! sequentially filled range grows one run instead of adding entries, and runs never cross a
//! group. Readers take no lock. The one writer changes a bucket in place where a reader can
//! only see the old or the new state (a run grows or shrinks at its end, a new run is
//! appended into spare room), and otherwise publishes a new bucket and frees the old one
//! after a grace period.
//!
//! A group filled in random order (exceptions of random writes, blocks provisioned by random
//! writes) holds up to 256 runs of one key each: a bucket keeps the runs it was published with in
//! key order (a binary search finds a key among them) and scans only the few appended since,
//! and is published again, sorted, once that tail is full.

use crate::dm::rcu::{RcuSlots, ReadGuard, Writer};
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use kernel::{alloc::Flags, prelude::*};

/// Keys of one group hash to one bucket; runs never cross a group.
const GROUP_SHIFT: u32 = 8;
/// Runs a new bucket has room for, at least (one more than its least room to append).
const MIN_ROOM: usize = 4;
/// Runs appended to a bucket (and scanned by lookups) before it is published again sorted.
const MAX_TAIL: usize = 16;

/// Keys `key..key + len` map to `val..val + len`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Run {
    /// First key.
    pub key: u64,
    /// Its value.
    pub val: u64,
    /// Number of keys (at least 1).
    pub len: u64,
}

impl Run {
    /// No keys (a blank entry, a run emptied at its end).
    const EMPTY: Run = Run {
        key: 0,
        val: 0,
        len: 0,
    };
}

/// Why a key could not be removed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RemoveError {
    /// No run covers the key.
    Missing,
    /// The key is inside a run, not at one of its ends.
    Middle(Run),
    /// Allocation failed.
    NoMem,
}

/// A run as stored: readers load its fields while the writer may grow `len`.
struct Entry {
    key: AtomicU64,
    val: AtomicU64,
    len: AtomicU64,
}

impl Entry {
    fn run(&self) -> Run {
        Run {
            key: self.key.load(Ordering::Relaxed),
            val: self.val.load(Ordering::Relaxed),
            len: self.len.load(Ordering::Acquire),
        }
    }
}

/// The runs of one bucket: `count` entries in use out of a fixed room, the first `sorted` in
/// key order (runs never overlap), the others appended since in any order.
struct Bucket {
    entries: KVec<Entry>,
    sorted: usize,
    count: AtomicUsize,
}

impl Bucket {
    /// A bucket holding `runs` (in key order) with room to append a tail of runs.
    fn new(runs: &[Run], flags: Flags) -> Result<Self> {
        let tail = runs.len().clamp(MIN_ROOM - 1, MAX_TAIL);
        let mut entries = KVec::with_capacity(runs.len() + tail, flags)?;
        for i in 0..runs.len() + tail {
            let r = runs.get(i).unwrap_or(&Run::EMPTY);
            entries.push(
                Entry {
                    key: AtomicU64::new(r.key),
                    val: AtomicU64::new(r.val),
                    len: AtomicU64::new(r.len),
                },
                flags,
            )?;
        }
        Ok(Bucket {
            entries,
            sorted: runs.len(),
            count: AtomicUsize::new(runs.len()),
        })
    }

    fn live(&self) -> impl Iterator<Item = &Entry> + '_ {
        self.entries.iter().take(self.count.load(Ordering::Acquire))
    }

    /// The published runs, in key order.
    fn sorted(&self) -> &[Entry] {
        self.entries.get(..self.sorted).unwrap_or(&[])
    }

    /// The runs appended since, in any order.
    fn appended(&self) -> &[Entry] {
        let count = self.count.load(Ordering::Acquire);
        self.entries.get(self.sorted..count).unwrap_or(&[])
    }

    /// The run that `pred` holds for, and its entry: among the sorted runs only the live one
    /// with the greatest first key below `below` can be it (runs never overlap; runs emptied
    /// at their end keep their place, and a run before one may since have grown past its
    /// key, so they are skipped), else one of the appended runs.
    fn find(&self, below: u64, pred: impl Fn(&Run) -> bool) -> Option<(&Entry, Run)> {
        let sorted = self.sorted();
        let i = sorted.partition_point(|e| e.key.load(Ordering::Relaxed) < below);
        let candidate = sorted
            .get(..i)?
            .iter()
            .rev()
            .find(|e| e.len.load(Ordering::Acquire) > 0)
            .map(|e| (e, e.run()));
        if let Some(hit) = candidate.filter(|(_, r)| pred(r)) {
            return Some(hit);
        }
        self.appended()
            .iter()
            .map(|e| (e, e.run()))
            .find(|(_, r)| pred(r))
    }

    /// The run covering `key`, and its entry.
    fn covering(&self, key: u64) -> Option<(&Entry, Run)> {
        self.find(key.saturating_add(1), |r| {
            key >= r.key && key - r.key < r.len
        })
    }

    fn lookup(&self, key: u64) -> Option<u64> {
        self.covering(key).map(|(_, r)| r.val + (key - r.key))
    }

    /// The live run ending just before `key`, and its entry.
    fn ending_at(&self, key: u64) -> Option<(&Entry, Run)> {
        self.find(key, |r| r.len > 0 && r.key + r.len == key)
    }
}

/// The extent table.
pub struct ExtentTable {
    buckets: RcuSlots<Bucket>,
    mask: u64,
    /// Room (in runs) of every bucket, for memory bounds.
    room: AtomicUsize,
}

/// The writer of an [`ExtentTable`].
pub struct ExtentWriter<'a> {
    w: Writer<'a, Bucket>,
    mask: u64,
    room: &'a AtomicUsize,
}

fn bucket_of(mask: u64, key: u64) -> usize {
    ((key >> GROUP_SHIFT) & mask) as usize
}

fn same_group(a: u64, b: u64) -> bool {
    a >> GROUP_SHIFT == b >> GROUP_SHIFT
}

impl ExtentTable {
    /// A table of `buckets` buckets (clamped to 64..=2^17, rounded down to a power of two).
    pub fn new(buckets: u64) -> Result<Self> {
        let n = buckets.clamp(64, 1 << 17);
        let n = 1u64 << (63 - n.leading_zeros());
        Ok(ExtentTable {
            buckets: RcuSlots::new(n as usize, GFP_KERNEL)?,
            mask: n - 1,
            room: AtomicUsize::new(0),
        })
    }

    /// The value of `key`, if a run covers it.
    pub fn lookup(&self, key: u64, g: &ReadGuard) -> Option<u64> {
        self.buckets.get(bucket_of(self.mask, key), g)?.lookup(key)
    }

    /// The value of `key`, looked up in a read-side section of its own (which ends before
    /// this returns, so the caller may sleep or submit I/O afterwards).
    pub fn find(&self, key: u64) -> Option<u64> {
        let g = crate::dm::rcu::read_lock();
        self.lookup(key, &g)
    }

    /// Runs the buckets have room for.
    pub fn room(&self) -> usize {
        self.room.load(Ordering::Relaxed)
    }

    /// Becomes the table's writer (`EBUSY` if there is one).
    pub fn writer(&self) -> Result<ExtentWriter<'_>> {
        Ok(ExtentWriter {
            w: self.buckets.writer()?,
            mask: self.mask,
            room: &self.room,
        })
    }
}

impl ExtentWriter<'_> {
    fn bucket(&self, b: usize) -> Option<&Bucket> {
        self.w.get(b)
    }

    /// The value of `key`, as the writer sees it.
    pub fn lookup(&self, key: u64) -> Option<u64> {
        self.bucket(bucket_of(self.mask, key))?.lookup(key)
    }

    /// Publishes a new bucket `b` holding `runs` (in key order; none: empty).
    fn publish(&mut self, b: usize, runs: &[Run], flags: Flags) -> Result {
        let old = self.bucket(b).map_or(0, |k| k.entries.len());
        let next = if runs.is_empty() {
            None
        } else {
            Some(Bucket::new(runs, flags)?)
        };
        let new = next.as_ref().map_or(0, |k| k.entries.len());
        self.w.replace(b, next, flags)?;
        self.room.fetch_add(new, Ordering::Relaxed);
        self.room.fetch_sub(old, Ordering::Relaxed);
        Ok(())
    }

    /// The live runs of bucket `b` and `extra`, in key order, in a new list: the bucket's
    /// tail (and `extra`) sorted apart, then merged with its sorted runs.
    fn runs_with(&self, b: usize, extra: Option<Run>, flags: Flags) -> Result<KVec<Run>> {
        let mut tail = [Run::EMPTY; MAX_TAIL + 1];
        let mut t = 0;
        let (sorted, appended) = self
            .bucket(b)
            .map_or((&[][..], &[][..]), |k| (k.sorted(), k.appended()));
        for r in Iterator::chain(appended.iter().map(Entry::run), extra) {
            if r.len == 0 {
                continue;
            }
            // A bucket's tail has room for at most MAX_TAIL runs.
            let slot = tail.get_mut(t).ok_or(EINVAL)?;
            *slot = r;
            t += 1;
            // Insertion sort: at most MAX_TAIL + 1 runs.
            let mut j = t - 1;
            while j > 0 && tail[j - 1].key > tail[j].key {
                tail.swap(j - 1, j);
                j -= 1;
            }
        }
        let mut v = KVec::with_capacity(sorted.len() + t, flags)?;
        let mut rest = tail.iter().take(t).peekable();
        for r in sorted.iter().map(Entry::run).filter(|r| r.len > 0) {
            while let Some(x) = rest.next_if(|x| x.key < r.key) {
                v.push(*x, flags)?;
            }
            v.push(r, flags)?;
        }
        for x in rest {
            v.push(*x, flags)?;
        }
        Ok(v)
    }

    /// Maps `key` to `val`, growing a run it extends at its end, else adding a run.
    pub fn insert(&mut self, key: u64, val: u64, flags: Flags) -> Result {
        let b = bucket_of(self.mask, key);
        if let Some(k) = self.bucket(b) {
            if let Some((e, r)) = k.ending_at(key) {
                if r.val + r.len == val && same_group(r.key, key) {
                    e.len.store(r.len + 1, Ordering::Release);
                    return Ok(());
                }
            }
            let n = k.count.load(Ordering::Relaxed);
            if let Some(e) = k.entries.get(n) {
                e.key.store(key, Ordering::Relaxed);
                e.val.store(val, Ordering::Relaxed);
                e.len.store(1, Ordering::Relaxed);
                k.count.store(n + 1, Ordering::Release);
                return Ok(());
            }
        }
        let runs = self.runs_with(b, Some(Run { key, val, len: 1 }), flags)?;
        self.publish(b, &runs, flags)
    }

    /// Removes `key`, which must be the first or last key of its run.
    pub fn remove(&mut self, key: u64, flags: Flags) -> Result<(), RemoveError> {
        let b = bucket_of(self.mask, key);
        let k = self.bucket(b).ok_or(RemoveError::Missing)?;
        let (e, r) = k.covering(key).ok_or(RemoveError::Missing)?;
        if key == r.key + r.len - 1 {
            // Shrinking at the end: a reader sees the run with or without the key.
            e.len.store(r.len - 1, Ordering::Release);
            return Ok(());
        }
        if key != r.key {
            return Err(RemoveError::Middle(r));
        }
        self.remove_range(key, 1, flags)
            .map_err(|_| RemoveError::NoMem)
    }

    /// Removes every key in `first..first + n` (splitting runs).
    pub fn remove_range(&mut self, first: u64, n: u64, flags: Flags) -> Result {
        let end = first.saturating_add(n);
        let mut key = first;
        while key < end {
            // One group (one bucket) at a time.
            let group_end = ((key >> GROUP_SHIFT) + 1) << GROUP_SHIFT;
            let stop = end.min(group_end);
            let b = bucket_of(self.mask, key);
            let hit = self.bucket(b).is_some_and(|k| {
                k.live().any(|e| {
                    let r = e.run();
                    r.len > 0 && r.key < stop && key < r.key + r.len
                })
            });
            if hit {
                let old = self.runs_with(b, None, flags)?;
                let mut runs = KVec::with_capacity(old.len() + 2, flags)?;
                for r in old.iter() {
                    let r_end = r.key + r.len;
                    if r_end <= key || r.key >= stop {
                        runs.push(*r, flags)?;
                        continue;
                    }
                    if r.key < key {
                        runs.push(
                            Run {
                                key: r.key,
                                val: r.val,
                                len: key - r.key,
                            },
                            flags,
                        )?;
                    }
                    if r_end > stop {
                        runs.push(
                            Run {
                                key: stop,
                                val: r.val + (stop - r.key),
                                len: r_end - stop,
                            },
                            flags,
                        )?;
                    }
                }
                self.publish(b, &runs, flags)?;
            }
            key = stop;
        }
        Ok(())
    }

    /// Empties the table.
    pub fn clear(&mut self, flags: Flags) -> Result {
        for b in 0..=self.mask as usize {
            if self.bucket(b).is_some() {
                self.publish(b, &[], flags)?;
            }
        }
        Ok(())
    }
}
