// SPDX-License-Identifier: GPL-2.0 OR MIT

//! `orion-lvm monitor [VG...]`: what dmeventd and its LVM2 plugins do, in the foreground.
//!
//! The monitor watches the active thin pools, old-style snapshots and mirrors of the VGs
//! it manages (all VGs when none is named; the list is read again when dm devices come
//! or go, after each action, and every minute). Each pass reads every watched device's
//! event counter: a device whose counter moved has its status collected by DM_DEV_WAIT
//! with the counter last seen (which returns at once), the others by a status call, so
//! thin pools and snapshots are also checked on every timeout, as dmeventd's 10 s
//! timeouts check them. Between passes it sleeps in poll(2) on /dev/mapper/control armed
//! with DM_DEV_ARM_POLL, which wakes on any device's event; it never sleeps in
//! DM_DEV_WAIT itself, because the kernel keeps a device it waits on from being removed
//! until its next event.
//!
//! Thin pools and snapshots are extended by the rules of [`super::autoextend`] through
//! `lvextend`'s code ([`super::lvresize`]); a pool's metadata LV grows here (with the
//! spare, as LVM2 grows it). Mirrors with a failed image or log are repaired by
//! [`super::mirror_repair`] as `lvconvert --repair --use-policies` does. Every decision
//! and action is one syslog-style line (`<6>orion-lvm monitor: ...`) on stderr.

use super::autoextend::{self, dm_percent, show, Trigger, Watermark};
use super::lv::live_devices;
use super::mirror_repair::{self, MirrorHealth};
use super::{allocate_extension, commit_members, lvresize, merge_segments, Scan};
use crate::dm::activate::{self, dm_name};
use crate::dm::backend::DmBackend;
use crate::dm::ioctl::{Control, DevId, Target};
use crate::dm::{mirror, thin};
use crate::lvmconf::Activation;
use crate::vg::Vg;
use anyhow::{anyhow, bail, Context, Result};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// syslog levels of the log lines.
pub const ERR: u8 = 3;
/// Warning.
pub const WARNING: u8 = 4;
/// Informational.
pub const INFO: u8 = 6;

/// What a watched device is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A thin pool: its data extents and metadata LV size.
    Pool {
        /// Data (pool LV) extents.
        extents: u64,
        /// Metadata LV extents.
        metadata_extents: u64,
    },
    /// An old-style snapshot: its COW extents, origin size and chunk size.
    Snapshot {
        /// COW LV extents.
        extents: u64,
        /// Origin size in sectors.
        origin_sectors: u64,
        /// Chunk size in sectors.
        chunk: u64,
    },
    /// A mirror.
    Mirror,
}

/// A device the monitor watches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Watch {
    /// VG name.
    pub vg: String,
    /// The LV an action applies to (pool, COW LV, mirror).
    pub lv: String,
    /// The dm device with the target (`VG-POOL-tpool`, `VG-SNAP`, `VG-MIRROR`).
    pub dev: String,
    /// What it is.
    pub kind: Kind,
    /// The VG's extent size in sectors.
    pub extent_size: u64,
}

/// What the monitor decided to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Grow a thin pool's metadata LV and/or its data to these extent counts (metadata
    /// first, as lvextend does).
    ExtendPool {
        /// VG.
        vg: String,
        /// Pool LV.
        lv: String,
        /// New metadata LV extents.
        metadata: Option<u64>,
        /// New data extents.
        data: Option<u64>,
    },
    /// Grow a snapshot's COW LV to `extents`.
    ExtendSnapshot {
        /// VG.
        vg: String,
        /// COW LV.
        lv: String,
        /// New extents.
        extents: u64,
    },
    /// `lvconvert --repair --use-policies VG/LV`.
    RepairMirror {
        /// VG.
        vg: String,
        /// Mirror LV.
        lv: String,
    },
}

impl Action {
    fn target(&self) -> String {
        match self {
            Action::ExtendPool { vg, lv, .. }
            | Action::ExtendSnapshot { vg, lv, .. }
            | Action::RepairMirror { vg, lv } => format!("{vg}/{lv}"),
        }
    }
}

/// How actions are carried out and VGs found: the system, or a test's model.
pub trait Executor {
    /// The metadata of the VGs to watch (`names`, or all when empty).
    fn scan(&mut self, names: &[String]) -> Result<Vec<Vg>>;
    /// Carries out `action`; returns a line saying what changed.
    fn run(&mut self, action: &Action) -> Result<String>;
}

/// The per-device state a plugin keeps.
#[derive(Clone, Debug, Default)]
struct State {
    event_nr: Option<u32>,
    data: Watermark,
    meta: Watermark,
    /// Failed actions in a row and the policy calls postponed before the next try, as
    /// the thin plugin doubles them (at most 256).
    fails: u32,
    max_fails: u32,
    /// No longer watched (an invalid or fully provisioned snapshot).
    dropped: bool,
}

/// Largest pool metadata LV (sectors), LVM2's `DM_THIN_MAX_METADATA_SIZE`.
const MAX_METADATA: u64 = 2 * 255 * ((1 << 14) - 64) * 4;
/// Longest time between two reads of the VG list.
const RESCAN: Duration = Duration::from_secs(60);

/// The monitor's state across passes.
pub struct Monitor {
    cfg: Activation,
    names: Vec<String>,
    watches: Vec<Watch>,
    states: HashMap<String, State>,
    devices: Vec<String>,
    scanned: Option<Instant>,
}

fn line(level: u8, what: &str, msg: &str) -> String {
    format!("<{level}>orion-lvm monitor: {what}: {msg}")
}

/// The devices to watch in `vgs`, as they are active in `ctl`.
pub fn watches(ctl: &dyn DmBackend, vgs: &[Vg]) -> Vec<Watch> {
    let mut out = Vec::new();
    for vg in vgs {
        let active = |n: &str| ctl.info(&DevId::Name(n.to_owned())).is_ok();
        for lv in &vg.lvs {
            let w = |lv: &str, dev: String, kind| Watch {
                vg: vg.name.clone(),
                lv: lv.to_owned(),
                dev,
                kind,
                extent_size: vg.extent_size,
            };
            if let Some(p) = lv.thin_pool() {
                if let Some(dev) = thin::live_tpool(ctl, vg, &lv.name) {
                    let metadata_extents = vg.lv(p.metadata).map_or(0, |m| m.extents());
                    out.push(w(
                        &lv.name,
                        dev,
                        Kind::Pool {
                            extents: lv.extents(),
                            metadata_extents,
                        },
                    ));
                }
            } else if let Some((origin, cow, chunk)) = lv.snapshot_of() {
                let dev = dm_name(&vg.name, cow);
                if !lv.merging() && active(&dev) {
                    out.push(w(
                        cow,
                        dev,
                        Kind::Snapshot {
                            extents: vg.lv(cow).map_or(0, |c| c.extents()),
                            origin_sectors: vg.lv(origin).map_or(0, |o| o.extents())
                                * vg.extent_size,
                            chunk,
                        },
                    ));
                }
            } else if lv.mirror().is_some() && !mirror::is_pvmove(lv) {
                let dev = dm_name(&vg.name, &lv.name);
                if active(&dev) {
                    out.push(w(&lv.name, dev, Kind::Mirror));
                }
            }
        }
    }
    out
}

/// `used/total` as two numbers.
fn ratio(s: &str) -> Option<(u64, u64)> {
    let (a, b) = s.split_once('/')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

impl Monitor {
    /// A monitor of VGs `names` (all when empty) with settings `cfg`.
    pub fn new(cfg: Activation, names: Vec<String>) -> Monitor {
        Monitor {
            cfg,
            names,
            watches: Vec::new(),
            states: HashMap::new(),
            devices: Vec::new(),
            scanned: None,
        }
    }

    /// The devices watched after the last pass.
    pub fn watched(&self) -> &[Watch] {
        &self.watches
    }

    fn rescan(
        &mut self,
        ctl: &dyn DmBackend,
        exec: &mut dyn Executor,
        log: &mut dyn FnMut(String),
    ) -> Result<()> {
        let vgs = exec.scan(&self.names)?;
        let new = watches(ctl, &vgs);
        for w in &new {
            if !self.watches.iter().any(|o| o.dev == w.dev) {
                let what = match w.kind {
                    Kind::Pool { .. } => "thin pool",
                    Kind::Snapshot { .. } => "snapshot",
                    Kind::Mirror => "mirror",
                };
                log(line(
                    INFO,
                    &format!("{}/{}", w.vg, w.lv),
                    &format!("monitoring {what} {}", w.dev),
                ));
            }
        }
        for o in &self.watches {
            if !new.iter().any(|w| w.dev == o.dev) {
                log(line(
                    INFO,
                    &format!("{}/{}", o.vg, o.lv),
                    "no longer monitored",
                ));
            }
        }
        self.states.retain(|k, _| new.iter().any(|w| &w.dev == k));
        self.watches = new;
        self.scanned = Some(Instant::now());
        Ok(())
    }

    /// One pass: reads the VG list if needed, the status of every watched device, and
    /// carries out what the policies ask for.
    pub fn pass(
        &mut self,
        ctl: &dyn DmBackend,
        exec: &mut dyn Executor,
        log: &mut dyn FnMut(String),
    ) -> Result<()> {
        let mut devices = ctl.list()?;
        devices.sort();
        if devices != self.devices || self.scanned.is_none_or(|t| t.elapsed() >= RESCAN) {
            self.rescan(ctl, exec, log)?;
            self.devices = devices;
        }
        let mut actions = Vec::new();
        let cfg = self.cfg;
        for w in self.watches.clone() {
            let st = self.states.entry(w.dev.clone()).or_insert_with(|| State {
                max_fails: 1,
                ..State::default()
            });
            if st.dropped {
                continue;
            }
            let id = DevId::Name(w.dev.clone());
            let Ok(info) = ctl.info(&id) else {
                continue;
            };
            // A device removed meanwhile is dropped at the next read of the VG list.
            let status = match st.event_nr {
                Some(last) if last != info.event_nr => match ctl.wait_event(&id, last) {
                    Ok((i, s)) => {
                        st.event_nr = Some(i.event_nr);
                        s
                    }
                    Err(_) => continue,
                },
                _ => {
                    st.event_nr = Some(info.event_nr);
                    match ctl.status(&id) {
                        Ok(s) => s,
                        Err(_) => continue,
                    }
                }
            };
            let Some(t) = status.first() else {
                continue;
            };
            let wanted = match w.kind {
                Kind::Pool { .. } => Self::pool(&cfg, &w, st, t, log),
                Kind::Snapshot { .. } => Self::snapshot(&cfg, &w, st, t, log),
                Kind::Mirror => Self::mirror(&cfg, &w, t, log),
            };
            if let Some(a) = wanted {
                // A failing action is retried after 1, 2, 4... postponed calls (256 at
                // most), as dmeventd's thin plugin retries `lvextend --use-policies`.
                if st.fails > 0 {
                    st.fails += 1;
                    if st.fails - 1 <= st.max_fails {
                        continue;
                    }
                    st.max_fails = (st.max_fails * 2).min(256);
                    st.fails = 1;
                }
                actions.push((w.dev.clone(), a));
            }
        }
        let acted = !actions.is_empty();
        for (dev, a) in actions {
            let ok = match exec.run(&a) {
                Ok(msg) => {
                    log(line(INFO, &a.target(), &msg));
                    true
                }
                Err(e) => {
                    log(line(ERR, &a.target(), &format!("{e:#}")));
                    false
                }
            };
            if let Some(st) = self.states.get_mut(&dev) {
                if ok {
                    st.fails = 0;
                    st.max_fails = 1;
                } else if st.fails == 0 {
                    st.fails = 1;
                }
            }
        }
        if acted {
            // Sizes and layouts changed: read them again before the next decisions.
            self.scanned = None;
        }
        Ok(())
    }

    fn pool(
        cfg: &Activation,
        w: &Watch,
        st: &mut State,
        t: &Target,
        log: &mut dyn FnMut(String),
    ) -> Option<Action> {
        let Kind::Pool {
            extents,
            metadata_extents,
        } = w.kind
        else {
            return None;
        };
        let what = format!("{}/{}", w.vg, w.lv);
        let f: Vec<&str> = t.params.split_whitespace().collect();
        let (Some((mu, mt)), Some((du, dt))) = (
            f.get(1).and_then(|s| ratio(s)),
            f.get(2).and_then(|s| ratio(s)),
        ) else {
            return None;
        };
        let meta = dm_percent(mu, mt);
        let data = dm_percent(du, dt);
        let om = st.meta.observe(meta, mt, Trigger::Above);
        let od = st.data.observe(data, dt, Trigger::Above);
        if om.warn {
            log(line(
                WARNING,
                &what,
                &format!("metadata is now {}% full", show(meta)),
            ));
        }
        if od.warn {
            log(line(
                WARNING,
                &what,
                &format!("data is now {}% full", show(data)),
            ));
        }
        if !(om.policy || od.policy) {
            return None;
        }
        let meta_sectors = metadata_extents * w.extent_size;
        let plan = match autoextend::thin_plan(cfg, &what, data, meta, meta_sectors) {
            Ok(p) => p,
            Err(e) => {
                log(line(ERR, &what, &e.to_string()));
                return None;
            }
        };
        let threshold = cfg.thin_threshold.max(50);
        let mut metadata = None;
        if let Some(s) = plan.metadata_sectors {
            let mut n = metadata_extents + s.div_ceil(w.extent_size);
            n = n.min(MAX_METADATA.div_ceil(w.extent_size));
            let limit = autoextend::metadata_min_threshold(meta_sectors).min(threshold);
            log(line(
                INFO,
                &what,
                &format!(
                    "metadata {}% > {limit}%, extending metadata by {} extents",
                    show(meta),
                    n - metadata_extents
                ),
            ));
            metadata = (n > metadata_extents).then_some(n);
        }
        let data_to = plan.data_percent.map(|p| {
            log(line(
                INFO,
                &what,
                &format!("data {}% > {threshold}%, extending by {p}%", show(data)),
            ));
            autoextend::grown(extents, p)
        });
        (metadata.is_some() || data_to.is_some()).then(|| Action::ExtendPool {
            vg: w.vg.clone(),
            lv: w.lv.clone(),
            metadata,
            data: data_to,
        })
    }

    fn snapshot(
        cfg: &Activation,
        w: &Watch,
        st: &mut State,
        t: &Target,
        log: &mut dyn FnMut(String),
    ) -> Option<Action> {
        let Kind::Snapshot {
            extents,
            origin_sectors,
            chunk,
        } = w.kind
        else {
            return None;
        };
        let what = format!("{}/{}", w.vg, w.lv);
        let f: Vec<&str> = t.params.split_whitespace().collect();
        let parsed = f.first().and_then(|s| ratio(s));
        let Some((used, total)) = parsed.filter(|(_, total)| *total > 0) else {
            log(line(
                WARNING,
                &what,
                &format!(
                    "snapshot changed state to: {} and should be removed",
                    t.params
                ),
            ));
            st.dropped = true;
            return None;
        };
        let metadata: u64 = f.get(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        if t.len <= used.saturating_sub(metadata) {
            log(line(
                INFO,
                &what,
                "dropping monitoring of fully provisioned snapshot",
            ));
            st.dropped = true;
            return None;
        }
        let usage = dm_percent(used, total);
        let o = st.data.observe(usage, total, Trigger::AtOrAbove);
        if o.warn {
            log(line(
                WARNING,
                &what,
                &format!("snapshot is now {}% full", show(usage)),
            ));
        }
        if !o.policy {
            return None;
        }
        let amount = match autoextend::snapshot_plan(cfg, &what, usage) {
            Ok(Some(a)) => a,
            Ok(None) => return None,
            Err(e) => {
                log(line(ERR, &what, &e.to_string()));
                return None;
            }
        };
        let max = autoextend::cow_max_extents(origin_sectors, chunk, w.extent_size);
        let to = autoextend::grown(extents, amount).min(max);
        let threshold = cfg.snapshot_threshold.max(50);
        if to <= extents {
            log(line(
                INFO,
                &what,
                &format!("reached maximum COW size ({max} extents)"),
            ));
            return None;
        }
        log(line(
            INFO,
            &what,
            &format!(
                "snapshot {}% > {threshold}%, extending by {amount}%",
                show(usage)
            ),
        ));
        Some(Action::ExtendSnapshot {
            vg: w.vg.clone(),
            lv: w.lv.clone(),
            extents: to,
        })
    }

    fn mirror(
        cfg: &Activation,
        w: &Watch,
        t: &Target,
        log: &mut dyn FnMut(String),
    ) -> Option<Action> {
        let h = MirrorHealth::parse(&t.params)?;
        if !h.any_failed() {
            return None;
        }
        let what = format!("{}/{}", w.vg, w.lv);
        let bad: Vec<String> = h
            .images
            .iter()
            .enumerate()
            .filter(|(_, c)| mirror_repair::failed(**c))
            .map(|(i, c)| format!("image {i} ({c})"))
            .chain(
                h.log
                    .filter(|c| mirror_repair::failed(*c))
                    .map(|c| format!("log ({c})")),
            )
            .collect();
        log(line(
            ERR,
            &what,
            &format!(
                "{} failed; repairing (mirror_image_fault_policy = {}, mirror_log_fault_policy = {})",
                bad.join(", "),
                cfg.image_fault.name(),
                cfg.log_fault.name()
            ),
        ));
        Some(Action::RepairMirror {
            vg: w.vg.clone(),
            lv: w.lv.clone(),
        })
    }
}

/// Grows pool `pool`'s metadata LV to `extents` (and the spare with it, as LVM2 keeps the
/// spare as large as the largest metadata LV): the metadata device gets its bigger table
/// first, the metadata is committed, then the live pool is suspended and resumed, which
/// makes the kernel take the new metadata space.
pub fn grow_metadata(
    ctl: &dyn DmBackend,
    vg: &Vg,
    pool: &str,
    extents: u64,
    devs: &activate::DevMap,
    prefix: &str,
    commit: &mut dyn FnMut(&Vg) -> Result<()>,
) -> Result<Vg> {
    let seg = vg
        .lv(pool)
        .and_then(|l| l.thin_pool())
        .ok_or_else(|| anyhow!("{}/{pool} is not a thin pool", vg.name))?;
    let meta_name = seg.metadata.to_owned();
    let mut new = vg.clone();
    let m = new
        .lvs
        .iter()
        .position(|l| l.name == meta_name)
        .ok_or_else(|| anyhow!("{meta_name} is missing"))?;
    let cur = new.lvs[m].extents();
    if extents <= cur {
        bail!("metadata LV {meta_name} already has {cur} extents");
    }
    let mut more = allocate_extension(&new, &new.lvs[m], extents - cur)?;
    new.lvs[m].segments.append(&mut more);
    merge_segments(&mut new.lvs[m].segments);
    if let Some(s) = new.lvs.iter().position(|l| l.name.ends_with("_pmspare")) {
        let have = new.lvs[s].extents();
        if have < extents {
            let mut more = allocate_extension(&new, &new.lvs[s], extents - have)?;
            new.lvs[s].segments.append(&mut more);
            merge_segments(&mut new.lvs[s].segments);
        }
    }
    new.seqno += 1;
    let tpool = thin::live_tpool(ctl, &new, pool);
    let meta_dev = DevId::Name(dm_name(&new.name, &meta_name));
    if tpool.is_some() {
        ctl.load(
            &meta_dev,
            &activate::table(&new, &new.lvs[m], devs, prefix)?,
            false,
        )?;
    }
    commit(&new)?;
    if let Some(tp) = tpool {
        ctl.resume(&meta_dev)?;
        let id = DevId::Name(tp);
        ctl.suspend(&id, true)?;
        ctl.resume(&id)?;
    }
    Ok(new)
}

/// The executor of the real system: VGs from the PVs, actions through the commands.
pub struct System {
    /// Target name prefix.
    pub prefix: String,
}

impl Executor for System {
    fn scan(&mut self, names: &[String]) -> Result<Vec<Vg>> {
        let scan = Scan::run(&[])?;
        let all = if names.is_empty() {
            scan.vg_names()
        } else {
            names.to_vec()
        };
        Ok(all
            .iter()
            .filter_map(|n| scan.vg(n).map(|(v, _)| v))
            .collect())
    }

    fn run(&mut self, action: &Action) -> Result<String> {
        match action {
            Action::ExtendPool {
                vg,
                lv,
                metadata,
                data,
            } => {
                let mut done = Vec::new();
                if let Some(n) = metadata {
                    let scan = Scan::run(&[])?;
                    let (v, members) = scan.need_vg(vg)?;
                    let meta = v
                        .lv(lv)
                        .and_then(|l| l.thin_pool())
                        .map(|s| s.metadata.to_owned())
                        .ok_or_else(|| anyhow!("{vg}/{lv} is not a thin pool"))?;
                    let from = v.lv(&meta).map_or(0, |l| l.extents());
                    let ctl = Control::open().context("opening /dev/mapper/control")?;
                    let devs = live_devices(
                        &ctl,
                        &v,
                        &members,
                        v.lv(&meta).ok_or_else(|| anyhow!("{meta} missing"))?,
                    )?;
                    let description = format!("Write from orion-lvm monitor: lvextend --use-policies {vg}/{lv} (metadata).");
                    grow_metadata(&ctl, &v, lv, *n, &devs, &self.prefix, &mut |new| {
                        commit_members(new, &members, &description)
                    })?;
                    done.push(format!("metadata extended from {from} to {n} extents"));
                }
                if let Some(n) = data {
                    let (from, to) = lvresize(vg, lv, *n, None, &self.prefix)?;
                    done.push(format!("data extended from {from} to {to} extents"));
                }
                Ok(done.join("; "))
            }
            Action::ExtendSnapshot { vg, lv, extents } => {
                let (from, to) = lvresize(vg, lv, *extents, None, &self.prefix)?;
                Ok(format!("snapshot extended from {from} to {to} extents"))
            }
            Action::RepairMirror { vg, lv } => {
                let r = mirror_repair::lvconvert_repair(vg, lv, true, &self.prefix)?;
                Ok(repair_message(&r))
            }
        }
    }
}

/// What a mirror repair did, in one line.
pub fn repair_message(r: &mirror_repair::Repaired) -> String {
    let mut parts = Vec::new();
    if !r.removed.is_empty() {
        parts.push(format!("removed {}", r.removed.join(", ")));
    }
    if r.log_removed {
        parts.push("removed the failed log".to_owned());
    }
    if !r.added.is_empty() {
        parts.push(format!("added {} (resynchronising)", r.added.join(", ")));
    }
    if r.log_added {
        parts.push("added a new log".to_owned());
    }
    if r.linear {
        parts.push("now linear".to_owned());
    }
    format!("repaired: {}", parts.join("; "))
}

/// Runs the monitor: a pass, then a sleep until a dm event or `interval`, until killed
/// (or after one pass with `once`).
pub fn run(names: Vec<String>, once: bool, interval: Duration, prefix: &str) -> Result<()> {
    let cfg = crate::lvmconf::activation()?;
    let ctl = Control::open().context("opening /dev/mapper/control")?;
    let mut exec = System {
        prefix: prefix.to_owned(),
    };
    let mut mon = Monitor::new(cfg, names);
    let mut log = |l: String| eprintln!("{l}");
    log(format!(
        "<6>orion-lvm monitor: started (thin_pool_autoextend_threshold = {}, thin_pool_autoextend_percent = {}, snapshot_autoextend_threshold = {}, snapshot_autoextend_percent = {}, mirror_image_fault_policy = {}, mirror_log_fault_policy = {})",
        cfg.thin_threshold, cfg.thin_percent, cfg.snapshot_threshold, cfg.snapshot_percent,
        cfg.image_fault.name(), cfg.log_fault.name()
    ));
    loop {
        // Armed before the pass, so an event during it ends the next sleep at once.
        ctl.arm_events()?;
        if let Err(e) = mon.pass(&ctl, &mut exec, &mut log) {
            log(format!("<3>orion-lvm monitor: {e:#}"));
            if once {
                return Err(e);
            }
        }
        if once {
            return Ok(());
        }
        ctl.poll_events(interval)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dm::recording::{add_lv, add_snapshot, test_vg, RecordingDm};
    use crate::lvmconf::FaultPolicy;
    use crate::vg::{Segment, SegmentKind};

    /// A model system: fixed VGs, actions recorded and applied to the simulated kernel
    /// only as a new healthy status.
    struct Model {
        vgs: Vec<Vg>,
        runs: Vec<Action>,
    }

    impl Executor for Model {
        fn scan(&mut self, _names: &[String]) -> Result<Vec<Vg>> {
            Ok(self.vgs.clone())
        }
        fn run(&mut self, action: &Action) -> Result<String> {
            self.runs.push(action.clone());
            Ok("done".into())
        }
    }

    fn linear(pv: &str, pe: u64, n: u64) -> Vec<Segment> {
        vec![Segment {
            start_extent: 0,
            extent_count: n,
            kind: SegmentKind::Striped {
                stripe_size: None,
                stripes: vec![(pv.to_owned(), pe)],
            },
        }]
    }

    /// A VG with a 16-extent pool (1-extent metadata, 1-extent spare), active in `dm`.
    fn pool_vg(dm: &RecordingDm) -> (Vg, activate::DevMap) {
        let (mut vg, mut devs) = test_vg("vg", &[40, 40]);
        add_lv(&mut vg, "lvol0_pmspare", linear("pv0", 0, 1));
        add_lv(&mut vg, "pool_tmeta", linear("pv1", 0, 1));
        add_lv(&mut vg, "pool_tdata", linear("pv0", 1, 16));
        for l in &mut vg.lvs {
            l.status.retain(|s| s != "VISIBLE");
        }
        let mut seg = crate::config::Section::default();
        seg.push("start_extent", crate::config::Value::Int(0))
            .push("extent_count", crate::config::Value::Int(16))
            .push("type", crate::config::Value::Str("thin-pool".into()))
            .push("metadata", crate::config::Value::Str("pool_tmeta".into()))
            .push("pool", crate::config::Value::Str("pool_tdata".into()))
            .push("transaction_id", crate::config::Value::Int(0))
            .push("chunk_size", crate::config::Value::Int(128))
            .push("discards", crate::config::Value::Str("passdown".into()))
            .push("zero_new_blocks", crate::config::Value::Int(1));
        add_lv(
            &mut vg,
            "pool",
            vec![Segment {
                start_extent: 0,
                extent_count: 16,
                kind: SegmentKind::Other(seg),
            }],
        );
        dm.load_module("dm-thin-pool");
        let pool = vg.lv("pool").unwrap().clone();
        thin::activate_pool(dm, &vg, &pool, &mut devs, "").unwrap();
        (vg, devs)
    }

    fn cfg(t: u32, p: u32) -> Activation {
        Activation {
            thin_threshold: t,
            thin_percent: p,
            snapshot_threshold: t,
            snapshot_percent: p,
            image_fault: FaultPolicy::Remove,
            log_fault: FaultPolicy::Allocate,
        }
    }

    fn pass(mon: &mut Monitor, dm: &RecordingDm, model: &mut Model) -> Vec<String> {
        let mut lines = Vec::new();
        mon.pass(dm, model, &mut |l| lines.push(l)).unwrap();
        lines
    }

    #[test]
    fn pool_extends_past_the_threshold_and_event_is_collected_by_dev_wait() {
        let dm = RecordingDm::new();
        let (vg, _) = pool_vg(&dm);
        let mut model = Model {
            vgs: vec![vg],
            runs: vec![],
        };
        let mut mon = Monitor::new(cfg(70, 20), vec![]);
        let lines = pass(&mut mon, &dm, &mut model);
        assert_eq!(mon.watched().len(), 1);
        assert_eq!(mon.watched()[0].dev, "vg-pool");
        assert!(
            lines[0].starts_with("<6>orion-lvm monitor: vg/pool: monitoring thin pool"),
            "{lines:?}"
        );
        assert!(model.runs.is_empty(), "an empty pool needs nothing");
        // 850 of 1024 blocks: 83.01% > 70%, which needs ceil(83.01/70*100) - 100 = 19%,
        // less than the 20% configured.
        dm.clear_log();
        dm.set_status(
            "vg-pool",
            &["0 10/1024 850/1024 - rw discard_passdown queue_if_no_space - 1024"],
        );
        let lines = pass(&mut mon, &dm, &mut model);
        assert_eq!(
            model.runs,
            [Action::ExtendPool {
                vg: "vg".into(),
                lv: "pool".into(),
                metadata: None,
                data: Some(20)
            }]
        );
        assert!(
            dm.calls("wait").iter().any(|w| w.starts_with("vg-pool ")),
            "{:?}",
            dm.log()
        );
        assert!(
            lines.contains(&"<4>orion-lvm monitor: vg/pool: data is now 83.01% full".to_owned()),
            "{lines:?}"
        );
        assert!(lines.contains(
            &"<6>orion-lvm monitor: vg/pool: data 83.01% > 70%, extending by 20%".to_owned()
        ));
        assert!(lines.contains(&"<6>orion-lvm monitor: vg/pool: done".to_owned()));
        // The same usage again: no second extension (the plugin waits for the next 5%).
        pass(&mut mon, &dm, &mut model);
        assert_eq!(model.runs.len(), 1);
        // 100% full: the amount grows to get back below the threshold (43%).
        dm.set_status(
            "vg-pool",
            &["0 10/1024 1024/1024 - rw discard_passdown queue_if_no_space - 1024"],
        );
        pass(&mut mon, &dm, &mut model);
        assert_eq!(
            model.runs[1],
            Action::ExtendPool {
                vg: "vg".into(),
                lv: "pool".into(),
                metadata: None,
                data: Some(23)
            }
        );
    }

    #[test]
    fn pool_metadata_then_data() {
        let dm = RecordingDm::new();
        let (vg, _) = pool_vg(&dm);
        let mut model = Model {
            vgs: vec![vg],
            runs: vec![],
        };
        let mut mon = Monitor::new(cfg(80, 20), vec![]);
        pass(&mut mon, &dm, &mut model);
        // Metadata 78%: above its own limit (4 MiB metadata keeps 25% free: 75%), needs
        // 4%, so 20%; data 81% > 80%: also 20%.
        dm.set_status(
            "vg-pool",
            &["0 800/1024 830/1024 - rw discard_passdown queue_if_no_space - 1024"],
        );
        let lines = pass(&mut mon, &dm, &mut model);
        assert_eq!(
            model.runs,
            [Action::ExtendPool {
                vg: "vg".into(),
                lv: "pool".into(),
                metadata: Some(2),
                data: Some(20)
            }]
        );
        let m = lines
            .iter()
            .position(|l| l.contains("extending metadata"))
            .unwrap();
        let d = lines
            .iter()
            .position(|l| l.contains("data 81.05% > 80%"))
            .unwrap();
        assert!(m < d, "{lines:?}");
    }

    #[test]
    fn threshold_100_turns_it_off() {
        let dm = RecordingDm::new();
        let (vg, _) = pool_vg(&dm);
        let mut model = Model {
            vgs: vec![vg],
            runs: vec![],
        };
        let mut mon = Monitor::new(cfg(100, 20), vec![]);
        pass(&mut mon, &dm, &mut model);
        dm.set_status(
            "vg-pool",
            &["0 1000/1024 1024/1024 - rw discard_passdown queue_if_no_space - 1024"],
        );
        pass(&mut mon, &dm, &mut model);
        assert!(model.runs.is_empty());
    }

    #[test]
    fn metadata_growth_order() {
        let dm = RecordingDm::new();
        let (vg, devs) = pool_vg(&dm);
        dm.clear_log();
        let mut commits = Vec::new();
        let new = grow_metadata(&dm, &vg, "pool", 3, &devs, "", &mut |v| {
            commits.push(v.seqno);
            Ok(())
        })
        .unwrap();
        assert_eq!(new.lv("pool_tmeta").unwrap().extents(), 3);
        assert_eq!(
            new.lv("lvol0_pmspare").unwrap().extents(),
            3,
            "the spare follows"
        );
        assert_eq!(commits, [vg.seqno + 1]);
        assert_eq!(
            dm.log(),
            [
                "load vg-pool_tmeta: 0 24576 linear 7:1 2048",
                "resume vg-pool_tmeta",
                "suspend vg-pool noflush",
                "resume vg-pool",
            ]
        );
        assert!(grow_metadata(&dm, &new, "pool", 2, &devs, "", &mut |_| Ok(())).is_err());
    }

    #[test]
    fn snapshots_and_mirrors() {
        let dm = RecordingDm::new();
        let (mut vg, mut devs) = test_vg("vg", &[40, 40, 40]);
        add_lv(&mut vg, "o", linear("pv0", 0, 16));
        add_lv(&mut vg, "s", linear("pv1", 0, 4));
        add_snapshot(&mut vg, "o", "s", 16);
        let o = vg.lv("o").unwrap().clone();
        activate::activate_lv(&dm, &vg, &o, &mut devs, "", &["s"]).unwrap();
        let mut model = Model {
            vgs: vec![vg],
            runs: vec![],
        };
        let mut mon = Monitor::new(cfg(70, 20), vec![]);
        pass(&mut mon, &dm, &mut model);
        assert_eq!(
            mon.watched()
                .iter()
                .map(|w| w.dev.as_str())
                .collect::<Vec<_>>(),
            ["vg-s"]
        );
        // 24000 of 32768 sectors used: 73.2% >= 70%: +20% of 4 extents = 5.
        dm.set_status("vg-s", &["24000/32768 96"]);
        pass(&mut mon, &dm, &mut model);
        assert_eq!(
            model.runs,
            [Action::ExtendSnapshot {
                vg: "vg".into(),
                lv: "s".into(),
                extents: 5
            }]
        );
        // An invalidated snapshot is dropped, not extended.
        dm.set_status("vg-s", &["Invalid"]);
        let lines = pass(&mut mon, &dm, &mut model);
        assert!(lines
            .iter()
            .any(|l| l.starts_with("<4>") && l.contains("should be removed")));
        dm.set_status("vg-s", &["32000/32768 96"]);
        pass(&mut mon, &dm, &mut model);
        assert_eq!(model.runs.len(), 1);
    }

    #[test]
    fn failing_actions_back_off() {
        struct Failing(Vec<Vg>, u32);
        impl Executor for Failing {
            fn scan(&mut self, _: &[String]) -> Result<Vec<Vg>> {
                Ok(self.0.clone())
            }
            fn run(&mut self, _: &Action) -> Result<String> {
                self.1 += 1;
                bail!("no free extents")
            }
        }
        let dm = RecordingDm::new();
        let (vg, _) = pool_vg(&dm);
        let mut exec = Failing(vec![vg], 0);
        let mut mon = Monitor::new(cfg(50, 20), vec![]);
        let mut lines = Vec::new();
        // Each pass rises past the next 5% step, so each asks for the policy.
        for used in (520..=1000).step_by(60) {
            let s = format!("0 10/1024 {used}/1024 - rw discard_passdown queue_if_no_space - 1024");
            dm.set_status("vg-pool", &[&s]);
            mon.pass(&dm, &mut exec, &mut |l| lines.push(l)).unwrap();
        }
        assert!(lines
            .iter()
            .any(|l| l == "<3>orion-lvm monitor: vg/pool: no free extents"));
        // Of the 9 calls, the 1st, 3rd and 6th try: 1, then 2 calls postponed between.
        assert_eq!(exec.1, 3, "{lines:?}");
    }

    #[test]
    fn mirror_failure_asks_for_a_repair() {
        let dm = RecordingDm::new();
        let (mut vg, mut devs) = test_vg("vg", &[10, 10]);
        for i in 0..2 {
            add_lv(
                &mut vg,
                &format!("m_mimage_{i}"),
                linear(&format!("pv{i}"), 0, 4),
            );
        }
        let mut seg = crate::config::Section::default();
        seg.push("start_extent", crate::config::Value::Int(0))
            .push("extent_count", crate::config::Value::Int(4))
            .push("type", crate::config::Value::Str("mirror".into()))
            .push("mirror_count", crate::config::Value::Int(2))
            .push("region_size", crate::config::Value::Int(4096))
            .push(
                "mirrors",
                crate::config::Value::Array(vec![
                    crate::config::Value::Str("m_mimage_0".into()),
                    crate::config::Value::Int(0),
                    crate::config::Value::Str("m_mimage_1".into()),
                    crate::config::Value::Int(0),
                ]),
            );
        add_lv(
            &mut vg,
            "m",
            vec![Segment {
                start_extent: 0,
                extent_count: 4,
                kind: SegmentKind::Other(seg),
            }],
        );
        let m = vg.lv("m").unwrap().clone();
        activate::activate_lv(&dm, &vg, &m, &mut devs, "", &[]).unwrap();
        let mut model = Model {
            vgs: vec![vg],
            runs: vec![],
        };
        let mut mon = Monitor::new(cfg(100, 20), vec![]);
        pass(&mut mon, &dm, &mut model);
        assert!(model.runs.is_empty(), "healthy");
        dm.set_status("vg-m", &["2 253:0 253:1 15/16 1 AD 1 core"]);
        let lines = pass(&mut mon, &dm, &mut model);
        assert_eq!(
            model.runs,
            [Action::RepairMirror {
                vg: "vg".into(),
                lv: "m".into()
            }]
        );
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("<3>") && l.contains("image 1 (D) failed")),
            "{lines:?}"
        );
    }
}
