// SPDX-License-Identifier: GPL-2.0 OR MIT

//! Sizes as LVM2 prints them (`--units`, `--nosuffix`): human-readable with a `<` when
//! two decimals round a size up (`r`, the default), plain human-readable (`h`, `H`), or a
//! fixed unit (lower case powers of 1024, upper case powers of 1000; bytes and sectors
//! without decimals).

use crate::exit::usage;
use anyhow::Result;

/// How sizes are shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Units {
    /// The largest unit under the size; `si` for powers of 1000; `rounding` marks sizes
    /// that two decimals round up with `<`.
    Human {
        /// Powers of 1000 (`H`, `R`).
        si: bool,
        /// `r`/`R`.
        rounding: bool,
    },
    /// One unit: bytes per unit and the suffix character.
    Fixed {
        /// Bytes in one unit.
        factor: u64,
        /// Suffix.
        suffix: char,
    },
}

impl Default for Units {
    fn default() -> Self {
        Units::Human {
            si: false,
            rounding: true,
        }
    }
}

impl Units {
    /// Parses `--units` (one of `hHrRbBsSkKmMgGtTpPeE`).
    pub fn parse(s: &str) -> Result<Units> {
        let mut chars = s.chars();
        let (Some(c), None) = (chars.next(), chars.next()) else {
            return Err(usage(format!("Invalid argument for --units: {s}")));
        };
        let pow = |base: u64, n: u32| base.pow(n);
        Ok(match c {
            'h' | 'H' | 'r' | 'R' => Units::Human {
                si: c.is_ascii_uppercase(),
                rounding: c.eq_ignore_ascii_case(&'r'),
            },
            'b' | 'B' => Units::Fixed {
                factor: 1,
                suffix: 'B',
            },
            's' | 'S' => Units::Fixed {
                factor: 512,
                suffix: 'S',
            },
            'k' | 'm' | 'g' | 't' | 'p' | 'e' => Units::Fixed {
                factor: pow(1024, "kmgtpe".find(c).unwrap_or(0) as u32 + 1),
                suffix: c,
            },
            'K' | 'M' | 'G' | 'T' | 'P' | 'E' => Units::Fixed {
                factor: pow(1000, "KMGTPE".find(c).unwrap_or(0) as u32 + 1),
                suffix: c,
            },
            _ => return Err(usage(format!("Invalid argument for --units: {s}"))),
        })
    }

    /// `sectors` as LVM2 prints it in these units, with the unit suffix unless
    /// `nosuffix`.
    pub fn format(self, sectors: u64, nosuffix: bool) -> String {
        let bytes = sectors as f64 * 512.0;
        match self {
            Units::Human { si, rounding } => {
                if sectors == 0 {
                    return if nosuffix { "0".into() } else { "0 ".into() };
                }
                let base: u64 = if si { 1000 } else { 1024 };
                let chars = if si { "EPTGMK" } else { "eptgmk" };
                let b = sectors as u128 * 512;
                let mut unit = (base as u128).pow(6);
                let mut s = 0;
                while s < 6 && b < unit {
                    unit /= base as u128;
                    s += 1;
                }
                let suffix = chars.chars().nth(s).unwrap_or('B');
                let v = b as f64 / unit as f64;
                let mut prefix = "";
                if s < 6 && rounding {
                    let d = 100.0 * v;
                    if (d.floor() - d.round()).abs() >= f64::EPSILON {
                        prefix = "<";
                    }
                }
                if s == 6 {
                    format!("{prefix}{b}{}", if nosuffix { "" } else { "B" })
                } else if nosuffix {
                    format!("{prefix}{v:.2}")
                } else {
                    format!("{prefix}{v:.2}{suffix}")
                }
            }
            Units::Fixed { factor, suffix } => {
                let sfx = if nosuffix {
                    String::new()
                } else {
                    suffix.to_string()
                };
                if sectors == 0 {
                    return format!("0{sfx}");
                }
                let v = bytes / factor as f64;
                if suffix == 'B' || suffix == 'S' {
                    format!("{v:.0}{sfx}")
                } else {
                    format!("{v:.2}{sfx}")
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_sizes_as_lvm2_prints_them() {
        let r = Units::default();
        assert_eq!(r.format(40960, false), "20.00m");
        assert_eq!(r.format(0, false), "0 ");
        assert_eq!(r.format(0, true), "0");
        // 2043 MiB is a little under 2 GiB: LVM2 prints <2.00g.
        assert_eq!(r.format(2043 * 2048, false), "<2.00g");
        let h = Units::parse("h").unwrap();
        assert_eq!(h.format(2043 * 2048, false), "2.00g");
        let si = Units::parse("H").unwrap();
        assert_eq!(si.format(188416, false), "96.47M");
    }

    #[test]
    fn fixed_units() {
        assert_eq!(Units::parse("s").unwrap().format(163840, false), "163840S");
        assert_eq!(Units::parse("b").unwrap().format(2, true), "1024");
        assert_eq!(
            Units::parse("k").unwrap().format(376832, false),
            "188416.00k"
        );
        assert_eq!(Units::parse("g").unwrap().format(188416, true), "0.09");
        assert_eq!(Units::parse("m").unwrap().format(0, false), "0m");
        assert!(Units::parse("x").is_err() && Units::parse("mm").is_err());
    }
}
