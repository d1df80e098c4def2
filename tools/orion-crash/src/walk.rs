// SPDX-License-Identifier: GPL-2.0 OR MIT

//! The walk: replays a log forward, once, and at each cut point brings the stack under test
//! back up from the device as a power cut there would have left it, and checks it.
//!
//! At a cut point the replay device holds the disk: its areas, one after the other. A
//! transient dm-snapshot of it (COW on a scratch device) takes whatever the stack under
//! test writes, so the walk can go on from the untouched replay; over the snapshot, a
//! linear device for each area. The stack is one of three kinds ([`Layout`]):
//!
//! - a thin pool: the areas are its metadata and data devices. The metadata must pass the
//!   check command (`thin_check`); a pool and its thin device are loaded on them, and
//!   [`verify`] reads the thin device. After the snapshot mark, the thin snapshot taken at
//!   that flush is loaded too.
//! - a device-mapper snapshot: the areas are the origin (written through `snapshot-origin`)
//!   and the COW device of a persistent snapshot of it. The origin device is read as it is;
//!   after the snapshot mark, the snapshot (`snapshot ORIGIN COW P CHUNK`) is loaded on the
//!   two and must hold the origin as it was at that flush. There is no metadata check
//!   unless one is given (it reads the COW device).
//! - a mirror (dm-raid1): the areas are its disk log and its legs. The mirror is loaded on
//!   them with the disk log, trusting it (the default `sync`), and must report every
//!   region in sync within a time limit: regions the log holds dirty are copied from the
//!   first leg. Then every leg, and the mirror, is verified, and each leg must hold the
//!   first leg's bytes exactly. There is no metadata check unless one is given (it reads
//!   the log).
//!
//! The device the workload wrote (and a mirror's legs) is verified against the journal at
//! the last `flush-N` mark before the cut (acknowledged data present, nothing foreign); the
//! snapshot exactly at its flush. Everything is torn down before the next stretch is
//! replayed.
//!
//! One process does all of it with device-mapper ioctls: under QEMU's TCG every process
//! start costs about 0.05–0.1 s, and a walk of 500 cut points with `dmsetup` calls spent
//! over a second at each. Removing a device is slow too (removing a thin device waits for an
//! RCU grace period, about 0.1 s there), so a cut point's devices are removed in the
//! background, one level of the stack at a time with the devices of a level at once, while
//! the next cut point is replayed and brought up on the other set of names and the other
//! exception store (two snapshots sharing one would take over each other's exceptions).
//! A device still open once the devices above it are gone (a target that closes what it
//! opened after its destructor returned, or never) is waited for a while and counted
//! ([`LateReleases`]).

use crate::cuts;
use crate::dev::Device;
use crate::error::{Error, Result};
use crate::invalid;
use crate::journal::Journal;
use crate::log::{Header, Log};
use crate::replay::{Discard, Replayer};
use crate::rng::Rng;
use crate::stamp::BLOCK;
use crate::verify::{self, Difference, Kind, Report};
use orion_lvm::dm::ioctl::{make_node, Control, DevId, DmError, Target};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread::ScopedJoinHandle;
use std::time::{Duration, Instant};

/// A thin pool on the disk: its metadata area, then its data area.
#[derive(Clone, Debug)]
pub struct ThinLayout {
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
    /// The thin device id of the snapshot taken at the snapshot mark, if one was.
    pub snapshot_id: Option<u64>,
}

/// A device-mapper snapshot on the disk: the origin area, then the COW area.
#[derive(Clone, Debug)]
pub struct SnapshotLayout {
    /// The origin area (written by the workload through `snapshot-origin`): the first
    /// sectors of the disk.
    pub origin_sectors: u64,
    /// The COW area right after it: the snapshot's persistent exception store.
    pub cow_sectors: u64,
    /// The snapshot's chunk size in sectors.
    pub chunk: u64,
    /// The snapshot's target type (`snapshot`, `orion-snapshot`).
    pub target: String,
}

/// A mirror on the disk: its disk log area, then each leg's area.
#[derive(Clone, Debug)]
pub struct MirrorLayout {
    /// The disk log's area: the first sectors of the disk.
    pub log_sectors: u64,
    /// Each leg's area, one after the other after the log's; the mirror's length.
    pub leg_sectors: u64,
    /// How many legs.
    pub legs: usize,
    /// The region size in sectors.
    pub region_size: u64,
    /// The mirror's target type (`mirror`, `orion-mirror`).
    pub target: String,
    /// How long the mirror may take to report every region in sync once loaded.
    pub resync_timeout: Duration,
}

/// The stack on the disk, and what to load on it at a cut point.
#[derive(Clone, Debug)]
pub enum Layout {
    /// A thin pool and its thin device (and a thin snapshot of it).
    Thin(ThinLayout),
    /// An origin and a persistent device-mapper snapshot of it.
    Snapshot(SnapshotLayout),
    /// A mirror with a disk log.
    Mirror(MirrorLayout),
}

/// A target to load: length in sectors, type and parameters.
type Table<'a> = (u64, &'a str, String);

impl ThinLayout {
    /// The pool over the metadata and data devices `meta` and `data` (`major:minor`).
    fn pool(&self, meta: &str, data: &str) -> Table<'_> {
        let params = format!("{meta} {data} {} 0", self.block_size);
        (self.data_sectors, &self.pool_target, params)
    }

    /// Thin device `id` of pool `pool`.
    fn thin(&self, pool: &str, id: u64) -> Table<'_> {
        (self.thin_sectors, &self.thin_target, format!("{pool} {id}"))
    }
}

impl SnapshotLayout {
    /// The persistent snapshot of `origin` with its exceptions on `cow` (`major:minor`).
    fn snapshot(&self, origin: &str, cow: &str) -> Table<'_> {
        let params = format!("{origin} {cow} P {}", self.chunk);
        (self.origin_sectors, &self.target, params)
    }
}

impl MirrorLayout {
    /// The name of leg `i`'s area.
    fn leg(i: usize) -> String {
        format!("leg{i}")
    }

    /// The mirror with its disk log on `log` and its legs on `legs` (`major:minor`), in
    /// sync where the log says so.
    fn mirror(&self, log: &str, legs: &[String]) -> Table<'_> {
        let legs: String = legs.iter().map(|l| format!(" {l} 0")).collect();
        let params = format!("disk 2 {log} {} {}{legs}", self.region_size, self.legs);
        (self.leg_sectors, &self.target, params)
    }
}

/// What a mirror's status line says of its resync.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MirrorStatus {
    /// Regions in sync.
    pub in_sync: u64,
    /// Regions.
    pub regions: u64,
    /// A character a leg: `A` alive, else the kind of error it had (`D` write, `S` sync,
    /// `R` read, `F` flush, `U` unknown).
    pub health: String,
    /// The log's status arguments (`disk DEV A`, `core`): a disk log's last is its health.
    pub log: Vec<String>,
}

impl MirrorStatus {
    /// Parses the status line of a `mirror` target: `<#legs> <dev>... <in sync>/<regions>
    /// 1 <health> <#log args> <log args>...`.
    pub fn parse(status: &str) -> Option<MirrorStatus> {
        let w: Vec<&str> = status.split_whitespace().collect();
        let legs: usize = w.first()?.parse().ok()?;
        let (in_sync, regions) = w.get(1 + legs)?.split_once('/')?;
        let health = w.get(3 + legs).filter(|h| h.len() == legs)?;
        let log_args: usize = w.get(4 + legs)?.parse().ok()?;
        let log = w.get(5 + legs..5 + legs + log_args)?;
        if *w.get(2 + legs)? != "1" || w.len() != 5 + legs + log_args {
            return None;
        }
        Some(MirrorStatus {
            in_sync: in_sync.parse().ok()?,
            regions: regions.parse().ok()?,
            health: (*health).to_owned(),
            log: log.iter().map(|a| (*a).to_owned()).collect(),
        })
    }

    /// Every leg is alive, and so is the log.
    pub fn healthy(&self) -> bool {
        let log_failed = self.log.first().map(String::as_str) == Some("disk")
            && self.log.last().map(String::as_str) != Some("A");
        self.health.chars().all(|c| c == 'A') && !log_failed
    }

    /// Every region is in sync.
    pub fn synced(&self) -> bool {
        self.in_sync == self.regions
    }
}

impl Layout {
    /// The disk's areas in order: the names of the linear devices over them, and their
    /// lengths in sectors.
    pub fn areas(&self) -> Vec<(String, u64)> {
        let area = |name: &str, len| (name.to_owned(), len);
        match self {
            Layout::Thin(l) => vec![area("meta", l.meta_sectors), area("data", l.data_sectors)],
            Layout::Snapshot(l) => {
                vec![area("origin", l.origin_sectors), area("cow", l.cow_sectors)]
            }
            Layout::Mirror(l) => std::iter::once(area("log", l.log_sectors))
                .chain((0..l.legs).map(|i| (MirrorLayout::leg(i), l.leg_sectors)))
                .collect(),
        }
    }

    /// The area the metadata check reads: the pool's metadata, the exception store, the
    /// mirror's log.
    pub fn checked_area(&self) -> &'static str {
        match self {
            Layout::Thin(_) => "meta",
            Layout::Snapshot(_) => "cow",
            Layout::Mirror(_) => "log",
        }
    }

    /// How a snapshot that does not load fails the cut point: a thin snapshot is one more
    /// device of a pool that loaded, a device-mapper snapshot is the stack under test (a
    /// mirror has none).
    pub fn snapshot_load_failure(&self) -> Failure {
        match self {
            Layout::Thin(_) => Failure::Snapshot,
            Layout::Snapshot(_) | Layout::Mirror(_) => Failure::Activate,
        }
    }
}

/// What the walk does.
#[derive(Clone, Debug)]
pub struct Options {
    /// The layout.
    pub layout: Layout,
    /// The mark logged once the snapshot was taken, right after its flush's mark.
    pub snapshot_mark: String,
    /// The snapshots' exception stores (their content is not kept); with two, cut points
    /// alternate between them and each one's devices are removed while the next is checked.
    pub cow: Vec<PathBuf>,
    /// The metadata check: a program and arguments, the checked area's device last
    /// ([`Layout::checked_area`]); none when empty.
    pub check: Vec<String>,
    /// The mark the walk starts at (the first cut point).
    pub start_mark: String,
    /// The mark it ends at (the last cut point; the first of that name at or after the start),
    /// if not at the log's end.
    pub end_mark: Option<String>,
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
    /// The stack under test did not load: the pool or the thin device, the device-mapper
    /// snapshot, or the mirror.
    Activate,
    /// The mirror did not report every region in sync in time, or reported a failed leg.
    Resync,
    /// Acknowledged data is missing (a block holds zeroes, an older generation or anything
    /// else than what flush N acknowledged or a later write).
    Lost,
    /// Data that was never written there is read (marker, foreign, misplaced, torn, a
    /// generation from after the cut).
    Foreign,
    /// A mirror's legs differ once it reports every region in sync.
    Diverged,
    /// The snapshot does not hold its flush's data exactly, cannot be read, or (a thin
    /// snapshot) does not load.
    Snapshot,
}

impl Failure {
    /// Every kind, in report order.
    pub const ALL: [Failure; 7] = [
        Failure::Check,
        Failure::Activate,
        Failure::Resync,
        Failure::Lost,
        Failure::Foreign,
        Failure::Diverged,
        Failure::Snapshot,
    ];

    /// Its name in the output.
    pub fn name(self) -> &'static str {
        match self {
            Failure::Check => "check",
            Failure::Activate => "activate",
            Failure::Resync => "resync",
            Failure::Lost => "lost",
            Failure::Foreign => "foreign",
            Failure::Diverged => "diverged",
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
    /// Cut points after the snapshot mark, where the snapshot was checked.
    pub with_snapshot: u64,
    /// Failing cut points of each kind, in [`Failure::ALL`] order.
    pub failed: [u64; Failure::ALL.len()],
    /// Time spent in each [`Phase`].
    pub times: [Duration; Phase::ALL.len()],
    /// Devices that were still open once the devices above them were removed.
    pub late: LateReleases,
}

/// What a walk spends its time on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Replaying the log.
    Replay,
    /// Making the snapshot of the disk and the devices of its areas.
    Disk,
    /// Checking the metadata.
    Check,
    /// Loading the stack under test.
    Load,
    /// Waiting for a mirror's resync.
    Resync,
    /// Verifying the written device and the snapshot (or the mirror's legs).
    Verify,
    /// Waiting for the removal of the devices (which runs in the background).
    Teardown,
}

impl Phase {
    /// Every phase, in [`Summary::times`] order.
    pub const ALL: [Phase; 7] = [
        Phase::Replay,
        Phase::Disk,
        Phase::Check,
        Phase::Load,
        Phase::Resync,
        Phase::Verify,
        Phase::Teardown,
    ];

    /// Its name in the output.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Replay => "replay",
            Phase::Disk => "disk stack",
            Phase::Check => "metadata check",
            Phase::Load => "target load",
            Phase::Resync => "resync",
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

/// How long the removal of a device that is still open once the devices above it are gone
/// waits for it to be closed before the walk fails.
const RELEASE_WAIT: Duration = Duration::from_secs(10);

/// Devices still open (`EBUSY` on removal) once the devices above them were removed: a
/// target under test that closes the devices it opened after its destructor returned.
#[derive(Clone, Debug, Default)]
pub struct LateReleases {
    /// How many.
    pub count: u64,
    /// The longest wait for one to be closed.
    pub longest: Duration,
    /// The first of them: its name and cut point.
    pub first: Option<String>,
}

impl LateReleases {
    fn add(&mut self, other: LateReleases) {
        self.count += other.count;
        self.longest = self.longest.max(other.longest);
        if self.first.is_none() {
            self.first = other.first;
        }
    }
}

/// Device-mapper devices made for one cut point, by level: a level's devices sit on the
/// previous level's.
#[derive(Default)]
struct Stack {
    /// The cut point.
    cut: u64,
    levels: Vec<Vec<String>>,
}

/// Removes device `name`, waiting up to [`RELEASE_WAIT`] while it is busy; how long it
/// waited, if it had to.
fn remove(ctl: &Control, name: &str) -> std::result::Result<Option<Duration>, DmError> {
    let _ = std::fs::remove_file(node(name));
    let id = DevId::Name(name.to_owned());
    let t = Instant::now();
    let mut waited = false;
    loop {
        match ctl.remove(&id) {
            Ok(()) => return Ok(waited.then(|| t.elapsed())),
            Err(e) if e.err.raw_os_error() == Some(libc::EBUSY) && t.elapsed() < RELEASE_WAIT => {
                waited = true;
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(e) => return Err(e),
        }
    }
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

    /// Removes every device, the top level first, the devices of a level at once; those
    /// that were still open once the level above was gone.
    fn teardown(self, ctl: &Control) -> Result<LateReleases> {
        let mut late = LateReleases::default();
        for level in self.levels.into_iter().rev() {
            std::thread::scope(|s| {
                let removals: Vec<_> = level
                    .iter()
                    .map(|name| (name, s.spawn(move || remove(ctl, name))))
                    .collect();
                for (name, r) in removals {
                    let waited = r
                        .join()
                        .map_err(|_| invalid!("a device removal panicked"))?
                        .map_err(dm_error)?;
                    if let Some(t) = waited {
                        late.add(LateReleases {
                            count: 1,
                            longest: t,
                            first: Some(format!("{name} at cut {}", self.cut)),
                        });
                    }
                }
                Ok::<_, Error>(())
            })?;
        }
        Ok(late)
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

/// The marks replayed so far: the last flush's number and, once the snapshot mark was
/// replayed, the flush it came after.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Marks {
    flush: Option<u64>,
    snapshot: Option<u64>,
}

impl Marks {
    /// Takes mark `m` into account: `flush_prefix` and a number mark a flush,
    /// `snapshot_mark` the snapshot.
    fn see(&mut self, m: &str, flush_prefix: &str, snapshot_mark: &str) {
        let n = m.strip_prefix(flush_prefix);
        if let Some(n) = n.and_then(|n| n.parse().ok()) {
            self.flush = Some(n);
        }
        if m == snapshot_mark {
            self.snapshot = self.flush;
        }
    }
}

/// The stack under test, loaded at a cut point.
struct Loaded<'a> {
    /// The device the workload wrote.
    written: String,
    /// It is a mirror: how long it may take to report every region in sync, and its legs'
    /// areas, which must then hold what the workload wrote and the first leg's bytes.
    mirror: Option<(Duration, Vec<String>)>,
    /// The snapshot of it, if there is one: its level in the stack and its table.
    snapshot: Option<(usize, Table<'a>)>,
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

impl<'a> Walker<'a> {
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

    /// Runs the metadata check, if there is one, on device `name`; whether it passed.
    fn check_metadata(&mut self, at: At, name: &str) -> Result<bool> {
        let Some((prog, args)) = self.opts.check.split_first() else {
            return Ok(true);
        };
        let t = Instant::now();
        let check = Command::new(prog)
            .args(args)
            .arg(node(name))
            .output()
            .map_err(|e| invalid!("cannot run {prog}: {e}"))?;
        self.summary.add(Phase::Check, t);
        if check.status.success() {
            return Ok(true);
        }
        let text = String::from_utf8_lossy(&check.stderr).into_owned()
            + &String::from_utf8_lossy(&check.stdout);
        let what = format!("{prog}: {}: {}", check.status, one_line(&text, 400));
        self.fail(Failure::Check, at, &what)?;
        Ok(false)
    }

    /// Loads the stack under test on the areas' devices `areas` (`major:minor`), naming
    /// its devices with `name`.
    fn load(
        &self,
        ctl: &Control,
        stack: &mut Stack,
        name: &dyn Fn(&str) -> String,
        areas: &[String],
    ) -> std::result::Result<Loaded<'a>, DmError> {
        let opts: &'a Options = self.opts;
        match &opts.layout {
            Layout::Thin(l) => {
                let pool = stack.add(ctl, 2, &name("pool"), l.pool(&areas[0], &areas[1]))?;
                stack.add(ctl, 3, &name("thin"), l.thin(&pool, l.thin_id))?;
                Ok(Loaded {
                    written: name("thin"),
                    mirror: None,
                    snapshot: l.snapshot_id.map(|id| (3, l.thin(&pool, id))),
                })
            }
            // The origin area is what the workload wrote through snapshot-origin, which
            // passes its I/O straight down; only the snapshot needs loading.
            Layout::Snapshot(l) => Ok(Loaded {
                written: name("origin"),
                mirror: None,
                snapshot: Some((2, l.snapshot(&areas[0], &areas[1]))),
            }),
            Layout::Mirror(l) => {
                stack.add(ctl, 2, &name("mirror"), l.mirror(&areas[0], &areas[1..]))?;
                Ok(Loaded {
                    written: name("mirror"),
                    mirror: Some((
                        l.resync_timeout,
                        (0..l.legs).map(MirrorLayout::leg).collect(),
                    )),
                    snapshot: None,
                })
            }
        }
    }

    /// Waits until mirror `name` reports every region in sync, for `limit` at most; what
    /// went wrong if it did not, or reported a failed leg or log.
    fn resync(&mut self, ctl: &Control, name: &str, limit: Duration) -> Result<Option<String>> {
        let t = Instant::now();
        let id = DevId::Name(name.to_owned());
        let mut pause = Duration::from_millis(1);
        let outcome = loop {
            let status = ctl.status(&id).map_err(dm_error)?;
            let line = status.first().map_or("", |t| t.params.as_str());
            match MirrorStatus::parse(line) {
                None => break Some(format!("unreadable mirror status {line:?}")),
                Some(s) if !s.healthy() => break Some(format!("a leg or the log failed: {line}")),
                Some(s) if s.synced() => break None,
                Some(s) if t.elapsed() >= limit => {
                    break Some(format!(
                        "{} of {} regions in sync after {:.1} s: {line}",
                        s.in_sync,
                        s.regions,
                        t.elapsed().as_secs_f64()
                    ))
                }
                Some(_) => {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(20));
                }
            }
        };
        self.summary.add(Phase::Resync, t);
        Ok(outcome)
    }

    /// Compares the device of each area in `legs` (named with `name`) with the first's;
    /// what differs.
    fn diverged(&mut self, legs: &[String], name: &dyn Fn(&str) -> String) -> Result<Vec<String>> {
        let t = Instant::now();
        let mut found = Vec::new();
        if let Some((first, rest)) = legs.split_first() {
            let a = Device::open(&node(&name(first)), false)?;
            for leg in rest {
                let b = Device::open(&node(&name(leg)), false)?;
                if let Difference {
                    blocks: n @ 1..,
                    first: Some(block),
                } = verify::compare(&a, &b)?
                {
                    found.push(format!(
                        "{leg} differs from {first} in {n} blocks, the first block {block} \
                         (byte {})",
                        block * BLOCK as u64
                    ));
                }
            }
        }
        self.summary.add(Phase::Verify, t);
        Ok(found)
    }

    /// Brings the stack up at cut point `at` on devices named `prefix`..., over a snapshot
    /// of the disk with its exceptions on `cow`, and checks it; the devices to remove.
    fn check_cut(&mut self, ctl: &Control, at: At, prefix: &str, cow: &Path) -> Result<Stack> {
        let layout = &self.opts.layout;
        let name = |what: &str| format!("{prefix}{what}");
        let t = Instant::now();
        let mut stack = Stack {
            cut: at.entry,
            ..Stack::default()
        };
        let disk = (
            layout.areas().iter().map(|&(_, len)| len).sum(),
            "snapshot",
            format!("{} {} N 8", self.replay_path, cow.display()),
        );
        let disk = stack.add(ctl, 0, &name("disk"), disk).map_err(dm_error)?;
        let mut areas = Vec::new();
        let mut start = 0;
        for (what, len) in layout.areas() {
            let table = (len, "linear", format!("{disk} {start}"));
            areas.push(stack.add(ctl, 1, &name(&what), table).map_err(dm_error)?);
            start += len;
        }
        self.summary.add(Phase::Disk, t);

        if !self.check_metadata(at, &name(layout.checked_area()))? {
            return Ok(stack);
        }

        let t = Instant::now();
        let loaded = self.load(ctl, &mut stack, &name, &areas);
        self.summary.add(Phase::Load, t);
        let loaded = match loaded {
            Ok(loaded) => loaded,
            Err(e) => {
                self.fail(Failure::Activate, at, &e.to_string())?;
                return Ok(stack);
            }
        };
        let mut fails = Vec::new();
        // The devices to verify: the one the workload wrote and, once a mirror is in sync,
        // its legs, each named in the report.
        let mut verified = vec![(None, loaded.written.clone())];
        let mut legs: &[String] = &[];
        if let Some((limit, leg_areas)) = &loaded.mirror {
            let area = loaded.written.strip_prefix(prefix).map(str::to_owned);
            verified[0].0 = area;
            match self.resync(ctl, &loaded.written, *limit)? {
                Some(what) => fails.push((Failure::Resync, what)),
                None => legs = leg_areas,
            }
        }
        verified.extend(legs.iter().map(|l| (Some(l.clone()), name(l))));
        let (mut lost, mut other) = (Vec::new(), Vec::new());
        for (area, dev) in &verified {
            let r = self.verify(dev, at.flush, false)?;
            let what = match area {
                Some(area) => format!("{area}: {}", problems(&r)),
                None => problems(&r),
            };
            if r.missing_acked > 0 {
                lost.push(what.clone());
            }
            if r.counts[2..].iter().sum::<u64>() > 0 {
                other.push(what);
            }
        }
        if !lost.is_empty() {
            fails.push((Failure::Lost, lost.join("; ")));
        }
        if !other.is_empty() {
            fails.push((Failure::Foreign, other.join("; ")));
        }
        let diverged = self.diverged(legs, &name)?;
        if !diverged.is_empty() {
            fails.push((Failure::Diverged, diverged.join("; ")));
        }
        if let (Some((level, table)), Some(flush)) = (loaded.snapshot, at.snapshot) {
            self.summary.with_snapshot += 1;
            let t = Instant::now();
            let made = stack.add(ctl, level, &name("snap"), table);
            self.summary.add(Phase::Load, t);
            let what = |s: String| format!("snapshot of flush-{flush}: {s}");
            match made {
                Err(e) => fails.push((layout.snapshot_load_failure(), what(e.to_string()))),
                // A snapshot that loads but cannot be read (one marked invalid) fails the
                // cut point; it does not end the walk.
                Ok(_) => match self.verify(&name("snap"), flush, true) {
                    Err(e) => fails.push((Failure::Snapshot, what(e.to_string()))),
                    Ok(r) if !r.is_clean() => fails.push((Failure::Snapshot, what(problems(&r)))),
                    Ok(_) => {}
                },
            }
        }
        for (f, what) in fails {
            self.fail(f, at, &what)?;
        }
        Ok(stack)
    }
}

/// The stretch of the log the cut points are chosen from: the index of the first `start`
/// mark, and the end (exclusive) after the first `end` mark at or after it, or the log's.
fn span(headers: &[Header], start: &str, end: Option<&str>) -> Result<(usize, usize)> {
    let find = |from: usize, m: &str| {
        headers[from..]
            .iter()
            .position(|h| h.mark.as_deref() == Some(m))
            .map(|i| from + i)
    };
    let first = find(0, start).ok_or_else(|| invalid!("the log has no mark {start:?}"))?;
    let last = match end {
        None => headers.len(),
        Some(m) => {
            let e = find(first, m);
            e.ok_or_else(|| invalid!("the log has no mark {m:?} after the mark {start:?}"))? + 1
        }
    };
    Ok((first, last))
}

/// Walks `log` onto `replay` (which holds the disk as it was before the log began), checking
/// the stack at each cut point against `journal`; failures are written to `out`. Should the
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
    let (start, end) = span(&headers, &opts.start_mark, opts.end_mark.as_deref())?;
    let cut_points = cuts::select(
        &headers[..end],
        start as u64,
        opts.max_cuts,
        &mut Rng::new(opts.seed),
    );
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
    let mut marks = Marks::default();
    let ctl = &ctl;
    std::thread::scope(|scope| {
        let mut pending: Option<ScopedJoinHandle<'_, Result<LateReleases>>> = None;
        let wait = |pending: Option<ScopedJoinHandle<'_, Result<LateReleases>>>,
                    s: &mut Summary| {
            let t = Instant::now();
            let r = pending.map_or(Ok(LateReleases::default()), |p| {
                p.join().map_err(|_| invalid!("the teardown panicked"))?
            });
            s.add(Phase::Teardown, t);
            s.late.add(r?);
            Ok::<_, Error>(())
        };
        for (k, &cut) in cut_points.iter().enumerate() {
            let t = Instant::now();
            while next as u64 <= cut {
                let e = &entries[next];
                replayer.apply(e)?;
                if let Some(m) = &e.header.mark {
                    marks.see(m, &opts.flush_prefix, &opts.snapshot_mark);
                }
                next += 1;
            }
            replayer.finish()?;
            w.summary.add(Phase::Replay, t);
            let flush = marks.flush.ok_or_else(|| {
                invalid!("no {}N mark at or before entry {cut}", opts.flush_prefix)
            })?;
            let at = At {
                entry: cut,
                flush,
                snapshot: marks.snapshot,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn thin(snapshot_id: Option<u64>) -> Layout {
        Layout::Thin(ThinLayout {
            meta_sectors: 8192,
            data_sectors: 131072,
            block_size: 128,
            pool_target: "orion-thin-pool".into(),
            thin_target: "orion-thin".into(),
            thin_id: 0,
            thin_sectors: 16384,
            snapshot_id,
        })
    }

    fn snapshot() -> Layout {
        Layout::Snapshot(SnapshotLayout {
            origin_sectors: 32768,
            cow_sectors: 40960,
            chunk: 8,
            target: "orion-snapshot".into(),
        })
    }

    fn mirror(legs: usize) -> Layout {
        Layout::Mirror(MirrorLayout {
            log_sectors: 2048,
            leg_sectors: 32768,
            legs,
            region_size: 1024,
            target: "orion-mirror".into(),
            resync_timeout: Duration::from_secs(20),
        })
    }

    fn areas(a: &[(&str, u64)]) -> Vec<(String, u64)> {
        a.iter().map(|&(n, l)| (n.to_owned(), l)).collect()
    }

    #[test]
    fn flush_and_snapshot_marks() {
        let mut m = Marks::default();
        let see = |m: &mut Marks, mark| m.see(mark, "flush-", "snap");
        // A snapshot mark before any flush mark names no flush.
        see(&mut m, "snap");
        assert_eq!(m, Marks::default());
        see(&mut m, "flush-0");
        see(&mut m, "other");
        see(&mut m, "flush-x");
        assert_eq!(m.flush, Some(0));
        see(&mut m, "flush-75");
        see(&mut m, "snap");
        see(&mut m, "flush-76");
        assert_eq!(
            m,
            Marks {
                flush: Some(76),
                snapshot: Some(75)
            }
        );
    }

    #[test]
    fn span_between_marks() {
        let h: Vec<Header> = [None, Some("b"), Some("a"), None, Some("b"), Some("a"), None]
            .iter()
            .map(|m| Header {
                mark: m.map(str::to_owned),
                ..Header::default()
            })
            .collect();
        assert_eq!(span(&h, "a", None).unwrap(), (2, 7));
        // The first end mark after the start, not the one before it.
        assert_eq!(span(&h, "a", Some("b")).unwrap(), (2, 5));
        assert_eq!(span(&h, "b", Some("a")).unwrap(), (1, 3));
        assert_eq!(span(&h, "a", Some("a")).unwrap(), (2, 3));
        assert!(span(&h, "c", None).is_err());
        assert!(span(&h, "a", Some("c")).is_err());
    }

    #[test]
    fn thin_stack() {
        let l = thin(Some(1));
        assert_eq!(l.areas(), areas(&[("meta", 8192), ("data", 131072)]));
        assert_eq!(l.checked_area(), "meta");
        assert_eq!(l.snapshot_load_failure(), Failure::Snapshot);
        let Layout::Thin(t) = &l else { unreachable!() };
        assert_eq!(
            t.pool("253:1", "253:2"),
            (131072, "orion-thin-pool", "253:1 253:2 128 0".to_string())
        );
        assert_eq!(
            t.thin("253:3", 1),
            (16384, "orion-thin", "253:3 1".to_string())
        );
    }

    #[test]
    fn snapshot_stack() {
        let l = snapshot();
        assert_eq!(l.areas(), areas(&[("origin", 32768), ("cow", 40960)]));
        assert_eq!(l.checked_area(), "cow");
        // The snapshot is the stack under test: not loading is an activation failure.
        assert_eq!(l.snapshot_load_failure(), Failure::Activate);
        let Layout::Snapshot(s) = &l else {
            unreachable!()
        };
        assert_eq!(
            s.snapshot("253:1", "253:2"),
            (32768, "orion-snapshot", "253:1 253:2 P 8".to_string())
        );
    }

    #[test]
    fn mirror_stack() {
        let l = mirror(3);
        assert_eq!(
            l.areas(),
            areas(&[
                ("log", 2048),
                ("leg0", 32768),
                ("leg1", 32768),
                ("leg2", 32768)
            ])
        );
        assert_eq!(l.checked_area(), "log");
        let Layout::Mirror(m) = &l else {
            unreachable!()
        };
        let legs = ["253:2".to_string(), "253:3".into(), "253:4".into()];
        // A disk log with the default sync: the mirror trusts what the log says is clean.
        assert_eq!(
            m.mirror("253:1", &legs),
            (
                32768,
                "orion-mirror",
                "disk 2 253:1 1024 3 253:2 0 253:3 0 253:4 0".to_string()
            )
        );
        let Layout::Mirror(m) = mirror(2) else {
            unreachable!()
        };
        assert_eq!(
            m.mirror("253:1", &legs[..2]).2,
            "disk 2 253:1 1024 2 253:2 0 253:3 0"
        );
    }

    #[test]
    fn mirror_status() {
        let s = MirrorStatus::parse("2 253:2 253:3 12/32 1 AA 3 disk 253:1 A").unwrap();
        assert_eq!(
            s,
            MirrorStatus {
                in_sync: 12,
                regions: 32,
                health: "AA".into(),
                log: vec!["disk".into(), "253:1".into(), "A".into()],
            }
        );
        assert!(s.healthy() && !s.synced());
        let s = MirrorStatus::parse("3 253:2 253:3 253:4 32/32 1 AAA 1 core").unwrap();
        assert!(s.healthy() && s.synced());
        // A failed leg, a failed disk log (write, flush).
        for bad in [
            "2 253:2 253:3 32/32 1 AD 3 disk 253:1 A",
            "2 253:2 253:3 32/32 1 AA 3 disk 253:1 D",
            "2 253:2 253:3 32/32 1 AA 3 disk 253:1 F",
        ] {
            let s = MirrorStatus::parse(bad).unwrap();
            assert!(s.synced() && !s.healthy(), "{bad}");
        }
        for bad in [
            "",
            "2 253:2 253:3 32/32 1 AAA 3 disk 253:1 A",
            "2 253:2 253:3 32-32 1 AA 3 disk 253:1 A",
            "2 253:2 253:3 32/32 2 AA 3 disk 253:1 A",
            "2 253:2 253:3 32/32 1 AA 3 disk 253:1",
            "2 253:2 253:3 32/32 1 AA 3 disk 253:1 A x",
            "x 253:2 253:3 32/32 1 AA 1 core",
        ] {
            assert_eq!(MirrorStatus::parse(bad), None, "{bad:?}");
        }
    }
}
