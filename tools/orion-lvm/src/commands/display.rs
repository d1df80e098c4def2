// SPDX-License-Identifier: GPL-2.0 OR MIT

//! `pvdisplay`, `vgdisplay` and `lvdisplay`: LVM2's long format (`--- Physical volume
//! ---` blocks) and its colon format (`-c`), built from the scanned metadata and, for
//! activity and open counts, the kernel's view when device-mapper is there.
//!
//! The text of each block is made by a pure function over the values it shows, so the
//! layout is tested on the host; the command functions only gather those values.

use super::listing::used_extents;
use super::Scan;
use crate::dm::activate::dm_name;
use crate::dm::backend::DmBackend;
use crate::dm::ioctl::{DevId, DevInfo};
use crate::label::dashed;
use crate::pv::Pv;
use crate::report::Units;
use crate::vg::{Lv, Vg};
use anyhow::{bail, Result};

/// A size as LVM2's display commands print it: human units with long suffixes
/// (`96.00 MiB`, `<1.82 TiB`), zero as `0   `.
pub fn display_size(sectors: u64) -> String {
    if sectors == 0 {
        return "0   ".into();
    }
    // The report engine's human format ("96.00m") with LVM2's long unit names.
    let short = Units::default().format(sectors, false);
    let (num, unit) = short.split_at(short.len() - 1);
    let long = match unit {
        "k" => "KiB",
        "m" => "MiB",
        "g" => "GiB",
        "t" => "TiB",
        "p" => "PiB",
        "e" => "EiB",
        _ => return format!("{short} "),
    };
    format!("{num} {long}")
}

/// A PV as `pvdisplay` shows it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PvView {
    /// Device path.
    pub name: String,
    /// Its VG, empty for an orphan.
    pub vg_name: String,
    /// PV size in sectors (the metadata's `dev_size`, the device size for an orphan).
    pub size: u64,
    /// Extent size in sectors (0 for an orphan).
    pub pe_size: u64,
    /// Extents.
    pub pe_count: u64,
    /// Allocated extents.
    pub pe_alloc: u64,
    /// Whether the metadata marks it `ALLOCATABLE`.
    pub allocatable: bool,
    /// UUID, dashed.
    pub uuid: String,
}

impl PvView {
    /// The view of `p`, a member of `vg` or an orphan.
    pub fn of(p: &Pv, vg: Option<&Vg>) -> PvView {
        let uuid = dashed(&p.label.uuid);
        let mut v = PvView {
            name: p.path.display().to_string(),
            size: p.label.device_size / 512,
            uuid,
            ..PvView::default()
        };
        if let Some((vg, vp)) =
            vg.and_then(|g| g.pvs.iter().find(|x| x.id == v.uuid).map(|x| (g, x)))
        {
            v.vg_name = vg.name.clone();
            v.size = vp.dev_size;
            v.pe_size = vg.extent_size;
            v.pe_count = vp.pe_count;
            v.pe_alloc = used_extents(vg, &vp.key);
            v.allocatable = vp
                .raw
                .strs("status")
                .is_none_or(|s| s.contains(&"ALLOCATABLE"));
        }
        v
    }

    /// The line LVM2 prints before an orphan's block (`"/dev/x" is a new physical
    /// volume of "48.00 MiB"`), if this is an orphan.
    pub fn orphan_note(&self) -> Option<String> {
        self.vg_name.is_empty().then(|| {
            format!(
                "  \"{}\" is a new physical volume of \"{}\"\n",
                self.name,
                display_size(self.size)
            )
        })
    }

    /// The long format.
    pub fn full(&self) -> String {
        let mut o = String::new();
        let new = if self.vg_name.is_empty() { "NEW " } else { "" };
        o += &format!("  --- {new}Physical volume ---\n");
        o += &format!("  PV Name               {}\n", self.name);
        o += &format!("  VG Name               {}\n", self.vg_name);
        let size = display_size(self.size);
        if self.pe_size > 0 && self.pe_count > 0 {
            let unusable = self.size.saturating_sub(self.pe_count * self.pe_size);
            o += &format!(
                "  PV Size               {size} / not usable {}\n",
                display_size(unusable)
            );
        } else {
            o += &format!("  PV Size               {size}\n");
        }
        let free = self.pe_count - self.pe_alloc;
        if self.pe_count > 0 && self.allocatable {
            let full = if free == 0 { "(but full)" } else { "" };
            o += &format!("  Allocatable           yes {full}\n");
        } else {
            o += "  Allocatable           NO\n";
        }
        o += &format!("  PE Size               {}\n", display_size(self.pe_size));
        o += &format!("  Total PE              {}\n", self.pe_count);
        o += &format!("  Free PE               {free}\n");
        o += &format!("  Allocated PE          {}\n", self.pe_alloc);
        o += &format!("  PV UUID               {}\n", self.uuid);
        o += "   \n";
        o
    }

    /// The colon format: name, VG, size (sectors), -1, status, allocatable, -1, extent
    /// size (KiB), extents, free, allocated, UUID.
    pub fn colons(&self) -> String {
        // LVM2 prints its ALLOCATABLE_PV status bit (8) in both the status and the
        // allocatable field.
        let flag = if self.allocatable && !self.vg_name.is_empty() {
            8
        } else {
            0
        };
        format!(
            "  {}:{}:{}:-1:{flag}:{flag}:-1:{}:{}:{}:{}:{}\n",
            self.name,
            self.vg_name,
            self.size,
            self.pe_size / 2,
            self.pe_count,
            self.pe_count - self.pe_alloc,
            self.pe_alloc,
            self.uuid
        )
    }
}

/// A VG as `vgdisplay` shows it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct VgView {
    /// Name.
    pub name: String,
    /// System ID.
    pub system_id: String,
    /// Metadata areas on the PVs found.
    pub mdas: u64,
    /// Sequence number.
    pub seqno: u64,
    /// `WRITE` in the status.
    pub writeable: bool,
    /// `RESIZEABLE` in the status.
    pub resizeable: bool,
    /// `EXPORTED` in the status.
    pub exported: bool,
    /// `max_lv`.
    pub max_lv: u64,
    /// Visible LVs.
    pub lv_count: u64,
    /// LVs open in the kernel.
    pub open_lvs: u64,
    /// `max_pv`.
    pub max_pv: u64,
    /// PVs in the metadata.
    pub pv_count: u64,
    /// PVs found.
    pub pv_found: u64,
    /// Extent size in sectors.
    pub extent_size: u64,
    /// Extents.
    pub extents: u64,
    /// Free extents.
    pub free: u64,
    /// UUID, dashed.
    pub uuid: String,
}

impl VgView {
    /// The view of `vg` with its PVs found, `open_lvs` of its LVs open.
    pub fn of(vg: &Vg, members: &[&Pv], open_lvs: u64) -> VgView {
        let status = vg.raw.strs("status").unwrap_or_default();
        VgView {
            name: vg.name.clone(),
            system_id: vg.raw.str("system_id").unwrap_or("").to_owned(),
            mdas: members
                .iter()
                .map(|p| p.label.metadata_areas.len() as u64)
                .sum(),
            seqno: vg.seqno,
            writeable: status.contains(&"WRITE"),
            resizeable: status.contains(&"RESIZEABLE"),
            exported: status.contains(&"EXPORTED"),
            max_lv: vg.raw.int("max_lv").unwrap_or(0).max(0) as u64,
            lv_count: vg.user_lvs().len() as u64,
            open_lvs,
            max_pv: vg.raw.int("max_pv").unwrap_or(0).max(0) as u64,
            pv_count: vg.pvs.len() as u64,
            pv_found: members.len() as u64,
            extent_size: vg.extent_size,
            extents: vg.pvs.iter().map(|p| p.pe_count).sum(),
            free: vg.free_extents(),
            uuid: vg.id.clone(),
        }
    }

    /// The long format.
    pub fn full(&self) -> String {
        let es = self.extent_size;
        let alloc = self.extents - self.free;
        let mut o = String::from("  --- Volume group ---\n");
        o += &format!("  VG Name               {}\n", self.name);
        o += &format!("  System ID             {}\n", self.system_id);
        o += "  Format                lvm2\n";
        o += &format!("  Metadata Areas        {}\n", self.mdas);
        o += &format!("  Metadata Sequence No  {}\n", self.seqno);
        let access = if self.writeable { "read/write" } else { "read" };
        o += &format!("  VG Access             {access}\n");
        let status = match (self.exported, self.resizeable) {
            (false, true) => "resizable",
            (false, false) => "NOT resizable",
            (true, true) => "exported/resizable",
            (true, false) => "exported/NOT resizable",
        };
        o += &format!("  VG Status             {status}\n");
        o += &format!("  MAX LV                {}\n", self.max_lv);
        o += &format!("  Cur LV                {}\n", self.lv_count);
        o += &format!("  Open LV               {}\n", self.open_lvs);
        o += &format!("  Max PV                {}\n", self.max_pv);
        o += &format!("  Cur PV                {}\n", self.pv_count);
        o += &format!("  Act PV                {}\n", self.pv_found);
        o += &format!(
            "  VG Size               {}\n",
            display_size(self.extents * es)
        );
        o += &format!("  PE Size               {}\n", display_size(es));
        o += &format!("  Total PE              {}\n", self.extents);
        o += &format!(
            "  Alloc PE / Size       {alloc} / {}\n",
            display_size(alloc * es)
        );
        o += &format!(
            "  Free  PE / Size       {} / {}\n",
            self.free,
            display_size(self.free * es)
        );
        o += &format!("  VG UUID               {}\n", self.uuid);
        o += "   \n";
        o
    }

    /// The colon format: name, access, status bits, -1, max LVs, LVs, open LVs, -1, max
    /// PVs, PVs, PVs found, size (KiB), extent size (KiB), extents, allocated, free, UUID.
    pub fn colons(&self) -> String {
        // LVM2's status bits: LVM_READ 0x100, LVM_WRITE 0x200, RESIZEABLE_VG 0x4,
        // EXPORTED_VG 0x2.
        let mut status = 0x100;
        if self.writeable {
            status |= 0x200;
        }
        if self.resizeable {
            status |= 0x4;
        }
        if self.exported {
            status |= 0x2;
        }
        let kib = self.extent_size / 2;
        format!(
            "  {}:{}:{status}:-1:{}:{}:{}:-1:{}:{}:{}:{}:{kib}:{}:{}:{}:{}\n",
            self.name,
            if self.writeable { "r/w" } else { "r" },
            self.max_lv,
            self.lv_count,
            self.open_lvs,
            self.max_pv,
            self.pv_count,
            self.pv_found,
            self.extents * kib,
            self.extents,
            self.extents - self.free,
            self.free,
            self.uuid
        )
    }
}

/// `secs` since the epoch as LVM2 prints creation times (`2026-12-05 04:43:05 +0000`),
/// in UTC: LVM2 prints local time, which is the same on hosts that run in UTC (ours and
/// the test VMs); orion-lvm keeps its only `unsafe` in the ioctl layer rather than call
/// `localtime_r`.
pub fn utc_time(secs: i64) -> String {
    let days = secs.div_euclid(86400);
    let rem = secs.rem_euclid(86400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} +0000",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// What `lvdisplay` shows of an LV besides its metadata: whether it is active, its
/// open count, device numbers and current read-ahead.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LvState {
    /// The kernel's device, when active.
    pub device: Option<DevInfo>,
    /// Read-ahead of the active device in sectors.
    pub read_ahead: Option<u64>,
    /// Per snapshot of this origin: (COW LV, active).
    pub snapshots: Vec<(String, bool)>,
    /// For a snapshot's COW LV: whether the snapshot is active.
    pub snapshot_active: bool,
}

impl LvState {
    /// The kernel's view of `lv`, from `ctl` (absent without device-mapper).
    pub fn of(ctl: Option<&dyn DmBackend>, vg: &Vg, lv: &Lv) -> LvState {
        let info =
            |name: &str| ctl.and_then(|c| c.info(&DevId::Name(dm_name(&vg.name, name))).ok());
        let device = info(&lv.name);
        let read_ahead = device.as_ref().and_then(|d| {
            std::fs::read_to_string(format!("/sys/block/dm-{}/queue/read_ahead_kb", d.minor))
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok())
                .map(|kb| kb * 2)
        });
        LvState {
            snapshots: vg
                .snapshots_of(&lv.name)
                .iter()
                .map(|(cow, _)| (cow.name.clone(), info(&cow.name).is_some()))
                .collect(),
            snapshot_active: device.is_some(),
            device,
            read_ahead,
        }
    }
}

fn public(vg: &Vg, lv: &Lv) -> bool {
    vg.user_lvs().iter().any(|u| u.name == lv.name)
}

/// `lvdisplay`'s long format of `lv` in `vg`.
pub fn lv_full(vg: &Vg, lv: &Lv, st: &LvState) -> String {
    let es = vg.extent_size;
    let mut o = String::from("  --- Logical volume ---\n");
    if public(vg, lv) {
        o += &format!("  LV Path                /dev/{}/{}\n", vg.name, lv.name);
        o += &format!("  LV Name                {}\n", lv.name);
    } else {
        o += &format!("  Internal LV Name       {}\n", lv.name);
    }
    o += &format!("  VG Name                {}\n", vg.name);
    o += &format!("  LV UUID                {}\n", lv.id);
    let write = lv.status.iter().any(|s| s == "WRITE");
    o += &format!(
        "  LV Write Access        {}\n",
        if write { "read/write" } else { "read only" }
    );
    if let (Some(h), Some(t)) = (lv.raw.str("creation_host"), lv.raw.int("creation_time")) {
        o += &format!("  LV Creation host, time {h}, {}\n", utc_time(t));
    }
    let snap = vg
        .lvs
        .iter()
        .filter_map(|l| l.snapshot_of())
        .find(|(_, c, _)| *c == lv.name);
    if !st.snapshots.is_empty() {
        o += "  LV snapshot status     source of\n";
        for (cow, active) in &st.snapshots {
            let a = if *active { "active" } else { "INACTIVE" };
            o += &format!("                         {cow} [{a}]\n");
        }
    }
    if let Some((origin, _, _)) = snap {
        let a = if st.snapshot_active {
            "active"
        } else {
            "INACTIVE"
        };
        o += &format!("  LV snapshot status     {a} destination for {origin}\n");
    }
    match &st.device {
        Some(d) => {
            o += "  LV Status              available\n";
            o += &format!("  # open                 {}\n", d.open_count);
        }
        None => o += "  LV Status              NOT available\n",
    }
    // A snapshot shows its origin's size; the COW's own size follows.
    let shown = snap
        .and_then(|(origin, _, _)| vg.lv(origin))
        .map_or(lv.extents(), Lv::extents);
    o += &format!("  LV Size                {}\n", display_size(shown * es));
    o += &format!("  Current LE             {shown}\n");
    if let Some(m) = lv.mirror() {
        o += &format!("  Mirrored volumes       {}\n", m.images.len());
    }
    if let Some((_, _, chunk)) = snap {
        o += &format!(
            "  COW-table size         {}\n",
            display_size(lv.extents() * es)
        );
        o += &format!("  COW-table LE           {}\n", lv.extents());
        o += &format!("  Snapshot chunk size    {}\n", display_size(chunk));
    }
    o += &format!("  Segments               {}\n", lv.segments.len());
    o += &format!(
        "  Allocation             {}\n",
        lv.raw.str("allocation_policy").unwrap_or("inherit")
    );
    match lv.raw.int("read_ahead") {
        Some(r) if r >= 0 => o += &format!("  Read ahead sectors     {r}\n"),
        _ => o += "  Read ahead sectors     auto\n",
    }
    if let Some(d) = &st.device {
        if let Some(ra) = st.read_ahead {
            o += &format!("  - currently set to     {ra}\n");
        }
        o += &format!("  Block device           {}:{}\n", d.major, d.minor);
    }
    o += "   \n";
    o
}

/// `lvdisplay -c` of `lv`: path, VG, access bits, active, -1, open count, size
/// (sectors), extents, -1, allocation (2 for contiguous), read-ahead, major, minor.
pub fn lv_colons(vg: &Vg, lv: &Lv, st: &LvState) -> String {
    let mut access = 0;
    if lv.status.iter().any(|s| s == "READ") {
        access |= 1;
    }
    if lv.status.iter().any(|s| s == "WRITE") {
        access |= 2;
    }
    let (active, open, major, minor) = match &st.device {
        Some(d) => (1, d.open_count, i64::from(d.major), i64::from(d.minor)),
        None => (0, 0, -1, -1),
    };
    let contiguous = lv.raw.str("allocation_policy") == Some("contiguous");
    let read_ahead = lv.raw.int("read_ahead").filter(|r| *r >= 0).unwrap_or(-1);
    format!(
        "  /dev/{}/{}:{}:{access}:{active}:-1:{open}:{}:{}:-1:{}:{read_ahead}:{major}:{minor}\n",
        vg.name,
        lv.name,
        vg.name,
        lv.extents() * vg.extent_size,
        lv.extents(),
        if contiguous { 2 } else { 0 },
    )
}

pub(crate) fn open_dm() -> Option<crate::dm::ioctl::Control> {
    crate::dm::ioctl::Control::open().ok()
}

/// Whether `lv` of `vg` is open in the kernel.
fn is_open(ctl: Option<&dyn DmBackend>, vg: &Vg, lv: &Lv) -> bool {
    ctl.and_then(|c| c.info(&DevId::Name(dm_name(&vg.name, &lv.name))).ok())
        .is_some_and(|d| d.open_count > 0)
}

/// The PVs of `scan` as the display commands list them: the PVs of each VG (by VG
/// name, in metadata order), then the orphans; only the devices in `names` when given.
pub fn pv_views(scan: &Scan, names: &[String]) -> Result<Vec<PvView>> {
    for n in names {
        if !scan
            .pvs
            .iter()
            .any(|(p, _)| p.path.display().to_string() == *n)
        {
            bail!("Failed to find physical volume \"{n}\"");
        }
    }
    let wanted = |p: &Pv| names.is_empty() || names.contains(&p.path.display().to_string());
    let mut views = Vec::new();
    for vgname in scan.vg_names_as_found() {
        let Some((vg, members)) = scan.vg(&vgname) else {
            continue;
        };
        for vp in &vg.pvs {
            if let Some(p) = members.iter().find(|p| dashed(&p.label.uuid) == vp.id) {
                if wanted(p) {
                    views.push(PvView::of(p, Some(&vg)));
                }
            }
        }
    }
    for (p, v) in &scan.pvs {
        if v.is_none() && wanted(p) {
            views.push(PvView::of(p, None));
        }
    }
    Ok(views)
}

/// `pvdisplay [-c] [PV...]`.
pub fn pvdisplay(names: &[String], colon: bool) -> Result<String> {
    let scan = Scan::run(&[])?;
    let mut out = String::new();
    for v in &pv_views(&scan, names)? {
        if let Some(note) = v.orphan_note() {
            out += &note;
        }
        out += &if colon { v.colons() } else { v.full() };
    }
    Ok(out)
}

/// The VGs to show: those named (as `VG` or `VG/LV`) in the order first named, as LVM2
/// takes them, else all in the order LVM2 finds them.
fn vg_order(scan: &Scan, names: &[String]) -> Vec<String> {
    if names.is_empty() {
        return scan.vg_names_as_found();
    }
    let mut out: Vec<String> = Vec::new();
    for n in names {
        let vg = n.split('/').next().unwrap_or(n).to_owned();
        if !out.contains(&vg) {
            out.push(vg);
        }
    }
    out
}

/// `vgdisplay [-c] [VG...]`.
pub fn vgdisplay(names: &[String], colon: bool) -> Result<String> {
    let scan = Scan::run(&[])?;
    let dm = open_dm();
    let ctl = dm.as_ref().map(|c| c as &dyn DmBackend);
    let mut out = String::new();
    for n in names {
        if scan.vg(n).is_none() {
            bail!("Volume group \"{n}\" not found");
        }
    }
    for n in vg_order(&scan, names) {
        let Some((vg, members)) = scan.vg(&n) else {
            continue;
        };
        let open = vg
            .user_lvs()
            .iter()
            .filter(|l| is_open(ctl, &vg, l))
            .count() as u64;
        let v = VgView::of(&vg, &members, open);
        out += &if colon { v.colons() } else { v.full() };
    }
    Ok(out)
}

/// `lvdisplay [-a] [-c] [VG|VG/LV...]`.
pub fn lvdisplay(names: &[String], all: bool, colon: bool) -> Result<String> {
    let scan = Scan::run(&[])?;
    let dm = open_dm();
    let ctl = dm.as_ref().map(|c| c as &dyn DmBackend);
    for n in names {
        let vg = n.split('/').next().unwrap_or(n);
        if scan.vg(vg).is_none() {
            bail!("Volume group \"{vg}\" not found");
        }
    }
    let mut out = String::new();
    let mut found = Vec::new();
    for n in vg_order(&scan, names) {
        let Some((vg, _)) = scan.vg(&n) else {
            continue;
        };
        let lvs = vg.listed_lvs(all);
        for lv in lvs {
            let full = format!("{}/{}", vg.name, lv.name);
            if !names.is_empty() && !names.iter().any(|x| *x == vg.name || *x == full) {
                continue;
            }
            found.push(full);
            let st = LvState::of(ctl, &vg, lv);
            out += &if colon {
                lv_colons(&vg, lv, &st)
            } else {
                lv_full(&vg, lv, &st)
            };
        }
    }
    for n in names.iter().filter(|n| n.contains('/')) {
        if !found.contains(n) {
            bail!("Failed to find logical volume \"{n}\"");
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const VG: &str = r#"vg {
id = "AAAAAA-AAAA-AAAA-AAAA-AAAA-AAAA-AAAAAA"
seqno = 5
format = "lvm2"
status = ["RESIZEABLE", "READ", "WRITE"]
flags = []
extent_size = 8192
max_lv = 0
max_pv = 0
metadata_copies = 0
physical_volumes {
pv0 {
id = "BBBBBB-BBBB-BBBB-BBBB-BBBB-BBBB-BBBBBB"
device = "/dev/loop0"
status = ["ALLOCATABLE"]
flags = []
dev_size = 196608
pe_start = 2048
pe_count = 23
}
}
logical_volumes {
lv1 {
id = "CCCCCC-CCCC-CCCC-CCCC-CCCC-CCCC-CCCCCC"
status = ["READ", "WRITE", "VISIBLE"]
flags = []
creation_time = 0
creation_host = "h"
segment_count = 1
segment1 {
start_extent = 0
extent_count = 5
type = "striped"
stripe_count = 1
stripes = ["pv0", 0]
}
}
snap {
id = "DDDDDD-DDDD-DDDD-DDDD-DDDD-DDDD-DDDDDD"
status = ["READ", "WRITE", "VISIBLE"]
flags = []
creation_time = 0
creation_host = "h"
segment_count = 1
segment1 {
start_extent = 0
extent_count = 2
type = "striped"
stripe_count = 1
stripes = ["pv0", 5]
}
}
snapshot0 {
id = "EEEEEE-EEEE-EEEE-EEEE-EEEE-EEEE-EEEEEE"
status = ["READ", "WRITE"]
flags = []
creation_time = 0
creation_host = "h"
segment_count = 1
segment1 {
start_extent = 0
extent_count = 5
type = "snapshot"
chunk_size = 8
origin = "lv1"
cow_store = "snap"
}
}
}
}
"#;

    fn vg() -> Vg {
        Vg::from_text(VG).unwrap()
    }

    #[test]
    fn sizes_as_display_commands_print_them() {
        assert_eq!(display_size(0), "0   ");
        assert_eq!(display_size(196608), "96.00 MiB");
        assert_eq!(display_size(8), "4.00 KiB");
        // Not a whole number of hundredths of a TiB: LVM2 marks it rounded.
        assert_eq!(display_size(3_907_029_168), "<1.82 TiB");
    }

    #[test]
    fn pv_blocks() {
        let v = vg();
        let pv = PvView {
            name: "/dev/loop0".into(),
            vg_name: "vg".into(),
            size: 196608,
            pe_size: v.extent_size,
            pe_count: 23,
            pe_alloc: used_extents(&v, "pv0"),
            allocatable: true,
            uuid: "BBBBBB-BBBB-BBBB-BBBB-BBBB-BBBB-BBBBBB".into(),
        };
        assert_eq!(pv.pe_alloc, 7);
        let full = pv.full();
        assert!(full.contains("  PV Size               96.00 MiB / not usable 4.00 MiB\n"));
        assert!(full.contains("  Allocatable           yes \n"));
        assert!(full.contains("  Free PE               16\n"));
        assert!(
            full.ends_with("  PV UUID               BBBBBB-BBBB-BBBB-BBBB-BBBB-BBBB-BBBBBB\n   \n")
        );
        assert_eq!(
            pv.colons(),
            "  /dev/loop0:vg:196608:-1:8:8:-1:4096:23:16:7:BBBBBB-BBBB-BBBB-BBBB-BBBB-BBBB-BBBBBB\n"
        );
        assert_eq!(pv.orphan_note(), None);
        let full_pv = PvView {
            pe_alloc: 23,
            ..pv.clone()
        };
        assert!(full_pv
            .full()
            .contains("  Allocatable           yes (but full)\n"));
        let orphan = PvView {
            vg_name: String::new(),
            size: 98304,
            pe_size: 0,
            pe_count: 0,
            pe_alloc: 0,
            allocatable: false,
            ..pv
        };
        assert!(orphan.full().starts_with("  --- NEW Physical volume ---\n"));
        assert!(orphan.full().contains("  PV Size               48.00 MiB\n  Allocatable           NO\n  PE Size               0   \n"));
        assert_eq!(
            orphan.orphan_note().unwrap(),
            "  \"/dev/loop0\" is a new physical volume of \"48.00 MiB\"\n"
        );
    }

    #[test]
    fn vg_block_and_colons() {
        let v = vg();
        let view = VgView::of(&v, &[], 0);
        assert_eq!((view.lv_count, view.extents, view.free), (2, 23, 16));
        let full = view.full();
        assert!(full.contains("  VG Status             resizable\n"));
        assert!(full.contains("  Alloc PE / Size       7 / 28.00 MiB\n"));
        assert!(full.contains("  Free  PE / Size       16 / 64.00 MiB\n"));
        assert_eq!(
            view.colons(),
            "  vg:r/w:772:-1:0:2:0:-1:0:1:0:94208:4096:23:7:16:AAAAAA-AAAA-AAAA-AAAA-AAAA-AAAA-AAAAAA\n"
        );
    }

    #[test]
    fn lv_blocks_of_origin_and_snapshot() {
        let v = vg();
        let lv1 = v.lv("lv1").unwrap();
        let snap = v.lv("snap").unwrap();
        let st = LvState::of(None, &v, lv1);
        assert_eq!(st.snapshots, vec![("snap".to_owned(), false)]);
        let full = lv_full(&v, lv1, &st);
        assert!(full.contains(
            "  LV snapshot status     source of\n                         snap [INACTIVE]\n  LV Status              NOT available\n"
        ));
        let s = lv_full(&v, snap, &LvState::of(None, &v, snap));
        assert!(s.contains("  LV snapshot status     INACTIVE destination for lv1\n"));
        // The origin's size, then the COW's.
        assert!(s.contains("  LV Size                20.00 MiB\n  Current LE             5\n  COW-table size         8.00 MiB\n  COW-table LE           2\n  Snapshot chunk size    4.00 KiB\n"));
        assert_eq!(
            lv_colons(&v, snap, &LvState::default()),
            "  /dev/vg/snap:vg:3:0:-1:0:16384:2:-1:0:-1:-1:-1\n"
        );
        let active = LvState {
            device: Some(DevInfo {
                major: 254,
                minor: 3,
                flags: 0,
                open_count: 1,
                target_count: 1,
                event_nr: 0,
                name: "vg-lv1".into(),
                uuid: String::new(),
            }),
            read_ahead: Some(256),
            ..LvState::default()
        };
        let a = lv_full(&v, lv1, &active);
        assert!(a.contains("  LV Status              available\n  # open                 1\n"));
        assert!(a.ends_with("  - currently set to     256\n  Block device           254:3\n   \n"));
    }

    #[test]
    fn creation_times() {
        assert_eq!(utc_time(0), "1970-01-01 00:00:00 +0000");
        assert_eq!(utc_time(1_796_445_785), "2026-12-05 04:43:05 +0000");
        assert_eq!(utc_time(951_782_400), "2000-02-29 00:00:00 +0000");
    }
}
