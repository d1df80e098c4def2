// SPDX-License-Identifier: GPL-2.0 OR MIT

//! Activating LVs: the device names, DM UUIDs and tables LVM2 uses, so that real LVM2
//! recognises devices we activated and the other way round.

use super::backend::DmBackend;
use super::ioctl::{DevId, Target};
use crate::label::undashed;
use crate::pv::Pv;
use crate::vg::{Lv, SegmentKind, Vg};
use anyhow::{anyhow, bail, Context, Result};
use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;

/// `VG-LV` with every `-` inside either name doubled, as LVM2 names dm devices.
pub fn dm_name(vg: &str, lv: &str) -> String {
    format!("{}-{}", vg.replace('-', "--"), lv.replace('-', "--"))
}

/// `LVM-<VG UUID><LV UUID>` without dashes.
pub fn dm_uuid(vg: &Vg, lv: &Lv) -> String {
    format!("LVM-{}{}", undashed(&vg.id), undashed(&lv.id))
}

/// The devices an LV's areas may name: PVs by metadata key and active LVs by name, each
/// as `major:minor`.
#[derive(Clone, Debug, Default)]
pub struct DevMap {
    /// PV key to device.
    pub pvs: HashMap<String, String>,
    /// LV name to its dm device (for a thin pool: the device with the thin-pool target).
    pub lvs: HashMap<String, String>,
}

/// `major:minor` of each PV of `vg` found among `pvs`, by metadata key.
pub fn pv_devices(vg: &Vg, pvs: &[&Pv]) -> Result<DevMap> {
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
    Ok(DevMap {
        pvs: out,
        lvs: HashMap::new(),
    })
}

/// `major:minor offset` of area `name` (a PV key or an LV name) at extent `pe`.
pub fn area(vg: &Vg, devs: &DevMap, owner: &Lv, name: &str, pe: u64) -> Result<String> {
    if let Some(p) = vg.pv(name) {
        let d = devs
            .pvs
            .get(name)
            .ok_or_else(|| anyhow!("PV {name} of {}/{} is missing", vg.name, owner.name))?;
        return Ok(format!("{d} {}", p.pe_start + pe * vg.extent_size));
    }
    let d = devs
        .lvs
        .get(name)
        .ok_or_else(|| anyhow!("{}/{name} under {} is not active", vg.name, owner.name))?;
    Ok(format!("{d} {}", pe * vg.extent_size))
}

/// The table LVM2 loads for `lv`; `prefix` is put before each target name (our module's
/// side-by-side mode).
pub fn table(vg: &Vg, lv: &Lv, devs: &DevMap, prefix: &str) -> Result<Vec<Target>> {
    let mut out = Vec::new();
    for seg in &lv.segments {
        let start = seg.start_extent * vg.extent_size;
        let len = seg.extent_count * vg.extent_size;
        let area = |name: &str, pe: u64| area(vg, devs, lv, name, pe);
        if let Some(t) = seg.thin() {
            let pool = devs
                .lvs
                .get(t.pool)
                .ok_or_else(|| anyhow!("thin pool {}/{} is not active", vg.name, t.pool))?;
            out.push(Target {
                start,
                len,
                kind: format!("{prefix}thin"),
                params: format!("{pool} {}", t.device_id),
            });
            continue;
        }
        if let Some(m) = seg.mirror() {
            out.push(super::mirror::target(vg, devs, lv, seg, &m, prefix)?);
            continue;
        }
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

/// The type name of target `name` under `prefix`, as orion_dm registers it: dm type names
/// hold 15 bytes, so past that `snapshot-origin` and `snapshot-merge` take their short names
/// (`orion-s-origin`, `orion-s-merge`).
pub fn target_type(prefix: &str, name: &str) -> String {
    const MAX_TYPE_NAME: usize = 15;
    let full = format!("{prefix}{name}");
    if full.len() <= MAX_TYPE_NAME {
        return full;
    }
    let short = match name {
        "snapshot-origin" => "s-origin",
        "snapshot-merge" => "s-merge",
        _ => name,
    };
    format!("{prefix}{short}")
}

/// The kernel module providing C target `kind`, for those that are modules.
fn target_module(kind: &str) -> Option<&'static str> {
    Some(match kind {
        "mirror" => "dm-mirror",
        "thin-pool" | "thin" => "dm-thin-pool",
        "snapshot" | "snapshot-origin" | "snapshot-merge" => "dm-snapshot",
        _ => return None,
    })
}

/// Loads `table` into `dev`, first loading the kernel modules of targets not yet
/// registered (LVM2 runs modprobe the same way).
pub fn load_table(
    ctl: &dyn DmBackend,
    dev: &DevId,
    table: &[Target],
    readonly: bool,
) -> Result<()> {
    let known = ctl.target_versions().unwrap_or_default();
    for t in table {
        if known.iter().any(|(n, _)| *n == t.kind) {
            continue;
        }
        if let Some(m) = target_module(&t.kind) {
            ctl.load_module(m);
        }
    }
    ctl.load(dev, table, readonly).with_context(|| {
        format!(
            "loading a {} table",
            table.first().map_or("", |t| t.kind.as_str())
        )
    })
}

/// Creates (or reloads) dm device `name` with `table`; returns `major:minor`.
pub(crate) fn load_device(
    ctl: &dyn DmBackend,
    name: &str,
    uuid: &str,
    table: &[Target],
    readonly: bool,
) -> Result<String> {
    let loaded = preload_device(ctl, name, uuid, table, readonly)?;
    resume_loaded(ctl, loaded)
}

/// A dm device with a table loaded and not yet live.
pub(crate) struct Preloaded {
    name: String,
    /// Whether the device was live before (it is suspended before its resume).
    existed: bool,
}

/// The first half of [`load_device`]: `name` created if missing and `table` loaded as
/// its inactive table.
pub(crate) fn preload_device(
    ctl: &dyn DmBackend,
    name: &str,
    uuid: &str,
    table: &[Target],
    readonly: bool,
) -> Result<Preloaded> {
    let id = DevId::Name(name.to_owned());
    let existed = ctl.info(&id).is_ok();
    if !existed {
        ctl.create(name, uuid)?;
    }
    if let Err(e) = load_table(ctl, &id, table, readonly) {
        if !existed {
            let _ = ctl.remove(&id);
        }
        return Err(e);
    }
    Ok(Preloaded {
        name: name.to_owned(),
        existed,
    })
}

/// The second half of [`load_device`]: the loaded table goes live; returns
/// `major:minor`.
pub(crate) fn resume_loaded(ctl: &dyn DmBackend, dev: Preloaded) -> Result<String> {
    let id = DevId::Name(dev.name.clone());
    if dev.existed {
        ctl.suspend(&id, false)?;
    }
    let info = ctl.resume(&id)?;
    ctl.make_node(&dev.name, info.major, info.minor)
        .with_context(|| format!("creating /dev/mapper/{}", dev.name))?;
    Ok(format!("{}:{}", info.major, info.minor))
}

pub(super) fn link_lv(ctl: &dyn DmBackend, vg: &str, lv: &str) -> Result<()> {
    ctl.link_lv(vg, lv)
        .with_context(|| format!("linking /dev/{vg}/{lv}"))
}

pub(crate) fn remove_device(ctl: &dyn DmBackend, name: &str) -> Result<()> {
    let id = DevId::Name(name.to_owned());
    if ctl.info(&id).is_ok() {
        ctl.remove(&id)?;
    }
    ctl.remove_node(name);
    Ok(())
}

/// Zeroes the first 4 KiB of new dm device `name`, as LVM2 does for every new LV it
/// activates (old signatures gone; a COW device starts a fresh exception store).
pub fn zero_start(ctl: &dyn DmBackend, name: &str) -> Result<()> {
    ctl.zero_start(name, 4096)
        .with_context(|| format!("zeroing the start of /dev/mapper/{name}"))
}

/// Activates `lv` with its snapshots, as LVM2 stacks them: an origin with snapshots
/// becomes `LV-real` (its own table) under `LV` (`snapshot-origin`), and each snapshot
/// `S` is `S-cow` (the COW LV's table) under `S` (`snapshot LV-real S-cow P chunk`).
/// `new_cows` are COW LVs to wipe before first use.
pub fn activate_with_snapshots(
    ctl: &dyn DmBackend,
    vg: &Vg,
    lv: &Lv,
    devs: &DevMap,
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
    if let Some(rec) = vg.merging_into(&lv.name) {
        // A snapshot merging into its origin: the origin is `snapshot-merge` over the
        // snapshot's COW and the snapshot device an `error` target, as LVM2 stacks it.
        let (_, cow_lv, chunk) = rec
            .snapshot_of()
            .ok_or_else(|| anyhow!("bad snapshot record {}", rec.name))?;
        let cow = vg
            .lv(cow_lv)
            .ok_or_else(|| anyhow!("COW LV {}/{cow_lv} is missing", vg.name))?;
        let cow_dev = load_device(
            ctl,
            &format!("{}-cow", dm_name(&vg.name, cow_lv)),
            &format!("{}-cow", dm_uuid(vg, cow)),
            &table(vg, cow, devs, prefix)?,
            false,
        )?;
        let error = [Target {
            start: 0,
            len: size,
            kind: "error".into(),
            params: String::new(),
        }];
        load_device(
            ctl,
            &dm_name(&vg.name, cow_lv),
            &dm_uuid(vg, cow),
            &error,
            false,
        )?;
        let merge = [Target {
            start: 0,
            len: size,
            kind: target_type(prefix, "snapshot-merge"),
            params: format!("{real} {cow_dev} P {chunk}"),
        }];
        load_device(ctl, &dm_name(&vg.name, &lv.name), &uuid, &merge, readonly)?;
        return link_lv(ctl, &vg.name, &lv.name);
    }
    let origin = [Target {
        start: 0,
        len: size,
        kind: target_type(prefix, "snapshot-origin"),
        params: real.clone(),
    }];
    // Created before the snapshots (so device numbers come in LVM2's order) but live
    // only after them, as LVM2 resumes snapshot origins after new snapshots: a write
    // reaching the origin earlier would not be copied to a snapshot not yet active.
    let origin_dev = preload_device(ctl, &dm_name(&vg.name, &lv.name), &uuid, &origin, readonly)?;
    for (cow, chunk) in snaps {
        let cow_name = format!("{}-cow", dm_name(&vg.name, &cow.name));
        let cow_uuid = format!("{}-cow", dm_uuid(vg, cow));
        let cow_table = table(vg, cow, devs, prefix)?;
        let cow_dev = load_device(ctl, &cow_name, &cow_uuid, &cow_table, false)?;
        if new_cows.contains(&cow.name.as_str()) {
            zero_start(ctl, &cow_name)?;
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
        link_lv(ctl, &vg.name, &cow.name)?;
    }
    resume_loaded(ctl, origin_dev)?;
    link_lv(ctl, &vg.name, &lv.name)
}

/// Removes the `-cow` device under snapshot device `name`.
pub fn remove_cow(ctl: &dyn DmBackend, name: &str) -> Result<()> {
    remove_device(ctl, &format!("{name}-cow"))
}

/// Removes the `-real` device of origin `lv`.
pub fn remove_real(ctl: &dyn DmBackend, vg: &str, lv: &str) -> Result<()> {
    remove_device(ctl, &format!("{}-real", dm_name(vg, lv)))
}

/// Deactivates `lv`, its snapshots and the devices under them.
pub fn deactivate_with_snapshots(ctl: &dyn DmBackend, vg: &Vg, lv: &Lv) -> Result<()> {
    let snaps = vg.snapshots_of(&lv.name);
    for (cow, _) in &snaps {
        let n = dm_name(&vg.name, &cow.name);
        remove_device(ctl, &n)?;
        ctl.unlink_lv(&vg.name, &cow.name);
    }
    // The origin first: while merging it holds the COW device.
    deactivate(ctl, vg, lv)?;
    for (cow, _) in &snaps {
        remove_device(ctl, &format!("{}-cow", dm_name(&vg.name, &cow.name)))?;
    }
    remove_device(ctl, &format!("{}-real", dm_name(&vg.name, &lv.name)))
}

/// Activates (or reloads) `lv` and creates /dev/mapper/NAME and /dev/VG/LV.
pub fn activate(ctl: &dyn DmBackend, vg: &Vg, lv: &Lv, devs: &DevMap, prefix: &str) -> Result<()> {
    let readonly = !lv.status.iter().any(|s| s == "WRITE");
    let t = table(vg, lv, devs, prefix)?;
    load_device(
        ctl,
        &dm_name(&vg.name, &lv.name),
        &dm_uuid(vg, lv),
        &t,
        readonly,
    )?;
    link_lv(ctl, &vg.name, &lv.name)
}

/// Deactivates `lv` if it is active.
pub fn deactivate(ctl: &dyn DmBackend, vg: &Vg, lv: &Lv) -> Result<()> {
    remove_device(ctl, &dm_name(&vg.name, &lv.name))?;
    ctl.unlink_lv(&vg.name, &lv.name);
    Ok(())
}

/// Whether the metadata asks LVM2 to skip `lv` on ordinary activation (thin snapshots).
pub fn activation_skipped(lv: &Lv) -> bool {
    lv.raw
        .strs("flags")
        .is_some_and(|f| f.contains(&"ACTIVATION_SKIP"))
}

/// LVs named as areas of `lv`'s striped segments (pvmove's temporary LV).
fn area_lvs<'a>(vg: &Vg, lv: &'a Lv) -> Vec<&'a str> {
    let mut out = Vec::new();
    for seg in &lv.segments {
        if let SegmentKind::Striped { stripes, .. } = &seg.kind {
            for (name, _) in stripes {
                if vg.pv(name).is_none() && !out.contains(&name.as_str()) {
                    out.push(name.as_str());
                }
            }
        }
    }
    out
}

/// Activates `lv` as its type needs: thin pools and thin volumes with their stacks,
/// mirrors with their images, LVs under a pvmove with the pvmove LV, anything else with
/// its snapshots. `new_cows` are new snapshot COW LVs to zero.
pub fn activate_lv(
    ctl: &dyn DmBackend,
    vg: &Vg,
    lv: &Lv,
    devs: &mut DevMap,
    prefix: &str,
    new_cows: &[&str],
) -> Result<()> {
    if lv.thin_pool().is_some() {
        return super::thin::activate_pool(ctl, vg, lv, devs, prefix);
    }
    if lv.thin().is_some() {
        return super::thin::activate_thin(ctl, vg, lv, devs, prefix);
    }
    if lv.mirror().is_some() {
        return super::mirror::activate_mirror(ctl, vg, lv, devs, prefix);
    }
    for name in area_lvs(vg, lv) {
        if !devs.lvs.contains_key(name) {
            let under = vg
                .lv(name)
                .ok_or_else(|| anyhow!("{}/{name} under {} is missing", vg.name, lv.name))?;
            activate_lv(ctl, vg, under, devs, prefix, &[])?;
        }
    }
    activate_with_snapshots(ctl, vg, lv, devs, prefix, new_cows)?;
    let info = ctl.info(&DevId::Name(dm_name(&vg.name, &lv.name)))?;
    devs.lvs
        .insert(lv.name.clone(), format!("{}:{}", info.major, info.minor));
    Ok(())
}

/// Deactivates `lv` and what was stacked for it (the reverse of [`activate_lv`]).
pub fn deactivate_lv(ctl: &dyn DmBackend, vg: &Vg, lv: &Lv) -> Result<()> {
    if lv.thin_pool().is_some() {
        return super::thin::deactivate_pool(ctl, vg, lv);
    }
    if lv.mirror().is_some() {
        return super::mirror::deactivate_mirror(ctl, vg, lv);
    }
    deactivate_with_snapshots(ctl, vg, lv)?;
    for name in area_lvs(vg, lv) {
        let still_used = vg
            .lvs
            .iter()
            .any(|o| o.name != lv.name && area_lvs(vg, o).contains(&name));
        if !still_used {
            if let Some(under) = vg.lv(name) {
                deactivate_lv(ctl, vg, under)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::target_type;

    #[test]
    fn target_type_takes_the_short_name_past_15_bytes() {
        assert_eq!(target_type("", "snapshot-origin"), "snapshot-origin");
        assert_eq!(target_type("orion-", "snapshot-origin"), "orion-s-origin");
        assert_eq!(target_type("orion-", "snapshot-merge"), "orion-s-merge");
        assert_eq!(target_type("orion-", "snapshot"), "orion-snapshot");
        assert_eq!(target_type("x", "snapshot-merge"), "xsnapshot-merge");
    }
}
