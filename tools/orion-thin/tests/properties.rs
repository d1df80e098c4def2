// SPDX-License-Identifier: GPL-2.0 OR MIT

//! Property tests of the btree and both space maps against simple models: random operation
//! sequences (100 000 per test by default, `ORION_TEST_SCALE=n` for n times more), with
//! commits, shared trees and reference counts above the bitmap's range. After each commit
//! every block's reference count is recounted from the structures on disk.

mod common;

use common::{assert_counts_exact, bitmap_refs, scaled, Rng};
use orion_pdata::block::{BlockNr, Kind};
use orion_pdata::btree::{self, Plain, Visit};
use orion_pdata::space_map::disk::DiskSpaceMap;
use orion_pdata::space_map::{IndexEntry, SmRoot};
use orion_pdata::tm::TransactionManager;
use orion_thin::cache::{CachedBm, MemStore};
use std::collections::{BTreeMap, HashMap};

type Tm = TransactionManager<CachedBm<MemStore>>;

const NR_META: u64 = 16384;

fn new_tm() -> Tm {
    TransactionManager::format(CachedBm::new(MemStore::new(NR_META)), 0).unwrap()
}

fn commit(tm: &mut Tm) {
    tm.pre_commit().unwrap();
    tm.commit(0, |d| {
        d[32] = 1;
        Ok(())
    })
    .unwrap();
}

fn tree_contents(tm: &Tm, root: BlockNr) -> BTreeMap<u64, u64> {
    let mut got = BTreeMap::new();
    btree::walk(tm.bm(), root, 8, 0, &mut |k: u64, v: &[u8]| {
        got.insert(k, u64::from_le_bytes(v.try_into().unwrap()));
        Ok(Visit::Continue)
    })
    .unwrap();
    got
}

#[test]
fn btree_matches_a_sorted_map() {
    let mut tm = new_tm();
    let mut rng = Rng::new(1);
    let mut root = btree::empty(&mut tm, 8).unwrap();
    let mut model = BTreeMap::new();
    // Frozen copies of the tree: shared until the live tree is changed again.
    let mut frozen: Vec<(BlockNr, BTreeMap<u64, u64>)> = Vec::new();
    let ops = scaled(100_000);
    let mut max_len = 0;
    for i in 0..ops {
        let key = if rng.chance(50) {
            rng.below(4000)
        } else {
            rng.below(1 << 40)
        };
        match rng.below(100) {
            0..=54 => {
                let v = rng.next();
                root =
                    btree::insert(&mut tm, &mut Plain::<8>, root, key, &v.to_le_bytes()).unwrap();
                model.insert(key, v);
            }
            55..=89 => {
                // Mostly keys that exist.
                let key = if !model.is_empty() && rng.chance(80) {
                    *model
                        .keys()
                        .nth(rng.below(model.len() as u64) as usize)
                        .unwrap()
                } else {
                    key
                };
                let (r, found) = btree::remove(&mut tm, &mut Plain::<8>, root, key).unwrap();
                root = r;
                assert_eq!(found, model.remove(&key).is_some());
            }
            90..=98 => {
                let mut out = [0u8; 8];
                let found = btree::lookup(tm.bm(), root, key, &mut out).unwrap();
                assert_eq!(
                    found.then(|| u64::from_le_bytes(out)),
                    model.get(&key).copied()
                );
            }
            _ => {
                if frozen.len() < 3 && rng.chance(50) {
                    tm.inc(root).unwrap();
                    frozen.push((root, model.clone()));
                } else if let Some((r, _)) = frozen.pop() {
                    btree::del(&mut tm, &mut Plain::<8>, r).unwrap();
                }
            }
        }
        max_len = max_len.max(model.len());
        if i % 2000 == 1999 {
            commit(&mut tm);
            assert_eq!(tree_contents(&tm, root), model, "after {i} operations");
            for (r, m) in &frozen {
                assert_eq!(&tree_contents(&tm, *r), m, "frozen tree");
            }
            let mut trees = vec![(root, 8)];
            trees.extend(frozen.iter().map(|(r, _)| (*r, 8)));
            assert_counts_exact(&tm, &trees, &HashMap::new());
        }
    }
    eprintln!("{ops} btree operations, up to {max_len} keys");
}

#[test]
fn metadata_space_map_matches_a_count_model() {
    let mut tm = new_tm();
    let mut rng = Rng::new(2);
    let mut model: HashMap<BlockNr, u32> = HashMap::new();
    let mut committed: HashMap<BlockNr, u32> = HashMap::new();
    let ops = scaled(100_000);
    for i in 0..ops {
        let pick = |rng: &mut Rng, m: &HashMap<BlockNr, u32>| -> Option<BlockNr> {
            (!m.is_empty()).then(|| *m.keys().nth(rng.below(m.len() as u64) as usize).unwrap())
        };
        match rng.below(100) {
            0..=29 if model.len() < 3000 => {
                let b = tm.new_block(Kind::Node).unwrap();
                assert!(!model.contains_key(&b), "block {b} handed out twice");
                assert!(
                    !committed.contains_key(&b),
                    "block {b} was in use at the last commit"
                );
                model.insert(b, 1);
            }
            30..=64 => {
                // Counts climb past 2 into the overflow tree.
                if let Some(b) = pick(&mut rng, &model) {
                    tm.inc(b).unwrap();
                    *model.get_mut(&b).unwrap() += 1;
                }
            }
            65..=94 => {
                if let Some(b) = pick(&mut rng, &model) {
                    tm.dec(b).unwrap();
                    let c = model.get_mut(&b).unwrap();
                    *c -= 1;
                    if *c == 0 {
                        model.remove(&b);
                    }
                }
            }
            _ => {
                if let Some(b) = pick(&mut rng, &model) {
                    assert_eq!(tm.count(b).unwrap(), model[&b]);
                }
            }
        }
        if i % 5000 == 4999 {
            commit(&mut tm);
            committed = model.clone();
            assert_counts_exact(&tm, &[], &model);
        }
    }
    assert!(model.values().any(|c| *c > 2), "overflow counts exercised");
    eprintln!("{ops} metadata space map operations");
}

/// Recounts the metadata blocks of committed data space map `root` (its index and overflow
/// trees and bitmaps) against the metadata space map.
fn assert_data_sm_refs_exact(tm: &Tm, root: SmRoot) {
    assert_counts_exact(
        tm,
        &[
            (root.bitmap_root, IndexEntry::SIZE),
            (root.ref_count_root, 4),
        ],
        &bitmap_refs(tm, root.bitmap_root),
    );
}

#[test]
fn data_space_map_matches_a_count_model() {
    let mut tm = new_tm();
    let nr_data = 40_000;
    let mut sm = DiskSpaceMap::create(&mut tm, nr_data).unwrap();
    let mut rng = Rng::new(3);
    let mut model: HashMap<BlockNr, u32> = HashMap::new();
    let mut committed: HashMap<BlockNr, u32> = HashMap::new();
    let ops = scaled(100_000);
    for i in 0..ops {
        let pick = |rng: &mut Rng, m: &HashMap<BlockNr, u32>| -> Option<BlockNr> {
            (!m.is_empty()).then(|| *m.keys().nth(rng.below(m.len() as u64) as usize).unwrap())
        };
        match rng.below(100) {
            0..=34 if model.len() < 30_000 => {
                let b = sm.new_block(&mut tm).unwrap();
                assert!(b < nr_data);
                assert!(!model.contains_key(&b), "data block {b} handed out twice");
                assert!(
                    !committed.contains_key(&b),
                    "data block {b} in use at the last commit"
                );
                model.insert(b, 1);
            }
            35..=64 => {
                if let Some(b) = pick(&mut rng, &model) {
                    sm.inc(&mut tm, b).unwrap();
                    *model.get_mut(&b).unwrap() += 1;
                }
            }
            65..=94 => {
                if let Some(b) = pick(&mut rng, &model) {
                    sm.dec(&mut tm, b).unwrap();
                    let c = model.get_mut(&b).unwrap();
                    *c -= 1;
                    if *c == 0 {
                        model.remove(&b);
                    }
                }
            }
            _ => {
                let b = rng.below(nr_data);
                assert_eq!(
                    sm.count(&tm, b).unwrap(),
                    model.get(&b).copied().unwrap_or(0)
                );
            }
        }
        if i % 5000 == 4999 {
            sm.commit(&mut tm).unwrap();
            commit(&mut tm);
            committed = model.clone();
            assert_eq!(sm.nr_free(), nr_data - model.len() as u64);
            for b in 0..nr_data {
                assert_eq!(
                    sm.count(&tm, b).unwrap(),
                    model.get(&b).copied().unwrap_or(0),
                    "data block {b}"
                );
            }
            assert_data_sm_refs_exact(&tm, sm.root());
        }
    }
    eprintln!("{ops} data space map operations");
}

/// The data space map keeps the index entries of its first `MAX_BITMAPS` bitmaps in core
/// between commits and goes through the btree for the rest: reference changes spread over
/// both kinds of bitmap, checked against a model, and after each commit against a map
/// reopened from the committed root.
#[test]
fn data_space_map_in_core_and_btree_entries_agree() {
    use orion_pdata::space_map::metadata::MAX_BITMAPS;
    use orion_pdata::space_map::ENTRIES_PER_BLOCK;
    let mut tm = new_tm();
    let nr_data = (MAX_BITMAPS as u64 + 3) * ENTRIES_PER_BLOCK;
    let mut sm = DiskSpaceMap::create(&mut tm, nr_data).unwrap();
    let mut rng = Rng::new(11);
    // Blocks in the first bitmaps, around the in-core limit, and in the last ones.
    let mut blocks: Vec<BlockNr> = (0..600).map(|_| rng.below(nr_data)).collect();
    let edge = MAX_BITMAPS as u64 * ENTRIES_PER_BLOCK;
    blocks.extend([0, edge - 1, edge, edge + 1, nr_data - 1]);
    let mut model: HashMap<BlockNr, u32> = HashMap::new();
    let mut committed: HashMap<BlockNr, u32> = HashMap::new();
    let ops = scaled(20_000);
    for i in 0..ops {
        let b = blocks[rng.below(blocks.len() as u64) as usize];
        let c = model.get(&b).copied().unwrap_or(0);
        match rng.below(20) {
            // Between commits, so that "free now and at the last commit" is tested on
            // committed entries held in core.
            0 => {
                let nb = sm.new_block(&mut tm).unwrap();
                assert!(!model.contains_key(&nb), "data block {nb} handed out twice");
                assert!(
                    !committed.contains_key(&nb),
                    "data block {nb} in use at the last commit"
                );
                model.insert(nb, 1);
                blocks.push(nb);
            }
            1..=9 => {
                sm.inc(&mut tm, b).unwrap();
                model.insert(b, c + 1);
            }
            10..=15 if c > 0 => {
                sm.dec(&mut tm, b).unwrap();
                if c == 1 {
                    model.remove(&b);
                } else {
                    model.insert(b, c - 1);
                }
            }
            _ => assert_eq!(sm.count(&tm, b).unwrap(), c, "data block {b}"),
        }
        if i % 2000 == 1999 {
            sm.commit(&mut tm).unwrap();
            commit(&mut tm);
            committed = model.clone();
            assert_eq!(sm.nr_free(), nr_data - model.len() as u64);
            let reopened = DiskSpaceMap::open(&tm, &sm.root().pack()).unwrap();
            for &b in &blocks {
                let want = model.get(&b).copied().unwrap_or(0);
                assert_eq!(sm.count(&tm, b).unwrap(), want, "data block {b}");
                assert_eq!(reopened.count(&tm, b).unwrap(), want, "reopened, block {b}");
            }
            assert_data_sm_refs_exact(&tm, sm.root());
        }
    }
    eprintln!(
        "{ops} data space map operations over {} bitmaps",
        MAX_BITMAPS + 3
    );
}
