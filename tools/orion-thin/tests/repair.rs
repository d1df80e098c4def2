// SPDX-License-Identifier: GPL-2.0 OR MIT

//! Repair beside thin_repair: damaged pool metadata (several devices, snapshots sharing
//! blocks) is repaired by the real `thin_repair` and by `orion-thin repair`; ours must pass
//! `thin_check` and our check, and hold every mapping thin_repair salvaged.

mod common;

use common::{assert_thin_check_clean, ours_check_clean, scaled, sparse_file, tool, Driver, Rng};
use orion_pdata::block::{Kind, BLOCK_SIZE};
use orion_pdata::checksum::{block_checksum, BTREE_NODE_SALT};
use orion_thin::cache::{CachedBm, MemStore};
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

const NR_META: u64 = 4096;

/// The mappings of a dump as (device, virtual block, data block).
fn mappings_of(xml_text: &str) -> BTreeSet<(u64, u64, u64)> {
    let md = orion_thin::xml::parse(xml_text.as_bytes()).expect("thin_dump XML parses");
    let mut set = BTreeSet::new();
    for d in &md.devices {
        for m in &d.mappings {
            for i in 0..m.len {
                set.insert((d.id, m.origin + i, m.data + i));
            }
        }
    }
    set
}

/// A committed pool image made by random operations, with the blocks in use and the
/// blocks that hold valid btree nodes.
struct Base {
    image: Vec<u8>,
    used: Vec<u64>,
    nodes: Vec<u64>,
    /// Leaves of device mapping trees (8-byte values, data blocks past the metadata).
    leaves: Vec<u64>,
    /// Internal nodes, and the top-level mapping leaf.
    internals: Vec<u64>,
    top_level: u64,
    /// The mappings of the undamaged image.
    live: BTreeSet<(u64, u64, u64)>,
    transaction: u64,
    data_block_size: u32,
    nr_data_blocks: u64,
}

fn base(dir: &Path, seed: u64) -> Base {
    let mut d = Driver::format(CachedBm::new(MemStore::new(NR_META)), seed);
    // Enough devices and snapshots first, then the usual mix.
    for id in 0..4 {
        d.t.create_thin(id).unwrap();
        d.model.devices.insert(id, Default::default());
    }
    for _ in 0..2500 {
        d.step();
    }
    // A device big enough for internal nodes, and a snapshot of it that has diverged.
    d.t.create_thin(100).unwrap();
    for v in 0..900 {
        d.t.provision(100, v).unwrap();
    }
    d.t.create_snap(101, 100).unwrap();
    for v in (0..900).step_by(7) {
        d.t.provision(101, v).unwrap();
    }
    d.t.commit().unwrap();
    let image = d.t.tm().bm().store().image.borrow().clone();
    let used: Vec<u64> = (0..NR_META)
        .filter(|b| d.t.tm().count(*b).unwrap() > 0)
        .collect();
    let block = |b: u64| &image[b as usize * BLOCK_SIZE..(b as usize + 1) * BLOCK_SIZE];
    let nodes: Vec<u64> = used
        .iter()
        .copied()
        .filter(|b| Kind::Node.check(*b, block(*b)).is_ok())
        .collect();
    let leaves = nodes
        .iter()
        .copied()
        .filter(|b| {
            let n = block(*b);
            let (flags, nr, max, vs) = (u32_at(n, 4), u32_at(n, 16), u32_at(n, 20), u32_at(n, 24));
            flags == 2 && vs == 8 && nr > 0 && u64_at(n, 32 + 8 * max as usize) >> 24 > 0
        })
        .collect();
    let internals = nodes
        .iter()
        .copied()
        .filter(|b| u32_at(block(*b), 4) == 1)
        .collect();
    let sb = d.t.superblock();
    let file = dir.join(format!("base-{seed}"));
    std::fs::write(&file, &image).unwrap();
    assert_thin_check_clean(&file, "base image");
    let dumped = common::thin_dump(&file);
    let live = mappings_of(&dumped);
    eprintln!(
        "pool {seed}: {} devices, {} mappings",
        dumped.matches("<device ").count(),
        live.len()
    );
    Base {
        internals,
        top_level: sb.mapping_root,
        live,
        transaction: sb.trans_id,
        data_block_size: sb.data_block_size,
        nr_data_blocks: d.t.data_sm().nr_blocks(),
        image,
        used,
        nodes,
        leaves,
    }
}

fn u32_at(d: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(d[off..off + 4].try_into().unwrap())
}

fn u64_at(d: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(d[off..off + 8].try_into().unwrap())
}

fn reseal_node(block: &mut [u8]) {
    let sum = block_checksum(&block[4..], BTREE_NODE_SALT);
    block[..4].copy_from_slice(&sum.to_le_bytes());
}

/// The kinds of damage, applied to a copy of a base image; returns a label.
fn damage(b: &Base, image: &mut [u8], rng: &mut Rng, kind: u64) -> String {
    let pick = |rng: &mut Rng, v: &[u64]| v[rng.below(v.len() as u64) as usize];
    let range = |x: u64| x as usize * BLOCK_SIZE..(x as usize + 1) * BLOCK_SIZE;
    match kind {
        0 => {
            let t = pick(rng, &b.nodes);
            let bit = rng.below(BLOCK_SIZE as u64 * 8) as usize;
            image[range(t)][bit / 8] ^= 1 << (bit % 8);
            format!("bit flip in node {t}")
        }
        1 => {
            // A flip past the checksum and location, resealed: the node reads as valid.
            let t = pick(rng, &b.nodes);
            let bit = 16 * 8 + rng.below((BLOCK_SIZE as u64 - 16) * 8) as usize;
            let blk = &mut image[range(t)];
            blk[bit / 8] ^= 1 << (bit % 8);
            reseal_node(blk);
            format!("resealed bit flip in node {t}")
        }
        2 => {
            let t = pick(rng, &b.nodes);
            image[range(t)].fill(0);
            format!("zeroed node {t}")
        }
        3 => {
            // A torn write: the sectors from some point on are those of another block.
            let (t, o) = (pick(rng, &b.nodes), pick(rng, &b.used));
            let from = 1 + rng.below(7) as usize;
            let src = image[range(o)][from * 512..].to_vec();
            image[range(t)][from * 512..].copy_from_slice(&src);
            format!("torn node {t} (sectors {from}.. from {o})")
        }
        4 => {
            // A misdirected write: node `s` lands on block `t` too.
            let (s, t) = (pick(rng, &b.nodes), pick(rng, &b.used));
            let src = image[range(s)].to_vec();
            image[range(t)].copy_from_slice(&src);
            format!("node {s} misplaced onto {t}")
        }
        5 => {
            // A mapping pointing past the data device, resealed.
            let t = pick(rng, &b.leaves);
            let blk = &mut image[range(t)];
            let (nr, max) = (u32_at(blk, 16) as u64, u32_at(blk, 20) as usize);
            let i = rng.below(nr) as usize;
            let off = 32 + 8 * max + 8 * i;
            let v = u64_at(blk, off) | (1 << (24 + 30));
            blk[off..off + 8].copy_from_slice(&v.to_le_bytes());
            reseal_node(blk);
            format!("mapping {i} of leaf {t} beyond the data device")
        }
        6 => {
            let bit = rng.below(BLOCK_SIZE as u64 * 8) as usize;
            image[range(0)][bit / 8] ^= 1 << (bit % 8);
            format!("bit flip in the superblock at bit {bit}")
        }
        7 => {
            image[range(0)].fill(0);
            "zeroed superblock".into()
        }
        9 => {
            // A loop: a child pointer (or, when there is no internal node, a device's
            // mapping tree root) aimed back at its own node, resealed.
            let t = if b.internals.is_empty() || rng.chance(30) {
                b.top_level
            } else {
                pick(rng, &b.internals)
            };
            let blk = &mut image[range(t)];
            let (nr, max) = (u32_at(blk, 16) as u64, u32_at(blk, 20) as usize);
            let i = rng.below(nr) as usize;
            let off = 32 + 8 * max + 8 * i;
            blk[off..off + 8].copy_from_slice(&t.to_le_bytes());
            reseal_node(blk);
            format!("entry {i} of node {t} points back at it")
        }
        _ => {
            let n = 2 + rng.below(3);
            let labels: Vec<String> = (0..n)
                .map(|_| {
                    let k = [0, 1, 2, 3, 4, 5, 9][rng.below(7) as usize];
                    damage(b, image, rng, k)
                })
                .collect();
            labels.join(", ")
        }
    }
}

struct Outcome {
    ok: bool,
    stderr: String,
}

fn thin_repair(img: &Path, out: &Path, overrides: &[String]) -> Outcome {
    let mut args = vec![
        "-i".to_owned(),
        img.display().to_string(),
        "-o".to_owned(),
        out.display().to_string(),
    ];
    args.extend(overrides.iter().cloned());
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let r = tool("/usr/sbin/thin_repair", &argv);
    Outcome {
        ok: r.ok,
        stderr: r.stderr,
    }
}

fn ours_repair(img: &Path, out: &Path, overrides: &[String]) -> Outcome {
    let out = Command::new(env!("CARGO_BIN_EXE_orion-thin"))
        .arg("repair")
        .arg("-i")
        .arg(img)
        .arg("-o")
        .arg(out)
        .args(overrides)
        .output()
        .unwrap();
    let code = out.status.code();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    // Refusing damaged input is exit code 1; anything else is a failure of ours.
    assert!(
        matches!(code, Some(0) | Some(1)),
        "orion-thin repair exit {code:?}: {stderr}"
    );
    Outcome {
        ok: code == Some(0),
        stderr,
    }
}

#[test]
fn repair_salvages_at_least_what_thin_repair_does() {
    assert!(
        Path::new("/usr/sbin/thin_repair").exists(),
        "thin_repair (thin-provisioning-tools 0.9) must be installed for this test"
    );
    let dir = tempfile::tempdir().unwrap();
    let bases: Vec<Base> = (0..4).map(|s| base(dir.path(), 100 + s)).collect();
    let mut rng = Rng::new(17);
    let img = dir.path().join("damaged");
    let cases = scaled(100);
    let (mut theirs_ok, mut ours_ok, mut both_refuse) = (0u64, 0u64, 0u64);
    let (mut theirs_maps, mut ours_maps, mut ours_only_maps) = (0usize, 0usize, 0usize);
    let mut ours_only_cases = 0u64;
    let (mut not_superset, mut wrong) = (0u64, 0usize);
    let (mut theirs_right, mut ours_right) = (0usize, 0usize);
    for case in 0..cases {
        let b = &bases[rng.below(bases.len() as u64) as usize];
        let mut image = b.image.clone();
        let kind = case % 10;
        let label = damage(b, &mut image, &mut rng, kind);
        std::fs::write(&img, &image).unwrap();
        // ORION_REPAIR_KEEP=DIR keeps every damaged image there, to rerun the tools by hand.
        if let Ok(keep) = std::env::var("ORION_REPAIR_KEEP") {
            std::fs::write(format!("{keep}/case{case}.img"), &image).unwrap();
        }
        // For a zeroed superblock both tools get the values it held, as a user would give.
        let overrides: Vec<String> = if kind == 7 {
            vec![
                format!("--transaction-id={}", b.transaction),
                format!("--data-block-size={}", b.data_block_size),
                format!("--nr-data-blocks={}", b.nr_data_blocks),
            ]
        } else {
            Vec::new()
        };
        let out1 = sparse_file(dir.path(), "theirs", 16);
        let out2 = sparse_file(dir.path(), "ours", 16);
        let t = thin_repair(&img, &out1, &overrides);
        let o = ours_repair(&img, &out2, &overrides);
        let what = format!("case {case} ({label})");
        let ours_set = if o.ok {
            assert_thin_check_clean(&out2, &what);
            ours_check_clean(&out2);
            ours_ok += 1;
            let s = mappings_of(&common::thin_dump(&out2));
            ours_maps += s.len();
            Some(s)
        } else {
            None
        };
        // thin_repair can write output that its own thin_dump cannot read back; that
        // salvaged nothing usable.
        let theirs_set = if t.ok {
            let r = tool("thin_dump", &[out1.to_str().unwrap()]);
            r.ok.then(|| mappings_of(&r.stdout))
        } else {
            None
        };
        match (&theirs_set, &ours_set) {
            (Some(ts), Some(os)) => {
                theirs_ok += 1;
                theirs_maps += ts.len();
                theirs_right += ts.intersection(&b.live).count();
                ours_right += os.intersection(&b.live).count();
                // Every mapping thin_repair got right (it is in the undamaged metadata), ours
                // has too.
                let missing: Vec<_> = ts
                    .intersection(&b.live)
                    .filter(|m| !os.contains(m))
                    .collect();
                assert!(
                    missing.is_empty(),
                    "{what}: ours lacks {} correct mappings thin_repair salvaged, e.g. {:?}",
                    missing.len(),
                    &missing[..missing.len().min(5)]
                );
                // Anything else thin_repair wrote that ours did not is not in the last
                // committed metadata: an older transaction's roots, or garbage.
                let extra: Vec<_> = ts.difference(os).collect();
                if !extra.is_empty() {
                    not_superset += 1;
                    wrong += extra.len();
                    let why = if *os == b.live {
                        "ours is the last transaction exactly, thin_repair went back to an older one"
                    } else {
                        "ours dropped them"
                    };
                    eprintln!(
                        "{what}: thin_repair wrote {} mappings not in the undamaged metadata \
                         (e.g. {:?}) that ours did not: {why}; it lacks {} correct ones ours has",
                        extra.len(),
                        &extra[..extra.len().min(3)],
                        os.intersection(&b.live).filter(|m| !ts.contains(m)).count()
                    );
                }
            }
            (Some(ts), None) => panic!(
                "{what}: thin_repair salvaged {} mappings, ours refused: {}",
                ts.len(),
                o.stderr
            ),
            (None, Some(os)) => {
                ours_only_cases += 1;
                ours_only_maps += os.len();
                eprintln!(
                    "{what}: thin_repair refused ({}), ours salvaged {} mappings",
                    t.stderr.lines().next().unwrap_or(""),
                    os.len()
                );
            }
            (None, None) => {
                both_refuse += 1;
                eprintln!("{what}: both refuse; ours: {}", o.stderr.trim());
            }
        }
    }
    eprintln!(
        "{cases} damaged images: thin_repair salvaged {theirs_maps} mappings from {theirs_ok}, \
         ours {} from {ours_ok} ({ours_maps} incl. {ours_only_maps} from {ours_only_cases} \
         images thin_repair refused); both refused {both_refuse}; of the mappings of the undamaged metadata, on the \
         images both repaired, thin_repair salvaged {theirs_right} and ours {ours_right}, \
         every one of thin_repair's among them; a strict superset in all but {not_superset}, where \
         thin_repair wrote {wrong} mappings not in the undamaged metadata",
        ours_maps - ours_only_maps
    );
}
