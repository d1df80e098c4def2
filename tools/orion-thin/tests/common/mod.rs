// SPDX-License-Identifier: GPL-2.0 OR MIT

//! Shared helpers of the integration tests: a seeded generator, the real
//! thin-provisioning-tools, and a model of pool metadata.

#![allow(dead_code)]

use orion_thin::xml::{Device, Mapping, Metadata};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

/// xorshift64*: reproducible from a seed, no dependency.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }

    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// Scales a default count by `ORION_TEST_SCALE` (the flag for longer runs).
pub fn scaled(n: u64) -> u64 {
    let scale: u64 = std::env::var("ORION_TEST_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    n * scale.max(1)
}

/// The output of a real tool.
pub struct ToolRun {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

pub fn tool(name: &str, args: &[&str]) -> ToolRun {
    let out = Command::new(name)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {name} (install thin-provisioning-tools): {e}"));
    ToolRun {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

pub fn thin_check(path: &Path) -> ToolRun {
    tool("thin_check", &[path.to_str().unwrap()])
}

pub fn thin_dump(path: &Path) -> String {
    let r = tool("thin_dump", &[path.to_str().unwrap()]);
    assert!(r.ok, "thin_dump failed: {}", r.stderr);
    r.stdout
}

/// A sparse file of `mib` MiB.
pub fn sparse_file(dir: &Path, name: &str, mib: u64) -> std::path::PathBuf {
    let p = dir.join(name);
    let f = std::fs::File::create(&p).unwrap();
    f.set_len(mib << 20).unwrap();
    p
}

/// What the metadata should say, kept by the tests beside the real thing.
#[derive(Clone, Debug, Default)]
pub struct Model {
    pub time: u32,
    pub transaction: u64,
    pub data_block_size: u32,
    pub nr_data_blocks: u64,
    /// Device → (transaction, creation time, snap time, vblock → (dblock, time)).
    pub devices: BTreeMap<u64, ModelDevice>,
}

#[derive(Clone, Debug, Default)]
pub struct ModelDevice {
    pub transaction: u64,
    pub creation_time: u32,
    pub snap_time: u32,
    pub mappings: BTreeMap<u64, (u64, u32)>,
}

impl Model {
    /// The XML form, with runs merged as thin_dump merges them.
    pub fn to_metadata(&self) -> Metadata {
        Metadata {
            uuid: String::new(),
            time: self.time,
            transaction: self.transaction,
            flags: 0,
            version: 2,
            data_block_size: self.data_block_size,
            nr_data_blocks: self.nr_data_blocks,
            devices: self
                .devices
                .iter()
                .map(|(id, d)| {
                    let mut mappings: Vec<Mapping> = Vec::new();
                    for (&v, &(b, t)) in &d.mappings {
                        match mappings.last_mut() {
                            Some(m)
                                if m.origin + m.len == v && m.data + m.len == b && m.time == t =>
                            {
                                m.len += 1
                            }
                            _ => mappings.push(Mapping {
                                origin: v,
                                data: b,
                                len: 1,
                                time: t,
                            }),
                        }
                    }
                    Device {
                        id: *id,
                        mapped_blocks: d.mappings.len() as u64,
                        transaction: d.transaction,
                        creation_time: d.creation_time,
                        snap_time: d.snap_time,
                        mappings,
                    }
                })
                .collect(),
        }
    }

    pub fn to_xml(&self) -> String {
        let mut out = Vec::new();
        orion_thin::xml::write(&self.to_metadata(), &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }
}

/// Asserts two texts are equal, showing the first differing line instead of both texts.
pub fn assert_same_text(got: &str, want: &str, what: &str) {
    if got == want {
        return;
    }
    let g: Vec<&str> = got.lines().collect();
    let w: Vec<&str> = want.lines().collect();
    let i = g
        .iter()
        .zip(&w)
        .position(|(a, b)| a != b)
        .unwrap_or(g.len().min(w.len()));
    panic!(
        "{what}: differs at line {} (got {} lines, want {}):\n got: {:?}\nwant: {:?}",
        i + 1,
        g.len(),
        w.len(),
        g.get(i),
        w.get(i)
    );
}
