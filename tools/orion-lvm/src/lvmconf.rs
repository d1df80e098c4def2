// SPDX-License-Identifier: GPL-2.0 OR MIT

//! The settings of LVM2's `lvm.conf` that orion-lvm honours: the autoextend thresholds
//! and amounts of thin pools and snapshots and the mirror fault policies (section
//! `activation`). The file has the syntax of the metadata text, so [`crate::config`]
//! parses it; `--config` strings (LVM2's option) override it, later ones winning.

use crate::config::{self, Section};
use anyhow::{anyhow, Result};
use std::path::PathBuf;
use std::sync::OnceLock;

/// What to do with a failed mirror image or log (`mirror_image_fault_policy`,
/// `mirror_log_fault_policy`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultPolicy {
    /// Drop the failed device (a mirror left with one image becomes linear; a failed
    /// disk log becomes a core log).
    Remove,
    /// Replace it with a new one on another PV (falling back to `Remove` when there is
    /// no room), resynchronised by the kernel.
    Allocate,
}

impl FaultPolicy {
    fn parse(s: &str) -> Option<FaultPolicy> {
        match s {
            "remove" => Some(FaultPolicy::Remove),
            "allocate" => Some(FaultPolicy::Allocate),
            _ => None,
        }
    }

    /// The name lvm.conf uses.
    pub fn name(self) -> &'static str {
        match self {
            FaultPolicy::Remove => "remove",
            FaultPolicy::Allocate => "allocate",
        }
    }
}

/// The `activation` settings, with LVM2 2.03's defaults.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Activation {
    /// `thin_pool_autoextend_threshold` (percent; 100 turns autoextension off).
    pub thin_threshold: u32,
    /// `thin_pool_autoextend_percent`.
    pub thin_percent: u32,
    /// `snapshot_autoextend_threshold`.
    pub snapshot_threshold: u32,
    /// `snapshot_autoextend_percent`.
    pub snapshot_percent: u32,
    /// `mirror_image_fault_policy`.
    pub image_fault: FaultPolicy,
    /// `mirror_log_fault_policy`.
    pub log_fault: FaultPolicy,
}

impl Default for Activation {
    fn default() -> Self {
        Activation {
            thin_threshold: 100,
            thin_percent: 20,
            snapshot_threshold: 100,
            snapshot_percent: 20,
            image_fault: FaultPolicy::Remove,
            log_fault: FaultPolicy::Allocate,
        }
    }
}

impl Activation {
    /// The settings of `sections` (the file first, then the overrides) over the defaults.
    pub fn from_sections(sections: &[Section]) -> Result<Activation> {
        let mut a = Activation::default();
        for s in sections {
            let Some(act) = s.section("activation") else {
                continue;
            };
            let int = |key: &str, into: &mut u32| -> Result<()> {
                if let Some(v) = act.int(key) {
                    *into = u32::try_from(v)
                        .map_err(|_| anyhow!("activation/{key} = {v} is negative"))?;
                }
                Ok(())
            };
            int("thin_pool_autoextend_threshold", &mut a.thin_threshold)?;
            int("thin_pool_autoextend_percent", &mut a.thin_percent)?;
            int("snapshot_autoextend_threshold", &mut a.snapshot_threshold)?;
            int("snapshot_autoextend_percent", &mut a.snapshot_percent)?;
            for (key, into) in [
                ("mirror_image_fault_policy", &mut a.image_fault),
                ("mirror_log_fault_policy", &mut a.log_fault),
            ] {
                if let Some(v) = act.str(key) {
                    *into = FaultPolicy::parse(v).ok_or_else(|| {
                        anyhow!("activation/{key} = {v:?}: expected \"remove\" or \"allocate\"")
                    })?;
                }
            }
        }
        Ok(a)
    }
}

static OVERRIDES: OnceLock<Vec<String>> = OnceLock::new();
static LOADED: OnceLock<Result<Activation, String>> = OnceLock::new();

/// Sets the `--config` strings of this run (once, at start).
pub fn set_overrides(overrides: Vec<String>) {
    let _ = OVERRIDES.set(overrides);
}

/// The configuration directory: `ORION_LVM_SYSTEM_DIR`, else LVM2's `LVM_SYSTEM_DIR`,
/// else /etc/lvm.
pub fn system_dir() -> PathBuf {
    std::env::var_os("ORION_LVM_SYSTEM_DIR")
        .or_else(|| std::env::var_os("LVM_SYSTEM_DIR"))
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/etc/lvm"))
}

fn load() -> Result<Activation, String> {
    let mut sections = Vec::new();
    let path = system_dir().join("lvm.conf");
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            sections.push(config::parse(&text).map_err(|e| format!("{}: {e}", path.display()))?)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("{}: {e}", path.display())),
    }
    for o in OVERRIDES.get().map(Vec::as_slice).unwrap_or_default() {
        sections.push(config::parse(o).map_err(|e| format!("--config {o:?}: {e}"))?);
    }
    Activation::from_sections(&sections).map_err(|e| e.to_string())
}

/// The `activation` settings of this system (read once).
pub fn activation() -> Result<Activation> {
    LOADED.get_or_init(load).clone().map_err(|e| anyhow!(e))
}

/// The low water mark (in pool blocks) LVM2 puts in a thin-pool table of `blocks` data
/// blocks: the free blocks left when usage reaches `thin_pool_autoextend_threshold`
/// (at least 50%), so the kernel raises an event there; 0 when autoextension is off.
pub fn low_water_mark(threshold: u32, blocks: u64) -> u64 {
    let t = u64::from(threshold.max(50));
    if t >= 100 {
        0
    } else {
        blocks * (100 - t) / 100
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_files_and_overrides() {
        assert_eq!(
            Activation::from_sections(&[]).unwrap(),
            Activation::default()
        );
        let file = config::parse(
            "# comment\nactivation {\n\tthin_pool_autoextend_threshold = 70\n\tthin_pool_autoextend_percent = 25\n\tmirror_image_fault_policy = \"allocate\"\n}\ndevices { dir = \"/dev\" }\n",
        )
        .unwrap();
        let over = config::parse(
            "activation { thin_pool_autoextend_threshold = 80 snapshot_autoextend_threshold = 60 }",
        )
        .unwrap();
        let a = Activation::from_sections(&[file.clone(), over]).unwrap();
        assert_eq!(a.thin_threshold, 80, "the override wins");
        assert_eq!(a.thin_percent, 25);
        assert_eq!(a.snapshot_threshold, 60);
        assert_eq!(a.snapshot_percent, 20);
        assert_eq!(a.image_fault, FaultPolicy::Allocate);
        assert_eq!(a.log_fault, FaultPolicy::Allocate);
        let bad = config::parse("activation { mirror_log_fault_policy = \"keep\" }").unwrap();
        assert!(Activation::from_sections(&[file, bad]).is_err());
    }

    #[test]
    fn low_water_marks() {
        assert_eq!(low_water_mark(100, 1024), 0);
        assert_eq!(low_water_mark(80, 1024), 204);
        assert_eq!(low_water_mark(70, 1000), 300);
        // Below 50% LVM2 uses 50%.
        assert_eq!(low_water_mark(10, 1000), 500);
    }
}
