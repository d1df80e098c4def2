// SPDX-License-Identifier: GPL-2.0 OR MIT

//! The `orion-crash` command on files: a synthetic dm-log-writes log listed and replayed
//! (whole, to a mark, incrementally), and the workload's output turned into a log whose
//! every prefix the verifier accepts, while damaged devices and wrong cuts are refused.

use orion_crash::journal::Journal;
use orion_crash::log::{pack_header, pack_super, Flags, Header, Super};
use orion_crash::stamp::{stamp, BLOCK};
use std::path::Path;
use std::process::Command;

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_orion-crash"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Builds a log as the kernel lays it out.
struct LogBuilder {
    sectorsize: u32,
    entries: Vec<(Header, Vec<u8>)>,
}

impl LogBuilder {
    fn new(sectorsize: u32) -> Self {
        Self {
            sectorsize,
            entries: Vec::new(),
        }
    }

    fn write(&mut self, sector: u64, data: Vec<u8>, flags: Flags) {
        assert_eq!(data.len() % self.sectorsize as usize, 0);
        let h = Header {
            sector,
            nr_sectors: data.len() as u64 / u64::from(self.sectorsize),
            flags,
            ..Header::default()
        };
        self.entries.push((h, data));
    }

    fn discard(&mut self, sector: u64, nr_sectors: u64) {
        let h = Header {
            sector,
            nr_sectors,
            flags: Flags::DISCARD,
            ..Header::default()
        };
        self.entries.push((h, Vec::new()));
    }

    fn flush(&mut self) {
        self.write(0, Vec::new(), Flags::FLUSH);
    }

    fn mark(&mut self, name: &str) {
        let h = Header {
            flags: Flags::MARK,
            data_len: name.len() as u64,
            mark: Some(name.into()),
            ..Header::default()
        };
        self.entries.push((h, Vec::new()));
    }

    /// Writes the log, with `unlogged` more entries after those the super block counts.
    fn finish(&self, path: &Path, unlogged: usize) {
        let ss = self.sectorsize;
        let counted = self.entries.len() - unlogged;
        let mut b = pack_super(&Super {
            nr_entries: counted as u64,
            sectorsize: ss,
        });
        for (h, data) in &self.entries {
            b.extend_from_slice(&pack_header(h, ss));
            b.extend_from_slice(data);
        }
        b.resize(b.len() + 64 * 1024, 0);
        std::fs::write(path, b).unwrap();
    }
}

fn filled(path: &Path, len: usize, byte: u8) {
    std::fs::write(path, vec![byte; len]).unwrap();
}

#[test]
fn synthetic_log_list_and_replay() {
    let dir = tempfile::tempdir().unwrap();
    let (log, dev, idx) = (
        dir.path().join("log"),
        dir.path().join("dev"),
        dir.path().join("idx"),
    );
    let mut l = LogBuilder::new(512);
    l.write(0, vec![0xa; 4096], Flags::default()); // 0
    l.mark("one"); // 1
    l.write(16, vec![0xb; 4096], Flags::FUA); // 2
    l.discard(0, 4); // 3
    l.flush(); // 4
    l.write(4, vec![0xc; 2048], Flags::METADATA); // 5
    l.mark("two"); // 6
    l.write(20, vec![0xd; 512], Flags::default()); // 7: not counted in the super block
    l.finish(&log, 1);
    let (log_s, dev_s, idx_s) = (
        log.to_str().unwrap(),
        dev.to_str().unwrap(),
        idx.to_str().unwrap(),
    );

    let (rc, out, err) = run(&["list", log_s]);
    assert_eq!(rc, 0, "{err}");
    let lines: Vec<&str> = out.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(
        lines,
        [
            "0 0 8 - -",
            "1 0 0 MARK one",
            "2 16 8 FUA -",
            "3 0 4 DISCARD -",
            "4 0 0 FLUSH -",
            "5 4 4 METADATA -",
            "6 0 0 MARK two",
        ]
    );
    assert!(out.starts_with("# dm-log-writes log: 7 entries, sector size 512"));

    // To a mark.
    filled(&dev, 16384, 0xee);
    let (rc, _, err) = run(&["replay", log_s, dev_s, "--to-mark", "one"]);
    assert_eq!(rc, 0, "{err}");
    let d = std::fs::read(&dev).unwrap();
    assert!(d[..4096].iter().all(|&c| c == 0xa) && d[4096..].iter().all(|&c| c == 0xee));

    // Whole, then incrementally through an index: the same bytes.
    let mut want = vec![0xeeu8; 16384];
    want[..4096].fill(0xa);
    want[8192..12288].fill(0xb);
    want[..2048].fill(0);
    want[2048..4096].fill(0xc);
    filled(&dev, 16384, 0xee);
    let (rc, out, _) = run(&["replay", log_s, dev_s, "--to", "6"]);
    assert_eq!(rc, 0);
    assert!(
        out.contains("3 writes (10240 bytes), 1 discards, 2 flush/FUA, 2 marks"),
        "{out}"
    );
    assert_eq!(std::fs::read(&dev).unwrap(), want);
    filled(&dev, 16384, 0xee);
    for (from, to) in [("0", "1"), ("2", "4"), ("5", "6")] {
        let (rc, _, err) = run(&[
            "replay", log_s, dev_s, "--from", from, "--to", to, "--index", idx_s,
        ]);
        assert_eq!(rc, 0, "{err}");
    }
    assert_eq!(std::fs::read(&dev).unwrap(), want);
    assert!(idx.exists());

    // Discards left out.
    filled(&dev, 16384, 0xee);
    assert_eq!(
        run(&[
            "replay",
            log_s,
            dev_s,
            "--to-mark",
            "two",
            "--discard",
            "skip"
        ])
        .0,
        0
    );
    assert!(std::fs::read(&dev).unwrap()[..2048]
        .iter()
        .all(|&c| c == 0xa));

    // Refusals: past the end (the unlogged entry too), unknown mark, backwards, no log,
    // a device too small.
    for args in [
        vec!["--to", "7"],
        vec!["--to-mark", "three"],
        vec!["--from", "3", "--to", "2"],
        vec!["--from", "2", "--to-mark", "one"],
    ] {
        let mut a = vec!["replay", log_s, dev_s];
        a.extend(args.iter());
        let (rc, _, err) = run(&a);
        assert_eq!(rc, 2, "{args:?}: {err}");
    }
    let (rc, _, err) = run(&["list", dev_s]);
    assert_eq!(rc, 2);
    assert!(err.contains("not a dm-log-writes log"), "{err}");
    filled(&dev, 4096, 0);
    let (rc, _, err) = run(&["replay", log_s, dev_s, "--to", "2"]);
    assert_eq!(rc, 2);
    assert!(err.contains("past the end of"), "{err}");
    assert_eq!(run(&["list", "/nonexistent/log"]).0, 3);
}

/// The log a disk would have given for the journal's writes: each window's writes, a
/// flush, then the mark `flush-N`.
fn log_of(journal: &Journal, path: &Path) {
    let mut l = LogBuilder::new(512);
    l.mark("flush-0");
    let windows = journal.last_flush.unwrap();
    for n in 1..=windows {
        for w in journal.writes.iter().filter(|w| w.window == n) {
            let mut data = vec![0u8; w.count as usize * BLOCK];
            for (i, b) in data.chunks_exact_mut(BLOCK).enumerate() {
                stamp(b, (w.block + i as u64) * BLOCK as u64, w.generation);
            }
            l.write(w.block * 8, data, Flags::default());
        }
        l.flush();
        l.mark(&format!("flush-{n}"));
    }
    l.finish(path, 0);
}

fn damage(dev: &Path, block: u64, with: &[u8]) {
    let mut d = std::fs::read(dev).unwrap();
    let at = block as usize * BLOCK;
    d[at..at + BLOCK].copy_from_slice(with);
    std::fs::write(dev, d).unwrap();
}

#[test]
fn workload_log_every_cut_verifies_and_damage_is_caught() {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n);
    let (dev, state, log, idx, replayed, marks) = (
        p("dev"),
        p("state"),
        p("log"),
        p("idx"),
        p("replayed"),
        p("marks"),
    );
    let s = |p: &Path| p.to_str().unwrap().to_owned();
    filled(&dev, 256 * BLOCK, 0);

    let hook = format!("echo $N >> {}", s(&marks));
    let (rc, out, err) = run(&[
        "write",
        &s(&dev),
        "--state",
        &s(&state),
        "--writes",
        "150",
        "--flush-every",
        "5",
        "--seed",
        "7",
        "--max-kib",
        "32",
        "--after-flush",
        &hook,
        "--background-flush",
        "2",
        "--aligned-percent",
        "20",
    ]);
    assert_eq!(rc, 0, "{err}");
    assert!(out.starts_with("150 writes, 31 flushes (and "), "{out}");
    let m: Vec<u64> = std::fs::read_to_string(&marks)
        .unwrap()
        .lines()
        .map(|l| l.parse().unwrap())
        .collect();
    assert_eq!(m, (0..31).collect::<Vec<_>>());
    let journal = Journal::load(&state).unwrap();
    assert_eq!(journal.writes.len(), 150);
    assert!(journal.writes.iter().all(|w| w.count <= 8));
    let aligned = journal
        .writes
        .iter()
        .filter(|w| w.count == 8 && w.block % 8 == 0);
    assert!(aligned.count() >= 15);

    // The device as written verifies at the last flush, and not at an earlier one.
    let (rc, out, _) = run(&["verify", &s(&dev), "--state", &s(&state), "--flush", "30"]);
    assert_eq!(rc, 0, "{out}");
    assert!(out.contains("problems: lost=0 stale=0"), "{out}");
    let (rc, out, _) = run(&["verify", &s(&dev), "--state", &s(&state), "--flush", "10"]);
    assert_eq!(rc, 1, "{out}");
    assert!(out.contains("future"), "{out}");

    // Every prefix of its log verifies against the last mark in it.
    log_of(&journal, &log);
    filled(&replayed, 256 * BLOCK, 0);
    let (_, listing, _) = run(&["list", &s(&log)]);
    let mut flush = 0;
    let mut cuts = 0;
    for line in listing.lines().filter(|l| !l.starts_with('#')) {
        let f: Vec<&str> = line.split(' ').collect();
        let (rc, _, err) = run(&[
            "replay",
            &s(&log),
            &s(&replayed),
            "--from",
            f[0],
            "--to",
            f[0],
            "--index",
            &s(&idx),
        ]);
        assert_eq!(rc, 0, "{err}");
        if let Some(n) = f[4].strip_prefix("flush-") {
            flush = n.parse().unwrap();
        }
        let (rc, out, _) = run(&[
            "verify",
            &s(&replayed),
            "--state",
            &s(&state),
            "--flush",
            &flush.to_string(),
        ]);
        assert_eq!(rc, 0, "cut at entry {}: {out}", f[0]);
        cuts += 1;
        // Halfway, a later flush than the cut is refused: acknowledged writes are missing.
        if flush == 15 && f[3] == "MARK" {
            let (rc, out, _) = run(&[
                "verify",
                &s(&replayed),
                "--state",
                &s(&state),
                "--flush",
                "17",
            ]);
            assert_eq!(rc, 1, "{out}");
            assert!(
                out.contains("lost=") && !out.contains("lost=0 stale=0"),
                "{out}"
            );
        }
    }
    assert!(cuts > 150);
    assert_eq!(
        std::fs::read(&replayed).unwrap(),
        std::fs::read(&dev).unwrap()
    );

    // Damaged copies of the final device, one kind at a time.
    let e = journal.expected(30, false).unwrap();
    let acked: Vec<u64> = (0..256).filter(|&b| e.acked[b as usize] != 0).collect();
    let unwritten = (0..256u64).find(|&b| e.acked[b as usize] == 0).unwrap();
    let (b0, b1) = (acked[0], acked[1]);
    // A block written more than once, and an older generation of it.
    let (rewritten, older) = acked
        .iter()
        .find_map(|&b| {
            let acked_gen = e.acked[b as usize];
            let w = journal
                .writes
                .iter()
                .find(|w| w.covers(b) && w.generation < acked_gen)?;
            Some((b, w.generation))
        })
        .expect("the workload rewrote some block");
    let mut stamped = vec![0u8; BLOCK];
    let mut cases: Vec<(&str, u64, Vec<u8>)> = vec![
        ("lost", b0, vec![0; BLOCK]),
        ("marker", unwritten, vec![0xa5; BLOCK]),
        ("foreign", b0, vec![0x11; BLOCK]),
    ];
    stamp(&mut stamped, b1 * BLOCK as u64, e.acked[b1 as usize]);
    cases.push(("misplaced", b0, stamped.clone()));
    let mut torn = stamped.clone();
    torn[1000] ^= 1;
    cases.push(("torn", b1, torn));
    stamp(&mut stamped, b0 * BLOCK as u64, 9999);
    cases.push(("unknown", b0, stamped.clone()));
    stamp(&mut stamped, rewritten * BLOCK as u64, older);
    cases.push(("stale", rewritten, stamped.clone()));
    for (kind, block, bytes) in cases {
        std::fs::copy(&dev, &replayed).unwrap();
        damage(&replayed, block, &bytes);
        let (rc, out, _) = run(&[
            "verify",
            &s(&replayed),
            "--state",
            &s(&state),
            "--flush",
            "30",
        ]);
        assert_eq!(rc, 1, "{kind}: {out}");
        assert!(out.contains(&format!("{kind}=1")), "{kind}: {out}");
        assert!(
            out.contains(&format!("block {block} (byte {}): {kind}:", block * 4096)),
            "{out}"
        );
        assert!(out.contains("FAILED: 1 bad blocks"), "{out}");
        // Every damaged block but the unwritten one had acknowledged data.
        let missing = if kind == "marker" { 0 } else { 1 };
        assert!(
            out.contains(&format!("(acknowledged data missing in {missing} blocks)")),
            "{kind}: {out}"
        );
    }
}

#[test]
fn walk_options_by_stack() {
    let common = ["walk", "log", "replay", "--cow", "cow", "--state", "state"];
    let walk = |extra: &[&str]| run(&[&common[..], extra].concat());
    // The thin stack (the default) needs its areas and takes no snapshot-stack areas; the
    // snapshot stack the reverse. Options are checked before any file is opened.
    let (rc, _, err) = walk(&["--data-sectors", "8", "--thin-sectors", "8"]);
    assert_eq!(rc, 2, "{err}");
    assert!(err.contains("--stack thin needs --meta-sectors"), "{err}");
    let (rc, _, err) = walk(&["--stack", "snapshot", "--origin-sectors", "8"]);
    assert_eq!(rc, 2, "{err}");
    assert!(
        err.contains("--stack snapshot needs --cow-sectors"),
        "{err}"
    );
    let snap = [
        "--stack",
        "snapshot",
        "--origin-sectors",
        "8",
        "--cow-sectors",
        "8",
    ];
    let (rc, _, err) = walk(&[&snap[..], &["--snapshot-id", "1"]].concat());
    assert_eq!(rc, 2, "{err}");
    assert!(
        err.contains("--snapshot-id is not an option of --stack snapshot"),
        "{err}"
    );
    let (rc, _, err) = walk(&["--stack", "thin", "--cow-sectors", "8"]);
    assert_eq!(rc, 2, "{err}");
    assert!(
        err.contains("--cow-sectors is not an option of --stack thin"),
        "{err}"
    );
    // Complete options get as far as the journal.
    let (rc, _, err) = walk(&snap);
    assert_eq!(rc, 3, "{err}");
    assert!(err.contains("state"), "{err}");
}

#[test]
fn walk_options_of_the_mirror_stack() {
    let common = ["walk", "log", "replay", "--cow", "cow", "--state", "state"];
    let walk = |extra: &[&str]| run(&[&common[..], extra].concat());
    let mirror = [
        "--stack",
        "mirror",
        "--log-sectors",
        "2048",
        "--leg-sectors",
        "32768",
    ];
    let refused = |extra: &[&str], want: &str| {
        let (rc, _, err) = walk(extra);
        assert_eq!(rc, 2, "{extra:?}: {err}");
        assert!(err.contains(want), "{extra:?}: {err}");
    };
    // The mirror stack needs its areas, takes no other stack's, and the other stacks take
    // none of its options.
    refused(
        &["--stack", "mirror", "--leg-sectors", "8"],
        "--stack mirror needs --log-sectors",
    );
    refused(
        &["--stack", "mirror", "--log-sectors", "8"],
        "--stack mirror needs --leg-sectors",
    );
    refused(
        &[&mirror[..], &["--data-sectors", "8"]].concat(),
        "--data-sectors is not an option of --stack mirror",
    );
    refused(
        &[&mirror[..], &["--cow-sectors", "8"]].concat(),
        "--cow-sectors is not an option of --stack mirror",
    );
    for (opt, value) in [
        ("--log-sectors", "8"),
        ("--leg-sectors", "8"),
        ("--legs", "2"),
        ("--region-size", "1024"),
        ("--mirror-target", "mirror"),
        ("--resync-timeout", "10"),
    ] {
        let want = format!("{opt} is not an option of --stack thin");
        refused(
            &[
                "--meta-sectors",
                "8",
                "--data-sectors",
                "8",
                "--thin-sectors",
                "8",
                opt,
                value,
            ],
            &want,
        );
        let want = format!("{opt} is not an option of --stack snapshot");
        refused(
            &[
                "--stack",
                "snapshot",
                "--origin-sectors",
                "8",
                "--cow-sectors",
                "8",
                opt,
                value,
            ],
            &want,
        );
    }
    refused(
        &[&mirror[..], &["--legs", "1"]].concat(),
        "a mirror has two legs or more, not 1",
    );
    // Complete options (the defaults, or all of them) get as far as the journal.
    for extra in [
        &[][..],
        &[
            "--legs",
            "3",
            "--region-size",
            "512",
            "--mirror-target",
            "orion-mirror",
            "--resync-timeout",
            "20",
        ][..],
    ] {
        let (rc, _, err) = walk(&[&mirror[..], extra].concat());
        assert_eq!(rc, 3, "{extra:?}: {err}");
        assert!(err.contains("state"), "{err}");
    }
}
