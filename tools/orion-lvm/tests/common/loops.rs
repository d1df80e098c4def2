// SPDX-License-Identifier: GPL-2.0 OR MIT

//! Helpers of the tests against real LVM2: loop devices, running orion-lvm and real LVM2
//! (restricted to the test's devices), reading metadata back. Included by each test file
//! with `#[path]`; not every file uses every helper.

use orion_lvm::{pv::Pv, vg::Vg};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A loop device over a sparse file; detached when dropped.
pub struct Loop(pub String);

impl Loop {
    /// A loop device over `dir/name` of `mib` MiB.
    pub fn new(dir: &Path, name: &str, mib: u64) -> Loop {
        let f = dir.join(name);
        std::fs::File::create(&f)
            .unwrap()
            .set_len(mib << 20)
            .unwrap();
        let out = Command::new("losetup")
            .args(["-f", "--show", f.to_str().unwrap()])
            .output()
            .expect("losetup (util-linux) is needed");
        assert!(
            out.status.success(),
            "this test needs loop devices (root, /dev/loop-control): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Loop(String::from_utf8(out.stdout).unwrap().trim().to_owned())
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = Command::new("losetup").args(["-d", &self.0]).status();
    }
}

/// Backups and archives of the tests go to a private directory, not /etc/lvm.
pub fn system_dir() -> PathBuf {
    std::env::temp_dir().join(format!("orion-lvm-test-{}", std::process::id()))
}

/// Runs orion-lvm, which must succeed; returns stdout.
pub fn ours(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_orion-lvm"))
        .args(args)
        .env("ORION_LVM_SYSTEM_DIR", system_dir())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "orion-lvm {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs orion-lvm, which must fail with exit code `code`; returns stderr.
pub fn ours_exits(code: i32, args: &[&str]) -> String {
    let out = ours_raw(args);
    assert_eq!(
        out.status.code(),
        Some(code),
        "orion-lvm {args:?} should exit {code}"
    );
    String::from_utf8(out.stderr).unwrap()
}

/// Runs orion-lvm, which must fail as a command (LVM2's ECMD_FAILED, 5).
pub fn ours_fails(args: &[&str]) -> String {
    ours_exits(5, args)
}

/// Runs orion-lvm with the test's system directory.
pub fn ours_raw(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_orion-lvm"))
        .args(args)
        .env("ORION_LVM_SYSTEM_DIR", system_dir())
        .output()
        .unwrap()
}

/// Runs real LVM2 restricted to `devs`: exit code, stdout, stderr.
pub fn lvm_full(cmd: &str, devs: &[&Loop], args: &[&str]) -> (Option<i32>, String, String) {
    let list: Vec<&str> = devs.iter().map(|l| l.0.as_str()).collect();
    let out = Command::new("lvm")
        .arg(cmd)
        .args(["--devices", &list.join(",")])
        .args(args)
        .env("LVM_SUPPRESS_FD_WARNINGS", "1")
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs a real LVM2 command restricted to `devs`; returns its exit status and stdout as
/// printed.
pub fn lvm_raw(cmd: &str, devs: &[&Loop], args: &[&str]) -> (bool, String) {
    let (code, out, _) = lvm_full(cmd, devs, args);
    (code == Some(0), out)
}

/// Runs a real LVM2 command restricted to `devs`; returns stdout lines, trimmed.
pub fn lvm(cmd: &str, devs: &[&Loop], args: &[&str]) -> (bool, Vec<String>) {
    let (ok, out) = lvm_raw(cmd, devs, args);
    let lines = out
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|l| !l.is_empty())
        .collect();
    (ok, lines)
}

/// The values of `field` in an LVM2-style JSON report.
pub fn json_field(json: &str, field: &str) -> Vec<String> {
    json.split(&format!("\"{field}\":\""))
        .skip(1)
        .map(|s| s.split('"').next().unwrap().to_owned())
        .collect()
}

/// The VG metadata on PV `dev`.
pub fn metadata_of(dev: &str) -> Vg {
    let pv = Pv::scan(&PathBuf::from(dev)).unwrap().unwrap();
    Vg::from_text(&pv.text().unwrap().unwrap()).unwrap()
}
