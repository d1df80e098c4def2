// SPDX-License-Identifier: GPL-2.0 OR MIT

//! Thin pools and thin volumes in LVM2's layout.
//!
//! `lvcreate --type thin-pool` makes, as LVM2 does, a metadata spare `lvolN_pmspare` (once
//! per VG, as large as the largest pool metadata), `POOL_tmeta` and `POOL_tdata`, and the
//! pool LV with a `thin-pool` segment naming them. Both metadata LVs start zeroed so the
//! kernel formats fresh metadata. Thin volumes and thin snapshots are created, and
//! deleted, by messages to the live pool (`create_thin`, `create_snap`, `delete`), each
//! change also moving the pool's transaction id one step in the kernel
//! (`set_transaction_id`) and in the LVM2 metadata.

use super::devices::{on_system_vg, Devices};
use super::lv::{deactivate_unused, live_lv_devices};
use super::{
    allocate, allocate_extension, allocate_with_log, merge_segments, valid_name, LvRequest,
};
use crate::config::{Section, Value};
use crate::dm::activate::{self, DevMap};
use crate::dm::ioctl::DevId;
use crate::dm::thin;
use crate::label::{dashed, new_uuid};
use crate::pv::Pv;
use crate::vg::{Lv, Segment, SegmentKind, Vg};
use anyhow::{anyhow, bail, Context, Result};

/// Smallest and largest data block (sectors), as dm-thin allows.
const MIN_CHUNK: u64 = 128;
const MAX_CHUNK: u64 = 2 * 1024 * 1024;
/// LVM2's metadata size bounds and the size its "generic" chunk policy aims below
/// (sectors).
const MIN_METADATA: u64 = 2 * 2048;
const MAX_METADATA: u64 = 2 * 255 * ((1 << 14) - 64) * 4;
const OPTIMAL_METADATA: u64 = 2 * 128 * 1024;

/// Options of a new pool.
pub struct PoolRequest<'a> {
    /// Pool LV name.
    pub name: &'a str,
    /// Data size in extents.
    pub extents: u64,
    /// Chunk size in sectors (LVM2's generic policy when absent).
    pub chunk_size: Option<u64>,
    /// Metadata size in sectors (estimated when absent).
    pub metadata_size: Option<u64>,
    /// Zero new blocks (`-Z`).
    pub zero: bool,
    /// `passdown`, `nopassdown` or `ignore`.
    pub discards: &'a str,
}

/// Metadata sectors LVM2 estimates for `data` sectors in `chunk`-sector blocks (64 bytes
/// of mapping per block).
fn estimate_metadata(data: u64, chunk: u64) -> u64 {
    data / (chunk * 8)
}

/// Chunk size and metadata extents as LVM2 2.03 picks them.
pub fn pool_geometry(
    data_extents: u64,
    extent_size: u64,
    chunk: Option<u64>,
    metadata: Option<u64>,
) -> Result<(u64, u64)> {
    let data = data_extents * extent_size;
    let (chunk, mut meta) = match (chunk, metadata) {
        (Some(c), _) if !(MIN_CHUNK..=MAX_CHUNK).contains(&c) || c % MIN_CHUNK != 0 => {
            bail!("thin pool chunk size must be a multiple of 64 KiB between 64 KiB and 1 GiB")
        }
        (c, Some(m)) => {
            // From the metadata size: the data blocks it can map, rounded to a power of two.
            let est = estimate_metadata(data, m.max(1))
                .max(1)
                .next_power_of_two()
                .clamp(MIN_CHUNK, MAX_CHUNK);
            (c.unwrap_or(est), m)
        }
        (Some(c), None) => (c, estimate_metadata(data, c).next_multiple_of(extent_size)),
        (None, None) => {
            let mut c = 64 * 2;
            let mut m = estimate_metadata(data, c);
            while m > OPTIMAL_METADATA && c < MAX_CHUNK {
                c <<= 1;
                m >>= 1;
            }
            (c, m.next_multiple_of(extent_size))
        }
    };
    if chunk > data {
        bail!("a thin pool's data cannot be smaller than its chunk size");
    }
    meta = meta.clamp(MIN_METADATA, MAX_METADATA);
    Ok((chunk, meta.div_ceil(extent_size)))
}

/// `lvolN` with N one above the highest used, as LVM2 numbers generated names.
pub(super) fn generated_name(vg: &Vg, prefix: &str) -> String {
    let high = vg
        .lvs
        .iter()
        .filter_map(|l| {
            let digits: String = l
                .name
                .strip_prefix(prefix)?
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            digits.parse::<i64>().ok()
        })
        .max()
        .unwrap_or(-1);
    format!("{prefix}{}", high + 1)
}

/// A linear segment list of `extents` on (pv, pe).
fn linear(pv: &str, pe: u64, extents: u64) -> Vec<Segment> {
    vec![Segment {
        start_extent: 0,
        extent_count: extents,
        kind: SegmentKind::Striped {
            stripe_size: None,
            stripes: vec![(pv.to_owned(), pe)],
        },
    }]
}

/// Data and metadata areas of a new pool, placed as LVM2 places a mirror and its log
/// ([`allocate_with_log`]); without two suitable PVs, data then metadata by the normal
/// policy.
fn allocate_pool(
    vg: &Vg,
    name: &str,
    data: u64,
    meta: u64,
) -> Result<(Vec<Segment>, Vec<Segment>)> {
    if let Some((areas, (mpv, mpe))) = allocate_with_log(vg, 1, data, meta) {
        return Ok((
            linear(&areas[0].0, areas[0].1, data),
            linear(&mpv, mpe, meta),
        ));
    }
    let data_segs = allocate(
        vg,
        &LvRequest {
            name,
            extents: data,
            stripes: 1,
            stripe_size: 128,
        },
    )?;
    let mut after = vg.clone();
    after.lvs.push(Lv {
        name: format!("{name}_tdata"),
        id: String::new(),
        status: vec![],
        segments: data_segs.clone(),
        raw: Section::default(),
    });
    let meta_segs = allocate(
        &after,
        &LvRequest {
            name,
            extents: meta,
            stripes: 1,
            stripe_size: 128,
        },
    )?;
    Ok((data_segs, meta_segs))
}

/// Zeroes an LV's extents directly on its PVs (new pool metadata and its spare, a new
/// mirror log), so no device-mapper device is needed for it.
pub(super) fn zero_on_pvs(vg: &Vg, members: &[&Pv], lv: &Lv) -> Result<()> {
    use std::os::unix::fs::FileExt;
    let zeros = vec![0u8; 1 << 20];
    for seg in &lv.segments {
        let SegmentKind::Striped { stripes, .. } = &seg.kind else {
            continue;
        };
        let per = seg.extent_count / stripes.len() as u64;
        for (key, pe) in stripes {
            let vp = vg
                .pv(key)
                .ok_or_else(|| anyhow!("PV {key} not in {}", vg.name))?;
            let p = members
                .iter()
                .find(|p| dashed(&p.label.uuid) == vp.id)
                .ok_or_else(|| anyhow!("PV {} of {} is missing", vp.id, vg.name))?;
            let f = std::fs::OpenOptions::new()
                .write(true)
                .open(&p.path)
                .with_context(|| format!("opening {}", p.path.display()))?;
            let mut at = (vp.pe_start + pe * vg.extent_size) * 512;
            let end = at + per * vg.extent_size * 512;
            while at < end {
                let n = (end - at).min(zeros.len() as u64) as usize;
                f.write_all_at(&zeros[..n], at)
                    .with_context(|| format!("zeroing {}", p.path.display()))?;
                at += n as u64;
            }
            f.sync_all()?;
        }
    }
    Ok(())
}

pub(super) fn new_lv(name: &str, status: &[&str], segments: Vec<Segment>) -> Result<Lv> {
    Ok(Lv {
        name: name.to_owned(),
        id: dashed(&new_uuid()?),
        status: status.iter().map(|s| (*s).to_owned()).collect(),
        segments,
        raw: Section::default(),
    })
}

/// The VG's pool metadata spare (`lvolN_pmspare`), if it has one.
pub(super) fn spare_of(vg: &Vg) -> Option<&Lv> {
    vg.lvs.iter().find(|l| l.name.ends_with("_pmspare"))
}

/// Makes the VG's pool metadata spare at least `meta` extents, as LVM2's
/// `handle_pool_metadata_spare`: a new `lvolN_pmspare` (hidden) when there is none, else
/// the spare extended. Returns the spare's name when it is new or grew (it must be zeroed).
pub(super) fn ensure_spare(vg: &mut Vg, meta: u64) -> Result<Option<String>> {
    match vg.lvs.iter().position(|l| l.name.ends_with("_pmspare")) {
        Some(i) if vg.lvs[i].extents() < meta => {
            let extra = meta - vg.lvs[i].extents();
            let mut more = allocate_extension(vg, &vg.lvs[i], extra)?;
            vg.lvs[i].segments.append(&mut more);
            merge_segments(&mut vg.lvs[i].segments);
            Ok(Some(vg.lvs[i].name.clone()))
        }
        Some(_) => Ok(None),
        None => {
            let name = format!("{}_pmspare", generated_name(vg, "lvol"));
            let segs = allocate(
                vg,
                &LvRequest {
                    name: &name,
                    extents: meta,
                    stripes: 1,
                    stripe_size: 128,
                },
            )?;
            vg.lvs.push(new_lv(&name, &["READ", "WRITE"], segs)?);
            Ok(Some(name))
        }
    }
}

/// The metadata part of `lvcreate --type thin-pool`: the spare (made or grown), the
/// metadata and data LVs and the pool LV added to `vg`. Returns the LVs to zero.
pub(crate) fn pool_metadata(vg: &mut Vg, req: &PoolRequest<'_>) -> Result<Vec<String>> {
    for n in [
        req.name.to_owned(),
        format!("{}_tmeta", req.name),
        format!("{}_tdata", req.name),
    ] {
        if vg.lv(&n).is_some() {
            bail!("logical volume {n} already exists in {}", vg.name);
        }
    }
    if req.extents == 0 {
        bail!("a thin pool needs at least one extent");
    }
    let (chunk, meta) = pool_geometry(
        req.extents,
        vg.extent_size,
        req.chunk_size,
        req.metadata_size,
    )?;
    // The spare first, as LVM2 allocates it first.
    let mut zero: Vec<String> = ensure_spare(vg, meta)?.into_iter().collect();
    let (data_segs, meta_segs) = allocate_pool(vg, req.name, req.extents, meta)?;
    let tmeta = format!("{}_tmeta", req.name);
    let tdata = format!("{}_tdata", req.name);
    vg.lvs.push(new_lv(&tmeta, &["READ", "WRITE"], meta_segs)?);
    vg.lvs.push(new_lv(&tdata, &["READ", "WRITE"], data_segs)?);
    zero.push(tmeta.clone());
    let mut seg = Section::default();
    seg.push("start_extent", Value::Int(0))
        .push("extent_count", Value::Int(req.extents as i64))
        .push("type", Value::Str("thin-pool".into()))
        .push("metadata", Value::Str(tmeta))
        .push("pool", Value::Str(tdata))
        .push("transaction_id", Value::Int(0))
        .push("chunk_size", Value::Int(chunk as i64))
        .push("discards", Value::Str(req.discards.into()))
        .push("zero_new_blocks", Value::Int(req.zero.into()));
    vg.lvs.push(new_lv(
        req.name,
        &["READ", "WRITE", "VISIBLE"],
        vec![Segment {
            start_extent: 0,
            extent_count: req.extents,
            kind: SegmentKind::Other(seg),
        }],
    )?);
    Ok(zero)
}

/// `lvcreate --type thin-pool`: the spare, metadata and data LVs and the pool, activated
/// (as `VG-POOL` with the thin-pool target) unless `activate_it` is false.
pub fn lvcreate_pool(
    vg_name: &str,
    req: &PoolRequest<'_>,
    activate_it: bool,
    prefix: &str,
) -> Result<Vg> {
    on_system_vg(vg_name, prefix, |d, vg| {
        create_pool(d, vg, req, activate_it)
    })
}

/// [`lvcreate_pool`] in `vg`.
pub(crate) fn create_pool(
    d: &mut Devices<'_>,
    mut vg: Vg,
    req: &PoolRequest<'_>,
    activate_it: bool,
) -> Result<Vg> {
    valid_name(req.name)?;
    if !["passdown", "nopassdown", "ignore"].contains(&req.discards) {
        bail!("--discards takes passdown, nopassdown or ignore");
    }
    let zero = pool_metadata(&mut vg, req)?;
    for n in &zero {
        d.zero(&vg, n)?;
    }
    vg.seqno += 1;
    let description = format!(
        "Write from orion-lvm lvcreate --type thin-pool -n {} {}.",
        req.name, vg.name
    );
    d.commit(&vg, &description)?;
    if activate_it {
        let mut devs = d.pvs.clone();
        let pool = vg.lv(req.name).ok_or_else(|| anyhow!("pool vanished"))?;
        thin::activate_pool(d.need_dm()?, &vg, pool, &mut devs, d.prefix)?;
    }
    Ok(vg)
}

/// Makes `pool` live for messages; returns whether it was live before.
fn pool_live(d: &Devices<'_>, vg: &Vg, pool: &str) -> Result<bool> {
    let ctl = d.need_dm()?;
    if thin::live_tpool(ctl, vg, pool).is_some() {
        return Ok(true);
    }
    let p = vg
        .lv(pool)
        .ok_or_else(|| anyhow!("thin pool {}/{pool} not found", vg.name))?;
    let mut devs = d.pvs.clone();
    thin::activate_pool(ctl, vg, p, &mut devs, d.prefix)?;
    Ok(false)
}

/// The next free thin device id of `pool` (one above the highest, as LVM2).
fn next_device_id(vg: &Vg, pool: &str) -> u64 {
    vg.lvs
        .iter()
        .filter_map(|l| l.thin())
        .filter(|t| t.pool == pool)
        .map(|t| t.device_id)
        .max()
        .unwrap_or(0)
        + 1
}

/// Sets the pool's transaction id in the metadata; returns the old one.
fn bump_transaction(vg: &mut Vg, pool: &str) -> Result<u64> {
    let lv = vg
        .lvs
        .iter_mut()
        .find(|l| l.name == pool)
        .ok_or_else(|| anyhow!("thin pool {pool} vanished"))?;
    let tid = lv
        .thin_pool()
        .map(|s| s.transaction_id)
        .ok_or_else(|| anyhow!("{pool} is not a thin pool"))?;
    if let SegmentKind::Other(s) = &mut lv.segments[0].kind {
        s.set(
            "transaction_id",
            crate::config::Node::Value(Value::Int(tid as i64 + 1)),
        );
    }
    Ok(tid)
}

fn thin_segment(extents: u64, pool: &str, tid: u64, id: u64, origin: Option<&str>) -> Segment {
    let mut seg = Section::default();
    seg.push("start_extent", Value::Int(0))
        .push("extent_count", Value::Int(extents as i64))
        .push("type", Value::Str("thin".into()))
        .push("thin_pool", Value::Str(pool.into()))
        .push("transaction_id", Value::Int(tid as i64))
        .push("device_id", Value::Int(id as i64));
    if let Some(o) = origin {
        seg.push("origin", Value::Str(o.into()));
    }
    Segment {
        start_extent: 0,
        extent_count: extents,
        kind: SegmentKind::Other(seg),
    }
}

/// `lvcreate -V SIZE --thinpool POOL -n NAME VG`: a thin volume of `extents` virtual
/// extents, activated unless `activate_it` is false.
pub fn lvcreate_thin(
    vg_name: &str,
    pool: &str,
    name: &str,
    extents: u64,
    activate_it: bool,
    prefix: &str,
) -> Result<Vg> {
    on_system_vg(vg_name, prefix, |d, vg| {
        create_thin(d, vg, pool, name, extents, activate_it)
    })
}

/// [`lvcreate_thin`] in `old`: the pool (made live for it if it was not) creates the
/// device and moves its transaction id by message, then the metadata is committed.
pub(crate) fn create_thin(
    d: &mut Devices<'_>,
    old: Vg,
    pool: &str,
    name: &str,
    extents: u64,
    activate_it: bool,
) -> Result<Vg> {
    valid_name(name)?;
    let vg_name = old.name.clone();
    if old.lv(pool).and_then(|p| p.thin_pool()).is_none() {
        bail!("thin pool {vg_name}/{pool} not found");
    }
    if old.lv(name).is_some() {
        bail!("logical volume {name} already exists in {vg_name}");
    }
    if extents == 0 {
        bail!("a thin volume needs a size");
    }
    let mut vg = old.clone();
    let id = next_device_id(&vg, pool);
    let tid = bump_transaction(&mut vg, pool)?;
    vg.lvs.push(new_lv(
        name,
        &["READ", "WRITE", "VISIBLE"],
        vec![thin_segment(extents, pool, tid, id, None)],
    )?);
    vg.seqno += 1;
    let ctl = d.need_dm()?;
    let was_live = pool_live(d, &old, pool)?;
    thin::message(
        ctl,
        &old,
        pool,
        &[
            format!("create_thin {id}"),
            format!("set_transaction_id {tid} {}", tid + 1),
        ],
    )?;
    d.commit(
        &vg,
        &format!("Write from orion-lvm lvcreate -V -n {name} {vg_name}/{pool}."),
    )?;
    if activate_it {
        let lv = vg.lv(name).ok_or_else(|| anyhow!("{name} vanished"))?;
        let mut devs = d.pvs.clone();
        thin::activate_thin(ctl, &vg, lv, &mut devs, d.prefix)?;
    } else if !was_live {
        let p = vg.lv(pool).ok_or_else(|| anyhow!("pool vanished"))?;
        thin::deactivate_pool(ctl, &vg, p)?;
    }
    Ok(vg)
}

/// `lvcreate -s VG/THIN -n NAME`: a thin snapshot in the same pool, not activated (LVM2
/// marks thin snapshots to skip activation). An active origin is suspended around the
/// message so the snapshot holds everything written before.
pub fn lvcreate_thin_snapshot(vg_name: &str, origin: &str, name: &str, prefix: &str) -> Result<Vg> {
    on_system_vg(vg_name, prefix, |d, vg| {
        create_thin_snapshot(d, vg, origin, name)
    })
}

/// [`lvcreate_thin_snapshot`] in `old`.
pub(crate) fn create_thin_snapshot(
    d: &mut Devices<'_>,
    old: Vg,
    origin: &str,
    name: &str,
) -> Result<Vg> {
    valid_name(name)?;
    let vg_name = old.name.clone();
    let o = old
        .lv(origin)
        .ok_or_else(|| anyhow!("origin {vg_name}/{origin} not found"))?;
    let t = o
        .thin()
        .ok_or_else(|| anyhow!("{vg_name}/{origin} is not a thin volume"))?;
    if old.lv(name).is_some() {
        bail!("logical volume {name} already exists in {vg_name}");
    }
    let pool = t.pool.to_owned();
    let origin_id = t.device_id;
    let mut vg = old.clone();
    let id = next_device_id(&vg, &pool);
    let tid = bump_transaction(&mut vg, &pool)?;
    let mut lv = new_lv(
        name,
        &["READ", "WRITE", "VISIBLE"],
        vec![thin_segment(o.extents(), &pool, tid, id, Some(origin))],
    )?;
    lv.raw.push(
        "flags",
        Value::Array(vec![Value::Str("ACTIVATION_SKIP".into())]),
    );
    vg.lvs.push(lv);
    vg.seqno += 1;
    let ctl = d.need_dm()?;
    let was_live = pool_live(d, &old, &pool)?;
    let origin_dev = DevId::Name(activate::dm_name(&vg_name, origin));
    let origin_active = ctl.info(&origin_dev).is_ok();
    if origin_active {
        ctl.suspend(&origin_dev, false)?;
    }
    let sent = thin::message(
        ctl,
        &old,
        &pool,
        &[
            format!("create_snap {id} {origin_id}"),
            format!("set_transaction_id {tid} {}", tid + 1),
        ],
    );
    if origin_active {
        ctl.resume(&origin_dev)?;
    }
    sent?;
    d.commit(
        &vg,
        &format!("Write from orion-lvm lvcreate -s -n {name} {vg_name}/{origin}."),
    )?;
    if !was_live {
        let p = vg.lv(&pool).ok_or_else(|| anyhow!("pool vanished"))?;
        thin::deactivate_pool(ctl, &vg, p)?;
    }
    Ok(vg)
}

/// `lvremove` of a thin volume: deactivated, deleted from the pool by message, dropped
/// from the metadata.
pub(crate) fn lvremove_thin(d: &mut Devices<'_>, mut vg: Vg, lv: &Lv) -> Result<()> {
    let t = lv
        .thin()
        .ok_or_else(|| anyhow!("{} is not a thin volume", lv.name))?;
    let pool = t.pool.to_owned();
    let id = t.device_id;
    let ctl = d.need_dm()?;
    deactivate_unused(ctl, &vg, lv)?;
    let old = vg.clone();
    let was_live = pool_live(d, &old, &pool)?;
    let tid = bump_transaction(&mut vg, &pool)?;
    thin::message(
        ctl,
        &old,
        &pool,
        &[
            format!("delete {id}"),
            format!("set_transaction_id {tid} {}", tid + 1),
        ],
    )?;
    vg.lvs.retain(|l| l.name != lv.name);
    vg.seqno += 1;
    let description = format!("Write from orion-lvm lvremove {}/{}.", vg.name, lv.name);
    d.commit(&vg, &description)?;
    if !was_live {
        let p = old.lv(&pool).ok_or_else(|| anyhow!("pool vanished"))?;
        thin::deactivate_pool(ctl, &old, p)?;
    }
    Ok(())
}

/// Grows pool `vg.lvs[i]` to `extents` by extending its data LV. A live pool gets the
/// bigger data device first, then its thin-pool (and public) tables, suspended without
/// flushing while the metadata is committed.
pub(crate) fn extend_pool(d: &mut Devices<'_>, mut vg: Vg, i: usize, extents: u64) -> Result<()> {
    let pool_name = vg.lvs[i].name.clone();
    let data_name = vg.lvs[i]
        .thin_pool()
        .map(|s| s.data.to_owned())
        .ok_or_else(|| anyhow!("{pool_name} is not a thin pool"))?;
    let d_i = vg
        .lvs
        .iter()
        .position(|l| l.name == data_name)
        .ok_or_else(|| anyhow!("{data_name} is missing"))?;
    let extra = extents - vg.lvs[i].extents();
    let mut more = allocate_extension(&vg, &vg.lvs[d_i], extra)?;
    vg.lvs[d_i].segments.append(&mut more);
    merge_segments(&mut vg.lvs[d_i].segments);
    vg.lvs[i].segments[0].extent_count = extents;
    if let SegmentKind::Other(s) = &mut vg.lvs[i].segments[0].kind {
        s.set(
            "extent_count",
            crate::config::Node::Value(Value::Int(extents as i64)),
        );
    }
    vg.seqno += 1;
    let description = format!("Write from orion-lvm lvextend {}/{pool_name}.", vg.name);
    let ctl = d.dm();
    let live = ctl.and_then(|c| thin::live_tpool(c, &vg, &pool_name));
    let (Some(ctl), Some(tpool)) = (ctl, live) else {
        return d.commit(&vg, &description);
    };
    let data_dm = DevId::Name(activate::dm_name(&vg.name, &data_name));
    let devs: DevMap = live_lv_devices(ctl, &vg, d.pvs.clone(), &vg.lvs[d_i])?;
    ctl.load(
        &data_dm,
        &activate::table(&vg, &vg.lvs[d_i], &devs, d.prefix)?,
        false,
    )?;
    ctl.resume(&data_dm)?;
    let tpool_id = DevId::Name(tpool.clone());
    let mut t = ctl.table(&tpool_id)?;
    let size = extents * vg.extent_size;
    if let Some(line) = t.first_mut() {
        line.len = size;
        line.params = thin::with_low_water_mark(&line.params, size);
    }
    ctl.load(&tpool_id, &t, false)?;
    let public = activate::dm_name(&vg.name, &pool_name);
    let view = (tpool != public).then_some(DevId::Name(public));
    if let Some(v) = &view {
        let mut vt = ctl.table(v)?;
        if let Some(line) = vt.first_mut() {
            line.len = size;
        }
        ctl.load(v, &vt, true)?;
        ctl.suspend(v, true)?;
    }
    ctl.suspend(&tpool_id, true)?;
    let committed = d.commit(&vg, &description);
    ctl.resume(&tpool_id)?;
    if let Some(v) = &view {
        ctl.resume(v)?;
    }
    committed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::devices::on_recording;
    use crate::dm::recording::{test_vg, RecordingDm};

    fn pool_req() -> PoolRequest<'static> {
        PoolRequest {
            name: "pool",
            extents: 4,
            chunk_size: None,
            metadata_size: None,
            zero: true,
            discards: "passdown",
        }
    }

    #[test]
    fn lvcreate_thin_messages_the_pool_before_the_commit_and_activates_after() {
        let (vg, pvs) = test_vg("vg", &[20, 20]);
        let dm = RecordingDm::new();
        let vg = on_recording(&dm, &pvs, |d| create_pool(d, vg, &pool_req(), false)).unwrap();
        assert_eq!(
            dm.log(),
            [
                "zero on PVs lvol0_pmspare",
                "zero on PVs pool_tmeta",
                "commit seqno 2: Write from orion-lvm lvcreate --type thin-pool -n pool vg.",
            ],
            "an inactive pool: metadata zeroed on the PVs, one commit, no device"
        );
        dm.clear_log();
        let vg = on_recording(&dm, &pvs, |d| create_thin(d, vg, "pool", "thin", 10, true)).unwrap();
        assert_eq!(
            dm.log(),
            [
                // The pool goes live on its own (no thin volume yet: `vg-pool` is the pool)...
                "create vg-pool_tmeta",
                "load vg-pool_tmeta: 0 8192 linear 7:1 2048",
                "resume vg-pool_tmeta",
                "node vg-pool_tmeta",
                "create vg-pool_tdata",
                "load vg-pool_tdata: 0 32768 linear 7:0 10240",
                "resume vg-pool_tdata",
                "node vg-pool_tdata",
                "create vg-pool",
                "modprobe dm-thin-pool",
                "load vg-pool: 0 32768 thin-pool 253:0 253:1 128 0 0",
                "resume vg-pool",
                "node vg-pool",
                // ...creates the device and moves its transaction id by message, then the
                // metadata recording both is committed...
                "message vg-pool: create_thin 1",
                "message vg-pool: set_transaction_id 0 1",
                "commit seqno 3: Write from orion-lvm lvcreate -V -n thin vg/pool.",
                // ...then the pool moves under `vg-pool-tpool` (same metadata and data
                // devices, the transaction id kept) with a read-only `vg-pool` view, and
                // the thin volume goes live over it.
                "remove vg-pool",
                "load vg-pool_tmeta: 0 8192 linear 7:1 2048",
                "suspend vg-pool_tmeta",
                "resume vg-pool_tmeta",
                "node vg-pool_tmeta",
                "load vg-pool_tdata: 0 32768 linear 7:0 10240",
                "suspend vg-pool_tdata",
                "resume vg-pool_tdata",
                "node vg-pool_tdata",
                "create vg-pool-tpool",
                "load vg-pool-tpool: 0 32768 thin-pool 253:0 253:1 128 0 0",
                "resume vg-pool-tpool",
                "node vg-pool-tpool",
                "create vg-pool",
                "load vg-pool: 0 32768 linear 253:3 0",
                "resume vg-pool",
                "node vg-pool",
                "create vg-thin",
                "load vg-thin: 0 81920 thin 253:3 1",
                "resume vg-thin",
                "node vg-thin",
                "link vg/thin",
            ]
        );
        assert_eq!(vg.lv("thin").and_then(|l| l.thin()).unwrap().device_id, 1);
        // A thin snapshot of the live origin: the origin is suspended around the message.
        dm.clear_log();
        on_recording(&dm, &pvs, |d| create_thin_snapshot(d, vg, "thin", "snap")).unwrap();
        assert_eq!(
            dm.log(),
            [
                "suspend vg-thin",
                "message vg-pool-tpool: create_snap 2 1",
                "message vg-pool-tpool: set_transaction_id 1 2",
                "resume vg-thin",
                "commit seqno 4: Write from orion-lvm lvcreate -s -n snap vg/thin.",
            ]
        );
    }

    #[test]
    fn growing_a_live_pool_grows_its_data_first_and_commits_while_it_is_suspended() {
        let (vg, pvs) = test_vg("vg", &[20, 20]);
        let dm = RecordingDm::new();
        let vg = on_recording(&dm, &pvs, |d| create_pool(d, vg, &pool_req(), true)).unwrap();
        dm.clear_log();
        let i = vg.lvs.iter().position(|l| l.name == "pool").unwrap();
        on_recording(&dm, &pvs, |d| extend_pool(d, vg, i, 6)).unwrap();
        let log: Vec<String> = dm
            .log()
            .into_iter()
            .map(|l| l.split(':').next().unwrap().to_owned())
            .collect();
        assert_eq!(
            log,
            [
                "load vg-pool_tdata",
                "resume vg-pool_tdata",
                "load vg-pool",
                "suspend vg-pool noflush",
                "commit seqno 3",
                "resume vg-pool",
            ]
        );
        assert_eq!(dm.live_table("vg-pool").unwrap()[0].len, 6 * 8192);
    }
}
