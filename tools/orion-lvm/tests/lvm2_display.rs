// SPDX-License-Identifier: GPL-2.0 OR MIT

//! The everyday commands of orion-lvm against real LVM2 (2.03.16) on loop devices:
//! `pvdisplay`, `vgdisplay`, `lvdisplay` (long and `-c`), `pvscan`, `vgscan` and `lvscan`
//! print the same bytes for the same VGs; after our `vgrename`, `lvrename` and
//! `pvresize` real LVM2 passes `vgck` on the VG and reports it as we do; refusals exit
//! and read as LVM2's. Both tools are given the test's devices with `--devices`. The host
//! has no device-mapper, so every LV is inactive for both (and real `lvrename`, which
//! suspends the LV, fails here: only its refusals are compared).

#[path = "common/loops.rs"]
// Each test file uses its own subset of the helpers.
#[allow(dead_code)]
mod loops;

use loops::{lvm, lvm_full, lvm_raw, metadata_of, ours, ours_raw, Loop};
use std::process::Command;

/// Runs orion-lvm restricted to `devs`: exit code, stdout, stderr.
fn ours_full(cmd: &str, devs: &[&Loop], args: &[&str]) -> (Option<i32>, String, String) {
    let list: Vec<&str> = devs.iter().map(|l| l.0.as_str()).collect();
    let joined = list.join(",");
    let mut a = vec![cmd, "--devices", &joined];
    a.extend(args);
    let out = ours_raw(&a);
    (
        out.status.code(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// Grows or shrinks the file under `l` to `mib` MiB and tells the loop driver.
fn set_size(dir: &std::path::Path, file: &str, l: &Loop, mib: u64) {
    std::fs::OpenOptions::new()
        .write(true)
        .open(dir.join(file))
        .unwrap()
        .set_len(mib << 20)
        .unwrap();
    assert!(Command::new("losetup")
        .args(["-c", &l.0])
        .status()
        .unwrap()
        .success());
}

/// Compares `cases` run by both tools; returns the number identical and the
/// differences.
fn compare(all: &[&Loop], cases: &[(&str, Vec<String>)]) -> (usize, Vec<String>) {
    let mut same = 0;
    let mut failures = Vec::new();
    for (cmd, args) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, theirs, _) = lvm_full(cmd, all, &args);
        assert_eq!(code, Some(0), "real {cmd} {args:?} failed");
        let (code, mine, err) = ours_full(cmd, all, &args);
        assert_eq!(code, Some(0), "orion-lvm {cmd} {args:?}: {err}");
        if mine == theirs {
            same += 1;
        } else {
            failures.push(format!(
                "{cmd} {args:?}\n--- lvm2:\n{theirs}--- ours:\n{mine}"
            ));
        }
    }
    (same, failures)
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn display_scan_rename_and_resize_match_real_lvm2() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, c, d) = (
        Loop::new(dir.path(), "a", 96),
        Loop::new(dir.path(), "b", 96),
        Loop::new(dir.path(), "c", 64),
        Loop::new(dir.path(), "d", 48),
    );
    let all = [&a, &b, &c, &d];
    let devs = [a.0.as_str(), b.0.as_str(), c.0.as_str(), d.0.as_str()].join(",");
    let sfx = std::process::id();
    let vg = format!("disp_o{sfx}");
    // Longer than LVM2's orphan VG name: widens pvscan's column.
    let vg2 = format!("disp_long_volume_group_{sfx}");
    let o = |args: &[&str]| {
        let mut v = vec!["--devices", devs.as_str()];
        v.extend(args);
        ours(&v)
    };
    o(&["vgcreate", &vg, &a.0, &b.0]);
    o(&["lvcreate", "-an", "-L", "20m", "-n", "lv1", &vg]);
    o(&["lvcreate", "-an", "-l", "4", "-i", "2", "-n", "st", &vg]);
    o(&[
        "lvcreate",
        "-an",
        "-L",
        "8m",
        "-s",
        "-n",
        "snap",
        &format!("{vg}/lv1"),
    ]);
    o(&[
        "lvcreate", "-an", "--type", "mirror", "-m", "1", "-l", "2", "-n", "mir", &vg,
    ]);
    o(&["lvcreate", "-an", "-l", "3", "-n", "big", &vg]);
    o(&["lvcreate", "-an", "-l", "1", "-n", "after", &vg]);
    o(&["lvextend", "-l", "+2", &format!("{vg}/big")]);
    assert!(lvm("lvchange", &all, &["--addtag", "t1", &format!("{vg}/st")]).0);
    assert!(lvm("vgcreate", &all, &["-s", "2m", &vg2, &c.0]).0);
    o(&["lvcreate", "-an", "-L", "10m", "-n", "theirs", &vg2]);
    assert!(lvm("pvcreate", &all, &[&d.0]).0);

    // 1. Display and scan commands.
    let lv1 = format!("{vg}/lv1");
    let snap = format!("{vg}/snap");
    let mut cases: Vec<(&str, Vec<String>)> = vec![
        ("pvdisplay", vec![]),
        ("pvdisplay", strings(&["-c"])),
        ("pvdisplay", strings(&[&d.0, &a.0])),
        ("pvdisplay", strings(&["-c", &c.0])),
        ("vgdisplay", vec![]),
        ("vgdisplay", strings(&["-c"])),
        ("vgdisplay", strings(&[&vg])),
        ("vgdisplay", strings(&[&vg, &vg2])),
        ("vgdisplay", strings(&["-c", &vg2, &vg])),
        ("lvdisplay", vec![]),
        ("lvdisplay", strings(&["-a"])),
        ("lvdisplay", strings(&["-c"])),
        ("lvdisplay", strings(&["-a", "-c"])),
        ("lvdisplay", strings(&[&vg2])),
        ("lvdisplay", strings(&[&snap, &lv1])),
        ("lvdisplay", strings(&["-c", &lv1])),
        ("pvscan", vec![]),
        ("pvscan", strings(&["-s"])),
        ("vgscan", vec![]),
        ("lvscan", vec![]),
        ("lvscan", strings(&["-a"])),
    ];
    // fullreport with the columns of each section chosen (LVM2's defaults name fields
    // orion-lvm does not have; see Documentation/orion-lvm.md).
    let config = [
        "--configreport",
        "vg",
        "-o",
        "vg_name,vg_uuid,vg_attr,vg_size,vg_free,lv_count,vg_seqno",
        "--configreport",
        "pv",
        "-o",
        "pv_name,pv_uuid,pv_size,pv_free,pv_attr,pe_start",
        "--configreport",
        "lv",
        "-o",
        "lv_name,lv_uuid,lv_size,lv_attr,origin,lv_role,lv_tags",
        "--configreport",
        "seg",
        "-o",
        "lv_name,segtype,seg_start,seg_size,stripes,devices",
    ];
    let with = |extra: &[&str]| -> Vec<String> {
        extra
            .iter()
            .chain(config.iter())
            .map(|s| (*s).to_owned())
            .collect()
    };
    cases.extend([
        ("fullreport", with(&["--reportformat", "json"])),
        ("fullreport", with(&["--reportformat", "json", &vg])),
        ("fullreport", with(&[])),
        (
            "fullreport",
            with(&[
                "--units",
                "s",
                "--configreport",
                "pvseg",
                "-O",
                "-pvseg_size",
            ]),
        ),
        (
            "fullreport",
            with(&[
                "--reportformat",
                "json",
                "--configreport",
                "pvseg",
                "-o",
                "+pv_name",
                &vg2,
            ]),
        ),
    ]);
    let (mut same, mut failures) = compare(&all, &cases);

    // 2. Renames: ours, then real LVM2's checks and reports.
    let seq = metadata_of(&a.0).seqno;
    let vgx = format!("disp_x{sfx}");
    assert_eq!(
        o(&["vgrename", &vg, &vgx]),
        format!("  Volume group \"{vg}\" successfully renamed to \"{vgx}\"\n")
    );
    assert_eq!(
        o(&["lvrename", &vgx, "lv1", "orig"]),
        format!("  Renamed \"lv1\" to \"orig\" in volume group \"{vgx}\"\n")
    );
    o(&["lvrename", &format!("{vgx}/mir"), &format!("{vgx}/mirror2")]);
    o(&["lvrename", &format!("{vgx}/snap"), "snap2"]);
    assert_eq!(metadata_of(&b.0).seqno, seq + 4, "one sequence number each");
    for v in [&vgx, &vg2] {
        let (code, _, err) = lvm_full("vgck", &all, &[v]);
        assert_eq!(code, Some(0), "real vgck {v}: {err}");
    }
    let (ok, vgs) = lvm(
        "vgs",
        &all,
        &["--noheadings", "-o", "vg_name,lv_count,vg_seqno", &vgx],
    );
    assert!(ok);
    assert_eq!(vgs, [format!("{vgx} 6 {}", seq + 4)]);
    cases = vec![
        (
            "lvs",
            strings(&[
                "-a",
                "-o",
                "lv_name,origin,devices,mirror_log,lv_role",
                &vgx,
            ]),
        ),
        ("lvdisplay", strings(&["-a", &vgx])),
        ("vgdisplay", strings(&["-c", &vgx])),
    ];
    let (s, f) = compare(&all, &cases);
    same += s;
    failures.extend(f);
    // Real LVM2 renames the VG back (it needs no device-mapper for that); we read it.
    let (code, out, _) = lvm_full("vgrename", &all, &[&vgx, &vg]);
    assert_eq!(code, Some(0));
    assert_eq!(
        out,
        format!("  Volume group \"{vgx}\" successfully renamed to \"{vg}\"\n")
    );
    assert!(o(&["lvs", "--noheadings", "-o", "lv_name", &vg]).contains("orig"));
    o(&["lvrename", &vg, "orig", "lv1"]);
    o(&["lvrename", &vg, "mirror2", "mir"]);
    o(&["lvrename", &vg, "snap2", "snap"]);

    // Refusals: the same exit code and message as LVM2's.
    let mir0 = format!("{vg}/mir_mimage_0");
    let other = format!("{vg2}/x");
    let refusals: Vec<(&str, Vec<&str>)> = vec![
        ("lvrename", vec![&vg, "st", "after"]),
        ("lvrename", vec![&vg, "mir_mimage_0", "x"]),
        ("lvrename", vec![&vg, "st", "snapshot3"]),
        ("lvrename", vec![&vg, "st", "x_tdata"]),
        ("lvrename", vec![&mir0, &other]),
        ("lvrename", vec![&vg, "nothing", "x"]),
        ("vgrename", vec![&vg, &vg2]),
    ];
    for (cmd, args) in &refusals {
        let (tc, _, terr) = lvm_full(cmd, &all, args);
        let (oc, _, oerr) = ours_full(cmd, &all, args);
        let line = oerr.lines().next().unwrap_or_default().to_owned();
        if tc == oc && !line.is_empty() && terr.lines().any(|l| l == line) {
            same += 1;
        } else {
            failures.push(format!(
                "{cmd} {args:?}: lvm2 {tc:?} {terr:?}, ours {oc:?} {oerr:?}"
            ));
        }
    }

    // 3. pvresize: both PVs of the VG grow by 32 MiB; ours resizes one, LVM2 the other.
    let seq = metadata_of(&a.0).seqno;
    set_size(dir.path(), "a", &a, 128);
    set_size(dir.path(), "b", &b, 128);
    let (code, out_o, err) = ours_full("pvresize", &all, &[&a.0]);
    assert_eq!(code, Some(0), "{err}");
    let (code, out_t, _) = lvm_full("pvresize", &all, &[&b.0]);
    assert_eq!(code, Some(0));
    assert_eq!(out_o.replace(&a.0, "PV"), out_t.replace(&b.0, "PV"));
    assert_eq!(metadata_of(&a.0).seqno, seq + 2);
    let pv_fields = "pv_name,pv_size,pv_free,dev_size,pv_pe_count,pv_pe_alloc_count,vg_seqno";
    cases = vec![
        ("pvs", strings(&["-o", pv_fields, &a.0, &b.0])),
        (
            "vgs",
            strings(&["-o", "+vg_extent_count,vg_free_count,vg_seqno", &vg]),
        ),
        ("pvdisplay", strings(&[&a.0, &b.0])),
    ];
    let (s, f) = compare(&all, &cases);
    same += s;
    failures.extend(f);
    let (code, _, err) = lvm_full("vgck", &all, &[&vg]);
    assert_eq!(code, Some(0), "real vgck after pvresize: {err}");
    // Shrinking below the allocated extents: refused alike.
    let shrink = ["-y", "--setphysicalvolumesize", "8m"];
    let mut args_o = shrink.to_vec();
    args_o.push(&a.0);
    let (oc, oout, oerr) = ours_full("pvresize", &all, &args_o);
    let (tc, tout, terr) = lvm_full("pvresize", &all, &args_o);
    let refusal = oerr
        .lines()
        .find(|l| l.contains("cannot resize"))
        .unwrap_or("");
    if oc == tc && oout == tout && !refusal.is_empty() && terr.lines().any(|l| l == refusal) {
        same += 1;
    } else {
        failures.push(format!(
            "pvresize shrink: lvm2 {tc:?} {tout:?} {terr:?}, ours {oc:?} {oout:?} {oerr:?}"
        ));
    }
    // Shrinking into free space, to a size given: ours on a, LVM2 on b.
    let (code, _, err) = ours_full(
        "pvresize",
        &all,
        &["-y", "--setphysicalvolumesize", "100m", &a.0],
    );
    assert_eq!(code, Some(0), "{err}");
    let (code, _, err) = lvm_full(
        "pvresize",
        &all,
        &["-y", "--setphysicalvolumesize", "100m", &b.0],
    );
    assert_eq!(code, Some(0), "{err}");
    cases = vec![
        ("pvs", strings(&["-o", pv_fields, &a.0, &b.0])),
        ("pvdisplay", strings(&["-c", &a.0, &b.0])),
    ];
    // An orphan PV that grew.
    set_size(dir.path(), "d", &d, 64);
    let (code, _, err) = ours_full("pvresize", &all, &[&d.0]);
    assert_eq!(code, Some(0), "{err}");
    cases.push(("pvs", strings(&["-o", "pv_name,pv_size,dev_size", &d.0])));
    let (s, f) = compare(&all, &cases);
    same += s;
    failures.extend(f);
    let (code, _, err) = lvm_full("vgck", &all, &[&vg]);
    assert_eq!(code, Some(0), "real vgck after shrinking: {err}");

    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(same, 43, "identical comparisons");

    for v in [&vg, &vg2] {
        o(&["vgremove", "-f", v]);
    }
    assert!(lvm_raw("pvremove", &all, &[&d.0]).0);
}
