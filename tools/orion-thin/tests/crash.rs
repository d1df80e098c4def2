// SPDX-License-Identifier: GPL-2.0 OR MIT

//! Crash simulation: the write stream of each commit is cut at every point; reopening
//! always yields exactly the last committed transaction, which thin_check finds clean.

mod common;

use common::{assert_same_text, assert_thin_check_clean, scaled, Driver};
use orion_pdata::block::BLOCK_SIZE;
use orion_thin::cache::{CachedBm, MemStore};
use orion_thin::{check, dump, xml};

fn dump_of(image: Vec<u8>) -> String {
    let bm = CachedBm::new(MemStore::from_image(image));
    let r = check::check(&bm);
    assert!(r.is_clean(), "orion-thin check after a cut: {:?}", r.errors);
    let md = dump::read(&bm, dump::Source::Live).unwrap();
    let mut out = Vec::new();
    xml::write(&md, &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

#[test]
fn every_cut_of_a_commit_yields_the_last_committed_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cut");
    let mut d = Driver::format(CachedBm::new(MemStore::new(4096)), 7);
    d.no_commit = true;
    let (mut cuts, mut txns) = (0usize, 0u64);
    for txn in 0..scaled(20) {
        let store = d.t.tm().bm().store();
        let before_image = store.image.borrow().clone();
        let before = d.model.to_xml();
        store.log.borrow_mut().clear();
        for _ in 0..50 {
            d.step();
        }
        d.t.commit().unwrap();
        let after = d.model.to_xml();
        let log = std::mem::take(&mut *d.t.tm().bm().store().log.borrow_mut());
        assert_eq!(
            log.last().map(|w| w.0),
            Some(0),
            "the superblock is written last"
        );
        assert!(log[..log.len() - 1].iter().all(|w| w.0 != 0));
        for k in 0..=log.len() {
            let mut image = before_image.clone();
            for (b, data) in &log[..k] {
                let off = *b as usize * BLOCK_SIZE;
                image[off..off + BLOCK_SIZE].copy_from_slice(data);
            }
            let want = if k == log.len() { &after } else { &before };
            std::fs::write(&file, &image).unwrap();
            assert_thin_check_clean(&file, &format!("transaction {txn}, cut after {k} writes"));
            assert_same_text(
                &dump_of(image),
                want,
                &format!("transaction {txn}, cut {k}"),
            );
            cuts += 1;
        }
        txns += 1;
    }
    eprintln!("{cuts} crash points over {txns} transactions");
}
