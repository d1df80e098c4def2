// SPDX-License-Identifier: GPL-2.0 OR MIT

//! The `orion-thin` command: exit codes and messages for good and bad input.

mod common;

use common::{sparse_file, Model, ModelDevice};
use std::process::Command;

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_orion-thin"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn exit_codes_and_messages() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = Model {
        time: 2,
        transaction: 9,
        data_block_size: 256,
        nr_data_blocks: 1000,
        ..Model::default()
    };
    let mut d = ModelDevice::default();
    for v in 0..50 {
        d.mappings.insert(v * 3, (v + 100, 1));
    }
    m.devices.insert(3, d);
    let xml = dir.path().join("in.xml");
    std::fs::write(&xml, m.to_xml()).unwrap();
    let meta = sparse_file(dir.path(), "meta", 4);
    let (x, s) = (xml.to_str().unwrap(), meta.to_str().unwrap());

    assert_eq!(run(&["restore", "-i", x, "-o", s]).0, 0);
    let (rc, out, _) = run(&["check", s]);
    assert_eq!((rc, out.contains("TRANSACTION_ID=9")), (0, true));
    let (rc, out, _) = run(&["dump", s]);
    assert_eq!((rc, out), (0, m.to_xml()));
    let (rc, out, _) = run(&["ls", s]);
    assert_eq!(rc, 0);
    assert!(out
        .lines()
        .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["3", "50", "50", "0", "0"]));

    // No metadata snapshot is held.
    let (rc, _, err) = run(&["dump", "-m", s]);
    assert_eq!(rc, 2, "{err}");
    assert!(err.contains("no metadata snapshot"));

    // Damage the superblock: check and dump say so with exit code 1.
    let mut img = std::fs::read(&meta).unwrap();
    img[100] ^= 0x40;
    std::fs::write(&meta, &img).unwrap();
    let (rc, _, err) = run(&["check", s]);
    assert_eq!(rc, 1);
    assert!(err.contains("checksum"), "{err}");
    assert_eq!(run(&["dump", s]).0, 1);

    // Repair salvages it (the superblock's fields as hints) onto a new file.
    let fixed = sparse_file(dir.path(), "fixed", 4);
    let f = fixed.to_str().unwrap();
    let (rc, out, err) = run(&["repair", "-i", s, "-o", f]);
    assert_eq!(rc, 0, "{err}");
    assert!(out.contains("50 mappings"), "{out}");
    assert!(err.contains("superblock damaged"), "{err}");
    assert_eq!(run(&["dump", f]), (0, m.to_xml(), String::new()));
    assert_eq!(run(&["repair", "-i", s, "-o", s]).0, 2);
    assert_eq!(run(&["repair", "-i", "/nonexistent/meta", "-o", f]).0, 3);

    // Missing files and bad XML.
    assert_eq!(run(&["check", "/nonexistent/meta"]).0, 3);
    std::fs::write(&xml, "<superblock uuid=\"\"").unwrap();
    let (rc, _, err) = run(&["restore", "-i", x, "-o", s]);
    assert_eq!(rc, 2);
    assert!(err.contains("in.xml"), "{err}");
    // A file full of zeroes is not metadata.
    let zero = sparse_file(dir.path(), "zero", 1);
    let (rc, _, err) = run(&["check", zero.to_str().unwrap()]);
    assert_eq!(rc, 1, "{err}");
    // Nor can it be repaired without the values a superblock holds.
    let (rc, _, err) = run(&["repair", "-i", zero.to_str().unwrap(), "-o", f]);
    assert_eq!(rc, 1, "{err}");
    assert!(
        err.contains("--transaction-id and --data-block-size"),
        "{err}"
    );
}
