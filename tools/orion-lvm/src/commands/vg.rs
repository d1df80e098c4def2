// SPDX-License-Identifier: GPL-2.0 OR MIT

//! Volume groups: create, extend, reduce, remove.

use super::{commit, is_cow, valid_name, Scan};
use crate::dm::activate;
use crate::dm::ioctl::Control;
use crate::label::{dashed, new_uuid};
use crate::pv::{self, Pv};
use crate::vg::{SegmentKind, Vg, VgPv};
use anyhow::{anyhow, bail, Result};
use std::path::{Path, PathBuf};
/// `vgcreate`: a VG over unused PVs (made PVs first when they are not).
pub fn vgcreate(name: &str, devices: &[PathBuf], extent_size: u64) -> Result<Vg> {
    valid_name(name)?;
    if !extent_size.is_power_of_two() || extent_size < 8 {
        bail!("extent size must be a power of two of at least 4 KiB");
    }
    let scan = Scan::run(&[])?;
    if scan.vg_names().iter().any(|n| n == name) {
        bail!("a volume group called {name} already exists");
    }
    let pvs = devices
        .iter()
        .enumerate()
        .map(|(i, d)| admit_pv(d, format!("pv{i}"), extent_size))
        .collect::<Result<Vec<_>>>()?;
    let vg = Vg {
        name: name.to_owned(),
        id: dashed(&new_uuid()?),
        seqno: 1,
        extent_size,
        pvs,
        lvs: Vec::new(),
        raw: Default::default(),
    };
    commit(
        &vg,
        devices,
        &format!("Write from orion-lvm vgcreate {name}."),
    )?;
    Ok(vg)
}

/// Admits device `d` to a VG as PV `key`: makes it a PV when it is not one, refuses one
/// that belongs to a VG, and counts its extents.
fn admit_pv(d: &Path, key: String, extent_size: u64) -> Result<VgPv> {
    let p = match Pv::scan(d)? {
        Some(p) => p,
        None => pv::pvcreate(d, false)?,
    };
    if p.label.ext_flags & crate::label::PV_EXT_USED != 0 || p.text()?.is_some() {
        bail!("{} already belongs to a volume group", d.display());
    }
    let dev_size = p.label.device_size / 512;
    let pe_start = p.pe_start_sectors();
    let pe_count = p.data_end_sectors().saturating_sub(pe_start) / extent_size;
    if pe_count == 0 {
        bail!("{} is smaller than one extent", d.display());
    }
    Ok(VgPv {
        key,
        id: dashed(&p.label.uuid),
        device: d.display().to_string(),
        dev_size,
        pe_start,
        pe_count,
        raw: Default::default(),
    })
}

/// `vgextend`: adds devices (made PVs when they are not) to a VG.
pub fn vgextend(vg_name: &str, devices: &[PathBuf]) -> Result<()> {
    let scan = Scan::run(&[])?;
    let (mut vg, members) = scan.need_vg(vg_name)?;
    let mut paths: Vec<PathBuf> = members.iter().map(|p| p.path.clone()).collect();
    let mut next = vg.pvs.len();
    for d in devices {
        while vg.pv(&format!("pv{next}")).is_some() {
            next += 1;
        }
        let vp = admit_pv(d, format!("pv{next}"), vg.extent_size)?;
        vg.pvs.push(vp);
        paths.push(d.clone());
    }
    vg.seqno += 1;
    commit(
        &vg,
        &paths,
        &format!("Write from orion-lvm vgextend {vg_name}."),
    )
}

/// `vgreduce`: removes unused PVs from a VG; their metadata is wiped.
pub fn vgreduce(vg_name: &str, devices: &[PathBuf]) -> Result<()> {
    let scan = Scan::run(&[])?;
    let (mut vg, members) = scan.need_vg(vg_name)?;
    let mut removed = Vec::new();
    for d in devices {
        let p = members
            .iter()
            .find(|p| p.path == *d)
            .ok_or_else(|| anyhow!("{} is not in volume group {vg_name}", d.display()))?;
        let id = dashed(&p.label.uuid);
        let key = vg
            .pvs
            .iter()
            .find(|vp| vp.id == id)
            .map(|vp| vp.key.clone())
            .unwrap_or_default();
        let used = vg.lvs.iter().any(|l| {
            l.segments.iter().any(|s| match &s.kind {
                SegmentKind::Striped { stripes, .. } => stripes.iter().any(|(pv, _)| *pv == key),
                SegmentKind::Other(raw) => {
                    crate::config::write(raw).contains(&format!("\"{key}\""))
                }
            })
        });
        if used {
            bail!("{} is still used by logical volumes", d.display());
        }
        vg.pvs.retain(|vp| vp.id != id);
        removed.push(d.clone());
    }
    if vg.pvs.is_empty() {
        bail!("cannot remove the last PV of {vg_name}; use vgremove");
    }
    vg.seqno += 1;
    let paths: Vec<PathBuf> = members
        .iter()
        .map(|p| p.path.clone())
        .filter(|p| !removed.contains(p))
        .collect();
    commit(
        &vg,
        &paths,
        &format!("Write from orion-lvm vgreduce {vg_name}."),
    )?;
    for d in removed {
        pv::pvcreate(&d, true)?;
    }
    Ok(())
}

/// `vgremove`: refuses a VG with LVs unless `force`; deactivates them and wipes the PVs'
/// metadata.
pub fn vgremove(vg_name: &str, force: bool) -> Result<()> {
    let scan = Scan::run(&[])?;
    let (vg, members) = scan.need_vg(vg_name)?;
    if !vg.lvs.is_empty() && !force {
        bail!(
            "volume group {vg_name} still has {} logical volumes (use -f)",
            vg.lvs.len()
        );
    }
    if let Ok(ctl) = Control::open() {
        let mut lvs: Vec<_> = vg
            .user_lvs()
            .into_iter()
            .filter(|l| !is_cow(&vg, &l.name))
            .collect();
        // Thin volumes before their pools.
        lvs.sort_by_key(|l| l.thin_pool().is_some());
        for lv in lvs {
            activate::deactivate_lv(&ctl, &vg, lv)?;
        }
    }
    for p in members {
        // A PV with no VG is a fresh pvcreate.
        pv::pvcreate(&p.path, true)?;
    }
    Ok(())
}
