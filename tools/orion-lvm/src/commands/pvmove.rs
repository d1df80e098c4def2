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

/// The VG with the move finished: areas on `pvmove` replaced by their destinations.
fn finish(vg: &mut Vg, pvmove: &str) -> Result<()> {
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
            let (pv, pe) = *m.images.get(1)?;
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

/// Copies the ranges of `pvmove` not yet moved, one at a time: waits for the running
/// mirror to be in sync, commits the range as moved (`commit` writes the VG), and loads
/// the next range; then points the LVs at the destinations, commits, and removes the
/// pvmove device. `vg` ends as committed last.
pub(crate) fn copy_ranges(
    ctl: &dyn DmBackend,
    vg: &mut Vg,
    pvs: &DevMap,
    pvmove: &str,
    prefix: &str,
    commit: &mut dyn FnMut(&Vg, &str) -> Result<()>,
) -> Result<()> {
    let movers = users(vg, pvmove);
    let pm_dev = dm_name(&vg.name, pvmove);
    let pm_id = DevId::Name(pm_dev.clone());
    loop {
        let pm = vg.lv(pvmove).ok_or_else(|| anyhow!("{pvmove} vanished"))?;
        let Some(k) = pm
            .segments
            .iter()
            .position(|s| moved_extents(s) < s.extent_count)
        else {
            break;
        };
        while !in_sync(ctl, &pm_dev)? {
            std::thread::sleep(std::time::Duration::from_millis(50));
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
    finish(vg, pvmove)?;
    vg.seqno += 1;
    commit(vg, &format!("Write from orion-lvm pvmove ({pvmove} done)."))?;
    let above = load_tables(ctl, vg, pvs, &movers, prefix)?;
    switch(ctl, &above, None)?;
    if ctl.info(&pm_id).is_ok() {
        ctl.remove(&pm_id)
            .with_context(|| format!("removing {pm_dev}"))?;
    }
    ctl.remove_node(&pm_dev);
    Ok(())
}

/// `pvmove SRC [DST...]`: moves every extent of SRC (to DST PVs, default any other PV of
/// the VG). `pvmove` without a source finishes an interrupted or backgrounded move (of the
/// first VG that has one). With `background` the move is only started: the kernel copies
/// the first range and a later `pvmove` (ours or LVM2's) finishes it. Returns the number
/// of extents moved (or being moved).
pub fn pvmove(src: Option<&Path>, dst: &[PathBuf], background: bool, prefix: &str) -> Result<u64> {
    let scan = Scan::run(&[])?;
    let (mut vg, members, pvmove) = match src {
        Some(src) => {
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
        None => {
            let (vg, members) = scan
                .vg_names()
                .iter()
                .filter_map(|n| scan.vg(n))
                .find(|(v, _)| v.lvs.iter().any(is_pvmove))
                .ok_or_else(|| anyhow!("no move in progress"))?;
            let name = vg
                .lvs
                .iter()
                .find(|l| is_pvmove(l))
                .map(|l| l.name.clone())
                .ok_or_else(|| anyhow!("no move in progress"))?;
            let ctl = Control::open().context("opening /dev/mapper/control")?;
            start(
                &ctl,
                &vg,
                &activate::pv_devices(&vg, &members)?,
                &name,
                prefix,
            )?;
            (vg, members, name)
        }
    };
    let paths: Vec<PathBuf> = members.iter().map(|p| p.path.clone()).collect();
    let ctl = Control::open().context("opening /dev/mapper/control")?;
    let total: u64 = vg.lv(&pvmove).map(Lv::extents).unwrap_or(0);
    if background {
        return Ok(total);
    }
    let pvs = activate::pv_devices(&vg, &members)?;
    copy_ranges(&ctl, &mut vg, &pvs, &pvmove, prefix, &mut |v, what| {
        commit(v, &paths, what)
    })?;
    Ok(total)
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
        copy_ranges(&dm, &mut vg, &devs, &name, "", &mut |v, what| {
            commits.push((v.seqno, what.to_owned(), v.lv("pvmove0").is_some()));
            Ok(())
        })
        .unwrap();
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
}
