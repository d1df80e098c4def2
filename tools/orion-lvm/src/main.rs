// SPDX-License-Identifier: GPL-2.0 OR MIT

//! `orion-lvm`: LVM2-compatible volume management. Exit codes: 0 success, 5 failure (as
//! LVM2's commands), 3 bad usage.

use anyhow::{bail, Result};
use clap::Parser;
use orion_lvm::cli::{Cli, Cmd};
use orion_lvm::commands::{self, dev, parse_size, report, LvRequest, Policy, Scan};
use orion_lvm::label::dashed;
use orion_lvm::pv;
use std::process::ExitCode;

fn mib(sectors: u64) -> String {
    format!("{:.2}m", sectors as f64 / 2048.0)
}

fn json_report(kind: &str, rows: &[Vec<(&str, String)>]) -> String {
    let items: Vec<String> = rows
        .iter()
        .map(|r| {
            let f: Vec<String> = r
                .iter()
                .map(|(k, v)| {
                    format!(
                        "\"{k}\":\"{}\"",
                        v.replace('\\', "\\\\").replace('"', "\\\"")
                    )
                })
                .collect();
            format!("{{{}}}", f.join(", "))
        })
        .collect();
    format!("{{\"report\": [{{\"{kind}\": [{}]}}]}}", items.join(", "))
}

fn table(rows: &[Vec<(&str, String)>]) {
    let Some(first) = rows.first() else {
        return;
    };
    let widths: Vec<usize> = (0..first.len())
        .map(|i| {
            rows.iter()
                .map(|r| r[i].1.len())
                .max()
                .unwrap_or(0)
                .max(first[i].0.len())
        })
        .collect();
    let line = |cells: Vec<&str>| {
        let s: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        println!("  {}", s.join(" ").trim_end());
    };
    line(first.iter().map(|(k, _)| *k).collect());
    for r in rows {
        line(r.iter().map(|(_, v)| v.as_str()).collect());
    }
}

fn report(kind: &str, json: bool, rows: Vec<Vec<(&str, String)>>) {
    if json {
        println!("{}", json_report(kind, &rows));
    } else {
        table(&rows);
    }
}

/// What `-L`/`-l` asked for, in extents, from the current size.
fn resize_target(
    scan_vg: &orion_lvm::vg::Vg,
    lv: &str,
    size: Option<String>,
    extents: Option<String>,
    allow: (bool, bool),
) -> Result<u64> {
    let cur = scan_vg
        .lvs
        .iter()
        .find(|l| l.name == lv)
        .ok_or_else(|| anyhow::anyhow!("logical volume {}/{lv} not found", scan_vg.name))?
        .extents();
    let (spec, in_extents) = match (size, extents) {
        (Some(s), None) => (s, false),
        (None, Some(e)) => (e, true),
        _ => bail!("give exactly one of -L and -l"),
    };
    let (sign, num) = match spec.strip_prefix('+') {
        Some(n) => (1i8, n.to_owned()),
        None => match spec.strip_prefix('-') {
            Some(n) => (-1, n.to_owned()),
            None => (0, spec.clone()),
        },
    };
    let n = if in_extents {
        num.parse::<u64>()
            .map_err(|_| anyhow::anyhow!("bad extent count {spec:?}"))?
    } else {
        parse_size(&num)?.div_ceil(scan_vg.extent_size)
    };
    let target = match sign {
        1 => cur + n,
        -1 => cur
            .checked_sub(n)
            .ok_or_else(|| anyhow::anyhow!("cannot shrink below zero"))?,
        _ => n,
    };
    if target > cur && !allow.0 {
        bail!("lvreduce cannot grow an LV; use lvextend");
    }
    if target < cur && !allow.1 {
        bail!("lvextend cannot shrink an LV; use lvreduce");
    }
    Ok(target)
}

/// The counters of /sys/block/dm-MINOR/stat.
fn io_stats(minor: u32) -> Option<Vec<u64>> {
    let s = std::fs::read_to_string(format!("/sys/block/dm-{minor}/stat")).ok()?;
    Some(
        s.split_whitespace()
            .filter_map(|f| f.parse().ok())
            .collect(),
    )
}

fn yes_no(a: &str) -> Result<bool> {
    match a {
        "y" | "ay" => Ok(true),
        "n" | "an" => Ok(false),
        _ => bail!("--activate takes y or n, not {a:?}"),
    }
}

/// lvextend, lvreduce, lvresize: the new size from `-L`/`-l`, then the resize.
fn resize(
    prefix: &str,
    dirs: (bool, bool),
    size: Option<String>,
    extents: Option<String>,
    policy: Option<Policy>,
    lv: &str,
) -> Result<()> {
    let Some((vg, name)) = lv.split_once('/') else {
        bail!("give the LV as VG/LV");
    };
    let scan = Scan::run(&[])?;
    let (v, _) = scan.need_vg(vg)?;
    let target = resize_target(&v, name, size, extents, dirs)?;
    let (from, to) = commands::lvresize(vg, name, target, policy, prefix)?;
    println!(
        "  Size of logical volume {vg}/{name} changed from {} ({from} extents) to {} ({to} extents).",
        mib(from * v.extent_size),
        mib(to * v.extent_size)
    );
    println!("  Logical volume {vg}/{name} successfully resized.");
    Ok(())
}

fn run(cli: Cli) -> Result<()> {
    // Which way lvextend, lvreduce and lvresize may go.
    let resize_dirs = match &cli.cmd {
        Cmd::Lvextend { .. } => (true, false),
        Cmd::Lvreduce { .. } => (false, true),
        _ => (true, true),
    };
    match cli.cmd {
        Cmd::Pvcreate {
            force,
            metadata_copies,
            devices,
        } => {
            for d in devices {
                pv::pvcreate_with(&dev(&d), force, metadata_copies)?;
                println!("  Physical volume \"{d}\" successfully created.");
            }
        }
        Cmd::Pvremove { devices } => {
            for d in devices {
                let p = pv::Pv::scan(&dev(&d))?;
                match p {
                    None => bail!("no PV label on {d}"),
                    Some(p) if p.text()?.is_some() => bail!("{d} belongs to a volume group"),
                    Some(_) => pv::pvremove(&dev(&d))?,
                }
                println!("  Labels on physical volume \"{d}\" successfully wiped.");
            }
        }
        Cmd::Pvs { json } => {
            let scan = Scan::run(&[])?;
            let mut rows = Vec::new();
            for (p, vg) in &scan.pvs {
                let (vgname, size, free) = match vg {
                    Some(v) => {
                        let vp = v.pvs.iter().find(|vp| vp.id == dashed(&p.label.uuid));
                        let runs = v.free_runs();
                        let free: u64 = vp
                            .and_then(|vp| runs.iter().find(|(k, _)| *k == vp.key))
                            .map_or(0, |(_, r)| r.iter().map(|(_, n)| n).sum());
                        let count = vp.map_or(0, |vp| vp.pe_count);
                        (v.name.clone(), count * v.extent_size, free * v.extent_size)
                    }
                    None => (
                        String::new(),
                        p.label.device_size / 512,
                        p.label.device_size / 512,
                    ),
                };
                rows.push(vec![
                    ("pv_name", p.path.display().to_string()),
                    ("vg_name", vgname),
                    ("pv_uuid", dashed(&p.label.uuid)),
                    ("pv_size", mib(size)),
                    ("pv_free", mib(free)),
                ]);
            }
            report("pv", json, rows);
        }
        Cmd::Vgcreate {
            extent_size,
            name,
            devices,
        } => {
            let devs: Vec<_> = devices.iter().map(|d| dev(d)).collect();
            commands::vgcreate(&name, &devs, parse_size(&extent_size)?)?;
            println!("  Volume group \"{name}\" successfully created");
        }
        Cmd::Vgchange { activate, name } => {
            let on = yes_no(&activate)?;
            let n = commands::vgchange(&name, on, &cli.target_prefix)?;
            if on {
                // LVM2 polls merges to their end in the background; we wait for them.
                commands::finish_live_merges(&name, &cli.target_prefix)?;
            }
            let active = if on { n } else { 0 };
            println!("  {active} logical volume(s) in volume group \"{name}\" now active");
        }
        Cmd::Lvchange { activate, lv } => {
            let on = yes_no(&activate)?;
            let Some((vg, name)) = lv.split_once('/') else {
                bail!("give the LV as VG/LV");
            };
            commands::lvchange(vg, name, on, &cli.target_prefix)?;
            if on {
                commands::finish_live_merges(vg, &cli.target_prefix)?;
            }
        }
        Cmd::Vgextend { name, devices } => {
            let devs: Vec<_> = devices.iter().map(|d| dev(d)).collect();
            commands::vgextend(&name, &devs)?;
            println!("  Volume group \"{name}\" successfully extended");
        }
        Cmd::Vgreduce { name, devices } => {
            let devs: Vec<_> = devices.iter().map(|d| dev(d)).collect();
            commands::vgreduce(&name, &devs)?;
            println!(
                "  Removed {} PV(s) from volume group \"{name}\"",
                devs.len()
            );
        }
        Cmd::Vgcfgbackup { file, name } => {
            let scan = Scan::run(&[])?;
            let (v, _) = scan.need_vg(&name)?;
            let path = commands::backup(&v, file.as_deref().map(std::path::Path::new))?;
            println!(
                "  Volume group \"{name}\" successfully backed up to {}.",
                path.display()
            );
        }
        Cmd::Vgcfgrestore { file, name } => {
            commands::restore(&name, std::path::Path::new(&file))?;
            println!("  Restored volume group {name}.");
        }
        Cmd::Vgremove { force, name } => {
            commands::vgremove(&name, force)?;
            println!("  Volume group \"{name}\" successfully removed");
        }
        Cmd::Vgs { json } => {
            let scan = Scan::run(&[])?;
            let mut rows = Vec::new();
            for n in scan.vg_names() {
                if let Some((v, _)) = scan.vg(&n) {
                    let size: u64 = v.pvs.iter().map(|p| p.pe_count).sum::<u64>() * v.extent_size;
                    rows.push(vec![
                        ("vg_name", v.name.clone()),
                        ("vg_uuid", v.id.clone()),
                        ("pv_count", v.pvs.len().to_string()),
                        ("lv_count", v.user_lvs().len().to_string()),
                        ("vg_seqno", v.seqno.to_string()),
                        ("vg_extent_size", mib(v.extent_size)),
                        ("vg_size", mib(size)),
                        ("vg_free", mib(v.free_extents() * v.extent_size)),
                    ]);
                }
            }
            report("vg", json, rows);
        }
        Cmd::Lvcreate {
            size,
            extents,
            name,
            seg_type,
            stripes,
            stripe_size,
            mirrors,
            mirror_log,
            snapshot,
            virtual_size,
            thin,
            thin_pool,
            chunk_size,
            pool_metadata_size,
            zero,
            discards,
            activate,
            alloc,
            vg,
        } => {
            let policy = alloc.as_deref().map(Policy::parse).transpose()?.flatten();
            let on = yes_no(&activate)?;
            let (vg_name, lv_arg) = match vg.split_once('/') {
                Some((v, l)) => (v.to_owned(), Some(l.to_owned())),
                None => (vg.clone(), None),
            };
            let scan = Scan::run(&[])?;
            let (v, _) = scan.need_vg(&vg_name)?;
            let sized = |size: Option<String>, extents: Option<u64>| -> Result<Option<u64>> {
                Ok(match (size, extents) {
                    (Some(s), None) => Some(parse_size(&s)?.div_ceil(v.extent_size)),
                    (None, Some(e)) => Some(e),
                    (None, None) => None,
                    _ => bail!("give at most one of -L and -l"),
                })
            };
            let physical = sized(size, extents)?;
            let ty = seg_type.as_deref().unwrap_or(match () {
                _ if snapshot => "snapshot",
                _ if virtual_size.is_some() => "thin",
                _ if thin || thin_pool.is_some() => "thin-pool",
                _ if mirrors.is_some_and(|m| m > 0) => "mirror",
                _ => "linear",
            });
            match ty {
                "snapshot" => {
                    let origin =
                        lv_arg.ok_or_else(|| anyhow::anyhow!("give the origin as VG/LV"))?;
                    let is_thin = v.lv(&origin).is_some_and(|o| o.thin().is_some());
                    match physical {
                        None if is_thin => {
                            commands::lvcreate_thin_snapshot(
                                &vg_name,
                                &origin,
                                &name,
                                &cli.target_prefix,
                            )?;
                        }
                        None => bail!("a snapshot of a non-thin LV needs a size (-L or -l)"),
                        Some(e) => {
                            commands::lvcreate_snapshot(
                                &vg_name,
                                &origin,
                                &name,
                                e,
                                on,
                                &cli.target_prefix,
                            )?;
                        }
                    }
                }
                "thin" => {
                    let pool = thin_pool
                        .or(lv_arg)
                        .ok_or_else(|| anyhow::anyhow!("give the pool as VG/POOL or --thinpool"))?;
                    let vsize =
                        virtual_size.ok_or_else(|| anyhow::anyhow!("a thin volume needs -V"))?;
                    let ext = parse_size(&vsize)?.div_ceil(v.extent_size);
                    commands::lvcreate_thin(&vg_name, &pool, &name, ext, on, &cli.target_prefix)?;
                }
                "thin-pool" => {
                    let pool_name = thin_pool.or(lv_arg).unwrap_or_else(|| name.clone());
                    let ext =
                        physical.ok_or_else(|| anyhow::anyhow!("a thin pool needs -L or -l"))?;
                    let chunk = chunk_size.as_deref().map(parse_size).transpose()?;
                    let meta = pool_metadata_size.as_deref().map(parse_size).transpose()?;
                    commands::lvcreate_pool(
                        &vg_name,
                        &commands::PoolRequest {
                            name: &pool_name,
                            extents: ext,
                            chunk_size: chunk,
                            metadata_size: meta,
                            zero: yes_no(&zero)?,
                            discards: &discards,
                        },
                        on,
                        &cli.target_prefix,
                    )?;
                    println!("  Thin pool volume \"{pool_name}\" created.");
                    return Ok(());
                }
                "mirror" => {
                    let disk_log = match mirror_log.as_str() {
                        "core" => false,
                        "disk" => true,
                        other => bail!("--mirrorlog {other} is not supported (core or disk)"),
                    };
                    let ext = physical.ok_or_else(|| anyhow::anyhow!("a mirror needs -L or -l"))?;
                    let copies = mirrors.unwrap_or(1) + 1;
                    commands::lvcreate_mirror(
                        &vg_name,
                        &name,
                        ext,
                        copies,
                        disk_log,
                        on,
                        &cli.target_prefix,
                    )?;
                }
                "linear" | "striped" => {
                    let ext = physical.ok_or_else(|| anyhow::anyhow!("give -L or -l"))?;
                    // Round up to a multiple of the stripe count, as LVM2 does.
                    let ext = ext.div_ceil(stripes.max(1)) * stripes.max(1);
                    let ss = parse_size(&stripe_size)?;
                    if stripes > 1 && (!ss.is_power_of_two() || ss < 8) {
                        bail!("stripe size must be a power of two of at least 4 KiB");
                    }
                    commands::lvcreate(
                        &vg_name,
                        &LvRequest {
                            name: &name,
                            extents: ext,
                            stripes,
                            stripe_size: ss,
                        },
                        policy,
                    )?;
                    if on {
                        commands::lvchange(&vg_name, &name, true, &cli.target_prefix)?;
                        // LVM2 zeroes the start of every new LV it activates.
                        orion_lvm::dm::activate::zero_start(&orion_lvm::dm::activate::dm_name(
                            &vg_name, &name,
                        ))?;
                    }
                }
                other => bail!("segment type {other} is not supported"),
            }
            println!("  Logical volume \"{name}\" created.");
        }
        Cmd::Lvextend {
            size,
            extents,
            alloc,
            lv,
        }
        | Cmd::Lvresize {
            size,
            extents,
            alloc,
            lv,
        } => {
            let policy = alloc.as_deref().map(Policy::parse).transpose()?.flatten();
            resize(&cli.target_prefix, resize_dirs, size, extents, policy, &lv)?;
        }
        Cmd::Lvreduce {
            size, extents, lv, ..
        } => {
            resize(&cli.target_prefix, resize_dirs, size, extents, None, &lv)?;
        }
        Cmd::Pvmove {
            interval: _,
            background,
            source,
            destinations,
        } => {
            let dst: Vec<_> = destinations.iter().map(|d| dev(d)).collect();
            let src = source.as_deref().map(dev);
            let n = commands::pvmove(src.as_deref(), &dst, background, &cli.target_prefix)?;
            if background {
                println!("  Started moving {n} extents; run pvmove without arguments to finish.");
                return Ok(());
            }
            println!(
                "  {}: Moved: 100.00%",
                source.as_deref().unwrap_or("pvmove")
            );
            println!("  {n} extents moved.");
        }
        Cmd::Lvconvert {
            merge,
            interval: _,
            lv,
        } => {
            if !merge {
                bail!("only lvconvert --merge is supported");
            }
            let Some((vg, name)) = lv.split_once('/') else {
                bail!("give the snapshot as VG/LV");
            };
            if commands::lvconvert_merge(vg, name, &cli.target_prefix)? {
                println!("  Merge of snapshot into logical volume {vg} has finished.");
            } else {
                println!("  Merging of snapshot {vg}/{name} will occur on next activation.");
            }
        }
        Cmd::Lvremove { lv } => {
            let Some((vg, name)) = lv.split_once('/') else {
                bail!("give the LV as VG/LV");
            };
            commands::lvremove(vg, name, &cli.target_prefix)?;
            println!("  Logical volume \"{name}\" successfully removed.");
        }
        Cmd::Lvs {
            all,
            options,
            noheadings,
            separator,
            names,
            json,
            metrics,
        } => {
            let scan = Scan::run(&[])?;
            let ctl = orion_lvm::dm::ioctl::Control::open().ok();
            let pct = |p: Option<f64>| p.map(|v| format!("{v:.2}")).unwrap_or_default();
            let mut rows = Vec::new();
            for n in scan.vg_names() {
                if let Some((v, _)) = scan.vg(&n) {
                    let lvs: Vec<&orion_lvm::vg::Lv> = if all {
                        v.lvs.iter().filter(|l| l.snapshot_of().is_none()).collect()
                    } else {
                        v.user_lvs()
                    };
                    for lv in lvs {
                        let selected = names.is_empty()
                            || names
                                .iter()
                                .any(|n| *n == v.name || *n == format!("{}/{}", v.name, lv.name));
                        if !selected {
                            continue;
                        }
                        let stripes = match lv.segments.first().map(|s| &s.kind) {
                            Some(orion_lvm::vg::SegmentKind::Striped { stripes, .. }) => {
                                stripes.len()
                            }
                            _ => 0,
                        };
                        let rep = report::lv_report(ctl.as_ref(), &v, lv);
                        let shown =
                            if lv.visible() || v.user_lvs().iter().any(|u| u.name == lv.name) {
                                lv.name.clone()
                            } else {
                                format!("[{}]", lv.name)
                            };
                        let mut row = vec![
                            ("lv_name", shown),
                            ("vg_name", v.name.clone()),
                            ("lv_attr", rep.attr.clone()),
                            ("lv_uuid", lv.id.clone()),
                            ("lv_size", mib(lv.extents() * v.extent_size)),
                            ("seg_count", lv.segments.len().to_string()),
                            ("stripes", stripes.to_string()),
                            (
                                "lv_active",
                                if rep.device.is_some() { "active" } else { "" }.to_owned(),
                            ),
                            ("data_percent", pct(rep.data_percent)),
                            ("metadata_percent", pct(rep.metadata_percent)),
                            ("copy_percent", pct(rep.copy_percent)),
                            ("lv_health_status", rep.health.clone()),
                        ];
                        if metrics {
                            let st = rep.device.as_ref().and_then(|s| io_stats(s.minor));
                            for (i, f) in ["read_ios", "read_sectors", "write_ios", "write_sectors"]
                                .into_iter()
                                .enumerate()
                            {
                                let idx = [0, 2, 4, 6][i];
                                let v = st.as_ref().and_then(|s| s.get(idx).copied());
                                row.push((f, v.map(|v| v.to_string()).unwrap_or_default()));
                            }
                        }
                        rows.push(row);
                    }
                }
            }
            if let Some(o) = &options {
                let want: Vec<&str> = o.split(',').map(str::trim).collect();
                if let Some(bad) = want.iter().find(|w| {
                    rows.first()
                        .is_some_and(|r| !r.iter().any(|(k, _)| k == *w))
                }) {
                    bail!("unknown field {bad:?}");
                }
                rows = rows
                    .into_iter()
                    .map(|r| {
                        want.iter()
                            .filter_map(|w| r.iter().find(|(k, _)| k == w).cloned())
                            .collect()
                    })
                    .collect();
            }
            if !json && (noheadings || separator.is_some()) {
                for r in &rows {
                    let cells: Vec<&str> = r.iter().map(|(_, v)| v.as_str()).collect();
                    match &separator {
                        Some(sep) => println!("  {}", cells.join(sep)),
                        None => println!("  {}", cells.join(" ")),
                    }
                }
                return Ok(());
            }
            report("lv", json, rows);
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("  {e:#}");
            ExitCode::from(5)
        }
    }
}
