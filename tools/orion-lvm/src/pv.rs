// SPDX-License-Identifier: GPL-2.0 OR MIT

//! Physical volumes on block devices: scanning for labels, pvcreate, pvremove, and
//! reading or writing the metadata text in every metadata area of a PV.

use crate::label::{self, DiskLocn, PvLabel, LABEL_SECTOR, SECTOR};
use crate::mda::{MdaError, MdaHeader};
use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Where pvcreate puts the metadata area and the first extent, as LVM2 does by default.
pub const MDA_START: u64 = 4096;
/// Default first physical extent: 1 MiB.
pub const PE_START: u64 = 1 << 20;

/// A PV found on a device.
pub struct Pv {
    /// The device.
    pub path: PathBuf,
    /// Its label.
    pub label: PvLabel,
    /// Its metadata area headers.
    pub mdas: Vec<MdaHeader>,
    /// Metadata areas whose header is damaged: (offset, size), left out of reads and
    /// given a fresh header on the next write.
    pub damaged: Vec<(u64, u64)>,
}

/// PV errors.
#[derive(Debug, thiserror::Error)]
pub enum PvError {
    /// Device I/O.
    #[error("{0}: {1}")]
    Io(PathBuf, std::io::Error),
    /// A damaged label.
    #[error("{0}: {1}")]
    Label(PathBuf, label::LabelError),
    /// A damaged metadata area.
    #[error("{0}: {1}")]
    Mda(PathBuf, MdaError),
    /// The device holds something else.
    #[error("{0}: {1} (use --force to overwrite)")]
    Foreign(PathBuf, &'static str),
    /// The device is too small.
    #[error("{0}: device too small for a PV ({1} bytes)")]
    TooSmall(PathBuf, u64),
    /// An unsupported request.
    #[error("{0}: {1}")]
    Unsupported(PathBuf, &'static str),
}

/// Opens a device for reading, and writing when `rw`.
pub fn open(path: &Path, rw: bool) -> Result<File, PvError> {
    OpenOptions::new()
        .read(true)
        .write(rw)
        .open(path)
        .map_err(|e| PvError::Io(path.to_owned(), e))
}

/// The size of a device or file in bytes.
pub fn size_of(path: &Path, f: &File) -> Result<u64, PvError> {
    let mut f = f;
    let end = f
        .seek(SeekFrom::End(0))
        .map_err(|e| PvError::Io(path.to_owned(), e))?;
    Ok(end)
}

impl Pv {
    /// Reads the label and metadata area headers of `path`; `Ok(None)` if it has no label.
    pub fn scan(path: &Path) -> Result<Option<Pv>, PvError> {
        let f = open(path, false)?;
        let mut head = vec![0u8; label::SCAN_SECTORS as usize * SECTOR];
        if f.read_exact_at(&mut head, 0).is_err() {
            return Ok(None);
        }
        let Some(label) = PvLabel::find(&head).map_err(|e| PvError::Label(path.to_owned(), e))?
        else {
            return Ok(None);
        };
        // A damaged area is skipped while another one is readable, as LVM2 does.
        let mut mdas = Vec::new();
        let mut damaged = Vec::new();
        let mut first_error = None;
        for m in &label.metadata_areas {
            match MdaHeader::read(&f, m.offset) {
                Ok(h) => mdas.push(h),
                Err(e) => {
                    eprintln!(
                        "  WARNING: {}: metadata area at {}: {e}",
                        path.display(),
                        m.offset
                    );
                    damaged.push((m.offset, m.size));
                    first_error.get_or_insert(e);
                }
            }
        }
        if mdas.is_empty() {
            if let Some(e) = first_error {
                return Err(PvError::Mda(path.to_owned(), e));
            }
        }
        Ok(Some(Pv {
            path: path.to_owned(),
            label,
            mdas,
            damaged,
        }))
    }

    /// The metadata text of the first area that has a readable one.
    pub fn text(&self) -> Result<Option<String>, PvError> {
        let f = open(&self.path, false)?;
        let mut first_error = None;
        for m in &self.mdas {
            match m.read_text(&f) {
                Ok(Some(t)) => return Ok(Some(t)),
                Ok(None) => {}
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            Some(e) => Err(PvError::Mda(self.path.clone(), e)),
            None => Ok(None),
        }
    }

    /// Writes `text` to every metadata area and sets or clears the "used" flag.
    pub fn write_text(&mut self, text: &str, used: bool) -> Result<(), PvError> {
        let f = open(&self.path, true)?;
        for (start, size) in std::mem::take(&mut self.damaged) {
            MdaHeader::format(&f, start, size).map_err(|e| PvError::Mda(self.path.clone(), e))?;
            self.mdas.push(MdaHeader {
                start,
                size,
                raw_locns: Vec::new(),
            });
        }
        self.mdas.sort_by_key(|m| m.start);
        for m in &mut self.mdas {
            m.write_text(&f, text)
                .map_err(|e| PvError::Mda(self.path.clone(), e))?;
        }
        let flags = if used {
            self.label.ext_flags | label::PV_EXT_USED
        } else {
            self.label.ext_flags & !label::PV_EXT_USED
        };
        if flags != self.label.ext_flags {
            self.label.ext_flags = flags;
            self.write_label(&f)?;
        }
        Ok(())
    }

    /// The device's size in sectors as it is now (it may have grown or shrunk since the
    /// label recorded it), or the label's when the device cannot be opened.
    pub fn device_sectors(&self) -> u64 {
        open(&self.path, false)
            .and_then(|f| size_of(&self.path, &f))
            .unwrap_or(self.label.device_size)
            / 512
    }

    /// Records `bytes` as the device size in the label (`pvresize`).
    pub fn set_device_size(&mut self, bytes: u64) -> Result<(), PvError> {
        let f = open(&self.path, true)?;
        self.label.device_size = bytes;
        self.write_label(&f)
    }

    fn write_label(&self, f: &File) -> Result<(), PvError> {
        f.write_all_at(&self.label.encode(), self.label.sector * SECTOR as u64)
            .and_then(|_| f.sync_data())
            .map_err(|e| PvError::Io(self.path.clone(), e))
    }

    /// First sector of the data area (`pe_start`).
    pub fn pe_start_sectors(&self) -> u64 {
        self.label.data_areas.first().map_or(PE_START, |d| d.offset) / SECTOR as u64
    }

    /// End of the data area in sectors: the device's end, or a metadata area placed after
    /// the extents (`--pvmetadatacopies 2`).
    pub fn data_end_sectors(&self) -> u64 {
        let start = self.pe_start_sectors() * SECTOR as u64;
        self.label
            .metadata_areas
            .iter()
            .map(|m| m.offset)
            .filter(|o| *o >= start)
            .min()
            .unwrap_or(self.label.device_size)
            / SECTOR as u64
    }
}

/// Known signatures pvcreate refuses to overwrite without `--force`.
fn foreign_signature(head: &[u8]) -> Option<&'static str> {
    if head.get(1080..1082) == Some(&[0x53, 0xef]) {
        return Some("has an ext2/3/4 file system");
    }
    if head.get(510..512) == Some(&[0x55, 0xaa]) {
        return Some("has a partition table or boot sector");
    }
    if head.get(512..520) == Some(b"EFI PART") {
        return Some("has a GPT partition table");
    }
    if head.get(0x10040..0x10048) == Some(b"_BHRfS_M") {
        return Some("has a btrfs file system");
    }
    if head.get(0..4) == Some(b"XFSB") {
        return Some("has an XFS file system");
    }
    None
}

/// Makes `path` a PV. Refuses a device with a label of another VG's PV or a foreign
/// signature unless `force`.
/// `pvcreate`: one metadata area after the label (`copies` 1) or also one in the last
/// MiB of the device (`copies` 2, LVM2's `--pvmetadatacopies 2`: it starts at the device
/// end less 1 MiB, rounded down to 1 MiB).
pub fn pvcreate_with(path: &Path, force: bool, copies: u32) -> Result<Pv, PvError> {
    let f = open(path, true)?;
    let size = size_of(path, &f)?;
    if size < PE_START + (4 << 20) {
        return Err(PvError::TooSmall(path.to_owned(), size));
    }
    let mut head = vec![0u8; 0x10100];
    f.read_exact_at(&mut head, 0)
        .map_err(|e| PvError::Io(path.to_owned(), e))?;
    if !force {
        if let Ok(Some(pv)) = Pv::scan(path) {
            if pv.label.ext_flags & label::PV_EXT_USED != 0 {
                return Err(PvError::Foreign(
                    path.to_owned(),
                    "is a PV in a volume group",
                ));
            }
        } else if let Some(what) = foreign_signature(&head) {
            return Err(PvError::Foreign(path.to_owned(), what));
        }
    }
    let mut mdas = vec![(MDA_START, PE_START - MDA_START)];
    match copies {
        1 => {}
        2 => {
            let start = (size - PE_START) / PE_START * PE_START;
            if start < 2 * PE_START {
                return Err(PvError::TooSmall(path.to_owned(), size));
            }
            mdas.push((start, size - start));
        }
        _ => {
            return Err(PvError::Unsupported(
                path.to_owned(),
                "a PV here has 1 or 2 metadata areas",
            ))
        }
    }
    // Wipe old labels in the scanned sectors, then write ours.
    f.write_all_at(&vec![0u8; label::SCAN_SECTORS as usize * SECTOR], 0)
        .map_err(|e| PvError::Io(path.to_owned(), e))?;
    let uuid = label::new_uuid().map_err(|e| PvError::Io(path.to_owned(), e))?;
    let label = PvLabel {
        sector: LABEL_SECTOR,
        uuid,
        device_size: size,
        data_areas: vec![DiskLocn {
            offset: PE_START,
            size: 0,
        }],
        metadata_areas: mdas
            .iter()
            .map(|&(offset, size)| DiskLocn { offset, size })
            .collect(),
        ext_version: 2,
        ext_flags: 0,
        bootloader_areas: Vec::new(),
    };
    for &(start, len) in &mdas {
        MdaHeader::format(&f, start, len).map_err(|e| PvError::Mda(path.to_owned(), e))?;
    }
    let pv = Pv {
        path: path.to_owned(),
        mdas: mdas
            .iter()
            .map(|&(start, size)| MdaHeader {
                start,
                size,
                raw_locns: Vec::new(),
            })
            .collect(),
        label,
        damaged: Vec::new(),
    };
    pv.write_label(&f)?;
    Ok(pv)
}

/// `pvcreate` with LVM2's default single metadata area.
pub fn pvcreate(path: &Path, force: bool) -> Result<Pv, PvError> {
    pvcreate_with(path, force, 1)
}

/// Removes the PV label of `path`.
pub fn pvremove(path: &Path) -> Result<(), PvError> {
    let f = open(path, true)?;
    f.write_all_at(&vec![0u8; label::SCAN_SECTORS as usize * SECTOR], 0)
        .and_then(|_| f.sync_data())
        .map_err(|e| PvError::Io(path.to_owned(), e))
}

/// The devices `--devices` restricts every scan to, as LVM2's option does.
static DEVICES: std::sync::OnceLock<Vec<PathBuf>> = std::sync::OnceLock::new();

/// Restricts every later scan to `devices` (LVM2's `--devices`); set once, at start.
pub fn restrict_scan(devices: Vec<PathBuf>) {
    let _ = DEVICES.set(devices);
}

/// Block devices to scan: those given with `--devices`, else every entry of
/// /proc/partitions but LVs.
pub fn candidate_devices() -> Vec<PathBuf> {
    if let Some(d) = DEVICES.get() {
        return d.clone();
    }
    let Ok(parts) = std::fs::read_to_string("/proc/partitions") else {
        return Vec::new();
    };
    parts
        .lines()
        .skip(2)
        .filter_map(|l| l.split_whitespace().nth(3))
        .filter(|n| !is_lv(n))
        .map(|n| Path::new("/dev").join(n))
        .filter(|p| p.exists())
        .collect()
}

/// Whether block device `name` is an LVM LV (DM UUID `LVM-...`). LVM2 does not scan LVs
/// for PVs (`devices/scan_lvs = 0`); reading them would also fill their page cache with
/// data an LV's own I/O path then makes stale.
fn is_lv(name: &str) -> bool {
    std::fs::read_to_string(format!("/sys/block/{name}/dm/uuid"))
        .is_ok_and(|u| u.starts_with("LVM-"))
}
