// SPDX-License-Identifier: GPL-2.0 OR MIT

//! Corruption: bit flips and block overwrites in valid metadata. Our check never panics and
//! agrees with thin_check on whether the metadata is damaged.

mod common;

use common::{scaled, thin_check, Driver, Rng};
use orion_pdata::block::BLOCK_SIZE;
use orion_thin::cache::{CachedBm, FileStore, MemStore};
use orion_thin::check;

#[test]
fn corruption_is_reported_like_thin_check() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("damaged");
    let mut d = Driver::format(CachedBm::new(MemStore::new(4096)), 11);
    for _ in 0..1500 {
        d.step();
    }
    d.t.commit().unwrap();
    let used: Vec<u64> = (0..4096)
        .filter(|b| d.t.tm().count(*b).unwrap() > 0)
        .collect();
    let base = d.t.tm().bm().store().image.borrow().clone();
    let mut rng = Rng::new(99);
    let (mut cases, mut damaged) = (0u64, 0u64);
    for _ in 0..scaled(300) {
        let mut image = base.clone();
        let target = if rng.chance(85) {
            used[rng.below(used.len() as u64) as usize]
        } else {
            rng.below(4096)
        };
        let off = target as usize * BLOCK_SIZE;
        let block = &mut image[off..off + BLOCK_SIZE];
        match rng.below(4) {
            0 => {
                let bit = rng.below(BLOCK_SIZE as u64 * 8) as usize;
                block[bit / 8] ^= 1 << (bit % 8);
            }
            1 => block.iter_mut().for_each(|b| *b = rng.next() as u8),
            2 => block.fill(0),
            _ => {
                let other = used[rng.below(used.len() as u64) as usize] as usize * BLOCK_SIZE;
                let copy = base[other..other + BLOCK_SIZE].to_vec();
                block.copy_from_slice(&copy);
            }
        }
        std::fs::write(&file, &image).unwrap();
        let ours = check::check(&CachedBm::new(FileStore::open(&file, false).unwrap()));
        let theirs = thin_check(&file);
        assert_eq!(
            ours.is_clean(),
            theirs.ok,
            "block {target}: ours {:?}, thin_check {}",
            ours.errors,
            theirs.stderr
        );
        cases += 1;
        if !theirs.ok {
            damaged += 1;
        }
    }
    eprintln!("{cases} corruptions, {damaged} damaging; verdicts agree on all");
}
