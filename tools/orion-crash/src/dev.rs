// SPDX-License-Identifier: GPL-2.0 OR MIT

//! Devices and files for the crash tools: block devices are opened with `O_DIRECT` (no page
//! cache between the tool and the device under test), regular files (the host tests' model
//! devices) without it; buffers are aligned for either.

use crate::error::{IoContext, Result};
use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom};
use std::ops::{Deref, DerefMut};
use std::os::unix::fs::{FileExt, FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// The alignment of [`AlignedBuf`]: a page, enough for `O_DIRECT` on any logical block size.
pub const ALIGN: usize = 4096;

/// A zero-filled byte buffer whose first byte is [`ALIGN`]-aligned.
pub struct AlignedBuf {
    raw: Vec<u8>,
    start: usize,
    len: usize,
}

impl AlignedBuf {
    /// A buffer of `len` zero bytes.
    pub fn new(len: usize) -> Self {
        let raw = vec![0u8; len + ALIGN];
        // The vector is never grown, so its allocation (and this offset) stays put.
        let start = raw.as_ptr().align_offset(ALIGN);
        assert!(
            start < ALIGN,
            "align_offset of a u8 pointer is below the alignment"
        );
        Self { raw, start, len }
    }
}

impl Deref for AlignedBuf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.raw[self.start..self.start + self.len]
    }
}

impl DerefMut for AlignedBuf {
    fn deref_mut(&mut self) -> &mut [u8] {
        &mut self.raw[self.start..self.start + self.len]
    }
}

/// An open device or file with its size.
pub struct Device {
    file: File,
    path: PathBuf,
    size: u64,
}

impl Device {
    /// Opens `path` for reading (and writing when `writable`); `O_DIRECT` on block devices.
    pub fn open(path: &Path, writable: bool) -> Result<Self> {
        let meta = std::fs::metadata(path).at("cannot open", path)?;
        let mut opts = OpenOptions::new();
        opts.read(true).write(writable);
        if meta.file_type().is_block_device() {
            opts.custom_flags(libc::O_DIRECT);
        }
        let mut file = opts.open(path).at("cannot open", path)?;
        let size = file.seek(SeekFrom::End(0)).at("cannot size", path)?;
        Ok(Self {
            file,
            path: path.to_owned(),
            size,
        })
    }

    /// The size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The path it was opened by.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Fills `buf` from byte `offset`.
    pub fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<()> {
        self.file.read_exact_at(buf, offset).at(
            &format!("cannot read {} bytes at {offset} of", buf.len()),
            &self.path,
        )
    }

    /// Writes `buf` at byte `offset`.
    pub fn write_at(&self, buf: &[u8], offset: u64) -> Result<()> {
        self.file.write_all_at(buf, offset).at(
            &format!("cannot write {} bytes at {offset} to", buf.len()),
            &self.path,
        )
    }

    /// Makes what was written durable (`fdatasync`: a flush on a block device).
    pub fn sync(&self) -> Result<()> {
        self.file.sync_data().at("cannot flush", &self.path)
    }
}
