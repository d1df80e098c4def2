// SPDX-License-Identifier: GPL-2.0 OR MIT

//! Running a case on one side (the C targets or ours) and comparing the two verdicts.

use crate::gen::{render, Case, Kind, Tok};
use crate::kmsg::{table_error, Kmsg};
use orion_lvm::dm::ioctl::{Control, DevId, Target};
use std::fs::OpenOptions;
use std::io;
use std::os::unix::fs::FileExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};

/// One side of the comparison.
pub struct Side {
    /// `c` or `o`: the name of its case device is `fz-<tag>`.
    pub tag: &'static str,
    /// The prefix of its target names (`None`: the C names).
    pub prefix: Option<String>,
    /// Its devices (see [`Tok::Dev`]).
    pub devs: Vec<String>,
    /// Its live thin pool's path.
    pub pool: String,
    /// `MAJ:MIN` of each device and of the pool, and what they stand for in reports.
    numbers: Vec<(String, String)>,
}

impl Side {
    /// A side over `devs` and `pool`.
    pub fn new(
        tag: &'static str,
        prefix: Option<String>,
        devs: Vec<String>,
        pool: String,
    ) -> io::Result<Self> {
        let mut numbers = Vec::new();
        for (i, d) in devs.iter().enumerate() {
            numbers.push((dev_number(d)?, format!("D{i}")));
            numbers.push((d.clone(), format!("D{i}")));
        }
        numbers.push((dev_number(&pool)?, "POOL".to_owned()));
        numbers.push((pool.clone(), "POOL".to_owned()));
        Ok(Side {
            tag,
            prefix,
            devs,
            pool,
            numbers,
        })
    }

    fn kind_name(&self, k: Kind) -> String {
        match &self.prefix {
            Some(p) => k.our_name(p),
            None => k.c_name().to_owned(),
        }
    }

    /// `text` with this side's device paths and numbers replaced by what they stand for.
    fn normalize(&self, text: &str) -> String {
        let mut t = text.to_owned();
        // Longest first: "/dev/ram10" before "/dev/ram1".
        let mut n: Vec<&(String, String)> = self.numbers.iter().collect();
        n.sort_by_key(|(k, _)| std::cmp::Reverse(k.len()));
        for (k, v) in n {
            t = t.replace(k.as_str(), v);
        }
        t.replace("orion-", "")
    }

    fn name(&self) -> String {
        format!("fz-{}", self.tag)
    }

    /// Zeroes the first 4 KiB of every device (thin metadata, snapshot COW, mirror log:
    /// a mutation may put any of them there), so a case never sees what an earlier one
    /// wrote.
    fn reset(&self) -> io::Result<()> {
        // O_DIRECT needs an aligned buffer: take the aligned 4 KiB inside 8 KiB.
        let buf = vec![0u8; 8192];
        let off = buf.as_ptr().align_offset(4096);
        for d in &self.devs {
            let f = OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_DIRECT)
                .open(d)?;
            f.write_all_at(&buf[off..off + 4096], 0)?;
        }
        Ok(())
    }
}

fn dev_number(path: &str) -> io::Result<String> {
    let rdev = std::fs::metadata(path)?.rdev();
    Ok(format!("{}:{}", libc::major(rdev), libc::minor(rdev)))
}

/// What a side did with a case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Loaded and resumed: its table as `dmsetup table` prints it (normalized), and what
    /// the message sent to it returned.
    Accepted {
        /// The live table.
        table: String,
        /// The message's errno (0: accepted) and log lines.
        message: (i32, Vec<String>),
    },
    /// Refused by the table load.
    Refused {
        /// errno.
        errno: i32,
        /// `ti->error`.
        error: Option<String>,
        /// The target's own log lines (not compared: C logs few).
        lines: Vec<String>,
    },
    /// Loaded, refused by the resume.
    ResumeFailed {
        /// errno.
        errno: i32,
    },
}

fn errno_of(e: &orion_lvm::dm::ioctl::DmError) -> i32 {
    e.err.raw_os_error().unwrap_or(-1)
}

/// The device-mapper lines of a log excerpt, normalized for `side` (our module's lines
/// carry its name first, as every Rust module's do).
fn dm_lines(side: &Side, lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .map(|l| l.strip_prefix("orion_dm: ").unwrap_or(l))
        .filter(|l| l.starts_with("device-mapper:"))
        // The log cuts a record at 1024 bytes, ours 10 bytes earlier (the module name
        // comes first): compare what both keep.
        .map(|l| side.normalize(&l.chars().take(900).collect::<String>()))
        .collect()
}

/// Runs `case` on `side`; `log` collects every kernel log line for bug reports.
pub fn run(
    ctl: &Control,
    kmsg: &mut Kmsg,
    side: &Side,
    case: &Case,
    log: &mut Vec<String>,
) -> io::Result<Verdict> {
    side.reset()?;
    log.extend(kmsg.drain());
    let name = side.name();
    let dev = DevId::Name(name.clone());
    let _ = ctl.remove(&dev);
    ctl.create(&name, "").map_err(io::Error::other)?;
    let table = [Target {
        start: 0,
        len: case.len,
        kind: side.kind_name(case.kind),
        params: render(&case.toks, &side.devs, &side.pool),
    }];
    let verdict = match ctl.load(&dev, &table, false) {
        Err(e) => {
            let lines = kmsg.drain_marked();
            let error = table_error(&lines).map(|t| side.normalize(&t));
            let own = dm_lines(side, &lines);
            log.extend(lines);
            Verdict::Refused {
                errno: errno_of(&e),
                error,
                lines: own,
            }
        }
        Ok(()) => match ctl.resume(&dev) {
            Err(e) => Verdict::ResumeFailed {
                errno: errno_of(&e),
            },
            Ok(_) => {
                let live = ctl.table(&dev).map_err(io::Error::other)?;
                let table = live
                    .iter()
                    .map(|t| side.normalize(&format!("{} {} {}", t.start, t.len, t.params)))
                    .collect::<Vec<_>>()
                    .join("\n");
                // The status must be readable; its text is the targets' own tests' job.
                ctl.status(&dev).map_err(io::Error::other)?;
                log.extend(kmsg.drain());
                let msg = render(&case.message, &side.devs, &side.pool);
                let errno = match ctl.message(&dev, 0, &msg) {
                    Ok(()) => 0,
                    Err(e) => errno_of(&e),
                };
                let lines = kmsg.drain_marked();
                let message = (errno, dm_lines(side, &lines));
                log.extend(lines);
                Verdict::Accepted { table, message }
            }
        },
    };
    // A device whose removal fails would make every later case fail: say so.
    ctl.remove(&dev).map_err(io::Error::other)?;
    log.extend(kmsg.drain());
    Ok(verdict)
}

/// Sends message `m` to `side`'s live pool: errno (0: accepted) and the dm log lines.
pub fn pool_message(
    ctl: &Control,
    kmsg: &mut Kmsg,
    side: &Side,
    m: &[Tok],
    log: &mut Vec<String>,
) -> (i32, Vec<String>) {
    log.extend(kmsg.drain());
    let name = side.pool.trim_start_matches("/dev/mapper/").to_owned();
    let msg = render(m, &side.devs, &side.pool);
    let errno = match ctl.message(&DevId::Name(name), 0, &msg) {
        Ok(()) => 0,
        Err(e) => errno_of(&e),
    };
    let lines = kmsg.drain_marked();
    let out = (errno, dm_lines(side, &lines));
    log.extend(lines);
    out
}

/// How two verdicts differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Difference {
    /// One side accepted what the other refused.
    Verdict,
    /// Both refused, with different errnos.
    Errno,
    /// Both refused with one errno, with different `ti->error` texts.
    Error,
    /// Both accepted; the live tables differ.
    Table,
    /// Both accepted; the message's result or log differs.
    Message,
    /// Documented (ours is stricter): both refused with one errno, C in dm core's check of
    /// the device area after its constructor accepted the line, ours in the constructor.
    EarlierRefusal,
    /// Documented (ours is stricter): a number C's `sscanf` wraps (past 2^64 - 1) or
    /// truncates (past 2^32 - 1 in an `unsigned int` field) and ours refuses; ours, given
    /// the wrapped or truncated value, reaches C's verdict.
    WrappedNumber,
    /// Documented (ours is stricter): a mirror of more regions than ours takes.
    RegionLimit,
}

impl Difference {
    /// Whether the contract documents this difference (ours stricter than C).
    pub fn documented(self) -> bool {
        matches!(
            self,
            Difference::EarlierRefusal | Difference::WrappedNumber | Difference::RegionLimit
        )
    }
}

/// The value `sscanf` stores for the decimal `digits` in a field of `bits` bits: the number
/// modulo 2^64 (its parser wraps), then cut to the field's width.
fn wrapped_value(digits: &str, bits: u32) -> u64 {
    let v = digits.bytes().fold(0u64, |v, d| {
        v.wrapping_mul(10).wrapping_add(u64::from(d - b'0'))
    });
    if bits >= 64 {
        v
    } else {
        v & ((1u64 << bits) - 1)
    }
}

/// `case` with every decimal literal of 2^32 or more replaced by what C stores for it in a
/// `bits`-bit field; `None` when that changes no literal.
pub fn wrapped(case: &Case, bits: u32) -> Option<Case> {
    let mut changed = false;
    let toks = case
        .toks
        .iter()
        .map(|t| match t {
            Tok::Lit(s)
                if !s.is_empty()
                    && s.bytes().all(|b| b.is_ascii_digit())
                    && s.parse::<u32>().is_err() =>
            {
                let v = wrapped_value(s, bits).to_string();
                changed |= v != *s;
                Tok::Lit(v)
            }
            t => t.clone(),
        })
        .collect();
    changed.then(|| Case {
        toks,
        ..case.clone()
    })
}

/// The difference between the C side's verdict `c` and ours `o` on `case`, with the
/// documented ones told apart. `ours` runs a variant of the case on our side: a refusal of
/// a number C wraps or truncates is documented only if ours, given C's value, agrees with C.
pub fn classify(
    case: &Case,
    c: &Verdict,
    o: &Verdict,
    mut ours: impl FnMut(&Case) -> Option<Verdict>,
) -> Option<Difference> {
    let d = compare(c, o)?;
    if matches!(o, Verdict::Refused { .. }) {
        for bits in [64, 32] {
            let again = wrapped(case, bits).and_then(|w| ours(&w));
            if again.is_some_and(|v| compare(c, &v).is_none()) {
                return Some(Difference::WrappedNumber);
            }
        }
    }
    match (c, o) {
        (_, Verdict::Refused { lines, .. })
            if lines
                .iter()
                .any(|l| l.contains("more than this target takes")) =>
        {
            Some(Difference::RegionLimit)
        }
        (
            Verdict::Refused {
                errno: a,
                error: Some(text),
                ..
            },
            Verdict::Refused { errno: b, .. },
        ) if a == b && text.starts_with("start=") => Some(Difference::EarlierRefusal),
        _ => Some(d),
    }
}

/// The difference between the C side's verdict `c` and ours `o`, if any.
pub fn compare(c: &Verdict, o: &Verdict) -> Option<Difference> {
    use Verdict::*;
    match (c, o) {
        (
            Refused {
                errno: a,
                error: ea,
                ..
            },
            Refused {
                errno: b,
                error: eb,
                ..
            },
        ) => {
            if a != b {
                Some(Difference::Errno)
            } else if ea != eb {
                Some(Difference::Error)
            } else {
                None
            }
        }
        (ResumeFailed { errno: a }, ResumeFailed { errno: b }) => {
            (a != b).then_some(Difference::Errno)
        }
        (
            Accepted {
                table: ta,
                message: ma,
            },
            Accepted {
                table: tb,
                message: mb,
            },
        ) => {
            if ta != tb {
                Some(Difference::Table)
            } else if ma != mb {
                Some(Difference::Message)
            } else {
                None
            }
        }
        _ => Some(Difference::Verdict),
    }
}

/// Which sides must not run `case`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Skip {
    /// Both run it.
    None,
    /// Ours only: a snapshot whose origin is its COW device (dm-snap's constructor frees
    /// what it then uses there: a KASAN report, or memory corruption without KASAN).
    C,
    /// Neither: a snapshot chunk of 32 MiB or more (both stores allocate chunk-sized
    /// buffers, C three of them; a 2 GiB guest cannot always hold them, and the OOM killer
    /// then ends the run).
    Both,
}

/// The sides that must not run `case` (`c` renders the devices).
pub fn skip(case: &Case, c: &Side) -> Skip {
    if !matches!(case.kind, Kind::Snapshot | Kind::SnapshotMerge) {
        return Skip::None;
    }
    let word = |i: usize| {
        case.toks
            .get(i)
            .map(|t| render(std::slice::from_ref(t), &c.devs, &c.pool))
    };
    // A chunk size both stores accept: a power of two up to INT_MAX >> 9 sectors.
    let huge = case.toks.iter().any(|t| {
        matches!(t, Tok::Lit(s) if s
            .trim_start_matches('+')
            .parse::<u64>()
            .is_ok_and(|v| v.is_power_of_two() && (1 << 16..1 << 22).contains(&v)))
    });
    if huge {
        return Skip::Both;
    }
    match (word(0), word(1)) {
        (Some(a), Some(b)) if a == b => Skip::C,
        _ => Skip::None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compare_names_the_difference() {
        let r = |e: i32, t: &str| Verdict::Refused {
            errno: e,
            error: Some(t.to_owned()),
            lines: vec![],
        };
        let a = |t: &str| Verdict::Accepted {
            table: t.to_owned(),
            message: (22, vec![]),
        };
        assert_eq!(compare(&r(22, "x"), &r(22, "x")), None);
        assert_eq!(compare(&r(22, "x"), &r(12, "x")), Some(Difference::Errno));
        assert_eq!(compare(&r(22, "x"), &r(22, "y")), Some(Difference::Error));
        assert_eq!(compare(&a("t"), &r(22, "x")), Some(Difference::Verdict));
        assert_eq!(compare(&a("t"), &a("u")), Some(Difference::Table));
        assert_eq!(compare(&a("t"), &a("t")), None);
    }

    #[test]
    fn numbers_wrap_as_sscanf_stores_them() {
        // 2^64 + 5 wraps to 5; 2^32 + 7 fits 64 bits and truncates to 7 in 32.
        assert_eq!(wrapped_value("18446744073709551621", 64), 5);
        assert_eq!(wrapped_value("4294967303", 64), 4294967303);
        assert_eq!(wrapped_value("4294967303", 32), 7);
        let case = |w: &[&str]| Case {
            kind: crate::gen::Kind::Linear,
            len: 8,
            toks: w.iter().map(|s| Tok::Lit((*s).to_owned())).collect(),
            mutations: vec![],
            message: vec![],
        };
        let c = case(&["4294967303", "12"]);
        assert!(
            wrapped(&c, 64).is_none(),
            "nothing past 2^64: no 64-bit variant"
        );
        let w = wrapped(&c, 32).expect("a 32-bit variant");
        assert_eq!(w.toks, case(&["7", "12"]).toks);
        let w = wrapped(&case(&["99999999999999999999999"]), 64).expect("wrapped");
        assert_eq!(w.toks, case(&["200376420520689663"]).toks);
    }

    #[test]
    fn a_refused_number_is_documented_only_when_its_value_gives_cs_verdict() {
        let refused = Verdict::Refused {
            errno: 22,
            error: Some("Invalid device sector".to_owned()),
            lines: vec![],
        };
        let accepted = Verdict::Accepted {
            table: "t".to_owned(),
            message: (0, vec![]),
        };
        let c = Case {
            kind: crate::gen::Kind::Linear,
            len: 8,
            toks: vec![Tok::Dev(0), Tok::Lit("18446744073709551621".to_owned())],
            mutations: vec![],
            message: vec![],
        };
        let agree = classify(&c, &accepted, &refused, |_| Some(accepted.clone()));
        assert_eq!(agree, Some(Difference::WrappedNumber));
        let still = classify(&c, &accepted, &refused, |_| Some(refused.clone()));
        assert_eq!(still, Some(Difference::Verdict));
        let plain = Case {
            toks: vec![Tok::Dev(0), Tok::Lit("12".to_owned())],
            ..c
        };
        let none = classify(&plain, &accepted, &refused, |_| panic!("no variant to run"));
        assert_eq!(none, Some(Difference::Verdict));
    }
}
