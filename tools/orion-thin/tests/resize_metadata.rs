// SPDX-License-Identifier: GPL-2.0 OR MIT

//! Growing the metadata device (`ThinMetadata::resize_metadata`, dm-thin's
//! `dm_pool_resize_metadata_dev`): a pool formatted on 100 blocks is filled until the
//! metadata runs out of space, grown step by step across bitmap boundaries (100, 5000,
//! 20 000, 50 000 and 70 000 blocks, one bitmap counting 16 320) and filled further. After
//! every commit every metadata block's reference count is recounted; at checkpoints
//! `thin_check` is clean and `thin_dump` prints the model's mappings, unchanged by a grow.

mod common;

use common::{
    assert_same_text, assert_thin_check_clean, assert_thin_counts_exact, ours_check_clean,
    ours_dump, scaled, thin_check, thin_dump, tool, Model, ModelDevice, Rng,
};
use orion_pdata::block::{BlockManager, BLOCK_SIZE};
use orion_pdata::error::Error;
use orion_pdata::space_map::metadata::MAX_BLOCKS;
use orion_pdata::space_map::ENTRIES_PER_BLOCK;
use orion_pdata::thin::ThinMetadata;
use orion_thin::cache::{CachedBm, FileStore, MemStore};
use orion_thin::dump;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

type Meta = ThinMetadata<CachedBm<FileStore>>;

/// Virtual blocks are scattered over this range, so trees grow wide.
const SPAN: u64 = 1 << 20;

fn file_of(dir: &Path, name: &str, nr_blocks: u64) -> PathBuf {
    let p = dir.join(name);
    let f = std::fs::File::create(&p).unwrap();
    f.set_len(nr_blocks * BLOCK_SIZE as u64).unwrap();
    p
}

fn open(path: &Path) -> Meta {
    ThinMetadata::open(CachedBm::new(FileStore::open(path, true).unwrap())).unwrap()
}

/// `METADATA_FREE_BLOCKS` as `thin_check` reports it, when it does.
fn thin_check_free_blocks(path: &Path) -> Option<u64> {
    thin_check(path)
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("METADATA_FREE_BLOCKS="))
        .and_then(|v| v.trim().parse().ok())
}

/// How to take back one change to the model when a transaction is dropped.
enum Undo {
    Time(u32),
    NrData(u64),
    Device(u64, Option<ModelDevice>),
    SnapTime(u64, u32),
    Mapping(u64, u64, Option<(u64, u32)>),
}

/// A pool on a file, with a model of what it holds and how to take the model back to the
/// last commit.
struct Pool {
    t: Option<Meta>,
    path: PathBuf,
    model: Model,
    undo: Vec<Undo>,
    devs: Vec<u64>,
    rng: Rng,
    next_dev: u64,
    ops: u64,
    commits: u64,
    checks: u64,
    full: u64,
    since_commit: u64,
    free_at_commit: u64,
}

impl Pool {
    fn format(path: PathBuf, nr_data: u64, seed: u64) -> Self {
        let bm = CachedBm::new(FileStore::open(&path, true).unwrap());
        let t = ThinMetadata::format(bm, 128, nr_data).unwrap();
        let free_at_commit = t.metadata_space().1;
        Pool {
            t: Some(t),
            path,
            model: Model {
                data_block_size: 128,
                nr_data_blocks: nr_data,
                ..Model::default()
            },
            undo: Vec::new(),
            devs: Vec::new(),
            rng: Rng::new(seed),
            next_dev: 0,
            ops: 0,
            commits: 0,
            checks: 0,
            full: 0,
            since_commit: 0,
            free_at_commit,
        }
    }

    fn t(&mut self) -> &mut Meta {
        self.t.as_mut().unwrap()
    }

    fn used(&mut self) -> u64 {
        let (total, free) = self.t().metadata_space();
        total - free
    }

    fn pick_dev(&mut self) -> Option<u64> {
        let n = self.devs.len() as u64;
        (n > 0).then(|| self.devs[self.rng.below(n) as usize])
    }

    /// A mapped virtual block of `dev` near a random one.
    fn pick_mapped(&mut self, dev: u64) -> Option<u64> {
        let v = self.rng.below(SPAN);
        let m = &self.model.devices[&dev].mappings;
        m.range(v..)
            .next()
            .or_else(|| m.iter().next())
            .map(|(k, _)| *k)
    }

    fn new_device(&mut self, id: u64, mappings: BTreeMap<u64, (u64, u32)>) {
        let time = self.model.time;
        let d = ModelDevice {
            transaction: 0,
            creation_time: time,
            snap_time: time,
            mappings,
        };
        self.devs.push(id);
        self.model.devices.insert(id, d);
        self.undo.push(Undo::Device(id, None));
    }

    fn set_mapping(&mut self, dev: u64, v: u64, m: Option<(u64, u32)>) {
        let d = self.model.devices.get_mut(&dev).unwrap();
        let old = match m {
            Some(m) => d.mappings.insert(v, m),
            None => d.mappings.remove(&v),
        };
        self.undo.push(Undo::Mapping(dev, v, old));
    }

    /// One random operation on the metadata and the model.
    fn step(&mut self) -> Result<(), Error> {
        self.ops += 1;
        let t = self.t.as_mut().unwrap();
        // Far more free data blocks than a transaction can use, so only the metadata
        // runs out.
        if t.data_sm().nr_free() < 4096 {
            let n = t.data_sm().nr_blocks() + ENTRIES_PER_BLOCK;
            t.resize_data(n)?;
            self.undo.push(Undo::NrData(self.model.nr_data_blocks));
            self.model.nr_data_blocks = n;
        }
        match self.rng.below(100) {
            0..=11 => {
                let id = self.next_dev;
                self.next_dev += 1;
                self.t().create_thin(id)?;
                self.new_device(id, BTreeMap::new());
            }
            12..=15 => {
                let Some(origin) = self.pick_dev() else {
                    return Ok(());
                };
                let id = self.next_dev;
                self.next_dev += 1;
                self.t().create_snap(id, origin)?;
                self.undo.push(Undo::Time(self.model.time));
                self.model.time += 1;
                let time = self.model.time;
                let o = self.model.devices.get_mut(&origin).unwrap();
                self.undo.push(Undo::SnapTime(origin, o.snap_time));
                o.snap_time = time;
                let mappings = o.mappings.clone();
                self.new_device(id, mappings);
            }
            16..=69 => {
                let Some(dev) = self.pick_dev() else {
                    return Ok(());
                };
                let v = self.rng.below(SPAN);
                for k in 0..1 + self.rng.below(8) {
                    let b = self.t().provision(dev, v + k)?;
                    self.set_mapping(dev, v + k, Some((b, self.model.time)));
                }
            }
            70..=84 => {
                // Overwrites break the sharing between snapshots and origins.
                let Some(dev) = self.pick_dev() else {
                    return Ok(());
                };
                if let Some(v) = self.pick_mapped(dev) {
                    let b = self.t().provision(dev, v)?;
                    self.set_mapping(dev, v, Some((b, self.model.time)));
                }
            }
            85..=97 => {
                let Some(dev) = self.pick_dev() else {
                    return Ok(());
                };
                if let Some(v) = self.pick_mapped(dev) {
                    assert!(self.t().remove(dev, v)?, "remove {dev}/{v}");
                    self.set_mapping(dev, v, None);
                }
            }
            _ => {
                if let Some(dev) = self.pick_dev() {
                    self.t().delete(dev)?;
                    self.devs.retain(|d| *d != dev);
                    let d = self.model.devices.remove(&dev);
                    self.undo.push(Undo::Device(dev, d));
                }
            }
        }
        Ok(())
    }

    /// Commits and recounts every metadata block.
    fn commit(&mut self) -> Result<(), Error> {
        self.t().commit()?;
        self.commits += 1;
        self.undo.clear();
        self.since_commit = 0;
        self.free_at_commit = self.t().metadata_space().1;
        assert_thin_counts_exact(self.t.as_ref().unwrap());
        Ok(())
    }

    /// Drops the transaction after an error and reopens the last committed one, as the
    /// kernel aborts a transaction that ran out of metadata space.
    fn abort(&mut self, e: Error) {
        assert_eq!(e, Error::NoSpace, "only running out of space is expected");
        let t = self.t.take().unwrap();
        let data_free = t.data_sm().nr_free();
        assert!(
            data_free > 1024,
            "the data device, not the metadata, ran out"
        );
        drop(t);
        self.t = Some(open(&self.path));
        let m = &mut self.model;
        while let Some(u) = self.undo.pop() {
            match u {
                Undo::Time(t) => m.time = t,
                Undo::NrData(n) => m.nr_data_blocks = n,
                Undo::Device(id, Some(d)) => {
                    m.devices.insert(id, d);
                }
                Undo::Device(id, None) => {
                    m.devices.remove(&id);
                }
                Undo::SnapTime(id, t) => m.devices.get_mut(&id).unwrap().snap_time = t,
                Undo::Mapping(id, v, old) => {
                    let d = m.devices.get_mut(&id).unwrap();
                    match old {
                        Some(o) => d.mappings.insert(v, o),
                        None => d.mappings.remove(&v),
                    };
                }
            }
        }
        self.devs = m.devices.keys().copied().collect();
        self.full += 1;
        self.since_commit = 0;
        self.free_at_commit = self.t().metadata_space().1;
    }

    /// `thin_check`, `thin_dump` and our check and dump against the model.
    fn check(&mut self, when: &str) -> String {
        self.checks += 1;
        assert_thin_check_clean(&self.path, when);
        let want = self.model.to_xml();
        let got = thin_dump(&self.path);
        assert_same_text(&got, &want, &format!("thin_dump {when}"));
        assert_same_text(
            &ours_dump(&self.path, dump::Source::Live),
            &want,
            &format!("orion-thin dump {when}"),
        );
        ours_check_clean(&self.path);
        got
    }

    /// Runs random operations, committing one time in `every` and checking with the tools
    /// every `check_every` operations, until `stop` says so or the metadata is full (then
    /// the last transaction is reopened); returns whether it filled up.
    fn run(
        &mut self,
        every: u64,
        check_every: u64,
        max_ops: u64,
        mut stop: impl FnMut(&mut Self) -> bool,
    ) -> bool {
        for i in 1..=max_ops {
            if stop(self) {
                return false;
            }
            let mut r = self.step();
            // Commit sooner when space runs short (an operation allocates at most a few
            // dozen blocks), so that blocks freed in the transaction become usable again
            // and the pool fills up.
            self.since_commit += 1;
            let total = self.t().metadata_nr_blocks();
            let short = self.free_at_commit < total / 64 + 16 + 8 * self.since_commit;
            if r.is_ok() && (short || self.rng.below(every) == 0 || i % check_every == 0) {
                r = self.commit();
            }
            if let Err(e) = r {
                self.abort(e);
                return true;
            }
            if i % check_every == 0 {
                self.check(&format!("after {} operations", self.ops));
            }
        }
        false
    }

    /// Takes a metadata snapshot and commits it; returns the model it holds.
    fn reserve_metadata_snap(&mut self) -> Model {
        self.t().reserve_metadata_snap().unwrap();
        self.commit().unwrap();
        self.model.clone()
    }

    /// Grows the metadata to `nr_blocks`; the added blocks are all free to allocate.
    fn resize(&mut self, nr_blocks: u64) {
        let old = self.t().metadata_nr_blocks();
        self.t().resize_metadata(nr_blocks).unwrap();
        assert_eq!(self.t().metadata_nr_blocks(), nr_blocks);
        self.free_at_commit += nr_blocks - old;
    }

    /// Extends the file to `nr_blocks` underneath the open metadata, as lvextend does to
    /// the metadata volume of a live pool.
    fn grow_device(&mut self, nr_blocks: u64) {
        self.t().tm().bm().store().grow(nr_blocks).unwrap();
        assert_eq!(self.t().tm().bm().nr_blocks(), nr_blocks);
    }
}

#[test]
fn grow_a_full_pool_across_bitmaps() {
    let dir = tempfile::tempdir().unwrap();
    let path = file_of(dir.path(), "meta", 100);
    let mut p = Pool::format(path.clone(), ENTRIES_PER_BLOCK, 1);
    assert_eq!(p.t().metadata_nr_blocks(), 100);
    assert_eq!(p.t().superblock().metadata_nr_blocks, 100);

    // 100 blocks, filled until an operation runs out of metadata space.
    assert!(p.run(4, 256, 100_000, |_| false), "100 blocks fill up");
    let full_at = p.used();
    assert!(
        full_at > 80,
        "only {full_at} of 100 blocks in use when full"
    );
    let dump_full = p.check("100 blocks, full");

    // 100 → 5000 as the kernel target does it: the device is reopened at its new size,
    // then grown; the grow alone changes no mapping.
    drop(p.t.take());
    FileStore::open(&path, true).unwrap().grow(5000).unwrap();
    p.t = Some(open(&path));
    assert_eq!(p.t().metadata_nr_blocks(), 100, "reopened before the grow");
    p.resize(5000);
    p.commit().unwrap();
    assert_eq!(p.t().metadata_nr_blocks(), 5000);
    // The superblock keeps the size it was formatted with, as the kernel leaves it.
    assert_eq!(p.t().superblock().metadata_nr_blocks, 100);
    let dump = p.check("grown to 5000");
    assert_same_text(
        &dump,
        &dump_full,
        "thin_dump before and after growing to 5000",
    );
    assert!(thin_check_free_blocks(&path).is_none_or(|f| f >= 4000));
    assert_eq!(open(&path).metadata_nr_blocks(), 5000);

    // Keep allocating into the new space until it is nearly full too.
    p.run(256, u64::MAX, 1_000_000, |p| p.used() > 4600);
    p.commit().unwrap();
    let full_at = p.used();
    assert!(full_at > 4500, "only {full_at} of 5000 blocks in use");
    let dump_full = p.check("5000 blocks, nearly full");

    // 5000 → 20 000 in place: the new bitmap and the shadows of the first bitmap and the
    // index come from the added area.
    p.grow_device(20_000);
    p.resize(20_000);
    let root = p.t().tm().sm_root();
    assert_eq!(root.nr_blocks, 20_000);
    assert_eq!(
        (root.bitmap_root, root.nr_bitmaps()),
        (5002, 2),
        "new bitmap at 5000, first bitmap's shadow at 5001, index at 5002, as C places them"
    );
    p.commit().unwrap();
    let dump = p.check("grown to 20000");
    assert_same_text(
        &dump,
        &dump_full,
        "thin_dump before and after growing to 20000",
    );

    // Keep allocating: first in one transaction, whose cursor starts in the added area,
    // then over many commits, each starting from the first block again.
    assert!(!p.run(u64::MAX, u64::MAX, 4000, |_| false));
    p.commit().unwrap();
    assert!(!p.run(256, u64::MAX, 4000, |_| false));
    p.commit().unwrap();
    p.check("20000 blocks, in use");

    // 20 000 → 50 000 → 70 000 inside one transaction, with uncommitted changes before,
    // between and after, and a metadata snapshot held across the grows.
    let held = p.reserve_metadata_snap();
    assert!(!p.run(u64::MAX, u64::MAX, 200, |_| false));
    p.grow_device(70_000);
    let model_before = p.model.to_xml();
    p.resize(50_000);
    assert_eq!(p.model.to_xml(), model_before);
    assert!(!p.run(u64::MAX, u64::MAX, 200, |_| false));
    p.resize(70_000);
    assert_eq!(p.t().tm().sm_root().nr_bitmaps(), 5);
    // Until the commit the cursor stays in the added area: these land in the new bitmaps.
    assert!(!p.run(u64::MAX, u64::MAX, 3000, |_| false));
    p.commit().unwrap();
    assert_eq!(p.t().metadata_nr_blocks(), 70_000);
    let in_use = |p: &mut Pool, from: u64| (from..70_000).any(|b| p.t().tm().count(b).unwrap() > 0);
    assert!(
        in_use(&mut p, 50_000),
        "blocks counted by the last bitmaps in use"
    );
    p.check("grown to 70000");
    let m = tool("thin_dump", &["-m", path.to_str().unwrap()]);
    assert!(m.ok, "thin_dump -m: {}", m.stderr);
    let mut held = held;
    held.nr_data_blocks = 0;
    assert_same_text(&m.stdout, &held.to_xml(), "thin_dump -m after the grows");
    p.t().release_metadata_snap().unwrap();
    p.commit().unwrap();

    // More use of the new space, checked as before.
    assert!(!p.run(256, u64::MAX, scaled(3000), |_| false));
    p.commit().unwrap();
    p.check("70000 blocks, final");
    assert_eq!(open(&path).metadata_nr_blocks(), 70_000);
    let used = p.used();
    eprintln!(
        "{} operations, {} commits recounted, {} checkpoints, {} full, {} devices, {} of 70000 metadata blocks in use",
        p.ops,
        p.commits,
        p.checks,
        p.full,
        p.model.devices.len(),
        used
    );
}

#[test]
fn shrinking_is_refused_and_growing_is_capped() {
    let dir = tempfile::tempdir().unwrap();
    let path = file_of(dir.path(), "meta", 1000);
    let mut t = open_formatted(&path);
    t.create_thin(1).unwrap();
    t.provision(1, 7).unwrap();
    // Refusals change nothing: the transaction goes on and commits.
    assert!(matches!(t.resize_metadata(999), Err(Error::Invalid(_))));
    assert!(matches!(t.resize_metadata(1001), Err(Error::Invalid(_))));
    t.resize_metadata(1000).unwrap();
    assert_eq!(t.metadata_nr_blocks(), 1000);
    t.commit().unwrap();
    assert_thin_counts_exact(&t);
    assert_thin_check_clean(&path, "after refused resizes");

    // A device larger than the format can count is used up to its maximum, as dm-thin
    // uses it (and warns about the rest).
    t.tm().bm().store().grow(MAX_BLOCKS + 5000).unwrap();
    t.resize_metadata(u64::MAX).unwrap();
    assert_eq!(t.metadata_nr_blocks(), MAX_BLOCKS);
    assert_eq!(t.tm().sm_root().nr_bitmaps(), 255);
    t.resize_metadata(MAX_BLOCKS + 1).unwrap();
    t.provision(1, 8).unwrap();
    t.commit().unwrap();
    assert_thin_counts_exact(&t);
    assert_thin_check_clean(&path, "grown to the maximum");
    assert!(thin_check_free_blocks(&path).is_none_or(|f| f > 1000));
    drop(t);
    let t = open(&path);
    assert_eq!(t.metadata_nr_blocks(), MAX_BLOCKS);
    assert_eq!(t.lookup(1, 7).unwrap().map(|m| m.0), Some(0));
    ours_check_clean(&path);
}

fn open_formatted(path: &Path) -> Meta {
    ThinMetadata::format(
        CachedBm::new(FileStore::open(path, true).unwrap()),
        128,
        1000,
    )
    .unwrap()
}

#[test]
fn the_added_area_must_hold_the_maps_own_blocks() {
    // A committed map needs two blocks of the added area, for the shadows of its index
    // and of the bitmap counting them; the kernel fails the same way with one.
    let dir = tempfile::tempdir().unwrap();
    let path = file_of(dir.path(), "meta", 100);
    let mut t = open_formatted(&path);
    let before = thin_dump(&path);
    t.tm().bm().store().grow(102).unwrap();
    assert_eq!(t.resize_metadata(101), Err(Error::NoSpace));
    drop(t);
    let mut t = open(&path);
    assert_eq!(t.metadata_nr_blocks(), 100);
    assert_same_text(&thin_dump(&path), &before, "after the failed grow");
    t.resize_metadata(102).unwrap();
    t.commit().unwrap();
    assert_thin_counts_exact(&t);
    assert_eq!(t.tm().sm_root().bitmap_root, 100);
    assert_thin_check_clean(&path, "grown by two blocks");
    assert_same_text(&thin_dump(&path), &before, "after growing by two blocks");
}

#[test]
fn a_grow_is_durable_only_with_its_commit() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cut");
    let bm = CachedBm::new(MemStore::new(100));
    let mut t = ThinMetadata::format(bm, 128, 1000).unwrap();
    t.create_thin(3).unwrap();
    for v in 0..300 {
        t.provision(3, v * 5).unwrap();
    }
    t.commit().unwrap();
    let store = t.tm().bm().store();
    store.grow(17_000);
    let before_image = store.image.borrow().clone();
    let before = thin_dump_of(&file, &before_image);
    store.log.borrow_mut().clear();

    // Grown (to two bitmaps) but not committed: nothing reached the image.
    t.resize_metadata(17_000).unwrap();
    for v in 300..600 {
        t.provision(3, v * 5).unwrap();
    }
    assert_eq!(*t.tm().bm().store().image.borrow(), before_image);
    assert!(t.tm().bm().store().log.borrow().is_empty());
    let reopened =
        ThinMetadata::open(CachedBm::new(MemStore::from_image(before_image.clone()))).unwrap();
    assert_eq!(reopened.metadata_nr_blocks(), 100);

    t.commit().unwrap();
    let after_image = t.tm().bm().store().image.borrow().clone();
    let after = thin_dump_of(&file, &after_image);
    let log = std::mem::take(&mut *t.tm().bm().store().log.borrow_mut());
    assert_eq!(
        log.last().map(|w| w.0),
        Some(0),
        "the superblock is written last"
    );
    // Every other write goes to a block the committed metadata does not use, so the
    // kernel's dm-bufio may write them back in any order at any time.
    for (b, _) in &log[..log.len() - 1] {
        assert!(
            *b >= 100 || reopened.tm().count(*b).unwrap() == 0,
            "block {b}, in use at the last commit, written before the superblock"
        );
    }
    for k in 0..=log.len() {
        let mut image = before_image.clone();
        for (b, data) in &log[..k] {
            let off = *b as usize * BLOCK_SIZE;
            image[off..off + BLOCK_SIZE].copy_from_slice(data);
        }
        let when = format!("cut after {k} of {} writes", log.len());
        let (want_size, want) = if k == log.len() {
            (17_000, &after)
        } else {
            (100, &before)
        };
        let t = ThinMetadata::open(CachedBm::new(MemStore::from_image(image.clone()))).unwrap();
        assert_eq!(t.metadata_nr_blocks(), want_size, "{when}");
        write_sparse(&file, &image);
        assert_thin_check_clean(&file, &when);
        assert_same_text(&thin_dump(&file), want, &when);
        ours_check_clean(&file);
    }
    let t = ThinMetadata::open(CachedBm::new(MemStore::from_image(after_image))).unwrap();
    assert_thin_counts_exact(&t);
    eprintln!("{} cut points of the commit after a grow", log.len() + 1);
}

/// Writes `image` to a sparse file, skipping zeroed blocks (most of a grown device).
fn write_sparse(file: &Path, image: &[u8]) {
    use std::os::unix::fs::FileExt;
    let f = std::fs::File::create(file).unwrap();
    f.set_len(image.len() as u64).unwrap();
    for (i, block) in image.chunks(BLOCK_SIZE).enumerate() {
        if block.iter().any(|b| *b != 0) {
            f.write_all_at(block, (i * BLOCK_SIZE) as u64).unwrap();
        }
    }
}

fn thin_dump_of(file: &Path, image: &[u8]) -> String {
    write_sparse(file, image);
    assert_thin_check_clean(file, "before the cut");
    thin_dump(file)
}
