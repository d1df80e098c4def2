// SPDX-License-Identifier: GPL-2.0 OR MIT

//! Benchmark (not a test): restore, check and dump of pool metadata with about a million
//! mappings over several devices and snapshots, `orion-thin` beside the
//! thin-provisioning-tools binaries in one run. Prints a markdown table of times and ratios.
//!
//! Usage: `orion-thin-bench [MAPPINGS]` (default 1 000 000); `orion-thin` must sit next to
//! this binary.

use orion_thin::xml::{Device, Mapping, Metadata};
use std::path::Path;
use std::process::Command;
use std::time::Instant;

/// Four origins, each with a snapshot sharing most of its mappings and a few of its own.
fn generate(target: u64) -> Metadata {
    let per_origin = target * 10 / 72;
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut rnd = move |n: u64| {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x9e37_79b9_7f4a_7c15) % n
    };
    let mut next_data = 0u64;
    let mut devices = Vec::new();
    for o in 0..4u64 {
        let mut origin = Vec::new();
        let mut v = 0;
        let mut n = 0;
        while n < per_origin {
            let len = 1 + rnd(64);
            origin.push(Mapping {
                origin: v,
                data: next_data,
                len,
                time: 0,
            });
            v += len + rnd(8);
            next_data += len + rnd(3);
            n += len;
        }
        let mut snap: Vec<Mapping> = Vec::new();
        for m in &origin {
            if rnd(10) < 8 {
                snap.push(m.clone());
            } else {
                // Overwritten in the snapshot after it was taken.
                snap.push(Mapping {
                    origin: m.origin,
                    data: next_data,
                    len: m.len,
                    time: 1,
                });
                next_data += m.len;
            }
        }
        for (id, maps, ctime) in [(o, origin, 0), (o + 4, snap, 1)] {
            devices.push(Device {
                id,
                mapped_blocks: maps.iter().map(|m| m.len).sum(),
                transaction: 0,
                creation_time: ctime,
                snap_time: 1,
                mappings: maps,
            });
        }
    }
    devices.sort_by_key(|d| d.id);
    Metadata {
        uuid: String::new(),
        time: 1,
        transaction: 1,
        flags: 0,
        version: 2,
        data_block_size: 128,
        nr_data_blocks: next_data + 1024,
        devices,
    }
}

fn timed(cmd: &mut Command) -> f64 {
    let t = Instant::now();
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let secs = t.elapsed().as_secs_f64();
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    secs
}

fn sparse(path: &Path, bytes: u64) {
    let f = std::fs::File::create(path).expect("create metadata file");
    f.set_len(bytes).expect("size metadata file");
}

fn main() {
    let target: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let ours = std::env::current_exe()
        .expect("own path")
        .with_file_name("orion-thin");
    let dir = std::env::temp_dir().join(format!("orion-thin-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let md = generate(target);
    let total: u64 = md.devices.iter().map(|d| d.mapped_blocks).sum();
    let xml = dir.join("in.xml");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&xml).expect("xml"));
    orion_thin::xml::write(&md, &mut f).expect("write xml");
    drop(f);
    let (a, b) = (dir.join("theirs.bin"), dir.join("ours.bin"));
    sparse(&a, 512 << 20);
    sparse(&b, 512 << 20);
    let s = |p: &Path| p.to_str().unwrap().to_owned();
    let rows = [
        (
            "restore",
            timed(Command::new("thin_restore").args(["-i", &s(&xml), "-o", &s(&a)])),
            timed(Command::new(&ours).args(["restore", "-i", &s(&xml), "-o", &s(&b)])),
        ),
        (
            "check",
            timed(Command::new("thin_check").arg(s(&a))),
            timed(Command::new(&ours).args(["check", &s(&b)])),
        ),
        (
            "dump",
            timed(Command::new("thin_dump").args([&s(&a), "-o", &s(&dir.join("theirs.xml"))])),
            timed(Command::new(&ours).args(["dump", &s(&b), "-o", &s(&dir.join("ours.xml"))])),
        ),
    ];
    // Adjacent runs of the input come out merged, so the dumps are compared with each other.
    let same =
        std::fs::read(dir.join("theirs.xml")).ok() == std::fs::read(dir.join("ours.xml")).ok();
    println!();
    println!(
        "### thin metadata: {total} mappings, {} devices (4 origins, 4 snapshots)",
        md.devices.len()
    );
    println!();
    println!("| operation | thin-provisioning-tools (s) | orion-thin (s) | ratio ours / theirs |");
    println!("|-----------|-----------------------------|----------------|---------------------|");
    for (name, theirs, ours) in rows {
        println!(
            "| {name} | {theirs:.3} | {ours:.3} | {:.2} |",
            ours / theirs
        );
    }
    println!();
    println!(
        "The two dumps are {}. Ratio below 1 means ours is faster.",
        if same { "identical" } else { "DIFFERENT" }
    );
    if same {
        let _ = std::fs::remove_dir_all(&dir);
    } else {
        eprintln!("kept {} for inspection", dir.display());
    }
    if !same {
        std::process::exit(1);
    }
}
