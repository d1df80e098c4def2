// SPDX-License-Identifier: GPL-2.0 OR MIT

//! `lvconvert --repair [--use-policies] VG/LV` for mirrors, what dmeventd's mirror plugin
//! runs when the kernel marks an image or the log failed.
//!
//! The kernel's `mirror` status gives one health letter per image, in table order, and
//! one for a disk log (`A` alive; `D` a write failed, `S` a resync failed, `R` a read
//! failed). The repair runs in two steps, each one metadata commit, as LVM2's does:
//!
//! 1. Remove: the failed images (and a failed log) leave the metadata, the mirror device
//!    is reloaded without them (suspended without flushing, so the writes the kernel holds
//!    for the failed image are requeued to the new table rather than failed), and their
//!    devices are removed. A mirror left with one image becomes a linear LV on that
//!    image's extents; a mirror that lost its disk log gets a core log.
//! 2. Allocate (policy `allocate`, `mirror_image_fault_policy` for images and
//!    `mirror_log_fault_policy` for the log): new images `LV_mimage_N` of the same size go
//!    on PVs that neither the remaining images nor the failed ones use, a new log on yet
//!    another PV (zeroed), and the mirror is reloaded with them; the kernel resynchronises
//!    the new images from the first one. Without room the step is skipped (LVM2 falls back
//!    to `remove` too) and the mirror stays as step 1 left it.
//!
//! Without `--use-policies` the images are removed and a failed log is replaced (LVM2
//! asks; these are its default answers).

use super::{allocate, commit_members, LvRequest, Scan};
use crate::config::{Section, Value};
use crate::dm::activate::{self, dm_name, dm_uuid, DevMap};
use crate::dm::backend::DmBackend;
use crate::dm::ioctl::{Control, DevId};
use crate::label::{dashed, new_uuid};
use crate::lvmconf::{self, FaultPolicy};
use crate::vg::{Lv, Segment, SegmentKind, Vg};
use anyhow::{anyhow, bail, Context, Result};

/// Health of a mirror from its status line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MirrorHealth {
    /// One letter per image, in table order.
    pub images: Vec<char>,
    /// The disk log's letter (`None` for a core log).
    pub log: Option<char>,
    /// Regions in sync and in total.
    pub sync: (u64, u64),
}

/// Whether a health letter means the device failed.
pub fn failed(c: char) -> bool {
    matches!(c, 'D' | 'S' | 'R')
}

impl MirrorHealth {
    /// Parses `N DEV... IN/TOTAL 1 HEALTH LOGARGC LOGARGS...` (dm-raid1's status).
    pub fn parse(params: &str) -> Option<MirrorHealth> {
        let f: Vec<&str> = params.split_whitespace().collect();
        let n: usize = f.first()?.parse().ok()?;
        let (a, b) = f.get(1 + n)?.split_once('/')?;
        let sync = (a.parse().ok()?, b.parse().ok()?);
        let health: Vec<char> = f.get(3 + n)?.chars().collect();
        if health.len() != n {
            return None;
        }
        let logc: usize = f.get(4 + n)?.parse().ok()?;
        let log_args = f.get(5 + n..5 + n + logc)?;
        let log = match log_args {
            ["disk", _, h] => h.chars().next(),
            _ => None,
        };
        Some(MirrorHealth {
            images: health,
            log,
            sync,
        })
    }

    /// Whether an image or the log failed.
    pub fn any_failed(&self) -> bool {
        self.images.iter().any(|c| failed(*c)) || self.log.is_some_and(failed)
    }
}

/// What a repair did, for messages.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Repaired {
    /// Failed images removed.
    pub removed: Vec<String>,
    /// Whether the failed log was removed.
    pub log_removed: bool,
    /// Whether the mirror became linear.
    pub linear: bool,
    /// Images added.
    pub added: Vec<String>,
    /// Whether a new log was added.
    pub log_added: bool,
}

/// The storage side of a repair: metadata commits and zeroing new LVs on their PVs.
pub trait RepairIo {
    /// Commits `vg` (written to every PV of the VG).
    fn commit(&mut self, vg: &Vg, step: &str) -> Result<()>;
    /// Zeroes LV `lv` of `vg` on its PVs (a new disk log).
    fn zero(&mut self, vg: &Vg, lv: &str) -> Result<()>;
}

fn mirror_section(lv: &Lv) -> Result<Section> {
    match lv.segments.as_slice() {
        [Segment {
            kind: SegmentKind::Other(s),
            ..
        }] if s.str("type") == Some("mirror") => Ok(s.clone()),
        _ => bail!("{} is not a single-segment mirror", lv.name),
    }
}

fn set_images(seg: &mut Section, images: &[String]) {
    let mut arr = Vec::new();
    for i in images {
        arr.push(Value::Str(i.clone()));
        arr.push(Value::Int(0));
    }
    seg.set(
        "mirror_count",
        crate::config::Node::Value(Value::Int(images.len() as i64)),
    );
    seg.set("mirrors", crate::config::Node::Value(Value::Array(arr)));
}

/// The PVs an LV's striped segments use.
fn pvs_of(vg: &Vg, lv: &str) -> Vec<String> {
    vg.lv(lv)
        .map(|l| {
            l.segments
                .iter()
                .filter_map(|s| match &s.kind {
                    SegmentKind::Striped { stripes, .. } => Some(stripes),
                    SegmentKind::Other(_) => None,
                })
                .flatten()
                .map(|(pv, _)| pv.clone())
                .collect()
        })
        .unwrap_or_default()
}

/// Step 1 on the metadata: `vg` without the images of `lv` at `failed` (indexes in the
/// mirror) and, if `log_failed`, without its log. Returns the new VG, what changed, and
/// the PVs the failed devices were on.
pub fn remove_failed(
    vg: &Vg,
    lv: &str,
    failed: &[usize],
    log_failed: bool,
) -> Result<(Vg, Repaired, Vec<String>)> {
    let l = vg
        .lv(lv)
        .ok_or_else(|| anyhow!("logical volume {}/{lv} not found", vg.name))?;
    let m = l
        .mirror()
        .ok_or_else(|| anyhow!("{}/{lv} is not a mirror", vg.name))?;
    let mut seg = mirror_section(l)?;
    let images: Vec<String> = m.images.iter().map(|(n, _)| (*n).to_owned()).collect();
    let log = m.log.map(str::to_owned);
    let keep: Vec<String> = images
        .iter()
        .enumerate()
        .filter(|(i, _)| !failed.contains(i))
        .map(|(_, n)| n.clone())
        .collect();
    if keep.is_empty() {
        bail!("every image of {}/{lv} failed: nothing to keep", vg.name);
    }
    let mut done = Repaired::default();
    let mut bad_pvs = Vec::new();
    for (i, n) in images.iter().enumerate() {
        if failed.contains(&i) {
            done.removed.push(n.clone());
            bad_pvs.extend(pvs_of(vg, n));
        }
    }
    let mut gone = done.removed.clone();
    let mut out = vg.clone();
    if keep.len() == 1 {
        // A single image left: the LV takes over its extents and the mirror is gone.
        let image = out
            .lv(&keep[0])
            .ok_or_else(|| anyhow!("image {} is missing", keep[0]))?
            .segments
            .clone();
        let i = out
            .lvs
            .iter()
            .position(|x| x.name == lv)
            .ok_or_else(|| anyhow!("{lv} vanished"))?;
        out.lvs[i].segments = image;
        gone.push(keep[0].clone());
        gone.extend(log.clone());
        done.linear = true;
        if log_failed {
            bad_pvs.extend(log.iter().flat_map(|n| pvs_of(vg, n)));
            done.log_removed = true;
        }
    } else {
        set_images(&mut seg, &keep);
        if log_failed {
            if let Some(n) = &log {
                bad_pvs.extend(pvs_of(vg, n));
                seg.remove("mirror_log");
                gone.push(n.clone());
                done.log_removed = true;
            }
        }
        let i = out
            .lvs
            .iter()
            .position(|x| x.name == lv)
            .ok_or_else(|| anyhow!("{lv} vanished"))?;
        out.lvs[i].segments[0].kind = SegmentKind::Other(seg);
    }
    out.lvs.retain(|x| !gone.contains(&x.name));
    out.seqno += 1;
    Ok((out, done, bad_pvs))
}

/// A linear LV of `extents` on a PV other than those in `avoid`, as `name`.
fn new_linear(vg: &Vg, name: &str, extents: u64, avoid: &[String]) -> Option<Lv> {
    let mut cand = vg.clone();
    cand.pvs.retain(|p| !avoid.contains(&p.key));
    let segments = allocate(
        &cand,
        &LvRequest {
            name,
            extents,
            stripes: 1,
            stripe_size: 128,
        },
    )
    .ok()?;
    // One PV for the whole image, so the images stay apart.
    let pvs: Vec<&String> = segments
        .iter()
        .filter_map(|s| match &s.kind {
            SegmentKind::Striped { stripes, .. } => Some(&stripes[0].0),
            SegmentKind::Other(_) => None,
        })
        .collect();
    if pvs.windows(2).any(|w| w[0] != w[1]) {
        return None;
    }
    Some(Lv {
        name: name.to_owned(),
        id: dashed(&new_uuid().ok()?),
        status: vec!["READ".into(), "WRITE".into()],
        segments,
        raw: Section::default(),
    })
}

/// Step 2 on the metadata: `vg` (after step 1) with `images` new images for `lv` and,
/// if `log`, a new disk log, placed away from `avoid` and each other. `None` when there
/// is nothing to add or no room.
pub fn add_replacements(
    vg: &Vg,
    lv: &str,
    images: usize,
    log: bool,
    avoid: &[String],
) -> Option<(Vg, Repaired)> {
    if images == 0 && !log {
        return None;
    }
    let l = vg.lv(lv)?;
    let extents = l.extents();
    let mut out = vg.clone();
    let mut done = Repaired::default();
    let mut avoid = avoid.to_vec();
    let (mut names, mut seg) = match l.mirror() {
        Some(m) => {
            let names: Vec<String> = m.images.iter().map(|(n, _)| (*n).to_owned()).collect();
            for n in &names {
                avoid.extend(pvs_of(vg, n));
            }
            avoid.extend(m.log.iter().flat_map(|n| pvs_of(vg, n)));
            (names, mirror_section(l).ok()?)
        }
        None => {
            // Linear after step 1: its extents become image 0 again.
            let name = format!("{lv}_mimage_0");
            if vg.lv(&name).is_some() {
                return None;
            }
            avoid.extend(l.segments.iter().filter_map(|s| match &s.kind {
                SegmentKind::Striped { stripes, .. } => Some(stripes[0].0.clone()),
                SegmentKind::Other(_) => None,
            }));
            out.lvs.push(Lv {
                name: name.clone(),
                id: dashed(&new_uuid().ok()?),
                status: vec!["READ".into(), "WRITE".into()],
                segments: l.segments.clone(),
                raw: Section::default(),
            });
            let mut s = Section::default();
            s.push("start_extent", Value::Int(0))
                .push("extent_count", Value::Int(extents as i64))
                .push("type", Value::Str("mirror".into()))
                .push("mirror_count", Value::Int(1))
                .push("region_size", Value::Int(4096.min(vg.extent_size) as i64));
            (vec![name], s)
        }
    };
    let mut next = 0;
    for _ in 0..images {
        let name = loop {
            let n = format!("{lv}_mimage_{next}");
            next += 1;
            if out.lv(&n).is_none() {
                break n;
            }
        };
        let new = new_linear(&out, &name, extents, &avoid)?;
        avoid.extend(pvs_of_lv(&new));
        out.lvs.push(new);
        names.push(name.clone());
        done.added.push(name);
    }
    if log && seg.str("mirror_log").is_none() {
        let name = format!("{lv}_mlog");
        if out.lv(&name).is_some() {
            return None;
        }
        let new = new_linear(&out, &name, 1, &avoid)?;
        out.lvs.push(new);
        // LVM2 writes the log before the mirrors list.
        let mirrors = seg.remove("mirrors");
        seg.set("mirror_log", crate::config::Node::Value(Value::Str(name)));
        if let Some(m) = mirrors {
            seg.set("mirrors", m);
        }
        done.log_added = true;
    }
    set_images(&mut seg, &names);
    let i = out.lvs.iter().position(|x| x.name == lv)?;
    out.lvs[i].segments = vec![Segment {
        start_extent: 0,
        extent_count: extents,
        kind: SegmentKind::Other(seg),
    }];
    out.seqno += 1;
    Some((out, done))
}

fn pvs_of_lv(lv: &Lv) -> Vec<String> {
    lv.segments
        .iter()
        .filter_map(|s| match &s.kind {
            SegmentKind::Striped { stripes, .. } => Some(stripes[0].0.clone()),
            SegmentKind::Other(_) => None,
        })
        .collect()
}

/// The devices of `lv`'s images and log that are active, added to `devs`.
fn image_devices(ctl: &dyn DmBackend, vg: &Vg, lv: &Lv, devs: &mut DevMap) {
    if let Some(m) = lv.mirror() {
        for n in m.images.iter().map(|(n, _)| *n).chain(m.log) {
            if let Ok(i) = ctl.info(&DevId::Name(dm_name(&vg.name, n))) {
                devs.lvs
                    .insert(n.to_owned(), format!("{}:{}", i.major, i.minor));
            }
        }
    }
}

/// The kernel side of a repair: the dm backend, the VG's PV devices and the target
/// name prefix.
pub struct Live<'a> {
    /// Device-mapper.
    pub ctl: &'a dyn DmBackend,
    /// `major:minor` of the PVs.
    pub devs: &'a DevMap,
    /// Target name prefix.
    pub prefix: &'a str,
}

/// Puts `new` (the metadata after a step) live for mirror `lv`: devices of LVs new in
/// `new` created, the mirror device reloaded and suspended without flushing around the
/// commit, then the devices of LVs `new` no longer has removed.
pub fn apply_step(
    live_dm: &Live<'_>,
    old: &Vg,
    new: &Vg,
    lv: &str,
    io: &mut dyn RepairIo,
    step: &str,
) -> Result<()> {
    let (ctl, devs, prefix) = (live_dm.ctl, live_dm.devs, live_dm.prefix);
    let top = new
        .lv(lv)
        .ok_or_else(|| anyhow!("{lv} missing from the new metadata"))?;
    let name = dm_name(&new.name, lv);
    let id = DevId::Name(name.clone());
    let live = ctl.info(&id).is_ok();
    let added: Vec<&Lv> = new
        .lvs
        .iter()
        .filter(|l| old.lv(&l.name).is_none())
        .collect();
    for l in &added {
        if l.name.ends_with("_mlog") {
            io.zero(new, &l.name)?;
        }
    }
    if !live {
        return io.commit(new, step);
    }
    let mut devs = devs.clone();
    image_devices(ctl, old, old.lv(lv).unwrap_or(top), &mut devs);
    for l in &added {
        let d = activate::load_device(
            ctl,
            &dm_name(&new.name, &l.name),
            &dm_uuid(new, l),
            &activate::table(new, l, &devs, prefix)?,
            false,
        )?;
        devs.lvs.insert(l.name.clone(), d);
    }
    let table = activate::table(new, top, &devs, prefix)?;
    ctl.load(&id, &table, false)?;
    ctl.suspend(&id, true)?;
    let committed = io.commit(new, step);
    if committed.is_err() {
        // The old metadata stays: put the old table back before resuming.
        let _ = ctl.load(
            &id,
            &activate::table(old, old.lv(lv).unwrap_or(top), &devs, prefix)?,
            false,
        );
    }
    ctl.resume(&id)?;
    committed?;
    for l in &old.lvs {
        if new.lv(&l.name).is_none() && old_part_of(old, lv, &l.name) {
            activate::remove_device(ctl, &dm_name(&old.name, &l.name))?;
        }
    }
    Ok(())
}

/// Whether `name` is an image or the log of mirror `lv` in `vg`.
fn old_part_of(vg: &Vg, lv: &str, name: &str) -> bool {
    vg.lv(lv)
        .and_then(|l| l.mirror())
        .is_some_and(|m| m.images.iter().any(|(n, _)| *n == name) || m.log == Some(name))
}

/// The policies a repair follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policies {
    /// For failed images.
    pub image: FaultPolicy,
    /// For a failed log.
    pub log: FaultPolicy,
}

/// Repairs mirror `lv` of `vg` whose health is `health`: both steps, through `live`
/// and `io`. Returns the metadata after the repair and what was done.
pub fn repair(
    live: &Live<'_>,
    vg: &Vg,
    lv: &str,
    health: &MirrorHealth,
    policies: Policies,
    io: &mut dyn RepairIo,
) -> Result<(Vg, Repaired)> {
    let failed_images: Vec<usize> = health
        .images
        .iter()
        .enumerate()
        .filter(|(_, c)| failed(**c))
        .map(|(i, _)| i)
        .collect();
    let log_failed = health.log.is_some_and(failed);
    if failed_images.is_empty() && !log_failed {
        bail!("{}/{lv} has no failed image or log", vg.name);
    }
    let (after, mut done, bad_pvs) = remove_failed(vg, lv, &failed_images, log_failed)?;
    apply_step(live, vg, &after, lv, io, "remove")?;
    let images = if policies.image == FaultPolicy::Allocate {
        failed_images.len()
    } else {
        0
    };
    // A mirror that became linear has no log to replace.
    let log = log_failed && policies.log == FaultPolicy::Allocate && !done.linear;
    let Some((full, added)) = add_replacements(&after, lv, images, log, &bad_pvs) else {
        return Ok((after, done));
    };
    apply_step(live, &after, &full, lv, io, "allocate")?;
    done.added = added.added;
    done.log_added = added.log_added;
    if done.linear && !done.added.is_empty() {
        done.linear = false;
    }
    Ok((full, done))
}

/// Commits to the VG's PVs and zeroes on them.
struct PvIo<'a> {
    members: Vec<&'a crate::pv::Pv>,
}

impl RepairIo for PvIo<'_> {
    fn commit(&mut self, vg: &Vg, step: &str) -> Result<()> {
        commit_members(
            vg,
            &self.members,
            &format!(
                "Write from orion-lvm lvconvert --repair ({step}) {}.",
                vg.name
            ),
        )
    }
    fn zero(&mut self, vg: &Vg, lv: &str) -> Result<()> {
        let l = vg.lv(lv).ok_or_else(|| anyhow!("{lv} vanished"))?;
        super::thin::zero_on_pvs(vg, &self.members, l)
    }
}

/// The health of the active mirror `lv` of `vg`.
pub fn live_health(ctl: &dyn DmBackend, vg: &str, lv: &str) -> Result<MirrorHealth> {
    let st = ctl.status(&DevId::Name(dm_name(vg, lv)))?;
    let line = st
        .first()
        .ok_or_else(|| anyhow!("{vg}/{lv} has no table"))?;
    MirrorHealth::parse(&line.params)
        .ok_or_else(|| anyhow!("{vg}/{lv}: cannot read mirror status {:?}", line.params))
}

/// `lvconvert --repair [--use-policies] VG/LV` of a mirror (the monitor's entry: it
/// reads the VG itself).
pub fn lvconvert_repair(
    vg_name: &str,
    lv: &str,
    use_policies: bool,
    prefix: &str,
) -> Result<Repaired> {
    let scan = Scan::run(&[])?;
    let (vg, members) = scan.need_vg(vg_name)?;
    repair_scanned(vg, members, lv, use_policies, prefix)
}

/// [`lvconvert_repair`] of mirror `lv` of `vg`, read already with its PVs `members`.
pub(crate) fn repair_scanned(
    vg: Vg,
    members: Vec<&crate::pv::Pv>,
    lv: &str,
    use_policies: bool,
    prefix: &str,
) -> Result<Repaired> {
    let policies = if use_policies {
        let a = lvmconf::activation()?;
        Policies {
            image: a.image_fault,
            log: a.log_fault,
        }
    } else {
        Policies {
            image: FaultPolicy::Remove,
            log: FaultPolicy::Allocate,
        }
    };
    let vg_name = vg.name.as_str();
    let l = vg
        .lv(lv)
        .ok_or_else(|| anyhow!("logical volume {vg_name}/{lv} not found"))?;
    if l.mirror().is_none() || crate::dm::mirror::is_pvmove(l) {
        bail!("{vg_name}/{lv} is not a mirror: only mirrors are repaired here");
    }
    let ctl = Control::open().context("opening /dev/mapper/control")?;
    let health = live_health(&ctl, vg_name, lv)
        .with_context(|| format!("{vg_name}/{lv} must be active to find its failed devices"))?;
    let devs = activate::pv_devices(&vg, &members)?;
    let mut io = PvIo { members };
    let live = Live {
        ctl: &ctl,
        devs: &devs,
        prefix,
    };
    repair(&live, &vg, lv, &health, policies, &mut io).map(|(_, d)| d)
}

/// Waits until mirror `lv` of `vg` has every region in sync, looking every `pause`;
/// `report` gets `VG/LV` and the percentage in sync on every look (LVM2's poller prints
/// it as `Converted`). A failed image stops the wait: the kernel no longer copies to it.
pub fn wait_in_sync(
    ctl: &dyn DmBackend,
    vg: &str,
    lv: &str,
    pause: std::time::Duration,
    report: &mut dyn FnMut(&str, f64),
) -> Result<()> {
    let shown = format!("{vg}/{lv}");
    loop {
        let h = live_health(ctl, vg, lv)?;
        let (in_sync, regions) = h.sync;
        let pct = if regions == 0 {
            100.0
        } else {
            100.0 * in_sync as f64 / regions as f64
        };
        report(&shown, pct);
        if in_sync >= regions {
            return Ok(());
        }
        if h.any_failed() {
            bail!("{shown}: a device failed while the mirror resynchronised");
        }
        std::thread::sleep(pause);
    }
}

/// [`wait_in_sync`] on the kernel's device-mapper.
pub fn wait_resynced(vg: &str, lv: &str, report: &mut dyn FnMut(&str, f64)) -> Result<()> {
    let ctl = Control::open().context("opening /dev/mapper/control")?;
    wait_in_sync(&ctl, vg, lv, std::time::Duration::from_millis(100), report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dm::recording::{add_lv, test_vg, RecordingDm};

    /// A VG of `pvs` PVs with a mirror `mir` of `n` images of 4 extents, image i on PV i.
    fn mirror_vg(pvs: &[u64], n: usize, disk_log: bool) -> (Vg, DevMap) {
        let (mut vg, devs) = test_vg("vg", pvs);
        let mut mirrors = Vec::new();
        for i in 0..n {
            let name = format!("mir_mimage_{i}");
            add_lv(
                &mut vg,
                &name,
                vec![Segment {
                    start_extent: 0,
                    extent_count: 4,
                    kind: SegmentKind::Striped {
                        stripe_size: None,
                        stripes: vec![(format!("pv{i}"), 0)],
                    },
                }],
            );
            vg.lvs.last_mut().unwrap().status.retain(|s| s != "VISIBLE");
            mirrors.push(Value::Str(name));
            mirrors.push(Value::Int(0));
        }
        let mut seg = Section::default();
        seg.push("start_extent", Value::Int(0))
            .push("extent_count", Value::Int(4))
            .push("type", Value::Str("mirror".into()))
            .push("mirror_count", Value::Int(n as i64))
            .push("region_size", Value::Int(4096));
        if disk_log {
            add_lv(
                &mut vg,
                "mir_mlog",
                vec![Segment {
                    start_extent: 0,
                    extent_count: 1,
                    kind: SegmentKind::Striped {
                        stripe_size: None,
                        stripes: vec![(format!("pv{n}"), 0)],
                    },
                }],
            );
            seg.push("mirror_log", Value::Str("mir_mlog".into()));
        }
        seg.push("mirrors", Value::Array(mirrors));
        add_lv(
            &mut vg,
            "mir",
            vec![Segment {
                start_extent: 0,
                extent_count: 4,
                kind: SegmentKind::Other(seg),
            }],
        );
        (vg, devs)
    }

    #[derive(Default)]
    struct Log(Vec<String>);
    impl RepairIo for Log {
        fn commit(&mut self, vg: &Vg, step: &str) -> Result<()> {
            self.0.push(format!("commit {step} seqno {}", vg.seqno));
            Ok(())
        }
        fn zero(&mut self, _vg: &Vg, lv: &str) -> Result<()> {
            self.0.push(format!("zero {lv}"));
            Ok(())
        }
    }

    #[test]
    fn status_lines() {
        let h = MirrorHealth::parse("2 253:1 253:2 16/16 1 AD 1 core").unwrap();
        assert_eq!(h.images, ['A', 'D']);
        assert_eq!(h.log, None);
        assert!(h.any_failed());
        let h = MirrorHealth::parse("3 253:1 253:2 253:3 3/16 1 AAA 3 disk 253:4 D").unwrap();
        assert_eq!((h.log, h.sync), (Some('D'), (3, 16)));
        assert!(h.any_failed());
        assert!(!MirrorHealth::parse("2 253:1 253:2 16/16 1 AA 1 core")
            .unwrap()
            .any_failed());
        assert_eq!(MirrorHealth::parse("2 253:1 253:2 16/16 1 A 1 core"), None);
        assert_eq!(MirrorHealth::parse("garbage"), None);
    }

    #[test]
    fn two_images_one_failed_becomes_linear() {
        let (vg, _) = mirror_vg(&[10, 10, 10], 2, false);
        let (after, done, bad) = remove_failed(&vg, "mir", &[1], false).unwrap();
        assert!(done.linear);
        assert_eq!(done.removed, ["mir_mimage_1"]);
        assert_eq!(bad, ["pv1"]);
        assert!(after.lv("mir_mimage_0").is_none() && after.lv("mir_mimage_1").is_none());
        let mir = after.lv("mir").unwrap();
        assert!(matches!(&mir.segments[0].kind,
            SegmentKind::Striped { stripes, .. } if stripes == &[("pv0".to_owned(), 0)]));
        // Every extent of pv1 is free again.
        assert_eq!(after.free_extents(), vg.free_extents() + 4);
        assert_eq!(after.seqno, vg.seqno + 1);
    }

    #[test]
    fn allocate_policy_replaces_the_image_elsewhere() {
        let (vg, mut devs) = mirror_vg(&[10, 10, 10], 2, false);
        devs.pvs.insert("pv2".into(), "7:2".into());
        let dm = RecordingDm::new();
        let mut d = devs.clone();
        activate::activate_lv(&dm, &vg, vg.lv("mir").unwrap(), &mut d, "", &[]).unwrap();
        dm.set_status("vg-mir", &["2 253:0 253:1 16/16 1 AD 1 core"]);
        dm.clear_log();
        let health = live_health(&dm, "vg", "mir").unwrap();
        let mut io = Log::default();
        let pol = Policies {
            image: FaultPolicy::Allocate,
            log: FaultPolicy::Allocate,
        };
        let (after, done) = repair(
            &Live {
                ctl: &dm,
                devs: &devs,
                prefix: "",
            },
            &vg,
            "mir",
            &health,
            pol,
            &mut io,
        )
        .unwrap();
        assert_eq!(done.removed, ["mir_mimage_1"]);
        assert!(!done.linear);
        assert_eq!(done.added, ["mir_mimage_1"]);
        // The new image is on pv2: neither the surviving image's PV nor the failed one.
        assert_eq!(pvs_of(&after, "mir_mimage_1"), ["pv2"]);
        assert_eq!(after.lv("mir").unwrap().mirror().unwrap().images.len(), 2);
        assert_eq!(io.0, ["commit remove seqno 2", "commit allocate seqno 3"]);
        // Step 1: linear table, suspended without flush around the commit, images gone;
        // step 2: the images are created before the mirror is reloaded over them.
        let log = dm.log();
        let pos = |l: &str| {
            log.iter()
                .position(|x| x == l)
                .unwrap_or_else(|| panic!("{l}: {log:?}"))
        };
        assert!(pos("load vg-mir: 0 32768 linear 7:0 2048") < pos("suspend vg-mir noflush"));
        assert!(pos("remove vg-mir_mimage_1") > pos("suspend vg-mir noflush"));
        let creates = dm.calls("create");
        assert_eq!(creates, ["vg-mir_mimage_0", "vg-mir_mimage_1"]);
        let mirror_load = log
            .iter()
            .rposition(|l| l.starts_with("load vg-mir: 0 32768 mirror core 1 4096 2 "))
            .expect("mirror reloaded");
        assert!(pos("create vg-mir_mimage_1") < mirror_load);
        assert_eq!(
            log.iter()
                .filter(|l| *l == "suspend vg-mir noflush")
                .count(),
            2
        );
        assert!(dm.live_table("vg-mir_mimage_1").unwrap()[0]
            .params
            .starts_with("7:2 "));
    }

    #[test]
    fn remove_policy_keeps_a_three_way_mirror_and_replaces_a_failed_log() {
        let (vg, mut devs) = mirror_vg(&[10, 10, 10, 10, 10], 3, true);
        devs.pvs.insert("pv4".into(), "7:4".into());
        let dm = RecordingDm::new();
        let mut d = devs.clone();
        activate::activate_lv(&dm, &vg, vg.lv("mir").unwrap(), &mut d, "", &[]).unwrap();
        dm.set_status(
            "vg-mir",
            &["3 253:1 253:2 253:3 16/16 1 ADA 3 disk 253:0 D"],
        );
        dm.clear_log();
        let health = live_health(&dm, "vg", "mir").unwrap();
        let mut io = Log::default();
        let pol = Policies {
            image: FaultPolicy::Remove,
            log: FaultPolicy::Allocate,
        };
        let (after, done) = repair(
            &Live {
                ctl: &dm,
                devs: &devs,
                prefix: "",
            },
            &vg,
            "mir",
            &health,
            pol,
            &mut io,
        )
        .unwrap();
        assert_eq!(done.removed, ["mir_mimage_1"]);
        assert!(done.log_removed && done.log_added && done.added.is_empty());
        let m = after.lv("mir").unwrap().mirror().unwrap();
        assert_eq!(
            m.images.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
            ["mir_mimage_0", "mir_mimage_2"]
        );
        // The new log is on the one PV nothing of the mirror used: pv4.
        assert_eq!(pvs_of(&after, "mir_mlog"), ["pv4"]);
        assert_eq!(
            io.0,
            [
                "commit remove seqno 2",
                "zero mir_mlog",
                "commit allocate seqno 3"
            ]
        );
        let loads = dm.calls("load");
        assert!(
            loads[0].starts_with("vg-mir: 0 32768 mirror core 1 4096 2 "),
            "{loads:?}"
        );
        assert!(loads
            .last()
            .unwrap()
            .starts_with("vg-mir: 0 32768 mirror disk 2 "));
        assert!(dm.calls("remove").contains(&"vg-mir_mlog".to_owned()));
    }

    #[test]
    fn no_room_falls_back_to_remove() {
        // Two PVs only: the replacement would have to share a PV with image 0.
        let (vg, devs) = mirror_vg(&[10, 10], 2, false);
        let dm = RecordingDm::new();
        let mut d = devs.clone();
        activate::activate_lv(&dm, &vg, vg.lv("mir").unwrap(), &mut d, "", &[]).unwrap();
        dm.set_status("vg-mir", &["2 253:0 253:1 16/16 1 DA 1 core"]);
        let health = live_health(&dm, "vg", "mir").unwrap();
        let pol = Policies {
            image: FaultPolicy::Allocate,
            log: FaultPolicy::Allocate,
        };
        let mut io = Log::default();
        let (after, done) = repair(
            &Live {
                ctl: &dm,
                devs: &devs,
                prefix: "",
            },
            &vg,
            "mir",
            &health,
            pol,
            &mut io,
        )
        .unwrap();
        assert!(done.linear && done.added.is_empty());
        assert_eq!(io.0, ["commit remove seqno 2"]);
        assert!(matches!(&after.lv("mir").unwrap().segments[0].kind,
            SegmentKind::Striped { stripes, .. } if stripes[0].0 == "pv1"));
        assert_eq!(dm.devices(), ["vg-mir"]);
    }

    #[test]
    fn nothing_failed_is_refused() {
        let (vg, devs) = mirror_vg(&[10, 10], 2, false);
        let dm = RecordingDm::new();
        let h = MirrorHealth::parse("2 253:0 253:1 16/16 1 AA 1 core").unwrap();
        let pol = Policies {
            image: FaultPolicy::Remove,
            log: FaultPolicy::Remove,
        };
        assert!(repair(
            &Live {
                ctl: &dm,
                devs: &devs,
                prefix: ""
            },
            &vg,
            "mir",
            &h,
            pol,
            &mut Log::default()
        )
        .is_err());
        let h = MirrorHealth::parse("2 253:0 253:1 16/16 1 DD 1 core").unwrap();
        assert!(repair(
            &Live {
                ctl: &dm,
                devs: &devs,
                prefix: ""
            },
            &vg,
            "mir",
            &h,
            pol,
            &mut Log::default()
        )
        .is_err());
    }

    #[test]
    fn resync_wait_reports_until_every_region_is_in_sync() {
        let (vg, mut devs) = mirror_vg(&[10, 10], 2, false);
        let dm = RecordingDm::new();
        activate::activate_lv(&dm, &vg, vg.lv("mir").unwrap(), &mut devs, "", &[]).unwrap();
        dm.set_status("vg-mir", &["2 253:0 253:1 4/16 1 AA 1 core"]);
        let mut seen = Vec::new();
        // Each look lets the simulated kernel copy six more regions.
        let mut copied = 4;
        wait_in_sync(
            &dm,
            "vg",
            "mir",
            std::time::Duration::ZERO,
            &mut |name, pct| {
                seen.push(format!("{name} {pct}"));
                copied = (copied + 6).min(16);
                let line = format!("2 253:0 253:1 {copied}/16 1 AA 1 core");
                dm.set_status("vg-mir", &[line.as_str()]);
            },
        )
        .unwrap();
        assert_eq!(seen, ["vg/mir 25", "vg/mir 62.5", "vg/mir 100"]);
        // An image failing during the resync ends the wait with an error.
        dm.set_status("vg-mir", &["2 253:0 253:1 4/16 1 AD 1 core"]);
        let err =
            wait_in_sync(&dm, "vg", "mir", std::time::Duration::ZERO, &mut |_, _| {}).unwrap_err();
        assert!(err.to_string().contains("failed"), "{err}");
    }
}
