// SPDX-License-Identifier: GPL-2.0 OR MIT

//! `pvs`, `vgs`, `lvs` and `fullreport`: the rows of each report built from the scanned
//! PVs and their VG metadata (and, for LVs, the kernel's view when device-mapper is
//! there), then selected, sorted and printed by [`crate::report`].

use super::report::lv_report;
use super::Scan;
use crate::dm::activate::dm_name;
use crate::dm::backend::DmBackend;
use crate::label::{dashed, undashed};
use crate::pv::Pv;
use crate::report::{self, fields::Field, Format, Row, Table, Value};
use crate::vg::{Lv, Segment, SegmentKind, Vg};
use anyhow::{bail, Result};

/// LVM2's default columns and sort order of each report.
pub const PVS_COLUMNS: &[&str] = &[
    "pv_name", "vg_name", "pv_fmt", "pv_attr", "pv_size", "pv_free",
];
/// `vgs` defaults.
pub const VGS_COLUMNS: &[&str] = &[
    "vg_name",
    "pv_count",
    "lv_count",
    "snap_count",
    "vg_attr",
    "vg_size",
    "vg_free",
];
/// `lvs` defaults.
pub const LVS_COLUMNS: &[&str] = &[
    "lv_name",
    "vg_name",
    "lv_attr",
    "lv_size",
    "pool_lv",
    "origin",
    "data_percent",
    "metadata_percent",
    "move_pv",
    "mirror_log",
    "copy_percent",
    "convert_lv",
];

/// The report options common to `pvs`, `vgs` and `lvs`.
#[derive(Clone, Debug, Default)]
pub struct ReportArgs {
    /// `-o`, each occurrence.
    pub options: Vec<String>,
    /// `-O`.
    pub sort: Option<String>,
    /// `-S`.
    pub select: Option<String>,
    /// How to print.
    pub format: Format,
    /// Positional names: VGs, VG/LVs or PV devices.
    pub names: Vec<String>,
    /// `lvs -a`: internal LVs too.
    pub all: bool,
}

fn tags(raw: &crate::config::Section) -> Vec<String> {
    raw.strs("tags")
        .unwrap_or_default()
        .into_iter()
        .map(str::to_owned)
        .collect()
}

/// The device path of PV `key` of `vg` among `members`.
fn pv_path(vg: &Vg, members: &[&Pv], key: &str) -> String {
    vg.pv(key)
        .and_then(|vp| members.iter().find(|p| p.label.uuid == undashed(&vp.id)))
        .map_or_else(|| "[unknown]".to_owned(), |p| p.path.display().to_string())
}

pub(crate) fn used_extents(vg: &Vg, key: &str) -> u64 {
    let free: u64 = vg
        .free_runs()
        .iter()
        .filter(|(k, _)| k == key)
        .flat_map(|(_, r)| r.iter().map(|(_, n)| n))
        .sum();
    vg.pv(key).map_or(0, |p| p.pe_count.saturating_sub(free))
}

/// The VG's fields.
pub fn vg_row(vg: &Vg, members: &[&Pv]) -> Row {
    let extents: u64 = vg.pvs.iter().map(|p| p.pe_count).sum();
    let free = vg.free_extents();
    let status = vg.raw.strs("status").unwrap_or_default();
    let policy = vg.raw.str("allocation_policy").unwrap_or("normal");
    let attr: String = [
        if status.contains(&"WRITE") { 'w' } else { 'r' },
        if status.contains(&"RESIZEABLE") {
            'z'
        } else {
            '-'
        },
        if status.contains(&"EXPORTED") {
            'x'
        } else {
            '-'
        },
        if members.len() < vg.pvs.len() {
            'p'
        } else {
            '-'
        },
        policy.chars().next().unwrap_or('n'),
        '-',
    ]
    .iter()
    .collect();
    let mdas: u64 = members
        .iter()
        .map(|p| p.label.metadata_areas.len() as u64)
        .sum();
    let mda_size = members
        .iter()
        .flat_map(|p| p.label.metadata_areas.iter().map(|m| m.size / 512))
        .min()
        .unwrap_or(0);
    let sysid = vg.raw.str("system_id").unwrap_or("").to_owned();
    vec![
        ("vg_fmt", Value::Str("lvm2".into())),
        ("vg_uuid", Value::Str(vg.id.clone())),
        ("vg_name", Value::Str(vg.name.clone())),
        ("vg_attr", Value::Str(attr)),
        (
            "vg_permissions",
            Value::Str(
                if status.contains(&"WRITE") {
                    "writeable"
                } else {
                    "read-only"
                }
                .into(),
            ),
        ),
        ("vg_allocation_policy", Value::Str(policy.to_owned())),
        ("vg_size", Value::Size(extents * vg.extent_size)),
        ("vg_free", Value::Size(free * vg.extent_size)),
        ("vg_sysid", Value::Str(sysid.clone())),
        ("vg_systemid", Value::Str(sysid)),
        ("vg_extent_size", Value::Size(vg.extent_size)),
        ("vg_extent_count", Value::Num(extents)),
        ("vg_free_count", Value::Num(free)),
        (
            "max_lv",
            Value::Num(vg.raw.int("max_lv").unwrap_or(0).max(0) as u64),
        ),
        (
            "max_pv",
            Value::Num(vg.raw.int("max_pv").unwrap_or(0).max(0) as u64),
        ),
        ("pv_count", Value::Num(vg.pvs.len() as u64)),
        (
            "vg_missing_pv_count",
            Value::Num(vg.pvs.len().saturating_sub(members.len()) as u64),
        ),
        ("lv_count", Value::Num(vg.user_lvs().len() as u64)),
        (
            "snap_count",
            Value::Num(vg.lvs.iter().filter(|l| l.snapshot_of().is_some()).count() as u64),
        ),
        ("vg_seqno", Value::Num(vg.seqno)),
        ("vg_tags", Value::List(tags(&vg.raw))),
        ("vg_mda_count", Value::Num(mdas)),
        ("vg_mda_used_count", Value::Num(mdas)),
        ("vg_mda_size", Value::Size(mda_size)),
    ]
}

/// The fields of PV `p` (in `vg`, or an orphan).
pub fn pv_row(p: &Pv, vg: Option<&Vg>) -> Row {
    let id = dashed(&p.label.uuid);
    let vp = vg.and_then(|v| v.pvs.iter().find(|vp| vp.id == id));
    let dev_size = p.device_sectors();
    let (size, used, pe_count, alloc, pe_start, attr, pv_tags) = match (vg, vp) {
        (Some(v), Some(vp)) => {
            let used = used_extents(v, &vp.key);
            let allocatable = vp
                .raw
                .strs("status")
                .is_none_or(|s| s.contains(&"ALLOCATABLE"));
            (
                vp.pe_count * v.extent_size,
                used * v.extent_size,
                vp.pe_count,
                used,
                vp.pe_start,
                if allocatable { "a--" } else { "---" },
                tags(&vp.raw),
            )
        }
        _ => (dev_size, 0, 0, 0, p.pe_start_sectors(), "---", Vec::new()),
    };
    let ba = p.label.bootloader_areas.first();
    let mda_size = p
        .label
        .metadata_areas
        .iter()
        .map(|m| m.size / 512)
        .min()
        .unwrap_or(0);
    let mut row = vec![
        ("pv_fmt", Value::Str("lvm2".into())),
        ("pv_uuid", Value::Str(id.clone())),
        ("dev_size", Value::Size(dev_size)),
        ("pv_name", Value::Str(p.path.display().to_string())),
        ("pv_mda_size", Value::Size(mda_size)),
        ("pv_ext_vsn", Value::Num(u64::from(p.label.ext_version))),
        ("pe_start", Value::Size(pe_start)),
        ("pv_size", Value::Size(size)),
        ("pv_free", Value::Size(size - used)),
        ("pv_used", Value::Size(used)),
        ("pv_attr", Value::Str(attr.into())),
        ("pv_pe_count", Value::Num(pe_count)),
        ("pv_pe_alloc_count", Value::Num(alloc)),
        ("pv_tags", Value::List(pv_tags)),
        (
            "pv_mda_count",
            Value::Num(p.label.metadata_areas.len() as u64),
        ),
        (
            "pv_mda_used_count",
            Value::Num(p.label.metadata_areas.len() as u64),
        ),
        ("pv_ba_start", Value::Size(ba.map_or(0, |b| b.offset / 512))),
        ("pv_ba_size", Value::Size(ba.map_or(0, |b| b.size / 512))),
    ];
    match vg {
        Some(v) => row.extend(vg_row(v, &[])),
        None => row.extend(empty_vg_row()),
    }
    row
}

/// The VG fields of an orphan PV: empty.
fn empty_vg_row() -> Row {
    report::fields::FIELDS
        .iter()
        .filter(|f| f.obj == report::fields::Obj::Vg)
        .map(|f| {
            (
                f.name,
                match f.kind {
                    report::fields::Kind::Str => Value::Str(String::new()),
                    report::fields::Kind::List => Value::List(Vec::new()),
                    report::fields::Kind::Size => Value::Size(0),
                    _ => Value::Num(0),
                },
            )
        })
        .collect()
}

fn shown_name(vg: &Vg, lv: &Lv) -> String {
    if lv.visible() || vg.user_lvs().iter().any(|u| u.name == lv.name) {
        lv.name.clone()
    } else {
        format!("[{}]", lv.name)
    }
}

fn bracket(vg: &Vg, name: &str) -> String {
    match vg.lv(name) {
        Some(l) => shown_name(vg, l),
        None => name.to_owned(),
    }
}

fn layout_and_role(vg: &Vg, lv: &Lv) -> (Vec<String>, Vec<String>) {
    let s = |v: &[&str]| v.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();
    let layout = if lv.thin_pool().is_some() {
        s(&["pool", "thin"])
    } else if lv.thin().is_some() {
        s(&["sparse", "thin"])
    } else if lv.mirror().is_some() {
        s(&["mirror"])
    } else if lv
        .segments
        .iter()
        .any(|g| matches!(&g.kind, SegmentKind::Striped { stripes, .. } if stripes.len() > 1))
    {
        s(&["striped"])
    } else {
        s(&["linear"])
    };
    let mut role = Vec::new();
    let public = vg.user_lvs().iter().any(|u| u.name == lv.name);
    role.push(if public { "public" } else { "private" });
    if !vg.snapshots_of(&lv.name).is_empty() {
        role.extend(["origin", "thickorigin"]);
    }
    if vg
        .lvs
        .iter()
        .filter_map(|l| l.snapshot_of())
        .any(|(_, c, _)| c == lv.name)
    {
        role.extend(["snapshot", "thicksnapshot"]);
    }
    let mirrors = || {
        vg.lvs
            .iter()
            .flat_map(|l| l.segments.iter().filter_map(|g| g.mirror()))
    };
    if mirrors().any(|m| m.images.iter().any(|(n, _)| *n == lv.name)) {
        role.extend(["mirror", "image"]);
    } else if mirrors().any(|m| m.log == Some(lv.name.as_str())) {
        role.extend(["mirror", "log"]);
    } else if let Some(p) = vg
        .lvs
        .iter()
        .filter_map(|l| l.thin_pool())
        .find(|p| p.data == lv.name || p.metadata == lv.name)
    {
        role.extend([
            "thin",
            "pool",
            if p.data == lv.name {
                "data"
            } else {
                "metadata"
            },
        ]);
    } else if lv.name.ends_with("_pmspare") {
        role.extend(["pool", "spare"]);
    }
    (layout, s(&role))
}

fn pct(p: Option<f64>) -> Value {
    Value::Pct(p)
}

/// The LV's fields (and its VG's).
pub fn lv_row(ctl: Option<&dyn DmBackend>, vg: &Vg, lv: &Lv, metrics: bool) -> Row {
    let rep = lv_report(ctl, vg, lv);
    let public = vg.user_lvs().iter().any(|u| u.name == lv.name);
    let snap = vg
        .lvs
        .iter()
        .filter_map(|l| l.snapshot_of())
        .find(|(_, c, _)| *c == lv.name);
    let origin = snap
        .map(|(o, _, _)| o.to_owned())
        .or_else(|| lv.thin().and_then(|t| t.origin.map(str::to_owned)))
        .unwrap_or_default();
    let origin_size = match snap {
        Some((o, _, _)) => vg.lv(o).map(|l| l.extents() * vg.extent_size),
        None if !vg.snapshots_of(&lv.name).is_empty() => Some(lv.extents() * vg.extent_size),
        None => None,
    };
    let (layout, role) = layout_and_role(vg, lv);
    let pool = lv.thin_pool();
    let log = lv.mirror().and_then(|m| m.log.map(|l| bracket(vg, l)));
    let (kmaj, kmin) = rep
        .device
        .as_ref()
        .map_or((-1, -1), |d| (i64::from(d.major), i64::from(d.minor)));
    let mut row = vec![
        ("lv_uuid", Value::Str(lv.id.clone())),
        ("lv_name", Value::Str(shown_name(vg, lv))),
        (
            "lv_full_name",
            Value::Str(format!("{}/{}", vg.name, lv.name)),
        ),
        (
            "lv_path",
            Value::Str(if public {
                format!("/dev/{}/{}", vg.name, lv.name)
            } else {
                String::new()
            }),
        ),
        (
            "lv_dm_path",
            Value::Str(format!("/dev/mapper/{}", dm_name(&vg.name, &lv.name))),
        ),
        ("lv_layout", Value::List(layout)),
        ("lv_role", Value::List(role)),
        (
            "lv_allocation_policy",
            Value::Str(
                lv.raw
                    .str("allocation_policy")
                    .unwrap_or("inherit")
                    .to_owned(),
            ),
        ),
        (
            "lv_active",
            Value::Str(if rep.device.is_some() { "active" } else { "" }.into()),
        ),
        ("lv_major", Value::SNum(lv.raw.int("major").unwrap_or(-1))),
        ("lv_minor", Value::SNum(lv.raw.int("minor").unwrap_or(-1))),
        ("lv_size", Value::Size(lv.extents() * vg.extent_size)),
        ("seg_count", Value::Num(lv.segments.len() as u64)),
        ("origin", Value::Str(origin)),
        (
            "origin_size",
            origin_size.map_or(Value::Str(String::new()), Value::Size),
        ),
        ("move_pv", Value::Str(String::new())),
        ("convert_lv", Value::Str(String::new())),
        ("mirror_log", Value::Str(log.unwrap_or_default())),
        (
            "data_lv",
            Value::Str(
                pool.as_ref()
                    .map(|p| bracket(vg, p.data))
                    .unwrap_or_default(),
            ),
        ),
        (
            "metadata_lv",
            Value::Str(
                pool.as_ref()
                    .map(|p| bracket(vg, p.metadata))
                    .unwrap_or_default(),
            ),
        ),
        (
            "pool_lv",
            Value::Str(lv.thin().map(|t| t.pool.to_owned()).unwrap_or_default()),
        ),
        ("lv_tags", Value::List(tags(&lv.raw))),
        (
            "lv_host",
            Value::Str(lv.raw.str("creation_host").unwrap_or("").to_owned()),
        ),
        ("lv_kernel_major", Value::SNum(kmaj)),
        ("lv_kernel_minor", Value::SNum(kmin)),
        ("data_percent", pct(rep.data_percent)),
        ("snap_percent", pct(snap.and(rep.data_percent))),
        ("metadata_percent", pct(rep.metadata_percent)),
        ("copy_percent", pct(rep.copy_percent)),
        ("sync_percent", pct(rep.copy_percent)),
        ("lv_health_status", Value::Str(rep.health.clone())),
        ("lv_attr", Value::Str(rep.attr.clone())),
    ];
    if metrics {
        let st = rep.device.as_ref().and_then(|d| io_stats(d.minor));
        for (f, idx) in [
            ("read_ios", 0),
            ("read_sectors", 2),
            ("write_ios", 4),
            ("write_sectors", 6),
        ] {
            let v = st.as_ref().and_then(|s| s.get(idx).copied());
            row.push((f, v.map_or(Value::Str(String::new()), Value::Num)));
        }
    }
    row
}

/// The counters of /sys/block/dm-MINOR/stat.
fn io_stats(minor: u32) -> Option<Vec<u64>> {
    let s = std::fs::read_to_string(format!("/sys/block/dm-{minor}/stat")).ok()?;
    Some(
        s.split_whitespace()
            .filter_map(|f| f.parse().ok())
            .collect(),
    )
}

/// The fields of segment `seg` of `lv`.
pub fn seg_row(vg: &Vg, members: &[&Pv], lv: &Lv, seg: &Segment) -> Row {
    let es = vg.extent_size;
    let area = |name: &str, pe: u64| -> (String, String) {
        if vg.pv(name).is_some() {
            let p = pv_path(vg, members, name);
            (format!("{p}({pe})"), format!("{p}:{pe}-"))
        } else {
            (format!("{name}({pe})"), format!("{name}:{pe}-"))
        }
    };
    let (segtype, areas, stripe_size, region, chunk): (String, Vec<(String, u64)>, u64, u64, u64) =
        match &seg.kind {
            SegmentKind::Striped {
                stripe_size,
                stripes,
            } => (
                if stripes.len() > 1 {
                    "striped"
                } else {
                    "linear"
                }
                .into(),
                stripes.clone(),
                stripe_size.unwrap_or(0),
                0,
                0,
            ),
            SegmentKind::Other(s) => {
                let ty = s.str("type").unwrap_or("").to_owned();
                // A thin pool's one area is its data LV, as LVM2 lists it.
                let areas = seg
                    .mirror()
                    .map(|m| {
                        m.images
                            .iter()
                            .map(|(n, pe)| ((*n).to_owned(), *pe))
                            .collect()
                    })
                    .or_else(|| seg.thin_pool().map(|p| vec![(p.data.to_owned(), 0)]))
                    .unwrap_or_default();
                let region = seg.mirror().map_or(0, |m| m.region_size);
                let chunk = seg
                    .thin_pool()
                    .map(|p| p.chunk_size)
                    .unwrap_or_else(|| s.int("chunk_size").unwrap_or(0).max(0) as u64);
                (ty, areas, 0, region, chunk)
            }
        };
    let per = if areas.is_empty() {
        seg.extent_count
    } else if segtype == "striped" || segtype == "linear" {
        seg.extent_count / areas.len() as u64
    } else {
        seg.extent_count
    };
    let devices: Vec<String> = areas.iter().map(|(n, pe)| area(n, *pe).0).collect();
    let ranges: Vec<String> = areas
        .iter()
        .map(|(n, pe)| format!("{}{}", area(n, *pe).1, pe + per.max(1) - 1))
        .collect();
    let mut row = vec![
        ("segtype", Value::Str(segtype)),
        ("stripes", Value::Num(areas.len().max(1) as u64)),
        ("stripe_size", Value::Size(stripe_size)),
        ("region_size", Value::Size(region)),
        ("chunk_size", Value::Size(chunk)),
        ("seg_start", Value::Size(seg.start_extent * es)),
        ("seg_start_pe", Value::Num(seg.start_extent)),
        ("seg_size", Value::Size(seg.extent_count * es)),
        ("seg_size_pe", Value::Num(seg.extent_count)),
        ("seg_pe_ranges", Value::Str(ranges.join(" "))),
        ("devices", Value::List(devices)),
    ];
    let _ = lv;
    row.shrink_to_fit();
    row
}

fn open_dm() -> Option<crate::dm::ioctl::Control> {
    crate::dm::ioctl::Control::open().ok()
}

/// Columns, sort keys and selection of a report.
type Prepared = (
    Vec<&'static Field>,
    Vec<(&'static Field, bool)>,
    Option<report::select::Selection>,
);

fn prepare(
    defaults: &[&str],
    sort_defaults: &[&str],
    prefix: &str,
    a: &ReportArgs,
) -> Result<Prepared> {
    let cols = report::columns(defaults, &a.options, prefix)?;
    let keys = report::sort_keys(sort_defaults, a.sort.as_deref(), prefix)?;
    let sel = a
        .select
        .as_deref()
        .map(|s| report::select::parse(s, prefix))
        .transpose()?;
    Ok((cols, keys, sel))
}

fn print(kind: &'static str, cols: &[&'static Field], rows: &[Row], fmt: &Format) -> Result<()> {
    let t = Table {
        kind,
        columns: cols,
        rows,
    };
    if fmt.json {
        print!("{}", report::json(&[t], fmt)?);
    } else {
        print!("{}", t.text(fmt));
    }
    Ok(())
}

/// Checks that every VG named (as `VG` or `VG/LV`) exists.
fn check_vgs(scan: &Scan, names: &[String]) -> Result<()> {
    for n in names {
        let vg = n.split('/').next().unwrap_or(n);
        if scan.vg(vg).is_none() {
            bail!("Volume group \"{vg}\" not found");
        }
    }
    Ok(())
}

/// The PV rows of `scan` (all, or the devices in `names`).
pub fn pv_rows(scan: &Scan, names: &[String]) -> Result<Vec<Row>> {
    for n in names {
        if !scan
            .pvs
            .iter()
            .any(|(p, _)| p.path.display().to_string() == *n)
        {
            bail!("Failed to find physical volume \"{n}\".");
        }
    }
    Ok(scan
        .pvs
        .iter()
        .filter(|(p, _)| names.is_empty() || names.contains(&p.path.display().to_string()))
        .map(|(p, v)| {
            // Report each PV against the newest metadata of its VG.
            let newest = v.as_ref().and_then(|v| scan.vg(&v.name)).map(|(v, _)| v);
            pv_row(p, newest.as_ref())
        })
        .collect())
}

/// `pvs`.
pub fn pvs(a: &ReportArgs) -> Result<()> {
    let (cols, keys, sel) = prepare(PVS_COLUMNS, &["pv_name"], "pv", a)?;
    let scan = Scan::run(&[])?;
    let mut rows = pv_rows(&scan, &a.names)?;
    report::filter(&mut rows, sel.as_ref());
    report::sort(&mut rows, &keys);
    print("pv", &cols, &rows, &a.format)
}

/// The VG rows of `scan` (all, or those in `names`).
pub fn vg_rows(scan: &Scan, names: &[String]) -> Result<Vec<Row>> {
    check_vgs(scan, names)?;
    Ok(scan
        .vg_names()
        .iter()
        .filter(|n| names.is_empty() || names.contains(n))
        .filter_map(|n| scan.vg(n))
        .map(|(v, m)| vg_row(&v, &m))
        .collect())
}

/// `vgs`.
pub fn vgs(a: &ReportArgs) -> Result<()> {
    let (cols, keys, sel) = prepare(VGS_COLUMNS, &["vg_name"], "vg", a)?;
    let scan = Scan::run(&[])?;
    let mut rows = vg_rows(&scan, &a.names)?;
    report::filter(&mut rows, sel.as_ref());
    report::sort(&mut rows, &keys);
    print("vg", &cols, &rows, &a.format)
}

/// The LV rows of `scan` (`all` adds internal LVs; `names` are VGs or VG/LVs), one per
/// segment when `segments`.
pub fn lv_rows(
    scan: &Scan,
    names: &[String],
    all: bool,
    segments: bool,
    metrics: bool,
) -> Result<Vec<Row>> {
    check_vgs(scan, names)?;
    let dm = open_dm();
    let ctl = dm.as_ref().map(|c| c as &dyn DmBackend);
    let mut rows = Vec::new();
    for n in scan.vg_names() {
        let Some((v, members)) = scan.vg(&n) else {
            continue;
        };
        let lvs: Vec<&Lv> = if all {
            v.lvs.iter().filter(|l| l.snapshot_of().is_none()).collect()
        } else {
            v.user_lvs()
        };
        let vrow = vg_row(&v, &members);
        for lv in lvs {
            let selected = names.is_empty()
                || names
                    .iter()
                    .any(|x| *x == v.name || *x == format!("{}/{}", v.name, lv.name));
            if !selected {
                continue;
            }
            let mut base = lv_row(ctl, &v, lv, metrics);
            base.extend(vrow.iter().cloned());
            if segments {
                for seg in &lv.segments {
                    let mut r = base.clone();
                    r.extend(seg_row(&v, &members, lv, seg));
                    rows.push(r);
                }
            } else {
                rows.push(base);
            }
        }
    }
    for n in names.iter().filter(|n| n.contains('/')) {
        if !rows.iter().any(|r| {
            r.iter()
                .any(|(k, v)| *k == "lv_full_name" && *v == Value::Str(n.clone()))
        }) {
            bail!("Failed to find logical volume \"{n}\"");
        }
    }
    Ok(rows)
}

/// `lvs` (`metrics` adds the I/O counters of active LVs).
pub fn lvs(a: &ReportArgs, metrics: bool) -> Result<()> {
    let mut defaults = LVS_COLUMNS.to_vec();
    if metrics {
        defaults.extend(["read_ios", "read_sectors", "write_ios", "write_sectors"]);
    }
    let (cols, keys, sel) = prepare(&defaults, &["vg_name", "lv_name"], "lv", a)?;
    let segments = cols.iter().any(|c| c.obj == report::fields::Obj::Seg)
        || keys.iter().any(|(c, _)| c.obj == report::fields::Obj::Seg);
    let scan = Scan::run(&[])?;
    let mut rows = lv_rows(&scan, &a.names, a.all, segments, metrics)?;
    report::filter(&mut rows, sel.as_ref());
    report::sort(&mut rows, &keys);
    print(if segments { "seg" } else { "lv" }, &cols, &rows, &a.format)
}
