// SPDX-License-Identifier: GPL-2.0 OR MIT

//! `vgrename` and `lvrename`: a metadata change (name, the names of an LV's internal
//! LVs and every segment that refers to them) committed with the next sequence number.
//!
//! Active LVs keep running: their dm devices (found by DM UUID, layers included) are
//! suspended top-down, the metadata is committed, and they are renamed with
//! DM_DEV_RENAME and resumed bottom-up, as LVM2's device tree does on resume.

use super::{commit_members, valid_name, Scan};
use crate::config::{Node, Value};
use crate::dm::activate::{dm_name, dm_uuid};
use crate::dm::backend::DmBackend;
use crate::dm::ioctl::DevId;
use crate::exit::usage;
use crate::vg::{SegmentKind, Vg};
use anyhow::{anyhow, bail, Context, Result};

/// Segment keys whose string values name LVs of the same VG.
const LV_REFERENCES: &[&str] = &[
    "origin",
    "cow_store",
    "merging_store",
    "metadata",
    "pool",
    "thin_pool",
    "mirror_log",
    "mirrors",
    "raids",
    "external_origin",
    "merge",
    "cache_pool",
];

/// Parts of names LVM2 keeps for its internal LVs.
const RESERVED: &[&str] = &[
    "_cdata", "_cmeta", "_corig", "_mimage", "_mlog", "_pmspare", "_rimage", "_rmeta", "_tdata",
    "_tmeta", "_vorigin", "_vdata",
];

/// Checks a new LV name as LVM2 does: a valid name, not reserved for internal LVs.
pub fn valid_lv_name(name: &str) -> Result<()> {
    valid_name(name)?;
    for prefix in ["snapshot", "pvmove"] {
        if name.starts_with(prefix) {
            return Err(usage(format!(
                "Names starting \"{prefix}\" are reserved. Please choose a different LV name."
            )));
        }
    }
    if let Some(r) = RESERVED.iter().find(|r| name.contains(*r)) {
        return Err(usage(format!(
            "Names including \"{r}\" are reserved. Please choose a different LV name."
        )));
    }
    Ok(())
}

fn rename_in(v: &mut Value, map: &[(String, String)]) {
    match v {
        Value::Str(s) => {
            if let Some((_, new)) = map.iter().find(|(old, _)| old == s) {
                *s = new.clone();
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| rename_in(x, map)),
        _ => {}
    }
}

fn references(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Str(s) => out.push(s.clone()),
        Value::Array(a) => a.iter().for_each(|x| references(x, out)),
        _ => {}
    }
}

/// The LVs `name` is built of, directly or through others.
fn sub_lvs(vg: &Vg, name: &str) -> Vec<String> {
    let mut todo = vec![name.to_owned()];
    let mut found: Vec<String> = Vec::new();
    while let Some(n) = todo.pop() {
        let Some(lv) = vg.lv(&n) else { continue };
        for seg in &lv.segments {
            let SegmentKind::Other(s) = &seg.kind else {
                continue;
            };
            let mut refs = Vec::new();
            for (k, node) in &s.entries {
                if let (true, Node::Value(v)) = (LV_REFERENCES.contains(&k.as_str()), node) {
                    references(v, &mut refs);
                }
            }
            for r in refs {
                let hidden = vg.lv(&r).is_some_and(|l| !l.visible());
                if hidden && r != name && !found.contains(&r) {
                    found.push(r.clone());
                    todo.push(r);
                }
            }
        }
    }
    found
}

/// Renames LV `old` of `vg` to `new`, with its internal LVs named after it
/// (`old_tdata` becomes `new_tdata`) and every reference to them. Returns the
/// (old, new) names changed. The sequence number is not bumped here.
pub fn rename_lv(vg: &mut Vg, old: &str, new: &str) -> Result<Vec<(String, String)>> {
    let Some(lv) = vg.lv(old) else {
        bail!(
            "Existing logical volume \"{old}\" not found in volume group \"{}\"",
            vg.name
        );
    };
    if !vg.user_lvs().iter().any(|u| u.name == lv.name) {
        bail!("Cannot rename internal LV \"{old}\".");
    }
    if old == new {
        bail!("Old and new logical volume names must differ");
    }
    valid_lv_name(new)?;
    let mut map = vec![(old.to_owned(), new.to_owned())];
    let prefix = format!("{old}_");
    for sub in sub_lvs(vg, old) {
        if let Some(rest) = sub.strip_prefix(&prefix) {
            map.push((sub.clone(), format!("{new}_{rest}")));
        }
    }
    for (_, n) in &map {
        if vg.lv(n).is_some() {
            bail!(
                "Logical Volume \"{n}\" already exists in volume group \"{}\"",
                vg.name
            );
        }
    }
    for lv in &mut vg.lvs {
        if let Some((_, n)) = map.iter().find(|(o, _)| *o == lv.name) {
            lv.name = n.clone();
        }
        for seg in &mut lv.segments {
            if let SegmentKind::Other(s) = &mut seg.kind {
                for (k, node) in &mut s.entries {
                    if let (true, Node::Value(v)) = (LV_REFERENCES.contains(&k.as_str()), node) {
                        rename_in(v, &map);
                    }
                }
            }
        }
    }
    Ok(map)
}

/// The VG, old and new LV names of `lvrename VG OLD NEW`, `lvrename VG/OLD VG/NEW` or
/// `lvrename VG/OLD NEW`.
pub fn lvrename_args(args: &[String]) -> Result<(String, String, String)> {
    let split = |s: &str| s.split_once('/').map(|(a, b)| (a.to_owned(), b.to_owned()));
    match args {
        [vg, old, new] if !vg.contains('/') => {
            let strip = |n: &str| -> Result<String> {
                match split(n) {
                    Some((v, l)) if v == *vg => Ok(l),
                    Some(_) => Err(usage(
                        "Logical volume names must have the same volume group",
                    )),
                    None => Ok(n.to_owned()),
                }
            };
            Ok((vg.clone(), strip(old)?, strip(new)?))
        }
        [old, new] => {
            let Some((vg, o)) = split(old) else {
                return Err(usage("Please provide a volume group name"));
            };
            let n = match split(new) {
                Some((v, n)) if v == vg => n,
                Some((other, _)) => {
                    return Err(usage(format!(
                        "Logical volume names must have the same volume group (\"{vg}\" or \"{other}\")"
                    )))
                }
                None => new.clone(),
            };
            Ok((vg, o, n))
        }
        _ => Err(usage("Old and new logical volume names required")),
    }
}

/// A live dm device: name, `major:minor`, UUID and the devices its table uses.
struct LiveDev {
    name: String,
    devt: String,
    uuid: String,
    uses: Vec<String>,
}

fn live_devices(ctl: &dyn DmBackend) -> Result<Vec<LiveDev>> {
    let mut out = Vec::new();
    for name in ctl.list()? {
        let id = DevId::Name(name.clone());
        let Ok(info) = ctl.info(&id) else { continue };
        let uses = ctl
            .table(&id)
            .unwrap_or_default()
            .iter()
            .flat_map(|t| {
                t.params
                    .split_whitespace()
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
            .filter(|w| {
                w.split_once(':').is_some_and(|(a, b)| {
                    a.bytes().all(|c| c.is_ascii_digit()) && b.bytes().all(|c| c.is_ascii_digit())
                })
            })
            .collect();
        out.push(LiveDev {
            name,
            devt: format!("{}:{}", info.major, info.minor),
            uuid: info.uuid,
            uses,
        });
    }
    Ok(out)
}

/// One dm device to rename, with the `/dev/VG/LV` link it carries, if any.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DevRename {
    /// Current dm name.
    pub old: String,
    /// New dm name.
    pub new: String,
    /// (old VG, old LV, new VG, new LV) of a visible LV's top device.
    pub link: Option<(String, String, String, String)>,
}

/// The live devices of the LVs of `vg` named in `lvs` (old LV name, new LV name), found
/// by DM UUID (`LVM-<VG UUID><LV UUID>` and a layer suffix such as `-real`, `-cow`,
/// `-tpool`, `-pool`, `-tmeta`), renamed from `VG-OLD[-layer]` to `NEWVG-NEW[-layer]`,
/// ordered top-down (a device before the devices its table uses).
pub fn plan_device_renames(
    ctl: &dyn DmBackend,
    vg: &Vg,
    new_vg: &str,
    lvs: &[(String, String)],
) -> Result<Vec<DevRename>> {
    let live = live_devices(ctl)?;
    let mut plan: Vec<(DevRename, &LiveDev)> = Vec::new();
    for (old, new) in lvs {
        let Some(lv) = vg.lv(old) else { continue };
        let uuid = dm_uuid(vg, lv);
        let old_name = dm_name(&vg.name, old);
        for d in live.iter().filter(|d| d.uuid.starts_with(&uuid)) {
            // The layer suffix of the name (`-real`, `-cow`, `-tpool`) stays.
            let layer = d.name.strip_prefix(&old_name).unwrap_or("");
            let new_name = format!("{}{layer}", dm_name(new_vg, new));
            if new_name == d.name {
                continue;
            }
            // Activation links the top device of visible LVs and snapshots, not pools.
            let linked = layer.is_empty()
                && lv.thin_pool().is_none()
                && (lv.visible() || super::is_cow(vg, old));
            let link =
                linked.then(|| (vg.name.clone(), old.clone(), new_vg.to_owned(), new.clone()));
            plan.push((
                DevRename {
                    old: d.name.clone(),
                    new: new_name,
                    link,
                },
                d,
            ));
        }
    }
    // Top-down: repeatedly take a device no remaining device uses.
    let mut ordered = Vec::new();
    while !plan.is_empty() {
        let i = (0..plan.len())
            .find(|&i| {
                let devt = &plan[i].1.devt;
                !plan.iter().any(|(_, o)| o.uses.contains(devt))
            })
            .ok_or_else(|| anyhow!("dm devices of {} use each other in a cycle", vg.name))?;
        ordered.push(plan.remove(i).0);
    }
    Ok(ordered)
}

/// Renames live devices as LVM2 does when it renames an active LV or VG: every device
/// suspended top-down, the metadata committed, then bottom-up each device renamed
/// (DM_DEV_RENAME), its node moved and resumed; `/dev/VG/LV` links follow. Tables name
/// devices by `major:minor`, so none is reloaded. A failed commit resumes everything
/// under the old names.
pub fn rename_devices(
    ctl: &dyn DmBackend,
    renames: &[DevRename],
    commit: &mut dyn FnMut() -> Result<()>,
) -> Result<()> {
    let mut suspended = Vec::new();
    let mut result = Ok(());
    for r in renames {
        match ctl.suspend(&DevId::Name(r.old.clone()), false) {
            Ok(()) => suspended.push(r),
            Err(e) => {
                result = Err(e.into());
                break;
            }
        }
    }
    if result.is_ok() {
        result = commit();
    }
    if let Err(e) = result {
        for r in suspended.iter().rev() {
            let _ = ctl.resume(&DevId::Name(r.old.clone()));
        }
        return Err(e);
    }
    for r in renames.iter().rev() {
        ctl.rename(&DevId::Name(r.old.clone()), &r.new)
            .with_context(|| format!("renaming {} to {}", r.old, r.new))?;
        let info = ctl.resume(&DevId::Name(r.new.clone()))?;
        ctl.remove_node(&r.old);
        ctl.make_node(&r.new, info.major, info.minor)
            .with_context(|| format!("creating /dev/mapper/{}", r.new))?;
        if let Some((ov, ol, nv, nl)) = &r.link {
            ctl.unlink_lv(ov, ol);
            ctl.link_lv(nv, nl)
                .with_context(|| format!("linking /dev/{nv}/{nl}"))?;
        }
    }
    Ok(())
}

fn open_dm() -> Option<crate::dm::ioctl::Control> {
    crate::dm::ioctl::Control::open().ok()
}

/// Commits `vg`, renaming the live devices in `renames` around the commit when there
/// is a device-mapper to ask.
fn commit_renamed(
    dm: Option<&dyn DmBackend>,
    renames: &[DevRename],
    vg: &Vg,
    members: &[&crate::pv::Pv],
    description: &str,
) -> Result<()> {
    let mut commit = || commit_members(vg, members, description);
    match dm {
        Some(ctl) if !renames.is_empty() => rename_devices(ctl, renames, &mut commit),
        _ => commit(),
    }
}

/// `lvrename VG OLD NEW`; an active LV's dm devices are renamed too.
pub fn lvrename(vg_name: &str, old: &str, new: &str) -> Result<()> {
    let scan = Scan::run(&[])?;
    let (mut vg, members) = scan.need_vg(vg_name)?;
    let dm = open_dm();
    let ctl = dm.as_ref().map(|c| c as &dyn DmBackend);
    let before = vg.clone();
    let map = rename_lv(&mut vg, old, new)?;
    let renames = match ctl {
        Some(c) => plan_device_renames(c, &before, vg_name, &map)?,
        None => Vec::new(),
    };
    vg.seqno += 1;
    commit_renamed(
        ctl,
        &renames,
        &vg,
        &members,
        &format!("Write from orion-lvm lvrename {vg_name} {old} {new}."),
    )
}

/// `vgrename OLD NEW`; the dm devices of active LVs are renamed too.
pub fn vgrename(old: &str, new: &str) -> Result<()> {
    valid_name(new)?;
    let scan = Scan::run(&[])?;
    let Some((mut vg, members)) = scan.vg(old) else {
        bail!("Volume group \"{old}\" not found");
    };
    if old == new {
        bail!("Old and new volume group names need to differ");
    }
    if scan.vg(new).is_some() {
        bail!("New VG name \"{new}\" already exists");
    }
    if members.len() < vg.pvs.len() {
        bail!("Cannot rename volume group {old} with missing PVs");
    }
    let dm = open_dm();
    let ctl = dm.as_ref().map(|c| c as &dyn DmBackend);
    let all: Vec<(String, String)> = vg
        .lvs
        .iter()
        .map(|l| (l.name.clone(), l.name.clone()))
        .collect();
    let renames = match ctl {
        Some(c) => plan_device_renames(c, &vg, new, &all)?,
        None => Vec::new(),
    };
    vg.name = new.to_owned();
    vg.seqno += 1;
    commit_renamed(
        ctl,
        &renames,
        &vg,
        &members,
        &format!("Write from orion-lvm vgrename {old} {new}."),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const POOL_VG: &str = r#"vg {
id = "AAAAAA-AAAA-AAAA-AAAA-AAAA-AAAA-AAAAAA"
seqno = 3
extent_size = 8192
physical_volumes {
pv0 {
id = "BBBBBB-BBBB-BBBB-BBBB-BBBB-BBBB-BBBBBB"
dev_size = 196608
pe_start = 2048
pe_count = 23
}
}
logical_volumes {
pool {
id = "1"
status = ["READ", "WRITE", "VISIBLE"]
segment1 {
start_extent = 0
extent_count = 2
type = "thin-pool"
metadata = "pool_tmeta"
pool = "pool_tdata"
transaction_id = 1
chunk_size = 128
}
}
thin {
id = "2"
status = ["READ", "WRITE", "VISIBLE"]
segment1 {
start_extent = 0
extent_count = 5
type = "thin"
thin_pool = "pool"
transaction_id = 0
device_id = 1
}
}
lvol0_pmspare {
id = "3"
status = ["READ", "WRITE"]
segment1 {
start_extent = 0
extent_count = 1
type = "striped"
stripe_count = 1
stripes = ["pv0", 0]
}
}
pool_tmeta {
id = "4"
status = ["READ", "WRITE"]
segment1 {
start_extent = 0
extent_count = 1
type = "striped"
stripe_count = 1
stripes = ["pv0", 1]
}
}
pool_tdata {
id = "5"
status = ["READ", "WRITE"]
segment1 {
start_extent = 0
extent_count = 2
type = "striped"
stripe_count = 1
stripes = ["pv0", 2]
}
}
}
}
"#;

    #[test]
    fn renaming_a_pool_renames_its_parts_and_references() {
        let mut vg = Vg::from_text(POOL_VG).unwrap();
        let map = rename_lv(&mut vg, "pool", "data").unwrap();
        assert_eq!(map.len(), 3);
        let names: Vec<&str> = vg.lvs.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(
            names,
            ["data", "thin", "lvol0_pmspare", "data_tmeta", "data_tdata"]
        );
        let p = vg.lv("data").unwrap().thin_pool().unwrap();
        assert_eq!((p.metadata, p.data), ("data_tmeta", "data_tdata"));
        assert_eq!(vg.lv("thin").unwrap().thin().unwrap().pool, "data");
        // Written and read back, the VG still holds together.
        let back = Vg::from_text(&vg.to_text("t", 0, "h")).unwrap();
        assert_eq!(back.lv("thin").unwrap().thin().unwrap().pool, "data");
    }

    #[test]
    fn command_line_forms() {
        let a = |v: &[&str]| lvrename_args(&v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>());
        let want = ("vg".to_owned(), "a".to_owned(), "b".to_owned());
        assert_eq!(a(&["vg", "a", "b"]).unwrap(), want);
        assert_eq!(a(&["vg/a", "vg/b"]).unwrap(), want);
        assert_eq!(a(&["vg/a", "b"]).unwrap(), want);
        assert_eq!(a(&["vg", "vg/a", "b"]).unwrap(), want);
        for bad in [
            &["vg/a", "other/b"][..],
            &["a", "b"],
            &["vg"],
            &["vg", "x/a", "b"],
        ] {
            let e = a(bad).unwrap_err();
            assert_eq!(
                crate::exit::code(&e),
                crate::exit::INVALID_CMD_LINE,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn refusals() {
        let mut vg = Vg::from_text(POOL_VG).unwrap();
        assert!(rename_lv(&mut vg, "pool_tdata", "x").is_err());
        assert!(rename_lv(&mut vg, "nothing", "x").is_err());
        assert!(rename_lv(&mut vg, "thin", "pool").is_err());
        assert!(rename_lv(&mut vg, "thin", "thin").is_err());
        for bad in ["snapshot1", "a_tmeta", "-x", "a/b"] {
            let e = rename_lv(&mut vg, "thin", bad).unwrap_err();
            assert_eq!(
                crate::exit::code(&e),
                crate::exit::INVALID_CMD_LINE,
                "{bad}"
            );
        }
        // A name clash with a part of the renamed LV.
        let mut vg = Vg::from_text(POOL_VG).unwrap();
        vg.lvs[1].name = "x_tdata".into();
        assert!(rename_lv(&mut vg, "pool", "x").is_err());
        assert_eq!(vg, {
            let mut v = Vg::from_text(POOL_VG).unwrap();
            v.lvs[1].name = "x_tdata".into();
            v
        });
    }

    /// A VG of test_vg with pool `pool` and thin volume `thin` active in `dm`, and a
    /// linear origin `o` with snapshot `s` active too.
    fn live_vg(dm: &crate::dm::recording::RecordingDm) -> Vg {
        use crate::dm::recording::{add_lv, test_vg};
        let (mut vg, mut devs) = test_vg("vg", &[40]);
        let req = crate::commands::PoolRequest {
            name: "pool",
            extents: 2,
            chunk_size: None,
            metadata_size: None,
            zero: true,
            discards: "passdown",
        };
        crate::commands::thin::pool_metadata(&mut vg, &req).unwrap();
        let mut seg = crate::config::Section::default();
        seg.push("start_extent", Value::Int(0))
            .push("extent_count", Value::Int(5))
            .push("type", Value::Str("thin".into()))
            .push("thin_pool", Value::Str("pool".into()))
            .push("transaction_id", Value::Int(0))
            .push("device_id", Value::Int(1));
        add_lv(
            &mut vg,
            "thin",
            vec![crate::vg::Segment {
                start_extent: 0,
                extent_count: 5,
                kind: SegmentKind::Other(seg),
            }],
        );
        let req = |name| crate::commands::LvRequest {
            name,
            extents: 2,
            stripes: 1,
            stripe_size: 128,
        };
        let segs = crate::commands::allocate(&vg, &req("o")).unwrap();
        add_lv(&mut vg, "o", segs);
        let segs = crate::commands::allocate(&vg, &req("s")).unwrap();
        add_lv(&mut vg, "s", segs);
        let n = vg.lvs.len() - 1;
        vg.lvs[n].status.retain(|s| s != "VISIBLE");
        let mut rec = crate::config::Section::default();
        rec.push("start_extent", Value::Int(0))
            .push("extent_count", Value::Int(2))
            .push("type", Value::Str("snapshot".into()))
            .push("chunk_size", Value::Int(8))
            .push("origin", Value::Str("o".into()))
            .push("cow_store", Value::Str("s".into()));
        add_lv(
            &mut vg,
            "snapshot0",
            vec![crate::vg::Segment {
                start_extent: 0,
                extent_count: 2,
                kind: SegmentKind::Other(rec),
            }],
        );
        let n = vg.lvs.len() - 1;
        vg.lvs[n].status.retain(|s| s != "VISIBLE");
        for name in ["thin", "o"] {
            let lv = vg.lv(name).unwrap().clone();
            crate::dm::activate::activate_lv(dm, &vg, &lv, &mut devs, "", &[]).unwrap();
        }
        dm.clear_log();
        vg
    }

    #[test]
    fn active_pool_rename_goes_top_down_then_bottom_up() {
        let dm = crate::dm::recording::RecordingDm::new();
        let mut vg = live_vg(&dm);
        let before = vg.clone();
        let map = rename_lv(&mut vg, "pool", "p2").unwrap();
        let plan = plan_device_renames(&dm, &before, "vg", &map).unwrap();
        let olds: Vec<&str> = plan.iter().map(|r| r.old.as_str()).collect();
        // The public view over -tpool over the metadata and data devices.
        assert_eq!(olds[..2], ["vg-pool", "vg-pool-tpool"]);
        let mut rest = olds[2..].to_vec();
        rest.sort_unstable();
        assert_eq!(rest, ["vg-pool_tdata", "vg-pool_tmeta"]);
        assert!(
            plan.iter().all(|r| r.link.is_none()),
            "pools have no /dev link"
        );
        let mut committed_at = None;
        rename_devices(&dm, &plan, &mut || {
            committed_at = Some(dm.log().len());
            Ok(())
        })
        .unwrap();
        let log = dm.log();
        let at = committed_at.unwrap();
        assert!(log[..at].iter().all(|l| l.starts_with("suspend ")));
        assert_eq!(
            dm.calls("suspend"),
            olds.iter().map(|o| (*o).to_owned()).collect::<Vec<_>>()
        );
        let renamed: Vec<String> = dm.calls("rename");
        let expect: Vec<String> = plan
            .iter()
            .rev()
            .map(|r| format!("{} {}", r.old, r.new))
            .collect();
        assert_eq!(renamed, expect);
        assert!(log[at..].iter().all(|l| !l.starts_with("suspend ")));
        let devices = dm.devices();
        for d in [
            "vg-p2",
            "vg-p2-tpool",
            "vg-p2_tmeta",
            "vg-p2_tdata",
            "vg-thin",
        ] {
            assert!(devices.contains(&d.to_owned()), "{d} in {devices:?}");
        }
        assert!(!devices.iter().any(|d| d.starts_with("vg-pool")));
    }

    #[test]
    fn active_origin_and_vg_renames() {
        let dm = crate::dm::recording::RecordingDm::new();
        let mut vg = live_vg(&dm);
        let before = vg.clone();
        let map = rename_lv(&mut vg, "o", "o2").unwrap();
        let plan = plan_device_renames(&dm, &before, "vg", &map).unwrap();
        assert_eq!(
            plan,
            [
                DevRename {
                    old: "vg-o".into(),
                    new: "vg-o2".into(),
                    link: Some(("vg".into(), "o".into(), "vg".into(), "o2".into())),
                },
                DevRename {
                    old: "vg-o-real".into(),
                    new: "vg-o2-real".into(),
                    link: None,
                },
            ]
        );
        rename_devices(&dm, &plan, &mut || Ok(())).unwrap();
        assert_eq!(dm.calls("unlink"), ["vg/o"]);
        assert_eq!(dm.calls("link"), ["vg/o2"]);
        // A failed commit leaves every device as it was, resumed.
        let dm = crate::dm::recording::RecordingDm::new();
        let vg = live_vg(&dm);
        let all: Vec<(String, String)> = vg
            .lvs
            .iter()
            .map(|l| (l.name.clone(), l.name.clone()))
            .collect();
        let plan = plan_device_renames(&dm, &vg, "other", &all).unwrap();
        let names_before = dm.devices();
        assert_eq!(plan.len(), names_before.len(), "every device of the VG");
        assert!(rename_devices(&dm, &plan, &mut || bail!("disk gone")).is_err());
        assert_eq!(dm.devices(), names_before);
        assert_eq!(dm.calls("resume").len(), plan.len());
        assert!(dm.calls("rename").is_empty());
        // vgrename: every device, the snapshot's link with it.
        rename_devices(&dm, &plan, &mut || Ok(())).unwrap();
        assert!(dm.devices().iter().all(|d| d.starts_with("other-")));
        let links = dm.calls("link");
        for l in ["other/o", "other/s", "other/thin"] {
            assert!(links.contains(&l.to_owned()), "{l} in {links:?}");
        }
    }
}
