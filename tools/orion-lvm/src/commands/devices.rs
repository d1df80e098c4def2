// SPDX-License-Identifier: GPL-2.0 OR MIT

//! What a command changes once it has read its VG: the device-mapper it drives and the
//! PVs its metadata goes to. Commands get [`Devices`] over the system from
//! [`on_system`]; host tests build one over [`crate::dm::recording::RecordingDm`] with a
//! commit that records, so activation order can be checked without a kernel.

use super::commit;
use crate::dm::activate::{self, DevMap};
use crate::dm::backend::DmBackend;
use crate::dm::ioctl::Control;
use crate::pv::Pv;
use crate::vg::Vg;
use anyhow::{anyhow, Result};
use std::path::PathBuf;

/// Writes new metadata of a VG (its text carries the description given).
pub type CommitFn<'a> = dyn FnMut(&Vg, &str) -> Result<()> + 'a;
/// Zeroes an LV of a VG on its PVs (new pool metadata, a new mirror log).
pub type ZeroFn<'a> = dyn FnMut(&Vg, &str) -> Result<()> + 'a;

/// The devices a command changes: device-mapper (absent on a host without it), the
/// `major:minor` of the VG's PVs, and the writes to those PVs.
pub struct Devices<'a> {
    dm: Option<&'a dyn DmBackend>,
    /// Why there is no device-mapper, for commands that need one.
    no_dm: String,
    /// `major:minor` of the VG's PVs.
    pub pvs: DevMap,
    /// Put before every target name loaded (orion_dm.ko's `prefix=`).
    pub prefix: &'a str,
    commit: &'a mut CommitFn<'a>,
    zero: &'a mut ZeroFn<'a>,
}

impl<'a> Devices<'a> {
    /// Devices over `dm` (`None`: no device-mapper) and PVs `pvs`.
    pub fn new(
        dm: Option<&'a dyn DmBackend>,
        pvs: DevMap,
        prefix: &'a str,
        commit: &'a mut CommitFn<'a>,
        zero: &'a mut ZeroFn<'a>,
    ) -> Devices<'a> {
        Devices {
            dm,
            no_dm: "no device-mapper".into(),
            pvs,
            prefix,
            commit,
            zero,
        }
    }

    /// Device-mapper, when there is one.
    pub fn dm(&self) -> Option<&'a dyn DmBackend> {
        self.dm
    }

    /// Device-mapper, for a command that cannot do without it.
    pub fn need_dm(&self) -> Result<&'a dyn DmBackend> {
        self.dm
            .ok_or_else(|| anyhow!("opening /dev/mapper/control: {}", self.no_dm))
    }

    /// Commits `vg` to its PVs.
    pub fn commit(&mut self, vg: &Vg, description: &str) -> Result<()> {
        (self.commit)(vg, description)
    }

    /// Zeroes LV `lv` of `vg` on its PVs.
    pub fn zero(&mut self, vg: &Vg, lv: &str) -> Result<()> {
        (self.zero)(vg, lv)
    }
}

/// Runs `f` on `vg` with the system's device-mapper (if it opens) and the PVs `members`
/// of `vg` (commits and zeroing written to them).
pub(crate) fn on_system<T>(
    vg: Vg,
    members: &[&Pv],
    prefix: &str,
    f: impl FnOnce(&mut Devices<'_>, Vg) -> Result<T>,
) -> Result<T> {
    let ctl = Control::open();
    let paths: Vec<PathBuf> = members.iter().map(|p| p.path.clone()).collect();
    let mut commit_fn = |v: &Vg, what: &str| commit(v, &paths, what);
    let mut zero_fn = |v: &Vg, lv: &str| {
        let l = v.lv(lv).ok_or_else(|| anyhow!("{lv} vanished"))?;
        super::thin::zero_on_pvs(v, members, l)
    };
    let pvs = activate::pv_devices(&vg, members)?;
    let mut d = Devices::new(
        ctl.as_ref().ok().map(|c| c as &dyn DmBackend),
        pvs,
        prefix,
        &mut commit_fn,
        &mut zero_fn,
    );
    if let Err(e) = &ctl {
        d.no_dm = e.to_string();
    }
    f(&mut d, vg)
}

/// [`on_system`] on VG `vg_name` as a scan of the system's PVs finds it.
pub(crate) fn on_system_vg<T>(
    vg_name: &str,
    prefix: &str,
    f: impl FnOnce(&mut Devices<'_>, Vg) -> Result<T>,
) -> Result<T> {
    let scan = super::Scan::run(&[])?;
    let (vg, members) = scan.need_vg(vg_name)?;
    on_system(vg, &members, prefix, f)
}

/// Runs `f` with [`Devices`] over `dm` and PVs `pvs`, its commits and zeroing noted in
/// `dm`'s log (`commit seqno N: DESCRIPTION`, `zero on PVs LV`).
#[cfg(test)]
pub(crate) fn on_recording<T>(
    dm: &crate::dm::recording::RecordingDm,
    pvs: &DevMap,
    f: impl FnOnce(&mut Devices<'_>) -> Result<T>,
) -> Result<T> {
    let mut commit_fn = |v: &Vg, what: &str| {
        dm.note(format!("commit seqno {}: {what}", v.seqno));
        Ok(())
    };
    let mut zero_fn = |_: &Vg, lv: &str| {
        dm.note(format!("zero on PVs {lv}"));
        Ok(())
    };
    let mut d = Devices::new(Some(dm), pvs.clone(), "", &mut commit_fn, &mut zero_fn);
    f(&mut d)
}
