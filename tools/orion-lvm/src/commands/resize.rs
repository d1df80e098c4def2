// SPDX-License-Identifier: GPL-2.0 OR MIT

//! The size arithmetic of `lvextend`, `lvreduce` and `lvresize`: `-L`/`-l` with an
//! optional `+`/`-` turned into a target size in extents, and the command that applies it.

use super::devices::on_system;
use super::lv::resize_lv;
use super::{parse_size, Policy, Scan};
use crate::exit::usage;
use anyhow::{anyhow, bail, Result};

/// Which ways a resize command may go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// `lvextend`: grow only.
    Grow,
    /// `lvreduce`: shrink only.
    Shrink,
    /// `lvresize`: either way.
    Either,
}

/// A size as given to `-L` or `-l`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SizeArg {
    /// `-L`: a size with an optional unit.
    Size(String),
    /// `-l`: a number of extents.
    Extents(String),
}

impl SizeArg {
    /// The one of `-L` and `-l` that was given.
    pub fn from_options(size: Option<String>, extents: Option<String>) -> Result<SizeArg> {
        match (size, extents) {
            (Some(s), None) => Ok(SizeArg::Size(s)),
            (None, Some(e)) => Ok(SizeArg::Extents(e)),
            _ => Err(usage("Please specify either size or extents but not both.")),
        }
    }
}

/// The new size in extents of an LV of `current` extents, for `arg` in a VG with extents
/// of `extent_size` sectors, checked against `dir`.
pub fn target_extents(
    current: u64,
    extent_size: u64,
    arg: &SizeArg,
    dir: Direction,
) -> Result<u64> {
    let (spec, in_extents) = match arg {
        SizeArg::Size(s) => (s.as_str(), false),
        SizeArg::Extents(e) => (e.as_str(), true),
    };
    let (sign, num) = match spec.as_bytes().first() {
        Some(b'+') => (1i8, &spec[1..]),
        Some(b'-') => (-1, &spec[1..]),
        _ => (0, spec),
    };
    let n = if in_extents {
        num.parse::<u64>()
            .map_err(|_| usage(format!("Invalid argument for --extents: {spec}")))?
    } else {
        parse_size(num)
            .map_err(|e| usage(e.to_string()))?
            .div_ceil(extent_size)
    };
    let target = match sign {
        1 => current + n,
        -1 => current
            .checked_sub(n)
            .ok_or_else(|| anyhow!("cannot shrink below zero"))?,
        _ => n,
    };
    if target > current && dir == Direction::Shrink {
        bail!("lvreduce cannot grow an LV; use lvextend");
    }
    if target < current && dir == Direction::Grow {
        bail!("lvextend cannot shrink an LV; use lvreduce");
    }
    Ok(target)
}

/// `VG/LV` split in two.
pub fn split_lv(arg: &str) -> Result<(&str, &str)> {
    match arg.split_once('/') {
        Some((vg, lv)) if !vg.is_empty() && !lv.is_empty() => Ok((vg, lv)),
        _ => Err(usage(format!("give the LV as VG/LV, not {arg:?}"))),
    }
}

/// What a resize changed: the VG's extent size and the old and new extent counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Resized {
    /// Extent size in sectors.
    pub extent_size: u64,
    /// Extents before.
    pub from: u64,
    /// Extents after.
    pub to: u64,
}

/// Resizes `lv` (`VG/LV`) as `arg` and `dir` say.
pub fn resize(
    lv: &str,
    arg: &SizeArg,
    dir: Direction,
    policy: Option<Policy>,
    prefix: &str,
) -> Result<Resized> {
    let (vg, name) = split_lv(lv)?;
    let scan = Scan::run(&[])?;
    let (v, members) = scan.need_vg(vg)?;
    let cur = v
        .lv(name)
        .ok_or_else(|| anyhow!("logical volume {vg}/{name} not found"))?
        .extents();
    let extent_size = v.extent_size;
    let target = target_extents(cur, extent_size, arg, dir)?;
    let (from, to) = on_system(v, &members, prefix, |d, v| {
        resize_lv(d, v, name, target, policy)
    })?;
    Ok(Resized {
        extent_size,
        from,
        to,
    })
}

impl Resized {
    /// The lines LVM2 prints after resizing `lv` (`VG/LV`).
    pub fn message(&self, lv: &str) -> String {
        let mib = |e: u64| format!("{:.2}m", (e * self.extent_size) as f64 / 2048.0);
        format!(
            "  Size of logical volume {lv} changed from {} ({} extents) to {} ({} extents).\n  Logical volume {lv} successfully resized.",
            mib(self.from),
            self.from,
            mib(self.to),
            self.to
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exit::{code, INVALID_CMD_LINE};

    const EXT: u64 = 8192; // 4 MiB

    #[test]
    fn absolute_relative_and_extent_sizes() {
        let t = |a: SizeArg, d| target_extents(10, EXT, &a, d).unwrap();
        assert_eq!(t(SizeArg::Size("80m".into()), Direction::Either), 20);
        assert_eq!(t(SizeArg::Size("+8m".into()), Direction::Grow), 12);
        assert_eq!(t(SizeArg::Size("-8m".into()), Direction::Shrink), 8);
        // Sizes round up to whole extents.
        assert_eq!(t(SizeArg::Size("+1m".into()), Direction::Grow), 11);
        assert_eq!(t(SizeArg::Extents("+3".into()), Direction::Grow), 13);
        assert_eq!(t(SizeArg::Extents("-3".into()), Direction::Either), 7);
        assert_eq!(t(SizeArg::Extents("4".into()), Direction::Either), 4);
    }

    #[test]
    fn direction_is_enforced() {
        let grow = SizeArg::Extents("+1".into());
        let shrink = SizeArg::Extents("-1".into());
        assert!(target_extents(10, EXT, &grow, Direction::Shrink).is_err());
        assert!(target_extents(10, EXT, &shrink, Direction::Grow).is_err());
        assert!(
            target_extents(10, EXT, &SizeArg::Extents("-11".into()), Direction::Either).is_err()
        );
    }

    #[test]
    fn malformed_sizes_are_usage_errors() {
        let e =
            target_extents(10, EXT, &SizeArg::Extents("x".into()), Direction::Either).unwrap_err();
        assert_eq!(code(&e), INVALID_CMD_LINE);
        let e = SizeArg::from_options(Some("1m".into()), Some("1".into())).unwrap_err();
        assert_eq!(code(&e), INVALID_CMD_LINE);
        assert_eq!(code(&split_lv("vg").unwrap_err()), INVALID_CMD_LINE);
        assert_eq!(split_lv("vg/lv").unwrap(), ("vg", "lv"));
    }

    #[test]
    fn resize_message_as_lvm2s() {
        let r = Resized {
            extent_size: EXT,
            from: 5,
            to: 6,
        };
        assert_eq!(
            r.message("vg/lv"),
            "  Size of logical volume vg/lv changed from 20.00m (5 extents) to 24.00m (6 extents).\n  Logical volume vg/lv successfully resized."
        );
    }
}
