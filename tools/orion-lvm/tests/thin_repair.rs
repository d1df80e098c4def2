// SPDX-License-Identifier: GPL-2.0 OR MIT

//! `lvconvert --repair` of a thin pool on loop devices, with real thin-provisioning-tools
//! and real LVM2 as judges. The host has no device-mapper, so the repair runs in process
//! over the recording backend, and the repair tool's two dm devices are stood in for by
//! the LVs' extents read from and written back to the PVs: real `thin_repair` repairs
//! the metadata a real `thin_restore` wrote into `pool_tmeta`, and afterwards real LVM2
//! (`lvs -a`, `vgck`) reads the swapped layout as we report it, and real `thin_dump` finds
//! the repaired mappings where the new `pool_tmeta` points. (Real `lvconvert --repair`
//! needs device-mapper: the VM selftest lvm_thin.sh compares it with ours.)

#[path = "common/loops.rs"]
// Each test file uses its own subset of the helpers.
#[allow(dead_code)]
mod loops;

use loops::{lvm, metadata_of, ours, Loop};
use orion_lvm::commands::thin_repair::{repair_pool, RepairTool};
use orion_lvm::commands::{commit, Scan};
use orion_lvm::dm::activate::pv_devices;
use orion_lvm::dm::recording::RecordingDm;
use orion_lvm::vg::{SegmentKind, Vg};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// (device, byte offset, bytes) of each linear piece of LV `name`.
fn pieces(vg: &Vg, name: &str) -> Vec<(String, u64, u64)> {
    let lv = vg.lv(name).unwrap_or_else(|| panic!("{name} missing"));
    lv.segments
        .iter()
        .map(|s| {
            let SegmentKind::Striped { stripes, .. } = &s.kind else {
                panic!("{name} is not linear");
            };
            assert_eq!(stripes.len(), 1, "{name} is striped");
            let pv = vg.pv(&stripes[0].0).unwrap();
            (
                pv.device.clone(),
                (pv.pe_start + stripes[0].1 * vg.extent_size) * 512,
                s.extent_count * vg.extent_size * 512,
            )
        })
        .collect()
}

fn read_lv(vg: &Vg, name: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for (dev, off, len) in pieces(vg, name) {
        let mut b = vec![0u8; len as usize];
        std::fs::File::open(&dev)
            .unwrap()
            .read_exact_at(&mut b, off)
            .unwrap();
        out.extend(b);
    }
    out
}

fn write_lv(vg: &Vg, name: &str, data: &[u8]) {
    let mut at = 0usize;
    for (dev, off, len) in pieces(vg, name) {
        let n = (len as usize).min(data.len() - at);
        let f = std::fs::OpenOptions::new().write(true).open(&dev).unwrap();
        f.write_all_at(&data[at..at + n], off).unwrap();
        f.sync_all().unwrap();
        at += n;
    }
}

fn run(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// thin_dump of LV `name`'s extents.
fn dump_lv(vg: &Vg, name: &str, dir: &Path) -> String {
    let f = dir.join(format!("{name}.img"));
    std::fs::write(&f, read_lv(vg, name)).unwrap();
    run("thin_dump", &[f.to_str().unwrap()])
}

#[test]
fn thin_pool_repair_swaps_in_the_spare() {
    // The in-process commits archive where the orion-lvm runs of the tests do.
    std::env::set_var("ORION_LVM_SYSTEM_DIR", loops::system_dir());
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (
        Loop::new(dir.path(), "a.img", 64),
        Loop::new(dir.path(), "b.img", 64),
    );
    let devs = [&a, &b];
    let list = format!("{},{}", a.0, b.0);
    let vgn = format!("orion_repair{}", std::process::id());
    ours(&["vgcreate", "--devices", &list, &vgn, &a.0, &b.0]);
    ours(&[
        "lvcreate",
        "--devices",
        &list,
        "--type",
        "thin-pool",
        "-L",
        "16m",
        "-n",
        "pool",
        "-a",
        "n",
        &vgn,
    ]);
    let before = metadata_of(&a.0);
    let seg = before.lv("pool").unwrap().thin_pool().unwrap();
    let nr_blocks = before.lv("pool").unwrap().extents() * before.extent_size / seg.chunk_size;

    // Metadata with one thin device and two mappings, as a pool would have written it.
    let xml = format!(
        "<superblock uuid=\"\" time=\"1\" transaction=\"0\" version=\"2\" data_block_size=\"{}\" nr_data_blocks=\"{nr_blocks}\">\n\
         <device dev_id=\"1\" mapped_blocks=\"2\" transaction=\"0\" creation_time=\"0\" snap_time=\"1\">\n\
         <range_mapping origin_begin=\"0\" data_begin=\"5\" length=\"2\" time=\"1\"/>\n\
         </device>\n</superblock>\n",
        seg.chunk_size
    );
    let x = dir.path().join("in.xml");
    std::fs::write(&x, &xml).unwrap();
    let img = dir.path().join("tmeta.img");
    let meta_len = read_lv(&before, "pool_tmeta").len() as u64;
    std::fs::File::create(&img)
        .unwrap()
        .set_len(meta_len)
        .unwrap();
    run(
        "thin_restore",
        &["-i", x.to_str().unwrap(), "-o", img.to_str().unwrap()],
    );
    write_lv(&before, "pool_tmeta", &std::fs::read(&img).unwrap());
    let old_meta_devices = pieces(&before, "pool_tmeta");
    let spare_devices = pieces(&before, "lvol0_pmspare");

    let paths: Vec<PathBuf> = devs.iter().map(|l| PathBuf::from(&l.0)).collect();
    let scan = Scan::run(&paths).unwrap();
    let (mut vg, members) = scan.need_vg(&vgn).unwrap();
    let pvs = pv_devices(&vg, &members).unwrap();
    let dm = RecordingDm::new();
    let prefix = format!("/dev/mapper/{vgn}-");
    let mut ran = 0;
    let warnings = repair_pool(
        &dm,
        &mut vg,
        &pvs,
        "pool",
        &RepairTool::from_config(None).unwrap(),
        &mut |argv| {
            // The two dm devices, stood in for by files of the LVs' extents.
            assert_eq!(argv[0], "/usr/sbin/thin_repair");
            let lv_of = |p: &str| p.strip_prefix(&prefix).unwrap().to_owned();
            let (input, output) = (lv_of(&argv[2]), lv_of(&argv[4]));
            assert_eq!((argv[1].as_str(), argv[3].as_str()), ("-i", "-o"));
            let fi = dir.path().join("repair-in.img");
            let fo = dir.path().join("repair-out.img");
            std::fs::write(&fi, read_lv(&before, &input)).unwrap();
            std::fs::write(&fo, read_lv(&before, &output)).unwrap();
            run(
                "thin_repair",
                &["-i", fi.to_str().unwrap(), "-o", fo.to_str().unwrap()],
            );
            write_lv(&before, &output, &std::fs::read(&fo).unwrap());
            ran += 1;
            Ok(())
        },
        &mut |v, n| {
            let len = read_lv(v, n).len();
            write_lv(v, n, &vec![0u8; len]);
            Ok(())
        },
        &mut |v, what| commit(v, &paths, what),
    )
    .unwrap();
    assert_eq!(ran, 1);
    assert!(warnings
        .iter()
        .any(|w| w.contains("pool_meta0 holds a backup")));

    // Real LVM2 reads the layout we report: the old spare's extents are the pool's
    // metadata, the old metadata a visible pool_meta0, a new spare.
    let fields = ["-a", "-o", "lv_name,lv_attr,lv_size,segtype,devices", &vgn];
    let (ok, real) = lvm("lvs", &devs, &fields);
    assert!(ok);
    let mine: Vec<String> = ours(&[&["lvs", "--devices", &list][..], &fields[..]].concat())
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(real, mine);
    let names: Vec<&str> = real
        .iter()
        .skip(1)
        .map(|l| l.split(' ').next().unwrap())
        .collect();
    for n in ["[pool_tmeta]", "pool_meta0", "[lvol1_pmspare]", "pool"] {
        assert!(names.contains(&n), "{n} in {real:?}");
    }
    assert!(!names.contains(&"[lvol0_pmspare]"));
    let (ok, _) = lvm("vgck", &devs, &[&vgn]);
    assert!(ok, "real vgck passes");
    let after = metadata_of(&a.0);
    assert_eq!(after.seqno, before.seqno + 1);
    assert_eq!(pieces(&after, "pool_tmeta"), spare_devices);
    assert_eq!(pieces(&after, "pool_meta0"), old_meta_devices);
    assert_eq!(
        after.lv("pool_tmeta").unwrap().id,
        before.lv("pool_tmeta").unwrap().id
    );

    // The repaired metadata is where the pool's metadata LV now points, mappings intact.
    let repaired = dump_lv(&after, "pool_tmeta", dir.path());
    assert!(
        repaired.contains("dev_id=\"1\"") && repaired.contains("data_begin=\"5\" length=\"2\""),
        "{repaired}"
    );
    let backup = dump_lv(&after, "pool_meta0", dir.path());
    assert!(
        backup.contains("dev_id=\"1\""),
        "the backup is the old metadata"
    );
}
