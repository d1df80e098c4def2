// SPDX-License-Identifier: GPL-2.0 OR MIT

//! `pvmove`: moves the extents of a PV to other PVs while the LVs stay online, in LVM2's
//! layout so either tool can see (and finish) a move in progress.
//!
//! The metadata first gets a `pvmoveN` LV (status `PVMOVE`, `LOCKED`) with one `mirror`
//! segment per moved range, areas (source PV, destination PV), and every LV area on the
//! source PV is replaced by the matching range of `pvmoveN`. The kernel copies one range at
//! a time: that range is a running mirror, ranges already copied are linear on the
//! destination, later ones linear on the source (see `dm::mirror`). Each finished range is
//! committed (`extents_moved`), so an interrupted move resumes where it stopped. At the
//! end the LVs point at the destination directly and `pvmoveN` goes.

use super::lv::live_lv_devices;
use super::{commit, commit_members, merge_segments, Scan};
use crate::config::{Node, Section, Value};
use crate::dm::activate::DevMap;
use crate::dm::activate::{self, dm_name};
use crate::dm::backend::DmBackend;
use crate::dm::ioctl::{Control, DevId};
use crate::dm::mirror::{is_pvmove, moved_extents};
use crate::label::{dashed, new_uuid, undashed};
use crate::pv::Pv;
use crate::vg::{Lv, Segment, SegmentKind, Vg};
use anyhow::{anyhow, bail, Context, Result};
use std::path::{Path, PathBuf};

/// LVM2's default region size in sectors (2 MiB).
const REGION: u64 = 4096;

/// A range to move: source (PV key, first extent), length, destination.
struct Move {
    src: (String, u64),
    len: u64,
    dst: (String, u64),
}

fn pv_key(vg: &Vg, members: &[&Pv], path: &Path) -> Result<String> {
    let p = members
        .iter()
        .find(|p| p.path == path)
        .ok_or_else(|| anyhow!("{} is not a PV of {}", path.display(), vg.name))?;
    vg.pvs
        .iter()
        .find(|vp| undashed(&vp.id) == p.label.uuid)
        .map(|vp| vp.key.clone())
        .ok_or_else(|| anyhow!("{} is not in {}", path.display(), vg.name))
}

/// Destinations for `len` extents on `dst` PVs (free runs in PV order, a range split over
/// several runs when none holds it whole), taken out of `free`.
fn place(
    free: &mut [(String, Vec<(u64, u64)>)],
    dst: &[&String],
    len: u64,
) -> Vec<(String, u64, u64)> {
    let mut out = Vec::new();
    // One run holding the whole range first, as LVM2's normal policy prefers.
    for (pv, runs) in free.iter_mut().filter(|(k, _)| dst.contains(&k)) {
        if let Some(r) = runs.iter_mut().find(|(_, n)| *n >= len) {
            out.push((pv.clone(), r.0, len));
            r.0 += len;
            r.1 -= len;
            return out;
        }
    }
    let mut need = len;
    for (pv, runs) in free.iter_mut().filter(|(k, _)| dst.contains(&k)) {
        for r in runs.iter_mut() {
            if need == 0 {
                break;
            }
            let take = r.1.min(need);
            if take > 0 {
                out.push((pv.clone(), r.0, take));
                r.0 += take;
                r.1 -= take;
                need -= take;
            }
        }
    }
    if need > 0 {
        out.clear();
    }
    out
}

fn mirror_segment(start: u64, m: &Move, region: u64) -> Segment {
    let mut s = Section::default();
    s.push("start_extent", Value::Int(start as i64))
        .push("extent_count", Value::Int(m.len as i64))
        .push("type", Value::Str("mirror".into()))
        .push("mirror_count", Value::Int(2))
        .push("extents_moved", Value::Int(0))
        .push("region_size", Value::Int(region as i64))
        .push(
            "mirrors",
            Value::Array(vec![
                Value::Str(m.src.0.clone()),
                Value::Int(m.src.1 as i64),
                Value::Str(m.dst.0.clone()),
                Value::Int(m.dst.1 as i64),
            ]),
        );
    Segment {
        start_extent: start,
        extent_count: m.len,
        kind: SegmentKind::Other(s),
    }
}

fn set_status(lv: &mut Lv, flag: &str, on: bool) {
    lv.status.retain(|s| s != flag);
    if on {
        lv.status.push(flag.to_owned());
    }
}

/// Puts `pvmove` ranges for every LV area on `src` into `vg`; returns the pvmove LV name.
fn plan(vg: &mut Vg, src: &str, dst: &[String]) -> Result<String> {
    let mut free = vg.free_runs();
    let name = {
        let mut n = 0;
        while vg.lv(&format!("pvmove{n}")).is_some() {
            n += 1;
        }
        format!("pvmove{n}")
    };
    let mut moves: Vec<Move> = Vec::new();
    let mut moved_lvs = Vec::new();
    for (li, lv) in vg.lvs.iter_mut().enumerate() {
        let mut touched = false;
        for seg in &mut lv.segments {
            let SegmentKind::Striped { stripes, .. } = &mut seg.kind else {
                continue;
            };
            let per = seg.extent_count / stripes.len() as u64;
            let striped = stripes.len() > 1;
            // A stripe does not go to a PV another stripe of the segment is on.
            let others: Vec<String> = stripes.iter().map(|(p, _)| p.clone()).collect();
            let allowed: Vec<&String> = dst.iter().filter(|d| !others.contains(d)).collect();
            for area in stripes.iter_mut() {
                if area.0 != src {
                    continue;
                }
                let pieces = place(&mut free, &allowed, per);
                if pieces.is_empty() {
                    bail!(
                        "insufficient free space on the destination PVs for {per} extents of {}",
                        lv.name
                    );
                }
                if striped && pieces.len() > 1 {
                    bail!(
                        "a stripe of {} needs {per} contiguous free extents on a destination PV",
                        lv.name
                    );
                }
                let first_le: u64 = moves.iter().map(|m| m.len).sum();
                let mut at = area.1;
                for (pv, pe, n) in pieces {
                    moves.push(Move {
                        src: (src.to_owned(), at),
                        len: n,
                        dst: (pv, pe),
                    });
                    at += n;
                }
                *area = (name.clone(), first_le);
                touched = true;
            }
        }
        if touched {
            moved_lvs.push(li);
        }
    }
    if moves.is_empty() {
        bail!("no extents to move on the source PV");
    }
    for li in moved_lvs {
        set_status(&mut vg.lvs[li], "LOCKED", true);
    }
    let mut segments = Vec::new();
    let mut le = 0;
    for m in &moves {
        segments.push(mirror_segment(le, m, REGION.min(vg.extent_size)));
        le += m.len;
    }
    let mut raw = Section::default();
    raw.push("allocation_policy", Value::Str("contiguous".into()));
    vg.lvs.push(Lv {
        name: name.clone(),
        id: dashed(&new_uuid()?),
        status: ["READ", "WRITE", "PVMOVE", "LOCKED"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect(),
        segments,
        raw,
    });
    Ok(name)
}

/// The VG with the move finished: areas on `pvmove` replaced by their destinations. With
/// `abort`, as LVM2's `pvmove --abort`: only ranges recorded as copied
/// (`extents_moved` equal to their length) keep the destination, the others go back to
/// the source.
fn finish(vg: &mut Vg, pvmove: &str, abort: bool) -> Result<()> {
    let pm = vg
        .lv(pvmove)
        .cloned()
        .ok_or_else(|| anyhow!("{pvmove} vanished"))?;
    // (pvmove LE range) -> destination.
    let dests: Vec<(u64, u64, String, u64)> = pm
        .segments
        .iter()
        .filter_map(|s| {
            let m = s.mirror()?;
            let keep = if abort && moved_extents(s) < s.extent_count {
                0
            } else {
                1
            };
            let (pv, pe) = *m.images.get(keep)?;
            Some((s.start_extent, s.extent_count, pv.to_owned(), pe))
        })
        .collect();
    let resolve = |le: u64, len: u64| -> Vec<(String, u64, u64)> {
        let mut out = Vec::new();
        let mut at = le;
        while at < le + len {
            let Some((s, n, pv, pe)) = dests.iter().find(|(s, n, _, _)| at >= *s && at < s + n)
            else {
                break;
            };
            let take = (s + n - at).min(le + len - at);
            out.push((pv.clone(), pe + (at - s), take));
            at += take;
        }
        out
    };
    for lv in vg.lvs.iter_mut().filter(|l| l.name != pvmove) {
        let mut touched = false;
        let mut segs = Vec::new();
        for seg in lv.segments.drain(..) {
            let SegmentKind::Striped {
                stripe_size,
                stripes,
            } = &seg.kind
            else {
                segs.push(seg);
                continue;
            };
            if !stripes.iter().any(|(n, _)| n == pvmove) {
                segs.push(seg);
                continue;
            }
            touched = true;
            let per = seg.extent_count / stripes.len() as u64;
            if stripes.len() == 1 {
                let mut le = seg.start_extent;
                for (pv, pe, n) in resolve(stripes[0].1, per) {
                    segs.push(Segment {
                        start_extent: le,
                        extent_count: n,
                        kind: SegmentKind::Striped {
                            stripe_size: None,
                            stripes: vec![(pv, pe)],
                        },
                    });
                    le += n;
                }
            } else {
                let mut areas = Vec::new();
                for (n, pe) in stripes {
                    if n == pvmove {
                        let r = resolve(*pe, per);
                        let [(pv, dpe, _)] = r.as_slice() else {
                            bail!("stripe of {} moved to a split range", lv.name);
                        };
                        areas.push((pv.clone(), *dpe));
                    } else {
                        areas.push((n.clone(), *pe));
                    }
                }
                segs.push(Segment {
                    start_extent: seg.start_extent,
                    extent_count: seg.extent_count,
                    kind: SegmentKind::Striped {
                        stripe_size: *stripe_size,
                        stripes: areas,
                    },
                });
            }
        }
        lv.segments = segs;
        if touched {
            merge_segments(&mut lv.segments);
            set_status(lv, "LOCKED", false);
        }
    }
    vg.lvs.retain(|l| l.name != pvmove);
    Ok(())
}

/// Whether the running mirror of the live pvmove device is in sync.
fn in_sync(ctl: &dyn DmBackend, name: &str) -> Result<bool> {
    let st = ctl.status(&DevId::Name(name.to_owned()))?;
    for t in st.iter().filter(|t| t.kind.ends_with("mirror")) {
        let f: Vec<&str> = t.params.split_whitespace().collect();
        let n: usize = f.first().and_then(|s| s.parse().ok()).unwrap_or(0);
        let Some((a, b)) = f.get(n + 1).and_then(|s| s.split_once('/')) else {
            bail!("{name}: unexpected mirror status {:?}", t.params);
        };
        if f.get(n + 3).is_some_and(|h| h.contains('D')) {
            bail!("{name}: a mirror leg failed ({})", t.params);
        }
        if a != b {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Loads new tables into the active LVs among `names`; returns their devices.
fn load_tables(
    ctl: &dyn DmBackend,
    vg: &Vg,
    pvs: &DevMap,
    names: &[String],
    prefix: &str,
) -> Result<Vec<DevId>> {
    let mut live = Vec::new();
    for n in names {
        let Some(lv) = vg.lv(n) else { continue };
        // An origin's own table is on `-real`, a snapshot's COW LV is `-cow`.
        let mut dev = dm_name(&vg.name, n);
        if !vg.snapshots_of(n).is_empty() {
            dev.push_str("-real");
        } else if super::is_cow(vg, n) {
            dev.push_str("-cow");
        }
        let id = DevId::Name(dev);
        if ctl.info(&id).is_err() {
            continue;
        }
        let devs = live_lv_devices(ctl, vg, pvs.clone(), lv)?;
        let t = activate::table(vg, lv, &devs, prefix)?;
        ctl.load(&id, &t, !lv.status.iter().any(|s| s == "WRITE"))?;
        live.push(id);
    }
    Ok(live)
}

/// Suspends `devs` (flushing what is in flight), resumes `under` if given (a device the
/// new tables sit on), then resumes `devs` in reverse order: the switch happens between
/// I/Os.
fn switch(ctl: &dyn DmBackend, devs: &[DevId], under: Option<&DevId>) -> Result<()> {
    for id in devs {
        ctl.suspend(id, false)?;
    }
    if let Some(u) = under {
        ctl.resume(u)?;
    }
    for id in devs.iter().rev() {
        ctl.resume(id)?;
    }
    Ok(())
}

/// LVs with areas on `pvmove`.
fn users(vg: &Vg, pvmove: &str) -> Vec<String> {
    vg.lvs
        .iter()
        .filter(|l| {
            l.segments.iter().any(|s| match &s.kind {
                SegmentKind::Striped { stripes, .. } => stripes.iter().any(|(n, _)| n == pvmove),
                _ => false,
            })
        })
        .map(|l| l.name.clone())
        .collect()
}

/// Makes the move live: the pvmove device is loaded but resumed only once the LVs above it
/// are suspended on their new tables, so the copy never starts while writes still bypass
/// the mirror. A failure before the switch leaves no device behind.
pub(crate) fn start(
    ctl: &dyn DmBackend,
    vg: &Vg,
    pvs: &DevMap,
    pvmove: &str,
    prefix: &str,
) -> Result<()> {
    let movers = users(vg, pvmove);
    let pm_dev = dm_name(&vg.name, pvmove);
    let pm_id = DevId::Name(pm_dev.clone());
    let pm = vg.lv(pvmove).ok_or_else(|| anyhow!("{pvmove} vanished"))?;
    let created = ctl.info(&pm_id).is_err();
    if created {
        ctl.create(&pm_dev, &activate::dm_uuid(vg, pm))?;
    }
    let loaded = activate::table(vg, pm, pvs, prefix)
        .and_then(|t| activate::load_table(ctl, &pm_id, &t, false))
        .and_then(|()| load_tables(ctl, vg, pvs, &movers, prefix));
    let above = match loaded {
        Ok(a) => a,
        Err(e) => {
            if created {
                let _ = ctl.remove(&pm_id);
            }
            return Err(e);
        }
    };
    switch(ctl, &above, Some(&pm_id))?;
    let info = ctl.info(&pm_id)?;
    ctl.make_node(&pm_dev, info.major, info.minor)?;
    Ok(())
}

/// How far the move is, in percent of its extents: ranges recorded as copied, plus the
/// regions of the running mirror in sync (what LVM2's poller prints).
pub(crate) fn progress(ctl: &dyn DmBackend, vg: &Vg, pvmove: &str) -> f64 {
    let Some(pm) = vg.lv(pvmove) else {
        return 100.0;
    };
    let total = pm.extents().max(1) as f64;
    let mut done: f64 = pm.segments.iter().map(moved_extents).sum::<u64>() as f64;
    let running = pm
        .segments
        .iter()
        .find(|s| moved_extents(s) < s.extent_count);
    if let (Some(seg), Ok(st)) = (running, ctl.status(&DevId::Name(dm_name(&vg.name, pvmove)))) {
        for t in st.iter().filter(|t| t.kind.ends_with("mirror")) {
            let f: Vec<&str> = t.params.split_whitespace().collect();
            let n: usize = f.first().and_then(|s| s.parse().ok()).unwrap_or(0);
            let ratio = f
                .get(n + 1)
                .and_then(|s| s.split_once('/'))
                .and_then(|(a, b)| {
                    let (a, b) = (a.parse::<f64>().ok()?, b.parse::<f64>().ok()?);
                    (b > 0.0).then_some(a / b)
                });
            done += ratio.unwrap_or(0.0) * seg.extent_count as f64;
        }
    }
    (done * 100.0 / total).min(100.0)
}

/// Ends a move in `vg`: the moved LVs point at the PVs (the destinations, or with `abort`
/// the sources of ranges not yet copied), `vg` is committed, the LVs switch to their new
/// tables and the pvmove device goes.
fn conclude(
    ctl: &dyn DmBackend,
    vg: &mut Vg,
    pvs: &DevMap,
    pvmove: &str,
    prefix: &str,
    abort: bool,
    commit: &mut dyn FnMut(&Vg, &str) -> Result<()>,
) -> Result<()> {
    let movers = users(vg, pvmove);
    let pm_dev = dm_name(&vg.name, pvmove);
    finish(vg, pvmove, abort)?;
    vg.seqno += 1;
    let what = if abort { "aborted" } else { "done" };
    commit(
        vg,
        &format!("Write from orion-lvm pvmove ({pvmove} {what})."),
    )?;
    let above = load_tables(ctl, vg, pvs, &movers, prefix)?;
    switch(ctl, &above, None)?;
    let pm_id = DevId::Name(pm_dev.clone());
    if ctl.info(&pm_id).is_ok() {
        ctl.remove(&pm_id)
            .with_context(|| format!("removing {pm_dev}"))?;
    }
    ctl.remove_node(&pm_dev);
    Ok(())
}

/// Copies the ranges of `pvmove` not yet moved, one at a time: waits for the running
/// mirror to be in sync (looking every `poll`, calling `progress_to` with the percentage
/// done on every look),
/// commits the range as moved (`commit` writes the VG), and loads the next range; then
/// points the LVs at the destinations, commits, and removes the pvmove device. `vg` ends
/// as committed last.
#[expect(clippy::too_many_arguments)]
pub(crate) fn copy_ranges(
    ctl: &dyn DmBackend,
    vg: &mut Vg,
    pvs: &DevMap,
    pvmove: &str,
    prefix: &str,
    commit: &mut dyn FnMut(&Vg, &str) -> Result<()>,
    progress_to: &mut dyn FnMut(f64),
    poll: std::time::Duration,
) -> Result<()> {
    let pm_dev = dm_name(&vg.name, pvmove);
    loop {
        let pm = vg.lv(pvmove).ok_or_else(|| anyhow!("{pvmove} vanished"))?;
        let Some(k) = pm
            .segments
            .iter()
            .position(|s| moved_extents(s) < s.extent_count)
        else {
            break;
        };
        loop {
            progress_to(progress(ctl, vg, pvmove));
            if in_sync(ctl, &pm_dev)? {
                break;
            }
            std::thread::sleep(poll);
        }
        // Range k is copied: record it, then the next range becomes the running mirror.
        let i = vg
            .lvs
            .iter()
            .position(|l| l.name == pvmove)
            .ok_or_else(|| anyhow!("{pvmove} vanished"))?;
        let seg = &mut vg.lvs[i].segments[k];
        let n = seg.extent_count;
        if let SegmentKind::Other(s) = &mut seg.kind {
            s.set("extents_moved", Node::Value(Value::Int(n as i64)));
        }
        vg.seqno += 1;
        commit(vg, &format!("Write from orion-lvm pvmove ({pvmove})."))?;
        let me = load_tables(
            ctl,
            vg,
            pvs,
            std::slice::from_ref(&pvmove.to_owned()),
            prefix,
        )?;
        switch(ctl, &me, None)?;
    }
    conclude(ctl, vg, pvs, pvmove, prefix, false, commit)
}

/// `pvmove --abort` of `pvmove` in `vg`: copied ranges stay on their destinations, the
/// running and later ranges go back to their sources (LVM2's semantics); the mirror is
/// dropped and the LVs switch to linear tables on the PVs.
pub(crate) fn abort_move(
    ctl: &dyn DmBackend,
    vg: &mut Vg,
    pvs: &DevMap,
    pvmove: &str,
    prefix: &str,
    commit: &mut dyn FnMut(&Vg, &str) -> Result<()>,
) -> Result<()> {
    conclude(ctl, vg, pvs, pvmove, prefix, true, commit)
}

/// LVM2's VG lock file (`/run/lock/lvm/V_VG`, flock), which orders our pollers,
/// `pvmove --abort` and real LVM2 around the metadata of a move.
fn lock_vg(name: &str) -> Result<std::fs::File> {
    let dir = Path::new("/run/lock/lvm");
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join(format!("V_{name}"));
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    f.lock()
        .with_context(|| format!("locking {}", path.display()))?;
    Ok(f)
}

/// The move ended in another process (aborted or finished by another pvmove).
#[derive(Debug, thiserror::Error)]
#[error("the move was ended by another command")]
struct EndedElsewhere;

/// A commit for a move that may be aborted or finished by another process: under the VG
/// lock, the metadata on disk must still be the one this process wrote last.
fn guarded_commit(paths: &[PathBuf], vg: &Vg, pvmove: &str, what: &str) -> Result<()> {
    let _lock = lock_vg(&vg.name)?;
    let scan = Scan::run(paths)?;
    let on_disk = scan.vg(&vg.name).map(|(v, _)| v);
    match on_disk {
        Some(d) if d.seqno + 1 == vg.seqno && d.lv(pvmove).is_some() => commit(vg, paths, what),
        _ => Err(EndedElsewhere.into()),
    }
}

/// What a `pvmove` run did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Moved {
    /// The source PV's device.
    pub source: String,
    /// Extents of the move.
    pub extents: u64,
    /// How it ended.
    pub end: MoveEnd,
}

/// How a `pvmove` run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MoveEnd {
    /// Every extent moved.
    Done,
    /// Started; a background poller finishes it.
    Background,
    /// Aborted (`--abort`).
    Aborted,
    /// Another command aborted or finished it while we polled.
    Elsewhere,
}

/// The options of `pvmove`.
pub struct PvmoveArgs<'a> {
    /// Source PV (none: carry on with, or abort, the move in progress).
    pub source: Option<&'a Path>,
    /// Destination PVs (default: any other PV of the VG).
    pub destinations: &'a [PathBuf],
    /// `-b`: start, then poll in a background process.
    pub background: bool,
    /// `--abort`.
    pub abort: bool,
    /// `-i`: seconds between progress lines (0: none); a poller looks this often.
    pub interval: u64,
    /// This process is the background poller `-b` started (the move is live already).
    pub as_poller: bool,
    /// Target name prefix.
    pub prefix: &'a str,
}

/// The device of the source PV of `pvmove` (its first range's).
fn source_of(vg: &Vg, members: &[&Pv], pvmove: &str) -> String {
    let key = vg
        .lv(pvmove)
        .and_then(|l| l.segments.first())
        .and_then(|s| s.mirror())
        .and_then(|m| m.images.first().map(|(k, _)| (*k).to_owned()));
    key.and_then(|k| vg.pv(&k))
        .and_then(|vp| {
            members
                .iter()
                .find(|p| dashed(&p.label.uuid) == vp.id)
                .map(|p| p.path.display().to_string())
        })
        .unwrap_or_else(|| pvmove.to_owned())
}

/// Starts the background poller: this program's `pvmove` without a source, restricted to
/// the VG's PVs, in its own process group with no terminal output (LVM2's poller
/// daemonizes the same way).
fn spawn_poller(paths: &[PathBuf], interval: u64, prefix: &str) -> Result<()> {
    use std::os::unix::process::CommandExt;
    let exe = std::env::current_exe().context("finding orion-lvm for the poller")?;
    let devices: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    std::process::Command::new(exe)
        .args(["pvmove", "--as-poller"])
        .args(["-i", &interval.to_string()])
        .args(["--target-prefix", prefix])
        .args(["--devices", &devices.join(",")])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .process_group(0)
        .spawn()
        .context("starting the pvmove poller")?;
    Ok(())
}

/// `pvmove SRC [DST...]`: moves every extent of SRC (to DST PVs, default any other PV of
/// the VG). `pvmove` without a source carries on with an interrupted or backgrounded
/// move (of the first VG that has one); `--abort` ends it instead, as LVM2 does. With
/// `background` the move is started and a background poller (`pvmove` without a source)
/// finishes it. `progress` gets the source device and the percentage moved every
/// `interval` seconds in the foreground, and at the end.
pub fn pvmove(a: &PvmoveArgs<'_>, progress_to: &mut dyn FnMut(&str, f64)) -> Result<Moved> {
    let (src, dst, prefix) = (a.source, a.destinations, a.prefix);
    let scan = Scan::run(&[])?;
    let (mut vg, members, pvmove) = match src {
        Some(src) if !a.abort => {
            let (vg, members) = scan
                .vg_names()
                .iter()
                .filter_map(|n| scan.vg(n))
                .find(|(_, m)| m.iter().any(|p| p.path == src))
                .ok_or_else(|| anyhow!("{} is not a PV of any volume group", src.display()))?;
            if vg.lvs.iter().any(is_pvmove) {
                bail!(
                    "{} has a move in progress; finish it with pvmove and no arguments",
                    vg.name
                );
            }
            let src_key = pv_key(&vg, &members, src)?;
            let dst_keys = if dst.is_empty() {
                vg.pvs
                    .iter()
                    .map(|p| p.key.clone())
                    .filter(|k| *k != src_key)
                    .collect()
            } else {
                dst.iter()
                    .map(|d| pv_key(&vg, &members, d))
                    .collect::<Result<Vec<_>>>()?
            };
            if dst_keys.contains(&src_key) {
                bail!("the source PV cannot also be a destination");
            }
            let before = vg.clone();
            let mut vg = vg;
            let name = plan(&mut vg, &src_key, &dst_keys)?;
            vg.seqno += 1;
            commit_members(
                &vg,
                &members,
                &format!("Write from orion-lvm pvmove {}.", src.display()),
            )?;
            if let Err(e) = Control::open()
                .context("opening /dev/mapper/control")
                .and_then(|ctl| {
                    start(
                        &ctl,
                        &vg,
                        &activate::pv_devices(&vg, &members)?,
                        &name,
                        prefix,
                    )
                })
            {
                // Nothing moved yet: put the metadata back as it was.
                let mut back = before;
                back.seqno = vg.seqno + 1;
                commit_members(
                    &back,
                    &members,
                    "Write from orion-lvm pvmove (failed start undone).",
                )?;
                return Err(e);
            }
            (vg, members, name)
        }
        _ => {
            // The move in progress (of the VG of the given PV, with --abort).
            let (vg, members) = scan
                .vg_names()
                .iter()
                .filter_map(|n| scan.vg(n))
                .filter(|(_, m)| src.is_none_or(|s| m.iter().any(|p| p.path == s)))
                .find(|(v, _)| v.lvs.iter().any(is_pvmove))
                .ok_or_else(|| anyhow!("no pvmove in progress"))?;
            let name = vg
                .lvs
                .iter()
                .find(|l| is_pvmove(l))
                .map(|l| l.name.clone())
                .ok_or_else(|| anyhow!("no pvmove in progress"))?;
            (vg, members, name)
        }
    };
    let paths: Vec<PathBuf> = members.iter().map(|p| p.path.clone()).collect();
    let out = Moved {
        source: source_of(&vg, &members, &pvmove),
        extents: vg.lv(&pvmove).map(Lv::extents).unwrap_or(0),
        end: MoveEnd::Done,
    };
    let ended = |end| Moved { end, ..out.clone() };
    let ctl = Control::open().context("opening /dev/mapper/control")?;
    let pvs = activate::pv_devices(&vg, &members)?;
    if a.abort {
        let _lock = lock_vg(&vg.name)?;
        // Fresh metadata: a poller may have recorded more ranges since the scan.
        let (mut fresh, _) = Scan::run(&paths)?.need_vg(&vg.name)?;
        if fresh.lv(&pvmove).is_none() {
            return Ok(ended(MoveEnd::Elsewhere));
        }
        abort_move(&ctl, &mut fresh, &pvs, &pvmove, prefix, &mut |v, what| {
            commit(v, &paths, what)
        })?;
        return Ok(ended(MoveEnd::Aborted));
    }
    if src.is_none() && !a.as_poller {
        start(&ctl, &vg, &pvs, &pvmove, prefix)?;
    }
    if a.background {
        spawn_poller(&paths, a.interval, prefix)?;
        return Ok(ended(MoveEnd::Background));
    }
    // The foreground looks often and prints every interval; a poller, as LVM2's, looks
    // (and so records a copied range) only every interval.
    let poll = if a.as_poller {
        std::time::Duration::from_secs(a.interval).max(std::time::Duration::from_millis(50))
    } else {
        std::time::Duration::from_millis(50)
    };
    let mut ticker = super::Ticker::new(if a.as_poller { 0 } else { a.interval });
    let source = out.source.clone();
    if a.as_poller {
        // As LVM2's background poller: the first look comes one interval after the start.
        std::thread::sleep(poll);
    }
    let copied = copy_ranges(
        &ctl,
        &mut vg,
        &pvs,
        &pvmove,
        prefix,
        &mut |v, what| guarded_commit(&paths, v, &pvmove, what),
        &mut |p| {
            // LVM2's poller reports at once, then every interval.
            if ticker.due() {
                progress_to(&source, p);
            }
        },
        poll,
    );
    match copied {
        Ok(()) => {
            if !a.as_poller {
                progress_to(&source, 100.0);
            }
            Ok(out)
        }
        Err(e) => {
            // Aborted or finished elsewhere: the metadata no longer has the move.
            let gone = Scan::run(&paths)
                .ok()
                .and_then(|s| s.vg(&vg.name).map(|(v, _)| v.lv(&pvmove).is_none()))
                .unwrap_or(false);
            if e.downcast_ref::<EndedElsewhere>().is_some() || gone {
                Ok(ended(MoveEnd::Elsewhere))
            } else {
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::{allocate, LvRequest};
    use crate::dm::activate::activate_lv;
    use crate::dm::recording::{add_lv, test_vg, RecordingDm};

    #[test]
    fn pvmove_steps_through_the_recording_backend() {
        let (mut vg, mut devs) = test_vg("vg", &[10, 10]);
        let req = LvRequest {
            name: "lv",
            extents: 3,
            stripes: 1,
            stripe_size: 128,
        };
        let segs = allocate(&vg, &req).unwrap();
        add_lv(&mut vg, "lv", segs);
        let dm = RecordingDm::new();
        let lv = vg.lv("lv").unwrap().clone();
        activate_lv(&dm, &vg, &lv, &mut devs, "", &[]).unwrap();
        dm.clear_log();

        let name = plan(&mut vg, "pv0", &["pv1".to_owned()]).unwrap();
        assert_eq!(name, "pvmove0");
        start(&dm, &vg, &devs, &name, "").unwrap();
        let log = dm.log();
        let at = |l: &str| log.iter().position(|x| x == l).unwrap_or(usize::MAX);
        // The mirror starts only once the LV above it is suspended on its new table.
        assert!(at("suspend vg-lv") < at("resume vg-pvmove0"));
        assert!(at("resume vg-pvmove0") < at("resume vg-lv"));
        assert_eq!(
            dm.calls("load"),
            [
                "vg-pvmove0: 0 24576 mirror core 1 4096 2 7:0 2048 7:1 2048",
                "vg-lv: 0 24576 linear 253:1 0",
            ]
        );
        assert!(log.contains(&"modprobe dm-mirror".to_owned()));

        dm.clear_log();
        let mut commits = Vec::new();
        let mut seen = Vec::new();
        copy_ranges(
            &dm,
            &mut vg,
            &devs,
            &name,
            "",
            &mut |v, what| {
                commits.push((v.seqno, what.to_owned(), v.lv("pvmove0").is_some()));
                Ok(())
            },
            &mut |p| seen.push(p),
            std::time::Duration::ZERO,
        )
        .unwrap();
        // The simulated mirror is in sync at once: the one range shows as all moved.
        assert_eq!(seen, [100.0]);
        // One commit for the range copied, one with the move finished.
        assert_eq!(commits.len(), 2);
        assert!(commits[0].2 && !commits[1].2);
        assert!(commits[0].0 < commits[1].0);
        assert_eq!(
            dm.calls("load"),
            [
                "vg-pvmove0: 0 24576 linear 7:1 2048",
                "vg-lv: 0 24576 linear 7:1 2048",
            ]
        );
        assert_eq!(dm.calls("remove"), ["vg-pvmove0"]);
        let lv = vg.lv("lv").unwrap();
        assert!(matches!(&lv.segments[0].kind,
            SegmentKind::Striped { stripes, .. } if stripes[0] == ("pv1".into(), 0)));
        assert!(!lv.status.iter().any(|s| s == "LOCKED"));
        assert_eq!(dm.devices(), ["vg-lv"]);
    }

    #[test]
    fn pvmove_without_room_plans_nothing() {
        let (mut vg, _) = test_vg("vg", &[10, 2]);
        let req = LvRequest {
            name: "lv",
            extents: 5,
            stripes: 1,
            stripe_size: 128,
        };
        let segs = allocate(&vg, &req).unwrap();
        add_lv(&mut vg, "lv", segs);
        let before = vg.clone();
        assert!(plan(&mut vg, "pv0", &["pv1".to_owned()]).is_err());
        assert_eq!(vg.lvs.len(), before.lvs.len());
    }

    /// A VG with LVs `a` and `b` on pv0, moving to pv1 in two ranges, the move started
    /// on the recording backend with both LVs active.
    fn two_range_move() -> (Vg, DevMap, RecordingDm) {
        let (mut vg, mut devs) = test_vg("vg", &[10, 10]);
        for n in ["a", "b"] {
            let req = LvRequest {
                name: n,
                extents: 2,
                stripes: 1,
                stripe_size: 128,
            };
            let segs = allocate(&vg, &req).unwrap();
            add_lv(&mut vg, n, segs);
        }
        let dm = RecordingDm::new();
        for n in ["a", "b"] {
            let lv = vg.lv(n).unwrap().clone();
            activate_lv(&dm, &vg, &lv, &mut devs, "", &[]).unwrap();
        }
        let name = plan(&mut vg, "pv0", &["pv1".to_owned()]).unwrap();
        assert_eq!(vg.lv(&name).unwrap().segments.len(), 2);
        start(&dm, &vg, &devs, &name, "").unwrap();
        dm.clear_log();
        (vg, devs, dm)
    }

    fn area_of(vg: &Vg, lv: &str) -> (String, u64) {
        match &vg.lv(lv).unwrap().segments[..] {
            [Segment {
                kind: SegmentKind::Striped { stripes, .. },
                ..
            }] => stripes[0].clone(),
            other => panic!("{lv}: {other:?}"),
        }
    }

    #[test]
    fn progress_counts_copied_ranges_and_the_running_mirror() {
        let (mut vg, _, dm) = two_range_move();
        // Nothing recorded yet; the running mirror (the first range, half the move)
        // reports itself in sync.
        assert_eq!(progress(&dm, &vg, "pvmove0"), 50.0);
        let i = vg.lvs.iter().position(|l| l.name == "pvmove0").unwrap();
        if let SegmentKind::Other(s) = &mut vg.lvs[i].segments[0].kind {
            s.set("extents_moved", Node::Value(Value::Int(2)));
        }
        assert_eq!(progress(&dm, &vg, "pvmove0"), 100.0);
        assert_eq!(progress(&dm, &vg, "pvmove9"), 100.0, "a finished move");
    }

    #[test]
    fn abort_keeps_copied_ranges_and_reverts_the_rest() {
        let (mut vg, devs, dm) = two_range_move();
        // The first range (LV a) was copied and recorded; the second is running.
        let i = vg.lvs.iter().position(|l| l.name == "pvmove0").unwrap();
        if let SegmentKind::Other(s) = &mut vg.lvs[i].segments[0].kind {
            s.set("extents_moved", Node::Value(Value::Int(2)));
        }
        let seq = vg.seqno;
        let mut commits = Vec::new();
        abort_move(&dm, &mut vg, &devs, "pvmove0", "", &mut |v, what| {
            commits.push((v.seqno, what.to_owned(), dm.log().len()));
            Ok(())
        })
        .unwrap();
        assert_eq!(
            area_of(&vg, "a"),
            ("pv1".to_owned(), 0),
            "copied: destination"
        );
        assert_eq!(area_of(&vg, "b"), ("pv0".to_owned(), 2), "running: source");
        assert!(vg.lv("pvmove0").is_none());
        assert!(vg
            .lvs
            .iter()
            .all(|l| !l.status.iter().any(|s| s == "LOCKED")));
        assert_eq!(commits.len(), 1);
        assert_eq!(commits[0].0, seq + 1);
        assert!(commits[0].1.contains("aborted"));
        assert_eq!(
            dm.calls("load"),
            [
                "vg-a: 0 16384 linear 7:1 2048",
                "vg-b: 0 16384 linear 7:0 18432"
            ]
        );
        // The LVs leave the mirror (suspended, resumed on the PVs) before it goes.
        let log = dm.log();
        let at = |l: &str| log.iter().position(|x| x == l).unwrap();
        assert!(at("resume vg-a") < at("remove vg-pvmove0"));
        assert!(at("resume vg-b") < at("remove vg-pvmove0"));
        assert_eq!(dm.devices(), ["vg-a", "vg-b"]);
    }
}
