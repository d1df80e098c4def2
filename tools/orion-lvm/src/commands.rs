// SPDX-License-Identifier: GPL-2.0 OR MIT

//! The volume-manager operations behind the commands: scan, pvcreate, vgcreate,
//! lvcreate, and the reports. Metadata-only for now (activation through dm ioctls comes
//! with the ioctl layer); every change bumps the sequence number and is written to every
//! PV of the VG, text before header.

use crate::dm::activate;
use crate::dm::ioctl::{Control, DevId};
use crate::label::{dashed, new_uuid, undashed};
use crate::pv::{self, Pv};
use crate::vg::{Lv, Segment, SegmentKind, Vg, VgError, VgPv};
use anyhow::{anyhow, bail, Context, Result};
use std::path::{Path, PathBuf};

/// Everything found on the scanned devices.
pub struct Scan {
    /// PVs with their VG (if any).
    pub pvs: Vec<(Pv, Option<Vg>)>,
}

impl Scan {
    /// Scans `devices`, or every block device when empty.
    pub fn run(devices: &[PathBuf]) -> Result<Scan> {
        let list = if devices.is_empty() {
            pv::candidate_devices()
        } else {
            devices.to_vec()
        };
        let mut pvs = Vec::new();
        for d in list {
            let found = match Pv::scan(&d) {
                Ok(Some(p)) => p,
                Ok(None) => continue,
                // Devices we may not open are not ours to report on.
                Err(pv::PvError::Io(..)) if devices.is_empty() => continue,
                Err(e) if devices.is_empty() => {
                    eprintln!("warning: {e}");
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            let vg = match found.text()? {
                Some(t) => {
                    Some(Vg::from_text(&t).map_err(|e: VgError| anyhow!("{}: {e}", d.display()))?)
                }
                None => None,
            };
            pvs.push((found, vg));
        }
        Ok(Scan { pvs })
    }

    /// The newest metadata of VG `name` and its PVs on this system.
    pub fn vg(&self, name: &str) -> Option<(Vg, Vec<&Pv>)> {
        let newest = self
            .pvs
            .iter()
            .filter_map(|(_, v)| v.as_ref())
            .filter(|v| v.name == name)
            .max_by_key(|v| v.seqno)?
            .clone();
        let members = self
            .pvs
            .iter()
            .filter(|(p, _)| newest.pvs.iter().any(|vp| undashed(&vp.id) == p.label.uuid))
            .map(|(p, _)| p)
            .collect();
        Some((newest, members))
    }

    /// Like [`Scan::vg`], with an error naming the missing VG.
    pub fn need_vg(&self, name: &str) -> Result<(Vg, Vec<&Pv>)> {
        self.vg(name)
            .ok_or_else(|| anyhow!("volume group {name} not found"))
    }

    /// Names of all VGs found.
    pub fn vg_names(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .pvs
            .iter()
            .filter_map(|(_, v)| v.as_ref().map(|v| v.name.clone()))
            .collect();
        v.sort();
        v.dedup();
        v
    }
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "localhost".into())
}

/// Where backups and archives go (`ORION_LVM_SYSTEM_DIR`, default /etc/lvm, as LVM2).
fn system_dir() -> PathBuf {
    std::env::var_os("ORION_LVM_SYSTEM_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/etc/lvm"))
}

/// Keeps the metadata a change replaces in `archive/VG_NNNNN-<seqno>.vg`, as LVM2's
/// archive does; failures to archive are reported but do not stop the change.
fn archive(previous: &str, vg: &str, seqno: u64) {
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

/// `vgextend`: adds devices (made PVs when they are not) to a VG.
pub fn vgextend(vg_name: &str, devices: &[PathBuf]) -> Result<()> {
    let scan = Scan::run(&[])?;
    let (mut vg, members) = scan.need_vg(vg_name)?;
    let mut paths: Vec<PathBuf> = members.iter().map(|p| p.path.clone()).collect();
    let mut next = vg.pvs.len();
    for d in devices {
        while vg.pv(&format!("pv{next}")).is_some() {
            next += 1;
        }
        let vp = admit_pv(d, format!("pv{next}"), vg.extent_size)?;
        vg.pvs.push(vp);
        paths.push(d.clone());
    }
    vg.seqno += 1;
    commit(
        &vg,
        &paths,
        &format!("Write from orion-lvm vgextend {vg_name}."),
    )
}

/// `vgreduce`: removes unused PVs from a VG; their metadata is wiped.
pub fn vgreduce(vg_name: &str, devices: &[PathBuf]) -> Result<()> {
    let scan = Scan::run(&[])?;
    let (mut vg, members) = scan.need_vg(vg_name)?;
    let mut removed = Vec::new();
    for d in devices {
        let p = members
            .iter()
            .find(|p| p.path == *d)
            .ok_or_else(|| anyhow!("{} is not in volume group {vg_name}", d.display()))?;
        let id = dashed(&p.label.uuid);
        let key = vg
            .pvs
            .iter()
            .find(|vp| vp.id == id)
            .map(|vp| vp.key.clone())
            .unwrap_or_default();
        let used = vg.lvs.iter().any(|l| {
            l.segments.iter().any(|s| match &s.kind {
                SegmentKind::Striped { stripes, .. } => stripes.iter().any(|(pv, _)| *pv == key),
                SegmentKind::Other(raw) => {
                    crate::config::write(raw).contains(&format!("\"{key}\""))
                }
            })
        });
        if used {
            bail!("{} is still used by logical volumes", d.display());
        }
        vg.pvs.retain(|vp| vp.id != id);
        removed.push(d.clone());
    }
    if vg.pvs.is_empty() {
        bail!("cannot remove the last PV of {vg_name}; use vgremove");
    }
    vg.seqno += 1;
    let paths: Vec<PathBuf> = members
        .iter()
        .map(|p| p.path.clone())
        .filter(|p| !removed.contains(p))
        .collect();
    commit(
        &vg,
        &paths,
        &format!("Write from orion-lvm vgreduce {vg_name}."),
    )?;
    for d in removed {
        pv::pvcreate(&d, true)?;
    }
    Ok(())
}

/// Writes `vg` to every PV in `members` (each PV's label marked used), archiving the
/// metadata it replaces.
pub fn commit(vg: &Vg, members: &[PathBuf], description: &str) -> Result<()> {
    if let Some(first) = members.first() {
        if let Ok(Some(prev)) = Pv::scan(first).map(|p| p.and_then(|p| p.text().ok().flatten())) {
            let seq = Vg::from_text(&prev).map(|v| v.seqno).unwrap_or(0);
            archive(&prev, &vg.name, seq);
        }
    }
    let text = vg.to_text(description, now(), &host());
    for path in members {
        let mut p =
            Pv::scan(path)?.ok_or_else(|| anyhow!("{}: PV label vanished", path.display()))?;
        p.write_text(&text, true)?;
    }
    Ok(())
}

/// Checks a VG or LV name the way LVM2 does.
pub fn valid_name(n: &str) -> Result<()> {
    if n.is_empty() || n.len() > 127 || n.starts_with('-') || n == "." || n == ".." {
        bail!("invalid name {n:?}");
    }
    if !n
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "+_.-".contains(c))
    {
        bail!("name {n:?} has characters other than a-z A-Z 0-9 + _ . -");
    }
    Ok(())
}

/// Admits device `d` to a VG as PV `key`: makes it a PV when it is not one, refuses one
/// that belongs to a VG, and counts its extents.
fn admit_pv(d: &Path, key: String, extent_size: u64) -> Result<VgPv> {
    let p = match Pv::scan(d)? {
        Some(p) => p,
        None => pv::pvcreate(d, false)?,
    };
    if p.label.ext_flags & crate::label::PV_EXT_USED != 0 || p.text()?.is_some() {
        bail!("{} already belongs to a volume group", d.display());
    }
    let dev_size = p.label.device_size / 512;
    let pe_start = p.pe_start_sectors();
    let pe_count = dev_size.saturating_sub(pe_start) / extent_size;
    if pe_count == 0 {
        bail!("{} is smaller than one extent", d.display());
    }
    Ok(VgPv {
        key,
        id: dashed(&p.label.uuid),
        device: d.display().to_string(),
        dev_size,
        pe_start,
        pe_count,
        raw: Default::default(),
    })
}

/// `vgcreate`: a VG over unused PVs (made PVs first when they are not).
pub fn vgcreate(name: &str, devices: &[PathBuf], extent_size: u64) -> Result<Vg> {
    valid_name(name)?;
    if !extent_size.is_power_of_two() || extent_size < 8 {
        bail!("extent size must be a power of two of at least 4 KiB");
    }
    let scan = Scan::run(&[])?;
    if scan.vg_names().iter().any(|n| n == name) {
        bail!("a volume group called {name} already exists");
    }
    let pvs = devices
        .iter()
        .enumerate()
        .map(|(i, d)| admit_pv(d, format!("pv{i}"), extent_size))
        .collect::<Result<Vec<_>>>()?;
    let vg = Vg {
        name: name.to_owned(),
        id: dashed(&new_uuid()?),
        seqno: 1,
        extent_size,
        pvs,
        lvs: Vec::new(),
        raw: Default::default(),
    };
    commit(
        &vg,
        devices,
        &format!("Write from orion-lvm vgcreate {name}."),
    )?;
    Ok(vg)
}

/// Where the new LV's extents come from.
pub struct LvRequest<'a> {
    /// Name.
    pub name: &'a str,
    /// Extents.
    pub extents: u64,
    /// Stripes (1 for linear).
    pub stripes: u64,
    /// Stripe size in sectors.
    pub stripe_size: u64,
}

/// Allocates extents for an LV with LVM2's "normal" policy: linear LVs take free runs in
/// PV order (several segments when one run is too short); striped LVs need one run of
/// `extents / stripes` on each of `stripes` different PVs.
pub fn allocate(vg: &Vg, req: &LvRequest<'_>) -> Result<Vec<Segment>> {
    let runs = vg.free_runs();
    if req.stripes <= 1 {
        let mut segs = Vec::new();
        let mut need = req.extents;
        let mut le = 0;
        for (pv, free) in &runs {
            for &(start, len) in free {
                if need == 0 {
                    break;
                }
                let take = len.min(need);
                segs.push(Segment {
                    start_extent: le,
                    extent_count: take,
                    kind: SegmentKind::Striped {
                        stripe_size: None,
                        stripes: vec![(pv.clone(), start)],
                    },
                });
                le += take;
                need -= take;
            }
        }
        if need > 0 {
            bail!(
                "insufficient free space: {} extents needed, {} available in {}",
                req.extents,
                vg.free_extents(),
                vg.name
            );
        }
        return Ok(segs);
    }
    if !req.extents.is_multiple_of(req.stripes) {
        bail!(
            "{} extents cannot be split evenly over {} stripes",
            req.extents,
            req.stripes
        );
    }
    let per = req.extents / req.stripes;
    let mut areas = Vec::new();
    for (pv, free) in &runs {
        if areas.len() as u64 == req.stripes {
            break;
        }
        if let Some(&(start, _)) = free.iter().find(|(_, len)| *len >= per) {
            areas.push((pv.clone(), start));
        }
    }
    if (areas.len() as u64) < req.stripes {
        bail!(
            "insufficient suitable allocatable extents: {} stripes of {per} extents need {} PVs with that much contiguous free space",
            req.stripes,
            req.stripes
        );
    }
    Ok(vec![Segment {
        start_extent: 0,
        extent_count: req.extents,
        kind: SegmentKind::Striped {
            stripe_size: Some(req.stripe_size),
            stripes: areas,
        },
    }])
}

/// Merges neighbouring segments whose areas continue each other, as LVM2 does.
pub fn merge_segments(segs: &mut Vec<Segment>) {
    let mut out: Vec<Segment> = Vec::new();
    for s in segs.drain(..) {
        if let Some(last) = out.last_mut() {
            if let (
                SegmentKind::Striped {
                    stripe_size: a_size,
                    stripes: a,
                },
                SegmentKind::Striped {
                    stripe_size: b_size,
                    stripes: b,
                },
            ) = (&last.kind, &s.kind)
            {
                let per = last.extent_count / a.len() as u64;
                let continues = a_size == b_size
                    && a.len() == b.len()
                    && a.iter()
                        .zip(b)
                        .all(|((pa, ea), (pb, eb))| pa == pb && ea + per == *eb);
                if continues && last.start_extent + last.extent_count == s.start_extent {
                    last.extent_count += s.extent_count;
                    continue;
                }
            }
        }
        out.push(s);
    }
    *segs = out;
}

/// Extents to add to `lv`: right after its last areas when they are free (what LVM2's
/// normal policy picks first), otherwise anywhere by [`allocate`].
pub fn allocate_extension(vg: &Vg, lv: &crate::vg::Lv, extra: u64) -> Result<Vec<Segment>> {
    let start = lv.extents();
    if let Some(Segment {
        extent_count,
        kind: SegmentKind::Striped {
            stripe_size,
            stripes,
        },
        ..
    }) = lv.segments.last()
    {
        let n = stripes.len() as u64;
        let per = extent_count / n;
        if extra.is_multiple_of(n) {
            let runs = vg.free_runs();
            let fits = stripes.iter().all(|(pv, pe)| {
                runs.iter().any(|(k, free)| {
                    k == pv
                        && free
                            .iter()
                            .any(|(s, len)| *s == pe + per && *len >= extra / n)
                })
            });
            if fits {
                return Ok(vec![Segment {
                    start_extent: start,
                    extent_count: extra,
                    kind: SegmentKind::Striped {
                        stripe_size: *stripe_size,
                        stripes: stripes
                            .iter()
                            .map(|(pv, pe)| (pv.clone(), pe + per))
                            .collect(),
                    },
                }]);
            }
        }
    }
    let (stripes, stripe_size) = match lv.segments.last().map(|s| &s.kind) {
        Some(SegmentKind::Striped {
            stripes,
            stripe_size,
        }) => (stripes.len() as u64, stripe_size.unwrap_or(128)),
        _ => (1, 128),
    };
    let mut segs = allocate(
        vg,
        &LvRequest {
            name: &lv.name,
            extents: extra,
            stripes,
            stripe_size,
        },
    )?;
    for s in &mut segs {
        s.start_extent += start;
    }
    Ok(segs)
}

/// `lvresize`: grows or shrinks `lv` to `extents`; an active LV gets its new table loaded,
/// is suspended, the metadata is committed, and it resumes.
pub fn lvresize(vg_name: &str, lv_name: &str, extents: u64, prefix: &str) -> Result<(u64, u64)> {
    let scan = Scan::run(&[])?;
    let (mut vg, members) = scan.need_vg(vg_name)?;
    let i = vg
        .lvs
        .iter()
        .position(|l| l.name == lv_name)
        .ok_or_else(|| anyhow!("logical volume {vg_name}/{lv_name} not found"))?;
    if !vg.snapshots_of(lv_name).is_empty() || is_cow(&vg, lv_name) {
        bail!("resizing origins and snapshots is not supported yet");
    }
    let cur = vg.lvs[i].extents();
    if extents == cur {
        bail!("new size ({extents} extents) matches the existing size");
    }
    if extents == 0 {
        bail!("an LV cannot shrink to nothing");
    }
    if extents > cur {
        let mut more = allocate_extension(&vg, &vg.lvs[i], extents - cur)?;
        vg.lvs[i].segments.append(&mut more);
        merge_segments(&mut vg.lvs[i].segments);
    } else {
        let lv = &mut vg.lvs[i];
        lv.segments.retain(|s| s.start_extent < extents);
        if let Some(last) = lv.segments.last_mut() {
            let n = match &last.kind {
                SegmentKind::Striped { stripes, .. } => stripes.len() as u64,
                SegmentKind::Other(_) => 1,
            };
            let keep = extents - last.start_extent;
            if !keep.is_multiple_of(n) {
                bail!("a striped LV shrinks by whole stripes: {n} extents at a time");
            }
            last.extent_count = keep;
        }
    }
    vg.seqno += 1;
    let paths: Vec<PathBuf> = members.iter().map(|p| p.path.clone()).collect();
    let description = format!("Write from orion-lvm lvresize {vg_name}/{lv_name}.");
    let ctl = Control::open().ok();
    let name = activate::dm_name(vg_name, lv_name);
    let active = ctl
        .as_ref()
        .is_some_and(|c| c.info(&DevId::Name(name.clone())).is_ok());
    match (ctl, active) {
        (Some(ctl), true) => {
            let devs = activate::pv_devices(&vg, &members)?;
            let table = activate::table(&vg, &vg.lvs[i], &devs, prefix)?;
            let id = DevId::Name(name);
            let readonly = !vg.lvs[i].status.iter().any(|s| s == "WRITE");
            ctl.load(&id, &table, readonly)?;
            ctl.suspend(&id, false)?;
            let committed = commit(&vg, &paths, &description);
            // Resume whatever happens: a failed commit leaves the old metadata and the new
            // table, which the next activation replaces.
            ctl.resume(&id)?;
            committed?;
        }
        _ => commit(&vg, &paths, &description)?,
    }
    Ok((cur, extents))
}

/// `lvcreate` (metadata only).
pub fn lvcreate(vg_name: &str, req: &LvRequest<'_>) -> Result<Vg> {
    valid_name(req.name)?;
    let scan = Scan::run(&[])?;
    let (mut vg, members) = scan.need_vg(vg_name)?;
    if vg.lvs.iter().any(|l| l.name == req.name) {
        bail!("logical volume {} already exists in {vg_name}", req.name);
    }
    if req.extents == 0 {
        bail!("an LV needs at least one extent");
    }
    let segments = allocate(&vg, req)?;
    vg.lvs.push(Lv {
        name: req.name.to_owned(),
        id: dashed(&new_uuid()?),
        status: vec!["READ".into(), "WRITE".into(), "VISIBLE".into()],
        segments,
        raw: Default::default(),
    });
    vg.seqno += 1;
    let paths: Vec<PathBuf> = members.iter().map(|p| p.path.clone()).collect();
    commit(
        &vg,
        &paths,
        &format!("Write from orion-lvm lvcreate -n {} {vg_name}.", req.name),
    )
    .context("writing metadata")?;
    Ok(vg)
}

/// Whether `lv` is the COW LV of a snapshot (activated with its origin).
fn is_cow(vg: &Vg, lv: &str) -> bool {
    vg.lvs
        .iter()
        .filter_map(|l| l.snapshot_of())
        .any(|(_, cow, _)| cow == lv)
}

/// Activates every LV of `vg_name` (`on`) or deactivates them all, snapshots with their
/// origins.
pub fn vgchange(vg_name: &str, on: bool, prefix: &str) -> Result<usize> {
    let scan = Scan::run(&[])?;
    let (vg, members) = scan.need_vg(vg_name)?;
    let ctl = Control::open().context("opening /dev/mapper/control")?;
    let devs = activate::pv_devices(&vg, &members)?;
    let mut n = 0;
    for lv in vg.user_lvs() {
        if !is_cow(&vg, &lv.name) {
            if on {
                activate::activate_with_snapshots(&ctl, &vg, lv, &devs, prefix, &[])?;
            } else {
                activate::deactivate_with_snapshots(&ctl, &vg, lv)?;
            }
        }
        n += 1;
    }
    Ok(n)
}

/// Activates or deactivates one LV (a snapshot goes with its origin).
pub fn lvchange(vg_name: &str, lv: &str, on: bool, prefix: &str) -> Result<()> {
    let scan = Scan::run(&[])?;
    let (vg, members) = scan.need_vg(vg_name)?;
    let origin = vg
        .lvs
        .iter()
        .filter_map(|l| l.snapshot_of())
        .find(|(_, cow, _)| *cow == lv)
        .map(|(o, _, _)| o.to_owned());
    let target = origin.as_deref().unwrap_or(lv);
    let l = vg
        .lv(target)
        .ok_or_else(|| anyhow!("logical volume {vg_name}/{lv} not found"))?;
    let ctl = Control::open().context("opening /dev/mapper/control")?;
    if on {
        let devs = activate::pv_devices(&vg, &members)?;
        activate::activate_with_snapshots(&ctl, &vg, l, &devs, prefix, &[])
    } else {
        activate::deactivate_with_snapshots(&ctl, &vg, l)
    }
}

/// `lvcreate -s`: a snapshot of `origin` with a COW LV of `extents`, activated (origin
/// suspended meanwhile) when the origin is active or `activate` is set.
pub fn lvcreate_snapshot(
    vg_name: &str,
    origin: &str,
    name: &str,
    extents: u64,
    activate_it: bool,
    prefix: &str,
) -> Result<Vg> {
    valid_name(name)?;
    let scan = Scan::run(&[])?;
    let (mut vg, members) = scan.need_vg(vg_name)?;
    let o = vg
        .lv(origin)
        .ok_or_else(|| anyhow!("origin {vg_name}/{origin} not found"))?
        .clone();
    if o.snapshot_of().is_some() || is_cow(&vg, origin) {
        bail!("{vg_name}/{origin} is a snapshot; snapshots of snapshots are not supported");
    }
    if vg.lv(name).is_some() {
        bail!("logical volume {name} already exists in {vg_name}");
    }
    let segments = allocate(
        &vg,
        &LvRequest {
            name,
            extents,
            stripes: 1,
            stripe_size: 128,
        },
    )?;
    vg.lvs.push(Lv {
        name: name.to_owned(),
        id: dashed(&new_uuid()?),
        status: vec!["READ".into(), "WRITE".into()],
        segments,
        raw: Default::default(),
    });
    let mut n = 0;
    while vg.lv(&format!("snapshot{n}")).is_some() {
        n += 1;
    }
    let mut seg = crate::config::Section::default();
    seg.push("start_extent", crate::config::Value::Int(0))
        .push(
            "extent_count",
            crate::config::Value::Int(o.extents() as i64),
        )
        .push("type", crate::config::Value::Str("snapshot".into()))
        .push("chunk_size", crate::config::Value::Int(8))
        .push("origin", crate::config::Value::Str(origin.into()))
        .push("cow_store", crate::config::Value::Str(name.into()));
    vg.lvs.push(Lv {
        name: format!("snapshot{n}"),
        id: dashed(&new_uuid()?),
        status: vec!["READ".into(), "WRITE".into(), "VISIBLE".into()],
        segments: vec![Segment {
            start_extent: 0,
            extent_count: o.extents(),
            kind: SegmentKind::Other(seg),
        }],
        raw: Default::default(),
    });
    vg.seqno += 1;
    let ctl = Control::open().ok();
    let origin_name = activate::dm_name(vg_name, origin);
    let origin_active = ctl
        .as_ref()
        .is_some_and(|c| c.info(&DevId::Name(origin_name.clone())).is_ok());
    let paths: Vec<PathBuf> = members.iter().map(|p| p.path.clone()).collect();
    let description = format!("Write from orion-lvm lvcreate -s -n {name} {vg_name}/{origin}.");
    match ctl {
        Some(ctl) if origin_active || activate_it => {
            let id = DevId::Name(origin_name);
            // The snapshot is taken at this suspend: no write reaches the origin until its
            // snapshot-origin table is live.
            if origin_active {
                ctl.suspend(&id, false)?;
            }
            commit(&vg, &paths, &description)?;
            let devs = activate::pv_devices(&vg, &members)?;
            let o = vg.lv(origin).ok_or_else(|| anyhow!("origin vanished"))?;
            let r = activate::activate_with_snapshots(&ctl, &vg, o, &devs, prefix, &[name]);
            if r.is_err() && origin_active {
                let _ = ctl.resume(&id);
            }
            r?;
        }
        _ => commit(&vg, &paths, &description)?,
    }
    Ok(vg)
}

/// `lvremove`: deactivates the LV if it is active, then drops it from the metadata. A
/// snapshot takes its `snapshotN` record with it and its origin goes back to a plain table.
pub fn lvremove(vg_name: &str, lv: &str) -> Result<()> {
    let scan = Scan::run(&[])?;
    let (mut vg, members) = scan.need_vg(vg_name)?;
    let Some(l) = vg.lv(lv).cloned() else {
        bail!("logical volume {vg_name}/{lv} not found");
    };
    if !vg.snapshots_of(lv).is_empty() {
        bail!("logical volume {vg_name}/{lv} has snapshots; remove them first");
    }
    let record = vg
        .lvs
        .iter()
        .find(|x| x.snapshot_of().is_some_and(|(_, cow, _)| cow == lv))
        .map(|x| (x.name.clone(), x.snapshot_of().map(|s| s.0.to_owned())));
    let ctl = Control::open().ok();
    if let Some(ctl) = &ctl {
        let name = activate::dm_name(vg_name, lv);
        if let Ok(info) = ctl.info(&DevId::Name(name.clone())) {
            if info.open_count > 0 {
                bail!("logical volume {vg_name}/{lv} is in use");
            }
            activate::deactivate(ctl, &vg, &l)?;
        }
        if record.is_some() {
            activate::remove_cow(ctl, &name)?;
        }
    }
    vg.lvs.retain(|x| x.name != lv);
    if let Some((rec, _)) = &record {
        vg.lvs.retain(|x| x.name != *rec);
    }
    vg.seqno += 1;
    let paths: Vec<PathBuf> = members.iter().map(|p| p.path.clone()).collect();
    commit(
        &vg,
        &paths,
        &format!("Write from orion-lvm lvremove {vg_name}/{lv}."),
    )?;
    // An active origin left without snapshots goes back to its own table.
    if let (Some(ctl), Some((_, Some(origin)))) = (&ctl, &record) {
        if vg.snapshots_of(origin).is_empty() {
            if let Some(o) = vg.lv(origin) {
                if ctl
                    .info(&DevId::Name(activate::dm_name(vg_name, origin)))
                    .is_ok()
                {
                    let devs = activate::pv_devices(&vg, &members)?;
                    activate::activate(ctl, &vg, o, &devs, "")?;
                    activate::remove_real(ctl, vg_name, origin)?;
                }
            }
        }
    }
    Ok(())
}

/// `vgremove`: refuses a VG with LVs unless `force`; deactivates them and wipes the PVs'
/// metadata.
pub fn vgremove(vg_name: &str, force: bool) -> Result<()> {
    let scan = Scan::run(&[])?;
    let (vg, members) = scan.need_vg(vg_name)?;
    if !vg.lvs.is_empty() && !force {
        bail!(
            "volume group {vg_name} still has {} logical volumes (use -f)",
            vg.lvs.len()
        );
    }
    if let Ok(ctl) = Control::open() {
        for lv in vg.user_lvs() {
            if !is_cow(&vg, &lv.name) {
                activate::deactivate_with_snapshots(&ctl, &vg, lv)?;
            }
        }
    }
    for p in members {
        // A PV with no VG is a fresh pvcreate.
        pv::pvcreate(&p.path, true)?;
    }
    Ok(())
}

/// Parses an LVM size (`10M`, `1g`, `512k`, `100s`; default unit MiB) into sectors.
pub fn parse_size(s: &str) -> Result<u64> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(s.len()));
    let v: f64 = num.parse().with_context(|| format!("bad size {s:?}"))?;
    let mult = match unit.to_ascii_lowercase().as_str() {
        "s" => 1.0,
        "k" | "kb" | "kib" => 2.0,
        "" | "m" | "mb" | "mib" => 2048.0,
        "g" | "gb" | "gib" => 2048.0 * 1024.0,
        "t" | "tb" | "tib" => 2048.0 * 1024.0 * 1024.0,
        _ => bail!("bad size unit in {s:?}"),
    };
    if v < 0.0 {
        bail!("negative size {s:?}");
    }
    Ok((v * mult).round() as u64)
}

/// Path of a device as given on the command line.
pub fn dev(p: &str) -> PathBuf {
    Path::new(p).to_owned()
}
