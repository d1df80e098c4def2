// SPDX-License-Identifier: GPL-2.0 OR MIT

//! `orion-thin`: check, dump, restore, repair and list dm-thin pool metadata.
//!
//! Exit codes: 0 success, 1 damaged metadata, 2 bad usage or input, 3 I/O error.

use anyhow::Context;
use clap::Parser;
use orion_thin::cache::{CachedBm, FileStore};
use orion_thin::cli::{Cli, Cmd};
use orion_thin::repair::{self, RepairError};
use orion_thin::{check, dump, ls, restore, xml};
use std::io::{BufReader, BufWriter, Write};
use std::process::ExitCode;

enum Failure {
    Damaged(String),
    Usage(anyhow::Error),
    Io(anyhow::Error),
}

fn open(path: &std::path::Path, writable: bool) -> Result<CachedBm<FileStore>, Failure> {
    FileStore::open(path, writable)
        .map(CachedBm::new)
        .with_context(|| format!("cannot open {}", path.display()))
        .map_err(Failure::Io)
}

fn pdata_failure(e: orion_pdata::error::Error) -> Failure {
    use orion_pdata::error::Error as E;
    match e {
        E::Io(_) => Failure::Io(anyhow::anyhow!("{e}")),
        E::Invalid(_) | E::NoSpace => Failure::Usage(anyhow::anyhow!("{e}")),
        _ => Failure::Damaged(e.to_string()),
    }
}

fn repair_failure(e: RepairError) -> Failure {
    match e {
        RepairError::Write(e) => pdata_failure(e),
        e @ (RepairError::NeedOverride { .. } | RepairError::NothingFound(_)) => {
            Failure::Damaged(e.to_string())
        }
    }
}

/// Whether two paths name the same file or block device.
fn same_target(a: &std::path::Path, b: &std::path::Path) -> bool {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => {
            (x.dev() == y.dev() && x.ino() == y.ino())
                || (x.file_type().is_block_device()
                    && y.file_type().is_block_device()
                    && x.rdev() == y.rdev())
        }
        _ => false,
    }
}

fn run(cli: Cli) -> Result<(), Failure> {
    match cli.cmd {
        Cmd::Check { metadata, quiet } => {
            let bm = open(&metadata, false)?;
            let report = check::check(&bm);
            if !quiet {
                for w in &report.warnings {
                    eprintln!("warning: {w}");
                }
                for e in &report.errors {
                    eprintln!("{e}");
                }
                if let Some(sb) = &report.superblock {
                    if report.is_clean() {
                        println!("TRANSACTION_ID={}", sb.trans_id);
                        println!("METADATA_FREE_BLOCKS={}", report.metadata_free);
                    }
                }
            }
            if report.is_clean() {
                Ok(())
            } else {
                Err(Failure::Damaged(format!(
                    "{} problems found",
                    report.errors.len()
                )))
            }
        }
        Cmd::Dump {
            metadata,
            metadata_snap,
            output,
        } => {
            let bm = open(&metadata, false)?;
            let source = match metadata_snap.as_deref() {
                None => dump::Source::Live,
                Some("held") => dump::Source::HeldSnapshot,
                Some(b) => dump::Source::Snapshot(b.parse().map_err(|_| {
                    Failure::Usage(anyhow::anyhow!("--metadata-snap takes a block number"))
                })?),
            };
            let md = dump::read(&bm, source).map_err(pdata_failure)?;
            let mut out: Box<dyn Write> = match output {
                Some(p) => Box::new(BufWriter::new(
                    std::fs::File::create(&p)
                        .with_context(|| format!("cannot create {}", p.display()))
                        .map_err(Failure::Io)?,
                )),
                None => Box::new(BufWriter::new(std::io::stdout().lock())),
            };
            xml::write(&md, &mut out)
                .and_then(|_| out.flush())
                .context("writing XML")
                .map_err(Failure::Io)
        }
        Cmd::Restore { input, output } => {
            let f = std::fs::File::open(&input)
                .with_context(|| format!("cannot open {}", input.display()))
                .map_err(Failure::Io)?;
            let md = xml::parse(BufReader::new(f))
                .with_context(|| format!("reading {}", input.display()))
                .map_err(Failure::Usage)?;
            let bm = open(&output, true)?;
            restore::restore(bm, &md).map_err(pdata_failure)?;
            Ok(())
        }
        Cmd::Repair {
            input,
            output,
            transaction_id,
            data_block_size,
            nr_data_blocks,
        } => {
            if same_target(&input, &output) {
                return Err(Failure::Usage(anyhow::anyhow!(
                    "the output must not be the damaged input"
                )));
            }
            let src = open(&input, false)?;
            let dst = open(&output, true)?;
            let opts = repair::Options {
                transaction_id,
                data_block_size,
                nr_data_blocks,
            };
            let report = repair::repair(&src, dst, &opts).map_err(repair_failure)?;
            for w in report.warnings() {
                eprintln!("warning: {w}");
            }
            println!(
                "{} devices, {} mappings salvaged",
                report.devices, report.mappings
            );
            Ok(())
        }
        Cmd::Ls { metadata } => {
            let bm = open(&metadata, false)?;
            let devs = ls::list(&bm).map_err(pdata_failure)?;
            println!(
                "{:>8} {:>12} {:>12} {:>8} {:>8}",
                "DEV", "MAPPED", "EXCLUSIVE", "CTIME", "STIME"
            );
            for d in devs {
                println!(
                    "{:>8} {:>12} {:>12} {:>8} {:>8}",
                    d.id, d.mapped, d.exclusive, d.creation_time, d.snap_time
                );
            }
            Ok(())
        }
    }
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Damaged(msg)) => {
            eprintln!("orion-thin: metadata damaged: {msg}");
            ExitCode::from(1)
        }
        Err(Failure::Usage(e)) => {
            eprintln!("orion-thin: {e:#}");
            ExitCode::from(2)
        }
        Err(Failure::Io(e)) => {
            eprintln!("orion-thin: {e:#}");
            ExitCode::from(3)
        }
    }
}
