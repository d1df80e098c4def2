// SPDX-License-Identifier: GPL-2.0 OR MIT

//! Snapshot merge (`lvconvert --merge VG/SNAP`) in LVM2's way.
//!
//! The `snapshotN` record names the COW LV `merging_store` instead of `cow_store` and loses
//! `VISIBLE`. An active origin then switches at once, both devices suspended so the
//! kernel hands the exception store over: the origin becomes `snapshot-merge <real> <cow>
//! P <chunk>` and the snapshot device an `error` target. An inactive origin starts merging
//! on its next activation. When the kernel reports the merge done (allocated sectors down
//! to the metadata's), the origin goes back to its own table and the snapshot leaves the
//! metadata. LVM2 polls for that in the background; orion-lvm waits in the foreground.

use super::devices::{on_system, on_system_vg, Devices};
use super::lv::live_lv_devices;
use super::Scan;
use crate::config::{Node, Value};
use crate::dm::activate;
use crate::dm::backend::DmBackend;
use crate::dm::ioctl::{Control, DevId, Target};
use crate::vg::{SegmentKind, Vg};
use anyhow::{anyhow, bail, Context, Result};

/// `lvconvert --merge VG/SNAP`; returns whether the merge ran to its end (false: it
/// starts on the origin's next activation).
pub fn lvconvert_merge(
    vg_name: &str,
    snap: &str,
    prefix: &str,
    report: &mut dyn FnMut(&str, f64),
) -> Result<bool> {
    on_system_vg(vg_name, prefix, |d, vg| merge_snapshot(d, vg, snap, report))
}

/// [`lvconvert_merge`] of snapshot `snap` of `vg`.
pub(crate) fn merge_snapshot(
    d: &mut Devices<'_>,
    mut vg: Vg,
    snap: &str,
    report: &mut dyn FnMut(&str, f64),
) -> Result<bool> {
    let vg_name = vg.name.clone();
    let vg_name = vg_name.as_str();
    let i = vg
        .lvs
        .iter()
        .position(|l| l.snapshot_of().is_some_and(|(_, cow, _)| cow == snap))
        .ok_or_else(|| anyhow!("{vg_name}/{snap} is not a snapshot"))?;
    if vg.lvs[i].merging() {
        bail!("snapshot {vg_name}/{snap} is already merging");
    }
    let (origin, _, chunk) = vg.lvs[i]
        .snapshot_of()
        .map(|(o, c, k)| (o.to_owned(), c.to_owned(), k))
        .ok_or_else(|| anyhow!("bad snapshot record"))?;
    if vg.snapshots_of(&origin).len() > 1 {
        bail!("{vg_name}/{origin} has other snapshots; remove them before merging {snap}");
    }
    if let SegmentKind::Other(s) = &mut vg.lvs[i].segments[0].kind {
        s.remove("cow_store");
        s.set("merging_store", Node::Value(Value::Str(snap.to_owned())));
    }
    vg.lvs[i].status.retain(|s| s != "VISIBLE");
    vg.seqno += 1;
    let ctl = d.dm();
    let origin_dev = activate::dm_name(vg_name, &origin);
    let live = ctl.is_some_and(|c| c.info(&DevId::Name(origin_dev.clone())).is_ok());
    let description = format!("Write from orion-lvm lvconvert --merge {vg_name}/{snap}.");
    let (Some(ctl), true) = (ctl, live) else {
        d.commit(&vg, &description)?;
        return Ok(false);
    };
    let o_id = DevId::Name(origin_dev.clone());
    if ctl.info(&o_id)?.open_count > 0 {
        bail!("{vg_name}/{origin} is open; merging would start only on its next activation, which orion-lvm does not defer to yet");
    }
    d.commit(&vg, &description)?;
    let info = |n: String| -> Result<String> {
        let i = ctl
            .info(&DevId::Name(n.clone()))
            .with_context(|| n.clone())?;
        Ok(format!("{}:{}", i.major, i.minor))
    };
    let real = info(format!("{origin_dev}-real"))?;
    let snap_dev = activate::dm_name(vg_name, snap);
    let cow = info(format!("{snap_dev}-cow"))?;
    let size = vg
        .lv(&origin)
        .map(|o| o.extents() * vg.extent_size)
        .ok_or_else(|| anyhow!("origin vanished"))?;
    let o = vg.lv(&origin).ok_or_else(|| anyhow!("origin vanished"))?;
    let readonly = !o.status.iter().any(|s| s == "WRITE");
    ctl.load(
        &o_id,
        &[Target {
            start: 0,
            len: size,
            kind: crate::dm::activate::target_type(d.prefix, "snapshot-merge"),
            params: format!("{real} {cow} P {chunk}"),
        }],
        readonly,
    )?;
    let s_id = DevId::Name(snap_dev);
    ctl.load(
        &s_id,
        &[Target {
            start: 0,
            len: size,
            kind: "error".into(),
            params: String::new(),
        }],
        false,
    )?;
    // Both suspended before the origin resumes: the kernel hands the exception store from
    // the snapshot to the merge.
    ctl.suspend(&o_id, false)?;
    ctl.suspend(&s_id, false)?;
    ctl.resume(&o_id)?;
    ctl.resume(&s_id)?;
    finish_merge(d, vg, &origin, report)?;
    Ok(true)
}

/// Whether the snapshot-merge device `name` has merged everything, and the percentage
/// merged as LVM2 prints it (100 less the share of the COW device still in use).
fn merged(ctl: &dyn DmBackend, name: &str) -> Result<(bool, f64)> {
    let st = ctl.status(&DevId::Name(name.to_owned()))?;
    let t = st.first().ok_or_else(|| anyhow!("{name} has no table"))?;
    let f: Vec<&str> = t.params.split_whitespace().collect();
    match (f.first().and_then(|s| s.split_once('/')), f.get(1)) {
        (Some((alloc, total)), Some(meta)) => {
            let used = match (alloc.parse::<f64>(), total.parse::<f64>()) {
                (Ok(a), Ok(t)) if t > 0.0 => a * 100.0 / t,
                _ => 0.0,
            };
            Ok((alloc == *meta, 100.0 - used))
        }
        _ if t.params.trim() == "Invalid" => bail!("{name}: the merging snapshot is invalid"),
        _ => bail!("{name}: unexpected snapshot-merge status {:?}", t.params),
    }
}

/// Waits for the merge into live `origin` to end (`report` gets the origin and the
/// percentage merged on every look), then drops the snapshot from the metadata and puts
/// the origin back on its own table.
pub fn finish_merge(
    d: &mut Devices<'_>,
    mut vg: Vg,
    origin: &str,
    report: &mut dyn FnMut(&str, f64),
) -> Result<()> {
    let ctl = d.need_dm()?;
    let origin_dev = activate::dm_name(&vg.name, origin);
    loop {
        let (done, pct) = merged(ctl, &origin_dev)?;
        report(origin, if done { 100.0 } else { pct });
        if done {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let rec = vg
        .merging_into(origin)
        .ok_or_else(|| anyhow!("no snapshot is merging into {origin}"))?;
    let rec_name = rec.name.clone();
    let cow = rec
        .snapshot_of()
        .map(|(_, c, _)| c.to_owned())
        .ok_or_else(|| anyhow!("bad snapshot record"))?;
    vg.lvs.retain(|l| l.name != rec_name && l.name != cow);
    vg.seqno += 1;
    let description = format!(
        "Write from orion-lvm: merge into {}/{origin} done.",
        vg.name
    );
    d.commit(&vg, &description)?;
    let o = vg.lv(origin).ok_or_else(|| anyhow!("origin vanished"))?;
    let devs = live_lv_devices(ctl, &vg, d.pvs.clone(), o)?;
    let t = activate::table(&vg, o, &devs, d.prefix)?;
    let o_id = DevId::Name(origin_dev.clone());
    ctl.load(&o_id, &t, !o.status.iter().any(|s| s == "WRITE"))?;
    ctl.suspend(&o_id, false)?;
    ctl.resume(&o_id)?;
    let snap_dev = activate::dm_name(&vg.name, &cow);
    for n in [
        snap_dev.clone(),
        format!("{snap_dev}-cow"),
        format!("{origin_dev}-real"),
    ] {
        let id = DevId::Name(n.clone());
        if ctl.info(&id).is_ok() {
            ctl.remove(&id).with_context(|| format!("removing {n}"))?;
        }
        ctl.remove_node(&n);
    }
    ctl.unlink_lv(&vg.name, &cow);
    Ok(())
}

/// Finishes the merges into origins of `vg_name` that are live (after an activation).
pub fn finish_live_merges(vg_name: &str, prefix: &str) -> Result<usize> {
    let scan = Scan::run(&[])?;
    let (vg, members) = scan.need_vg(vg_name)?;
    let Ok(ctl) = Control::open() else {
        return Ok(0);
    };
    let origins: Vec<String> = vg
        .lvs
        .iter()
        .filter(|l| l.merging())
        .filter_map(|l| l.snapshot_of().map(|(o, _, _)| o.to_owned()))
        .filter(|o| {
            ctl.info(&DevId::Name(activate::dm_name(vg_name, o)))
                .is_ok()
        })
        .collect();
    drop(ctl);
    for (k, o) in origins.iter().enumerate() {
        // Each merge commits: the next one starts from the metadata it wrote.
        let rescan;
        let (vg, members) = if k == 0 {
            (vg.clone(), members.clone())
        } else {
            rescan = Scan::run(&[])?;
            rescan.need_vg(vg_name)?
        };
        on_system(vg, &members, prefix, |d, vg| {
            finish_merge(d, vg, o, &mut |_, _| {})
        })?;
    }
    Ok(origins.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::devices::on_recording;
    use crate::commands::{allocate, LvRequest};
    use crate::dm::recording::{add_lv, add_snapshot, test_vg, RecordingDm};

    #[test]
    fn merging_a_live_snapshot_hands_its_store_over_then_drops_it() {
        let (mut vg, pvs) = test_vg("vg", &[20]);
        for (name, extents) in [("o", 4), ("s", 1)] {
            let req = LvRequest {
                name,
                extents,
                stripes: 1,
                stripe_size: 128,
            };
            let segs = allocate(&vg, &req).unwrap();
            add_lv(&mut vg, name, segs);
        }
        add_snapshot(&mut vg, "o", "s", 4);
        let dm = RecordingDm::new();
        let o = vg.lv("o").unwrap().clone();
        activate::activate_lv(&dm, &vg, &o, &mut pvs.clone(), "", &[]).unwrap();
        dm.clear_log();
        let mut seen = Vec::new();
        let done = on_recording(&dm, &pvs, |d| {
            merge_snapshot(d, vg, "s", &mut |lv, pct| seen.push(format!("{lv} {pct}")))
        })
        .unwrap();
        assert!(done, "a live, unopened origin merges at once");
        assert_eq!(seen, ["o 100"]);
        let steps: Vec<String> = dm
            .log()
            .into_iter()
            .map(|l| l.split(':').next().unwrap().to_owned())
            .collect();
        assert_eq!(
            steps,
            [
                "commit seqno 2",
                // The origin becomes snapshot-merge and the snapshot an error target, both
                // suspended before either resumes: the kernel hands the store over.
                "load vg-o",
                "load vg-s",
                "suspend vg-o",
                "suspend vg-s",
                "resume vg-o",
                "resume vg-s",
                // Merged: the snapshot leaves the metadata, the origin its stack.
                "commit seqno 3",
                "load vg-o",
                "suspend vg-o",
                "resume vg-o",
                "remove vg-s",
                "remove vg-s-cow",
                "remove vg-o-real",
                "unlink vg/s",
            ]
        );
        assert_eq!(dm.live_table("vg-o").unwrap()[0].kind, "linear");
        assert_eq!(dm.devices(), ["vg-o"]);
    }
}
