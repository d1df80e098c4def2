// SPDX-License-Identifier: GPL-2.0 OR MIT

//! The walk: replays a log forward, once, and at each cut point brings a thin pool back up
//! from the device as a power cut there would have left it, and checks it.
//!
//! At a cut point the replay device holds the pool's disk (metadata area, then data area).
//! A transient dm-snapshot of it (COW on a scratch device) takes whatever the new pool
//! writes, so the walk can go on from the untouched replay. Over the snapshot: two linear
//! devices (metadata, data); the metadata must pass the check command (`thin_check`);
//! then a pool and its thin device are loaded on them and [`verify`] reads
//! the thin device against the journal, at the last `flush-N` mark before the cut. After
//! the snapshot mark, the thin snapshot taken at that flush must hold exactly that flush's
//! data. Everything is torn down before the next stretch is replayed.
//!
//! One process does all of it with device-mapper ioctls: under QEMU's TCG every process
//! start costs about 0.05–0.1 s, and a walk of 500 cut points with `dmsetup` calls spent
//! over a second at each. Removing a device is slow too (removing a thin device waits for an
//! RCU grace period, about 0.1 s there), so a cut point's devices are removed in the
//! background, one level of the stack at a time with the devices of a level at once, while
//! the next cut point is replayed and brought up on the other set of names and the other
//! exception store (two snapshots sharing one would take over each other's exceptions).

use crate::cuts;
use crate::dev::Device;
use crate::error::{Error, Result};
use crate::invalid;
use crate::journal::Journal;
use crate::log::{Header, Log};
use crate::replay::{Discard, Replayer};
use crate::rng::Rng;
use crate::verify::{self, Kind, Report};
use orion_lvm::dm::ioctl::{make_node, Control, DevId, DmError, Target};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread::ScopedJoinHandle;
use std::time::{Duration, Instant};

/// The thin snapshot taken during the workload.
#[derive(Clone, Debug)]
pub struct Snapshot {
    /// Its thin device id.
    pub id: u64,
    /// The mark logged once it was created, right after its flush's mark.
    pub mark: String,
}

/// How the pool sits on the disk and what to load on it.
#[derive(Clone, Debug)]
pub struct Layout {
    /// The metadata area: the first sectors of the disk.
    pub meta_sectors: u64,
    /// The data area, right after it.
    pub data_sectors: u64,
    /// The pool's block size in sectors.
    pub block_size: u64,
    /// The pool's target type (`thin-pool`, `orion-thin-pool`).
    pub pool_target: String,
    /// The thin device's target type.
    pub thin_target: String,
    /// The thin device written by the workload.
    pub thin_id: u64,
    /// Its length in sectors.
    pub thin_sectors: u64,
    /// The thin snapshot, if one was taken.
    pub snapshot: Option<Snapshot>,
}

/// What the walk does.
#[derive(Clone, Debug)]
pub struct Options {
    /// The layout.
    pub layout: Layout,
    /// The snapshots' exception stores (their content is not kept); with two, cut points
    /// alternate between them and each one's devices are removed while the next is checked.
    pub cow: Vec<PathBuf>,
    /// The metadata check: a program and arguments; the metadata device comes last.
    pub check: Vec<String>,
    /// The mark the walk starts at (the first cut point).
    pub start_mark: String,
    /// The prefix of the marks logged after each flush (`flush-` for `flush-N`).
    pub flush_prefix: String,
    /// The most cut points.
    pub max_cuts: usize,
    /// The seed of the random choice of cut points.
    pub seed: u64,
    /// The byte the disk's data area held before the test.
    pub marker: u8,
    /// The prefix of the device-mapper names the walk uses.
    pub prefix: String,
    /// How discards are replayed.
    pub discard: Discard,
}

/// The ways a cut point can fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// The metadata check failed.
    Check,
    /// The pool or the thin device did not load.
    Activate,
    /// Acknowledged data is missing (a block holds zeroes, an older generation or anything
    /// else than what flush N acknowledged or a later write).
    Lost,
    /// Data that was never written there is read (marker, foreign, misplaced, torn, a
    /// generation from after the cut).
    Foreign,
    /// The thin snapshot does not hold its flush's data, or does not load.
    Snapshot,
}

impl Failure {
    /// Every kind, in report order.
    pub const ALL: [Failure; 5] = [
        Failure::Check,
        Failure::Activate,
        Failure::Lost,
        Failure::Foreign,
        Failure::Snapshot,
    ];

    /// Its name in the output.
    pub fn name(self) -> &'static str {
        match self {
            Failure::Check => "check",
            Failure::Activate => "activate",
            Failure::Lost => "lost",
            Failure::Foreign => "foreign",
            Failure::Snapshot => "snapshot",
        }
    }
}

/// What a walk found.
#[derive(Debug, Default)]
pub struct Summary {
    /// Entries in the log.
    pub entries: u64,
    /// Cut points checked.
    pub cuts: u64,
    /// The first and last of them.
    pub span: (u64, u64),
    /// Cut points after the snapshot mark.
    pub with_snapshot: u64,
    /// Failing cut points of each kind, in [`Failure::ALL`] order.
    pub failed: [u64; 5],
    /// Time spent in each [`Phase`].
    pub times: [Duration; 6],
}

/// What a walk spends its time on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Replaying the log.
    Replay,
    /// Making the snapshot of the disk and the metadata and data devices on it.
    Disk,
    /// Checking the metadata.
    Check,
    /// Loading the pool and the thin devices.
    Load,
    /// Verifying the thin devices.
    Verify,
    /// Waiting for the removal of the devices (which runs in the background).
    Teardown,
}

impl Phase {
    /// Every phase, in [`Summary::times`] order.
    pub const ALL: [Phase; 6] = [
        Phase::Replay,
        Phase::Disk,
        Phase::Check,
        Phase::Load,
        Phase::Verify,
        Phase::Teardown,
    ];

    /// Its name in the output.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Replay => "replay",
            Phase::Disk => "disk stack",
            Phase::Check => "metadata check",
            Phase::Load => "pool and thin load",
            Phase::Verify => "verify",
            Phase::Teardown => "waiting for teardown",
        }
    }
}

impl Summary {
    fn add(&mut self, phase: Phase, since: Instant) {
        let i = Phase::ALL.iter().position(|&p| p == phase).unwrap_or(0);
        self.times[i] += since.elapsed();
    }

    /// No cut point failed.
    pub fn is_clean(&self) -> bool {
        self.failed.iter().all(|&n| n == 0)
    }
}

fn dm_error(e: DmError) -> Error {
    Error::Io {
        what: format!("{} on {}", e.call, e.device),
        source: e.err,
    }
}

/// Device-mapper devices made for one cut point, by level: a level's devices sit on the
/// previous level's.
#[derive(Default)]
struct Stack {
    levels: Vec<Vec<String>>,
}

impl Stack {
    /// Creates and resumes device `name` at `level` with one target; its `major:minor`.
    fn add(
        &mut self,
        ctl: &Control,
        level: usize,
        name: &str,
        target: (u64, &str, String),
    ) -> std::result::Result<String, DmError> {
        let (len, kind, params) = target;
        let id = DevId::Name(name.to_owned());
        ctl.create(name, "")?;
        if self.levels.len() <= level {
            self.levels.resize(level + 1, Vec::new());
        }
        self.levels[level].push(name.to_owned());
        let t = Target {
            start: 0,
            len,
            kind: kind.to_owned(),
            params,
        };
        ctl.load(&id, &[t], false)?;
        let info = ctl.resume(&id)?;
        make_node(&node(name), info.major, info.minor).map_err(|err| DmError {
            call: "mknod",
            device: name.to_owned(),
            err,
        })?;
        Ok(format!("{}:{}", info.major, info.minor))
    }

    /// Removes every device, the top level first, the devices of a level at once.
    fn teardown(self, ctl: &Control) -> Result<()> {
        for level in self.levels.into_iter().rev() {
            std::thread::scope(|s| {
                let removals: Vec<_> = level
                    .iter()
                    .map(|name| {
                        s.spawn(move || {
                            let _ = std::fs::remove_file(node(name));
                            ctl.remove(&DevId::Name(name.clone()))
                        })
                    })
                    .collect();
                for r in removals {
                    r.join()
                        .map_err(|_| invalid!("a device removal panicked"))?
                        .map_err(dm_error)?;
                }
                Ok(())
            })?;
        }
        Ok(())
    }
}

fn node(name: &str) -> PathBuf {
    PathBuf::from("/dev/mapper").join(name)
}

/// The state of the log at a cut point.
#[derive(Clone, Copy, Debug)]
struct At {
    entry: u64,
    flush: u64,
    snapshot: Option<u64>,
}

struct Walker<'a> {
    opts: &'a Options,
    journal: &'a Journal,
    replay_path: String,
    summary: Summary,
    out: &'a mut dyn Write,
}

fn one_line(s: &str, max: usize) -> String {
    let joined = s
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" | ");
    if joined.chars().count() > max {
        joined.chars().take(max).collect::<String>() + " ..."
    } else {
        joined
    }
}

fn problems(r: &Report) -> String {
    let counts: Vec<String> = Kind::ALL
        .iter()
        .zip(r.counts)
        .filter(|(_, c)| *c > 0)
        .map(|(k, c)| format!("{}={c}", k.name()))
        .collect();
    let first: Vec<String> = r.first.iter().map(|p| p.to_string()).collect();
    format!(
        "{} (acknowledged data missing in {} blocks); {}",
        counts.join(" "),
        r.missing_acked,
        first.join("; ")
    )
}

impl Walker<'_> {
    fn fail(&mut self, f: Failure, at: At, what: &str) -> Result<()> {
        self.summary.failed[Failure::ALL.iter().position(|&k| k == f).unwrap_or(0)] += 1;
        writeln!(
            self.out,
            "FAIL {}: cut {} (flush-{}): {what}",
            f.name(),
            at.entry,
            at.flush
        )
        .map_err(|source| Error::Io {
            what: "cannot write the report".into(),
            source,
        })
    }

    fn verify(&mut self, name: &str, flush: u64, exact: bool) -> Result<Report> {
        let t = Instant::now();
        let dev = Device::open(&node(name), false)?;
        let opts = verify::Options {
            flush,
            marker: self.opts.marker,
            exact,
            report: 2,
        };
        let r = verify::verify(&dev, self.journal, &opts);
        self.summary.add(Phase::Verify, t);
        r
    }

    /// Brings the pool up at cut point `at` on devices named `prefix`..., over a snapshot
    /// with its exceptions on `cow`, and checks it; the devices to remove.
    fn check_cut(&mut self, ctl: &Control, at: At, prefix: &str, cow: &Path) -> Result<Stack> {
        let l = &self.opts.layout;
        let name = |what: &str| format!("{prefix}{what}");
        let t = Instant::now();
        let mut stack = Stack::default();
        let disk = (
            l.meta_sectors + l.data_sectors,
            "snapshot",
            format!("{} {} N 8", self.replay_path, cow.display()),
        );
        let snap = stack.add(ctl, 0, &name("disk"), disk).map_err(dm_error)?;
        let meta = (l.meta_sectors, "linear", format!("{snap} 0"));
        let meta = stack.add(ctl, 1, &name("meta"), meta).map_err(dm_error)?;
        let data = (
            l.data_sectors,
            "linear",
            format!("{snap} {}", l.meta_sectors),
        );
        let data = stack.add(ctl, 1, &name("data"), data).map_err(dm_error)?;
        self.summary.add(Phase::Disk, t);

        let t = Instant::now();
        let (prog, args) = self
            .opts
            .check
            .split_first()
            .ok_or_else(|| invalid!("no check command"))?;
        let check = Command::new(prog)
            .args(args)
            .arg(node(&name("meta")))
            .output()
            .map_err(|e| invalid!("cannot run {prog}: {e}"))?;
        self.summary.add(Phase::Check, t);
        if !check.status.success() {
            let text = String::from_utf8_lossy(&check.stderr).into_owned()
                + &String::from_utf8_lossy(&check.stdout);
            let what = format!("{prog}: {}: {}", check.status, one_line(&text, 400));
            self.fail(Failure::Check, at, &what)?;
            return Ok(stack);
        }

        let t = Instant::now();
        let pool = (
            l.data_sectors,
            l.pool_target.as_str(),
            format!("{meta} {data} {} 0", l.block_size),
        );
        let loaded = stack.add(ctl, 2, &name("pool"), pool).and_then(|pool| {
            let thin = (
                l.thin_sectors,
                l.thin_target.as_str(),
                format!("{pool} {}", l.thin_id),
            );
            stack.add(ctl, 3, &name("thin"), thin)?;
            Ok(pool)
        });
        self.summary.add(Phase::Load, t);
        let pool = match loaded {
            Ok(pool) => pool,
            Err(e) => {
                self.fail(Failure::Activate, at, &e.to_string())?;
                return Ok(stack);
            }
        };
        let mut fails = Vec::new();
        let r = self.verify(&name("thin"), at.flush, false)?;
        let other: u64 = r.counts[2..].iter().sum();
        if r.missing_acked > 0 {
            fails.push((Failure::Lost, problems(&r)));
        }
        if other > 0 {
            fails.push((Failure::Foreign, problems(&r)));
        }
        if let (Some(s), Some(flush)) = (&l.snapshot, at.snapshot) {
            self.summary.with_snapshot += 1;
            let t = Instant::now();
            let thin = (
                l.thin_sectors,
                l.thin_target.as_str(),
                format!("{pool} {}", s.id),
            );
            let made = stack.add(ctl, 3, &name("snap"), thin);
            self.summary.add(Phase::Load, t);
            match made {
                Err(e) => {
                    fails.push((Failure::Snapshot, format!("snapshot of flush-{flush}: {e}")))
                }
                Ok(_) => {
                    let r = self.verify(&name("snap"), flush, true)?;
                    if !r.is_clean() {
                        let what = format!("snapshot of flush-{flush}: {}", problems(&r));
                        fails.push((Failure::Snapshot, what));
                    }
                }
            }
        }
        for (f, what) in fails {
            self.fail(f, at, &what)?;
        }
        Ok(stack)
    }
}

/// Walks `log` onto `replay` (which holds the disk as it was before the log began), checking
/// the pool at each cut point against `journal`; failures are written to `out`. Should the
/// walk itself fail (a device that cannot be made or removed), it leaves its devices behind.
pub fn walk(
    log: &Log,
    replay: &Device,
    journal: &Journal,
    opts: &Options,
    out: &mut dyn Write,
) -> Result<Summary> {
    if opts.cow.is_empty() || opts.cow.len() > 2 {
        return Err(invalid!(
            "one or two exception stores, not {}",
            opts.cow.len()
        ));
    }
    let entries = log.entries().collect::<Result<Vec<_>>>()?;
    let headers: Vec<Header> = entries.iter().map(|e| e.header.clone()).collect();
    let start = entries
        .iter()
        .find(|e| e.header.mark.as_deref() == Some(opts.start_mark.as_str()))
        .ok_or_else(|| invalid!("the log has no mark {:?}", opts.start_mark))?
        .index;
    let cut_points = cuts::select(&headers, start, opts.max_cuts, &mut Rng::new(opts.seed));
    let ctl = Control::open().map_err(|source| Error::Io {
        what: "cannot open /dev/mapper/control".into(),
        source,
    })?;
    let mut w = Walker {
        opts,
        journal,
        replay_path: replay.path().display().to_string(),
        summary: Summary {
            entries: entries.len() as u64,
            span: (
                cut_points.first().copied().unwrap_or(0),
                cut_points.last().copied().unwrap_or(0),
            ),
            ..Summary::default()
        },
        out,
    };
    let mut replayer = Replayer::new(log, replay, opts.discard);
    let mut next = 0usize;
    let (mut flush, mut snapshot) = (None, None);
    let ctl = &ctl;
    std::thread::scope(|scope| {
        let mut pending: Option<ScopedJoinHandle<'_, Result<()>>> = None;
        let wait = |pending: Option<ScopedJoinHandle<'_, Result<()>>>, s: &mut Summary| {
            let t = Instant::now();
            let r = pending.map_or(Ok(()), |p| {
                p.join().map_err(|_| invalid!("the teardown panicked"))?
            });
            s.add(Phase::Teardown, t);
            r
        };
        for (k, &cut) in cut_points.iter().enumerate() {
            let t = Instant::now();
            while next as u64 <= cut {
                let e = &entries[next];
                replayer.apply(e)?;
                if let Some(m) = &e.header.mark {
                    let n = m.strip_prefix(opts.flush_prefix.as_str());
                    if let Some(n) = n.and_then(|n| n.parse().ok()) {
                        flush = Some(n);
                    }
                    if opts.layout.snapshot.as_ref().is_some_and(|s| &s.mark == m) {
                        snapshot = flush;
                    }
                }
                next += 1;
            }
            replayer.finish()?;
            w.summary.add(Phase::Replay, t);
            let flush = flush.ok_or_else(|| {
                invalid!("no {}N mark at or before entry {cut}", opts.flush_prefix)
            })?;
            let at = At {
                entry: cut,
                flush,
                snapshot,
            };
            let side = k % opts.cow.len();
            let prefix = format!("{}{}", opts.prefix, ["a-", "b-"][side]);
            if opts.cow.len() == 1 {
                wait(pending.take(), &mut w.summary)?;
            }
            let stack = w.check_cut(ctl, at, &prefix, &opts.cow[side])?;
            w.summary.cuts += 1;
            // The previous cut point's devices (the other side) must be gone before the
            // next cut point uses their names and exception store.
            wait(pending.take(), &mut w.summary)?;
            pending = Some(scope.spawn(move || stack.teardown(ctl)));
        }
        wait(pending.take(), &mut w.summary)
    })?;
    Ok(w.summary)
}
