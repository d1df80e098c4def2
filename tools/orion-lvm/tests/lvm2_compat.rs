// SPDX-License-Identifier: GPL-2.0 OR MIT

//! Proof against real LVM2 (Debian lvm2 2.03.16) on loop devices, metadata only (the host
//! has no device-mapper; activation is proven in the VM): VGs and LVs made by orion-lvm
//! are listed identically by `vgs`/`lvs`/`pvs` and pass `vgck`/`pvck`; changes real LVM2
//! makes to our VG survive our next write; a VG made by real `vgcreate` is read by
//! orion-lvm with the same fields and accepts our LVs;
//! metadata text round trips losslessly.

#[path = "common/loops.rs"]
// Each test file uses its own subset of the helpers.
#[allow(dead_code)]
mod loops;

use loops::{json_field, lvm, metadata_of, ours, ours_exits, ours_fails, system_dir, Loop};
use orion_lvm::{config, pv::Pv, vg::Vg};
use std::path::{Path, PathBuf};

#[test]
fn ours_and_real_lvm2_read_each_others_volume_groups() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, c) = (
        Loop::new(dir.path(), "a", 96),
        Loop::new(dir.path(), "b", 64),
        Loop::new(dir.path(), "c", 48),
    );
    let all = [&a, &b, &c];
    let sfx = format!("{}", std::process::id());
    let vg = format!("orion_t{sfx}");

    // Ours → real LVM2: 23 + 15 + 11 extents of 4 MiB; a linear LV, a striped LV over
    // three PVs, and a linear LV whose two segments lie on two PVs.
    ours(&["vgcreate", &vg, &a.0, &b.0, &c.0]);
    ours(&["lvcreate", "-an", "-L", "80M", "-n", "span", &vg]);
    ours(&[
        "lvcreate", "-an", "-l", "6", "-i", "3", "-I", "128k", "-n", "str", &vg,
    ]);
    ours(&["lvcreate", "-an", "-L", "56m", "-n", "small", &vg]);
    let (ok, rows) = lvm(
        "lvs",
        &all,
        &[
            "--noheadings",
            "--units",
            "s",
            "--nosuffix",
            "-o",
            "lv_name,lv_size,seg_count,stripes,stripe_size,devices",
            "-O",
            "lv_name",
        ],
    );
    assert!(ok, "real lvs failed");
    // Segment fields: one row per segment.
    let want = [
        // Longer than any free run: the longest first, then the run that fits best.
        format!("small 114688 2 1 0 {}(2)", b.0),
        format!("small 114688 2 1 0 {}(22)", a.0),
        format!("span 163840 1 1 0 {}(0)", a.0),
        format!("str 49152 1 3 256 {}(20),{}(0),{}(0)", a.0, b.0, c.0),
    ];
    assert_eq!(rows, want, "real lvs of our VG");
    let (ok, rows) = lvm(
        "vgs",
        &all,
        &[
            "--noheadings",
            "--units",
            "s",
            "--nosuffix",
            "-o",
            "vg_name,pv_count,lv_count,vg_extent_size,vg_size,vg_free,vg_seqno,vg_uuid",
        ],
    );
    assert!(ok);
    let ours_vgs = ours(&["vgs", "--json", "-o", "+vg_uuid", &vg]);
    let uuid = json_field(&ours_vgs, "vg_uuid")
        .into_iter()
        .zip(json_field(&ours_vgs, "vg_name"))
        .find(|(_, n)| *n == vg)
        .unwrap()
        .0;
    assert_eq!(rows, [format!("{vg} 3 3 8192 401408 73728 4 {uuid}")]);
    let (ok, _) = lvm("vgck", &all, &[&vg]);
    assert!(ok, "vgck of our VG");
    for l in all {
        let (ok, _) = lvm("pvck", &all, &[&l.0]);
        assert!(ok, "pvck {}", l.0);
    }

    // Real LVM2 changes our VG (tags: metadata-only changes it can make without
    // device-mapper); we keep its changes when we write.
    assert!(
        lvm(
            "lvchange",
            &all,
            &["--addtag", "fromlvm2", &format!("{vg}/span")]
        )
        .0
    );
    assert!(lvm("vgchange", &all, &["--addtag", "vgtag", &vg]).0);
    assert_eq!(metadata_of(&a.0).seqno, 6);
    ours(&["lvremove", &format!("{vg}/small")]);
    assert_eq!(metadata_of(&c.0).seqno, 7);
    let (ok, rows) = lvm("lvs", &all, &["--noheadings", "-o", "lv_name,lv_tags", &vg]);
    assert!(ok);
    assert_eq!(rows, ["span fromlvm2", "str"]);
    let (_, rows) = lvm("vgs", &all, &["--noheadings", "-o", "vg_tags", &vg]);
    assert_eq!(rows, ["vgtag"]);
    assert!(lvm("vgck", &all, &[&vg]).0);

    // Bad input leaves metadata as it was.
    let before = metadata_of(&a.0);
    assert!(
        ours_fails(&["lvcreate", "-an", "-L", "10g", "-n", "big", &vg])
            .contains("insufficient free space")
    );
    assert!(
        ours_fails(&["lvcreate", "-an", "-L", "4m", "-n", "span", &vg]).contains("already exists")
    );
    assert!(ours_fails(&["lvcreate", "-an", "-L", "4m", "-n", "x", "novg"]).contains("not found"));
    // A bad name is a usage error, as in LVM2 (EINVALID_CMD_LINE).
    assert!(
        ours_exits(3, &["lvcreate", "-an", "-L", "4m", "-n", "bad/name", &vg]).contains("name")
    );
    assert!(ours_fails(&["vgcreate", &vg, &a.0]).contains("already exists"));
    assert_eq!(metadata_of(&a.0), before);

    // Real LVM2 → ours.
    let (d, e) = (
        Loop::new(dir.path(), "d", 40),
        Loop::new(dir.path(), "e", 40),
    );
    let vg2 = format!("real_t{sfx}");
    let (ok, _) = lvm("vgcreate", &[&d, &e], &["-s", "2m", &vg2, &d.0, &e.0]);
    assert!(ok, "real vgcreate");
    let (_, rows) = lvm(
        "vgs",
        &[&d, &e],
        &[
            "--noheadings",
            "--units",
            "s",
            "--nosuffix",
            "-o",
            "vg_uuid,vg_seqno,vg_extent_size,pv_count",
        ],
    );
    let theirs = metadata_of(&d.0);
    assert_eq!(
        rows,
        [format!(
            "{} {} {} {}",
            theirs.id,
            theirs.seqno,
            theirs.extent_size,
            theirs.pvs.len()
        )]
    );
    let (_, pv_rows) = lvm(
        "pvs",
        &[&d, &e],
        &[
            "--noheadings",
            "-o",
            "pv_name,pv_uuid,pv_pe_count",
            "-O",
            "pv_name",
        ],
    );
    let pvs_json = ours(&["pvs", "--json", "-o", "+pv_uuid", &d.0, &e.0]);
    for row in pv_rows {
        let f: Vec<&str> = row.split(' ').collect();
        let vp = theirs
            .pvs
            .iter()
            .find(|p| p.id == f[1])
            .expect("PV in our model");
        assert_eq!(vp.pe_count.to_string(), f[2]);
        assert!(json_field(&pvs_json, "pv_uuid").contains(&f[1].to_owned()));
    }
    // Lossless text round trip of LVM2's own metadata.
    let text = Pv::scan(&PathBuf::from(&d.0))
        .unwrap()
        .unwrap()
        .text()
        .unwrap()
        .unwrap();
    let tree = config::parse(&text).unwrap();
    assert_eq!(config::parse(&config::write(&tree)).unwrap(), tree);
    // We add an LV to their VG; real LVM2 accepts the result.
    ours(&["lvcreate", "-an", "-L", "20m", "-n", "ours", &vg2]);
    let (ok, _) = lvm("vgck", &[&d, &e], &[&vg2]);
    assert!(ok, "vgck after our change");
    let (_, rows) = lvm(
        "lvs",
        &[&d, &e],
        &[
            "--noheadings",
            "--units",
            "s",
            "--nosuffix",
            "-o",
            "lv_name,lv_size",
            &vg2,
        ],
    );
    assert_eq!(rows, ["ours 40960"]);

    // vgextend / vgreduce, seen by real LVM2.
    let f = Loop::new(dir.path(), "f", 40);
    ours(&["vgextend", &vg2, &f.0]);
    let (ok, rows) = lvm(
        "vgs",
        &[&d, &e, &f],
        &["--noheadings", "-o", "pv_count", &vg2],
    );
    assert!(ok);
    assert_eq!(rows, ["3"]);
    assert!(lvm("vgck", &[&d, &e, &f], &[&vg2]).0, "vgck after vgextend");
    ours(&["vgreduce", &vg2, &f.0]);
    let (_, rows) = lvm(
        "vgs",
        &[&d, &e, &f],
        &["--noheadings", "-o", "pv_count", &vg2],
    );
    assert_eq!(rows, ["2"]);
    let (_, rows) = lvm("pvs", &[&f], &["--noheadings", "-o", "pv_name,vg_name"]);
    assert_eq!(
        rows,
        std::slice::from_ref(&f.0),
        "the reduced PV is a bare PV"
    );
    assert!(ours_fails(&["vgreduce", &vg2, &d.0]).contains("still used"));

    // vgcfgbackup / vgcfgrestore bring a removed LV back; every change was archived.
    let backup = dir.path().join("backup.vg");
    ours(&["vgcfgbackup", "-f", backup.to_str().unwrap(), &vg2]);
    ours(&["lvremove", &format!("{vg2}/ours")]);
    let (_, rows) = lvm("lvs", &[&d, &e], &["--noheadings", "-o", "lv_name", &vg2]);
    assert!(rows.is_empty());
    ours(&["vgcfgrestore", "-f", backup.to_str().unwrap(), &vg2]);
    let (ok, rows) = lvm(
        "lvs",
        &[&d, &e],
        &[
            "--noheadings",
            "--units",
            "s",
            "--nosuffix",
            "-o",
            "lv_name,lv_size",
            &vg2,
        ],
    );
    assert!(ok);
    assert_eq!(rows, ["ours 40960"]);
    assert!(lvm("vgck", &[&d, &e], &[&vg2]).0, "vgck after vgcfgrestore");
    let archived = std::fs::read_dir(system_dir().join("archive"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with(&format!("{vg2}_"))
        })
        .count();
    assert!(archived >= 4, "{archived} archives of {vg2}");

    for v in [&vg, &vg2] {
        ours(&["vgremove", "-f", v]);
    }
    let _ = std::fs::remove_dir_all(system_dir());
}

/// PVs with two metadata areas (`--pvmetadatacopies 2`): ours are laid out as real
/// LVM2's, a VG over them keeps four copies that real LVM2 reads, and with the first area
/// of a PV destroyed both tools still read the VG from the second.
#[test]
fn two_metadata_areas_per_pv() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, c) = (
        Loop::new(dir.path(), "a", 97),
        Loop::new(dir.path(), "b", 97),
        Loop::new(dir.path(), "c", 64),
    );
    let all = [&a, &b, &c];
    let vg = format!("orion_m{}", std::process::id());
    ours(&["pvcreate", "--pvmetadatacopies", "2", &a.0]);
    assert!(lvm("pvcreate", &all, &["--pvmetadatacopies", "2", &b.0]).0);
    let (pa, pb) = (
        Pv::scan(Path::new(&a.0)).unwrap().unwrap(),
        Pv::scan(Path::new(&b.0)).unwrap().unwrap(),
    );
    assert_eq!(pa.label.metadata_areas.len(), 2);
    assert_eq!(
        pa.label.metadata_areas, pb.label.metadata_areas,
        "metadata areas placed as real LVM2 places them"
    );
    ours(&["pvcreate", "--pvmetadatacopies", "2", &c.0]);
    ours(&["vgcreate", &vg, &a.0, &b.0, &c.0]);
    ours(&["lvcreate", "-an", "-L", "40M", "-n", "lv", &vg]);
    let (ok, rows) = lvm(
        "pvs",
        &all,
        &["--noheadings", "-o", "pv_name,pv_mda_count,pe_count"],
    );
    assert!(ok, "real pvs fails on our two-area PVs");
    let counts: Vec<&str> = rows
        .iter()
        .map(|r| r.split(' ').nth(1).unwrap_or(""))
        .collect();
    assert_eq!(counts, ["2", "2", "2"], "real pvs: {rows:?}");
    let ours_counts: Vec<u64> = metadata_of(&a.0).pvs.iter().map(|p| p.pe_count).collect();
    let real_counts: Vec<u64> = rows
        .iter()
        .map(|r| r.split(' ').nth(2).unwrap().parse().unwrap())
        .collect();
    assert_eq!(
        ours_counts, real_counts,
        "extents stop before the second area"
    );
    let (ok, rows) = lvm("vgs", &all, &["--noheadings", "-o", "vg_mda_count", &vg]);
    assert!(ok && rows == ["6"], "real vgs: {rows:?}");
    assert!(lvm("vgck", &all, &[&vg]).0, "real vgck fails");
    assert!(lvm("pvck", &all, &[&a.0]).0, "real pvck fails on our PV");

    // The first area of PV a gone: both tools read the VG from the second one.
    {
        use std::os::unix::fs::FileExt;
        let f = std::fs::OpenOptions::new().write(true).open(&a.0).unwrap();
        f.write_all_at(&[0u8; 512], 4096).unwrap();
        f.sync_all().unwrap();
    }
    let seqno = metadata_of(&b.0).seqno;
    let pa = Pv::scan(Path::new(&a.0)).unwrap().unwrap();
    let vga = Vg::from_text(&pa.text().unwrap().expect("second area still has the text")).unwrap();
    assert_eq!(vga.seqno, seqno);
    let (ok, rows) = lvm("lvs", &all, &["--noheadings", "-o", "lv_name", &vg]);
    assert!(
        ok && rows == ["lv"],
        "real lvs with a damaged area: {rows:?}"
    );
    ours(&["lvcreate", "-an", "-L", "8M", "-n", "lv2", &vg]);
    let (ok, rows) = lvm("lvs", &all, &["--noheadings", "-o", "lv_name", &vg]);
    assert!(
        ok && rows == ["lv", "lv2"],
        "real lvs after our write: {rows:?}"
    );
    ours(&["vgremove", "-f", &vg]);
}
