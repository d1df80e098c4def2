// SPDX-License-Identifier: GPL-2.0 OR MIT

//! `vgrename` and `lvrename`: a metadata change (name, the names of an LV's internal
//! LVs and every segment that refers to them) committed with the next sequence number.
//!
//! orion-lvm's dm backend has no DM_DEV_RENAME, so an active VG or LV is refused rather
//! than left with dm devices under the old name; deactivate it first.

use super::{commit_members, valid_name, Scan};
use crate::config::{Node, Value};
use crate::dm::activate::dm_name;
use crate::dm::backend::DmBackend;
use crate::exit::usage;
use crate::vg::{SegmentKind, Vg};
use anyhow::{bail, Result};

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

fn active(ctl: Option<&dyn DmBackend>, vg: &str, lv: &str) -> bool {
    let Some(ctl) = ctl else { return false };
    let name = dm_name(vg, lv);
    ctl.list().is_ok_and(|l| {
        l.iter()
            .any(|d| *d == name || d.starts_with(&format!("{name}-")))
    })
}

fn open_dm() -> Option<crate::dm::ioctl::Control> {
    crate::dm::ioctl::Control::open().ok()
}

/// `lvrename VG OLD NEW`.
pub fn lvrename(vg_name: &str, old: &str, new: &str) -> Result<()> {
    let scan = Scan::run(&[])?;
    let (mut vg, members) = scan.need_vg(vg_name)?;
    let dm = open_dm();
    let ctl = dm.as_ref().map(|c| c as &dyn DmBackend);
    let map = rename_lv(&mut vg, old, new)?;
    if let Some((o, _)) = map.iter().find(|(o, _)| active(ctl, vg_name, o)) {
        bail!(
            "{vg_name}/{o} is active: orion-lvm cannot rename dm devices (no DM_DEV_RENAME); \
             deactivate it first"
        );
    }
    vg.seqno += 1;
    commit_members(
        &vg,
        &members,
        &format!("Write from orion-lvm lvrename {vg_name} {old} {new}."),
    )
}

/// `vgrename OLD NEW`.
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
    let dm = open_dm();
    let ctl = dm.as_ref().map(|c| c as &dyn DmBackend);
    if let Some(lv) = vg.lvs.iter().find(|l| active(ctl, old, &l.name)) {
        bail!(
            "{old}/{} is active: orion-lvm cannot rename dm devices (no DM_DEV_RENAME); \
             deactivate the volume group first",
            lv.name
        );
    }
    if members.len() < vg.pvs.len() {
        bail!("Cannot rename volume group {old} with missing PVs");
    }
    vg.name = new.to_owned();
    vg.seqno += 1;
    commit_members(
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
}
