// SPDX-License-Identifier: GPL-2.0 OR MIT

//! The arithmetic of LVM2's autoextension, as dmeventd's thin and snapshot plugins and
//! `lvextend --use-policies` (LVM2 2.03.16) do it, with no I/O:
//!
//! - usage is a `dm_percent_t`: millionths of a percent, truncated, never 0% or 100%
//!   unless exactly empty or full ([`dm_percent`]);
//! - the plugin asks for the policy only when usage rose past the next 5% step above 50%
//!   since it last looked (strictly for thin pools, `>=` for snapshots), and starts over
//!   at 50% whenever the device's size changes ([`Watermark`]);
//! - the policy extends only above `*_autoextend_threshold` (below 50 counts as 50; 100
//!   turns it off), by `*_autoextend_percent` of the LV or by the smallest whole percent
//!   that brings usage back to the threshold if that is more ([`adjust_amount`]);
//! - a thin pool's metadata is checked first, against the threshold or the level where
//!   less than 4 MiB (at most 25%) stays free, whichever is lower; an amount its
//!   metadata needs also applies to the data ([`thin_plan`]);
//! - `+N%` of an LV is `ceil(extents * N / 100)` more extents; a snapshot grows at most
//!   to what a full copy of its origin needs ([`cow_max_extents`]).

use crate::lvmconf::Activation;

/// `DM_PERCENT_1`: one percent in `dm_percent_t` units.
pub const PERCENT_1: i64 = 1_000_000;
/// `DM_PERCENT_100`.
pub const PERCENT_100: i64 = 100 * PERCENT_1;
/// The plugins' first check and step.
const CHECK_MINIMUM: i64 = 50 * PERCENT_1;
const CHECK_STEP: i64 = 5 * PERCENT_1;
/// The plugins warn (once) above this.
pub const WARNING: i64 = 80 * PERCENT_1;

/// libdevmapper's `dm_make_percent`: `num/den` in [`PERCENT_1`] units, truncated, where
/// only an empty device is 0% and only a full one 100%.
pub fn dm_percent(num: u64, den: u64) -> i64 {
    if den == 0 {
        return PERCENT_100;
    }
    if num == 0 {
        return 0;
    }
    if num == den {
        return PERCENT_100;
    }
    let p = (PERCENT_100 as f64 * (num as f64 / den as f64)) as i64;
    p.clamp(1, PERCENT_100 - 1)
}

/// A percentage for log lines (`81.25`).
pub fn show(p: i64) -> String {
    format!("{:.2}", p as f64 / PERCENT_1 as f64)
}

/// One usage counter as a dmeventd plugin tracks it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Watermark {
    check: i64,
    known_size: u64,
    warned: bool,
}

impl Default for Watermark {
    fn default() -> Self {
        Watermark {
            check: CHECK_MINIMUM,
            known_size: 0,
            warned: false,
        }
    }
}

/// How a plugin compares usage with its next check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trigger {
    /// The thin plugin: above the check (which never reaches 100%).
    Above,
    /// The snapshot plugin: at or above it.
    AtOrAbove,
}

/// What one observation of a counter asks for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Observed {
    /// Run the policy.
    pub policy: bool,
    /// Usage went above 80% since the last warning.
    pub warn: bool,
}

impl Watermark {
    /// Records usage `percent` of a device whose size is `size` (any unit).
    pub fn observe(&mut self, percent: i64, size: u64, trigger: Trigger) -> Observed {
        if self.known_size != size {
            self.known_size = size;
            self.check = CHECK_MINIMUM;
        }
        let mut out = Observed::default();
        match trigger {
            Trigger::Above => {
                if percent <= WARNING {
                    self.warned = false;
                } else if !self.warned {
                    self.warned = true;
                    out.warn = true;
                }
                if percent > CHECK_MINIMUM {
                    out.policy = percent > self.check;
                    self.check = (percent / CHECK_STEP + 1) * CHECK_STEP;
                    if self.check == PERCENT_100 {
                        self.check -= 1;
                    }
                } else {
                    self.check = CHECK_MINIMUM;
                }
            }
            Trigger::AtOrAbove => {
                if percent >= self.check {
                    out.policy = true;
                    out.warn = percent >= WARNING;
                    self.check = (percent / CHECK_STEP) * CHECK_STEP + CHECK_STEP;
                }
            }
        }
        out
    }
}

/// `_adjust_amount`: the percent to extend by when usage `percent` is above `threshold`
/// (whole percent): `amount`, or the least whole percent that brings usage to the
/// threshold when that is more. `None` when usage is not above the threshold.
pub fn adjust_amount(percent: i64, threshold: u32, amount: u32) -> Option<u32> {
    let t = i64::from(threshold.max(1));
    if !(percent > 0 && percent <= PERCENT_100) || percent <= t * PERCENT_1 {
        return None;
    }
    // ceil(percent / threshold * 100) - 100, in whole percent.
    let needed = (percent / t + (PERCENT_1 - 1) / 100) / (PERCENT_1 / 100) - 100;
    Some(amount.max(needed.max(0) as u32))
}

/// `+amount%` of an LV of `extents` extents: the new extent count.
pub fn grown(extents: u64, amount: u32) -> u64 {
    extents + (extents * u64::from(amount)).div_ceil(100)
}

/// Why a policy refuses to act.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// The threshold is below 100 and the percent 0 (LVM2's error).
    #[error("Can't extend {0} with {1} autoextend percent set to 0%.")]
    ZeroPercent(String, &'static str),
}

/// A thin pool's autoextension: metadata growth in sectors and data growth in percent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ThinPlan {
    /// Sectors to add to the metadata LV (before rounding to extents).
    pub metadata_sectors: Option<u64>,
    /// Percent to add to the pool's data.
    pub data_percent: Option<u32>,
}

/// The least share of a pool's metadata that must stay free: 4 MiB, at most 25%
/// (`pool_metadata_min_threshold`), as a whole-percent usage threshold.
pub fn metadata_min_threshold(metadata_sectors: u64) -> u32 {
    let free = dm_percent(4 << 11, metadata_sectors).min(25 * PERCENT_1);
    ((PERCENT_100 - free) / PERCENT_1) as u32
}

/// The threshold LVM2 uses: below 50 counts as 50.
fn effective(threshold: u32) -> u32 {
    threshold.max(50)
}

/// `lvextend --use-policies` of a thin pool with data usage `data` and metadata usage
/// `meta` (dm percents) and a metadata LV of `metadata_sectors`; `name` for errors.
pub fn thin_plan(
    cfg: &Activation,
    name: &str,
    data: i64,
    meta: i64,
    metadata_sectors: u64,
) -> Result<ThinPlan, PolicyError> {
    let threshold = effective(cfg.thin_threshold);
    if threshold >= 100 {
        return Ok(ThinPlan::default());
    }
    if cfg.thin_percent == 0 {
        return Err(PolicyError::ZeroPercent(name.to_owned(), "thin-pool"));
    }
    let mut amount = cfg.thin_percent;
    let mut plan = ThinPlan::default();
    let meta_threshold = metadata_min_threshold(metadata_sectors).min(threshold);
    if let Some(a) = adjust_amount(meta, meta_threshold, amount) {
        amount = a;
        plan.metadata_sectors = Some((metadata_sectors * u64::from(amount)).div_ceil(100));
    }
    plan.data_percent = adjust_amount(data, threshold, amount);
    Ok(plan)
}

/// `lvextend --use-policies` of a snapshot whose COW usage is `usage`: percent to add.
pub fn snapshot_plan(cfg: &Activation, name: &str, usage: i64) -> Result<Option<u32>, PolicyError> {
    let threshold = effective(cfg.snapshot_threshold);
    if threshold >= 100 {
        return Ok(None);
    }
    if cfg.snapshot_percent == 0 {
        return Err(PolicyError::ZeroPercent(name.to_owned(), "snapshot"));
    }
    Ok(adjust_amount(usage, threshold, cfg.snapshot_percent))
}

/// The most extents a snapshot of an origin of `origin_sectors` with `chunk`-sector
/// chunks can use: a header chunk, every origin chunk copied, and the exception-table
/// chunks (16 bytes an exception) that map them, plus the table chunk a full store
/// starts; rounded up to `extent_size`.
pub fn cow_max_extents(origin_sectors: u64, chunk: u64, extent_size: u64) -> u64 {
    let chunk = chunk.max(1);
    let data = origin_sectors.div_ceil(chunk);
    let per_table = (chunk * 512 / 16).max(1);
    let tables = data / per_table + 1;
    ((1 + tables + data) * chunk).div_ceil(extent_size)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(t: u32, p: u32) -> Activation {
        Activation {
            thin_threshold: t,
            thin_percent: p,
            snapshot_threshold: t,
            snapshot_percent: p,
            ..Activation::default()
        }
    }

    #[test]
    fn percents_as_libdevmapper() {
        assert_eq!(dm_percent(0, 10), 0);
        assert_eq!(dm_percent(10, 10), PERCENT_100);
        assert_eq!(dm_percent(1, 3), 33_333_333);
        // Never rounds to 100% or 0% when neither full nor empty.
        assert_eq!(dm_percent(999_999_999, 1_000_000_000), PERCENT_100 - 1);
        assert_eq!(dm_percent(1, u64::MAX), 1);
        assert_eq!(show(dm_percent(13, 16)), "81.25");
    }

    #[test]
    fn amounts_bring_usage_back_to_the_threshold() {
        // At or below the threshold: nothing.
        assert_eq!(adjust_amount(70 * PERCENT_1, 70, 20), None);
        assert_eq!(adjust_amount(0, 70, 20), None);
        // Slightly above: the configured amount.
        assert_eq!(adjust_amount(71 * PERCENT_1, 70, 20), Some(20));
        // 85% needs 85/70 = 1.2143: 22%.
        assert_eq!(adjust_amount(85 * PERCENT_1, 70, 20), Some(22));
        // Full at 50%: double.
        assert_eq!(adjust_amount(PERCENT_100, 50, 10), Some(100));
        // The amount found always gets usage to the threshold or below.
        for t in [50u32, 60, 75, 80, 95] {
            for used in (t as i64 * PERCENT_1 + 1..=PERCENT_100).step_by(777_777) {
                let a = adjust_amount(used, t, 1).unwrap();
                let after = used as f64 / (1.0 + a as f64 / 100.0);
                assert!(
                    after <= (t as i64 * PERCENT_1) as f64 + 1.0,
                    "{used} {t} {a}"
                );
                let less = used as f64 / (1.0 + (a - 1) as f64 / 100.0);
                assert!(
                    a == 1 || less > (t as i64 * PERCENT_1) as f64,
                    "{used} {t} {a} not minimal"
                );
            }
        }
    }

    #[test]
    fn growth_rounds_up_to_extents() {
        assert_eq!(grown(16, 20), 20); // 3.2 extents -> 4
        assert_eq!(grown(10, 20), 12);
        assert_eq!(grown(1, 1), 2);
        assert_eq!(grown(100, 22), 122);
    }

    #[test]
    fn thin_policy_checks_metadata_first() {
        let c = cfg(70, 20);
        let meta = 8192; // 4 MiB: metadata must keep 25% free
        let p = thin_plan(&c, "vg/pool", 85 * PERCENT_1, 10 * PERCENT_1, meta).unwrap();
        assert_eq!(
            p,
            ThinPlan {
                metadata_sectors: None,
                data_percent: Some(22)
            }
        );
        // Metadata above the threshold: it grows, and the data by at least as much.
        let p = thin_plan(&c, "vg/pool", 71 * PERCENT_1, 90 * PERCENT_1, meta).unwrap();
        // 90/70 needs 29%: ceil(8192 * 29 / 100) sectors.
        assert_eq!(p.metadata_sectors, Some(2376));
        assert_eq!(p.data_percent, Some(29));
        // Metadata alone.
        let p = thin_plan(&c, "vg/pool", 10 * PERCENT_1, 80 * PERCENT_1, meta).unwrap();
        assert_eq!(p.data_percent, None);
        // 80/70 needs 15%, less than 20%: ceil(8192 * 20 / 100).
        assert_eq!(p.metadata_sectors, Some(1639));
        // Threshold 100: off; below 50: 50.
        assert_eq!(
            thin_plan(&cfg(100, 20), "x", PERCENT_100, PERCENT_100, meta).unwrap(),
            ThinPlan::default()
        );
        assert_eq!(
            thin_plan(&cfg(10, 20), "x", 55 * PERCENT_1, 1, meta)
                .unwrap()
                .data_percent,
            Some(20)
        );
        assert!(thin_plan(&cfg(80, 0), "x", 90 * PERCENT_1, 1, meta).is_err());
    }

    #[test]
    fn metadata_thresholds() {
        assert_eq!(metadata_min_threshold(8192), 75);
        assert_eq!(metadata_min_threshold(16384), 75);
        assert_eq!(metadata_min_threshold(65536), 87); // 12.5% free
        assert_eq!(metadata_min_threshold(2 << 21), 99); // 1 GiB: 0.39% free
    }

    #[test]
    fn thin_plugin_steps() {
        let mut w = Watermark::default();
        let t = Trigger::Above;
        assert!(!w.observe(40 * PERCENT_1, 100, t).policy, "below 50%");
        assert!(w.observe(51 * PERCENT_1, 100, t).policy, "past 50%");
        assert!(
            !w.observe(54 * PERCENT_1, 100, t).policy,
            "within the same 5% step"
        );
        assert!(w.observe(55 * PERCENT_1 + 1, 100, t).policy, "past 55%");
        let o = w.observe(81 * PERCENT_1, 100, t);
        assert!(o.policy && o.warn);
        assert!(!w.observe(84 * PERCENT_1, 100, t).warn, "warned once");
        // A new size starts over at 50%.
        assert!(w.observe(60 * PERCENT_1, 120, t).policy);
        // The check never reaches 100%: a full pool keeps asking once per rise.
        let mut w = Watermark::default();
        assert!(w.observe(PERCENT_100 - 5, 1, t).policy);
        assert!(w.observe(PERCENT_100, 1, t).policy);
    }

    #[test]
    fn snapshot_plugin_steps() {
        let mut w = Watermark::default();
        let t = Trigger::AtOrAbove;
        assert!(!w.observe(49 * PERCENT_1, 8, t).policy);
        assert!(w.observe(50 * PERCENT_1, 8, t).policy, "at 50%");
        assert!(!w.observe(54 * PERCENT_1, 8, t).policy);
        assert!(w.observe(55 * PERCENT_1, 8, t).policy, "at 55%");
        assert!(w.observe(85 * PERCENT_1, 8, t).warn);
    }

    #[test]
    fn snapshot_policy_and_cap() {
        assert_eq!(
            snapshot_plan(&cfg(70, 20), "s", 75 * PERCENT_1).unwrap(),
            Some(20)
        );
        assert_eq!(
            snapshot_plan(&cfg(70, 20), "s", 69 * PERCENT_1).unwrap(),
            None
        );
        assert_eq!(
            snapshot_plan(&cfg(100, 20), "s", PERCENT_100).unwrap(),
            None
        );
        // 64 MiB origin, 4 KiB chunks: 16384 data chunks, 256 exceptions a table chunk:
        // 1 + 65 + 16384 chunks = 65.8 MiB, 17 extents of 4 MiB.
        assert_eq!(cow_max_extents(131072, 8, 8192), 17);
    }
}
