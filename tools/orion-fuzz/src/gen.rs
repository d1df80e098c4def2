// SPDX-License-Identifier: GPL-2.0 OR MIT

//! Case generation: a valid template per target, then mutations that know the table's
//! structure (which token is a device, a number, a feature word).

use orion_crash::rng::Rng;

/// The targets fuzzed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `linear`.
    Linear,
    /// `striped`.
    Striped,
    /// `mirror`.
    Mirror,
    /// `thin-pool`.
    ThinPool,
    /// `thin`.
    Thin,
    /// `snapshot-origin`.
    SnapshotOrigin,
    /// `snapshot`.
    Snapshot,
    /// `snapshot-merge`.
    SnapshotMerge,
}

impl Kind {
    /// Every target, in the order cases cycle through them.
    pub const ALL: [Kind; 8] = [
        Kind::Linear,
        Kind::Striped,
        Kind::Mirror,
        Kind::ThinPool,
        Kind::Thin,
        Kind::SnapshotOrigin,
        Kind::Snapshot,
        Kind::SnapshotMerge,
    ];

    /// The C target's name.
    pub fn c_name(self) -> &'static str {
        match self {
            Kind::Linear => "linear",
            Kind::Striped => "striped",
            Kind::Mirror => "mirror",
            Kind::ThinPool => "thin-pool",
            Kind::Thin => "thin",
            Kind::SnapshotOrigin => "snapshot-origin",
            Kind::Snapshot => "snapshot",
            Kind::SnapshotMerge => "snapshot-merge",
        }
    }

    /// Our target's name with `prefix` (dm type names hold 15 bytes, hence the short names
    /// of the snapshot origin and merge targets).
    pub fn our_name(self, prefix: &str) -> String {
        if prefix.is_empty() {
            return self.c_name().to_owned();
        }
        let short = match self {
            Kind::SnapshotOrigin => "s-origin",
            Kind::SnapshotMerge => "s-merge",
            k => k.c_name(),
        };
        format!("{prefix}{short}")
    }
}

/// One argument of a table line or message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Tok {
    /// The side's device number `i` (0 and 1: data, origin, legs; 2: metadata, COW, log;
    /// 3: pool data).
    Dev(usize),
    /// The side's live thin pool.
    Pool,
    /// A literal word.
    Lit(String),
}

/// A table line to load on each side.
#[derive(Clone, Debug)]
pub struct Case {
    /// The target.
    pub kind: Kind,
    /// Its length in sectors.
    pub len: u64,
    /// Its arguments.
    pub toks: Vec<Tok>,
    /// The mutations applied, for the report.
    pub mutations: Vec<&'static str>,
    /// A message sent to the device when both sides accept the table.
    pub message: Vec<Tok>,
}

/// Numbers at and past the limits the targets check, and words that are almost numbers.
const NUMBERS: &[&str] = &[
    "0",
    "1",
    "-1",
    "2",
    "3",
    "7",
    "8",
    "9",
    "16",
    "127",
    "128",
    "129",
    "1024",
    "2097152",
    "4294967295",
    "4294967296",
    "2147483647",
    "2147483648",
    "9223372036854775807",
    "18446744073709551615",
    "18446744073709551616",
    "99999999999999999999999999999999",
    "0x10",
    "010",
    "8k",
    "1e3",
    "+8",
    "-0",
    "1.5",
    "abc",
];

/// Feature and keyword vocabulary of every target, and junk.
const WORDS: &[&str] = &[
    "skip_block_zeroing",
    "ignore_discard",
    "no_discard_passdown",
    "read_only",
    "error_if_no_space",
    "handle_errors",
    "keep_log",
    "discard_zeroes_cow",
    "discard_passdown_origin",
    "nosync",
    "sync",
    "core",
    "disk",
    "userspace",
    "P",
    "PO",
    "N",
    "n",
    "p",
    "Px",
    "X",
    "zzz",
    "-",
    "\u{e9}t\u{e9}",
    "a\tb",
];

/// Words that take the place of a device.
const NOT_DEVICES: &[&str] = &[
    "/dev/nonexistent",
    "/dev/null",
    "0:0",
    "253:4095",
    "7:0",
    "/dev/mapper/control",
    "/",
];

/// Template messages (the thin pool's verbs and words no target knows).
const MESSAGES: &[&[&str]] = &[
    &["create_thin", "5"],
    &["create_snap", "6", "1"],
    &["delete", "5"],
    &["set_transaction_id", "0", "1"],
    &["reserve_metadata_snap"],
    &["release_metadata_snap"],
    &["trim", "1", "0"],
    &["status"],
    &["@cancel_deferred_remove"],
    &["hello", "world"],
];

fn lit(s: &str) -> Tok {
    Tok::Lit(s.to_owned())
}

fn toks(words: &[&str]) -> Vec<Tok> {
    words
        .iter()
        .map(|w| match *w {
            "D0" => Tok::Dev(0),
            "D1" => Tok::Dev(1),
            "D2" => Tok::Dev(2),
            "D3" => Tok::Dev(3),
            "POOL" => Tok::Pool,
            w => lit(w),
        })
        .collect()
}

/// Valid table arguments for `kind` (`D0`..`D3` are the side's devices) and the length.
fn template(kind: Kind, rng: &mut Rng) -> (u64, Vec<Tok>) {
    let pick = |rng: &mut Rng, t: &[&[&str]]| toks(t[rng.below(t.len() as u64) as usize]);
    let len = 8192;
    match kind {
        Kind::Linear => (len, pick(rng, &[&["D0", "0"], &["D1", "2048"]])),
        Kind::Striped => (
            len,
            pick(
                rng,
                &[
                    &["2", "128", "D0", "0", "D1", "0"],
                    &["4", "8", "D0", "0", "D1", "0", "D3", "0", "D2", "8"],
                    &["1", "16", "D1", "64"],
                ],
            ),
        ),
        Kind::Mirror => (
            len,
            pick(
                rng,
                &[
                    &["core", "1", "1024", "2", "D0", "0", "D1", "0"],
                    &[
                        "core",
                        "2",
                        "1024",
                        "nosync",
                        "2",
                        "D0",
                        "0",
                        "D1",
                        "0",
                        "1",
                        "handle_errors",
                    ],
                    &["disk", "2", "D2", "1024", "2", "D0", "0", "D1", "0"],
                    &[
                        "disk",
                        "3",
                        "D2",
                        "1024",
                        "sync",
                        "3",
                        "D0",
                        "0",
                        "D1",
                        "0",
                        "D3",
                        "0",
                        "2",
                        "handle_errors",
                        "keep_log",
                    ],
                ],
            ),
        ),
        Kind::ThinPool => (
            65536,
            pick(
                rng,
                &[
                    &["D2", "D3", "128", "0"],
                    &["D2", "D3", "128", "32768", "1", "skip_block_zeroing"],
                    &[
                        "D2",
                        "D3",
                        "1024",
                        "0",
                        "2",
                        "no_discard_passdown",
                        "error_if_no_space",
                    ],
                    &["D2", "D3", "256", "16", "1", "ignore_discard"],
                ],
            ),
        ),
        Kind::Thin => (len, pick(rng, &[&["POOL", "1"], &["POOL", "1", "D0"]])),
        Kind::SnapshotOrigin => (len, pick(rng, &[&["D0"], &["D1"]])),
        Kind::Snapshot => (
            len,
            pick(
                rng,
                &[
                    &["D0", "D2", "P", "8"],
                    &["D0", "D2", "N", "16"],
                    &["D0", "D2", "PO", "8"],
                    &[
                        "D1",
                        "D2",
                        "P",
                        "32",
                        "2",
                        "discard_zeroes_cow",
                        "discard_passdown_origin",
                    ],
                    &["D0", "D2", "p", "0"],
                ],
            ),
        ),
        Kind::SnapshotMerge => (len, pick(rng, &[&["D0", "D2", "P", "8"]])),
    }
}

fn choose<'a>(rng: &mut Rng, from: &[&'a str]) -> &'a str {
    from[rng.below(from.len() as u64) as usize]
}

/// Applies one random mutation to `t`; returns its name.
fn mutate(rng: &mut Rng, t: &mut Vec<Tok>, len: &mut u64) -> &'static str {
    let n = t.len() as u64;
    let at = |rng: &mut Rng| rng.below(n.max(1)) as usize;
    match rng.below(10) {
        0 if n > 0 => {
            let i = at(rng);
            t[i] = lit(choose(rng, NUMBERS));
            "number"
        }
        1 if n > 0 => {
            let i = at(rng);
            t.remove(i);
            "drop"
        }
        2 if n > 0 => {
            let i = at(rng);
            let v = t[i].clone();
            t.insert(i, v);
            "repeat"
        }
        3 => {
            let i = rng.below(n + 1) as usize;
            t.insert(i, lit(choose(rng, WORDS)));
            "word"
        }
        4 if n > 0 => {
            let i = at(rng);
            t[i] = match rng.below(4) {
                0 => Tok::Dev(rng.below(4) as usize),
                1 => lit(choose(rng, NOT_DEVICES)),
                2 => lit(&"x".repeat(300)),
                _ => lit(&format!("/dev/{}", "a".repeat(5000))),
            };
            "device"
        }
        5 if n > 0 => {
            t.truncate(at(rng));
            "cut"
        }
        6 if n > 1 => {
            let (i, j) = (at(rng), at(rng));
            t.swap(i, j);
            "swap"
        }
        7 => {
            *len = [0, 1, 7, 8191, 8193, 1 << 40, u64::MAX >> 9][rng.below(7) as usize];
            "length"
        }
        8 => {
            // A count argument off by one: the first small number found.
            let pos = t.iter().position(
                |x| matches!(x, Tok::Lit(s) if s.len() == 1 && s.as_bytes()[0].is_ascii_digit()),
            );
            if let Some(i) = pos {
                if let Tok::Lit(s) = &t[i] {
                    let v: u64 = s.parse().unwrap_or(0);
                    let nv = if rng.percent(50) {
                        v + 1
                    } else {
                        v.saturating_sub(1)
                    };
                    t[i] = Tok::Lit(nv.to_string());
                }
            }
            "count"
        }
        _ => {
            // Many words: past any argument count.
            for _ in 0..rng.below(60) + 20 {
                t.push(lit(choose(rng, WORDS)));
            }
            "many"
        }
    }
}

/// The message sent to an accepted device: a template, mutated half of the time.
fn message(rng: &mut Rng) -> Vec<Tok> {
    let mut m = toks(MESSAGES[rng.below(MESSAGES.len() as u64) as usize]);
    if rng.percent(50) {
        let mut len = 0;
        mutate(rng, &mut m, &mut len);
    }
    // An empty message is refused by dm core before any target sees it.
    if m.is_empty() {
        m.push(lit("hello"));
    }
    m
}

/// Case number `n` of the run seeded with `seed` (the same on every run and machine).
pub fn case(seed: u64, n: u64) -> Case {
    let mut rng = Rng::new(orion_crash::rng::mix(seed ^ n.wrapping_mul(0x9e37_79b9)));
    let kind = Kind::ALL[(n % Kind::ALL.len() as u64) as usize];
    let (mut len, mut t) = template(kind, &mut rng);
    let mut mutations = Vec::new();
    // One case in ten stays valid: both sides must accept it.
    if !rng.percent(10) {
        for _ in 0..rng.below(3) + 1 {
            mutations.push(mutate(&mut rng, &mut t, &mut len));
        }
    }
    let message = message(&mut rng);
    Case {
        kind,
        len,
        toks: t,
        mutations,
        message,
    }
}

/// Message case number `n` for a live pool.
pub fn pool_message(seed: u64, n: u64) -> Vec<Tok> {
    let mut rng = Rng::new(orion_crash::rng::mix(seed ^ !n));
    message(&mut rng)
}

/// Renders `toks` with a side's device paths and pool path.
pub fn render(toks: &[Tok], devs: &[String], pool: &str) -> String {
    let words: Vec<&str> = toks
        .iter()
        .map(|t| match t {
            Tok::Dev(i) => devs
                .get(*i)
                .map(String::as_str)
                .unwrap_or("/dev/nonexistent"),
            Tok::Pool => pool,
            Tok::Lit(s) => s.as_str(),
        })
        .collect();
    words.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cases_are_reproducible() {
        for n in 0..200 {
            let (a, b) = (case(7, n), case(7, n));
            assert_eq!(a.toks, b.toks);
            assert_eq!(a.len, b.len);
            assert_eq!(a.message, b.message);
        }
    }

    #[test]
    fn every_target_and_mutation_is_generated() {
        let mut seen = std::collections::BTreeSet::new();
        let mut valid = 0;
        for n in 0..4000 {
            let c = case(1, n);
            seen.extend(c.mutations.iter().copied());
            valid += c.mutations.is_empty() as u32;
        }
        for m in [
            "number", "drop", "repeat", "word", "device", "cut", "swap", "length", "count", "many",
        ] {
            assert!(seen.contains(m), "mutation {m} never generated");
        }
        assert!(valid > 200, "{valid} valid cases");
    }

    #[test]
    fn render_uses_the_sides_devices() {
        let devs = vec!["/dev/ram0".to_owned(), "/dev/ram1".to_owned()];
        let t = vec![Tok::Dev(1), Tok::Pool, lit("8"), Tok::Dev(9)];
        assert_eq!(
            render(&t, &devs, "/dev/mapper/p"),
            "/dev/ram1 /dev/mapper/p 8 /dev/nonexistent"
        );
    }

    #[test]
    fn our_names_fit_dm_type_names() {
        for k in Kind::ALL {
            assert!(k.our_name("orion-").len() < 16, "{}", k.our_name("orion-"));
            assert_eq!(k.our_name(""), k.c_name());
        }
    }
}
