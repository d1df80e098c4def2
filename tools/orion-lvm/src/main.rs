// SPDX-License-Identifier: GPL-2.0 OR MIT

//! `orion-lvm`: LVM2-compatible volume management. The command line is defined in
//! `orion_lvm::cli`; each command calls a library function; exit codes are LVM2's and are
//! decided in `orion_lvm::exit`.

use anyhow::Result;
use clap::Parser;
use orion_lvm::cli::{Cli, Cmd, ReportOpts};
use orion_lvm::commands::create::{self, yes_no};
use orion_lvm::commands::listing::{self, ReportArgs};
use orion_lvm::commands::resize::{self, split_lv, Direction, SizeArg};
use orion_lvm::commands::{
    self, dev, display, fullreport, parse_size, pvresize, rename, scan, Policy, Repair, Scan,
};
use orion_lvm::report::{self, Format, Units};
use orion_lvm::{exit, pv};
use std::process::ExitCode;

fn report_args(r: ReportOpts, names: Vec<String>, all: bool) -> Result<ReportArgs> {
    let json = r.json
        || r.report_format
            .as_deref()
            .map(report::parse_report_format)
            .transpose()?
            .unwrap_or(false);
    Ok(ReportArgs {
        options: r.options,
        sort: r.sort,
        select: r.select,
        format: Format {
            units: r
                .units
                .as_deref()
                .map(Units::parse)
                .transpose()?
                .unwrap_or_default(),
            nosuffix: r.nosuffix,
            noheadings: r.noheadings,
            separator: r.separator,
            aligned: r.aligned,
            rows: r.rows,
            name_prefixes: r.nameprefixes,
            unquoted: r.unquoted,
            json,
        },
        names,
        all,
    })
}

fn policy(alloc: Option<&str>) -> Result<Option<Policy>> {
    Ok(alloc.map(Policy::parse).transpose()?.flatten())
}

fn run(cli: Cli) -> Result<()> {
    let prefix = cli.target_prefix.as_str();
    orion_lvm::lvmconf::set_overrides(cli.config.clone());
    if !cli.scan_devices.is_empty() {
        pv::restrict_scan(cli.scan_devices.iter().map(|d| dev(d)).collect());
    }
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
                commands::pvremove_unused(&dev(&d))?;
                println!("  Labels on physical volume \"{d}\" successfully wiped.");
            }
        }
        Cmd::Pvs { report, names } => listing::pvs(&report_args(report, names, false)?)?,
        Cmd::Vgs { report, names } => listing::vgs(&report_args(report, names, false)?)?,
        Cmd::Lvs {
            all,
            report,
            names,
            metrics,
        } => listing::lvs(&report_args(report, names, all)?, metrics)?,
        Cmd::Pvdisplay { colon, names } => print!("{}", display::pvdisplay(&names, colon)?),
        Cmd::Vgdisplay { colon, names } => print!("{}", display::vgdisplay(&names, colon)?),
        Cmd::Lvdisplay { all, colon, names } => {
            print!("{}", display::lvdisplay(&names, all, colon)?)
        }
        Cmd::Pvscan { short } => print!("{}", scan::pvscan(short)?),
        Cmd::Vgscan => print!("{}", scan::vgscan()?),
        Cmd::Lvscan { all } => print!("{}", scan::lvscan(all)?),
        Cmd::Vgrename { old, new } => {
            rename::vgrename(&old, &new)?;
            println!("  Volume group \"{old}\" successfully renamed to \"{new}\"");
        }
        Cmd::Lvrename { names } => {
            let (vg, old, new) = rename::lvrename_args(&names)?;
            rename::lvrename(&vg, &old, &new)?;
            println!("  Renamed \"{old}\" to \"{new}\" in volume group \"{vg}\"");
        }
        Cmd::Pvresize { size, yes, devices } => {
            let size = size
                .as_deref()
                .map(|s| parse_size(s).map_err(|e| exit::usage(e.to_string())))
                .transpose()?;
            let mut done = 0;
            for d in &devices {
                match pvresize::pvresize(&dev(d), size, yes) {
                    Ok(()) => {
                        println!("  Physical volume \"{d}\" changed");
                        done += 1;
                    }
                    Err(e) => eprintln!("  {e:#}"),
                }
            }
            println!(
                "  {done} physical volume(s) resized or updated / {} physical volume(s) not resized",
                devices.len() - done
            );
            if done < devices.len() {
                return Err(exit::Reported.into());
            }
        }
        Cmd::Fullreport { args } => {
            print!(
                "{}",
                fullreport::fullreport(&fullreport::parse_args(&args)?)?
            )
        }
        Cmd::Vgcreate {
            extent_size,
            name,
            devices,
        } => {
            let devs: Vec<_> = devices.iter().map(|d| dev(d)).collect();
            let es = parse_size(&extent_size).map_err(|e| exit::usage(e.to_string()))?;
            commands::vgcreate(&name, &devs, es)?;
            println!("  Volume group \"{name}\" successfully created");
        }
        Cmd::Vgchange { activate, name } => {
            let on = yes_no(&activate)?;
            let n = commands::vgchange(&name, on, prefix)?;
            if on {
                // LVM2 polls merges to their end in the background; we wait for them.
                commands::finish_live_merges(&name, prefix)?;
            }
            let active = if on { n } else { 0 };
            println!("  {active} logical volume(s) in volume group \"{name}\" now active");
        }
        Cmd::Lvchange { activate, lv } => {
            let on = yes_no(&activate)?;
            let (vg, name) = split_lv(&lv)?;
            commands::lvchange(vg, name, on, prefix)?;
            if on {
                commands::finish_live_merges(vg, prefix)?;
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
        Cmd::Lvcreate(args) => println!("{}", create::run(&args, prefix)?),
        Cmd::Lvextend {
            size,
            extents,
            alloc,
            lv,
        } => {
            let arg = SizeArg::from_options(size, extents)?;
            let r = resize::resize(
                &lv,
                &arg,
                Direction::Grow,
                policy(alloc.as_deref())?,
                prefix,
            )?;
            println!("{}", r.message(&lv));
        }
        Cmd::Lvresize {
            size,
            extents,
            alloc,
            lv,
        } => {
            let arg = SizeArg::from_options(size, extents)?;
            let p = policy(alloc.as_deref())?;
            let r = resize::resize(&lv, &arg, Direction::Either, p, prefix)?;
            println!("{}", r.message(&lv));
        }
        Cmd::Lvreduce {
            size, extents, lv, ..
        } => {
            let arg = SizeArg::from_options(size, extents)?;
            let r = resize::resize(&lv, &arg, Direction::Shrink, None, prefix)?;
            println!("{}", r.message(&lv));
        }
        Cmd::Pvmove {
            interval,
            background,
            abort,
            as_poller,
            source,
            destinations,
        } => {
            let dst: Vec<_> = destinations.iter().map(|d| dev(d)).collect();
            let src = source.as_deref().map(dev);
            let args = commands::PvmoveArgs {
                source: src.as_deref(),
                destinations: &dst,
                background,
                abort,
                interval,
                as_poller,
                prefix,
            };
            // LVM2's poller lines.
            commands::pvmove(&args, &mut |pv, p| {
                println!("{}", commands::progress_line(pv, "Moved", p))
            })?;
        }
        Cmd::Lvconvert {
            merge,
            repair,
            use_policies,
            background,
            interval,
            lv,
        } => {
            let (vg, name) = split_lv(&lv)?;
            if repair {
                match commands::lvconvert_repair(vg, name, use_policies, prefix)? {
                    Repair::ThinPool(warnings) => {
                        for w in warnings {
                            eprintln!("  {w}");
                        }
                    }
                    Repair::Mirror(r) => {
                        println!("  {vg}/{name}: {}", commands::monitor::repair_message(&r));
                        // As LVM2: new images are polled to their end in the foreground.
                        if !r.added.is_empty() && !background {
                            let mut report = commands::progress_printer("Converted", interval);
                            commands::mirror_repair::wait_resynced(vg, name, &mut report)?;
                        }
                    }
                }
                return Ok(());
            }
            if !merge {
                return Err(exit::usage(
                    "only lvconvert --merge and --repair are supported",
                ));
            }
            // LVM2's poller lines while the merge runs in the foreground.
            let mut report = commands::progress_printer("Merged", interval);
            if commands::lvconvert_merge(vg, name, prefix, &mut report)? {
                println!("  Merge of snapshot into logical volume {vg} has finished.");
            } else {
                println!("  Merging of snapshot {vg}/{name} will occur on next activation.");
            }
        }
        Cmd::Monitor {
            once,
            interval,
            vgs,
        } => commands::monitor::run(vgs, once, std::time::Duration::from_secs(interval), prefix)?,
        Cmd::Lvremove { lv } => {
            let (vg, name) = split_lv(&lv)?;
            commands::lvremove(vg, name, prefix)?;
            println!("  Logical volume \"{name}\" successfully removed.");
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(exit::clap_code(&e));
        }
    };
    match run(cli) {
        Ok(()) => ExitCode::from(exit::SUCCESS),
        Err(e) => {
            if e.downcast_ref::<exit::Reported>().is_none() {
                eprintln!("  {e:#}");
            }
            ExitCode::from(exit::code(&e))
        }
    }
}
