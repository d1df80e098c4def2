// SPDX-License-Identifier: GPL-2.0 OR MIT

//! `fullreport`: for each VG, five reports in one (the VG, its PVs, its LVs, its PV
//! segments and its LV segments), each with its own columns and sort order set with
//! `--configreport TYPE -o FIELDS -O KEYS`, as LVM2's `lvm fullreport` prints them, in
//! columns or in LVM2's JSON.
//!
//! LVM2's default columns of the vg, pv, lv and seg sections name some 200 fields, many
//! of features orion-lvm does not have (caches, VDO, RAID, locking); ours default to the
//! columns of `vgs`, `pvs`, `lvs` and `lvs --segments`. The pvseg defaults are LVM2's.
//! Without VG names, the orphan PVs follow the VGs in a last object holding only a pv
//! and a pvseg section, as in LVM2.

use super::listing::{lv_row, pv_row, seg_row, vg_row, LVS_COLUMNS, PVS_COLUMNS, VGS_COLUMNS};
use super::Scan;
use crate::dm::backend::DmBackend;
use crate::exit::usage;
use crate::label::dashed;
use crate::pv::Pv;
use crate::report::{self, Format, Row, Table, Units, Value};
use crate::vg::{SegmentKind, Vg};
use anyhow::{bail, Result};

/// The sections of a full report, in LVM2's order: name, default columns, default sort.
const SECTIONS: [(&str, &[&str], &[&str]); 5] = [
    ("vg", VGS_COLUMNS, &["vg_name"]),
    ("pv", PVS_COLUMNS, &["pv_name"]),
    ("lv", LVS_COLUMNS, &["lv_name"]),
    (
        "pvseg",
        &["pvseg_start", "pvseg_size", "pv_uuid", "lv_uuid"],
        &["pv_uuid", "pvseg_start"],
    ),
    (
        "seg",
        &[
            "lv_name", "vg_name", "lv_attr", "stripes", "segtype", "seg_size",
        ],
        &["lv_uuid", "seg_start"],
    ),
];

/// The options of `fullreport`.
#[derive(Clone, Debug, Default)]
pub struct FullreportArgs {
    /// Per section (in [`SECTIONS`] order): `-o` arguments and `-O`.
    pub config: [(Vec<String>, Option<String>); 5],
    /// How to print.
    pub format: Format,
    /// VGs (default: all).
    pub names: Vec<String>,
    /// `--devices`, when given after the command name.
    pub devices: Vec<String>,
}

/// Parses the arguments after `fullreport`: `--configreport TYPE` chooses the section
/// later `-o`/`-O` apply to (before any, they apply to none, as in LVM2).
pub fn parse_args(args: &[String]) -> Result<FullreportArgs> {
    let mut a = FullreportArgs::default();
    let mut section: Option<usize> = None;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_owned())),
            _ => (arg.as_str(), None),
        };
        let mut value = |name: &str| -> Result<String> {
            inline
                .clone()
                .or_else(|| it.next().cloned())
                .ok_or_else(|| usage(format!("{name} needs a value")))
        };
        match flag {
            "--configreport" => {
                let t = value(flag)?;
                let i = SECTIONS
                    .iter()
                    .position(|(n, _, _)| *n == t)
                    .ok_or_else(|| usage(format!("Invalid argument for --configreport: {t}")))?;
                section = Some(i);
            }
            "-o" | "--options" => {
                let v = value(flag)?;
                if let Some(i) = section {
                    a.config[i].0.push(v);
                }
            }
            "-O" | "--sort" => {
                let v = value(flag)?;
                if let Some(i) = section {
                    a.config[i].1 = Some(v);
                }
            }
            "--reportformat" => a.format.json = report::parse_report_format(&value(flag)?)?,
            "--units" => a.format.units = Units::parse(&value(flag)?)?,
            "--separator" => a.format.separator = Some(value(flag)?),
            "--devices" => a.devices.extend(value(flag)?.split(',').map(str::to_owned)),
            "--nosuffix" => a.format.nosuffix = true,
            "--noheadings" => a.format.noheadings = true,
            f if f.starts_with('-') => {
                return Err(usage(format!("fullreport: unknown option {f}")))
            }
            _ => a.names.push(arg.clone()),
        }
    }
    Ok(a)
}

/// The PV segments of `vg`: per PV, the extent runs of each LV area and the free runs
/// between them, with the PV's row and the owning LV's UUID.
fn pvseg_rows(vg: &Vg, members: &[&Pv]) -> Vec<Row> {
    let mut rows = Vec::new();
    for vp in &vg.pvs {
        let Some(p) = members.iter().find(|p| dashed(&p.label.uuid) == vp.id) else {
            continue;
        };
        let mut areas: Vec<(u64, u64, String)> = Vec::new();
        for lv in &vg.lvs {
            for seg in &lv.segments {
                let list: Vec<(String, u64)> = match &seg.kind {
                    SegmentKind::Striped { stripes, .. } => stripes.clone(),
                    SegmentKind::Other(_) => seg
                        .mirror()
                        .map(|m| {
                            m.images
                                .iter()
                                .map(|(n, pe)| ((*n).to_owned(), *pe))
                                .collect()
                        })
                        .unwrap_or_default(),
                };
                let per = match &seg.kind {
                    SegmentKind::Striped { stripes, .. } => seg.extent_count / stripes.len() as u64,
                    SegmentKind::Other(_) => seg.extent_count,
                };
                for (pv, pe) in list {
                    if pv == vp.key {
                        areas.push((pe, per, lv.id.clone()));
                    }
                }
            }
        }
        areas.sort();
        let base = pv_row(p, Some(vg));
        let mut at = 0;
        let mut push = |start: u64, size: u64, lv: String| {
            let mut r = base.clone();
            r.push(("pvseg_start", Value::Num(start)));
            r.push(("pvseg_size", Value::Num(size)));
            r.push(("lv_uuid", Value::Str(lv)));
            rows.push(r);
        };
        for (pe, n, lv) in areas {
            if pe > at {
                push(at, pe - at, String::new());
            }
            push(pe, n, lv);
            at = at.max(pe + n);
        }
        if at < vp.pe_count {
            push(at, vp.pe_count - at, String::new());
        }
    }
    rows
}

/// The five sections of `vg`'s report, unsorted and unfiltered.
fn sections(ctl: Option<&dyn DmBackend>, vg: &Vg, members: &[&Pv]) -> [Vec<Row>; 5] {
    let vrow = vg_row(vg, members);
    let pvs = vg
        .pvs
        .iter()
        .filter_map(|vp| members.iter().find(|p| dashed(&p.label.uuid) == vp.id))
        .map(|p| pv_row(p, Some(vg)))
        .collect();
    let mut lvs = Vec::new();
    let mut segs = Vec::new();
    for lv in vg.user_lvs() {
        let mut row = lv_row(ctl, vg, lv, false);
        row.extend(vrow.iter().cloned());
        for seg in &lv.segments {
            let mut r = row.clone();
            r.extend(seg_row(vg, members, lv, seg));
            segs.push(r);
        }
        lvs.push(row);
    }
    [vec![vrow], pvs, lvs, pvseg_rows(vg, members), segs]
}

/// One VG's report in LVM2's JSON layout (the object inside `"report": [...]`).
fn json_object(tables: &[Table<'_>], fmt: &Format) -> Result<String> {
    let ind = |n: usize| " ".repeat(2 + 4 * n);
    let mut o = format!("{}{{\n", ind(2));
    for (i, t) in tables.iter().enumerate() {
        if i > 0 {
            o += &format!("{},\n", ind(3));
        }
        o += &format!("{}{}: [\n", ind(3), serde_json::to_string(t.kind)?);
        let mut lines = Vec::new();
        for r in t.rows {
            let mut cells = Vec::new();
            for c in t.columns {
                let v = r
                    .iter()
                    .find(|(k, _)| *k == c.name)
                    .map(|(_, v)| v.show(fmt.units, fmt.nosuffix))
                    .unwrap_or_default();
                cells.push(format!(
                    "{}:{}",
                    serde_json::to_string(c.name)?,
                    serde_json::to_string(&v)?
                ));
            }
            lines.push(format!("{}{{{}}}", ind(4), cells.join(", ")));
        }
        if !lines.is_empty() {
            o += &lines.join(",\n");
            o += "\n";
        }
        o += &format!("{}]\n", ind(3));
    }
    o += &format!("{}}}", ind(2));
    Ok(o)
}

/// `fullreport`.
pub fn fullreport(a: &FullreportArgs) -> Result<String> {
    if !a.devices.is_empty() {
        crate::pv::restrict_scan(a.devices.iter().map(std::path::PathBuf::from).collect());
    }
    let mut prepared = Vec::new();
    for (i, (name, cols, sort)) in SECTIONS.iter().enumerate() {
        let c = report::columns(cols, &a.config[i].0, name)?;
        let k = report::sort_keys(sort, a.config[i].1.as_deref(), name)?;
        prepared.push((c, k));
    }
    let scan = Scan::run(&[])?;
    for n in &a.names {
        if scan.vg(n).is_none() {
            bail!("Volume group \"{n}\" not found");
        }
    }
    let dm = crate::dm::ioctl::Control::open().ok();
    let ctl = dm.as_ref().map(|c| c as &dyn DmBackend);
    let mut objects = Vec::new();
    let mut text = String::new();
    for n in scan.vg_names_as_found() {
        if !a.names.is_empty() && !a.names.contains(&n) {
            continue;
        }
        let Some((vg, members)) = scan.vg(&n) else {
            continue;
        };
        let mut rows = sections(ctl, &vg, &members);
        for (r, (_, keys)) in rows.iter_mut().zip(&prepared) {
            report::sort(r, keys);
        }
        let tables: Vec<Table<'_>> = rows
            .iter()
            .zip(&prepared)
            .zip(SECTIONS.iter())
            .map(|((r, (cols, _)), (kind, _, _))| Table {
                kind,
                columns: cols,
                rows: r,
            })
            .collect();
        if a.format.json {
            objects.push(json_object(&tables, &a.format)?);
        } else {
            for t in &tables {
                text += &t.text(&a.format);
            }
        }
    }
    // Without VG names, LVM2 ends with the orphan PVs: a pv and a pvseg section only.
    let orphans: Vec<&Pv> = scan
        .pvs
        .iter()
        .filter(|(_, v)| v.is_none())
        .map(|(p, _)| p)
        .collect();
    if a.names.is_empty() && !orphans.is_empty() {
        let mut pvs: Vec<Row> = orphans.iter().map(|p| pv_row(p, None)).collect();
        let mut segs: Vec<Row> = pvs
            .iter()
            .map(|r| {
                let mut r = r.clone();
                r.push(("pvseg_start", Value::Num(0)));
                r.push(("pvseg_size", Value::Num(0)));
                r.push(("lv_uuid", Value::Str(String::new())));
                r
            })
            .collect();
        report::sort(&mut pvs, &prepared[1].1);
        report::sort(&mut segs, &prepared[3].1);
        let tables = [
            Table {
                kind: "pv",
                columns: &prepared[1].0,
                rows: &pvs,
            },
            Table {
                kind: "pvseg",
                columns: &prepared[3].0,
                rows: &segs,
            },
        ];
        if a.format.json {
            objects.push(json_object(&tables, &a.format)?);
        } else {
            for t in &tables {
                text += &t.text(&a.format);
            }
        }
    }
    if !a.format.json {
        return Ok(text);
    }
    let mut o = String::from("  {\n      \"report\": [\n");
    o += &objects.join("\n          ,\n");
    if !objects.is_empty() {
        o += "\n";
    }
    o += "      ]\n  }\n";
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn options_apply_to_the_section_chosen_before_them() {
        let a = parse_args(&args(&[
            "-o",
            "ignored",
            "--configreport",
            "lv",
            "-o",
            "lv_name",
            "-o",
            "+lv_size",
            "--configreport=pvseg",
            "-O",
            "-pvseg_size",
            "--reportformat",
            "json",
            "vg1",
        ]))
        .unwrap();
        assert_eq!(a.config[2].0, ["lv_name", "+lv_size"]);
        assert_eq!(a.config[3].1.as_deref(), Some("-pvseg_size"));
        assert!(a.config[0].0.is_empty() && a.format.json);
        assert_eq!(a.names, ["vg1"]);
        assert!(parse_args(&args(&["--configreport", "bogus"])).is_err());
        assert!(parse_args(&args(&["--bogus"])).is_err());
        assert!(parse_args(&args(&["-o"])).is_err());
    }

    #[test]
    fn pv_segments_cover_each_pv() {
        let text = "vg {\nid = \"A\"\nseqno = 1\nextent_size = 8192\nphysical_volumes {\n\
                    pv0 {\nid = \"B\"\ndev_size = 196608\npe_start = 2048\npe_count = 23\n}\n}\n\
                    logical_volumes {\nlv {\nid = \"L\"\nstatus = [\"VISIBLE\"]\nsegment1 {\n\
                    start_extent = 0\nextent_count = 4\ntype = \"striped\"\nstripe_count = 1\n\
                    stripes = [\"pv0\", 3]\n}\n}\n}\n}\n";
        let vg = Vg::from_text(text).unwrap();
        // Without the PV's device there are no rows; the runs are checked through the
        // JSON of a table built from hand-made rows instead.
        assert!(pvseg_rows(&vg, &[]).is_empty());
        let cols = report::columns(SECTIONS[3].1, &[], "pvseg").unwrap();
        let rows: Vec<Row> = vec![vec![
            ("pvseg_start", Value::Num(0)),
            ("pvseg_size", Value::Num(3)),
            ("pv_uuid", Value::Str("B".into())),
            ("lv_uuid", Value::Str(String::new())),
        ]];
        let empty: Vec<Row> = Vec::new();
        let lv_cols = report::columns(&["lv_name"], &[], "lv").unwrap();
        let t = [
            Table {
                kind: "pvseg",
                columns: &cols,
                rows: &rows,
            },
            Table {
                kind: "lv",
                columns: &lv_cols,
                rows: &empty,
            },
        ];
        assert_eq!(
            json_object(&t, &Format::default()).unwrap(),
            "          {\n              \"pvseg\": [\n                  \
             {\"pvseg_start\":\"0\", \"pvseg_size\":\"3\", \"pv_uuid\":\"B\", \"lv_uuid\":\"\"}\n              \
             ]\n              ,\n              \"lv\": [\n              ]\n          }"
        );
    }
}
