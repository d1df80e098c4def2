// SPDX-License-Identifier: GPL-2.0 OR MIT

//! Logical volumes: create, resize, activate, remove.

use super::devices::{on_system_vg, Devices};
use super::{
    allocate_extension_with, allocate_with, is_cow, merge_segments, valid_name, LvRequest, Policy,
};
use crate::dm::backend::DmBackend;
use crate::dm::ioctl::DevId;
use crate::dm::{activate, thin};
use crate::label::{dashed, new_uuid};
use crate::vg::{Lv, SegmentKind, Vg};
use anyhow::{anyhow, bail, Context, Result};
/// `lvcreate` of a linear or striped LV with allocation `policy` (recorded in the LV when
/// given), activated (its first 4 KiB zeroed) when `activate_it`.
pub fn lvcreate(
    vg_name: &str,
    req: &LvRequest<'_>,
    policy: Option<Policy>,
    activate_it: bool,
    prefix: &str,
) -> Result<Vg> {
    on_system_vg(vg_name, prefix, |d, vg| {
        create_lv(d, vg, req, policy, activate_it)
    })
}

/// [`lvcreate`] in `vg`.
pub(crate) fn create_lv(
    d: &mut Devices<'_>,
    mut vg: Vg,
    req: &LvRequest<'_>,
    policy: Option<Policy>,
    activate_it: bool,
) -> Result<Vg> {
    valid_name(req.name)?;
    let vg_name = vg.name.clone();
    if vg.lvs.iter().any(|l| l.name == req.name) {
        bail!("logical volume {} already exists in {vg_name}", req.name);
    }
    if req.extents == 0 {
        bail!("an LV needs at least one extent");
    }
    let segments = allocate_with(&vg, req, policy.unwrap_or_default())?;
    let mut raw = crate::config::Section::default();
    if let Some(p) = policy {
        raw.push(
            "allocation_policy",
            crate::config::Value::Str(p.name().into()),
        );
    }
    vg.lvs.push(Lv {
        name: req.name.to_owned(),
        id: dashed(&new_uuid()?),
        status: vec!["READ".into(), "WRITE".into(), "VISIBLE".into()],
        segments,
        raw,
    });
    vg.seqno += 1;
    d.commit(
        &vg,
        &format!("Write from orion-lvm lvcreate -n {} {vg_name}.", req.name),
    )
    .context("writing metadata")?;
    if activate_it {
        activate_new(d, &vg, req.name)?;
    }
    Ok(vg)
}

/// Activates the new LV `name` of `vg` and zeroes its first 4 KiB, as LVM2 does with
/// every LV it creates active.
pub(crate) fn activate_new(d: &Devices<'_>, vg: &Vg, name: &str) -> Result<()> {
    let ctl = d.need_dm()?;
    let lv = vg.lv(name).ok_or_else(|| anyhow!("{name} vanished"))?;
    let mut devs = live_lv_devices(ctl, vg, d.pvs.clone(), lv)?;
    activate::activate_lv(ctl, vg, lv, &mut devs, d.prefix, &[])?;
    activate::zero_start(ctl, &activate::dm_name(&vg.name, name))
}

/// The devices of `vg`'s PVs and of the live LVs `lv`'s table refers to (a thin volume's
/// pool, a pvmove LV).
pub(crate) fn live_devices(
    ctl: &dyn DmBackend,
    vg: &Vg,
    members: &[&crate::pv::Pv],
    lv: &Lv,
) -> Result<activate::DevMap> {
    live_lv_devices(ctl, vg, activate::pv_devices(vg, members)?, lv)
}

/// [`live_devices`] from the PV devices already known.
pub(crate) fn live_lv_devices(
    ctl: &dyn DmBackend,
    vg: &Vg,
    pvs: activate::DevMap,
    lv: &Lv,
) -> Result<activate::DevMap> {
    let mut devs = pvs;
    let mut names: Vec<String> = Vec::new();
    if let Some(t) = lv.thin() {
        if let Some(tp) = thin::live_tpool(ctl, vg, t.pool) {
            let i = ctl.info(&DevId::Name(tp))?;
            devs.lvs
                .insert(t.pool.to_owned(), format!("{}:{}", i.major, i.minor));
        }
    }
    for seg in &lv.segments {
        if let SegmentKind::Striped { stripes, .. } = &seg.kind {
            names.extend(stripes.iter().map(|(n, _)| n.clone()));
        }
        if let Some(m) = seg.mirror() {
            names.extend(m.images.iter().map(|(n, _)| (*n).to_owned()));
        }
    }
    for n in names {
        if vg.pv(&n).is_none() {
            if let Ok(i) = ctl.info(&DevId::Name(activate::dm_name(&vg.name, &n))) {
                devs.lvs.insert(n, format!("{}:{}", i.major, i.minor));
            }
        }
    }
    Ok(devs)
}

/// `lvresize`: grows or shrinks `lv` to `extents`; see [`resize_lv`].
pub fn lvresize(
    vg_name: &str,
    lv_name: &str,
    extents: u64,
    policy: Option<Policy>,
    prefix: &str,
) -> Result<(u64, u64)> {
    on_system_vg(vg_name, prefix, |d, vg| {
        resize_lv(d, vg, lv_name, extents, policy)
    })
}

/// Grows or shrinks `lv_name` of `vg` to `extents`; returns the old and new extent
/// counts. An active LV gets its new table loaded, is suspended, the metadata is
/// committed, and it resumes. A thin volume changes its virtual size; a thin pool grows
/// its data LV underneath; a snapshot's COW device grows or shrinks under it.
pub(crate) fn resize_lv(
    d: &mut Devices<'_>,
    mut vg: Vg,
    lv_name: &str,
    extents: u64,
    policy: Option<Policy>,
) -> Result<(u64, u64)> {
    let vg_name = vg.name.clone();
    let vg_name = vg_name.as_str();
    let i = vg
        .lvs
        .iter()
        .position(|l| l.name == lv_name)
        .ok_or_else(|| anyhow!("logical volume {vg_name}/{lv_name} not found"))?;
    let ctl = d.dm();
    let active = |name: &str| ctl.is_some_and(|c| c.info(&DevId::Name(name.to_owned())).is_ok());
    let is_origin = !vg.snapshots_of(lv_name).is_empty();
    let cow = is_cow(&vg, lv_name);
    if is_origin || cow {
        let cur = vg.lvs[i].extents();
        if is_origin && extents < cur {
            bail!("snapshot origin volumes cannot be reduced in size yet");
        }
        // A snapshot may shrink while its exceptions still fit.
        if cow && extents < cur {
            let used = ctl.and_then(|c| {
                let st = c
                    .status(&DevId::Name(activate::dm_name(vg_name, lv_name)))
                    .ok()?;
                let (u, _) = st
                    .first()?
                    .params
                    .split_whitespace()
                    .next()?
                    .split_once('/')?;
                u.parse::<u64>().ok()
            });
            if used.is_some_and(|u| u > extents * vg.extent_size) {
                bail!("snapshot {vg_name}/{lv_name} uses more than the requested size");
            }
        }
        // As LVM2: an origin grows only while inactive (its snapshots keep their view).
        if is_origin && active(&activate::dm_name(vg_name, lv_name)) {
            bail!("snapshot origin volumes can be resized only while inactive: try lvchange -an");
        }
    }
    if vg.lvs[i].mirror().is_some() {
        bail!("resizing mirrors is not supported yet");
    }
    if !vg.lvs[i].visible() && !cow {
        bail!("{vg_name}/{lv_name} is an internal LV; resize the LV that uses it");
    }
    let cur = vg.lvs[i].extents();
    if extents == cur {
        bail!("new size ({extents} extents) matches the existing size");
    }
    if extents == 0 {
        bail!("an LV cannot shrink to nothing");
    }
    if vg.lvs[i].thin_pool().is_some() {
        if extents < cur {
            bail!("thin pools cannot shrink");
        }
        return super::thin::extend_pool(d, vg, i, extents).map(|()| (cur, extents));
    }
    if vg.lvs[i].thin().is_some() {
        vg.lvs[i].segments[0].extent_count = extents;
    } else if extents > cur {
        let mut more = allocate_extension_with(&vg, &vg.lvs[i], extents - cur, policy)?;
        vg.lvs[i].segments.append(&mut more);
        merge_segments(&mut vg.lvs[i].segments);
    } else {
        let lv = &mut vg.lvs[i];
        lv.segments.retain(|s| s.start_extent < extents);
        if let Some(last) = lv.segments.last_mut() {
            let n = match &last.kind {
                SegmentKind::Striped { stripes, .. } => stripes.len() as u64,
                SegmentKind::Other(_) => 1,
            };
            let keep = extents - last.start_extent;
            if !keep.is_multiple_of(n) {
                bail!("a striped LV shrinks by whole stripes: {n} extents at a time");
            }
            last.extent_count = keep;
        }
    }
    vg.seqno += 1;
    let description = format!("Write from orion-lvm lvresize {vg_name}/{lv_name}.");
    let name = activate::dm_name(vg_name, lv_name);
    if cow && active(&format!("{name}-cow")) {
        // The COW device grows under the snapshot, which sees the new size on resume.
        let ctl = d.need_dm()?;
        let cow_id = DevId::Name(format!("{name}-cow"));
        let devs = live_lv_devices(ctl, &vg, d.pvs.clone(), &vg.lvs[i])?;
        ctl.load(
            &cow_id,
            &activate::table(&vg, &vg.lvs[i], &devs, d.prefix)?,
            false,
        )?;
        let snap = DevId::Name(name);
        ctl.suspend(&snap, false)?;
        ctl.suspend(&cow_id, false)?;
        let committed = d.commit(&vg, &description);
        ctl.resume(&cow_id)?;
        ctl.resume(&snap)?;
        committed?;
        return Ok((cur, extents));
    }
    let lv_active = active(&name);
    match (ctl, lv_active) {
        (Some(ctl), true) => {
            let devs = live_lv_devices(ctl, &vg, d.pvs.clone(), &vg.lvs[i])?;
            let table = activate::table(&vg, &vg.lvs[i], &devs, d.prefix)?;
            let id = DevId::Name(name);
            let readonly = !vg.lvs[i].status.iter().any(|s| s == "WRITE");
            ctl.load(&id, &table, readonly)?;
            ctl.suspend(&id, false)?;
            let committed = d.commit(&vg, &description);
            // Resume whatever happens: a failed commit leaves the old metadata and the new
            // table, which the next activation replaces.
            ctl.resume(&id)?;
            committed?;
        }
        _ => d.commit(&vg, &description)?,
    }
    Ok((cur, extents))
}

/// The LVs `vgchange -ay` activates on their own: visible ones but snapshots (they come
/// with their origins) and those marked to skip activation.
fn activation_roots(vg: &Vg) -> Vec<&Lv> {
    vg.user_lvs()
        .into_iter()
        .filter(|l| !is_cow(vg, &l.name) && !activate::activation_skipped(l))
        .collect()
}

/// Activates every LV of `vg_name` (`on`) or deactivates them all; snapshots go with
/// their origins, thin volumes before their pools.
pub fn vgchange(vg_name: &str, on: bool, prefix: &str) -> Result<usize> {
    on_system_vg(vg_name, prefix, |d, vg| change_vg(d, &vg, on))
}

/// [`vgchange`] of `vg`; returns how many LVs it (de)activated.
pub(crate) fn change_vg(d: &Devices<'_>, vg: &Vg, on: bool) -> Result<usize> {
    let ctl = d.need_dm()?;
    let mut devs = d.pvs.clone();
    let mut roots = activation_roots(vg);
    if on {
        for lv in &roots {
            if !devs.lvs.contains_key(&lv.name) {
                activate::activate_lv(ctl, vg, lv, &mut devs, d.prefix, &[])?;
            }
        }
    } else {
        roots = vg
            .user_lvs()
            .into_iter()
            .filter(|l| !is_cow(vg, &l.name))
            .collect();
        roots.sort_by_key(|l| l.thin_pool().is_some());
        for lv in &roots {
            activate::deactivate_lv(ctl, vg, lv)?;
        }
    }
    Ok(roots.len())
}

/// Activates or deactivates one LV (a snapshot goes with its origin).
pub fn lvchange(vg_name: &str, lv: &str, on: bool, prefix: &str) -> Result<()> {
    on_system_vg(vg_name, prefix, |d, vg| change_lv(d, &vg, lv, on))
}

/// [`lvchange`] of `lv` of `vg`.
pub(crate) fn change_lv(d: &Devices<'_>, vg: &Vg, lv: &str, on: bool) -> Result<()> {
    let origin = vg
        .lvs
        .iter()
        .filter_map(|l| l.snapshot_of())
        .find(|(_, cow, _)| *cow == lv)
        .map(|(o, _, _)| o.to_owned());
    let target = origin.as_deref().unwrap_or(lv);
    let l = vg
        .lv(target)
        .ok_or_else(|| anyhow!("logical volume {}/{lv} not found", vg.name))?;
    let ctl = d.need_dm()?;
    if on {
        let mut devs = live_lv_devices(ctl, vg, d.pvs.clone(), l)?;
        activate::activate_lv(ctl, vg, l, &mut devs, d.prefix, &[])
    } else {
        activate::deactivate_lv(ctl, vg, l)
    }
}

/// Deactivates `lv` unless it is open.
pub(crate) fn deactivate_unused(ctl: &dyn DmBackend, vg: &Vg, lv: &Lv) -> Result<()> {
    let name = activate::dm_name(&vg.name, &lv.name);
    if let Ok(info) = ctl.info(&DevId::Name(name)) {
        if info.open_count > 0 {
            bail!("logical volume {}/{} is in use", vg.name, lv.name);
        }
        activate::deactivate_lv(ctl, vg, lv)?;
    }
    Ok(())
}

/// `lvremove`: deactivates the LV if it is active, then drops it from the metadata with
/// what belongs to it: a snapshot's `snapshotN` record (its origin goes back to a plain
/// table), a mirror's images, a pool's data and metadata LVs (and the spare with the last
/// pool); a thin volume is deleted from its pool's metadata by message.
pub fn lvremove(vg_name: &str, lv: &str, prefix: &str) -> Result<()> {
    on_system_vg(vg_name, prefix, |d, vg| remove_lv(d, vg, lv))
}

/// [`lvremove`] of `lv` of `vg`.
pub(crate) fn remove_lv(d: &mut Devices<'_>, mut vg: Vg, lv: &str) -> Result<()> {
    let vg_name = vg.name.clone();
    let vg_name = vg_name.as_str();
    let Some(l) = vg.lv(lv).cloned() else {
        bail!("logical volume {vg_name}/{lv} not found");
    };
    if !l.visible() && !is_cow(&vg, lv) {
        bail!("{vg_name}/{lv} is an internal LV; remove the LV that uses it");
    }
    if !vg.snapshots_of(lv).is_empty() {
        bail!("logical volume {vg_name}/{lv} has snapshots; remove them first");
    }
    if l.thin().is_some() {
        return super::thin::lvremove_thin(d, vg, &l);
    }
    let record = vg
        .lvs
        .iter()
        .find(|x| x.snapshot_of().is_some_and(|(_, cow, _)| cow == lv))
        .map(|x| (x.name.clone(), x.snapshot_of().map(|s| s.0.to_owned())));
    if l.thin_pool().is_some() && thin::layered(&vg, lv) {
        bail!("thin pool {vg_name}/{lv} has thin volumes; remove them first");
    }
    let ctl = d.dm();
    if let Some(ctl) = ctl {
        deactivate_unused(ctl, &vg, &l)?;
        if record.is_some() {
            activate::remove_cow(ctl, &activate::dm_name(vg_name, lv))?;
        }
    }
    let mut gone = vec![lv.to_owned()];
    if let Some((rec, _)) = &record {
        gone.push(rec.clone());
    }
    if let Some(seg) = l.thin_pool() {
        gone.push(seg.metadata.to_owned());
        gone.push(seg.data.to_owned());
    }
    for seg in &l.segments {
        if let Some(m) = seg.mirror() {
            gone.extend(m.images.iter().map(|(n, _)| (*n).to_owned()));
            gone.extend(m.log.map(str::to_owned));
        }
    }
    vg.lvs.retain(|x| !gone.contains(&x.name));
    if l.thin_pool().is_some() && !vg.lvs.iter().any(|x| x.thin_pool().is_some()) {
        vg.lvs.retain(|x| !x.name.ends_with("_pmspare"));
    }
    vg.seqno += 1;
    d.commit(
        &vg,
        &format!("Write from orion-lvm lvremove {vg_name}/{lv}."),
    )?;
    // An active origin left without snapshots goes back to its own table.
    if let (Some(ctl), Some((_, Some(origin)))) = (ctl, &record) {
        if vg.snapshots_of(origin).is_empty() {
            if let Some(o) = vg.lv(origin) {
                if ctl
                    .info(&DevId::Name(activate::dm_name(vg_name, origin)))
                    .is_ok()
                {
                    let devs = live_lv_devices(ctl, &vg, d.pvs.clone(), o)?;
                    activate::activate(ctl, &vg, o, &devs, d.prefix)?;
                    activate::remove_real(ctl, vg_name, origin)?;
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::devices::on_recording;
    use crate::commands::{allocate, merge_segments};
    use crate::dm::recording::{add_lv, add_snapshot, test_vg, RecordingDm};

    fn with_lv(vg: &mut Vg, name: &str, extents: u64) {
        let req = LvRequest {
            name,
            extents,
            stripes: 1,
            stripe_size: 128,
        };
        let mut segs = allocate(vg, &req).unwrap();
        merge_segments(&mut segs);
        add_lv(vg, name, segs);
    }

    /// The log with tables cut off (`load vg-lv`).
    fn steps(dm: &RecordingDm) -> Vec<String> {
        dm.log()
            .into_iter()
            .map(|l| l.split(':').next().unwrap().to_owned())
            .collect()
    }

    #[test]
    fn lvresize_of_a_live_lv_commits_between_suspend_and_resume() {
        let (mut vg, pvs) = test_vg("vg", &[10, 10]);
        with_lv(&mut vg, "lin", 2);
        with_lv(&mut vg, "other", 1);
        let dm = RecordingDm::new();
        let lin = vg.lv("lin").unwrap().clone();
        activate::activate_lv(&dm, &vg, &lin, &mut pvs.clone(), "", &[]).unwrap();
        dm.clear_log();
        let r = on_recording(&dm, &pvs, |d| resize_lv(d, vg.clone(), "lin", 5, None));
        assert_eq!(r.unwrap(), (2, 5));
        assert_eq!(
            steps(&dm),
            [
                "load vg-lin",
                "suspend vg-lin",
                "commit seqno 2",
                "resume vg-lin"
            ],
            "the new table is loaded before the suspend and goes live after the commit"
        );
        // Grown past `other`: a second segment on the same PV.
        assert_eq!(
            dm.live_table("vg-lin")
                .unwrap()
                .iter()
                .map(|t| (t.start, t.len))
                .collect::<Vec<_>>(),
            [(0, 2 * 8192), (2 * 8192, 3 * 8192)]
        );
        // Inactive: the metadata only.
        let dm = RecordingDm::new();
        on_recording(&dm, &pvs, |d| resize_lv(d, vg, "lin", 1, None)).unwrap();
        assert_eq!(steps(&dm), ["commit seqno 2"]);
    }

    #[test]
    fn lvresize_of_a_live_snapshot_grows_its_cow_under_the_suspended_snapshot() {
        let (mut vg, pvs) = test_vg("vg", &[20]);
        with_lv(&mut vg, "o", 4);
        with_lv(&mut vg, "s", 1);
        add_snapshot(&mut vg, "o", "s", 4);
        let dm = RecordingDm::new();
        let o = vg.lv("o").unwrap().clone();
        activate::activate_lv(&dm, &vg, &o, &mut pvs.clone(), "", &["s"]).unwrap();
        dm.clear_log();
        let r = on_recording(&dm, &pvs, |d| resize_lv(d, vg.clone(), "s", 3, None));
        assert_eq!(r.unwrap(), (1, 3));
        assert_eq!(
            steps(&dm),
            [
                "load vg-s-cow",
                "suspend vg-s",
                "suspend vg-s-cow",
                "commit seqno 2",
                "resume vg-s-cow",
                "resume vg-s",
            ]
        );
        assert_eq!(dm.live_table("vg-s-cow").unwrap()[0].len, 3 * 8192);
        // A live origin keeps its size (LVM2's rule), and nothing is changed.
        dm.clear_log();
        let r = on_recording(&dm, &pvs, |d| resize_lv(d, vg, "o", 6, None));
        assert!(r.unwrap_err().to_string().contains("only while inactive"));
        assert!(dm.log().is_empty());
    }

    #[test]
    fn lvremove_of_the_last_snapshot_puts_the_live_origin_back_on_its_own_table() {
        let (mut vg, pvs) = test_vg("vg", &[20]);
        with_lv(&mut vg, "o", 4);
        with_lv(&mut vg, "s", 1);
        add_snapshot(&mut vg, "o", "s", 4);
        let dm = RecordingDm::new();
        on_recording(&dm, &pvs, |d| change_vg(d, &vg, true)).unwrap();
        dm.clear_log();
        on_recording(&dm, &pvs, |d| remove_lv(d, vg, "s")).unwrap();
        assert_eq!(
            steps(&dm),
            [
                // The snapshot and its COW device go first...
                "remove vg-s",
                "unlink vg/s",
                "remove vg-s-cow",
                "commit seqno 2",
                // ...then the origin takes back the table of -real, which goes.
                "load vg-o",
                "suspend vg-o",
                "resume vg-o",
                "node vg-o",
                "link vg/o",
                "remove vg-o-real",
            ]
        );
        assert_eq!(dm.live_table("vg-o").unwrap()[0].kind, "linear");
        assert_eq!(dm.devices(), ["vg-o"]);
    }
}
