// SPDX-License-Identifier: GPL-2.0 OR MIT

//! Damaged thin-pool metadata loaded by our pool: it must refuse it or come up in a mode
//! that protects the data (read-only, fail, needs_check), with a log line saying why, and
//! never crash, hang or leak. Each case writes a damaged copy of a pristine image to the
//! metadata device, loads a pool on it, and drives it: status, a message, a thin device,
//! a read and a write.

use crate::damage;
use crate::kmsg::{table_error, Kmsg};
use orion_lvm::dm::ioctl::{make_node, Control, DevId, Target};
use std::fs::OpenOptions;
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;

/// What our pool made of one damaged image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The table load or resume was refused, with dm core's `ti->error` line (if any).
    Refused(Option<String>),
    /// The pool came up; its mode from the status after the thin device's I/O (`rw`, `ro`,
    /// `out_of_data_space`, `Fail`), whether it says `needs_check`, and what the thin did (`None`: it could not be
    /// activated; else whether the read and the write succeeded).
    Loaded {
        /// `rw`, `ro`, `out_of_data_space` or `Fail`.
        mode: String,
        /// The status says `needs_check`.
        needs_check: bool,
        /// The thin device's read and write results, if it came up.
        io: Option<(bool, bool)>,
    },
}

/// The devices of a run.
pub struct Setup<'a> {
    /// The pool's metadata device (written by each case).
    pub meta: &'a str,
    /// Its data device.
    pub data: &'a str,
    /// Our targets' name prefix.
    pub prefix: &'a str,
}

fn aligned(len: usize) -> (Vec<u8>, usize) {
    let buf = vec![0u8; len + 4096];
    let off = buf.as_ptr().align_offset(4096);
    (buf, off)
}

fn write_image(dev: &str, image: &[u8]) -> io::Result<()> {
    let f = OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_DIRECT)
        .open(dev)?;
    let (mut buf, off) = aligned(image.len());
    buf[off..off + image.len()].copy_from_slice(image);
    f.write_all_at(&buf[off..off + image.len()], 0)
}

/// Reads 64 KiB at 0 and writes 64 KiB at 64 KiB of `path`, with O_DIRECT.
fn thin_io(path: &Path) -> (bool, bool) {
    let Ok(f) = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_DIRECT)
        .open(path)
    else {
        return (false, false);
    };
    let (mut buf, off) = aligned(65536);
    let read = f.read_exact_at(&mut buf[off..off + 65536], 0).is_ok();
    buf[off..off + 65536].fill(0x5a);
    let write = f.write_all_at(&buf[off..off + 65536], 65536).is_ok() && f.sync_all().is_ok();
    (read, write)
}

fn sectors(dev: &str) -> io::Result<u64> {
    let name = Path::new(dev)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_owned();
    let s = std::fs::read_to_string(format!("/sys/class/block/{name}/size"))?;
    s.trim().parse().map_err(io::Error::other)
}

/// Runs one damaged image; `log` collects every kernel log line.
pub fn run(
    ctl: &Control,
    kmsg: &mut Kmsg,
    s: &Setup<'_>,
    image: &[u8],
    log: &mut Vec<String>,
) -> io::Result<Outcome> {
    write_image(s.meta, image)?;
    log.extend(kmsg.drain_marked());
    let pool = DevId::Name("fzm-pool".to_owned());
    let thin = DevId::Name("fzm-thin".to_owned());
    let _ = ctl.remove(&thin);
    let _ = ctl.remove(&pool);
    let info = ctl.create("fzm-pool", "").map_err(io::Error::other)?;
    let table = [Target {
        start: 0,
        len: sectors(s.data)?,
        kind: format!("{}thin-pool", s.prefix),
        params: format!("{} {} 128 0 1 error_if_no_space", s.meta, s.data),
    }];
    let loaded = ctl
        .load(&pool, &table, false)
        .and_then(|()| ctl.resume(&pool));
    let outcome = match loaded {
        Err(_) => {
            let lines = kmsg.drain_marked();
            let e = table_error(&lines);
            log.extend(lines);
            Outcome::Refused(e)
        }
        Ok(_) => {
            let _ = ctl.message(&pool, 0, "create_thin 9");
            let thin_table = [Target {
                start: 0,
                len: 8192,
                kind: format!("{}thin", s.prefix),
                // By number: there is no udev to make the pool's node.
                params: format!("{}:{} 1", info.major, info.minor),
            }];
            let io = ctl
                .create("fzm-thin", "")
                .ok()
                .and_then(|_| ctl.load(&thin, &thin_table, false).ok())
                .and_then(|()| ctl.resume(&thin).ok())
                .map(|ti| {
                    let path = Path::new("/dev/mapper/fzm-thin");
                    match make_node(path, ti.major, ti.minor) {
                        Ok(()) => thin_io(path),
                        Err(_) => (false, false),
                    }
                });
            let _ = ctl.remove(&thin);
            // The mode after all that: damage found on the way must have changed it.
            let status = ctl
                .status(&pool)
                .map(|t| t.first().map(|t| t.params.clone()).unwrap_or_default())
                .unwrap_or_default();
            let words: Vec<&str> = status.split_whitespace().collect();
            let mode = if status.trim() == "Fail" {
                "Fail".to_owned()
            } else {
                words
                    .iter()
                    .find(|w| matches!(**w, "rw" | "ro" | "out_of_data_space"))
                    .map(|w| (*w).to_owned())
                    .unwrap_or_else(|| status.clone())
            };
            let needs_check = words.contains(&"needs_check");
            log.extend(kmsg.drain_marked());
            Outcome::Loaded {
                mode,
                needs_check,
                io,
            }
        }
    };
    ctl.remove(&pool).map_err(io::Error::other)?;
    log.extend(kmsg.drain_marked());
    Ok(outcome)
}

/// A metadata image's used blocks and their kinds.
pub type UsedBlocks = Vec<(u64, orion_pdata::block::Kind)>;

/// The pristine image and its used blocks.
pub fn pristine(path: &str) -> io::Result<(Vec<u8>, UsedBlocks)> {
    let image = std::fs::read(path)?;
    let used = damage::used_blocks(&image);
    Ok((image, used))
}
