// SPDX-License-Identifier: GPL-2.0 OR MIT

//! Activating LVs: the device names, DM UUIDs and tables LVM2 uses, so that real LVM2
//! recognises devices we activated and the other way round.

use super::ioctl::{make_node, Control, DevId, Target};
use crate::label::undashed;
use crate::pv::Pv;
use crate::vg::{Lv, SegmentKind, Vg};
use anyhow::{anyhow, bail, Context, Result};
use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// `VG-LV` with every `-` inside either name doubled, as LVM2 names dm devices.
pub fn dm_name(vg: &str, lv: &str) -> String {
    format!("{}-{}", vg.replace('-', "--"), lv.replace('-', "--"))
}

/// `LVM-<VG UUID><LV UUID>` without dashes.
pub fn dm_uuid(vg: &Vg, lv: &Lv) -> String {
    format!("LVM-{}{}", undashed(&vg.id), undashed(&lv.id))
}

/// `major:minor` of each PV of `vg` found among `pvs`, by metadata key.
pub fn pv_devices(vg: &Vg, pvs: &[&Pv]) -> Result<HashMap<String, String>> {
    let mut out = HashMap::new();
    for vp in &vg.pvs {
        let Some(p) = pvs.iter().find(|p| p.label.uuid == undashed(&vp.id)) else {
            continue;
        };
        let rdev = std::fs::metadata(&p.path)
            .with_context(|| format!("stat {}", p.path.display()))?
            .rdev();
        let major = ((rdev >> 8) & 0xfff) | ((rdev >> 32) & !0xfff);
        let minor = (rdev & 0xff) | ((rdev >> 12) & !0xff);
        out.insert(vp.key.clone(), format!("{major}:{}", minor & 0xffff_ffff));
    }
    Ok(out)
}

/// The table LVM2 loads for `lv`; `prefix` is put before each target name (our module's
/// side-by-side mode).
pub fn table(
    vg: &Vg,
    lv: &Lv,
    devs: &HashMap<String, String>,
    prefix: &str,
) -> Result<Vec<Target>> {
    let mut out = Vec::new();
    for seg in &lv.segments {
        let start = seg.start_extent * vg.extent_size;
        let len = seg.extent_count * vg.extent_size;
        let area = |pv: &str, pe: u64| -> Result<String> {
            let d = devs
                .get(pv)
                .ok_or_else(|| anyhow!("PV {pv} of {}/{} is missing", vg.name, lv.name))?;
            let p = vg
                .pv(pv)
                .ok_or_else(|| anyhow!("PV {pv} not in {}", vg.name))?;
            Ok(format!("{d} {}", p.pe_start + pe * vg.extent_size))
        };
        match &seg.kind {
            SegmentKind::Striped { stripes, .. } if stripes.len() == 1 => out.push(Target {
                start,
                len,
                kind: format!("{prefix}linear"),
                params: area(&stripes[0].0, stripes[0].1)?,
            }),
            SegmentKind::Striped {
                stripe_size,
                stripes,
            } => {
                let mut params = format!("{} {}", stripes.len(), stripe_size.unwrap_or(128));
                for (pv, pe) in stripes {
                    params.push(' ');
                    params.push_str(&area(pv, *pe)?);
                }
                out.push(Target {
                    start,
                    len,
                    kind: format!("{prefix}striped"),
                    params,
                });
            }
            SegmentKind::Other(s) => bail!(
                "{}/{}: activating {} segments is not supported yet",
                vg.name,
                lv.name,
                s.str("type").unwrap_or("unknown")
            ),
        }
    }
    Ok(out)
}

/// Creates (or reloads) dm device `name` with `table`; returns `major:minor`.
fn load_device(
    ctl: &Control,
    name: &str,
    uuid: &str,
    table: &[Target],
    readonly: bool,
) -> Result<String> {
    let id = DevId::Name(name.to_owned());
    let exists = ctl.info(&id).is_ok();
    if !exists {
        ctl.create(name, uuid)?;
    }
    if let Err(e) = ctl.load(&id, table, readonly) {
        if !exists {
            let _ = ctl.remove(&id);
        }
        return Err(e.into());
    }
    if exists {
        ctl.suspend(&id, false)?;
    }
    let info = ctl.resume(&id)?;
    let node = Path::new("/dev/mapper").join(name);
    make_node(&node, info.major, info.minor)
        .with_context(|| format!("creating {}", node.display()))?;
    Ok(format!("{}:{}", info.major, info.minor))
}

fn link_lv(vg: &str, lv: &str) -> Result<()> {
    let vg_dir = Path::new("/dev").join(vg);
    std::fs::create_dir_all(&vg_dir)?;
    let link = vg_dir.join(lv);
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(Path::new("../mapper").join(dm_name(vg, lv)), &link)?;
    Ok(())
}

fn remove_device(ctl: &Control, name: &str) -> Result<()> {
    let id = DevId::Name(name.to_owned());
    if ctl.info(&id).is_ok() {
        ctl.remove(&id)?;
    }
    let _ = std::fs::remove_file(Path::new("/dev/mapper").join(name));
    Ok(())
}

/// Zeroes the first 4 KiB of a new COW device so the snapshot target starts a fresh
/// exception store (LVM2 does the same).
fn wipe_cow(name: &str) -> Result<()> {
    use std::os::unix::fs::FileExt;
    let path = Path::new("/dev/mapper").join(name);
    let f = std::fs::OpenOptions::new().write(true).open(&path)?;
    f.write_all_at(&[0u8; 4096], 0)?;
    f.sync_all()?;
    Ok(())
}

/// Activates `lv` with its snapshots, as LVM2 stacks them: an origin with snapshots
/// becomes `LV-real` (its own table) under `LV` (`snapshot-origin`), and each snapshot
/// `S` is `S-cow` (the COW LV's table) under `S` (`snapshot LV-real S-cow P chunk`).
/// `new_cows` are COW LVs to wipe before first use.
pub fn activate_with_snapshots(
    ctl: &Control,
    vg: &Vg,
    lv: &Lv,
    devs: &HashMap<String, String>,
    prefix: &str,
    new_cows: &[&str],
) -> Result<()> {
    let snaps = vg.snapshots_of(&lv.name);
    if snaps.is_empty() {
        return activate(ctl, vg, lv, devs, prefix);
    }
    let readonly = !lv.status.iter().any(|s| s == "WRITE");
    let size = lv.extents() * vg.extent_size;
    let uuid = dm_uuid(vg, lv);
    let real_name = format!("{}-real", dm_name(&vg.name, &lv.name));
    let real_table = table(vg, lv, devs, prefix)?;
    let real = load_device(
        ctl,
        &real_name,
        &format!("{uuid}-real"),
        &real_table,
        readonly,
    )?;
    let origin = [Target {
        start: 0,
        len: size,
        kind: format!("{prefix}snapshot-origin"),
        params: real.clone(),
    }];
    load_device(ctl, &dm_name(&vg.name, &lv.name), &uuid, &origin, readonly)?;
    link_lv(&vg.name, &lv.name)?;
    for (cow, chunk) in snaps {
        let cow_name = format!("{}-cow", dm_name(&vg.name, &cow.name));
        let cow_uuid = format!("{}-cow", dm_uuid(vg, cow));
        let cow_table = table(vg, cow, devs, prefix)?;
        let cow_dev = load_device(ctl, &cow_name, &cow_uuid, &cow_table, false)?;
        if new_cows.contains(&cow.name.as_str()) {
            wipe_cow(&cow_name)?;
        }
        let snap = [Target {
            start: 0,
            len: size,
            kind: format!("{prefix}snapshot"),
            params: format!("{real} {cow_dev} P {chunk}"),
        }];
        load_device(
            ctl,
            &dm_name(&vg.name, &cow.name),
            &dm_uuid(vg, cow),
            &snap,
            false,
        )?;
        link_lv(&vg.name, &cow.name)?;
    }
    Ok(())
}

/// Removes the `-cow` device under snapshot device `name`.
pub fn remove_cow(ctl: &Control, name: &str) -> Result<()> {
    remove_device(ctl, &format!("{name}-cow"))
}

/// Removes the `-real` device of origin `lv`.
pub fn remove_real(ctl: &Control, vg: &str, lv: &str) -> Result<()> {
    remove_device(ctl, &format!("{}-real", dm_name(vg, lv)))
}

/// Deactivates `lv`, its snapshots and the devices under them.
pub fn deactivate_with_snapshots(ctl: &Control, vg: &Vg, lv: &Lv) -> Result<()> {
    for (cow, _) in vg.snapshots_of(&lv.name) {
        let n = dm_name(&vg.name, &cow.name);
        remove_device(ctl, &n)?;
        remove_device(ctl, &format!("{n}-cow"))?;
        let _ = std::fs::remove_file(Path::new("/dev").join(&vg.name).join(&cow.name));
    }
    deactivate(ctl, vg, lv)?;
    remove_device(ctl, &format!("{}-real", dm_name(&vg.name, &lv.name)))
}

/// Activates (or reloads) `lv` and creates /dev/mapper/NAME and /dev/VG/LV.
pub fn activate(
    ctl: &Control,
    vg: &Vg,
    lv: &Lv,
    devs: &HashMap<String, String>,
    prefix: &str,
) -> Result<()> {
    let readonly = !lv.status.iter().any(|s| s == "WRITE");
    let t = table(vg, lv, devs, prefix)?;
    load_device(
        ctl,
        &dm_name(&vg.name, &lv.name),
        &dm_uuid(vg, lv),
        &t,
        readonly,
    )?;
    link_lv(&vg.name, &lv.name)
}

/// Deactivates `lv` if it is active.
pub fn deactivate(ctl: &Control, vg: &Vg, lv: &Lv) -> Result<()> {
    remove_device(ctl, &dm_name(&vg.name, &lv.name))?;
    let _ = std::fs::remove_file(Path::new("/dev").join(&vg.name).join(&lv.name));
    let _ = std::fs::remove_dir(Path::new("/dev").join(&vg.name));
    Ok(())
}
