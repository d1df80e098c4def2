// SPDX-License-Identifier: GPL-2.0 OR MIT

//! Round trips with the real tools: metadata made by thin_restore reads back identically
//! through ours, and ours restored from XML passes thin_check and dumps back to that XML.

mod common;

use common::{
    assert_same_text, assert_thin_check_clean, ours_check_clean, ours_dump, scaled, sparse_file,
    thin_dump, tool, Model, ModelDevice, Rng,
};
use orion_thin::cache::{CachedBm, FileStore};
use orion_thin::{dump, restore, xml};

/// A pool with devices that share runs of data blocks, as snapshots do.
fn random_model(rng: &mut Rng) -> Model {
    let nr_data = 200_000;
    let time = 1 + rng.below(50) as u32;
    let mut m = Model {
        time,
        transaction: rng.below(1000),
        data_block_size: 128 << rng.below(4),
        nr_data_blocks: nr_data,
        devices: Default::default(),
    };
    let mut next_data = rng.below(100);
    for _ in 0..1 + rng.below(8) {
        let id = rng.below(1 << 24);
        let mut d = ModelDevice {
            transaction: rng.below(m.transaction + 1),
            creation_time: rng.below(time as u64 + 1) as u32,
            snap_time: time,
            mappings: Default::default(),
        };
        // Share part of an earlier device's mappings.
        if let Some(other) = m.devices.values().next() {
            if rng.chance(50) {
                for (v, b) in other.mappings.iter().filter(|_| rng.chance(60)) {
                    d.mappings.insert(*v, *b);
                }
            }
        }
        for _ in 0..rng.below(40) {
            let origin = rng.below(1 << 20);
            let len = 1 + rng.below(300);
            let t = rng.below(time as u64 + 1) as u32;
            for i in 0..len {
                if next_data >= nr_data {
                    break;
                }
                d.mappings.insert(origin + i, (next_data, t));
                next_data += 1 + if rng.chance(5) { rng.below(10) } else { 0 };
            }
        }
        m.devices.insert(id, d);
    }
    m
}

#[test]
fn thin_restore_output_reads_back_through_ours_and_ours_passes_thin_check() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng::new(5);
    let cases = scaled(12);
    let mut mappings = 0;
    for case in 0..cases {
        let m = random_model(&mut rng);
        mappings += m.devices.values().map(|d| d.mappings.len()).sum::<usize>();
        let want = m.to_xml();
        let xml_path = dir.path().join(format!("in-{case}.xml"));
        std::fs::write(&xml_path, &want).unwrap();

        // Theirs → ours.
        let theirs = sparse_file(dir.path(), &format!("theirs-{case}"), 64);
        let r = tool(
            "thin_restore",
            &[
                "-i",
                xml_path.to_str().unwrap(),
                "-o",
                theirs.to_str().unwrap(),
            ],
        );
        assert!(r.ok, "thin_restore: {}", r.stderr);
        assert_same_text(&thin_dump(&theirs), &want, "thin_dump of thin_restore");
        assert_same_text(
            &ours_dump(&theirs, dump::Source::Live),
            &want,
            &format!("case {case}: orion-thin dump of thin_restore output"),
        );
        ours_check_clean(&theirs);

        // Ours → theirs.
        let ours = sparse_file(dir.path(), &format!("ours-{case}"), 64);
        let parsed = xml::parse(want.as_bytes()).unwrap();
        assert_eq!(parsed, m.to_metadata(), "XML parse round trip");
        let bm = CachedBm::new(FileStore::open(&ours, true).unwrap());
        restore::restore(bm, &parsed).unwrap();
        assert_thin_check_clean(&ours, &format!("case {case}: our restore"));
        assert_same_text(
            &thin_dump(&ours),
            &want,
            &format!("case {case}: thin_dump of our restore"),
        );
    }
    eprintln!("{cases} pools, {mappings} mappings restored both ways");
}

#[test]
fn bad_xml_is_refused_with_a_message() {
    for (text, what) in [
        ("<superblock", "truncated"),
        ("<device dev_id=\"1\"/>", "no superblock"),
        (
            "<superblock uuid=\"\" time=\"x\" transaction=\"1\" data_block_size=\"128\" nr_data_blocks=\"10\"></superblock>",
            "bad number",
        ),
        (
            "<superblock uuid=\"\" time=\"0\" transaction=\"1\" data_block_size=\"128\" nr_data_blocks=\"10\"><bogus/></superblock>",
            "unknown element",
        ),
    ] {
        let e = xml::parse(text.as_bytes()).unwrap_err();
        assert!(!e.to_string().is_empty(), "{what}");
    }
    // Mappings beyond the data device are refused by restore, not written.
    let text = "<superblock uuid=\"\" time=\"0\" transaction=\"1\" flags=\"0\" version=\"2\" data_block_size=\"128\" nr_data_blocks=\"10\">\n  <device dev_id=\"1\" mapped_blocks=\"1\" transaction=\"0\" creation_time=\"0\" snap_time=\"0\">\n    <single_mapping origin_block=\"0\" data_block=\"10\" time=\"0\"/>\n  </device>\n</superblock>\n";
    let md = xml::parse(text.as_bytes()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let f = sparse_file(dir.path(), "m", 4);
    let bm = CachedBm::new(FileStore::open(&f, true).unwrap());
    assert!(restore::restore(bm, &md).is_err());
}
