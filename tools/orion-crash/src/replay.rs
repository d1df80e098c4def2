// SPDX-License-Identifier: GPL-2.0 OR MIT

//! Replays a range of a dm-log-writes log onto a device: the device is left as a power cut
//! right after the last entry replayed would have left the logged one (given it started as
//! the logged device did).
//!
//! Writes are written where they went. Discards are written as zeroes by default: what a
//! discarded range reads is up to the device, and the ramdisks the tests log on (brd) drop
//! the pages, which then read zeroes; zeroing also catches a target that still maps a block
//! it discarded. `Discard::Skip` leaves the old data instead (the C replay-log's default).
//! Flushes and marks write nothing; the device is flushed once at the end.
//!
//! A walk through the log replays each range once: `from` the entry after the last one
//! replayed. With an [`Index`] file the replay starts there without reading the headers
//! before it.

use crate::dev::{AlignedBuf, Device};
use crate::error::Result;
use crate::invalid;
use crate::log::{Entry, Flags, Index, Log};
use std::path::PathBuf;

/// How discards are replayed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Discard {
    /// Written as zeroes.
    Zero,
    /// Left out.
    Skip,
}

/// The last entry to replay.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Until {
    /// This entry (counted from 0).
    Entry(u64),
    /// The first mark of this name at or after the first entry replayed.
    Mark(String),
}

/// What to replay.
#[derive(Clone, Debug)]
pub struct Options {
    /// The first entry to replay.
    pub from: u64,
    /// The last entry to replay.
    pub until: Until,
    /// How discards are replayed.
    pub discard: Discard,
    /// A file caching every entry's position (built on first use).
    pub index: Option<PathBuf>,
}

/// What a replay did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// The first entry replayed.
    pub first: u64,
    /// The last entry replayed.
    pub last: u64,
    /// Entries that wrote data.
    pub writes: u64,
    /// Bytes they wrote.
    pub bytes: u64,
    /// Discards.
    pub discards: u64,
    /// Entries with FLUSH or FUA.
    pub barriers: u64,
    /// Marks.
    pub marks: u64,
}

const CHUNK: usize = 1 << 20;

/// Where entry `from` starts: from the index, or by reading the headers before it.
fn start_of(log: &Log, from: u64, index: Option<&Index>) -> Result<u64> {
    if from >= log.sup().nr_entries {
        return Err(invalid!(
            "entry {from} is past the end of the log ({} entries)",
            log.sup().nr_entries
        ));
    }
    if let Some(offset) = index.and_then(|i| i.offset(from)) {
        return Ok(offset);
    }
    let mut offset = u64::from(log.sup().sectorsize);
    for e in log.entries().take(from as usize) {
        let e = e?;
        offset = e.offset + e.header.span(log.sup().sectorsize);
    }
    Ok(offset)
}

/// Replays entries `opts.from` to `opts.until` of `log` onto `dev`.
pub fn replay(log: &Log, dev: &Device, opts: &Options) -> Result<Stats> {
    let index = opts
        .index
        .as_deref()
        .map(|p| Index::cached(log, p))
        .transpose()?;
    let start = start_of(log, opts.from, index.as_ref())?;
    let last = match &opts.until {
        Until::Entry(n) if *n >= log.sup().nr_entries => {
            return Err(invalid!(
                "entry {n} is past the end of the log ({} entries)",
                log.sup().nr_entries
            ))
        }
        Until::Entry(n) => *n,
        Until::Mark(name) => {
            let mut found = None;
            for e in log.entries_from(opts.from, start) {
                let e = e?;
                if e.header.mark.as_deref() == Some(name.as_str()) {
                    found = Some(e.index);
                    break;
                }
            }
            found.ok_or_else(|| invalid!("no mark {name:?} at or after entry {}", opts.from))?
        }
    };
    if last < opts.from {
        return Err(invalid!("entry {last} comes before entry {}", opts.from));
    }
    let mut r = Replayer::new(log, dev, opts.discard);
    for e in log.entries_from(opts.from, start) {
        let e = e?;
        if e.index > last {
            break;
        }
        r.apply(&e)?;
    }
    r.finish()
}

/// Applies entries one at a time, in log order, to a device.
pub struct Replayer<'a> {
    log: &'a Log,
    dev: &'a Device,
    discard: Discard,
    buf: AlignedBuf,
    stats: Option<Stats>,
}

impl<'a> Replayer<'a> {
    /// A replayer of `log` onto `dev`.
    pub fn new(log: &'a Log, dev: &'a Device, discard: Discard) -> Self {
        Self {
            log,
            dev,
            discard,
            buf: AlignedBuf::new(CHUNK),
            stats: None,
        }
    }

    /// Flushes the device and says what was replayed since the last call.
    pub fn finish(&mut self) -> Result<Stats> {
        self.dev.sync()?;
        Ok(self.stats.take().unwrap_or_default())
    }

    /// Applies entry `e` (the one after the last applied).
    pub fn apply(&mut self, e: &Entry) -> Result<()> {
        let stats = self.stats.get_or_insert(Stats {
            first: e.index,
            ..Stats::default()
        });
        stats.last = e.index;
        let h = &e.header;
        let ss = u64::from(self.log.sup().sectorsize);
        if h.flags.contains(Flags::MARK) {
            stats.marks += 1;
            return Ok(());
        }
        if h.flags.contains(Flags::FLUSH) || h.flags.contains(Flags::FUA) {
            stats.barriers += 1;
        }
        if h.nr_sectors == 0 {
            return Ok(());
        }
        let target = h.sector * ss;
        let len = h.nr_sectors * ss;
        if target + len > self.dev.size() {
            return Err(invalid!(
                "entry {}: sectors {}+{} are past the end of {} ({} bytes)",
                e.index,
                h.sector,
                h.nr_sectors,
                self.dev.path().display(),
                self.dev.size()
            ));
        }
        let discarding = h.flags.contains(Flags::DISCARD);
        if discarding {
            stats.discards += 1;
            if self.discard == Discard::Skip {
                return Ok(());
            }
            self.buf.fill(0);
        } else {
            stats.writes += 1;
            stats.bytes += len;
        }
        let source = e.data_offset(self.log.sup().sectorsize);
        let mut done = 0;
        while done < len {
            let n = (len - done).min(CHUNK as u64) as usize;
            if !discarding {
                self.log.dev().read_at(&mut self.buf[..n], source + done)?;
            }
            self.dev.write_at(&self.buf[..n], target + done)?;
            done += n as u64;
        }
        Ok(())
    }
}
