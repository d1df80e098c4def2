// SPDX-License-Identifier: GPL-2.0 OR MIT

//! The report fields orion-lvm knows, with LVM2's names, headings, minimum widths and
//! kinds (which decide alignment, sorting and selection).

/// What a field holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Text, left-aligned.
    Str,
    /// A list of strings, shown comma-separated, left-aligned.
    List,
    /// An unsigned number, right-aligned.
    Num,
    /// A signed number, right-aligned.
    SNum,
    /// A size in sectors, shown in the report's units, right-aligned.
    Size,
    /// A percentage with two decimals (empty when unknown), right-aligned.
    Pct,
}

impl Kind {
    /// Whether LVM2 aligns values of this kind to the right.
    pub fn right_aligned(self) -> bool {
        !matches!(self, Kind::Str | Kind::List)
    }
}

/// The object a field describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Obj {
    /// A PV (label or VG view).
    Pv,
    /// A VG.
    Vg,
    /// An LV.
    Lv,
    /// An LV segment.
    Seg,
    /// A PV segment: a run of extents of a PV, allocated to one LV area or free.
    PvSeg,
}

/// One field.
#[derive(Clone, Copy, Debug)]
pub struct Field {
    /// LVM2's name (`lv_size`).
    pub name: &'static str,
    /// Column heading (`LSize`).
    pub heading: &'static str,
    /// Kind.
    pub kind: Kind,
    /// Minimum column width.
    pub width: usize,
    /// Object.
    pub obj: Obj,
}

const fn f(name: &'static str, heading: &'static str, kind: Kind, width: usize, obj: Obj) -> Field {
    Field {
        name,
        heading,
        kind,
        width,
        obj,
    }
}

use Kind::*;
use Obj::*;

/// Every field, in LVM2's help order.
pub const FIELDS: &[Field] = &[
    f("lv_uuid", "LV UUID", Str, 38, Lv),
    f("lv_name", "LV", Str, 4, Lv),
    f("lv_full_name", "LV", Str, 4, Lv),
    f("lv_path", "Path", Str, 0, Lv),
    f("lv_dm_path", "DMPath", Str, 0, Lv),
    f("lv_layout", "Layout", List, 10, Lv),
    f("lv_role", "Role", List, 10, Lv),
    f("lv_allocation_policy", "AllocPol", Str, 10, Lv),
    f("lv_active", "Active", Str, 0, Lv),
    f("lv_major", "Maj", SNum, 0, Lv),
    f("lv_minor", "Min", SNum, 0, Lv),
    f("lv_size", "LSize", Size, 0, Lv),
    f("seg_count", "#Seg", Num, 0, Lv),
    f("origin", "Origin", Str, 0, Lv),
    f("origin_size", "OSize", Size, 0, Lv),
    f("move_pv", "Move", Str, 0, Lv),
    f("convert_lv", "Convert", Str, 0, Lv),
    f("mirror_log", "Log", Str, 0, Lv),
    f("data_lv", "Data", Str, 0, Lv),
    f("metadata_lv", "Meta", Str, 0, Lv),
    f("pool_lv", "Pool", Str, 0, Lv),
    f("lv_tags", "LV Tags", List, 0, Lv),
    f("lv_host", "Host", Str, 10, Lv),
    f("lv_kernel_major", "KMaj", SNum, 0, Lv),
    f("lv_kernel_minor", "KMin", SNum, 0, Lv),
    f("data_percent", "Data%", Pct, 6, Lv),
    f("snap_percent", "Snap%", Pct, 6, Lv),
    f("metadata_percent", "Meta%", Pct, 6, Lv),
    f("copy_percent", "Cpy%Sync", Pct, 0, Lv),
    f("sync_percent", "Cpy%Sync", Pct, 0, Lv),
    f("lv_health_status", "Health", Str, 15, Lv),
    f("lv_attr", "Attr", Str, 0, Lv),
    f("pv_fmt", "Fmt", Str, 0, Pv),
    f("pv_uuid", "PV UUID", Str, 38, Pv),
    f("dev_size", "DevSize", Size, 0, Pv),
    f("pv_name", "PV", Str, 10, Pv),
    f("pv_mda_size", "PMdaSize", Size, 9, Pv),
    f("pv_ext_vsn", "PExtVsn", Num, 0, Pv),
    f("pe_start", "1st PE", Size, 7, Pv),
    f("pv_size", "PSize", Size, 0, Pv),
    f("pv_free", "PFree", Size, 0, Pv),
    f("pv_used", "Used", Size, 0, Pv),
    f("pv_attr", "Attr", Str, 0, Pv),
    f("pv_pe_count", "PE", Num, 3, Pv),
    f("pv_pe_alloc_count", "Alloc", Num, 0, Pv),
    f("pv_tags", "PV Tags", List, 0, Pv),
    f("pv_mda_count", "#PMda", Num, 0, Pv),
    f("pv_mda_used_count", "#PMdaUse", Num, 0, Pv),
    f("pv_ba_start", "BA Start", Size, 0, Pv),
    f("pv_ba_size", "BA Size", Size, 0, Pv),
    f("vg_fmt", "Fmt", Str, 0, Vg),
    f("vg_uuid", "VG UUID", Str, 38, Vg),
    f("vg_name", "VG", Str, 0, Vg),
    f("vg_attr", "Attr", Str, 5, Vg),
    f("vg_permissions", "VPerms", Str, 10, Vg),
    f("vg_allocation_policy", "AllocPol", Str, 10, Vg),
    f("vg_size", "VSize", Size, 0, Vg),
    f("vg_free", "VFree", Size, 0, Vg),
    f("vg_sysid", "SYS ID", Str, 0, Vg),
    f("vg_systemid", "System ID", Str, 0, Vg),
    f("vg_extent_size", "Ext", Size, 0, Vg),
    f("vg_extent_count", "#Ext", Num, 0, Vg),
    f("vg_free_count", "Free", Num, 0, Vg),
    f("max_lv", "MaxLV", Num, 0, Vg),
    f("max_pv", "MaxPV", Num, 0, Vg),
    f("pv_count", "#PV", Num, 0, Vg),
    f("vg_missing_pv_count", "#PV Missing", Num, 0, Vg),
    f("lv_count", "#LV", Num, 0, Vg),
    f("snap_count", "#SN", Num, 0, Vg),
    f("vg_seqno", "Seq", Num, 0, Vg),
    f("vg_tags", "VG Tags", List, 0, Vg),
    f("vg_mda_count", "#VMda", Num, 0, Vg),
    f("vg_mda_used_count", "#VMdaUse", Num, 0, Vg),
    f("vg_mda_size", "VMdaSize", Size, 9, Vg),
    f("segtype", "Type", Str, 0, Seg),
    f("stripes", "#Str", Num, 0, Seg),
    f("stripe_size", "Stripe", Size, 0, Seg),
    f("region_size", "Region", Size, 0, Seg),
    f("chunk_size", "Chunk", Size, 0, Seg),
    f("seg_start", "Start", Size, 0, Seg),
    f("seg_start_pe", "Start", Num, 0, Seg),
    f("seg_size", "SSize", Size, 0, Seg),
    f("seg_size_pe", "SSize", Num, 0, Seg),
    f("seg_pe_ranges", "PE Ranges", Str, 0, Seg),
    f("devices", "Devices", List, 0, Seg),
    f("pvseg_start", "Start", Num, 0, PvSeg),
    f("pvseg_size", "SSize", Num, 0, PvSeg),
    // orion-lvm's own: live I/O counters of active LVs (`lvs --metrics`).
    f("read_ios", "ReadIOs", Num, 0, Lv),
    f("read_sectors", "ReadSectors", Num, 0, Lv),
    f("write_ios", "WriteIOs", Num, 0, Lv),
    f("write_sectors", "WriteSectors", Num, 0, Lv),
];

/// Old names LVM2 still accepts.
const ALIASES: &[(&str, &str)] = &[
    ("stripesize", "stripe_size"),
    ("regionsize", "region_size"),
    ("chunksize", "chunk_size"),
];

/// The field called `name` in a report about `prefix` objects (`lv`, `vg`, `pv`, `seg`):
/// its full name, an alias, or the name without the prefix (`size` for `lv_size`), as
/// LVM2 resolves them.
pub fn find(name: &str, prefix: &str) -> Option<&'static Field> {
    let name = ALIASES
        .iter()
        .find(|(a, _)| *a == name)
        .map_or(name, |(_, n)| n);
    FIELDS
        .iter()
        .find(|f| f.name == name)
        .or_else(|| FIELDS.iter().find(|f| f.name == format!("{prefix}_{name}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_resolve_as_lvm2s() {
        assert_eq!(find("lv_size", "lv").unwrap().heading, "LSize");
        assert_eq!(find("size", "lv").unwrap().name, "lv_size");
        assert_eq!(find("size", "vg").unwrap().name, "vg_size");
        assert_eq!(find("stripesize", "lv").unwrap().name, "stripe_size");
        assert!(find("bogus", "lv").is_none());
        let mut names: Vec<&str> = FIELDS.iter().map(|f| f.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), FIELDS.len(), "field names are unique");
    }
}
