// SPDX-License-Identifier: GPL-2.0 OR MIT

//! The volume group model read from and written to metadata text.
//!
//! Known fields become typed values; everything else in the VG section, in each PV and LV
//! and in segments of types this code does not model is kept as it was read, so a VG
//! written back by us loses nothing another LVM2 version put there.

use crate::config::{self, Node, Section, Value};

/// A PV as the VG metadata records it.
#[derive(Clone, Debug, PartialEq)]
pub struct VgPv {
    /// Key in the metadata (`pv0`).
    pub key: String,
    /// UUID, dashed.
    pub id: String,
    /// Device path hint.
    pub device: String,
    /// Device size in sectors.
    pub dev_size: u64,
    /// First extent, in sectors.
    pub pe_start: u64,
    /// Extents.
    pub pe_count: u64,
    /// The PV's section as read (unknown keys kept).
    pub raw: Section,
}

/// A segment.
#[derive(Clone, Debug, PartialEq)]
pub struct Segment {
    /// First logical extent.
    pub start_extent: u64,
    /// Length in extents.
    pub extent_count: u64,
    /// Type and its areas.
    pub kind: SegmentKind,
}

/// Segment types.
#[derive(Clone, Debug, PartialEq)]
pub enum SegmentKind {
    /// `striped` (linear is one stripe): stripe size in sectors and (PV key, first extent)
    /// per stripe.
    Striped {
        /// Stripe size in sectors (absent for one stripe).
        stripe_size: Option<u64>,
        /// Areas.
        stripes: Vec<(String, u64)>,
    },
    /// Any other type, kept verbatim.
    Other(Section),
}

/// A logical volume.
#[derive(Clone, Debug, PartialEq)]
pub struct Lv {
    /// Name.
    pub name: String,
    /// UUID, dashed.
    pub id: String,
    /// Status flags (`READ`, `WRITE`, `VISIBLE`).
    pub status: Vec<String>,
    /// Segments in order.
    pub segments: Vec<Segment>,
    /// The LV's section as read.
    pub raw: Section,
}

impl Lv {
    /// Length in extents.
    pub fn extents(&self) -> u64 {
        self.segments.iter().map(|s| s.extent_count).sum()
    }

    /// Whether the metadata marks the LV visible.
    pub fn visible(&self) -> bool {
        self.status.iter().any(|s| s == "VISIBLE")
    }

    /// The LV's single segment as a thin pool.
    pub fn thin_pool(&self) -> Option<ThinPoolSeg<'_>> {
        self.segments.first()?.thin_pool()
    }

    /// The LV's single segment as a thin volume.
    pub fn thin(&self) -> Option<ThinSeg<'_>> {
        self.segments.first()?.thin()
    }

    /// The LV's single segment as a mirror.
    pub fn mirror(&self) -> Option<MirrorSeg<'_>> {
        self.segments.first()?.mirror()
    }

    /// For the hidden `snapshotN` LV LVM2 records a snapshot with: (origin, COW LV, chunk
    /// size in sectors). A snapshot merging into its origin names its COW LV
    /// `merging_store` instead of `cow_store`.
    pub fn snapshot_of(&self) -> Option<(&str, &str, u64)> {
        match &self.segments.first()?.kind {
            SegmentKind::Other(s) if s.str("type") == Some("snapshot") => Some((
                s.str("origin")?,
                s.str("cow_store").or_else(|| s.str("merging_store"))?,
                s.int("chunk_size").unwrap_or(8).max(1) as u64,
            )),
            _ => None,
        }
    }

    /// Whether this `snapshotN` record is merging into its origin.
    pub fn merging(&self) -> bool {
        matches!(&self.segments.first().map(|s| &s.kind),
            Some(SegmentKind::Other(s)) if s.str("merging_store").is_some())
    }
}

/// A `thin-pool` segment: the pool's metadata and data LVs and its settings.
#[derive(Clone, Debug, PartialEq)]
pub struct ThinPoolSeg<'a> {
    /// Metadata LV (`POOL_tmeta`).
    pub metadata: &'a str,
    /// Data LV (`POOL_tdata`).
    pub data: &'a str,
    /// Transaction id LVM2 expects the kernel's metadata to hold.
    pub transaction_id: u64,
    /// Data block size in sectors.
    pub chunk_size: u64,
    /// `passdown`, `nopassdown` or `ignore`.
    pub discards: &'a str,
    /// Whether new blocks are zeroed before first use.
    pub zero_new_blocks: bool,
}

/// A `thin` segment: a thin volume of a pool.
#[derive(Clone, Debug, PartialEq)]
pub struct ThinSeg<'a> {
    /// The pool LV.
    pub pool: &'a str,
    /// The pool's transaction id when this volume was created.
    pub transaction_id: u64,
    /// Thin device id inside the pool's metadata.
    pub device_id: u64,
    /// The thin volume this one is a snapshot of.
    pub origin: Option<&'a str>,
}

/// A `mirror` segment: the images (LV names) and the region size.
#[derive(Clone, Debug, PartialEq)]
pub struct MirrorSeg<'a> {
    /// Image LVs (`LV_mimage_N`) or, for pvmove, PV keys, each with its first extent.
    pub images: Vec<(&'a str, u64)>,
    /// Region size in sectors.
    pub region_size: u64,
    /// The log LV (absent for a core log).
    pub log: Option<&'a str>,
}

impl Segment {
    fn other(&self, kind: &str) -> Option<&Section> {
        match &self.kind {
            SegmentKind::Other(s) if s.str("type") == Some(kind) => Some(s),
            _ => None,
        }
    }

    /// The segment as a thin pool.
    pub fn thin_pool(&self) -> Option<ThinPoolSeg<'_>> {
        let s = self.other("thin-pool")?;
        Some(ThinPoolSeg {
            metadata: s.str("metadata")?,
            data: s.str("pool")?,
            transaction_id: u64::try_from(s.int("transaction_id")?).ok()?,
            chunk_size: u64::try_from(s.int("chunk_size")?).ok()?,
            discards: s.str("discards").unwrap_or("passdown"),
            zero_new_blocks: s.int("zero_new_blocks").unwrap_or(1) != 0,
        })
    }

    /// The segment as a thin volume.
    pub fn thin(&self) -> Option<ThinSeg<'_>> {
        let s = self.other("thin")?;
        Some(ThinSeg {
            pool: s.str("thin_pool")?,
            transaction_id: u64::try_from(s.int("transaction_id")?).ok()?,
            device_id: u64::try_from(s.int("device_id")?).ok()?,
            origin: s.str("origin"),
        })
    }

    /// The segment as a mirror.
    pub fn mirror(&self) -> Option<MirrorSeg<'_>> {
        let s = self.other("mirror")?;
        let Some(Node::Value(Value::Array(a))) = s.get("mirrors") else {
            return None;
        };
        let mut images = Vec::new();
        for pair in a.chunks(2) {
            match pair {
                [Value::Str(n), Value::Int(pe)] if *pe >= 0 => {
                    images.push((n.as_str(), *pe as u64))
                }
                _ => return None,
            }
        }
        if images.is_empty() || s.int("mirror_count") != Some(images.len() as i64) {
            return None;
        }
        Some(MirrorSeg {
            images,
            region_size: u64::try_from(s.int("region_size").unwrap_or(1024)).ok()?,
            log: s.str("mirror_log"),
        })
    }
}

/// A volume group.
#[derive(Clone, Debug, PartialEq)]
pub struct Vg {
    /// Name.
    pub name: String,
    /// UUID, dashed.
    pub id: String,
    /// Metadata sequence number.
    pub seqno: u64,
    /// Extent size in sectors.
    pub extent_size: u64,
    /// PVs in order.
    pub pvs: Vec<VgPv>,
    /// LVs in order.
    pub lvs: Vec<Lv>,
    /// The VG section as read.
    pub raw: Section,
}

/// Metadata that parses but is not a VG this code understands.
#[derive(Debug, thiserror::Error)]
pub enum VgError {
    /// Syntax.
    #[error(transparent)]
    Syntax(#[from] config::ParseError),
    /// Missing or wrong field.
    #[error("metadata: {0}")]
    Field(String),
}

fn need<T>(v: Option<T>, what: &str) -> Result<T, VgError> {
    v.ok_or_else(|| VgError::Field(format!("missing or invalid {what}")))
}

fn uint(s: &Section, key: &str, ctx: &str) -> Result<u64, VgError> {
    let v = need(s.int(key), &format!("{ctx} {key}"))?;
    u64::try_from(v).map_err(|_| VgError::Field(format!("{ctx} {key} is negative")))
}

fn parse_segment(s: &Section, ctx: &str) -> Result<Segment, VgError> {
    let start_extent = uint(s, "start_extent", ctx)?;
    let extent_count = uint(s, "extent_count", ctx)?;
    let kind = match s.str("type") {
        Some("striped") => {
            let Some(Node::Value(Value::Array(a))) = s.get("stripes") else {
                return Err(VgError::Field(format!(
                    "{ctx}: striped segment without stripes"
                )));
            };
            let mut stripes = Vec::new();
            for pair in a.chunks(2) {
                match pair {
                    [Value::Str(pv), Value::Int(pe)] if *pe >= 0 => {
                        stripes.push((pv.clone(), *pe as u64))
                    }
                    _ => return Err(VgError::Field(format!("{ctx}: bad stripes list"))),
                }
            }
            if stripes.is_empty() || s.int("stripe_count") != Some(stripes.len() as i64) {
                return Err(VgError::Field(format!(
                    "{ctx}: stripe_count does not match stripes"
                )));
            }
            let stripe_size = s.int("stripe_size").map(|v| v.max(0) as u64);
            SegmentKind::Striped {
                stripe_size,
                stripes,
            }
        }
        Some(_) => SegmentKind::Other(s.clone()),
        None => return Err(VgError::Field(format!("{ctx}: segment without type"))),
    };
    Ok(Segment {
        start_extent,
        extent_count,
        kind,
    })
}

impl Vg {
    /// Reads the VG from metadata text.
    pub fn from_text(text: &str) -> Result<Vg, VgError> {
        let top = config::parse(text)?;
        let (name, vg) = need(top.sections().next(), "volume group section")?;
        let mut pvs = Vec::new();
        for (key, p) in need(vg.section("physical_volumes"), "physical_volumes")?.sections() {
            pvs.push(VgPv {
                key: key.to_owned(),
                id: need(p.str("id"), "PV id")?.to_owned(),
                device: p.str("device").unwrap_or("").to_owned(),
                dev_size: uint(p, "dev_size", key)?,
                pe_start: uint(p, "pe_start", key)?,
                pe_count: uint(p, "pe_count", key)?,
                raw: p.clone(),
            });
        }
        let mut lvs = Vec::new();
        if let Some(l) = vg.section("logical_volumes") {
            for (lname, s) in l.sections() {
                let mut segments = Vec::new();
                for (skey, seg) in s.sections().filter(|(k, _)| k.starts_with("segment")) {
                    segments.push(parse_segment(seg, &format!("{lname} {skey}"))?);
                }
                lvs.push(Lv {
                    name: lname.to_owned(),
                    id: need(s.str("id"), "LV id")?.to_owned(),
                    status: s
                        .strs("status")
                        .unwrap_or_default()
                        .into_iter()
                        .map(str::to_owned)
                        .collect(),
                    segments,
                    raw: s.clone(),
                });
            }
        }
        Ok(Vg {
            name: name.to_owned(),
            id: need(vg.str("id"), "VG id")?.to_owned(),
            seqno: uint(vg, "seqno", "VG")?,
            extent_size: uint(vg, "extent_size", "VG")?,
            pvs,
            lvs,
            raw: vg.clone(),
        })
    }

    /// Writes the VG as metadata text (with the trailer LVM2 writes after the VG).
    pub fn to_text(&self, description: &str, now: u64, host: &str) -> String {
        let mut vg = if self.raw.entries.is_empty() {
            let mut s = Section::default();
            s.push("id", Value::Str(self.id.clone()))
                .push("seqno", Value::Int(0))
                .push("format", Value::Str("lvm2".into()))
                .push("status", strs(&["RESIZEABLE", "READ", "WRITE"]))
                .push("flags", Value::Array(vec![]))
                .push("extent_size", Value::Int(0))
                .push("max_lv", Value::Int(0))
                .push("max_pv", Value::Int(0))
                .push("metadata_copies", Value::Int(0));
            s
        } else {
            self.raw.clone()
        };
        vg.set("id", Node::Value(Value::Str(self.id.clone())));
        vg.set("seqno", Node::Value(Value::Int(self.seqno as i64)));
        vg.set(
            "extent_size",
            Node::Value(Value::Int(self.extent_size as i64)),
        );
        let mut pvs = Section::default();
        for p in &self.pvs {
            let mut s = if p.raw.entries.is_empty() {
                let mut s = Section::default();
                s.push("id", Value::Str(String::new()))
                    .push("device", Value::Str(String::new()))
                    .push("status", strs(&["ALLOCATABLE"]))
                    .push("flags", Value::Array(vec![]))
                    .push("dev_size", Value::Int(0))
                    .push("pe_start", Value::Int(0))
                    .push("pe_count", Value::Int(0));
                s
            } else {
                p.raw.clone()
            };
            s.set("id", Node::Value(Value::Str(p.id.clone())));
            s.set("device", Node::Value(Value::Str(p.device.clone())));
            s.set("dev_size", Node::Value(Value::Int(p.dev_size as i64)));
            s.set("pe_start", Node::Value(Value::Int(p.pe_start as i64)));
            s.set("pe_count", Node::Value(Value::Int(p.pe_count as i64)));
            pvs.entries.push((p.key.clone(), Node::Section(s)));
        }
        vg.set("physical_volumes", Node::Section(pvs));
        if self.lvs.is_empty() {
            vg.remove("logical_volumes");
        } else {
            // Visible LVs first, then hidden ones, each in list order, as LVM2 writes them.
            let mut lvs = Section::default();
            let visible = self.lvs.iter().filter(|l| l.visible());
            for lv in visible.chain(self.lvs.iter().filter(|l| !l.visible())) {
                lvs.entries
                    .push((lv.name.clone(), Node::Section(lv_section(lv, now, host))));
            }
            vg.set("logical_volumes", Node::Section(lvs));
        }
        let mut top = Section::default();
        top.entries.push((self.name.clone(), Node::Section(vg)));
        top.push("contents", Value::Str("Text Format Volume Group".into()))
            .push("version", Value::Int(1))
            .push("description", Value::Str(description.into()))
            .push("creation_host", Value::Str(host.into()))
            .push("creation_time", Value::Int(now as i64));
        config::write(&top)
    }

    /// The LV called `name`.
    pub fn lv(&self, name: &str) -> Option<&Lv> {
        self.lvs.iter().find(|l| l.name == name)
    }

    /// The `snapshotN` record merging into `origin`, if any.
    pub fn merging_into(&self, origin: &str) -> Option<&Lv> {
        self.lvs
            .iter()
            .find(|l| l.merging() && l.snapshot_of().is_some_and(|(o, _, _)| o == origin))
    }

    /// The snapshots of `origin`: (COW LV, chunk size).
    pub fn snapshots_of(&self, origin: &str) -> Vec<(&Lv, u64)> {
        self.lvs
            .iter()
            .filter_map(|l| l.snapshot_of())
            .filter(|(o, _, _)| *o == origin)
            .filter_map(|(_, cow, chunk)| Some((self.lv(cow)?, chunk)))
            .collect()
    }

    /// The LVs a listing shows: with `all` (`-a`) every LV but LVM2's `snapshotN` records,
    /// else [`Vg::user_lvs`].
    pub fn listed_lvs(&self, all: bool) -> Vec<&Lv> {
        if all {
            self.lvs
                .iter()
                .filter(|l| l.snapshot_of().is_none())
                .collect()
        } else {
            self.user_lvs()
        }
    }

    /// The LVs a user sees: visible ones except LVM2's `snapshotN` records, plus the COW
    /// LVs that stand for snapshots.
    pub fn user_lvs(&self) -> Vec<&Lv> {
        let cows: Vec<&str> = self
            .lvs
            .iter()
            .filter_map(|l| l.snapshot_of())
            .map(|s| s.1)
            .collect();
        self.lvs
            .iter()
            .filter(|l| {
                (l.visible() && l.snapshot_of().is_none()) || cows.contains(&l.name.as_str())
            })
            .collect()
    }

    /// The PV with metadata key `key`.
    pub fn pv(&self, key: &str) -> Option<&VgPv> {
        self.pvs.iter().find(|p| p.key == key)
    }

    /// Free extents of each PV as sorted (start, length) runs.
    pub fn free_runs(&self) -> Vec<(String, Vec<(u64, u64)>)> {
        self.pvs
            .iter()
            .map(|p| {
                let mut used: Vec<(u64, u64)> = Vec::new();
                for lv in &self.lvs {
                    for seg in &lv.segments {
                        if let SegmentKind::Striped { stripes, .. } = &seg.kind {
                            let per = seg.extent_count / stripes.len() as u64;
                            for (pv, pe) in stripes {
                                if *pv == p.key {
                                    used.push((*pe, per));
                                }
                            }
                        }
                        // pvmove's mirror segments hold extents on both PVs.
                        if let Some(m) = seg.mirror() {
                            for (pv, pe) in m.images {
                                if pv == p.key {
                                    used.push((pe, seg.extent_count));
                                }
                            }
                        }
                    }
                }
                used.sort();
                let mut free = Vec::new();
                let mut at = 0;
                for (s, n) in used {
                    if s > at {
                        free.push((at, s - at));
                    }
                    at = at.max(s + n);
                }
                if at < p.pe_count {
                    free.push((at, p.pe_count - at));
                }
                (p.key.clone(), free)
            })
            .collect()
    }

    /// Free extents in the VG.
    pub fn free_extents(&self) -> u64 {
        self.free_runs()
            .iter()
            .flat_map(|(_, r)| r.iter().map(|(_, n)| n))
            .sum()
    }
}

fn strs(v: &[&str]) -> Value {
    Value::Array(v.iter().map(|s| Value::Str((*s).into())).collect())
}

fn lv_section(lv: &Lv, now: u64, host: &str) -> Section {
    // A new LV: LVM2's fields in its order, with what the caller set (flags, policy) in
    // place or before the segments.
    let mut s = if lv.raw.get("creation_time").is_none() {
        let mut s = Section::default();
        s.push("id", Value::Str(String::new()))
            .push("status", Value::Array(vec![]))
            .push("flags", Value::Array(vec![]))
            .push("creation_time", Value::Int(now as i64))
            .push("creation_host", Value::Str(host.into()))
            .push("segment_count", Value::Int(0));
        for (k, v) in &lv.raw.entries {
            if s.get(k).is_some() {
                s.set(k, v.clone());
            } else {
                let at = s.entries.len() - 1;
                s.entries.insert(at, (k.clone(), v.clone()));
            }
        }
        s
    } else {
        lv.raw.clone()
    };
    s.entries
        .retain(|(k, _)| !k.starts_with("segment") || k == "segment_count");
    s.set("id", Node::Value(Value::Str(lv.id.clone())));
    s.set(
        "status",
        Node::Value(Value::Array(
            lv.status.iter().map(|v| Value::Str(v.clone())).collect(),
        )),
    );
    s.set(
        "segment_count",
        Node::Value(Value::Int(lv.segments.len() as i64)),
    );
    for (i, seg) in lv.segments.iter().enumerate() {
        let sec = match &seg.kind {
            SegmentKind::Other(raw) => {
                let mut r = raw.clone();
                r.set(
                    "start_extent",
                    Node::Value(Value::Int(seg.start_extent as i64)),
                );
                r.set(
                    "extent_count",
                    Node::Value(Value::Int(seg.extent_count as i64)),
                );
                r
            }
            SegmentKind::Striped {
                stripe_size,
                stripes,
            } => {
                let mut r = Section::default();
                r.push("start_extent", Value::Int(seg.start_extent as i64))
                    .push("extent_count", Value::Int(seg.extent_count as i64))
                    .push("type", Value::Str("striped".into()))
                    .push("stripe_count", Value::Int(stripes.len() as i64));
                if let Some(sz) = stripe_size {
                    r.push("stripe_size", Value::Int(*sz as i64));
                }
                let mut areas = Vec::new();
                for (pv, pe) in stripes {
                    areas.push(Value::Str(pv.clone()));
                    areas.push(Value::Int(*pe as i64));
                }
                r.push("stripes", Value::Array(areas));
                r
            }
        };
        s.entries
            .push((format!("segment{}", i + 1), Node::Section(sec)));
    }
    s
}
