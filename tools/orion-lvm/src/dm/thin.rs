// SPDX-License-Identifier: GPL-2.0 OR MIT

//! Thin pools and thin volumes, stacked as LVM2 stacks them.
//!
//! A pool is `POOL_tmeta` and `POOL_tdata` (the LVs' own tables, DM UUID suffixes `-tmeta`
//! and `-tdata`) under a `thin-pool` device. While no thin volume uses the pool, that
//! device is `VG-POOL` itself (suffix `-tpool`); once thin volumes exist it is
//! `VG-POOL-tpool` and `VG-POOL` is a read-only `linear` view of it (suffix `-pool`). Thin
//! volumes are `thin <tpool> <device id>`. Before a pool goes live its metadata is checked
//! (LVM2 runs thin_check; we run orion-thin's check in process), and the transaction id
//! the kernel reports must be the one in the LVM2 metadata.

use super::activate::{dm_name, dm_uuid, load_device, remove_device, table, DevMap};
use super::backend::DmBackend;
use super::ioctl::{DevId, Target};
use crate::vg::{Lv, Vg};
use anyhow::{anyhow, bail, Context, Result};

/// Whether thin volumes use `pool`, which gives it the layered `-tpool` stack.
pub fn layered(vg: &Vg, pool: &str) -> bool {
    vg.lvs
        .iter()
        .any(|l| l.thin().is_some_and(|t| t.pool == pool))
}

/// Name of the device carrying the thin-pool target of `pool`.
pub fn tpool_name(vg: &Vg, pool: &str) -> String {
    let base = dm_name(&vg.name, pool);
    if layered(vg, pool) {
        format!("{base}-tpool")
    } else {
        base
    }
}

/// The low water mark LVM2 gives a pool of `len` sectors in `chunk`-sector blocks, from
/// lvm.conf's `thin_pool_autoextend_threshold` (0, no event, when it is 100 or unreadable).
fn low_water_mark(len: u64, chunk: u64) -> u64 {
    let threshold = crate::lvmconf::activation().map_or(100, |a| a.thin_threshold);
    crate::lvmconf::low_water_mark(threshold, len / chunk.max(1))
}

/// `params` of a thin-pool line with the low water mark recomputed for `len` sectors (a
/// pool table reloaded at a new size).
pub fn with_low_water_mark(params: &str, len: u64) -> String {
    let mut f: Vec<String> = params.split_whitespace().map(str::to_owned).collect();
    if let (Some(chunk), true) = (f.get(2).and_then(|c| c.parse().ok()), f.len() > 3) {
        f[3] = low_water_mark(len, chunk).to_string();
    }
    f.join(" ")
}

/// The thin-pool table line's parameters after the two devices, as libdevmapper emits
/// them: block size, low water mark, then the features.
fn pool_params(meta: &str, data: &str, seg: &crate::vg::ThinPoolSeg<'_>, len: u64) -> String {
    let mut features = Vec::new();
    if !seg.zero_new_blocks {
        features.push("skip_block_zeroing");
    }
    match seg.discards {
        "ignore" => features.push("ignore_discard"),
        "nopassdown" => features.push("no_discard_passdown"),
        _ => {}
    }
    let mut p = format!(
        "{meta} {data} {} {} {}",
        seg.chunk_size,
        low_water_mark(len, seg.chunk_size),
        features.len()
    );
    for f in features {
        p.push(' ');
        p.push_str(f);
    }
    p
}

/// Checks the pool metadata on `path` with orion-thin's checker (LVM2 runs thin_check
/// here). All-zero metadata is a new pool the kernel formats on first load.
fn check_metadata(ctl: &dyn DmBackend, name: &str) -> Result<()> {
    let path = ctl.device_path(name);
    let mut sb = [0u8; 4096];
    ctl.read_start(name, &mut sb)
        .with_context(|| format!("reading {}", path.display()))?;
    if sb.iter().all(|b| *b == 0) {
        return Ok(());
    }
    let path = path.as_path();
    let store = orion_thin::cache::FileStore::open(path, false)
        .with_context(|| format!("opening {}", path.display()))?;
    let bm = orion_thin::cache::CachedBm::new(store);
    let report = orion_thin::check::check(&bm);
    if !report.is_clean() {
        bail!(
            "thin pool metadata on {} is damaged: {}",
            path.display(),
            report.errors.join("; ")
        );
    }
    Ok(())
}

/// The transaction id in the status line of the thin-pool device `name`.
pub fn kernel_transaction_id(ctl: &dyn DmBackend, name: &str) -> Result<u64> {
    let st = ctl.status(&DevId::Name(name.to_owned()))?;
    let line = st.first().ok_or_else(|| anyhow!("{name} has no table"))?;
    let first = line.params.split_whitespace().next().unwrap_or("");
    first.parse().map_err(|_| {
        anyhow!(
            "{name}: thin-pool status {:?} has no transaction id",
            line.params
        )
    })
}

/// Activates `pool`'s stack (metadata, data, thin-pool device and, when thin volumes
/// use it, the read-only public device) and records the thin-pool device in `devs`.
pub fn activate_pool(
    ctl: &dyn DmBackend,
    vg: &Vg,
    pool: &Lv,
    devs: &mut DevMap,
    prefix: &str,
) -> Result<()> {
    let seg = pool
        .thin_pool()
        .ok_or_else(|| anyhow!("{}/{} is not a thin pool", vg.name, pool.name))?;
    let lv = |n: &str| {
        vg.lv(n)
            .ok_or_else(|| anyhow!("{}/{n} of pool {} is missing", vg.name, pool.name))
    };
    let (meta, data) = (lv(seg.metadata)?, lv(seg.data)?);
    let tpool = tpool_name(vg, &pool.name);
    let public = dm_name(&vg.name, &pool.name);
    let uuid = dm_uuid(vg, pool);
    // A pool that gained its first thin volume while live as `VG-POOL` moves to the
    // layered stack; the kernel allows one live pool per metadata device.
    if tpool != public {
        if let Ok(info) = ctl.info(&DevId::Name(public.clone())) {
            if info.uuid.ends_with("-tpool") {
                remove_device(ctl, &public)?;
            }
        }
    }
    let live = ctl.info(&DevId::Name(tpool.clone())).is_ok();
    let meta_dev = load_device(
        ctl,
        &dm_name(&vg.name, &meta.name),
        &format!("{}-tmeta", dm_uuid(vg, meta)),
        &table(vg, meta, devs, prefix)?,
        false,
    )?;
    let data_dev = load_device(
        ctl,
        &dm_name(&vg.name, &data.name),
        &format!("{}-tdata", dm_uuid(vg, data)),
        &table(vg, data, devs, prefix)?,
        false,
    )?;
    if !live {
        check_metadata(ctl, &dm_name(&vg.name, &meta.name))?;
    }
    let size = pool.extents() * vg.extent_size;
    let t = [Target {
        start: 0,
        len: size,
        kind: format!("{prefix}thin-pool"),
        params: pool_params(&meta_dev, &data_dev, &seg, size),
    }];
    let tpool_dev = load_device(ctl, &tpool, &format!("{uuid}-tpool"), &t, false)?;
    let tid = kernel_transaction_id(ctl, &tpool)?;
    if tid != seg.transaction_id {
        bail!(
            "thin pool {}/{} has transaction id {tid} in the kernel, {} in the LVM metadata",
            vg.name,
            pool.name,
            seg.transaction_id
        );
    }
    if tpool != public {
        let view = [Target {
            start: 0,
            len: size,
            kind: format!("{prefix}linear"),
            params: format!("{tpool_dev} 0"),
        }];
        load_device(ctl, &public, &format!("{uuid}-pool"), &view, true)?;
    }
    devs.lvs.insert(pool.name.clone(), tpool_dev);
    Ok(())
}

/// Activates thin volume `lv`, its pool first.
pub fn activate_thin(
    ctl: &dyn DmBackend,
    vg: &Vg,
    lv: &Lv,
    devs: &mut DevMap,
    prefix: &str,
) -> Result<()> {
    let t = lv
        .thin()
        .ok_or_else(|| anyhow!("{}/{} is not a thin volume", vg.name, lv.name))?;
    if !devs.lvs.contains_key(t.pool) {
        let pool = vg
            .lv(t.pool)
            .ok_or_else(|| anyhow!("pool {}/{} is missing", vg.name, t.pool))?;
        activate_pool(ctl, vg, pool, devs, prefix)?;
    }
    super::activate::activate(ctl, vg, lv, devs, prefix)
}

/// Deactivates `pool`'s stack; its thin volumes must be inactive.
pub fn deactivate_pool(ctl: &dyn DmBackend, vg: &Vg, pool: &Lv) -> Result<()> {
    let seg = pool
        .thin_pool()
        .ok_or_else(|| anyhow!("{}/{} is not a thin pool", vg.name, pool.name))?;
    let public = dm_name(&vg.name, &pool.name);
    remove_device(ctl, &public)?;
    remove_device(ctl, &format!("{public}-tpool"))?;
    remove_device(ctl, &dm_name(&vg.name, seg.data))?;
    remove_device(ctl, &dm_name(&vg.name, seg.metadata))
}

/// Sends `messages` to the live thin-pool device of `pool`.
pub fn message(ctl: &dyn DmBackend, vg: &Vg, pool: &str, messages: &[String]) -> Result<()> {
    let name = live_tpool(ctl, vg, pool)
        .ok_or_else(|| anyhow!("thin pool {}/{pool} is not active", vg.name))?;
    let id = DevId::Name(name.clone());
    for m in messages {
        ctl.message(&id, 0, m)
            .with_context(|| format!("message {m:?} to thin pool {name}"))?;
    }
    Ok(())
}

/// The name of the live thin-pool device of `pool`, in whichever stack it is.
pub fn live_tpool(ctl: &dyn DmBackend, vg: &Vg, pool: &str) -> Option<String> {
    let public = dm_name(&vg.name, pool);
    let layered_name = format!("{public}-tpool");
    if ctl.info(&DevId::Name(layered_name.clone())).is_ok() {
        return Some(layered_name);
    }
    match ctl.info(&DevId::Name(public.clone())) {
        Ok(i) if i.uuid.ends_with("-tpool") => Some(public),
        _ => None,
    }
}
