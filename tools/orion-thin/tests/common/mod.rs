// SPDX-License-Identifier: GPL-2.0 OR MIT

//! Shared helpers of the integration tests: a seeded generator, the real
//! thin-provisioning-tools, and a model of pool metadata.

#![allow(dead_code)]

use orion_pdata::block::{BlockManager, BlockNr, Kind};
use orion_pdata::btree::node::Header;
use orion_pdata::btree::{self, Visit, Visitor};
use orion_pdata::error::{Error, Result};
use orion_pdata::space_map::metadata::INDEX_HEADER;
use orion_pdata::space_map::IndexEntry;
use orion_pdata::thin::device::DeviceDetails;
use orion_pdata::thin::superblock::Superblock;
use orion_pdata::thin::ThinMetadata;
use orion_pdata::tm::TransactionManager;
use orion_thin::cache::{CachedBm, FileStore};
use orion_thin::xml::{Device, Mapping, Metadata};
use orion_thin::{check, dump, xml};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::process::Command;

/// xorshift64*: reproducible from a seed, no dependency.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }

    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// Scales a default count by `ORION_TEST_SCALE` (the flag for longer runs).
pub fn scaled(n: u64) -> u64 {
    let scale: u64 = std::env::var("ORION_TEST_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    n * scale.max(1)
}

/// The output of a real tool.
pub struct ToolRun {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

pub fn tool(name: &str, args: &[&str]) -> ToolRun {
    let out = Command::new(name)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {name} (install thin-provisioning-tools): {e}"));
    ToolRun {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

pub fn thin_check(path: &Path) -> ToolRun {
    tool("thin_check", &[path.to_str().unwrap()])
}

pub fn thin_dump(path: &Path) -> String {
    let r = tool("thin_dump", &[path.to_str().unwrap()]);
    assert!(r.ok, "thin_dump failed: {}", r.stderr);
    r.stdout
}

/// A sparse file of `mib` MiB.
pub fn sparse_file(dir: &Path, name: &str, mib: u64) -> std::path::PathBuf {
    let p = dir.join(name);
    let f = std::fs::File::create(&p).unwrap();
    f.set_len(mib << 20).unwrap();
    p
}

/// What the metadata should say, kept by the tests beside the real thing.
#[derive(Clone, Debug, Default)]
pub struct Model {
    pub time: u32,
    pub transaction: u64,
    pub data_block_size: u32,
    pub nr_data_blocks: u64,
    /// Device → (transaction, creation time, snap time, vblock → (dblock, time)).
    pub devices: BTreeMap<u64, ModelDevice>,
}

#[derive(Clone, Debug, Default)]
pub struct ModelDevice {
    pub transaction: u64,
    pub creation_time: u32,
    pub snap_time: u32,
    pub mappings: BTreeMap<u64, (u64, u32)>,
}

impl Model {
    /// The XML form, with runs merged as thin_dump merges them.
    pub fn to_metadata(&self) -> Metadata {
        Metadata {
            uuid: String::new(),
            time: self.time,
            transaction: self.transaction,
            flags: 0,
            version: 2,
            data_block_size: self.data_block_size,
            nr_data_blocks: self.nr_data_blocks,
            devices: self
                .devices
                .iter()
                .map(|(id, d)| {
                    let mut mappings: Vec<Mapping> = Vec::new();
                    for (&v, &(b, t)) in &d.mappings {
                        Mapping::append(&mut mappings, v, b, t);
                    }
                    Device {
                        id: *id,
                        mapped_blocks: d.mappings.len() as u64,
                        transaction: d.transaction,
                        creation_time: d.creation_time,
                        snap_time: d.snap_time,
                        mappings,
                    }
                })
                .collect(),
        }
    }

    pub fn to_xml(&self) -> String {
        let mut out = Vec::new();
        orion_thin::xml::write(&self.to_metadata(), &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }
}

/// Asserts two texts are equal, showing the first differing line instead of both texts.
pub fn assert_same_text(got: &str, want: &str, what: &str) {
    if got == want {
        return;
    }
    let g: Vec<&str> = got.lines().collect();
    let w: Vec<&str> = want.lines().collect();
    let i = g
        .iter()
        .zip(&w)
        .position(|(a, b)| a != b)
        .unwrap_or(g.len().min(w.len()));
    panic!(
        "{what}: differs at line {} (got {} lines, want {}):\n got: {:?}\nwant: {:?}",
        i + 1,
        g.len(),
        w.len(),
        g.get(i),
        w.get(i)
    );
}

/// Data blocks of the pools the driver makes.
pub const NR_DATA: u64 = 65536;
const MAX_DEV: u64 = 24;
const MAX_VBLOCK: u64 = 700;

/// Random pool operations applied both to metadata and to the model.
pub struct Driver<B: BlockManager> {
    pub t: ThinMetadata<B>,
    pub model: Model,
    pub held: Option<Model>,
    pub rng: Rng,
    pub ops: u64,
    /// Leave commits (and metadata snapshots, which commit) to the caller.
    pub no_commit: bool,
}

impl<B: BlockManager> Driver<B> {
    /// Formats `bm` and starts a model beside it.
    pub fn format(bm: B, seed: u64) -> Self {
        Driver {
            t: ThinMetadata::format(bm, 128, NR_DATA).unwrap(),
            model: Model {
                data_block_size: 128,
                nr_data_blocks: NR_DATA,
                ..Model::default()
            },
            held: None,
            rng: Rng::new(seed),
            ops: 0,
            no_commit: false,
        }
    }

    fn pick_dev(&mut self) -> Option<u64> {
        let n = self.model.devices.len() as u64;
        if n == 0 {
            return None;
        }
        let i = self.rng.below(n) as usize;
        self.model.devices.keys().nth(i).copied()
    }

    /// One random operation, applied to the metadata and the model.
    pub fn step(&mut self) {
        self.ops += 1;
        let r = self.rng.below(100);
        match r {
            0..=4 => {
                let id = self.rng.below(MAX_DEV);
                let res = self.t.create_thin(id);
                if self.model.devices.contains_key(&id) {
                    assert!(matches!(res, Err(Error::Invalid(_))), "duplicate create");
                } else {
                    res.unwrap();
                    self.model.devices.insert(
                        id,
                        ModelDevice {
                            transaction: self.model.transaction,
                            creation_time: self.model.time,
                            snap_time: self.model.time,
                            mappings: Default::default(),
                        },
                    );
                }
            }
            5..=8 => {
                let (Some(origin), id) = (self.pick_dev(), self.rng.below(MAX_DEV)) else {
                    return;
                };
                if self.model.devices.contains_key(&id) {
                    assert!(self.t.create_snap(id, origin).is_err());
                    return;
                }
                self.t.create_snap(id, origin).unwrap();
                self.model.time += 1;
                let time = self.model.time;
                let o = self.model.devices.get_mut(&origin).unwrap();
                o.snap_time = time;
                let mappings = o.mappings.clone();
                self.model.devices.insert(
                    id,
                    ModelDevice {
                        transaction: self.model.transaction,
                        creation_time: time,
                        snap_time: time,
                        mappings,
                    },
                );
            }
            9..=10 => {
                if let Some(id) = self.pick_dev() {
                    self.t.delete(id).unwrap();
                    self.model.devices.remove(&id);
                }
                assert!(self.t.delete(MAX_DEV + 1).is_err());
            }
            11..=60 => {
                if let Some(id) = self.pick_dev() {
                    // Runs of neighbouring blocks, as sequential writes make.
                    let v = self.rng.below(MAX_VBLOCK);
                    for k in 0..1 + self.rng.below(4) {
                        let b = self.t.provision(id, v + k).unwrap();
                        let time = self.model.time;
                        self.model
                            .devices
                            .get_mut(&id)
                            .unwrap()
                            .mappings
                            .insert(v + k, (b, time));
                    }
                }
            }
            61..=85 => {
                if let Some(id) = self.pick_dev() {
                    let d = &self.model.devices[&id];
                    let v = if !d.mappings.is_empty() && self.rng.chance(80) {
                        *d.mappings
                            .keys()
                            .nth(self.rng.below(d.mappings.len() as u64) as usize)
                            .unwrap()
                    } else {
                        self.rng.below(MAX_VBLOCK)
                    };
                    let was = self.model.devices.get_mut(&id).unwrap().mappings.remove(&v);
                    assert_eq!(
                        self.t.remove(id, v).unwrap(),
                        was.is_some(),
                        "remove {id}/{v}"
                    );
                    let got = self.t.lookup(id, v).unwrap();
                    assert_eq!(got, None);
                }
            }
            86..=96 if self.no_commit => {}
            86..=93 => self.t.commit().unwrap(),
            94..=96 => {
                if self.held.is_some() {
                    self.t.release_metadata_snap().unwrap();
                    self.held = None;
                } else {
                    self.t.reserve_metadata_snap().unwrap();
                    self.held = Some(self.model.clone());
                }
            }
            _ => {
                let tid = self.model.transaction;
                assert!(self.t.set_transaction_id(tid + 7, tid + 1).is_err());
                self.t.set_transaction_id(tid, tid + 1).unwrap();
                self.model.transaction += 1;
            }
        }
    }

    /// Every mapping of the model reads back through lookup.
    pub fn verify_lookups(&mut self) {
        for (id, d) in &self.model.devices {
            for (v, m) in &d.mappings {
                assert_eq!(self.t.lookup(*id, *v).unwrap(), Some(*m), "lookup {id}/{v}");
            }
        }
    }
}

/// The lines thin_check prints when it finds nothing wrong.
pub fn assert_thin_check_clean(path: &Path, when: &str) {
    let r = thin_check(path);
    let complaints: Vec<&str> = r
        .stderr
        .lines()
        .chain(r.stdout.lines())
        .filter(|l| {
            !l.starts_with("examining ")
                && !l.starts_with("checking space map counts")
                && !l.starts_with("TRANSACTION_ID=")
                && !l.starts_with("METADATA_FREE_BLOCKS=")
                && !l.trim().is_empty()
        })
        .collect();
    assert!(
        r.ok && complaints.is_empty(),
        "thin_check {when}: rc ok={} complaints: {complaints:?}",
        r.ok
    );
}

pub fn ours_dump(path: &Path, source: dump::Source) -> String {
    let bm = CachedBm::new(FileStore::open(path, false).unwrap());
    let md = dump::read(&bm, source).unwrap();
    let mut out = Vec::new();
    xml::write(&md, &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

pub fn ours_check_clean(path: &Path) {
    let bm = CachedBm::new(FileStore::open(path, false).unwrap());
    let r = check::check(&bm);
    assert!(r.is_clean(), "orion-thin check: {:?}", r.errors);
}

/// Counts each node reached (once per parent reference) and enters it on its first visit
/// only, as shared subtrees are counted; keeps the leaf values of the nodes entered when
/// `values` is given (references held by the entries).
pub struct CountNodes<'a> {
    pub counts: &'a mut [u32],
    pub values: Option<&'a mut Vec<u64>>,
}

impl<'a> CountNodes<'a> {
    pub fn new(counts: &'a mut [u32]) -> Self {
        CountNodes {
            counts,
            values: None,
        }
    }
}

impl Visitor for CountNodes<'_> {
    fn node(&mut self, b: BlockNr, _h: &Header, _depth: usize) -> Result<bool> {
        let c = self
            .counts
            .get_mut(b as usize)
            .unwrap_or_else(|| panic!("node {b} beyond the metadata space map"));
        *c += 1;
        Ok(*c == 1)
    }

    fn entry(&mut self, _key: u64, value: &[u8]) -> Result<Visit> {
        if let Some(v) = self.values.as_mut() {
            v.push(u64::from_le_bytes(value[..8].try_into().unwrap()));
        }
        Ok(Visit::Continue)
    }
}

/// Recounts every metadata block's references: the superblock (block 0), the space map's
/// index, bitmaps and overflow tree, the given trees (shared nodes once per parent), and
/// `extra`; asserts each equals the metadata space map's count, over all of its blocks,
/// and that `nr_allocated` is the number of blocks in use.
pub fn assert_counts_exact<B: BlockManager>(
    tm: &TransactionManager<B>,
    trees: &[(BlockNr, usize)],
    extra: &HashMap<BlockNr, u32>,
) {
    let root = tm.sm_root();
    let mut counts = vec![0u32; root.nr_blocks as usize];
    counts[0] += 1;
    counts[root.bitmap_root as usize] += 1;
    let entries: Vec<IndexEntry> = tm
        .read(root.bitmap_root, Kind::Index, |d| {
            Ok((0..root.nr_bitmaps() as usize)
                .map(|i| {
                    let off = INDEX_HEADER + i * IndexEntry::SIZE;
                    IndexEntry::unpack(&d[off..off + IndexEntry::SIZE])
                })
                .collect())
        })
        .unwrap();
    for e in entries {
        counts[e.blocknr as usize] += 1;
    }
    btree::walk(
        tm.bm(),
        root.ref_count_root,
        4,
        0,
        &mut CountNodes::new(&mut counts),
    )
    .unwrap();
    for &(r, vs) in trees {
        btree::walk(tm.bm(), r, vs, 0, &mut CountNodes::new(&mut counts)).unwrap();
    }
    for (b, c) in extra {
        counts[*b as usize] += c;
    }
    let mut allocated = 0;
    for (b, want) in counts.iter().enumerate() {
        let have = tm.count(b as u64).unwrap();
        assert_eq!(have, *want, "metadata block {b}");
        if have > 0 {
            allocated += 1;
        }
    }
    assert_eq!(tm.sm_root().nr_allocated, allocated);
}

/// One reference per bitmap block listed in a data space map's index tree.
pub fn bitmap_refs<B: BlockManager>(
    tm: &TransactionManager<B>,
    index_root: BlockNr,
) -> HashMap<BlockNr, u32> {
    let mut refs = HashMap::new();
    btree::walk(
        tm.bm(),
        index_root,
        IndexEntry::SIZE,
        0,
        &mut |_: u64, v: &[u8]| {
            *refs.entry(IndexEntry::unpack(v).blocknr).or_default() += 1;
            Ok(Visit::Continue)
        },
    )
    .unwrap();
    refs
}

/// Recounts every metadata block of committed pool metadata (the live trees, the held
/// metadata snapshot, both space maps) and asserts the metadata space map agrees exactly.
pub fn assert_thin_counts_exact<B: BlockManager>(t: &ThinMetadata<B>) {
    let tm = t.tm();
    let sb = *t.superblock();
    let n = tm.sm_root().nr_blocks as usize;
    // Walk the trees here, so that device trees are entered once per top-level entry
    // reached (a top-level leaf shared with the metadata snapshot holds its references
    // once), then hand the counts over as `extra`.
    let mut counts = vec![0u32; n];
    let mut views = vec![sb];
    if sb.held_root != 0 {
        counts[sb.held_root as usize] += 1;
        let held = tm
            .read(sb.held_root, Kind::Superblock, |d| {
                Superblock::unpack(sb.held_root, d)
            })
            .unwrap();
        views.push(held);
    }
    for v in &views {
        let mut c = CountNodes::new(&mut counts);
        btree::walk(tm.bm(), v.details_root, DeviceDetails::SIZE, 0, &mut c).unwrap();
        let mut roots = Vec::new();
        let mut c = CountNodes {
            counts: &mut counts,
            values: Some(&mut roots),
        };
        btree::walk(tm.bm(), v.mapping_root, 8, 0, &mut c).unwrap();
        for r in roots {
            btree::walk(tm.bm(), r, 8, 0, &mut CountNodes::new(&mut counts)).unwrap();
        }
    }
    let data = t.data_sm().root();
    let mut extra = bitmap_refs(tm, data.bitmap_root);
    for (b, c) in counts.iter().enumerate() {
        if *c > 0 {
            *extra.entry(b as BlockNr).or_default() += c;
        }
    }
    assert_counts_exact(
        tm,
        &[
            (data.bitmap_root, IndexEntry::SIZE),
            (data.ref_count_root, 4),
        ],
        &extra,
    );
}
