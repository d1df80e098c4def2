// SPDX-License-Identifier: GPL-2.0 OR MIT

//! `orion-crash`: power-cut tests of block devices with dm-log-writes.
//!
//! Exit codes: 0 success, 1 the verifier found bad blocks, 2 bad usage or input (a damaged
//! log or journal, an entry or mark not in the log, a failing hook), 3 I/O error.

use clap::{Args, Parser, Subcommand, ValueEnum};
use orion_crash::dev::Device;
use orion_crash::journal::Journal;
use orion_crash::log::Log;
use orion_crash::{replay, verify, walk, workload, Error};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "orion-crash",
    version,
    about = "Power-cut tests with dm-log-writes"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Clone, Copy, ValueEnum)]
enum DiscardArg {
    /// Write zeroes over the range (what brd reads after a discard).
    Zero,
    /// Leave the range as it was.
    Skip,
}

#[derive(Subcommand)]
enum Cmd {
    /// Lists a log's entries: index, sector, sectors, flags and mark name ("-" for none).
    List {
        /// The log device or file.
        log: PathBuf,
    },
    /// Replays entries of a log onto a device.
    Replay {
        /// The log device or file.
        log: PathBuf,
        /// The device to write, holding what the logged device held before the log began
        /// (or after entry FROM - 1 of it).
        dev: PathBuf,
        /// The first entry to replay.
        #[arg(long, default_value_t = 0)]
        from: u64,
        /// The last entry to replay.
        #[arg(long, required_unless_present = "to_mark", conflicts_with = "to_mark")]
        to: Option<u64>,
        /// Replay up to and including the first mark of this name.
        #[arg(long)]
        to_mark: Option<String>,
        /// How to replay discards.
        #[arg(long, value_enum, default_value = "zero")]
        discard: DiscardArg,
        /// A file caching the position of every entry: built on first use, then lets each
        /// replay of a walk start at FROM without reading the headers before it.
        #[arg(long)]
        index: Option<PathBuf>,
    },
    /// Writes stamped 4 KiB blocks at random with a flush every few writes, journalling
    /// what each flush acknowledged.
    Write {
        /// The device to write.
        dev: PathBuf,
        /// The journal to create.
        #[arg(long)]
        state: PathBuf,
        /// How many writes.
        #[arg(long, default_value_t = 1000)]
        writes: u64,
        /// A flush (fdatasync) after every so many writes.
        #[arg(long, default_value_t = 8)]
        flush_every: u64,
        /// The seed of the random choices.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// A shell command run after each flush returned; $N is the flush's number
        /// (0 before the first write).
        #[arg(long)]
        after_flush: Option<String>,
        /// Write only the first so many bytes of the device.
        #[arg(long)]
        size: Option<u64>,
        /// The largest write in KiB (a multiple of 4).
        #[arg(long, default_value_t = 64)]
        max_kib: u64,
        /// The share of writes (percent) placed over an earlier write.
        #[arg(long, default_value_t = 30)]
        overwrite_percent: u64,
        /// The share of writes (percent) of the largest size, aligned to it (whole pool
        /// blocks when that is the pool's block size).
        #[arg(long, default_value_t = 0)]
        aligned_percent: u64,
        /// Also flush from a second thread, after random pauses of up to MS milliseconds,
        /// while the writes go on (the target commits with writes in flight).
        #[arg(long, value_name = "MS")]
        background_flush: Option<u64>,
    },
    /// Checks every 4 KiB block of a device cut after flush N against the journal.
    Verify {
        /// The device to check.
        dev: PathBuf,
        /// The journal the workload wrote.
        #[arg(long)]
        state: PathBuf,
        /// The last flush whose mark is at or before the cut.
        #[arg(long)]
        flush: u64,
        /// The byte the device was filled with before the test.
        #[arg(long, default_value = "0xa5", value_parser = parse_byte)]
        marker_byte: u8,
        /// Nothing written after flush N may show (a snapshot taken at flush N).
        #[arg(long)]
        exact: bool,
        /// How many bad blocks to describe.
        #[arg(long, default_value_t = 10)]
        report: usize,
    },
    /// Walks a log of a disk forward onto a replay device and at each cut point brings the
    /// stack on it up over a transient snapshot of it and checks it: a thin pool (metadata
    /// check, pool and thin device loaded, the thin device and a thin snapshot verified), a
    /// device-mapper snapshot (the origin verified, the persistent snapshot loaded and
    /// verified) or a mirror (loaded on its disk log, resynced, the mirror and each leg
    /// verified, the legs compared).
    Walk(Box<WalkArgs>),
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum StackArg {
    /// A thin pool: metadata area, then data area; the workload wrote a thin device.
    Thin,
    /// A device-mapper snapshot: origin area, then COW area; the workload wrote the origin
    /// through snapshot-origin and a persistent snapshot was taken at the snapshot mark.
    Snapshot,
    /// A mirror: disk log area, then each leg's area; the workload wrote the mirror.
    Mirror,
}

#[derive(Args)]
struct WalkArgs {
    /// The log device or file.
    log: PathBuf,
    /// The device to replay onto, holding what the disk held before the log began.
    replay: PathBuf,
    /// An exception store of the transient snapshots (their content is not kept); give two
    /// and each cut point's devices are removed while the next one is checked.
    #[arg(long, required = true, num_args = 1)]
    cow: Vec<PathBuf>,
    /// The journal the workload wrote.
    #[arg(long)]
    state: PathBuf,
    /// The stack on the disk.
    #[arg(long, value_enum, default_value = "thin")]
    stack: StackArg,
    /// Thin: the metadata area, the disk's first sectors.
    #[arg(long)]
    meta_sectors: Option<u64>,
    /// Thin: the data area after it, in sectors.
    #[arg(long)]
    data_sectors: Option<u64>,
    /// Thin: the thin device's length in sectors.
    #[arg(long)]
    thin_sectors: Option<u64>,
    /// Thin: the pool's block size in sectors.
    #[arg(long, default_value_t = 128)]
    block_size: u64,
    /// Thin: the pool's target type.
    #[arg(long, default_value = "thin-pool")]
    pool_target: String,
    /// Thin: the thin device's target type.
    #[arg(long, default_value = "thin")]
    thin_target: String,
    /// Thin: the thin device the workload wrote.
    #[arg(long, default_value_t = 0)]
    thin_id: u64,
    /// Thin: the thin snapshot taken during the workload.
    #[arg(long)]
    snapshot_id: Option<u64>,
    /// Snapshot: the origin area, the disk's first sectors.
    #[arg(long)]
    origin_sectors: Option<u64>,
    /// Snapshot: the COW area after it, in sectors.
    #[arg(long)]
    cow_sectors: Option<u64>,
    /// Snapshot: the chunk size in sectors.
    #[arg(long, default_value_t = 8)]
    chunk: u64,
    /// Snapshot: the snapshot's target type.
    #[arg(long, default_value = "snapshot")]
    snapshot_target: String,
    /// Mirror: the disk log's area, the disk's first sectors.
    #[arg(long)]
    log_sectors: Option<u64>,
    /// Mirror: each leg's area, one after the other after the log's, in sectors.
    #[arg(long)]
    leg_sectors: Option<u64>,
    /// Mirror: how many legs [default: 2].
    #[arg(long)]
    legs: Option<usize>,
    /// Mirror: the region size in sectors [default: 1024].
    #[arg(long)]
    region_size: Option<u64>,
    /// Mirror: the mirror's target type [default: mirror].
    #[arg(long)]
    mirror_target: Option<String>,
    /// Mirror: how long the mirror may take to report every region in sync, in seconds
    /// [default: 60].
    #[arg(long)]
    resync_timeout: Option<u64>,
    /// The mark logged once the snapshot was taken.
    #[arg(long, default_value = "snap")]
    snapshot_mark: String,
    /// The mark of the first cut point.
    #[arg(long, default_value = "flush-0")]
    start_mark: String,
    /// The mark of the last cut point (the first of that name at or after the start mark)
    /// [default: the log's last entry].
    #[arg(long)]
    end_mark: Option<String>,
    /// The marks after each flush are this prefix and the flush's number.
    #[arg(long, default_value = "flush-")]
    flush_prefix: String,
    /// The most cut points (chosen at random, evenly, when there are more).
    #[arg(long, default_value_t = 560)]
    max_cuts: usize,
    /// The seed of the choice of cut points.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// The metadata check: program and arguments, the metadata device (thin), COW device
    /// (snapshot) or log device (mirror) appended; "" for none. By default thin_check for a
    /// thin pool, none for the others.
    #[arg(long)]
    check: Option<String>,
    /// The byte the data area was filled with before the test.
    #[arg(long, default_value = "0xa5", value_parser = parse_byte)]
    marker_byte: u8,
    /// The prefix of the device-mapper devices the walk makes.
    #[arg(long, default_value = "crash-")]
    prefix: String,
    /// How to replay discards.
    #[arg(long, value_enum, default_value = "zero")]
    discard: DiscardArg,
}

impl DiscardArg {
    fn mode(self) -> replay::Discard {
        match self {
            DiscardArg::Zero => replay::Discard::Zero,
            DiscardArg::Skip => replay::Discard::Skip,
        }
    }
}

impl WalkArgs {
    /// The options of one stack only: their names, whether each was given, and the stack
    /// that takes it.
    fn specific(&self) -> [(&'static str, bool, StackArg); 12] {
        use StackArg::{Mirror, Snapshot, Thin};
        [
            ("meta-sectors", self.meta_sectors.is_some(), Thin),
            ("data-sectors", self.data_sectors.is_some(), Thin),
            ("thin-sectors", self.thin_sectors.is_some(), Thin),
            ("snapshot-id", self.snapshot_id.is_some(), Thin),
            ("origin-sectors", self.origin_sectors.is_some(), Snapshot),
            ("cow-sectors", self.cow_sectors.is_some(), Snapshot),
            ("log-sectors", self.log_sectors.is_some(), Mirror),
            ("leg-sectors", self.leg_sectors.is_some(), Mirror),
            ("legs", self.legs.is_some(), Mirror),
            ("region-size", self.region_size.is_some(), Mirror),
            ("mirror-target", self.mirror_target.is_some(), Mirror),
            ("resync-timeout", self.resync_timeout.is_some(), Mirror),
        ]
    }

    /// The layout the options describe.
    fn layout(&self) -> Result<walk::Layout, Failure> {
        let usage = Failure::Usage;
        let stack = self.stack_name();
        let need = |v: Option<u64>, opt: &str| {
            v.ok_or_else(|| usage(format!("--stack {stack} needs --{opt}")))
        };
        let foreign = self
            .specific()
            .into_iter()
            .find(|&(_, given, of)| given && of != self.stack);
        if let Some((opt, ..)) = foreign {
            return Err(usage(format!(
                "--{opt} is not an option of --stack {stack}"
            )));
        }
        Ok(match self.stack {
            StackArg::Thin => walk::Layout::Thin(walk::ThinLayout {
                meta_sectors: need(self.meta_sectors, "meta-sectors")?,
                data_sectors: need(self.data_sectors, "data-sectors")?,
                block_size: self.block_size,
                pool_target: self.pool_target.clone(),
                thin_target: self.thin_target.clone(),
                thin_id: self.thin_id,
                thin_sectors: need(self.thin_sectors, "thin-sectors")?,
                snapshot_id: self.snapshot_id,
            }),
            StackArg::Snapshot => walk::Layout::Snapshot(walk::SnapshotLayout {
                origin_sectors: need(self.origin_sectors, "origin-sectors")?,
                cow_sectors: need(self.cow_sectors, "cow-sectors")?,
                chunk: self.chunk,
                target: self.snapshot_target.clone(),
            }),
            StackArg::Mirror => {
                let legs = self.legs.unwrap_or(2);
                if legs < 2 {
                    return Err(usage(format!("a mirror has two legs or more, not {legs}")));
                }
                walk::Layout::Mirror(walk::MirrorLayout {
                    log_sectors: need(self.log_sectors, "log-sectors")?,
                    leg_sectors: need(self.leg_sectors, "leg-sectors")?,
                    legs,
                    region_size: self.region_size.unwrap_or(1024),
                    target: self.mirror_target.as_deref().unwrap_or("mirror").to_owned(),
                    resync_timeout: Duration::from_secs(self.resync_timeout.unwrap_or(60)),
                })
            }
        })
    }

    /// The metadata check's words.
    fn check(&self) -> Vec<String> {
        let default = match self.stack {
            StackArg::Thin => "thin_check",
            StackArg::Snapshot | StackArg::Mirror => "",
        };
        let check = self.check.as_deref().unwrap_or(default);
        check.split_whitespace().map(String::from).collect()
    }

    fn stack_name(&self) -> &'static str {
        match self.stack {
            StackArg::Thin => "thin",
            StackArg::Snapshot => "snapshot",
            StackArg::Mirror => "mirror",
        }
    }
}

fn parse_byte(s: &str) -> Result<u8, String> {
    let r = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u8::from_str_radix(hex, 16),
        None => s.parse(),
    };
    r.map_err(|_| format!("{s:?} is not a byte (0..255 or 0x00..0xff)"))
}

enum Failure {
    Bad(String),
    Usage(String),
    Io(String),
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        match e {
            Error::Io { .. } => Failure::Io(e.to_string()),
            Error::Invalid(m) => Failure::Usage(m),
        }
    }
}

fn run(cli: Cli) -> Result<(), Failure> {
    match cli.cmd {
        Cmd::List { log } => {
            let log = Log::open(&log)?;
            let s = log.sup();
            println!(
                "# dm-log-writes log: {} entries, sector size {}",
                s.nr_entries, s.sectorsize
            );
            println!("# index sector nr_sectors flags mark");
            for e in log.entries() {
                let e = e?;
                let h = &e.header;
                println!(
                    "{} {} {} {} {}",
                    e.index,
                    h.sector,
                    h.nr_sectors,
                    h.flags,
                    h.mark.as_deref().unwrap_or("-")
                );
            }
        }
        Cmd::Replay {
            log,
            dev,
            from,
            to,
            to_mark,
            discard,
            index,
        } => {
            let log = Log::open(&log)?;
            let dev = Device::open(&dev, true)?;
            let opts = replay::Options {
                from,
                until: match (to, to_mark) {
                    (Some(n), _) => replay::Until::Entry(n),
                    (None, Some(m)) => replay::Until::Mark(m),
                    (None, None) => return Err(Failure::Usage("--to or --to-mark".into())),
                },
                discard: discard.mode(),
                index,
            };
            let s = replay::replay(&log, &dev, &opts)?;
            println!(
                "replayed entries {}..={}: {} writes ({} bytes), {} discards, {} flush/FUA, {} marks",
                s.first, s.last, s.writes, s.bytes, s.discards, s.barriers, s.marks
            );
        }
        Cmd::Write {
            dev,
            state,
            writes,
            flush_every,
            seed,
            after_flush,
            size,
            max_kib,
            overwrite_percent,
            aligned_percent,
            background_flush,
        } => {
            if max_kib == 0 || max_kib % 4 != 0 {
                return Err(Failure::Usage("--max-kib must be a multiple of 4".into()));
            }
            let dev = Device::open(&dev, true)?;
            let opts = workload::Options {
                writes,
                flush_every,
                seed,
                after_flush,
                size,
                max_blocks: max_kib / 4,
                overwrite_percent,
                aligned_percent,
                background_flush_ms: background_flush,
            };
            let s = workload::run(&dev, &state, &opts)?;
            println!(
                "{} writes, {} flushes (and {} in the background), {} blocks written: {} distinct, \
                 {} of them more than once",
                s.writes, s.flushes, s.background_flushes, s.blocks, s.distinct, s.rewritten
            );
        }
        Cmd::Verify {
            dev,
            state,
            flush,
            marker_byte,
            exact,
            report,
        } => {
            let journal = Journal::load(&state)?;
            let device = Device::open(&dev, false)?;
            let opts = verify::Options {
                flush,
                marker: marker_byte,
                exact,
                report,
            };
            let r = verify::verify(&device, &journal, &opts)?;
            println!(
                "{} at flush {flush}{}: {} blocks: {} acknowledged, {} newer, {} unwritten and zero",
                dev.display(),
                if exact { " (exact)" } else { "" },
                r.blocks,
                r.acked,
                r.newer,
                r.unwritten
            );
            println!(
                "problems: {} (acknowledged data missing in {} blocks)",
                r.counts_line(),
                r.missing_acked
            );
            for p in &r.first {
                println!("{p}");
            }
            if !r.is_clean() {
                let bad: u64 = r.counts.iter().sum();
                return Err(Failure::Bad(format!("{bad} bad blocks")));
            }
            println!("OK");
        }
        Cmd::Walk(args) => {
            let layout = args.layout()?;
            let check = args.check();
            let WalkArgs {
                log,
                replay,
                cow,
                state,
                snapshot_mark,
                start_mark,
                end_mark,
                flush_prefix,
                max_cuts,
                seed,
                marker_byte,
                prefix,
                discard,
                ..
            } = *args;
            let journal = Journal::load(&state)?;
            let log = Log::open(&log)?;
            let replay = Device::open(&replay, true)?;
            let opts = walk::Options {
                layout,
                snapshot_mark,
                cow,
                check,
                start_mark,
                end_mark,
                flush_prefix,
                max_cuts,
                seed,
                marker: marker_byte,
                prefix,
                discard: discard.mode(),
            };
            let mut out = std::io::stdout();
            let s = walk::walk(&log, &replay, &journal, &opts, &mut out)?;
            println!(
                "walk: {} cut points at entries {}..={} of {}, {} after the snapshot mark",
                s.cuts, s.span.0, s.span.1, s.entries, s.with_snapshot
            );
            let failed: Vec<String> = walk::Failure::ALL
                .iter()
                .zip(s.failed)
                .map(|(f, n)| format!("{}={n}", f.name()))
                .collect();
            println!("walk: failing cut points: {}", failed.join(" "));
            let times: Vec<String> = walk::Phase::ALL
                .iter()
                .zip(s.times)
                .map(|(p, t)| format!("{} {:.1} s", p.name(), t.as_secs_f64()))
                .collect();
            println!("walk: time: {}", times.join(", "));
            println!(
                "walk: {} devices still open once the devices above them were removed \
                 (longest wait {} ms{})",
                s.late.count,
                s.late.longest.as_millis(),
                s.late
                    .first
                    .as_deref()
                    .map_or(String::new(), |f| format!("; the first: {f}"))
            );
            if !s.is_clean() {
                return Err(Failure::Bad("some cut points failed".into()));
            }
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Bad(m)) => {
            println!("FAILED: {m}");
            ExitCode::from(1)
        }
        Err(Failure::Usage(m)) => {
            eprintln!("orion-crash: {m}");
            ExitCode::from(2)
        }
        Err(Failure::Io(m)) => {
            eprintln!("orion-crash: {m}");
            ExitCode::from(3)
        }
    }
}
