// SPDX-License-Identifier: GPL-2.0 OR MIT

//! `lvcreate`: which kind of LV the options ask for (LVM2's type inference) and the
//! creation itself.

use super::{
    lvcreate, lvcreate_mirror, lvcreate_pool, lvcreate_snapshot, lvcreate_thin,
    lvcreate_thin_snapshot, parse_size, LvRequest, Policy, PoolRequest, Scan,
};
use crate::exit::usage;
use anyhow::Result;

/// The options of `lvcreate`, as given (the clap definition `orion-lvm lvcreate` parses).
#[derive(clap::Args, Clone, Debug, Default)]
pub struct LvcreateArgs {
    /// Size (k, m, g, t, s; MiB when no unit).
    #[arg(short = 'L', long = "size")]
    pub size: Option<String>,
    /// Size in extents.
    #[arg(short = 'l', long = "extents")]
    pub extents: Option<u64>,
    /// Name.
    #[arg(short = 'n', long = "name")]
    pub name: String,
    /// Segment type: linear, striped, mirror, thin-pool, thin, snapshot.
    #[arg(long = "type")]
    pub seg_type: Option<String>,
    /// Stripes.
    #[arg(short = 'i', long = "stripes", default_value_t = 1)]
    pub stripes: u64,
    /// Stripe size (default 64 KiB).
    #[arg(short = 'I', long = "stripesize", default_value = "64k")]
    pub stripe_size: String,
    /// Mirrors: copies besides the original (a mirror with a core log).
    #[arg(short = 'm', long = "mirrors")]
    pub mirrors: Option<u64>,
    /// Mirror log: `core` or `disk`.
    #[arg(long = "mirrorlog", default_value = "core")]
    pub mirror_log: String,
    /// Make a snapshot of the LV named as VG/ORIGIN (a thin snapshot when ORIGIN is a
    /// thin volume and no size is given).
    #[arg(short = 's', long = "snapshot")]
    pub snapshot: bool,
    /// Virtual size of a thin volume.
    #[arg(short = 'V', long = "virtualsize")]
    pub virtual_size: Option<String>,
    /// Thin: with -V, a thin volume in the pool named as VG/POOL; with -L, a new pool.
    #[arg(short = 'T', long = "thin")]
    pub thin: bool,
    /// The pool of a new thin volume, or the name of a new pool.
    #[arg(long = "thinpool")]
    pub thin_pool: Option<String>,
    /// Thin pool chunk size (default by LVM2's generic policy).
    #[arg(short = 'c', long = "chunksize")]
    pub chunk_size: Option<String>,
    /// Thin pool metadata size (default estimated from the data size).
    #[arg(long = "poolmetadatasize")]
    pub pool_metadata_size: Option<String>,
    /// Zero new thin pool blocks (`y`, the default, or `n`).
    #[arg(short = 'Z', long = "zero", default_value = "y")]
    pub zero: String,
    /// Thin pool discards: passdown, nopassdown or ignore.
    #[arg(long = "discards", default_value = "passdown")]
    pub discards: String,
    /// Activate the new LV (`y`, the default) or only write metadata (`n`).
    #[arg(short = 'a', long = "activate", default_value = "y")]
    pub activate: String,
    /// Allocation policy: contiguous, cling, normal, anywhere, inherit.
    #[arg(long = "alloc")]
    pub alloc: Option<String>,
    /// VG name (VG/ORIGIN with -s, VG/POOL with -T).
    pub vg: String,
}

/// The kind of LV `lvcreate` makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LvKind {
    /// Linear or striped.
    Striped,
    /// A mirror.
    Mirror,
    /// A thin pool.
    ThinPool,
    /// A thin volume.
    Thin,
    /// A snapshot (old-style, or thin when the origin is thin and no size is given).
    Snapshot,
}

/// `y`/`ay` or `n`/`an`, as `-a` and `-Z` take them.
pub fn yes_no(a: &str) -> Result<bool> {
    match a {
        "y" | "ay" => Ok(true),
        "n" | "an" => Ok(false),
        _ => Err(usage(format!("expected y or n, not {a:?}"))),
    }
}

impl LvcreateArgs {
    /// The kind of LV asked for: `--type` when given, else what the other options imply,
    /// in LVM2's order (`-s`, `-V`, `-T`/`--thinpool`, `-m`, else linear or striped).
    pub fn kind(&self) -> Result<LvKind> {
        if let Some(t) = &self.seg_type {
            return Ok(match t.as_str() {
                "linear" | "striped" => LvKind::Striped,
                "mirror" => LvKind::Mirror,
                "thin-pool" => LvKind::ThinPool,
                "thin" => LvKind::Thin,
                "snapshot" => LvKind::Snapshot,
                other => return Err(usage(format!("segment type {other} is not supported"))),
            });
        }
        Ok(if self.snapshot {
            LvKind::Snapshot
        } else if self.virtual_size.is_some() {
            LvKind::Thin
        } else if self.thin || self.thin_pool.is_some() {
            LvKind::ThinPool
        } else if self.mirrors.is_some_and(|m| m > 0) {
            LvKind::Mirror
        } else {
            LvKind::Striped
        })
    }

    /// The VG and the LV named after it (`VG/LV`), if any.
    pub fn target(&self) -> (&str, Option<&str>) {
        match self.vg.split_once('/') {
            Some((v, l)) => (v, Some(l)),
            None => (&self.vg, None),
        }
    }

    /// `-L`/`-l` in extents of `extent_size` sectors; `None` when neither was given.
    pub fn physical_extents(&self, extent_size: u64) -> Result<Option<u64>> {
        Ok(match (&self.size, self.extents) {
            (Some(s), None) => Some(
                parse_size(s)
                    .map_err(|e| usage(e.to_string()))?
                    .div_ceil(extent_size),
            ),
            (None, Some(e)) => Some(e),
            (None, None) => None,
            _ => return Err(usage("Please specify either size or extents but not both.")),
        })
    }

    /// Extents of a linear or striped LV: rounded up to a multiple of the stripe count,
    /// as LVM2 does.
    pub fn striped_extents(&self, extents: u64) -> u64 {
        let n = self.stripes.max(1);
        extents.div_ceil(n) * n
    }

    /// The stripe size in sectors, checked as LVM2 checks it.
    pub fn stripe_sectors(&self) -> Result<u64> {
        let ss = parse_size(&self.stripe_size).map_err(|e| usage(e.to_string()))?;
        if self.stripes > 1 && (!ss.is_power_of_two() || ss < 8) {
            return Err(usage(
                "stripe size must be a power of two of at least 4 KiB",
            ));
        }
        Ok(ss)
    }
}

/// Runs `lvcreate`; returns the message LVM2 prints on success.
pub fn run(a: &LvcreateArgs, prefix: &str) -> Result<String> {
    let policy = a.alloc.as_deref().map(Policy::parse).transpose()?.flatten();
    let on = yes_no(&a.activate)?;
    let kind = a.kind()?;
    let (vg_name, lv_arg) = a.target();
    let scan = Scan::run(&[])?;
    let (v, _) = scan.need_vg(vg_name)?;
    let physical = a.physical_extents(v.extent_size)?;
    let name = a.name.as_str();
    match kind {
        LvKind::Snapshot => {
            let origin = lv_arg.ok_or_else(|| usage("give the origin as VG/LV"))?;
            let is_thin = v.lv(origin).is_some_and(|o| o.thin().is_some());
            match physical {
                None if is_thin => {
                    lvcreate_thin_snapshot(vg_name, origin, name, prefix)?;
                }
                None => return Err(usage("a snapshot of a non-thin LV needs a size (-L or -l)")),
                Some(e) => {
                    lvcreate_snapshot(vg_name, origin, name, e, on, prefix)?;
                }
            }
        }
        LvKind::Thin => {
            let pool = a
                .thin_pool
                .as_deref()
                .or(lv_arg)
                .ok_or_else(|| usage("give the pool as VG/POOL or --thinpool"))?;
            let vsize = a
                .virtual_size
                .as_deref()
                .ok_or_else(|| usage("a thin volume needs -V"))?;
            let ext = parse_size(vsize)
                .map_err(|e| usage(e.to_string()))?
                .div_ceil(v.extent_size);
            lvcreate_thin(vg_name, pool, name, ext, on, prefix)?;
        }
        LvKind::ThinPool => {
            let pool_name = a.thin_pool.as_deref().or(lv_arg).unwrap_or(name);
            let ext = physical.ok_or_else(|| usage("a thin pool needs -L or -l"))?;
            let chunk = a.chunk_size.as_deref().map(parse_size).transpose()?;
            let meta = a
                .pool_metadata_size
                .as_deref()
                .map(parse_size)
                .transpose()?;
            lvcreate_pool(
                vg_name,
                &PoolRequest {
                    name: pool_name,
                    extents: ext,
                    chunk_size: chunk,
                    metadata_size: meta,
                    zero: yes_no(&a.zero)?,
                    discards: &a.discards,
                },
                on,
                prefix,
            )?;
            return Ok(format!("  Thin pool volume \"{pool_name}\" created."));
        }
        LvKind::Mirror => {
            let disk_log = match a.mirror_log.as_str() {
                "core" => false,
                "disk" => true,
                other => {
                    return Err(usage(format!(
                        "--mirrorlog {other} is not supported (core or disk)"
                    )))
                }
            };
            let ext = physical.ok_or_else(|| usage("a mirror needs -L or -l"))?;
            let copies = a.mirrors.unwrap_or(1) + 1;
            lvcreate_mirror(vg_name, name, ext, copies, disk_log, on, prefix)?;
        }
        LvKind::Striped => {
            let ext = a.striped_extents(physical.ok_or_else(|| usage("give -L or -l"))?);
            let ss = a.stripe_sectors()?;
            lvcreate(
                vg_name,
                &LvRequest {
                    name,
                    extents: ext,
                    stripes: a.stripes,
                    stripe_size: ss,
                },
                policy,
                on,
                prefix,
            )?;
        }
    }
    Ok(format!("  Logical volume \"{name}\" created."))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> LvcreateArgs {
        LvcreateArgs {
            name: "lv".into(),
            stripes: 1,
            stripe_size: "64k".into(),
            mirror_log: "core".into(),
            zero: "y".into(),
            discards: "passdown".into(),
            activate: "y".into(),
            vg: "vg".into(),
            ..LvcreateArgs::default()
        }
    }

    #[test]
    fn type_inference_follows_lvm2s_order() {
        let mut a = args();
        assert_eq!(a.kind().unwrap(), LvKind::Striped);
        a.mirrors = Some(1);
        assert_eq!(a.kind().unwrap(), LvKind::Mirror);
        a.mirrors = Some(0);
        assert_eq!(a.kind().unwrap(), LvKind::Striped, "-m 0 is not a mirror");
        a.thin = true;
        assert_eq!(a.kind().unwrap(), LvKind::ThinPool);
        a.virtual_size = Some("1g".into());
        assert_eq!(
            a.kind().unwrap(),
            LvKind::Thin,
            "-V with -T is a thin volume"
        );
        a.snapshot = true;
        assert_eq!(a.kind().unwrap(), LvKind::Snapshot);
        a.seg_type = Some("mirror".into());
        assert_eq!(a.kind().unwrap(), LvKind::Mirror, "--type wins");
        a.seg_type = Some("raid5".into());
        assert_eq!(crate::exit::code(&a.kind().unwrap_err()), 3);
        let mut b = args();
        b.thin_pool = Some("pool".into());
        assert_eq!(b.kind().unwrap(), LvKind::ThinPool);
    }

    #[test]
    fn sizes_and_targets() {
        let mut a = args();
        a.size = Some("10m".into());
        assert_eq!(a.physical_extents(8192).unwrap(), Some(3));
        a.extents = Some(4);
        assert!(a.physical_extents(8192).is_err());
        a.size = None;
        assert_eq!(a.physical_extents(8192).unwrap(), Some(4));
        a.stripes = 3;
        assert_eq!(a.striped_extents(4), 6);
        assert_eq!(a.stripe_sectors().unwrap(), 128);
        a.stripe_size = "3k".into();
        assert!(a.stripe_sectors().is_err());
        a.vg = "vg/origin".into();
        assert_eq!(a.target(), ("vg", Some("origin")));
        assert!(yes_no("ay").unwrap() && !yes_no("n").unwrap() && yes_no("x").is_err());
    }
}
