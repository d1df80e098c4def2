// SPDX-License-Identifier: GPL-2.0 OR MIT

//! What `lvs` reports of an LV: LVM2's attribute string, activity, and health and space
//! read from the kernel's status lines (thin pool data and metadata use, thin volume
//! use, mirror copy progress, snapshot use).

use crate::dm::activate::{activation_skipped, dm_name};
use crate::dm::backend::DmBackend;
use crate::dm::ioctl::{DevId, DevInfo, SUSPEND};
use crate::dm::mirror::is_pvmove;
use crate::dm::thin;
use crate::vg::{Lv, Vg};

/// One LV's report.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LvReport {
    /// LVM2's ten-character `lv_attr`.
    pub attr: String,
    /// The LV's own dm device, when active.
    pub device: Option<DevInfo>,
    /// Data use in percent (thin pools, thin volumes, snapshots).
    pub data_percent: Option<f64>,
    /// Metadata use in percent (thin pools).
    pub metadata_percent: Option<f64>,
    /// Copy progress in percent (mirrors, pvmove).
    pub copy_percent: Option<f64>,
    /// LVM2's `lv_health_status`: empty when healthy.
    pub health: String,
}

fn ratio(s: &str) -> Option<f64> {
    let (a, b) = s.split_once('/')?;
    let (a, b): (f64, f64) = (a.parse().ok()?, b.parse().ok()?);
    (b > 0.0).then(|| 100.0 * a / b)
}

fn status_line(ctl: &dyn DmBackend, name: &str) -> Option<(String, String)> {
    let st = ctl.status(&DevId::Name(name.to_owned())).ok()?;
    let t = st.first()?;
    Some((t.kind.clone(), t.params.clone()))
}

/// The report of `lv` in `vg`; `ctl` is absent without device-mapper.
pub fn lv_report(ctl: Option<&dyn DmBackend>, vg: &Vg, lv: &Lv) -> LvReport {
    let name = dm_name(&vg.name, &lv.name);
    let device = ctl.and_then(|c| c.info(&DevId::Name(name.clone())).ok());
    let mut r = LvReport {
        device: device.clone(),
        ..LvReport::default()
    };
    let origin = !vg.snapshots_of(&lv.name).is_empty();
    let cow = vg
        .lvs
        .iter()
        .filter_map(|l| l.snapshot_of())
        .any(|(_, c, _)| c == lv.name);
    let pool = lv.thin_pool();
    let thin_vol = lv.thin();
    let pool_data = vg
        .lvs
        .iter()
        .filter_map(|l| l.thin_pool())
        .any(|p| p.data == lv.name);
    let pool_meta = vg
        .lvs
        .iter()
        .filter_map(|l| l.thin_pool())
        .any(|p| p.metadata == lv.name);
    let image = vg
        .lvs
        .iter()
        .flat_map(|l| l.segments.iter().filter_map(|s| s.mirror()))
        .any(|m| m.images.iter().any(|(n, _)| *n == lv.name));
    let mirror_log = vg
        .lvs
        .iter()
        .flat_map(|l| l.segments.iter().filter_map(|s| s.mirror()))
        .any(|m| m.log == Some(lv.name.as_str()));
    let mut health = '-';
    let mut state_override = None;
    let mut open_override = None;
    if let Some(ctl) = ctl {
        if pool.is_some() {
            if let Some(tp) = thin::live_tpool(ctl, vg, &lv.name) {
                open_override = ctl
                    .info(&DevId::Name(tp.clone()))
                    .ok()
                    .map(|i| i.open_count > if tp == name { 0 } else { 1 });
                if let Some((_, p)) = status_line(ctl, &tp) {
                    let f: Vec<&str> = p.split_whitespace().collect();
                    if f.first() == Some(&"Fail") {
                        health = 'F';
                        r.health = "failed".into();
                    } else {
                        r.metadata_percent = f.get(1).and_then(|s| ratio(s));
                        r.data_percent = f.get(2).and_then(|s| ratio(s));
                        match f.get(4) {
                            Some(&"out_of_data_space") => {
                                health = 'D';
                                r.health = "out_of_data".into();
                            }
                            Some(&"ro") => {
                                health = 'M';
                                r.health = "metadata_read_only".into();
                            }
                            _ => {}
                        }
                    }
                }
            }
        } else if let Some((kind, p)) = device.as_ref().and_then(|_| status_line(ctl, &name)) {
            let f: Vec<&str> = p.split_whitespace().collect();
            if kind.ends_with("thin") {
                if f.first() == Some(&"Fail") {
                    health = 'F';
                    r.health = "failed".into();
                } else if let Some(mapped) = f.first().and_then(|s| s.parse::<f64>().ok()) {
                    let size = (lv.extents() * vg.extent_size) as f64;
                    r.data_percent = Some(100.0 * mapped / size);
                }
            } else if kind.ends_with("mirror") {
                // <n> <devs...> <in-sync>/<regions> <#health> <health chars> ...
                if let Some(n) = f.first().and_then(|s| s.parse::<usize>().ok()) {
                    r.copy_percent = f.get(n + 1).and_then(|s| ratio(s));
                    let chars = f.get(n + 3).copied().unwrap_or("");
                    if chars.chars().any(|c| c != 'A') {
                        health = 'r';
                        r.health = "refresh needed".into();
                    }
                }
            } else if kind.ends_with("snapshot") {
                match f.first() {
                    Some(&"Invalid") => state_override = Some('I'),
                    Some(&"Merge") | None => {}
                    Some(u) => r.data_percent = ratio(u),
                }
            }
        }
    }
    let mut a = String::new();
    a.push(if is_pvmove(lv) {
        'p'
    } else if pool.is_some() {
        't'
    } else if thin_vol.is_some() {
        'V'
    } else if pool_data {
        'T'
    } else if pool_meta || lv.name.ends_with("_pmspare") {
        'e'
    } else if lv.mirror().is_some() {
        'm'
    } else if image && ctl.is_none() {
        // Without device-mapper LVM2 cannot tell an image is in sync.
        'I'
    } else if image {
        'i'
    } else if mirror_log {
        'l'
    } else if origin {
        if vg.merging_into(&lv.name).is_some() {
            'O'
        } else {
            'o'
        }
    } else if cow {
        let merging = vg
            .lvs
            .iter()
            .any(|l| l.merging() && l.snapshot_of().is_some_and(|(_, c, _)| c == lv.name));
        if merging {
            'S'
        } else {
            's'
        }
    } else {
        '-'
    });
    a.push(if lv.status.iter().any(|s| s == "WRITE") {
        'w'
    } else {
        'r'
    });
    let locked = lv.status.iter().any(|s| s == "LOCKED");
    let policy = match lv.raw.str("allocation_policy") {
        Some("contiguous") => 'c',
        Some("cling") => 'l',
        Some("normal") => 'n',
        Some("anywhere") => 'a',
        _ => 'i',
    };
    a.push(if locked {
        policy.to_ascii_uppercase()
    } else {
        policy
    });
    a.push('-');
    a.push(match (&device, state_override) {
        (Some(_), Some(c)) => c,
        (Some(d), None) if d.flags & SUSPEND != 0 => 's',
        (Some(_), None) => 'a',
        // Without device-mapper the state is unknown, which LVM2 shows as X (but for
        // thin pools, whose state it takes from the pool's layered device: `-`).
        (None, _) if ctl.is_none() && pool.is_none() => 'X',
        (None, _) => '-',
    });
    let open = open_override.unwrap_or(device.as_ref().is_some_and(|d| d.open_count > 0));
    a.push(if ctl.is_none() && pool.is_none() {
        'X'
    } else if open {
        'o'
    } else {
        '-'
    });
    a.push(if pool.is_some() || thin_vol.is_some() {
        't'
    } else if lv.mirror().is_some() || image || mirror_log || is_pvmove(lv) {
        'm'
    } else if origin || cow {
        's'
    } else {
        '-'
    });
    let zeroing = match (&pool, &thin_vol) {
        (Some(p), _) => p.zero_new_blocks,
        (_, Some(t)) => vg
            .lv(t.pool)
            .and_then(|p| p.thin_pool())
            .is_some_and(|p| p.zero_new_blocks),
        _ => false,
    };
    a.push(if zeroing { 'z' } else { '-' });
    a.push(health);
    a.push(if activation_skipped(lv) { 'k' } else { '-' });
    r.attr = a;
    r
}
