// SPDX-License-Identifier: GPL-2.0 OR MIT

//! The volume-manager operations behind the commands. Every change bumps the sequence
//! number and is written to every PV of the VG, text before header (see [`commit`]).

mod alloc;
pub mod autoextend;
mod backup;
pub mod create;
pub mod devices;
pub mod display;
pub mod fullreport;
pub mod listing;
mod lv;
mod merge;
mod mirror;
pub mod mirror_repair;
pub mod monitor;
mod pvmove;
pub mod pvresize;
pub mod rename;
pub mod report;
pub mod resize;
pub mod scan;
mod snapshot;
mod thin;
pub mod thin_repair;
mod vg;

pub use alloc::{
    allocate, allocate_extension, allocate_extension_with, allocate_with, allocate_with_log,
    merge_segments, LvRequest, Policy,
};
pub use backup::{backup, restore};
pub use lv::{lvchange, lvcreate, lvremove, lvresize, vgchange};
pub use merge::{finish_live_merges, lvconvert_merge};
pub use mirror::lvcreate_mirror;
pub use pvmove::{pvmove, MoveEnd, Moved, PvmoveArgs};
pub use snapshot::lvcreate_snapshot;
pub use thin::{lvcreate_pool, lvcreate_thin, lvcreate_thin_snapshot, pool_geometry, PoolRequest};
pub use vg::{vgcreate, vgextend, vgreduce, vgremove};

use crate::label::undashed;
use crate::pv::{self, Pv};
use crate::vg::{Vg, VgError};
use anyhow::{anyhow, bail, Context, Result};
use std::path::{Path, PathBuf};
/// Everything found on the scanned devices.
pub struct Scan {
    /// PVs with their VG (if any).
    pub pvs: Vec<(Pv, Option<Vg>)>,
}

impl Scan {
    /// Scans `devices`, or every block device when empty.
    pub fn run(devices: &[PathBuf]) -> Result<Scan> {
        let list = if devices.is_empty() {
            pv::candidate_devices()
        } else {
            devices.to_vec()
        };
        let mut pvs = Vec::new();
        for d in list {
            let found = match Pv::scan(&d) {
                Ok(Some(p)) => p,
                Ok(None) => continue,
                // Devices we may not open are not ours to report on.
                Err(pv::PvError::Io(..)) if devices.is_empty() => continue,
                Err(e) if devices.is_empty() => {
                    eprintln!("warning: {e}");
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            let vg = match found.text()? {
                Some(t) => {
                    Some(Vg::from_text(&t).map_err(|e: VgError| anyhow!("{}: {e}", d.display()))?)
                }
                None => None,
            };
            pvs.push((found, vg));
        }
        Ok(Scan { pvs })
    }

    /// The newest metadata of VG `name` and its PVs on this system.
    pub fn vg(&self, name: &str) -> Option<(Vg, Vec<&Pv>)> {
        let newest = self
            .pvs
            .iter()
            .filter_map(|(_, v)| v.as_ref())
            .filter(|v| v.name == name)
            .max_by_key(|v| v.seqno)?
            .clone();
        let members = self
            .pvs
            .iter()
            .filter(|(p, _)| newest.pvs.iter().any(|vp| undashed(&vp.id) == p.label.uuid))
            .map(|(p, _)| p)
            .collect();
        Some((newest, members))
    }

    /// Like [`Scan::vg`], with an error naming the missing VG.
    pub fn need_vg(&self, name: &str) -> Result<(Vg, Vec<&Pv>)> {
        self.vg(name)
            .ok_or_else(|| anyhow!("volume group {name} not found"))
    }

    /// Names of all VGs found, in the order LVM2's display and scan commands list them:
    /// LVM2's cache puts each VG it meets at the head of its list while it reads the
    /// devices in device-number order, so the VG of the last device comes first.
    pub fn vg_names_as_found(&self) -> Vec<String> {
        use std::os::unix::fs::MetadataExt;
        let mut pvs: Vec<(u64, &Vg)> = self
            .pvs
            .iter()
            .filter_map(|(p, v)| {
                let rdev = std::fs::metadata(&p.path).map_or(u64::MAX, |m| m.rdev());
                v.as_ref().map(|v| (rdev, v))
            })
            .collect();
        pvs.sort_by_key(|(rdev, _)| *rdev);
        let mut names: Vec<String> = Vec::new();
        for (_, v) in pvs {
            if !names.contains(&v.name) {
                names.insert(0, v.name.clone());
            }
        }
        names
    }

    /// Names of all VGs found, sorted.
    pub fn vg_names(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .pvs
            .iter()
            .filter_map(|(_, v)| v.as_ref().map(|v| v.name.clone()))
            .collect();
        v.sort();
        v.dedup();
        v
    }
}

pub(crate) fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

pub(crate) fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "localhost".into())
}

/// Writes `vg` to every PV in `members` (each PV's label marked used), archiving the
/// metadata it replaces.
pub fn commit(vg: &Vg, members: &[PathBuf], description: &str) -> Result<()> {
    if let Some(first) = members.first() {
        if let Ok(Some(prev)) = Pv::scan(first).map(|p| p.and_then(|p| p.text().ok().flatten())) {
            let seq = Vg::from_text(&prev).map(|v| v.seqno).unwrap_or(0);
            backup::archive(&prev, &vg.name, seq);
        }
    }
    let text = vg.to_text(description, now(), &host());
    for path in members {
        let mut p =
            Pv::scan(path)?.ok_or_else(|| anyhow!("{}: PV label vanished", path.display()))?;
        p.write_text(&text, true)?;
    }
    Ok(())
}

/// [`commit`] to the devices of `members`.
pub(crate) fn commit_members(vg: &Vg, members: &[&Pv], description: &str) -> Result<()> {
    let paths: Vec<PathBuf> = members.iter().map(|p| p.path.clone()).collect();
    commit(vg, &paths, description)
}

/// Checks a VG or LV name the way LVM2 does.
pub fn valid_name(n: &str) -> Result<()> {
    if n.is_empty() || n.len() > 127 || n.starts_with('-') || n == "." || n == ".." {
        return Err(crate::exit::usage(format!("invalid name {n:?}")));
    }
    if !n
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "+_.-".contains(c))
    {
        return Err(crate::exit::usage(format!(
            "name {n:?} has characters other than a-z A-Z 0-9 + _ . -"
        )));
    }
    Ok(())
}

/// Parses an LVM size (`10M`, `1g`, `512k`, `100s`; default unit MiB) into sectors.
pub fn parse_size(s: &str) -> Result<u64> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(s.len()));
    let v: f64 = num.parse().with_context(|| format!("bad size {s:?}"))?;
    let mult = match unit.to_ascii_lowercase().as_str() {
        "s" => 1.0,
        "k" | "kb" | "kib" => 2.0,
        "" | "m" | "mb" | "mib" => 2048.0,
        "g" | "gb" | "gib" => 2048.0 * 1024.0,
        "t" | "tb" | "tib" => 2048.0 * 1024.0 * 1024.0,
        _ => bail!("bad size unit in {s:?}"),
    };
    if v < 0.0 {
        bail!("negative size {s:?}");
    }
    Ok((v * mult).round() as u64)
}

/// `pvremove`: wipes the label of `path`, which must be a PV outside any VG.
pub fn pvremove_unused(path: &Path) -> Result<()> {
    match Pv::scan(path)? {
        None => bail!("no PV label on {}", path.display()),
        Some(p) if p.text()?.is_some() => {
            bail!("{} belongs to a volume group", path.display())
        }
        Some(_) => Ok(pv::pvremove(path)?),
    }
}

/// A progress line as LVM2's pollers print it (`  /dev/sdb: Moved: 12.50%`): two
/// decimals, where a value not yet 100 (or above 0) never shows as 100.00 (or 0.00), as
/// LVM2's `dm_percent_to_round_float` keeps it.
pub fn progress_line(name: &str, title: &str, percent: f64) -> String {
    let p = percent.clamp(0.0, 100.0);
    let mut shown = (p * 100.0).round() / 100.0;
    if shown >= 100.0 && p < 100.0 {
        shown = 99.99;
    } else if shown <= 0.0 && p > 0.0 {
        shown = 0.01;
    }
    format!("  {name}: {title}: {shown:.2}%")
}

/// When a foreground command reports progress: at once, then every `every` (never when
/// `every` is zero, as `-i 0` asks).
pub struct Ticker {
    every: std::time::Duration,
    last: Option<std::time::Instant>,
}

impl Ticker {
    /// A ticker for `-i SECONDS`.
    pub fn new(seconds: u64) -> Ticker {
        Ticker {
            every: std::time::Duration::from_secs(seconds),
            last: None,
        }
    }

    /// Whether a line is due now (and if so, the next one is `every` from now).
    pub fn due(&mut self) -> bool {
        if self.every.is_zero() || self.last.is_some_and(|t| t.elapsed() < self.every) {
            return false;
        }
        self.last = Some(std::time::Instant::now());
        true
    }
}

/// What `lvconvert --repair` did.
pub enum Repair {
    /// A thin pool's metadata was repaired; LVM2's warnings about it.
    ThinPool(thin_repair::Warnings),
    /// A mirror's failed devices were removed or replaced.
    Mirror(mirror_repair::Repaired),
}

/// `lvconvert --repair [--use-policies] VG/LV` of a thin pool or a mirror, from one scan
/// of the devices.
pub fn lvconvert_repair(
    vg_name: &str,
    lv: &str,
    use_policies: bool,
    prefix: &str,
) -> Result<Repair> {
    let scan = Scan::run(&[])?;
    let (vg, members) = scan.need_vg(vg_name)?;
    if vg.lv(lv).is_some_and(|l| l.thin_pool().is_some()) {
        thin_repair::lvconvert_repair_thin(vg, &members, lv).map(Repair::ThinPool)
    } else {
        mirror_repair::repair_scanned(vg, members, lv, use_policies, prefix).map(Repair::Mirror)
    }
}

/// The progress lines of a command polling in the foreground, as LVM2's poller prints
/// them (`  VG/LV: Merged: 45.31%`): at the first look, then every `interval` seconds
/// (LVM2's `activation/polling_interval`, 15, when not given), and at 100%.
pub fn progress_printer(title: &'static str, interval: Option<u64>) -> impl FnMut(&str, f64) {
    let mut ticker = Ticker::new(interval.unwrap_or(15));
    move |name, percent| {
        if ticker.due() || percent >= 100.0 {
            println!("{}", progress_line(name, title, percent));
        }
    }
}

/// Path of a device as given on the command line.
pub fn dev(p: &str) -> PathBuf {
    Path::new(p).to_owned()
}

/// Whether `lv` is the COW LV of a snapshot (activated with its origin).
pub(crate) fn is_cow(vg: &Vg, lv: &str) -> bool {
    vg.lvs
        .iter()
        .filter_map(|l| l.snapshot_of())
        .any(|(_, cow, _)| cow == lv)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_lines_round_as_lvm2() {
        assert_eq!(
            progress_line("/dev/x", "Moved", 12.5),
            "  /dev/x: Moved: 12.50%"
        );
        assert_eq!(
            progress_line("lv", "Merged", 100.0),
            "  lv: Merged: 100.00%"
        );
        assert_eq!(progress_line("a", "Moved", 0.0), "  a: Moved: 0.00%");
        // Neither end is shown before it is reached.
        assert_eq!(progress_line("a", "Moved", 99.999), "  a: Moved: 99.99%");
        assert_eq!(progress_line("a", "Moved", 0.0001), "  a: Moved: 0.01%");
        assert_eq!(progress_line("a", "Moved", 33.333), "  a: Moved: 33.33%");
    }

    #[test]
    fn ticker_reports_at_once_then_every_interval() {
        let mut t = Ticker::new(3600);
        assert!(t.due());
        assert!(!t.due(), "not again within the interval");
        let mut never = Ticker::new(0);
        assert!(!never.due() && !never.due(), "-i 0 prints no progress");
    }
}
