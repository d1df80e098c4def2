// SPDX-License-Identifier: GPL-2.0 OR MIT

//! The workload: random writes of stamped 4 KiB blocks with a flush every few writes.
//!
//! Each write covers 1 to `max_blocks` blocks at a random block, or (sometimes) over part of
//! an earlier write, or (`aligned_percent` of them) exactly `max_blocks` blocks aligned to
//! their size: a whole block of a pool whose block is that size, which a thin pool
//! provisions or unshares without zeroing or copying. `O_DIRECT` on a block device; a
//! write's generation is its number. Every
//! `flush_every` writes, and after the last, `fdatasync` makes them durable; the journal
//! records each write and each flush once they returned, then the `after_flush` command runs
//! (`sh -c`, with `N` the flush's number in its environment) so that, say, the log of a
//! log-writes device below gets a mark there. Flush 0 comes before the first write.
//!
//! With `background_flush_ms`, a second thread also flushes at random intervals while the
//! writes go on: a target then commits its metadata while a write (and the provisioning or
//! copying behind it) is in flight, which is where committing a mapping before its data
//! shows. Those flushes acknowledge nothing the journal relies on: only the numbered ones
//! do.

use crate::dev::{AlignedBuf, Device};
use crate::error::Result;
use crate::invalid;
use crate::journal::JournalWriter;
use crate::rng::Rng;
use crate::stamp::{stamp, BLOCK};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// The workload's parameters.
#[derive(Clone, Debug)]
pub struct Options {
    /// How many writes.
    pub writes: u64,
    /// A flush after every so many writes.
    pub flush_every: u64,
    /// The seed of the random choices.
    pub seed: u64,
    /// A shell command run after each flush, `$N` its number.
    pub after_flush: Option<String>,
    /// Write only the first so many bytes of the device.
    pub size: Option<u64>,
    /// The largest write, in 4 KiB blocks.
    pub max_blocks: u64,
    /// The share of writes (in percent) placed over an earlier write.
    pub overwrite_percent: u64,
    /// The share of writes (in percent) of `max_blocks` blocks aligned to that size.
    pub aligned_percent: u64,
    /// A background flush after a random pause of up to so many milliseconds, again and
    /// again while the writes go on.
    pub background_flush_ms: Option<u64>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            writes: 1000,
            flush_every: 8,
            seed: 1,
            after_flush: None,
            size: None,
            max_blocks: 16,
            overwrite_percent: 30,
            aligned_percent: 0,
            background_flush_ms: None,
        }
    }
}

/// What the workload did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Writes made.
    pub writes: u64,
    /// Flushes made (flush 0 included).
    pub flushes: u64,
    /// Blocks written, counting rewrites.
    pub blocks: u64,
    /// Blocks written more than once.
    pub rewritten: u64,
    /// Blocks written at least once.
    pub distinct: u64,
    /// Background flushes made.
    pub background_flushes: u64,
}

fn flush(dev: &Device, journal: &mut JournalWriter, n: u64, hook: Option<&str>) -> Result<()> {
    dev.sync()?;
    journal.flush(n)?;
    if let Some(cmd) = hook {
        let status = Command::new("sh")
            .arg("-c")
            .arg(cmd)
            .env("N", n.to_string())
            .status()
            .map_err(|e| invalid!("cannot run the --after-flush command: {e}"))?;
        if !status.success() {
            return Err(invalid!(
                "the --after-flush command failed after flush {n}: {status}"
            ));
        }
    }
    Ok(())
}

/// Flushes `dev` after random pauses until `stop`; how many times.
fn background_flusher(dev: &Device, max_ms: u64, seed: u64, stop: &AtomicBool) -> Result<u64> {
    let mut rng = Rng::new(seed);
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(1 + rng.below(max_ms.max(1))));
        dev.sync()?;
        n += 1;
    }
    Ok(n)
}

/// Runs the workload on `dev`, journalling to `journal_path`.
pub fn run(dev: &Device, journal_path: &Path, opts: &Options) -> Result<Summary> {
    let stop = &AtomicBool::new(false);
    std::thread::scope(|s| {
        let flusher = opts
            .background_flush_ms
            .map(|ms| s.spawn(move || background_flusher(dev, ms, opts.seed ^ 0x5eed, stop)));
        let r = write_all(dev, journal_path, opts);
        stop.store(true, Ordering::Relaxed);
        let background = match flusher.map(|f| f.join()) {
            None => 0,
            Some(Ok(n)) => n?,
            Some(Err(_)) => return Err(invalid!("the background flusher panicked")),
        };
        r.map(|s| Summary {
            background_flushes: background,
            ..s
        })
    })
}

fn write_all(dev: &Device, journal_path: &Path, opts: &Options) -> Result<Summary> {
    let size = opts.size.map_or(dev.size(), |s| s.min(dev.size()));
    let blocks = size / BLOCK as u64;
    if opts.max_blocks == 0 || blocks < opts.max_blocks || opts.flush_every == 0 {
        return Err(invalid!(
            "{} blocks of 4 KiB to write, writes of up to {} blocks, a flush every {} writes: \
             nothing sensible to do",
            blocks,
            opts.max_blocks,
            opts.flush_every
        ));
    }
    let hook = opts.after_flush.as_deref();
    let mut rng = Rng::new(opts.seed);
    let mut journal = JournalWriter::create(journal_path, blocks)?;
    let mut buf = AlignedBuf::new(opts.max_blocks as usize * BLOCK);
    let mut times = vec![0u32; blocks as usize];
    let mut earlier: Vec<(u64, u64)> = Vec::new();
    let mut summary = Summary::default();

    flush(dev, &mut journal, 0, hook)?;
    summary.flushes = 1;
    for generation in 1..=opts.writes {
        let aligned = rng.percent(opts.aligned_percent);
        let count = if aligned {
            opts.max_blocks
        } else {
            1 + rng.below(opts.max_blocks)
        };
        let start = if aligned {
            rng.below(blocks / opts.max_blocks) * opts.max_blocks
        } else if !earlier.is_empty() && rng.percent(opts.overwrite_percent) {
            let (b, c) = earlier[rng.below(earlier.len() as u64) as usize];
            b + rng.below(c)
        } else {
            rng.below(blocks)
        };
        let start = start.min(blocks - count);
        let len = count as usize * BLOCK;
        for (i, b) in buf[..len].chunks_exact_mut(BLOCK).enumerate() {
            stamp(b, (start + i as u64) * BLOCK as u64, generation);
        }
        dev.write_at(&buf[..len], start * BLOCK as u64)?;
        journal.write(generation, start, count)?;
        earlier.push((start, count));
        for t in &mut times[start as usize..(start + count) as usize] {
            *t += 1;
        }
        summary.writes += 1;
        summary.blocks += count;
        if generation % opts.flush_every == 0 || generation == opts.writes {
            flush(dev, &mut journal, summary.flushes, hook)?;
            summary.flushes += 1;
        }
    }
    summary.distinct = times.iter().filter(|&&t| t > 0).count() as u64;
    summary.rewritten = times.iter().filter(|&&t| t > 1).count() as u64;
    Ok(summary)
}
