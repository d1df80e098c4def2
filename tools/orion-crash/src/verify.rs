// SPDX-License-Identifier: GPL-2.0 OR MIT

//! The verifier: reads every 4 KiB block of a device cut between flush N and flush N + 1
//! and checks it against the journal.
//!
//! A block must hold the generation flush N acknowledged for it, or one written to it
//! between flush N and flush N + 1 (those may or may not have reached the disk); a block
//! that flush N had not seen written must read zeroes or such a newer generation. Anything
//! else is a problem of one of these kinds:
//!
//! - `lost`: zeroes where flush N acknowledged data;
//! - `stale`: an older generation of the block than flush N acknowledged;
//! - `future`: a generation written after flush N + 1 (after the cut, or after the
//!   snapshot with `exact`);
//! - `marker`: the byte pattern the device held before the test (data never written, such
//!   as an unzeroed new block);
//! - `torn`: a stamp whose checksum fails (part of the block from elsewhere);
//! - `misplaced`: a stamp naming another offset (data of another block);
//! - `unknown`: a generation the journal does not have, or that did not write this block;
//! - `foreign`: bytes that are none of the above.

use crate::dev::{AlignedBuf, Device};
use crate::error::Result;
use crate::journal::{Expected, Journal};
use crate::stamp::{classify, Content, BLOCK};
use std::fmt;

/// What to verify against.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// The last flush whose mark the cut is at or after.
    pub flush: u64,
    /// The byte the device was filled with before the test.
    pub marker: u8,
    /// Nothing written after flush N may show (a snapshot taken at flush N).
    pub exact: bool,
    /// How many problems to describe.
    pub report: usize,
}

/// The kinds of problem, in the order reports list them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Zeroes where data was acknowledged.
    Lost,
    /// An older generation than was acknowledged.
    Stale,
    /// A generation written after the cut.
    Future,
    /// The pre-test marker pattern.
    Marker,
    /// A stamp with a bad checksum.
    Torn,
    /// Another block's stamp.
    Misplaced,
    /// A generation that never wrote this block.
    Unknown,
    /// Unrecognisable bytes.
    Foreign,
}

impl Kind {
    /// Every kind.
    pub const ALL: [Kind; 8] = [
        Kind::Lost,
        Kind::Stale,
        Kind::Future,
        Kind::Marker,
        Kind::Torn,
        Kind::Misplaced,
        Kind::Unknown,
        Kind::Foreign,
    ];

    /// Its name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Lost => "lost",
            Kind::Stale => "stale",
            Kind::Future => "future",
            Kind::Marker => "marker",
            Kind::Torn => "torn",
            Kind::Misplaced => "misplaced",
            Kind::Unknown => "unknown",
            Kind::Foreign => "foreign",
        }
    }
}

/// One bad block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The block's number.
    pub block: u64,
    /// What is wrong.
    pub kind: Kind,
    /// The generation flush N acknowledged for the block (0: none): when there is one, the
    /// block has lost acknowledged data whatever it holds instead.
    pub acked: u64,
    /// What it holds and what it should.
    pub detail: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "block {} (byte {}): {}: {}",
            self.block,
            self.block * BLOCK as u64,
            self.kind.name(),
            self.detail
        )
    }
}

/// A good block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Good {
    /// It holds the acknowledged generation.
    Acked,
    /// It holds a generation written after flush N, before the cut.
    Newer,
    /// Never written by flush N, it reads zeroes.
    Unwritten,
}

/// The verdict on one device.
#[derive(Debug, Default)]
pub struct Report {
    /// Blocks read.
    pub blocks: u64,
    /// Blocks holding their acknowledged generation.
    pub acked: u64,
    /// Blocks holding a newer generation.
    pub newer: u64,
    /// Unwritten blocks reading zeroes.
    pub unwritten: u64,
    /// Problems of each kind, in [`Kind::ALL`] order.
    pub counts: [u64; 8],
    /// Bad blocks that had acknowledged data (of any kind: lost and stale ones, but also
    /// those holding the marker or another block's data instead).
    pub missing_acked: u64,
    /// The first problems found.
    pub first: Vec<Problem>,
}

impl Report {
    /// No problem found.
    pub fn is_clean(&self) -> bool {
        self.counts.iter().all(|&c| c == 0)
    }

    /// "lost=0 stale=0 ...": every kind with its count.
    pub fn counts_line(&self) -> String {
        Kind::ALL
            .iter()
            .zip(self.counts)
            .map(|(k, c)| format!("{}={c}", k.name()))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Judges one block `b` holding `buf`.
pub fn check_block(
    buf: &[u8],
    b: u64,
    expected: &Expected,
    journal: &Journal,
    opts: &Options,
) -> std::result::Result<Good, Problem> {
    let acked = expected.acked.get(b as usize).copied().unwrap_or(0);
    let newer = expected
        .window
        .get(&b)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let n = opts.flush;
    let problem = |kind, detail: String| Problem {
        block: b,
        kind,
        acked,
        detail,
    };
    let wanted = || {
        if acked == 0 {
            format!("flush {n} acknowledged no write of it")
        } else {
            format!("flush {n} acknowledged generation {acked}")
        }
    };
    match classify(buf, opts.marker) {
        Content::Zero if acked == 0 => Ok(Good::Unwritten),
        Content::Zero => Err(problem(Kind::Lost, format!("reads zeroes; {}", wanted()))),
        Content::Marker { sectors } => Err(problem(
            Kind::Marker,
            format!(
                "{sectors} of 8 sectors are the marker byte {:#04x}; {}",
                opts.marker,
                wanted()
            ),
        )),
        Content::Foreign => Err(problem(
            Kind::Foreign,
            format!("no stamp, not zero, not the marker; {}", wanted()),
        )),
        Content::Torn { offset, generation } => Err(problem(
            Kind::Torn,
            format!(
                "stamp of generation {generation} for byte {offset} with a bad checksum; {}",
                wanted()
            ),
        )),
        Content::Stamp { offset, generation } => {
            if offset != b * BLOCK as u64 {
                return Err(problem(
                    Kind::Misplaced,
                    format!(
                        "holds generation {generation} of byte {offset} (block {}); {}",
                        offset / BLOCK as u64,
                        wanted()
                    ),
                ));
            }
            let Some(w) = journal.write(generation).filter(|w| w.covers(b)) else {
                return Err(problem(
                    Kind::Unknown,
                    format!(
                        "holds generation {generation}, which never wrote this block; {}",
                        wanted()
                    ),
                ));
            };
            if generation == acked {
                Ok(Good::Acked)
            } else if newer.contains(&generation) {
                Ok(Good::Newer)
            } else if w.window <= n {
                Err(problem(
                    Kind::Stale,
                    format!(
                        "holds generation {generation} (before flush {}); {}",
                        w.window,
                        wanted()
                    ),
                ))
            } else {
                Err(problem(
                    Kind::Future,
                    format!(
                        "holds generation {generation}, written before flush {} (after the {}); {}",
                        w.window,
                        if opts.exact { "snapshot" } else { "cut" },
                        wanted()
                    ),
                ))
            }
        }
    }
}

/// Reads every 4 KiB block of `dev` and judges it.
pub fn verify(dev: &Device, journal: &Journal, opts: &Options) -> Result<Report> {
    let expected = journal.expected(opts.flush, opts.exact)?;
    let blocks = dev.size() / BLOCK as u64;
    let chunk_blocks = 256u64;
    let mut buf = AlignedBuf::new(chunk_blocks as usize * BLOCK);
    let mut report = Report {
        blocks,
        ..Report::default()
    };
    let mut first = 0;
    while first < blocks {
        let n = chunk_blocks.min(blocks - first);
        let len = n as usize * BLOCK;
        dev.read_at(&mut buf[..len], first * BLOCK as u64)?;
        for (i, block) in buf[..len].chunks_exact(BLOCK).enumerate() {
            match check_block(block, first + i as u64, &expected, journal, opts) {
                Ok(Good::Acked) => report.acked += 1,
                Ok(Good::Newer) => report.newer += 1,
                Ok(Good::Unwritten) => report.unwritten += 1,
                Err(p) => {
                    let k = Kind::ALL.iter().position(|&k| k == p.kind).unwrap_or(0);
                    report.counts[k] += 1;
                    if p.acked != 0 {
                        report.missing_acked += 1;
                    }
                    if report.first.len() < opts.report {
                        report.first.push(p);
                    }
                }
            }
        }
        first += n;
    }
    Ok(report)
}

/// Where two devices differ, by 4 KiB block.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Difference {
    /// Blocks that differ (a block past the end of the shorter device always does).
    pub blocks: u64,
    /// The first of them.
    pub first: Option<u64>,
}

/// Compares two devices block by block: a mirror's legs once it is in sync.
pub fn compare(a: &Device, b: &Device) -> Result<Difference> {
    let common = a.size().min(b.size()) / BLOCK as u64;
    let longer = a.size().max(b.size()).div_ceil(BLOCK as u64);
    let chunk_blocks = 256u64;
    let mut bufs = [
        AlignedBuf::new(chunk_blocks as usize * BLOCK),
        AlignedBuf::new(chunk_blocks as usize * BLOCK),
    ];
    let mut d = Difference::default();
    let mut first = 0;
    while first < common {
        let n = chunk_blocks.min(common - first);
        let len = n as usize * BLOCK;
        let [x, y] = &mut bufs;
        a.read_at(&mut x[..len], first * BLOCK as u64)?;
        b.read_at(&mut y[..len], first * BLOCK as u64)?;
        if x[..len] != y[..len] {
            let differ = x[..len]
                .chunks_exact(BLOCK)
                .zip(y[..len].chunks_exact(BLOCK))
                .enumerate()
                .filter(|(_, (p, q))| p != q)
                .map(|(i, _)| first + i as u64);
            for block in differ {
                d.blocks += 1;
                d.first.get_or_insert(block);
            }
        }
        first += n;
    }
    if longer > common {
        d.blocks += longer - common;
        d.first.get_or_insert(common);
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stamp::stamp;

    const TEXT: &str = "orion-crash journal 1 blocks 8\nf 0\nw 1 0 4\nf 1\nw 2 2 3\nf 2\nw 3 6 1\n";

    fn opts(flush: u64) -> Options {
        Options {
            flush,
            marker: 0xa5,
            exact: false,
            report: 10,
        }
    }

    fn block(offset_block: u64, generation: u64) -> Vec<u8> {
        let mut b = vec![0u8; BLOCK];
        stamp(&mut b, offset_block * BLOCK as u64, generation);
        b
    }

    #[test]
    fn each_block_judged() {
        let j = Journal::parse(TEXT).unwrap();
        let o = opts(1);
        let e = j.expected(1, false).unwrap();
        let check = |buf: &[u8], b| check_block(buf, b, &e, &j, &o);
        let kind = |r: std::result::Result<Good, Problem>| r.unwrap_err().kind;

        assert_eq!(check(&block(0, 1), 0), Ok(Good::Acked));
        // Block 2: generation 1 acknowledged, generation 2 written before the cut.
        assert_eq!(check(&block(2, 1), 2), Ok(Good::Acked));
        assert_eq!(check(&block(2, 2), 2), Ok(Good::Newer));
        assert_eq!(kind(check(&vec![0; BLOCK], 2)), Kind::Lost);
        // Block 4: unwritten by flush 1, written (generation 2) before the cut.
        assert_eq!(check(&vec![0; BLOCK], 4), Ok(Good::Unwritten));
        assert_eq!(check(&block(4, 2), 4), Ok(Good::Newer));
        // Block 6: generation 3 came after flush 2, so after any cut before flush 2.
        assert_eq!(kind(check(&block(6, 3), 6)), Kind::Future);
        assert_eq!(kind(check(&vec![0xa5; BLOCK], 6)), Kind::Marker);
        assert_eq!(kind(check(&block(1, 1), 0)), Kind::Misplaced);
        assert_eq!(kind(check(&block(5, 1), 5)), Kind::Unknown);
        assert_eq!(kind(check(&block(5, 99), 5)), Kind::Unknown);
        let mut torn = block(0, 1);
        torn[3000..].fill(0);
        assert_eq!(kind(check(&torn, 0)), Kind::Torn);
        assert_eq!(kind(check(&[7u8; BLOCK], 0)), Kind::Foreign);

        // At flush 2 generation 1 of block 2 is stale; exactly at flush 1 generation 2 is
        // from after the snapshot.
        let e2 = j.expected(2, false).unwrap();
        assert_eq!(
            check_block(&block(2, 1), 2, &e2, &j, &opts(2))
                .unwrap_err()
                .kind,
            Kind::Stale
        );
        let ex = j.expected(1, true).unwrap();
        let p = check_block(&block(2, 2), 2, &ex, &j, &Options { exact: true, ..o }).unwrap_err();
        assert_eq!(p.kind, Kind::Future);
        assert!(p.to_string().contains("after the snapshot"), "{p}");
    }

    #[test]
    fn devices_compared_by_block() {
        let dir = tempfile::tempdir().unwrap();
        let (pa, pb) = (dir.path().join("a"), dir.path().join("b"));
        // 300 blocks: more than one read's worth.
        let mut a = vec![0u8; 300 * BLOCK];
        for (i, b) in a.chunks_exact_mut(BLOCK).enumerate() {
            stamp(b, (i * BLOCK) as u64, 1);
        }
        let open = |p: &std::path::Path, bytes: &[u8]| {
            std::fs::write(p, bytes).unwrap();
            Device::open(p, false).unwrap()
        };
        let da = open(&pa, &a);
        assert_eq!(compare(&da, &open(&pb, &a)).unwrap(), Difference::default());
        let mut b = a.clone();
        b[270 * BLOCK + 17] ^= 1;
        b[5 * BLOCK..6 * BLOCK].fill(0);
        let want = Difference {
            blocks: 2,
            first: Some(5),
        };
        assert_eq!(compare(&da, &open(&pb, &b)).unwrap(), want);
        assert_eq!(compare(&open(&pb, &b), &da).unwrap(), want);
        // A shorter device misses its blocks past the end, a partial one included.
        let short = open(&pb, &a[..290 * BLOCK + 512]);
        let want = Difference {
            blocks: 10,
            first: Some(290),
        };
        assert_eq!(compare(&da, &short).unwrap(), want);
    }
}
