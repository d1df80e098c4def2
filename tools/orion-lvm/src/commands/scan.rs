// SPDX-License-Identifier: GPL-2.0 OR MIT

//! `pvscan`, `vgscan` and `lvscan`: one line per PV, VG or LV, as LVM2 prints them.

use super::display::{display_size, open_dm, pv_views, PvView};
use super::Scan;
use crate::dm::activate::dm_name;
use crate::dm::backend::DmBackend;
use crate::dm::ioctl::DevId;
use crate::vg::{Lv, Vg};
use anyhow::Result;

/// The name LVM2 gives the VG of orphan PVs, which counts for the column width.
const ORPHANS: &str = "#orphans_lvm2";

/// `pvscan`'s lines for `views` (`short`: device names only), with its total line.
pub fn pvscan_lines(views: &[PvView], short: bool) -> String {
    if views.is_empty() {
        return "  No matching physical volumes found\n".into();
    }
    let pw = views.iter().map(|v| v.name.len()).max().unwrap_or(0) + 2;
    let vw = views
        .iter()
        .map(|v| v.vg_name.len())
        .chain([ORPHANS.len()])
        .max()
        .unwrap_or(0)
        + 2;
    let mut out = String::new();
    let (mut total, mut in_vg, mut orphans) = ((0, 0), (0, 0), (0, 0));
    for v in views {
        let usable = if v.vg_name.is_empty() {
            v.size
        } else {
            v.pe_count * v.pe_size
        };
        total = (total.0 + 1, total.1 + usable);
        if short {
            out += &format!("  {}\n", v.name);
        } else if v.vg_name.is_empty() {
            // The orphan's line keeps the columns of the others ("VG " included).
            out += &format!(
                "  PV {:pw$} {:w$} lvm2 [{}]\n",
                v.name,
                "",
                display_size(v.size),
                w = vw + 3
            );
        } else {
            out += &format!(
                "  PV {:pw$} VG {:vw$} lvm2 [{} / {} free]\n",
                v.name,
                v.vg_name,
                display_size(usable),
                display_size((v.pe_count - v.pe_alloc) * v.pe_size)
            );
        }
        if v.vg_name.is_empty() {
            orphans = (orphans.0 + 1, orphans.1 + usable);
        } else {
            in_vg = (in_vg.0 + 1, in_vg.1 + usable);
        }
    }
    out += &format!(
        "  Total: {} [{}] / in use: {} [{}] / in no VG: {} [{}]\n",
        total.0,
        display_size(total.1),
        in_vg.0,
        display_size(in_vg.1),
        orphans.0,
        display_size(orphans.1)
    );
    out
}

/// `pvscan [-s]`.
pub fn pvscan(short: bool) -> Result<String> {
    let scan = Scan::run(&[])?;
    Ok(pvscan_lines(&pv_views(&scan, &[])?, short))
}

/// `vgscan`'s line for VG `name`.
pub fn vgscan_line(name: &str) -> String {
    format!("  Found volume group \"{name}\" using metadata type lvm2\n")
}

/// `vgscan`.
pub fn vgscan() -> Result<String> {
    let scan = Scan::run(&[])?;
    Ok(scan
        .vg_names_as_found()
        .iter()
        .map(|n| vgscan_line(n))
        .collect())
}

/// `lvscan`'s line for `lv` of `vg`, `active` when its device is in the kernel.
pub fn lvscan_line(vg: &Vg, lv: &Lv, active: bool) -> String {
    let state = if active { "ACTIVE   " } else { "inactive " };
    let cow = vg
        .lvs
        .iter()
        .filter_map(|l| l.snapshot_of())
        .any(|(_, c, _)| c == lv.name);
    let role = if !vg.snapshots_of(&lv.name).is_empty() {
        "Original"
    } else if cow {
        "Snapshot"
    } else {
        "        "
    };
    format!(
        "  {state}{role} '/dev/{}/{}' [{}] {}\n",
        vg.name,
        lv.name,
        display_size(lv.extents() * vg.extent_size),
        lv.raw.str("allocation_policy").unwrap_or("inherit")
    )
}

/// `lvscan [-a]`.
pub fn lvscan(all: bool) -> Result<String> {
    let scan = Scan::run(&[])?;
    let dm = open_dm();
    let ctl = dm.as_ref().map(|c| c as &dyn DmBackend);
    let mut out = String::new();
    for n in scan.vg_names_as_found() {
        let Some((vg, _)) = scan.vg(&n) else {
            continue;
        };
        let lvs = vg.listed_lvs(all);
        for lv in lvs {
            let active =
                ctl.is_some_and(|c| c.info(&DevId::Name(dm_name(&vg.name, &lv.name))).is_ok());
            out += &lvscan_line(&vg, lv, active);
        }
    }
    if out.is_empty() {
        out = "  No volume groups found.\n".into();
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pv(name: &str, vg: &str, alloc: u64) -> PvView {
        PvView {
            name: name.into(),
            vg_name: vg.into(),
            size: 196608,
            pe_size: if vg.is_empty() { 0 } else { 8192 },
            pe_count: if vg.is_empty() { 0 } else { 23 },
            pe_alloc: alloc,
            allocatable: !vg.is_empty(),
            uuid: String::new(),
        }
    }

    #[test]
    fn pvscan_aligns_orphans_with_members() {
        let out = pvscan_lines(
            &[pv("/dev/loop0", "pvg", 9), pv("/dev/loop2", "", 0)],
            false,
        );
        assert_eq!(
            out,
            "  PV /dev/loop0   VG pvg             lvm2 [92.00 MiB / 56.00 MiB free]\n  \
             PV /dev/loop2                      lvm2 [96.00 MiB]\n  \
             Total: 2 [188.00 MiB] / in use: 1 [92.00 MiB] / in no VG: 1 [96.00 MiB]\n"
        );
        // A VG name longer than LVM2's orphan VG name widens the column.
        let long = pvscan_lines(&[pv("/dev/sda", "a_very_long_vg_name", 0)], false);
        assert!(long.starts_with("  PV /dev/sda   VG a_very_long_vg_name   lvm2 ["));
        assert!(long.ends_with("in no VG: 0 [0   ]\n"));
        assert_eq!(
            pvscan_lines(&[], false),
            "  No matching physical volumes found\n"
        );
    }

    #[test]
    fn scan_lines() {
        assert_eq!(
            vgscan_line("pvg"),
            "  Found volume group \"pvg\" using metadata type lvm2\n"
        );
    }
}
