// SPDX-License-Identifier: GPL-2.0 OR MIT

//! Metadata written by random operation sequences passes `thin_check` and `thin_dump`
//! prints exactly the mappings of a model kept beside it.

mod common;

use common::{
    assert_same_text, scaled, sparse_file, thin_check, thin_dump, tool, Model, ModelDevice, Rng,
};
use orion_pdata::error::Error;
use orion_pdata::thin::ThinMetadata;
use orion_thin::cache::{CachedBm, FileStore};
use orion_thin::{check, dump, xml};
use std::path::Path;

const NR_DATA: u64 = 65536;
const MAX_DEV: u64 = 24;
const MAX_VBLOCK: u64 = 700;

/// The lines thin_check prints when it finds nothing wrong.
fn assert_thin_check_clean(path: &Path, when: &str) {
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

fn ours_dump(path: &Path, source: dump::Source) -> String {
    let bm = CachedBm::new(FileStore::open(path, false).unwrap());
    let md = dump::read(&bm, source).unwrap();
    let mut out = Vec::new();
    xml::write(&md, &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

fn ours_check_clean(path: &Path) {
    let bm = CachedBm::new(FileStore::open(path, false).unwrap());
    let r = check::check(&bm);
    assert!(r.is_clean(), "orion-thin check: {:?}", r.errors);
}

struct Run {
    t: ThinMetadata<CachedBm<FileStore>>,
    model: Model,
    held: Option<Model>,
    rng: Rng,
    ops: u64,
}

impl Run {
    fn pick_dev(&mut self) -> Option<u64> {
        let n = self.model.devices.len() as u64;
        if n == 0 {
            return None;
        }
        let i = self.rng.below(n) as usize;
        self.model.devices.keys().nth(i).copied()
    }

    fn step(&mut self) {
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

    fn verify_lookups(&mut self) {
        for (id, d) in &self.model.devices {
            for (v, m) in &d.mappings {
                assert_eq!(self.t.lookup(*id, *v).unwrap(), Some(*m), "lookup {id}/{v}");
            }
        }
    }
}

fn run(seed: u64, ops: u64, checks: u64, dir: &Path) -> u64 {
    let path = sparse_file(dir, &format!("meta-{seed}"), 32);
    let bm = CachedBm::new(FileStore::open(&path, true).unwrap());
    let t = ThinMetadata::format(bm, 128, NR_DATA).unwrap();
    let mut r = Run {
        t,
        model: Model {
            data_block_size: 128,
            nr_data_blocks: NR_DATA,
            ..Model::default()
        },
        held: None,
        rng: Rng::new(seed),
        ops: 0,
    };
    for round in 0..checks {
        for _ in 0..ops / checks {
            r.step();
        }
        r.verify_lookups();
        r.t.commit().unwrap();
        let when = format!("seed {seed} round {round} after {} operations", r.ops);
        assert_thin_check_clean(&path, &when);
        let want = r.model.to_xml();
        assert_same_text(&thin_dump(&path), &want, &format!("thin_dump {when}"));
        assert_same_text(
            &ours_dump(&path, dump::Source::Live),
            &want,
            &format!("orion-thin dump {when}"),
        );
        ours_check_clean(&path);
        if let Some(held) = &r.held {
            let m = tool("thin_dump", &["-m", path.to_str().unwrap()]);
            assert!(m.ok, "thin_dump -m {when}: {}", m.stderr);
            // A metadata snapshot has no data space map: both tools report 0 data blocks.
            let mut held = held.clone();
            held.nr_data_blocks = 0;
            assert_same_text(&m.stdout, &held.to_xml(), &format!("thin_dump -m {when}"));
            assert_same_text(
                &ours_dump(&path, dump::Source::HeldSnapshot),
                &held.to_xml(),
                &format!("orion-thin dump -m {when}"),
            );
        }
    }
    r.ops
}

#[test]
fn random_operations_match_model_and_pass_thin_check() {
    let dir = tempfile::tempdir().unwrap();
    let seeds = scaled(6);
    let mut total = 0;
    for seed in 1..=seeds {
        total += run(seed, 3000, 6, dir.path());
    }
    eprintln!(
        "{total} random operations over {seeds} seeds, checked {} times",
        seeds * 6
    );
}
