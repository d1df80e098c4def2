// SPDX-License-Identifier: GPL-2.0 OR MIT

//! A caching [`BlockManager`] over any block store: a file, a device, or memory.
//!
//! Blocks are checked with their kind when first read, sealed (location and checksum) when
//! written back, and written back only by `flush`, in block order. A block can be lent to
//! several readers or one writer at a time; a conflicting request gets `Busy` rather than a
//! panic.

use orion_pdata::block::{BlockManager, BlockNr, Kind, BLOCK_SIZE};
use orion_pdata::error::{Error, Result};
use orion_pdata::space_map::{metadata::MAX_BITMAPS, IndexEntry};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::rc::Rc;

/// Where blocks are stored.
pub trait Store {
    /// Number of whole blocks.
    fn nr_blocks(&self) -> u64;
    /// Reads block `b`.
    fn read_block(&self, b: BlockNr, buf: &mut [u8]) -> std::io::Result<()>;
    /// Writes block `b`.
    fn write_block(&self, b: BlockNr, buf: &[u8]) -> std::io::Result<()>;
    /// Makes written blocks durable.
    fn sync(&self) -> std::io::Result<()>;
}

/// A file or block device.
pub struct FileStore {
    file: File,
    nr_blocks: Cell<u64>,
}

impl FileStore {
    /// Opens `path` for reading, and writing when `writable`.
    pub fn open(path: &std::path::Path, writable: bool) -> std::io::Result<Self> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(writable)
            .open(path)?;
        let len = device_size(&file)?;
        Ok(FileStore {
            file,
            nr_blocks: Cell::new(len / BLOCK_SIZE as u64),
        })
    }

    /// Extends a regular file to `nr_blocks` blocks (the device grew underneath, as when
    /// the metadata volume is extended); a block device is only measured again.
    pub fn grow(&self, nr_blocks: u64) -> std::io::Result<()> {
        if self.file.metadata()?.is_file() {
            let len = nr_blocks * BLOCK_SIZE as u64;
            if len > self.file.metadata()?.len() {
                self.file.set_len(len)?;
            }
        }
        let len = device_size(&self.file)?;
        self.nr_blocks.set(len / BLOCK_SIZE as u64);
        Ok(())
    }
}

/// The size of a regular file or block device.
fn device_size(file: &File) -> std::io::Result<u64> {
    use std::io::{Seek, SeekFrom};
    let meta = file.metadata()?;
    if meta.is_file() {
        return Ok(meta.len());
    }
    let mut f = file;
    let end = f.seek(SeekFrom::End(0))?;
    f.seek(SeekFrom::Start(0))?;
    Ok(end)
}

impl Store for FileStore {
    fn nr_blocks(&self) -> u64 {
        self.nr_blocks.get()
    }

    fn read_block(&self, b: BlockNr, buf: &mut [u8]) -> std::io::Result<()> {
        self.file.read_exact_at(buf, b * BLOCK_SIZE as u64)
    }

    fn write_block(&self, b: BlockNr, buf: &[u8]) -> std::io::Result<()> {
        self.file.write_all_at(buf, b * BLOCK_SIZE as u64)
    }

    fn sync(&self) -> std::io::Result<()> {
        self.file.sync_data()
    }
}

/// Memory that records every block write in order (for crash simulation).
#[derive(Default)]
pub struct MemStore {
    /// The image.
    pub image: RefCell<Vec<u8>>,
    /// Every block write since the log was last cleared.
    pub log: RefCell<Vec<(BlockNr, Vec<u8>)>>,
}

impl MemStore {
    /// An image of `nr_blocks` zeroed blocks.
    pub fn new(nr_blocks: u64) -> Self {
        MemStore {
            image: RefCell::new(vec![0; nr_blocks as usize * BLOCK_SIZE]),
            log: RefCell::new(Vec::new()),
        }
    }

    /// An image holding `bytes`.
    pub fn from_image(bytes: Vec<u8>) -> Self {
        MemStore {
            image: RefCell::new(bytes),
            log: RefCell::new(Vec::new()),
        }
    }

    /// Extends the image with zeroed blocks to `nr_blocks` (the device grew).
    pub fn grow(&self, nr_blocks: u64) {
        let mut img = self.image.borrow_mut();
        let len = (nr_blocks as usize * BLOCK_SIZE).max(img.len());
        img.resize(len, 0);
    }
}

impl Store for MemStore {
    fn nr_blocks(&self) -> u64 {
        (self.image.borrow().len() / BLOCK_SIZE) as u64
    }

    fn read_block(&self, b: BlockNr, buf: &mut [u8]) -> std::io::Result<()> {
        let off = b as usize * BLOCK_SIZE;
        let img = self.image.borrow();
        let src = img
            .get(off..off + BLOCK_SIZE)
            .ok_or(std::io::ErrorKind::UnexpectedEof)?;
        buf.copy_from_slice(src);
        Ok(())
    }

    fn write_block(&self, b: BlockNr, buf: &[u8]) -> std::io::Result<()> {
        let off = b as usize * BLOCK_SIZE;
        let mut img = self.image.borrow_mut();
        let dst = img
            .get_mut(off..off + BLOCK_SIZE)
            .ok_or(std::io::ErrorKind::UnexpectedEof)?;
        dst.copy_from_slice(buf);
        self.log.borrow_mut().push((b, buf.to_vec()));
        Ok(())
    }

    fn sync(&self) -> std::io::Result<()> {
        Ok(())
    }
}

struct Slot {
    data: RefCell<Box<[u8]>>,
    kind: Cell<Option<Kind>>,
    dirty: Cell<bool>,
}

/// The caching block manager.
pub struct CachedBm<S: Store> {
    store: S,
    slots: RefCell<HashMap<BlockNr, Rc<Slot>>>,
}

impl<S: Store> CachedBm<S> {
    /// A block manager over `store`.
    pub fn new(store: S) -> Self {
        CachedBm {
            store,
            slots: RefCell::new(HashMap::new()),
        }
    }

    /// The store underneath.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Drops every cached block, dirty or not (a crash, or rereading after an external
    /// change).
    pub fn forget(&self) {
        self.slots.borrow_mut().clear();
    }

    fn slot(&self, b: BlockNr, kind: Option<Kind>, zero: bool) -> Result<Rc<Slot>> {
        if b >= self.store.nr_blocks() {
            return Err(Error::OutOfBounds(b));
        }
        if let Some(s) = self.slots.borrow().get(&b) {
            if zero {
                s.data.try_borrow_mut().map_err(|_| Error::Busy(b))?.fill(0);
                s.kind.set(kind);
                s.dirty.set(true);
                return Ok(s.clone());
            }
            if let Some(k) = kind {
                if s.kind.get() != Some(k) {
                    if s.dirty.get() {
                        return Err(Error::Corrupt {
                            block: b,
                            what: "block used as two different types",
                        });
                    }
                    k.check(b, &s.data.try_borrow().map_err(|_| Error::Busy(b))?)?;
                    s.kind.set(Some(k));
                }
            }
            return Ok(s.clone());
        }
        let mut data = vec![0u8; BLOCK_SIZE].into_boxed_slice();
        if !zero {
            self.store
                .read_block(b, &mut data)
                .map_err(|_| Error::Io(b))?;
            if let Some(k) = kind {
                k.check(b, &data)?;
            }
        }
        let s = Rc::new(Slot {
            data: RefCell::new(data),
            kind: Cell::new(kind),
            dirty: Cell::new(zero),
        });
        self.slots.borrow_mut().insert(b, s.clone());
        Ok(s)
    }
}

impl<S: Store> BlockManager for CachedBm<S> {
    type SpaceMapIndex = Vec<IndexEntry>;

    fn new_index(&self) -> Result<Self::SpaceMapIndex> {
        Ok(vec![IndexEntry::ZERO; MAX_BITMAPS])
    }

    fn nr_blocks(&self) -> u64 {
        self.store.nr_blocks()
    }

    fn read<R>(&self, b: BlockNr, kind: Kind, f: impl FnOnce(&[u8]) -> Result<R>) -> Result<R> {
        let s = self.slot(b, Some(kind), false)?;
        let d = s.data.try_borrow().map_err(|_| Error::Busy(b))?;
        f(&d)
    }

    fn write<R>(
        &self,
        b: BlockNr,
        kind: Kind,
        f: impl FnOnce(&mut [u8]) -> Result<R>,
    ) -> Result<R> {
        let s = self.slot(b, Some(kind), false)?;
        let mut d = s.data.try_borrow_mut().map_err(|_| Error::Busy(b))?;
        s.dirty.set(true);
        f(&mut d)
    }

    fn write_zeroed<R>(
        &self,
        b: BlockNr,
        kind: Kind,
        f: impl FnOnce(&mut [u8]) -> Result<R>,
    ) -> Result<R> {
        let s = self.slot(b, Some(kind), true)?;
        let mut d = s.data.try_borrow_mut().map_err(|_| Error::Busy(b))?;
        f(&mut d)
    }

    fn read_raw<R>(&self, b: BlockNr, f: impl FnOnce(&[u8]) -> Result<R>) -> Result<R> {
        let s = self.slot(b, None, false)?;
        let d = s.data.try_borrow().map_err(|_| Error::Busy(b))?;
        f(&d)
    }

    fn flush(&self) -> Result<()> {
        let mut dirty: Vec<(BlockNr, Rc<Slot>)> = self
            .slots
            .borrow()
            .iter()
            .filter(|(_, s)| s.dirty.get())
            .map(|(b, s)| (*b, s.clone()))
            .collect();
        dirty.sort_by_key(|(b, _)| *b);
        for (b, s) in dirty {
            let mut d = s.data.try_borrow_mut().map_err(|_| Error::Busy(b))?;
            if let Some(k) = s.kind.get() {
                k.seal(b, &mut d);
            }
            self.store.write_block(b, &d).map_err(|_| Error::Io(b))?;
            s.dirty.set(false);
        }
        self.store.sync().map_err(|_| Error::Io(0))
    }
}
