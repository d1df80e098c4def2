// SPDX-License-Identifier: GPL-2.0 OR MIT

//! `pvs`, `vgs` and `lvs` of orion-lvm against real LVM2 (2.03.16) on loop devices: the
//! same VGs (one made by orion-lvm with linear, striped, two-segment, mirror and snapshot
//! LVs and tags real LVM2 added; one made by real LVM2 with an LV of ours; an orphan PV)
//! reported by both tools with the same options must print the same bytes. The host has
//! no device-mapper, so real LVM2 shows the activation state as unknown (`X` in
//! `lv_attr`), and so do we.

#[path = "common/loops.rs"]
// Each test file uses its own subset of the helpers.
#[allow(dead_code)]
mod loops;

use loops::{lvm, lvm_raw, ours, ours_raw, Loop};

#[test]
fn reports_match_real_lvm2_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, c, d) = (
        Loop::new(dir.path(), "a", 96),
        Loop::new(dir.path(), "b", 96),
        Loop::new(dir.path(), "c", 64),
        Loop::new(dir.path(), "d", 48),
    );
    let all = [&a, &b, &c, &d];
    let sfx = std::process::id();
    let vg = format!("rep_o{sfx}");
    let vg2 = format!("rep_r{sfx}");
    ours(&["vgcreate", &vg, &a.0, &b.0]);
    ours(&["lvcreate", "-an", "-L", "20m", "-n", "lv1", &vg]);
    ours(&[
        "lvcreate", "-an", "-l", "4", "-i", "2", "-I", "128k", "-n", "st", &vg,
    ]);
    ours(&[
        "lvcreate",
        "-an",
        "-L",
        "8m",
        "-s",
        "-n",
        "snap",
        &format!("{vg}/lv1"),
    ]);
    ours(&[
        "lvcreate", "-an", "--type", "mirror", "-m", "1", "-l", "2", "-n", "mir", &vg,
    ]);
    // Grown past another LV: two segments.
    ours(&["lvcreate", "-an", "-l", "5", "-n", "big", &vg]);
    ours(&["lvcreate", "-an", "-l", "1", "-n", "after", &vg]);
    ours(&["lvextend", "-l", "+4", &format!("{vg}/big")]);
    assert!(lvm("lvchange", &all, &["--addtag", "t1", &format!("{vg}/st")]).0);
    assert!(lvm("vgchange", &all, &["--addtag", "vgt", &vg]).0);
    assert!(lvm("vgcreate", &all, &["-s", "2m", &vg2, &c.0]).0);
    ours(&["lvcreate", "-an", "-L", "10m", "-n", "theirs", &vg2]);
    assert!(lvm("pvcreate", &all, &[&d.0]).0);

    let (st1, st2) = (format!("{vg}/lv1"), format!("{vg}/st"));
    let pvs4 = [a.0.as_str(), b.0.as_str(), c.0.as_str(), d.0.as_str()];
    let with = |args: &[&str], names: &[&str]| -> Vec<String> {
        args.iter().chain(names).map(|s| (*s).to_owned()).collect()
    };
    let v: &[&str] = &[&vg];
    let both: &[&str] = &[&vg, &vg2];
    let cases: Vec<(&str, Vec<String>)> = vec![
        ("lvs", with(&[], v)),
        ("lvs", with(&[], both)),
        ("vgs", with(&[], both)),
        ("pvs", with(&[], &pvs4)),
        ("lvs", with(&["-a"], v)),
        ("lvs", with(&[], &[&st1])),
        ("lvs", with(&[], &[&st1, &st2])),
        ("lvs", with(&["-o", "lv_name,lv_size"], v)),
        ("lvs", with(&["-o", "+lv_uuid,lv_tags"], v)),
        ("lvs", with(&["-o", "name,size,attr"], v)),
        ("lvs", with(&["-O", "-lv_size"], v)),
        ("lvs", with(&["-O", "lv_size,lv_name", "-o", "lv_name,lv_size,seg_count"], both)),
        ("lvs", with(&["-S", "lv_size>10m"], v)),
        ("lvs", with(&["-S", "lv_name=lv1 || lv_name=st"], v)),
        ("lvs", with(&["-S", "lv_tags=t1"], v)),
        ("lvs", with(&["-S", "lv_name=nothing"], v)),
        ("lvs", with(&["-S", "lv_name=~^l"], v)),
        ("lvs", with(&["-S", "lv_name!~'^(lv1|st)$'"], v)),
        ("lvs", with(&["-S", "lv_name=~t && lv_size>1m"], v)),
        ("lvs", with(&["--units", "s"], v)),
        ("lvs", with(&["--units", "k", "--nosuffix"], v)),
        ("lvs", with(&["--units", "H"], v)),
        ("lvs", with(&["--units", "b", "-o", "lv_name,lv_size"], v)),
        ("lvs", with(&["--noheadings"], v)),
        ("lvs", with(&["--separator", ","], v)),
        ("lvs", with(&["--noheadings", "--separator", ":", "-o", "lv_name,lv_attr"], v)),
        ("lvs", with(&["--noheadings", "-o", "lv_name,data_percent,copy_percent"], v)),
        ("lvs", with(&["--reportformat", "json"], v)),
        ("lvs", with(&["--reportformat", "json", "-S", "lv_name=nothing"], v)),
        ("lvs", with(&["-a", "--reportformat", "json", "-o", "lv_name,mirror_log,lv_role"], v)),
        ("vgs", with(&["--reportformat", "json", "-o", "+vg_uuid,vg_seqno"], both)),
        ("pvs", with(&["--reportformat", "json"], &pvs4)),
        (
            "lvs",
            with(&["-o", "lv_name,devices,segtype,stripes,stripe_size,seg_start,seg_size"], v),
        ),
        ("lvs", with(&["-o", "lv_name,seg_pe_ranges,seg_size_pe,seg_start_pe"], v)),
        (
            "lvs",
            with(&["-a", "-o", "lv_name,lv_attr,lv_role,lv_layout,devices,region_size"], v),
        ),
        (
            "lvs",
            with(
                &[
                    "-o",
                    "lv_name,lv_path,lv_dm_path,lv_full_name,lv_layout,lv_role,\
                     lv_allocation_policy,lv_host,seg_count,origin,origin_size",
                ],
                v,
            ),
        ),
        (
            "lvs",
            with(
                &["-o", "lv_name,lv_kernel_major,lv_kernel_minor,lv_major,lv_minor,lv_active"],
                v,
            ),
        ),
        (
            "vgs",
            with(
                &[
                    "-o",
                    "+vg_extent_count,vg_free_count,max_lv,max_pv,vg_mda_count,vg_tags,vg_extent_size",
                ],
                both,
            ),
        ),
        (
            "vgs",
            with(
                &[
                    "-o",
                    "vg_name,vg_uuid,vg_attr,vg_permissions,vg_allocation_policy,vg_fmt,vg_seqno",
                ],
                both,
            ),
        ),
        ("vgs", with(&["-S", "vg_free>100m", "--units", "g"], both)),
        (
            "pvs",
            with(
                &[
                    "-o",
                    "+pv_uuid,dev_size,pe_start,pv_used,pv_pe_count,pv_pe_alloc_count",
                ],
                &pvs4,
            ),
        ),
        (
            "pvs",
            with(
                &[
                    "-o",
                    "pv_name,pv_mda_count,pv_mda_used_count,pv_mda_size,pv_ba_start,pv_ba_size,pv_ext_vsn,pv_tags",
                ],
                &pvs4,
            ),
        ),
        ("pvs", with(&["--units", "m", "--nosuffix", "-O", "-pv_free"], &pvs4)),
        ("pvs", with(&["-S", &format!("vg_name={vg}"), "-o", "pv_name,vg_name"], &pvs4)),
        ("pvs", with(&[], &[&a.0])),
        (
            "lvs",
            with(&["--noheadings", "--nosuffix", "--units", "s", "-o", "lv_size,seg_count"], v),
        ),
        ("lvs", with(&["-o", "-origin,data_percent"], v)),
        // Nothing, not even headings, when no row is left.
        ("lvs", with(&["--separator", ",", "-S", "lv_name=nothing"], v)),
        // --rows: one line per field, never padded.
        ("lvs", with(&["--rows"], v)),
        ("vgs", with(&["--rows", "--units", "s"], both)),
        ("pvs", with(&["--rows", "-o", "pv_name,pv_size,pv_free"], &pvs4)),
        ("lvs", with(&["--rows", "--separator", ":", "-o", "lv_name,lv_size,lv_tags"], v)),
        ("lvs", with(&["--rows", "--noheadings", "--aligned"], v)),
        // --aligned pads even with a separator.
        ("lvs", with(&["--aligned", "--separator", ":"], v)),
        ("pvs", with(&["--aligned", "--separator", "|", "--noheadings"], &pvs4)),
        // --nameprefixes (and --unquoted): LVM2_FIELD='value', never padded.
        ("lvs", with(&["--nameprefixes"], v)),
        (
            "lvs",
            with(&["--nameprefixes", "--noheadings", "--unquoted", "-o", "lv_name,lv_size,lv_tags"], v),
        ),
        ("vgs", with(&["--nameprefixes", "--aligned", "--units", "b"], both)),
        ("lvs", with(&["--nameprefixes", "--rows", "--separator", ","], v)),
        ("pvs", with(&["--nameprefixes", "-o", "+pv_uuid"], &pvs4)),
        ("lvs", with(&["--unquoted"], v)),
        // JSON ignores --rows and --aligned; with --nameprefixes LVM2 closes each value
        // with the prefix style's quote, and so do we.
        ("lvs", with(&["--reportformat", "json", "--rows", "--aligned"], v)),
        ("lvs", with(&["--reportformat", "json", "--nameprefixes", "-o", "lv_name,lv_size"], v)),
    ];
    let mut same = 0;
    let mut failures = Vec::new();
    for (cmd, args) in &cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (ok, theirs) = lvm_raw(cmd, &all, &args);
        assert!(ok, "real {cmd} {args:?} failed");
        let mut ours_args = vec![*cmd];
        ours_args.extend(&args);
        let out = ours_raw(&ours_args);
        assert!(
            out.status.success(),
            "orion-lvm {cmd} {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mine = String::from_utf8(out.stdout).unwrap();
        if mine == theirs {
            same += 1;
        } else {
            failures.push(format!(
                "{cmd} {args:?}\n--- lvm2:\n{theirs}--- ours:\n{mine}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(same >= 30, "{same} identical comparisons");

    // Errors exit as LVM2's do: a missing VG fails the command (5), a bad option is a
    // usage error (3).
    let missing = format!("nosuchvg{sfx}");
    assert_eq!(ours_raw(&["lvs", &missing]).status.code(), Some(5));
    assert_eq!(
        ours_raw(&["vgs", "-o", "bogus", &vg]).status.code(),
        Some(5)
    );
    assert_eq!(
        ours_raw(&["lvs", "--units", "x", &vg]).status.code(),
        Some(3)
    );
    assert_eq!(ours_raw(&["lvs", "--bogus"]).status.code(), Some(3));

    for v in [&vg, &vg2] {
        ours(&["vgremove", "-f", v]);
    }
    assert!(lvm("pvremove", &all, &[&d.0]).0);
}
