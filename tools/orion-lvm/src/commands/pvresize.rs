// SPDX-License-Identifier: GPL-2.0 OR MIT

//! `pvresize`: after a device grew or shrank (or to the size given with
//! `--setphysicalvolumesize`), the PV's `dev_size` and extent count in the VG metadata
//! and the device size in its label follow. Shrinking below the allocated extents is
//! refused with LVM2's messages.

use super::display::display_size;
use super::listing::used_extents;
use super::{commit_members, Scan};
use crate::label::dashed;
use crate::pv::{self, Pv};
use crate::vg::Vg;
use anyhow::{anyhow, bail, Result};
use std::path::Path;

/// Sets PV `key` of `vg` (device `dev`, for messages) to `size` sectors: its
/// `dev_size` and as many extents as fit after `pe_start`.
pub fn resize_pv(vg: &mut Vg, key: &str, dev: &str, size: u64) -> Result<()> {
    let used = used_extents(vg, key);
    let end = vg
        .free_runs()
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, runs)| runs.iter().map(|(s, n)| (*s, s + n)).collect::<Vec<_>>())
        .unwrap_or_default();
    let es = vg.extent_size;
    let p = vg
        .pvs
        .iter_mut()
        .find(|p| p.key == key)
        .ok_or_else(|| anyhow!("{dev}: not in volume group {}", key))?;
    let count = size.saturating_sub(p.pe_start) / es;
    if count < used {
        bail!("{dev}: cannot resize to {count} extents as {used} are allocated.");
    }
    // Every extent past the new end must be free: the last free run reaches the old end
    // and starts at or before the new one.
    if count < p.pe_count {
        let tail_free = end.iter().any(|&(s, e)| e == p.pe_count && s <= count);
        if !tail_free {
            bail!("{dev}: cannot resize to {count} extents as later ones are allocated.");
        }
    }
    p.dev_size = size;
    p.pe_count = count;
    Ok(())
}

/// `pvresize [--setphysicalvolumesize SIZE] DEV`: `size` in sectors, else the device's
/// size; `yes` allows a size below the device's.
pub fn pvresize(dev: &Path, size: Option<u64>, yes: bool) -> Result<()> {
    let name = dev.display().to_string();
    let mut found =
        Pv::scan(dev)?.ok_or_else(|| anyhow!("Failed to find physical volume \"{name}\"."))?;
    let real = pv::size_of(dev, &pv::open(dev, false)?)? / 512;
    let new = size.unwrap_or(real);
    if new > real {
        bail!(
            "{name}: Requested size {} exceeds real size {}.",
            display_size(new),
            display_size(real)
        );
    }
    if new < real {
        if !yes {
            bail!(
                "{name}: Requested size {} is less than real size {}; give -y to proceed.",
                display_size(new),
                display_size(real)
            );
        }
        eprintln!("  WARNING: {name}: Pretending size is {new} not {real} sectors.");
    }
    if found.data_end_sectors() < found.label.device_size / 512 {
        bail!("{name}: cannot resize a PV with a metadata area at its end");
    }
    let uuid = dashed(&found.label.uuid);
    let scan = Scan::run(&[])?;
    let in_vg = scan
        .pvs
        .iter()
        .find(|(p, _)| p.label.uuid == found.label.uuid)
        .and_then(|(_, v)| v.as_ref().map(|v| v.name.clone()));
    if let Some(vg_name) = in_vg {
        let (mut vg, members) = scan.need_vg(&vg_name)?;
        let key = vg
            .pvs
            .iter()
            .find(|p| p.id == uuid)
            .map(|p| p.key.clone())
            .ok_or_else(|| anyhow!("{name}: not in the metadata of {vg_name}"))?;
        resize_pv(&mut vg, &key, &name, new)?;
        vg.seqno += 1;
        commit_members(
            &vg,
            &members,
            &format!("Write from orion-lvm pvresize {name}."),
        )?;
        // The commit rewrote the metadata areas; take the label as it is now.
        found = Pv::scan(dev)?.ok_or_else(|| anyhow!("{name}: PV label vanished"))?;
    }
    found.set_device_size(new * 512)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vg(stripes: &[(u64, u64)]) -> Vg {
        let mut lvs = String::new();
        for (i, (pe, n)) in stripes.iter().enumerate() {
            lvs += &format!(
                "lv{i} {{\nid = \"{i}\"\nstatus = [\"READ\", \"WRITE\", \"VISIBLE\"]\n\
                 segment1 {{\nstart_extent = 0\nextent_count = {n}\ntype = \"striped\"\n\
                 stripe_count = 1\nstripes = [\"pv0\", {pe}]\n}}\n}}\n"
            );
        }
        Vg::from_text(&format!(
            "vg {{\nid = \"A\"\nseqno = 1\nextent_size = 8192\nphysical_volumes {{\npv0 {{\n\
             id = \"B\"\ndev_size = 196608\npe_start = 2048\npe_count = 23\n}}\n}}\n\
             logical_volumes {{\n{lvs}}}\n}}\n"
        ))
        .unwrap()
    }

    #[test]
    fn grows_and_shrinks_into_free_space() {
        let mut v = vg(&[(0, 5)]);
        resize_pv(&mut v, "pv0", "/dev/x", 128 << 11).unwrap();
        assert_eq!((v.pvs[0].dev_size, v.pvs[0].pe_count), (262144, 31));
        resize_pv(&mut v, "pv0", "/dev/x", 24 << 11).unwrap();
        assert_eq!(v.pvs[0].pe_count, 5);
        assert_eq!(v.free_extents(), 0);
    }

    #[test]
    fn refuses_to_cut_allocated_extents() {
        let mut v = vg(&[(0, 5), (10, 2)]);
        let e = resize_pv(&mut v, "pv0", "/dev/x", 20 << 11).unwrap_err();
        assert_eq!(
            e.to_string(),
            "/dev/x: cannot resize to 4 extents as 7 are allocated."
        );
        let e = resize_pv(&mut v, "pv0", "/dev/x", 40 << 11).unwrap_err();
        assert_eq!(
            e.to_string(),
            "/dev/x: cannot resize to 9 extents as later ones are allocated."
        );
        assert_eq!(v.pvs[0].pe_count, 23);
        // Up to the end of the last allocated extent is fine.
        resize_pv(&mut v, "pv0", "/dev/x", (12 * 4 + 1) << 11).unwrap();
        assert_eq!(v.pvs[0].pe_count, 12);
    }
}
