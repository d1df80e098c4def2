// SPDX-License-Identifier: GPL-2.0 OR MIT

//! Metadata written by random operation sequences passes `thin_check` and `thin_dump`
//! prints exactly the mappings of a model kept beside it.

mod common;

use common::{
    assert_same_text, assert_thin_check_clean, ours_check_clean, ours_dump, scaled, sparse_file,
    thin_dump, tool, Driver,
};
use orion_thin::cache::{CachedBm, FileStore};
use orion_thin::dump;
use std::path::Path;

fn run(seed: u64, ops: u64, checks: u64, dir: &Path) -> u64 {
    let path = sparse_file(dir, &format!("meta-{seed}"), 32);
    let bm = CachedBm::new(FileStore::open(&path, true).unwrap());
    let mut r = Driver::format(bm, seed);
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
