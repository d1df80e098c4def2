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

/// Activates (or reloads) `lv` and creates /dev/mapper/NAME and /dev/VG/LV.
pub fn activate(
    ctl: &Control,
    vg: &Vg,
    lv: &Lv,
    devs: &HashMap<String, String>,
    prefix: &str,
) -> Result<()> {
    let name = dm_name(&vg.name, &lv.name);
    let t = table(vg, lv, devs, prefix)?;
    let id = DevId::Name(name.clone());
    let exists = ctl.info(&id).is_ok();
    if !exists {
        ctl.create(&name, &dm_uuid(vg, lv))?;
    }
    let readonly = !lv.status.iter().any(|s| s == "WRITE");
    if let Err(e) = ctl.load(&id, &t, readonly) {
        if !exists {
            let _ = ctl.remove(&id);
        }
        return Err(e.into());
    }
    if exists {
        ctl.suspend(&id, false)?;
    }
    let info = ctl.resume(&id)?;
    let node = Path::new("/dev/mapper").join(&name);
    make_node(&node, info.major, info.minor)
        .with_context(|| format!("creating {}", node.display()))?;
    let vg_dir = Path::new("/dev").join(&vg.name);
    std::fs::create_dir_all(&vg_dir)?;
    let link = vg_dir.join(&lv.name);
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(Path::new("../mapper").join(&name), &link)?;
    Ok(())
}

/// Deactivates `lv` if it is active.
pub fn deactivate(ctl: &Control, vg: &Vg, lv: &Lv) -> Result<()> {
    let name = dm_name(&vg.name, &lv.name);
    let id = DevId::Name(name.clone());
    if ctl.info(&id).is_err() {
        return Ok(());
    }
    ctl.remove(&id)?;
    let _ = std::fs::remove_file(Path::new("/dev/mapper").join(&name));
    let _ = std::fs::remove_file(Path::new("/dev").join(&vg.name).join(&lv.name));
    let _ = std::fs::remove_dir(Path::new("/dev").join(&vg.name));
    Ok(())
}
