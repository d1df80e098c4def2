// SPDX-License-Identifier: GPL-2.0 OR MIT

//! `lvconvert --repair VG/POOL` for thin pools, as LVM2 2.03 does it.
//!
//! The pool must be inactive. Its metadata LV and the VG's metadata spare are activated
//! on their own (`VG-POOL_tmeta`, `VG-lvolN_pmspare`) and the configured repair tool
//! (lvm.conf `global/thin_repair_executable`, default `/usr/sbin/thin_repair`, with
//! `global/thin_repair_options`) writes repaired metadata from the one into the other:
//! `TOOL OPTIONS... -i /dev/mapper/VG-POOL_tmeta -o /dev/mapper/VG-lvolN_pmspare`. The
//! repaired transaction id is compared with the LVM2 metadata's (equal, or one above when
//! the kernel committed a transaction the metadata did not record, are both accepted;
//! anything else is reported, as LVM2 reports it, and the repair stands). Then the
//! metadata changes as LVM2's `swap_lv_identifiers` leaves it: the spare's extents
//! become `POOL_tmeta` (with the old metadata LV's UUID), the old metadata LV becomes the
//! visible `POOL_metaN` (with the spare's UUID) kept as a backup, and a new spare is
//! allocated and zeroed when the VG has room (a warning when not).

use super::thin::{ensure_spare, generated_name, spare_of, zero_on_pvs};
use crate::config;
use crate::dm::activate::{self, dm_name, dm_uuid, DevMap};
use crate::dm::backend::DmBackend;
use crate::dm::ioctl::{Control, DevId};
use crate::dm::thin::live_tpool;
use crate::vg::Vg;
use anyhow::{anyhow, bail, Context, Result};
use std::path::{Path, PathBuf};

/// LVM2's built-in `global/thin_repair_executable`.
const DEFAULT_THIN_REPAIR: &str = "/usr/sbin/thin_repair";

/// The repair command lvm.conf configures.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RepairTool {
    /// `global/thin_repair_executable` (empty: repair disabled).
    pub executable: String,
    /// `global/thin_repair_options`, empty strings left out.
    pub options: Vec<String>,
}

impl RepairTool {
    /// The tool configured in `lvm_conf` (the text of lvm.conf; LVM2's defaults when
    /// absent or not set there).
    pub fn from_config(lvm_conf: Option<&str>) -> Result<RepairTool> {
        let root = match lvm_conf {
            Some(t) => config::parse(t).context("parsing lvm.conf")?,
            None => config::Section::default(),
        };
        let global = root.section("global");
        let executable = global
            .and_then(|g| g.str("thin_repair_executable"))
            .unwrap_or(DEFAULT_THIN_REPAIR)
            .to_owned();
        let options = global
            .and_then(|g| g.strs("thin_repair_options"))
            .unwrap_or_default()
            .into_iter()
            .filter(|o| !o.is_empty())
            .map(str::to_owned)
            .collect();
        Ok(RepairTool {
            executable,
            options,
        })
    }

    /// The tool configured in the system's lvm.conf (`$ORION_LVM_SYSTEM_DIR/lvm.conf`,
    /// default /etc/lvm/lvm.conf).
    pub fn configured() -> Result<RepairTool> {
        let path = crate::lvmconf::system_dir().join("lvm.conf");
        let text = std::fs::read_to_string(&path).ok();
        RepairTool::from_config(text.as_deref())
            .with_context(|| format!("reading {}", path.display()))
    }

    /// The command line for repairing `input` into `output`, as LVM2 builds it.
    pub fn argv(&self, input: &Path, output: &Path) -> Vec<String> {
        let mut v = vec![self.executable.clone()];
        v.extend(self.options.iter().cloned());
        v.extend([
            "-i".to_owned(),
            input.display().to_string(),
            "-o".to_owned(),
            output.display().to_string(),
        ]);
        v
    }
}

/// What a repair left for the user to know (LVM2's warnings), one line each.
pub type Warnings = Vec<String>;

/// Whether any part of `pool` (its own devices, its metadata or data, a thin volume) is
/// active, which LVM2 refuses for a repair.
fn pool_active(ctl: &dyn DmBackend, vg: &Vg, pool: &str) -> bool {
    if live_tpool(ctl, vg, pool).is_some() {
        return true;
    }
    let mut names = vec![pool.to_owned()];
    if let Some(s) = vg.lv(pool).and_then(|l| l.thin_pool()) {
        names.push(s.metadata.to_owned());
        names.push(s.data.to_owned());
    }
    names.extend(
        vg.lvs
            .iter()
            .filter(|l| l.thin().is_some_and(|t| t.pool == pool))
            .map(|l| l.name.clone()),
    );
    names
        .iter()
        .any(|n| ctl.info(&DevId::Name(dm_name(&vg.name, n))).is_ok())
}

/// The transaction id in the thin-pool superblock at the start of dm device `name`.
fn repaired_transaction_id(ctl: &dyn DmBackend, name: &str) -> Option<u64> {
    use orion_pdata::thin::superblock::{Superblock, LOCATION};
    let mut sb = vec![0u8; 4096];
    ctl.read_start(name, &mut sb).ok()?;
    Superblock::unpack(LOCATION, &sb).ok().map(|s| s.trans_id)
}

/// Activates LV `name` of `vg` on its own (a component: no `/dev/VG/LV` link) and
/// returns its dm device name.
fn activate_component(ctl: &dyn DmBackend, vg: &Vg, pvs: &DevMap, name: &str) -> Result<String> {
    let lv = vg
        .lv(name)
        .ok_or_else(|| anyhow!("{}/{name} is missing", vg.name))?;
    let dev = dm_name(&vg.name, name);
    let t = activate::table(vg, lv, pvs, "")?;
    activate::load_device(ctl, &dev, &dm_uuid(vg, lv), &t, false)?;
    Ok(dev)
}

/// Repairs the metadata of thin pool `pool` into the spare and swaps them in `vg` (see
/// the module documentation). `run` executes the repair tool's command line;
/// `make_spare` zeroes a newly allocated spare; `commit` writes `vg` (the sequence
/// number already raised). `vg` ends as committed last.
#[expect(clippy::too_many_arguments)]
pub fn repair_pool(
    ctl: &dyn DmBackend,
    vg: &mut Vg,
    pvs: &DevMap,
    pool: &str,
    tool: &RepairTool,
    run: &mut dyn FnMut(&[String]) -> Result<()>,
    make_spare: &mut dyn FnMut(&Vg, &str) -> Result<()>,
    commit: &mut dyn FnMut(&Vg, &str) -> Result<()>,
) -> Result<Warnings> {
    let vgn = vg.name.clone();
    let seg = vg
        .lv(pool)
        .ok_or_else(|| anyhow!("Logical volume {vgn}/{pool} not found."))?
        .thin_pool()
        .ok_or_else(|| anyhow!("{vgn}/{pool} is not a thin pool"))?;
    let (meta, tid) = (seg.metadata.to_owned(), seg.transaction_id);
    if tool.executable.is_empty() {
        bail!("Thin repair commnand is not configured. Repair is disabled.");
    }
    if pool_active(ctl, vg, pool) {
        bail!("Active pools cannot be repaired.  Use lvchange -an first.");
    }
    let mut warnings = Warnings::new();
    let largest_meta = vg
        .lvs
        .iter()
        .filter_map(|l| l.thin_pool())
        .filter_map(|s| vg.lv(s.metadata))
        .map(|l| l.extents())
        .max()
        .unwrap_or(0);
    // A spare first (LVM2 commits it before the repair when it had to make or grow one).
    if let Some(n) = ensure_spare(vg, largest_meta)? {
        make_spare(vg, &n)?;
        vg.seqno += 1;
        commit(
            vg,
            &format!("Write from orion-lvm lvconvert --repair {vgn}/{pool} (spare)."),
        )?;
    }
    let spare = spare_of(vg)
        .map(|l| l.name.clone())
        .ok_or_else(|| anyhow!("{vgn} has no pool metadata spare"))?;
    let spare_dev = activate_component(ctl, vg, pvs, &spare)?;
    let repaired = activate_component(ctl, vg, pvs, &meta).and_then(|meta_dev| {
        let argv = tool.argv(&ctl.device_path(&meta_dev), &ctl.device_path(&spare_dev));
        run(&argv).with_context(|| {
            format!(
                "Repair of thin metadata volume of thin pool {vgn}/{pool} failed. Manual repair required!"
            )
        })?;
        match repaired_transaction_id(ctl, &spare_dev) {
            Some(t) if t != tid && t.wrapping_sub(1) != tid => warnings.push(format!(
                "Transaction id {tid} from pool \"{vgn}/{pool}\" does not match repaired transaction id {t} from {}.",
                ctl.device_path(&spare_dev).display()
            )),
            _ => {}
        }
        Ok(())
    });
    let down_meta = activate::remove_device(ctl, &dm_name(&vgn, &meta));
    let down_spare = activate::remove_device(ctl, &spare_dev);
    repaired?;
    down_meta
        .with_context(|| format!("Cannot deactivate thin pool metadata volume {vgn}/{meta}."))?;
    down_spare
        .with_context(|| format!("Cannot deactivate pool metadata spare volume {vgn}/{spare}."))?;

    // The used spare stops being the spare; a new one is made while the old metadata LV
    // is still the pool's (so the size LVM2 asks for is the same).
    let si = vg
        .lvs
        .iter()
        .position(|l| l.name == spare)
        .ok_or_else(|| anyhow!("{spare} vanished"))?;
    vg.lvs[si].name = format!("{spare}_used");
    let mut with_new = vg.clone();
    match ensure_spare(&mut with_new, largest_meta) {
        Ok(Some(n)) => match make_spare(&with_new, &n) {
            Ok(()) => *vg = with_new,
            Err(e) => warnings.push(format!(
                "WARNING: cannot zero a new pool metadata spare: {e:#}"
            )),
        },
        Ok(None) => *vg = with_new,
        Err(e) => warnings.push(format!("{e:#}")),
    }
    // LVM2 numbers the new spare while the used one still has its name (so `lvol0`
    // is taken and the new one is `lvol1_pmspare`); the swap below renames it.
    vg.lvs[si].name = spare.clone();
    let backup = generated_name(vg, &format!("{pool}_meta"));
    let mi = vg
        .lvs
        .iter()
        .position(|l| l.name == meta)
        .ok_or_else(|| anyhow!("{meta} vanished"))?;
    // swap_lv_identifiers: names and UUIDs change places; extents, status and the rest
    // stay with the LV.
    let (meta_id, spare_id) = (vg.lvs[mi].id.clone(), vg.lvs[si].id.clone());
    vg.lvs[si].name = meta.clone();
    vg.lvs[si].id = meta_id;
    vg.lvs[mi].name = backup.clone();
    vg.lvs[mi].id = spare_id;
    let visible = |on: bool, st: &mut Vec<String>| {
        st.retain(|s| s != "VISIBLE");
        if on {
            st.push("VISIBLE".to_owned());
        }
    };
    visible(false, &mut vg.lvs[si].status);
    visible(true, &mut vg.lvs[mi].status);
    vg.seqno += 1;
    commit(
        vg,
        &format!("Write from orion-lvm lvconvert --repair {vgn}/{pool}."),
    )?;
    warnings.push(format!(
        "WARNING: LV {vgn}/{backup} holds a backup of the unrepaired metadata. Use lvremove when no longer required."
    ));
    if vg.pvs.len() > 1 {
        warnings.push(format!(
            "WARNING: New metadata LV {vgn}/{meta} might use different PVs.  Move it with pvmove if required."
        ));
    }
    Ok(warnings)
}

/// Runs `argv`, its output passed through; fails unless it exits 0.
fn run_tool(argv: &[String]) -> Result<()> {
    let (exe, args) = argv.split_first().ok_or_else(|| anyhow!("empty command"))?;
    let st = std::process::Command::new(exe)
        .args(args)
        .status()
        .with_context(|| format!("running {exe}"))?;
    if !st.success() {
        bail!("{exe} exited with {st}");
    }
    Ok(())
}

/// `lvconvert --repair` of thin pool `pool` of `vg`, read already with its PVs
/// `members`: the configured repair tool writes repaired metadata onto the spare, which
/// then becomes the pool's metadata LV.
pub(crate) fn lvconvert_repair_thin(
    vg: Vg,
    members: &[&crate::pv::Pv],
    pool: &str,
) -> Result<Warnings> {
    // On the system's device-mapper; returns LVM2's warnings.
    let tool = RepairTool::configured()?;
    let mut vg = vg;
    let ctl = Control::open().context("opening /dev/mapper/control")?;
    let pvs = activate::pv_devices(&vg, members)?;
    let paths: Vec<PathBuf> = members.iter().map(|p| p.path.clone()).collect();
    repair_pool(
        &ctl,
        &mut vg,
        &pvs,
        pool,
        &tool,
        &mut run_tool,
        &mut |v, n| {
            let lv = v.lv(n).ok_or_else(|| anyhow!("{n} vanished"))?;
            zero_on_pvs(v, members, lv)
        },
        &mut |v, what| super::commit(v, &paths, what),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dm::recording::{test_vg, RecordingDm};

    /// A VG with a pool made as `lvcreate --type thin-pool` makes it (metadata only).
    fn vg_with_pool(free_after: bool) -> (Vg, DevMap) {
        let (mut vg, devs) = test_vg("vg", if free_after { &[20, 20] } else { &[5] });
        let req = crate::commands::PoolRequest {
            name: "pool",
            extents: 2,
            chunk_size: None,
            metadata_size: None,
            zero: true,
            discards: "passdown",
        };
        crate::commands::thin::pool_metadata(&mut vg, &req).unwrap();
        (vg, devs)
    }

    fn tool() -> RepairTool {
        RepairTool::from_config(None).unwrap()
    }

    #[test]
    fn config_and_argv() {
        assert_eq!(tool().executable, "/usr/sbin/thin_repair");
        let t = RepairTool::from_config(Some(
            "global {\n thin_repair_executable = \"/bin/orion-thin\"\n thin_repair_options = [ \"repair\", \"\" ]\n}\n",
        ))
        .unwrap();
        assert_eq!(
            t.argv(Path::new("/dev/mapper/a"), Path::new("/dev/mapper/b")),
            [
                "/bin/orion-thin",
                "repair",
                "-i",
                "/dev/mapper/a",
                "-o",
                "/dev/mapper/b"
            ]
        );
        let off =
            RepairTool::from_config(Some("global { thin_repair_executable = \"\" }")).unwrap();
        let (mut vg, devs) = vg_with_pool(true);
        let err = repair_pool(
            &RecordingDm::new(),
            &mut vg,
            &devs,
            "pool",
            &off,
            &mut |_| Ok(()),
            &mut |_, _| Ok(()),
            &mut |_, _| Ok(()),
        )
        .unwrap_err();
        assert!(err.to_string().contains("not configured"), "{err}");
    }

    #[test]
    fn repair_swaps_spare_and_keeps_the_old_metadata() {
        let (mut vg, devs) = vg_with_pool(true);
        let before = vg.clone();
        let (tmeta, spare) = (
            before.lv("pool_tmeta").unwrap().clone(),
            before.lv("lvol0_pmspare").unwrap().clone(),
        );
        let dm = RecordingDm::new();
        let mut ran = Vec::new();
        let mut zeroed = Vec::new();
        let mut commits = Vec::new();
        let w = repair_pool(
            &dm,
            &mut vg,
            &devs,
            "pool",
            &tool(),
            &mut |argv| {
                ran.push(argv.to_vec());
                Ok(())
            },
            &mut |_, n| {
                zeroed.push(n.to_owned());
                Ok(())
            },
            &mut |v, _| {
                commits.push(v.seqno);
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(
            ran,
            [[
                "/usr/sbin/thin_repair",
                "-i",
                "/dev/mapper/vg-pool_tmeta",
                "-o",
                "/dev/mapper/vg-lvol0_pmspare"
            ]]
        );
        // Both components live only around the tool; nothing stays active.
        assert_eq!(dm.calls("create"), ["vg-lvol0_pmspare", "vg-pool_tmeta"]);
        assert!(dm.devices().is_empty());
        assert_eq!(commits, [before.seqno + 1]);
        assert_eq!(zeroed, ["lvol1_pmspare"]);
        // The repaired metadata is on the spare's extents with the old LV's UUID.
        let new_meta = vg.lv("pool_tmeta").unwrap();
        assert_eq!(new_meta.segments, spare.segments);
        assert_eq!(new_meta.id, tmeta.id);
        assert!(!new_meta.visible());
        let backup = vg.lv("pool_meta0").unwrap();
        assert_eq!(backup.segments, tmeta.segments);
        assert_eq!(backup.id, spare.id);
        assert!(backup.visible());
        let new_spare = vg.lv("lvol1_pmspare").unwrap();
        assert!(!new_spare.visible());
        assert_eq!(new_spare.extents(), tmeta.extents());
        assert!(vg.lv("lvol0_pmspare").is_none());
        assert_eq!(
            vg.lv("pool").unwrap().thin_pool().unwrap().metadata,
            "pool_tmeta"
        );
        assert!(w[0].contains("vg/pool_meta0 holds a backup"), "{w:?}");
        assert!(w[1].contains("might use different PVs"), "{w:?}");
    }

    #[test]
    fn repair_without_room_for_a_new_spare_warns() {
        let (mut vg, devs) = vg_with_pool(false);
        let rest = crate::commands::LvRequest {
            name: "fill",
            extents: vg.free_extents(),
            stripes: 1,
            stripe_size: 128,
        };
        let segs = crate::commands::allocate(&vg, &rest).unwrap();
        crate::dm::recording::add_lv(&mut vg, "fill", segs);
        assert_eq!(vg.free_extents(), 0);
        let w = repair_pool(
            &RecordingDm::new(),
            &mut vg,
            &devs,
            "pool",
            &tool(),
            &mut |_| Ok(()),
            &mut |_, _| Ok(()),
            &mut |_, _| Ok(()),
        )
        .unwrap();
        assert!(vg.lvs.iter().all(|l| !l.name.ends_with("_pmspare")));
        assert!(vg.lv("pool_meta0").is_some());
        assert_eq!(w.len(), 2, "{w:?}");
    }

    #[test]
    fn active_pool_and_failing_tool_change_nothing() {
        let (mut vg, mut devs) = vg_with_pool(true);
        let before = vg.clone();
        let dm = RecordingDm::new();
        let pool = vg.lv("pool").unwrap().clone();
        crate::dm::thin::activate_pool(&dm, &vg, &pool, &mut devs, "").unwrap();
        let mut run = |_: &[String]| -> Result<()> { panic!("the tool must not run") };
        let err = repair_pool(
            &dm,
            &mut vg,
            &devs,
            "pool",
            &tool(),
            &mut run,
            &mut |_, _| Ok(()),
            &mut |_, _| Ok(()),
        )
        .unwrap_err();
        assert!(err
            .to_string()
            .starts_with("Active pools cannot be repaired"));
        assert_eq!(vg, before);

        let dm = RecordingDm::new();
        let mut commits = 0;
        let err = repair_pool(
            &dm,
            &mut vg,
            &devs,
            "pool",
            &tool(),
            &mut |_| bail!("exit status 1"),
            &mut |_, _| Ok(()),
            &mut |_, _| {
                commits += 1;
                Ok(())
            },
        )
        .unwrap_err();
        assert!(format!("{err:#}").contains("Manual repair required"));
        assert_eq!(commits, 0);
        assert!(
            dm.devices().is_empty(),
            "components deactivated after a failure"
        );
        assert_eq!(vg, before);
    }
}
