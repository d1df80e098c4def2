// SPDX-License-Identifier: GPL-2.0 OR MIT

//! The workload's journal: which generation of each 4 KiB block every flush acknowledged.
//!
//! An append-only text file, one record a line, written as the workload goes:
//!
//! ```text
//! orion-crash journal 1 blocks 4096     header: the device's size in 4 KiB blocks
//! f 0                                   flush 0 returned (fdatasync)
//! w 1 120 4                             write 1 (its generation) of blocks 120..124 returned
//! w 2 7 16
//! f 1                                   flush 1 returned: writes 1 and 2 are acknowledged
//! ```
//!
//! Write `g` lies in window `n` when the first flush after it is flush `n`: it is
//! acknowledged by flush `n` and every later one, and before flush `n` returned it may or
//! may not be on the disk.

use crate::error::{IoContext, Result};
use crate::invalid;
use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Write as _};
use std::path::{Path, PathBuf};

const HEADER: &str = "orion-crash journal 1 blocks";

/// One write of the workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Write {
    /// Its generation: its number, from 1.
    pub generation: u64,
    /// The first 4 KiB block it wrote.
    pub block: u64,
    /// How many blocks it wrote.
    pub count: u64,
    /// The number of the first flush after it.
    pub window: u64,
}

impl Write {
    /// Whether it wrote `block`.
    pub fn covers(&self, block: u64) -> bool {
        (self.block..self.block + self.count).contains(&block)
    }
}

/// A journal read back.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Journal {
    /// The size of the device written, in 4 KiB blocks.
    pub blocks: u64,
    /// Every write, in order (generation `g` at `g - 1`).
    pub writes: Vec<Write>,
    /// The number of the last flush, if there was one.
    pub last_flush: Option<u64>,
}

/// What a device cut between flush N and flush N + 1 may hold, per block.
pub struct Expected {
    /// The generation flush N acknowledged for each block (0: never written by then).
    pub acked: Vec<u64>,
    /// Generations written between flush N and flush N + 1, per block: each may or may not
    /// have reached the disk.
    pub window: HashMap<u64, Vec<u64>>,
}

impl Journal {
    /// Reads a journal file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).at("cannot read", path)?;
        Self::parse(&text).map_err(|e| invalid!("journal {}: {e}", path.display()))
    }

    /// Parses a journal's text.
    pub fn parse(text: &str) -> Result<Self> {
        let mut lines = text.lines().enumerate();
        let blocks = lines
            .next()
            .and_then(|(_, l)| l.strip_prefix(HEADER))
            .and_then(|n| n.trim().parse().ok())
            .ok_or_else(|| invalid!("line 1: not an orion-crash journal"))?;
        let mut j = Journal {
            blocks,
            ..Journal::default()
        };
        for (i, line) in lines {
            let bad = || invalid!("line {}: bad record {line:?}", i + 1);
            let f: Vec<&str> = line.split_whitespace().collect();
            let num = |k: usize| f.get(k).and_then(|v| v.parse::<u64>().ok()).ok_or_else(bad);
            match f.first().copied() {
                Some("f") if f.len() == 2 => {
                    let n = num(1)?;
                    if n != j.last_flush.map_or(0, |l| l + 1) {
                        return Err(invalid!("line {}: flush {n} out of order", i + 1));
                    }
                    j.last_flush = Some(n);
                }
                Some("w") if f.len() == 4 => {
                    let (generation, block, count) = (num(1)?, num(2)?, num(3)?);
                    if generation != j.writes.len() as u64 + 1 {
                        return Err(invalid!(
                            "line {}: generation {generation} out of order",
                            i + 1
                        ));
                    }
                    if count == 0 || block + count > blocks {
                        return Err(invalid!(
                            "line {}: blocks {block}+{count} outside the device",
                            i + 1
                        ));
                    }
                    j.writes.push(Write {
                        generation,
                        block,
                        count,
                        window: j.last_flush.map_or(0, |l| l + 1),
                    });
                }
                _ => return Err(bad()),
            }
        }
        Ok(j)
    }

    /// The write of generation `g`.
    pub fn write(&self, g: u64) -> Option<&Write> {
        self.writes.get(usize::try_from(g.checked_sub(1)?).ok()?)
    }

    /// What a device cut after flush `n` (and before flush `n + 1`) may hold. With `exact`
    /// nothing after flush `n` may show: a snapshot taken at flush `n`.
    pub fn expected(&self, n: u64, exact: bool) -> Result<Expected> {
        if self.last_flush.is_none_or(|l| n > l) {
            return Err(invalid!(
                "the journal has no flush {n} (last: {})",
                self.last_flush.map_or("none".into(), |l| l.to_string())
            ));
        }
        let mut acked = vec![0; self.blocks as usize];
        let mut window: HashMap<u64, Vec<u64>> = HashMap::new();
        for w in &self.writes {
            if w.window <= n {
                acked[w.block as usize..(w.block + w.count) as usize].fill(w.generation);
            } else if w.window == n + 1 && !exact {
                for b in w.block..w.block + w.count {
                    window.entry(b).or_default().push(w.generation);
                }
            }
        }
        Ok(Expected { acked, window })
    }
}

/// Appends records to a journal file.
pub struct JournalWriter {
    out: BufWriter<File>,
    path: PathBuf,
}

impl JournalWriter {
    /// Creates (or truncates) the journal of a device of `blocks` 4 KiB blocks.
    pub fn create(path: &Path, blocks: u64) -> Result<Self> {
        let file = File::create(path).at("cannot create", path)?;
        let mut j = Self {
            out: BufWriter::new(file),
            path: path.to_owned(),
        };
        j.line(format_args!("{HEADER} {blocks}"))?;
        Ok(j)
    }

    fn line(&mut self, args: std::fmt::Arguments<'_>) -> Result<()> {
        writeln!(self.out, "{args}").at("cannot write", &self.path)
    }

    /// Records that write `generation` of `count` blocks from `block` returned.
    pub fn write(&mut self, generation: u64, block: u64, count: u64) -> Result<()> {
        self.line(format_args!("w {generation} {block} {count}"))
    }

    /// Records that flush `n` returned, and puts the journal in its file.
    pub fn flush(&mut self, n: u64) -> Result<()> {
        self.line(format_args!("f {n}"))?;
        self.out.flush().at("cannot write", &self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "orion-crash journal 1 blocks 16\nf 0\nw 1 0 4\nw 2 2 1\nf 1\nw 3 2 2\nw 4 10 1\nf 2\nw 5 0 1\n";

    #[test]
    fn windows_and_expectations() {
        let j = Journal::parse(TEXT).unwrap();
        assert_eq!(j.blocks, 16);
        assert_eq!(j.last_flush, Some(2));
        let w: Vec<u64> = j.writes.iter().map(|w| w.window).collect();
        assert_eq!(w, [1, 1, 2, 2, 3]);
        assert!(j.write(3).unwrap().covers(3) && !j.write(3).unwrap().covers(4));
        assert!(j.write(0).is_none() && j.write(6).is_none());

        let e = j.expected(0, false).unwrap();
        assert!(e.acked.iter().all(|&g| g == 0));
        assert_eq!(e.window[&2], [1, 2]);
        let e = j.expected(1, false).unwrap();
        assert_eq!(&e.acked[..5], &[1, 1, 2, 1, 0]);
        assert_eq!(e.window[&2], [3]);
        assert_eq!(e.window[&10], [4]);
        assert!(!e.window.contains_key(&0));
        let e = j.expected(1, true).unwrap();
        assert!(e.window.is_empty());
        let e = j.expected(2, false).unwrap();
        assert_eq!(&e.acked[..5], &[1, 1, 3, 3, 0]);
        assert_eq!(e.acked[10], 4);
        assert_eq!(e.window[&0], [5]);
        assert!(j.expected(3, false).is_err());
    }

    #[test]
    fn writer_output_parses_and_damage_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("j");
        let mut w = JournalWriter::create(&p, 16).unwrap();
        w.flush(0).unwrap();
        w.write(1, 0, 4).unwrap();
        w.write(2, 2, 1).unwrap();
        w.flush(1).unwrap();
        w.write(3, 2, 2).unwrap();
        w.write(4, 10, 1).unwrap();
        w.flush(2).unwrap();
        w.write(5, 0, 1).unwrap();
        drop(w);
        assert_eq!(std::fs::read_to_string(&p).unwrap(), TEXT);
        assert_eq!(Journal::load(&p).unwrap(), Journal::parse(TEXT).unwrap());

        for bad in [
            "nonsense\n",
            "orion-crash journal 1 blocks 16\nf 1\n",
            "orion-crash journal 1 blocks 16\nw 2 0 1\n",
            "orion-crash journal 1 blocks 16\nw 1 15 2\n",
            "orion-crash journal 1 blocks 16\nw 1 0\n",
            "orion-crash journal 1 blocks 16\nx\n",
        ] {
            assert!(Journal::parse(bad).is_err(), "{bad:?}");
        }
    }
}
