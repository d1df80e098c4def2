// SPDX-License-Identifier: GPL-2.0 OR MIT

//! `orion-fuzz`: table and message fuzzing, ours beside the C targets.
//!
//! Exit codes: 0 the run ended (differences are reported, not failures: the caller decides),
//! 1 the kernel log showed a bug report (oops, BUG, WARN, KASAN, lockdep, leak), 2 bad usage
//! or a failing set-up.

use clap::{Args, Parser, Subcommand};
use orion_fuzz::exec::{self, Difference, Side, Verdict};
use orion_fuzz::gen::{self, render};
use orion_fuzz::kmsg::{is_bug_report, Kmsg};
use orion_lvm::dm::ioctl::Control;
use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::Instant;

#[derive(Parser)]
#[command(
    name = "orion-fuzz",
    version,
    about = "Fuzzes dm tables and messages, ours beside C"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Args)]
struct Common {
    /// Cases to run.
    #[arg(long, default_value_t = 1000)]
    cases: u64,
    /// Seed (the same seed gives the same cases).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Prefix of our target names (empty: ours are registered under the C names).
    #[arg(long, default_value = "orion-")]
    prefix: String,
    /// The C side's four devices, comma-separated.
    #[arg(long, value_delimiter = ',', required = true)]
    c_devs: Vec<String>,
    /// Our side's four devices.
    #[arg(long, value_delimiter = ',', required = true)]
    o_devs: Vec<String>,
    /// The C side's live thin pool (with thin device 1).
    #[arg(long)]
    c_pool: String,
    /// Our side's live thin pool.
    #[arg(long)]
    o_pool: String,
    /// Differences printed in full.
    #[arg(long, default_value_t = 30)]
    show: usize,
}

#[derive(Args)]
struct MetadataArgs {
    /// The pristine metadata image (a file).
    #[arg(long)]
    image: String,
    /// The metadata device each damaged copy is written to.
    #[arg(long)]
    meta: String,
    /// The pool's data device.
    #[arg(long)]
    data: String,
    /// Prefix of our target names.
    #[arg(long, default_value = "orion-")]
    prefix: String,
    /// Damaged images to load.
    #[arg(long, default_value_t = 200)]
    cases: u64,
    /// Seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

#[derive(Subcommand)]
enum Cmd {
    /// Table lines of every target, loaded on both sides.
    Tables(Common),
    /// Messages to the live pools.
    Messages(Common),
    /// Damaged thin-pool metadata loaded by our pool.
    Metadata(MetadataArgs),
}

fn verdict_text(v: &Verdict) -> String {
    match v {
        Verdict::Accepted { table, message } => {
            format!(
                "accepted: {table:?}; message errno {} {:?}",
                message.0, message.1
            )
        }
        Verdict::Refused { errno, error, .. } => format!("refused: errno {errno}, {error:?}"),
        Verdict::ResumeFailed { errno } => format!("resume failed: errno {errno}"),
    }
}

struct Run {
    ctl: Control,
    kmsg: Kmsg,
    c: Side,
    o: Side,
    log: Vec<String>,
}

fn setup(a: &Common) -> Result<Run, String> {
    if a.c_devs.len() != 4 || a.o_devs.len() != 4 {
        return Err("--c-devs and --o-devs take four devices each".to_owned());
    }
    let ctl = Control::open().map_err(|e| format!("/dev/mapper/control: {e}"))?;
    let kmsg = Kmsg::open().map_err(|e| format!("/dev/kmsg: {e}"))?;
    let c = Side::new("c", None, a.c_devs.clone(), a.c_pool.clone())
        .map_err(|e| format!("C devices: {e}"))?;
    let o = Side::new(
        "o",
        Some(a.prefix.clone()),
        a.o_devs.clone(),
        a.o_pool.clone(),
    )
    .map_err(|e| format!("our devices: {e}"))?;
    Ok(Run {
        ctl,
        kmsg,
        c,
        o,
        log: Vec::new(),
    })
}

fn tables(a: &Common, r: &mut Run) -> Result<(), String> {
    let mut counts: BTreeMap<&str, u64> = BTreeMap::new();
    let mut diffs: BTreeMap<Difference, u64> = BTreeMap::new();
    let mut shown = 0;
    for n in 0..a.cases {
        let case = gen::case(a.seed, n);
        let line = render(&case.toks, &r.c.devs, &r.c.pool);
        let skip = exec::skip(&case, &r.c);
        if skip == exec::Skip::Both {
            *counts
                .entry("skipped (snapshot chunk of 32 MiB or more)")
                .or_default() += 1;
            continue;
        }
        let ours = exec::run(&r.ctl, &mut r.kmsg, &r.o, &case, &mut r.log)
            .map_err(|e| format!("case {n} ({line}) on ours: {e}"))?;
        if skip == exec::Skip::C {
            *counts.entry("ours only").or_default() += 1;
            continue;
        }
        let theirs = exec::run(&r.ctl, &mut r.kmsg, &r.c, &case, &mut r.log)
            .map_err(|e| format!("case {n} ({line}) on C: {e}"))?;
        let key = match &theirs {
            Verdict::Accepted { .. } => "accepted by C",
            Verdict::Refused { .. } => "refused by C",
            Verdict::ResumeFailed { .. } => "resume failed on C",
        };
        *counts.entry(key).or_default() += 1;
        if case.mutations.is_empty() && !matches!(ours, Verdict::Accepted { .. }) {
            *counts.entry("valid template refused by ours").or_default() += 1;
        }
        let (ctl, kmsg, side, log) = (&r.ctl, &mut r.kmsg, &r.o, &mut r.log);
        let diff = exec::classify(&case, &theirs, &ours, |w| {
            exec::run(ctl, kmsg, side, w, log).ok()
        });
        if let Some(d) = diff {
            *diffs.entry(d).or_default() += 1;
            if shown < a.show && !d.documented() {
                shown += 1;
                println!(
                    "# {d:?}: case {n}, {} {} {line:?} (mutations {:?}, message {:?})",
                    case.kind.c_name(),
                    case.len,
                    case.mutations,
                    render(&case.message, &r.c.devs, &r.c.pool)
                );
                println!("#   C:    {}", verdict_text(&theirs));
                println!("#   ours: {}", verdict_text(&ours));
            }
        }
    }
    report("tables", a.cases, &counts, &diffs);
    Ok(())
}

fn messages(a: &Common, r: &mut Run) {
    let mut counts: BTreeMap<&str, u64> = BTreeMap::new();
    let mut diffs: BTreeMap<Difference, u64> = BTreeMap::new();
    let mut shown = 0;
    for n in 0..a.cases {
        let m = gen::pool_message(a.seed, n);
        let theirs = exec::pool_message(&r.ctl, &mut r.kmsg, &r.c, &m, &mut r.log);
        let ours = exec::pool_message(&r.ctl, &mut r.kmsg, &r.o, &m, &mut r.log);
        *counts
            .entry(if theirs.0 == 0 {
                "accepted by C"
            } else {
                "refused by C"
            })
            .or_default() += 1;
        let d = if theirs.0 != ours.0 {
            Some(Difference::Verdict)
        } else if theirs.1 != ours.1 {
            Some(Difference::Message)
        } else {
            None
        };
        if let Some(d) = d {
            *diffs.entry(d).or_default() += 1;
            if shown < a.show {
                shown += 1;
                println!(
                    "# {d:?}: message {n} {:?}",
                    render(&m, &r.c.devs, &r.c.pool)
                );
                println!("#   C:    errno {} {:?}", theirs.0, theirs.1);
                println!("#   ours: errno {} {:?}", ours.0, ours.1);
            }
        }
    }
    report("messages", a.cases, &counts, &diffs);
}

fn report(what: &str, cases: u64, counts: &BTreeMap<&str, u64>, diffs: &BTreeMap<Difference, u64>) {
    // Documented differences are reported, not counted against the run.
    let total: u64 = diffs
        .iter()
        .filter(|(d, _)| !d.documented())
        .map(|(_, n)| n)
        .sum();
    let parts: Vec<String> = counts.iter().map(|(k, v)| format!("{k} {v}")).collect();
    let kinds: Vec<String> = diffs.iter().map(|(k, v)| format!("{k:?} {v}")).collect();
    println!(
        "# {what}: {cases} cases: {}; undocumented differences {total} (all: {})",
        parts.join(", "),
        kinds.join(", ")
    );
    println!("SUMMARY {what} cases={cases} differences={total}");
}

fn metadata(a: &MetadataArgs) -> Result<Vec<String>, String> {
    use orion_fuzz::metadata::{self as md, Outcome};
    let ctl = Control::open().map_err(|e| format!("/dev/mapper/control: {e}"))?;
    let mut kmsg = Kmsg::open().map_err(|e| format!("/dev/kmsg: {e}"))?;
    let (pristine, used) = md::pristine(&a.image).map_err(|e| format!("{}: {e}", a.image))?;
    let setup = md::Setup {
        meta: &a.meta,
        data: &a.data,
        prefix: &a.prefix,
    };
    let mut log = Vec::new();
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    let mut silent = 0;
    let mut shown = 0;
    for n in 0..a.cases {
        let mut image = pristine.clone();
        let what = orion_fuzz::damage::apply(&mut image, &used, a.seed, n);
        let before = log.len();
        let o = md::run(&ctl, &mut kmsg, &setup, &image, &mut log)
            .map_err(|e| format!("case {n} ({what}): {e}"))?;
        // A failed I/O on a pool that stays read-write deserves a look: show the first.
        if let Outcome::Loaded {
            mode,
            io: Some((r, w)),
            ..
        } = &o
        {
            if mode == "rw" && !(*r && *w) && shown < 8 {
                shown += 1;
                println!("# case {n} ({what}): thin I/O failed, pool still rw; log:");
                for l in log[before..]
                    .iter()
                    .filter(|l| !l.contains("orion-fuzz: mark"))
                {
                    println!("#   {l}");
                }
            }
        }
        let key = match &o {
            Outcome::Refused(Some(_)) => "refused".to_owned(),
            Outcome::Refused(None) => {
                silent += 1;
                println!("# case {n} ({what}): refused with no ti->error line");
                "refused silently".to_owned()
            }
            Outcome::Loaded {
                mode,
                needs_check,
                io,
            } => format!(
                "loaded {mode}{}{}",
                if *needs_check { " needs_check" } else { "" },
                match io {
                    None => ", thin refused",
                    Some((true, true)) => ", thin read+write ok",
                    Some((true, false)) => ", thin read ok, write failed",
                    Some((false, true)) => ", thin read failed, write ok",
                    Some((false, false)) => ", thin read+write failed",
                }
            ),
        };
        *counts.entry(key).or_default() += 1;
    }
    let parts: Vec<String> = counts.iter().map(|(k, v)| format!("{k} {v}")).collect();
    println!(
        "# metadata: {} damaged images of {} used blocks: {}",
        a.cases,
        used.len(),
        parts.join(", ")
    );
    println!("SUMMARY metadata cases={} silent={silent}", a.cases);
    log.extend(kmsg.drain());
    Ok(log)
}

fn finish(log: &[String], t0: Instant) -> ExitCode {
    let bugs: Vec<&String> = log.iter().filter(|l| is_bug_report(l)).collect();
    println!(
        "# {:.1} s; kernel log: {} lines, {} bug reports",
        t0.elapsed().as_secs_f64(),
        log.len(),
        bugs.len()
    );
    for b in bugs.iter().take(20) {
        println!("#   {b}");
    }
    if bugs.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let (a, tables_run) = match &cli.cmd {
        Cmd::Tables(a) => (a, true),
        Cmd::Messages(a) => (a, false),
        Cmd::Metadata(m) => {
            let t0 = Instant::now();
            return match metadata(m) {
                Ok(log) => finish(&log, t0),
                Err(e) => {
                    eprintln!("orion-fuzz: {e}");
                    ExitCode::from(2)
                }
            };
        }
    };
    let mut r = match setup(a) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("orion-fuzz: {e}");
            return ExitCode::from(2);
        }
    };
    let t0 = Instant::now();
    if tables_run {
        if let Err(e) = tables(a, &mut r) {
            eprintln!("orion-fuzz: {e}");
            return ExitCode::from(2);
        }
    } else {
        messages(a, &mut r);
    }
    r.log.extend(r.kmsg.drain());
    finish(&r.log, t0)
}
