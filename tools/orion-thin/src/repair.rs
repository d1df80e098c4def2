// SPDX-License-Identifier: GPL-2.0 OR MIT

//! `repair`: salvages what is readable from damaged pool metadata and writes it afresh, the
//! job of `thin_repair`.
//!
//! The salvage reads the superblock (its fields as hints when only its checksum is bad),
//! walks the device details tree and the two-level mapping tree with a walk that skips
//! damaged subtrees and bad keys ([`salvage`]), and falls back to scanning the whole
//! metadata for the roots of both trees ([`scan`]) when the superblock is unreadable or the
//! top of either tree is damaged. Mappings to data blocks beyond the data device are
//! dropped. The result is the XML model of `dump`, written by `restore`, so reference
//! counts and mapped-block counts are recomputed from what was salvaged.

pub mod salvage;
pub mod scan;

use crate::xml::{Device, Mapping, Metadata};
use orion_pdata::block::{BlockManager, BlockNr, Kind};
use orion_pdata::error::Error;
use orion_pdata::space_map::{IndexEntry, ENTRIES_PER_BLOCK};
use orion_pdata::thin::device::{unpack_mapping, DeviceDetails};
use orion_pdata::thin::superblock::{Superblock, LOCATION, VERSION};
use salvage::{salvage_tree, Damage};
use std::collections::{BTreeMap, HashSet};

/// Values to write instead of the superblock's (`thin_repair`'s overrides).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// The pool's transaction id.
    pub transaction_id: Option<u64>,
    /// Data block size in sectors.
    pub data_block_size: Option<u32>,
    /// Data blocks in the pool.
    pub nr_data_blocks: Option<u64>,
}

/// Why nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum RepairError {
    /// The superblock is unreadable and values it holds were not given.
    #[error("the superblock is unreadable ({reason}); give {missing} on the command line")]
    NeedOverride {
        /// What is wrong with the superblock.
        reason: String,
        /// The options needed, as command-line flags.
        missing: String,
    },
    /// Neither the superblock nor a scan of the metadata leads to any tree.
    #[error("no device details or mapping tree could be found ({0})")]
    NothingFound(String),
    /// The salvaged metadata could not be written.
    #[error("writing the repaired metadata: {0}")]
    Write(Error),
}

impl From<Error> for RepairError {
    fn from(e: Error) -> Self {
        RepairError::Write(e)
    }
}

/// The state of the superblock that was read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SuperblockState {
    /// It passed every check.
    Intact,
    /// Its checksum or location is wrong but its magic and layout fields are right; its
    /// fields were used as hints.
    Damaged(String),
    /// Nothing in block 0 looks like a superblock.
    Missing(String),
}

/// Where the tree roots came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RootSource {
    /// The superblock.
    Superblock,
    /// A scan of the metadata.
    Scan(scan::FoundRoots),
}

/// What a repair salvaged and what it had to leave out.
#[derive(Clone, Debug)]
pub struct Report {
    /// How the superblock read.
    pub superblock: SuperblockState,
    /// Where the roots came from.
    pub roots: RootSource,
    /// Devices written.
    pub devices: u64,
    /// Mappings written.
    pub mappings: u64,
    /// What the tree walks left out.
    pub damage: Damage,
    /// Mappings dropped because their data block is beyond the data device.
    pub beyond_data_device: u64,
    /// Devices that had mappings but no readable details (given the pool's transaction id
    /// and time).
    pub without_details: Vec<u64>,
    /// Devices that had details but no readable mapping tree (written empty).
    pub without_mappings: Vec<u64>,
    /// Values that had to be inferred rather than read, one line each.
    pub notes: Vec<String>,
}

impl Report {
    /// One line per thing a user should know, empty when nothing was lost.
    pub fn warnings(&self) -> Vec<String> {
        let mut w = Vec::new();
        match &self.superblock {
            SuperblockState::Intact => {}
            SuperblockState::Damaged(r) => w.push(format!(
                "superblock damaged ({r}); its fields were used as hints"
            )),
            SuperblockState::Missing(r) => w.push(format!("superblock unreadable ({r})")),
        }
        if let RootSource::Scan(f) = &self.roots {
            w.push(format!(
                "trees found by scanning the metadata: details root {}, mapping root {} \
                 ({} and {} candidates)",
                f.details_root, f.mapping_root, f.details_candidates, f.mapping_candidates
            ));
        }
        let d = &self.damage;
        if !d.is_clean() {
            w.push(format!(
                "{} damaged nodes skipped with their subtrees, {} repeated nodes, {} entries \
                 with bad keys dropped",
                d.bad_nodes, d.repeated_nodes, d.bad_keys
            ));
            w.extend(d.reasons.iter().map(|r| format!("  {r}")));
        }
        if self.beyond_data_device > 0 {
            w.push(format!(
                "{} mappings beyond the data device dropped",
                self.beyond_data_device
            ));
        }
        if !self.without_details.is_empty() {
            w.push(format!(
                "devices without readable details (recreated): {:?}",
                self.without_details
            ));
        }
        if !self.without_mappings.is_empty() {
            w.push(format!(
                "devices whose mapping tree was lost (written empty): {:?}",
                self.without_mappings
            ));
        }
        w.extend(self.notes.iter().cloned());
        w
    }
}

/// What the salvage recovered: the metadata to write and the report.
#[derive(Clone, Debug)]
pub struct Salvaged {
    /// The metadata in the XML model.
    pub metadata: Metadata,
    /// What was salvaged and lost.
    pub report: Report,
}

/// Smallest and largest data block sizes dm-thin accepts, in sectors; it wants a multiple
/// of the smallest.
const MIN_DATA_BLOCK_SIZE: u32 = 128;
const MAX_DATA_BLOCK_SIZE: u32 = 2 * 1024 * 1024;

fn plausible_block_size(s: u32) -> bool {
    (MIN_DATA_BLOCK_SIZE..=MAX_DATA_BLOCK_SIZE).contains(&s)
        && s.is_multiple_of(MIN_DATA_BLOCK_SIZE)
}

/// Reads the superblock: checked, or unchecked when only its checksum or location is bad.
fn read_superblock<B: BlockManager>(bm: &B) -> (SuperblockState, Option<Superblock>) {
    let e = match bm.read(LOCATION, Kind::Superblock, |d| {
        Superblock::unpack(LOCATION, d)
    }) {
        Ok(sb) => return (SuperblockState::Intact, Some(sb)),
        Err(e) => e,
    };
    match bm.read_raw(LOCATION, |d| Ok(Superblock::unpack(LOCATION, d))) {
        Ok(Ok(sb)) if matches!(e, Error::Checksum(_) | Error::WrongLocation { .. }) => {
            (SuperblockState::Damaged(e.to_string()), Some(sb))
        }
        _ => (SuperblockState::Missing(e.to_string()), None),
    }
}

/// Whether the data space map's index tree at `root` lists exactly the bitmaps that
/// `nr_blocks` data blocks need (a damaged superblock's size is believed only then).
fn index_agrees<B: BlockManager>(bm: &B, root: u64, nr_blocks: u64) -> bool {
    let mut n = 0u64;
    let walked = salvage_tree(bm, root, IndexEntry::SIZE, &HashSet::new(), |_, _| n += 1);
    walked.damage.is_clean() && n == nr_blocks.div_ceil(ENTRIES_PER_BLOCK)
}

/// The pool-wide values, from the options, the superblock or a damaged superblock.
struct PoolValues {
    transaction_id: u64,
    data_block_size: u32,
    /// `None` when it must be inferred from the highest mapped block.
    nr_data_blocks: Option<u64>,
    time: Option<u32>,
}

fn pool_values<B: BlockManager>(
    bm: &B,
    state: &SuperblockState,
    sb: Option<&Superblock>,
    opts: &Options,
) -> Result<PoolValues, RepairError> {
    if let (SuperblockState::Intact, Some(sb)) = (state, sb) {
        return Ok(PoolValues {
            transaction_id: opts.transaction_id.unwrap_or(sb.trans_id),
            data_block_size: opts.data_block_size.unwrap_or(sb.data_block_size),
            nr_data_blocks: Some(opts.nr_data_blocks.unwrap_or(sb.data_sm.nr_blocks)),
            time: Some(sb.time),
        });
    }
    let transaction_id = opts.transaction_id.or(sb.map(|s| s.trans_id));
    let data_block_size = opts.data_block_size.or(sb
        .map(|s| s.data_block_size)
        .filter(|s| plausible_block_size(*s)));
    let nr_data_blocks = opts.nr_data_blocks.or(sb
        .filter(|s| index_agrees(bm, s.data_sm.bitmap_root, s.data_sm.nr_blocks))
        .map(|s| s.data_sm.nr_blocks));
    match (transaction_id, data_block_size) {
        (Some(transaction_id), Some(data_block_size)) => Ok(PoolValues {
            transaction_id,
            data_block_size,
            nr_data_blocks,
            time: sb.map(|s| s.time),
        }),
        (t, d) => {
            let mut missing = Vec::new();
            if t.is_none() {
                missing.push("--transaction-id");
            }
            if d.is_none() {
                missing.push("--data-block-size");
            }
            let reason = match state {
                SuperblockState::Damaged(r) | SuperblockState::Missing(r) => r.clone(),
                SuperblockState::Intact => String::new(),
            };
            Err(RepairError::NeedOverride {
                reason,
                missing: missing.join(" and "),
            })
        }
    }
}

/// The devices under a pair of roots: details and mapping tree roots by device id.
struct Trees {
    details: BTreeMap<u64, DeviceDetails>,
    roots: BTreeMap<u64, u64>,
    /// Nodes of both trees, which no device tree may lead into.
    nodes: HashSet<BlockNr>,
    damage: Damage,
}

fn read_trees<B: BlockManager>(bm: &B, details_root: u64, mapping_root: u64) -> Trees {
    let mut details = BTreeMap::new();
    let none = HashSet::new();
    let d = salvage_tree(bm, details_root, DeviceDetails::SIZE, &none, |k, v| {
        details.insert(k, DeviceDetails::unpack(v));
    });
    let mut roots = BTreeMap::new();
    let top = salvage_tree(bm, mapping_root, 8, &none, |k, v| {
        let mut a = [0u8; 8];
        if let Some(s) = v.get(..8) {
            a.copy_from_slice(s);
        }
        roots.insert(k, u64::from_le_bytes(a));
    });
    let mut damage = d.damage;
    damage.merge(&top.damage);
    let mut nodes = d.nodes;
    nodes.extend(top.nodes);
    Trees {
        details,
        roots,
        nodes,
        damage,
    }
}

/// Reads everything that can be read from the damaged metadata on `bm`.
pub fn salvage<B: BlockManager>(bm: &B, opts: &Options) -> Result<Salvaged, RepairError> {
    let (state, sb) = read_superblock(bm);
    let pool = pool_values(bm, &state, sb.as_ref(), opts)?;

    // The superblock's trees, unless their top is damaged: then a scan may find an intact
    // pair (thin_repair does the same), and the superblock's trees are the fallback.
    let from_sb = sb.map(|s| read_trees(bm, s.details_root, s.mapping_root));
    let (trees, roots) = match from_sb {
        Some(t) if t.damage.is_clean() => (t, RootSource::Superblock),
        from_sb => match scan::find_roots(bm) {
            Some(f) => (
                read_trees(bm, f.details_root, f.mapping_root),
                RootSource::Scan(f),
            ),
            None => match from_sb {
                Some(t) => (t, RootSource::Superblock),
                None => {
                    let why = match &state {
                        SuperblockState::Missing(r) | SuperblockState::Damaged(r) => r.clone(),
                        SuperblockState::Intact => String::new(),
                    };
                    return Err(RepairError::NothingFound(format!(
                        "superblock: {why}; the scan found no intact pair of roots"
                    )));
                }
            },
        },
    };
    let mut report = Report {
        superblock: state,
        roots,
        devices: 0,
        mappings: 0,
        damage: trees.damage.clone(),
        beyond_data_device: 0,
        without_details: Vec::new(),
        without_mappings: Vec::new(),
        notes: Vec::new(),
    };

    // Each device's mappings; a snapshot's shared subtrees are walked once per device.
    let mut per_dev: BTreeMap<u64, Vec<Mapping>> = BTreeMap::new();
    let mut highest: Option<u64> = None;
    let mut latest = 0u32;
    for (&dev, &root) in &trees.roots {
        let mut runs: Vec<Mapping> = Vec::new();
        let limit = pool.nr_data_blocks;
        let mut beyond = 0u64;
        let walked = salvage_tree(bm, root, 8, &trees.nodes, |v, raw| {
            let mut a = [0u8; 8];
            if let Some(s) = raw.get(..8) {
                a.copy_from_slice(s);
            }
            let (b, t) = unpack_mapping(u64::from_le_bytes(a));
            if limit.is_some_and(|n| b >= n) {
                beyond += 1;
                return;
            }
            highest = highest.max(Some(b));
            latest = latest.max(t);
            Mapping::append(&mut runs, v, b, t);
        });
        report.damage.merge(&walked.damage);
        report.beyond_data_device += beyond;
        per_dev.insert(dev, runs);
    }

    let nr_data_blocks = match pool.nr_data_blocks {
        Some(n) => n,
        None => {
            let n = highest.map_or(0, |h| h + 1);
            report.notes.push(format!(
                "the data device size is unknown: set to {n} blocks (one past the highest \
                 mapped block); the pool grows to its data device when activated"
            ));
            n
        }
    };
    for d in trees.details.values() {
        latest = latest.max(d.creation_time).max(d.snapshotted_time);
    }
    let time = match (&report.superblock, pool.time) {
        (SuperblockState::Intact, Some(t)) => t,
        (_, t) => t.unwrap_or(0).max(latest),
    };

    let mut ids: Vec<u64> = trees.details.keys().copied().collect();
    ids.extend(per_dev.keys().copied());
    ids.sort_unstable();
    ids.dedup();
    let mut devices = Vec::new();
    for id in ids {
        let details = match trees.details.get(&id) {
            Some(d) => *d,
            None => {
                report.without_details.push(id);
                DeviceDetails {
                    mapped_blocks: 0,
                    transaction_id: pool.transaction_id,
                    creation_time: time,
                    snapshotted_time: time,
                }
            }
        };
        let mappings = match per_dev.remove(&id) {
            Some(m) => m,
            None => {
                report.without_mappings.push(id);
                Vec::new()
            }
        };
        let mapped: u64 = mappings.iter().map(|m| m.len).sum();
        report.mappings += mapped;
        devices.push(Device {
            id,
            mapped_blocks: mapped,
            transaction: details.transaction_id,
            creation_time: details.creation_time,
            snap_time: details.snapshotted_time,
            mappings,
        });
    }
    report.devices = devices.len() as u64;
    let metadata = Metadata {
        uuid: String::new(),
        time,
        transaction: pool.transaction_id,
        flags: 0,
        version: VERSION,
        data_block_size: pool.data_block_size,
        nr_data_blocks,
        devices,
    };
    Ok(Salvaged { metadata, report })
}

/// Salvages the metadata on `input` and writes it, fresh and consistent, onto `output`
/// (whose size sets the metadata size).
pub fn repair<B: BlockManager, W: BlockManager>(
    input: &B,
    output: W,
    opts: &Options,
) -> Result<Report, RepairError> {
    let s = salvage(input, opts)?;
    crate::restore::restore(output, &s.metadata)?;
    Ok(s.report)
}

#[cfg(test)]
mod tests {
    use super::salvage::read_node;
    use super::*;
    use crate::cache::{CachedBm, MemStore};
    use crate::{check, dump};
    use orion_pdata::block::BLOCK_SIZE;
    use orion_pdata::thin::{device_root, ThinMetadata};

    const NR_META: u64 = 1024;

    /// Device 1 with 600 mappings (an internal root over several leaves), device 2 a
    /// snapshot of it with every tenth block overwritten, device 3 empty.
    fn pool() -> Vec<u8> {
        let mut t = ThinMetadata::format(CachedBm::new(MemStore::new(NR_META)), 128, 10_000)
            .expect("format");
        t.set_time_and_transaction(0, 5);
        t.create_thin(1).expect("create");
        for v in 0..600 {
            t.provision(1, v).expect("provision");
        }
        t.create_snap(2, 1).expect("snapshot");
        for v in (0..600).step_by(10) {
            t.provision(2, v).expect("provision");
        }
        t.create_thin(3).expect("create");
        t.commit().expect("commit");
        let img = t.into_bm().store().image.borrow().clone();
        img
    }

    fn bm(image: Vec<u8>) -> CachedBm<MemStore> {
        CachedBm::new(MemStore::from_image(image))
    }

    fn block(image: &mut [u8], b: u64) -> &mut [u8] {
        &mut image[b as usize * BLOCK_SIZE..(b as usize + 1) * BLOCK_SIZE]
    }

    /// Device 1's mapping tree root and its children.
    fn dev1_nodes(image: &[u8]) -> (u64, Vec<u64>) {
        let bm = bm(image.to_vec());
        let sb = bm
            .read(LOCATION, Kind::Superblock, |d| {
                Superblock::unpack(LOCATION, d)
            })
            .expect("superblock");
        let root = device_root(&bm, sb.mapping_root, 1)
            .expect("lookup")
            .expect("device 1");
        let n = read_node(&bm, root).expect("root node");
        assert!(!n.leaf, "device 1 needs an internal root");
        (root, (0..n.keys.len()).map(|i| n.value_u64(i)).collect())
    }

    fn mappings(md: &Metadata, dev: u64) -> Vec<(u64, u64)> {
        md.devices
            .iter()
            .filter(|d| d.id == dev)
            .flat_map(|d| d.mappings.iter())
            .flat_map(|m| (0..m.len).map(move |i| (m.origin + i, m.data + i)))
            .collect()
    }

    /// Repairs onto fresh memory and checks the result is clean.
    fn repair_clean(image: Vec<u8>, opts: &Options) -> (Metadata, Report) {
        let out = CachedBm::new(MemStore::new(NR_META));
        let s = salvage(&bm(image), opts).expect("salvage");
        let t = crate::restore::restore(out, &s.metadata).expect("write");
        let written = t.into_bm();
        let r = check::check(&written);
        assert!(r.is_clean(), "repaired metadata: {:?}", r.errors);
        let back = dump::read(&written, dump::Source::Live).expect("dump");
        assert_eq!(back.devices, s.metadata.devices);
        (s.metadata, s.report)
    }

    #[test]
    fn intact_metadata_comes_back_unchanged() {
        let image = pool();
        let want = dump::read(&bm(image.clone()), dump::Source::Live).expect("dump");
        let (md, report) = repair_clean(image, &Options::default());
        assert_eq!(md.devices, want.devices);
        assert_eq!((md.transaction, md.time), (5, 1));
        assert_eq!(report.roots, RootSource::Superblock);
        assert!(report.damage.is_clean() && report.warnings().is_empty());
    }

    #[test]
    fn a_zeroed_leaf_costs_only_its_own_mappings() {
        let mut image = pool();
        let (_, leaves) = dev1_nodes(&image);
        let lost = leaves[1];
        let lost_keys = read_node(&bm(image.clone()), lost).expect("leaf").keys;
        block(&mut image, lost).fill(0);
        let (md, report) = repair_clean(image, &Options::default());
        let got = mappings(&md, 1);
        assert_eq!(got.len(), 600 - lost_keys.len());
        assert!(got.iter().all(|(v, _)| !lost_keys.contains(v)));
        // The snapshot shared that leaf; its own leaves survive.
        assert!(mappings(&md, 2).len() >= 600 - lost_keys.len());
        assert!(report.damage.bad_nodes >= 1);
        assert_eq!(md.devices[0].mapped_blocks, got.len() as u64);
    }

    #[test]
    fn a_loop_ends_and_the_rest_is_kept() {
        let mut image = pool();
        let (root, leaves) = dev1_nodes(&image);
        // Point the root's second child back at the root itself.
        let d = block(&mut image, root);
        let max = u32::from_le_bytes([d[20], d[21], d[22], d[23]]) as usize;
        let off = 32 + 8 * max + 8;
        d[off..off + 8].copy_from_slice(&root.to_le_bytes());
        Kind::Node.seal(root, d);
        let kept = 600
            - read_node(&bm(image.clone()), leaves[1])
                .expect("leaf")
                .keys
                .len();
        let (md, report) = repair_clean(image, &Options::default());
        assert_eq!(mappings(&md, 1).len(), kept);
        assert!(report.damage.repeated_nodes >= 1);
    }

    #[test]
    fn one_bad_key_costs_at_most_two_entries() {
        let mut image = pool();
        let (_, leaves) = dev1_nodes(&image);
        let leaf = leaves[0];
        let d = block(&mut image, leaf);
        // Key 5 jumps far past the leaf's range; the checksum is made to match.
        d[32 + 8 * 5..32 + 8 * 6].copy_from_slice(&1_000_000u64.to_le_bytes());
        Kind::Node.seal(leaf, d);
        let (md, report) = repair_clean(image, &Options::default());
        let got = mappings(&md, 1);
        assert!(got.len() >= 598 && got.len() < 600, "{}", got.len());
        assert!(!got.iter().any(|(v, _)| *v == 1_000_000));
        assert!(report.damage.bad_keys >= 1);
    }

    #[test]
    fn mappings_beyond_the_data_device_are_dropped() {
        let mut image = pool();
        let (_, leaves) = dev1_nodes(&image);
        let leaf = leaves[2];
        let d = block(&mut image, leaf);
        let max = u32::from_le_bytes([d[20], d[21], d[22], d[23]]) as usize;
        let off = 32 + 8 * max;
        d[off..off + 8].copy_from_slice(&(20_000u64 << 24).to_le_bytes());
        Kind::Node.seal(leaf, d);
        let (md, report) = repair_clean(image, &Options::default());
        assert_eq!(report.beyond_data_device, 1);
        assert_eq!(mappings(&md, 1).len(), 599);
        assert_eq!(md.nr_data_blocks, 10_000);
    }

    #[test]
    fn a_zeroed_superblock_needs_the_pool_values_then_the_scan_finds_the_trees() {
        let mut image = pool();
        let want = dump::read(&bm(image.clone()), dump::Source::Live).expect("dump");
        block(&mut image, 0).fill(0);
        match salvage(&bm(image.clone()), &Options::default()) {
            Err(RepairError::NeedOverride { missing, .. }) => {
                assert_eq!(missing, "--transaction-id and --data-block-size")
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
        let opts = Options {
            transaction_id: Some(5),
            data_block_size: Some(128),
            nr_data_blocks: None,
        };
        let (md, report) = repair_clean(image, &opts);
        assert_eq!(md.devices, want.devices);
        assert!(matches!(report.roots, RootSource::Scan(_)));
        // The size was not given: one past the highest mapped block.
        assert_eq!(md.nr_data_blocks, 660);
    }

    #[test]
    fn a_superblock_with_a_bad_checksum_is_used_as_hints() {
        let mut image = pool();
        let want = dump::read(&bm(image.clone()), dump::Source::Live).expect("dump");
        // The uuid is not used; the checksum no longer matches.
        block(&mut image, 0)[20] ^= 1;
        let (md, report) = repair_clean(image, &Options::default());
        assert!(matches!(report.superblock, SuperblockState::Damaged(_)));
        assert_eq!(md.devices, want.devices);
        assert_eq!((md.transaction, md.data_block_size), (5, 128));
        assert_eq!(md.nr_data_blocks, 10_000);
    }

    #[test]
    fn nothing_to_find_is_an_error() {
        let image = vec![0u8; 16 * BLOCK_SIZE];
        let opts = Options {
            transaction_id: Some(1),
            data_block_size: Some(128),
            nr_data_blocks: Some(100),
        };
        assert!(matches!(
            salvage(&bm(image), &opts),
            Err(RepairError::NothingFound(_))
        ));
    }

    #[test]
    fn plausible_block_sizes() {
        assert!(plausible_block_size(128) && plausible_block_size(384));
        assert!(!plausible_block_size(0) && !plausible_block_size(129));
        assert!(!plausible_block_size(MAX_DATA_BLOCK_SIZE * 2));
    }
}
