// SPDX-License-Identifier: GPL-2.0 OR MIT

//! vgcfgbackup, vgcfgrestore and the archive of every change.

use super::{commit, host, now, Scan};
use crate::label::undashed;
use crate::lvmconf::system_dir;
use crate::vg::Vg;
use anyhow::{anyhow, bail, Context, Result};
use std::path::{Path, PathBuf};

/// Keeps the metadata a change replaces in `archive/VG_NNNNN-<seqno>.vg`, as LVM2's
/// archive does; failures to archive are reported but do not stop the change.
pub(super) fn archive(previous: &str, vg: &str, seqno: u64) {
    let dir = system_dir().join("archive");
    let res = std::fs::create_dir_all(&dir).and_then(|_| {
        let n = std::fs::read_dir(&dir)?
            .filter_map(|e| e.ok())
            .filter(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with(&format!("{vg}_"))
            })
            .count();
        std::fs::write(dir.join(format!("{vg}_{n:05}-{seqno}.vg")), previous)
    });
    if let Err(e) = res {
        eprintln!("  warning: cannot archive metadata of {vg}: {e}");
    }
}

/// Writes the metadata of `vg` to `file` (`vgcfgbackup`).
pub fn backup(vg: &Vg, file: Option<&Path>) -> Result<PathBuf> {
    let path = match file {
        Some(f) => f.to_owned(),
        None => {
            let dir = system_dir().join("backup");
            std::fs::create_dir_all(&dir)?;
            dir.join(&vg.name)
        }
    };
    let text = vg.to_text(
        &format!(
            "Created *after* executing 'orion-lvm vgcfgbackup {}'",
            vg.name
        ),
        now(),
        &host(),
    );
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// `vgcfgrestore -f FILE VG`: writes the metadata in FILE to the VG's PVs (found by the
/// PV UUIDs it lists), with a sequence number above any on disk.
pub fn restore(vg_name: &str, file: &Path) -> Result<Vg> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let mut vg = Vg::from_text(&text).map_err(|e| anyhow!("{}: {e}", file.display()))?;
    if vg.name != vg_name {
        bail!(
            "{} holds volume group {}, not {vg_name}",
            file.display(),
            vg.name
        );
    }
    let scan = Scan::run(&[])?;
    if let Some((cur, _)) = scan.vg(vg_name) {
        vg.seqno = vg.seqno.max(cur.seqno + 1);
    }
    let mut paths = Vec::new();
    for vp in &vg.pvs {
        let (p, _) = scan
            .pvs
            .iter()
            .find(|(p, _)| p.label.uuid == undashed(&vp.id))
            .ok_or_else(|| anyhow!("PV {} of {} not found", vp.id, file.display()))?;
        paths.push(p.path.clone());
    }
    commit(
        &vg,
        &paths,
        &format!("Write from orion-lvm vgcfgrestore -f {}.", file.display()),
    )?;
    Ok(vg)
}
