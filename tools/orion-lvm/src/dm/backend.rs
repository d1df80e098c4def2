// SPDX-License-Identifier: GPL-2.0 OR MIT

//! The device-mapper backend activation and the commands drive: the ioctls of
//! [`Control`] and the few things udev would otherwise do (device nodes, `/dev/VG/LV`
//! links) plus module loading and first-sector I/O, behind one trait so that
//! planning and ordering run the same against the kernel and against
//! [`super::recording::RecordingDm`] on a host without device-mapper.

use super::ioctl::{make_node, Control, DevId, DevInfo, DmError, Target};
use std::io;
use std::path::Path;

/// A device-mapper implementation: the kernel through [`Control`], or a simulation.
pub trait DmBackend {
    /// Registered target types and their versions.
    fn target_versions(&self) -> Result<Vec<(String, [u32; 3])>, DmError>;
    /// Names of all dm devices.
    fn list(&self) -> Result<Vec<String>, DmError>;
    /// Creates an empty device.
    fn create(&self, name: &str, uuid: &str) -> Result<DevInfo, DmError>;
    /// Loads `table` as the inactive table of `dev`.
    fn load(&self, dev: &DevId, table: &[Target], readonly: bool) -> Result<(), DmError>;
    /// Suspends `dev` (flushing I/O unless `noflush`).
    fn suspend(&self, dev: &DevId, noflush: bool) -> Result<(), DmError>;
    /// Resumes `dev`, swapping in its inactive table if it has one.
    fn resume(&self, dev: &DevId) -> Result<DevInfo, DmError>;
    /// Removes `dev`.
    fn remove(&self, dev: &DevId) -> Result<(), DmError>;
    /// Renames `dev` to `new_name` (DM_DEV_RENAME; the UUID stays).
    fn rename(&self, dev: &DevId, new_name: &str) -> Result<(), DmError>;
    /// Information about `dev`.
    fn info(&self, dev: &DevId) -> Result<DevInfo, DmError>;
    /// The live table of `dev`.
    fn table(&self, dev: &DevId) -> Result<Vec<Target>, DmError>;
    /// The status lines of `dev`.
    fn status(&self, dev: &DevId) -> Result<Vec<Target>, DmError>;
    /// Sends `msg` to the target at `sector` of `dev`.
    fn message(&self, dev: &DevId, sector: u64, msg: &str) -> Result<(), DmError>;
    /// DM_DEV_WAIT: the information and status lines of `dev` once its event counter
    /// differs from `event_nr`.
    fn wait_event(&self, dev: &DevId, event_nr: u32) -> Result<(DevInfo, Vec<Target>), DmError>;
    /// Arms [`DmBackend::poll_events`] (DM_DEV_ARM_POLL).
    fn arm_events(&self) -> Result<(), DmError>;
    /// Waits up to `timeout` for a dm event since [`DmBackend::arm_events`]; whether one came.
    fn poll_events(&self, timeout: std::time::Duration) -> Result<bool, DmError>;
    /// Creates `/dev/mapper/NAME` for `major:minor` (what udev would do).
    fn make_node(&self, name: &str, major: u32, minor: u32) -> io::Result<()>;
    /// Removes `/dev/mapper/NAME`.
    fn remove_node(&self, name: &str);
    /// Points `/dev/VG/LV` at the LV's dm device.
    fn link_lv(&self, vg: &str, lv: &str) -> io::Result<()>;
    /// Removes `/dev/VG/LV` (and `/dev/VG` once empty).
    fn unlink_lv(&self, vg: &str, lv: &str);
    /// Loads kernel module `module` (as LVM2 runs modprobe).
    fn load_module(&self, module: &str);
    /// Zeroes the first `len` bytes of dm device `name` and syncs them.
    fn zero_start(&self, name: &str, len: usize) -> io::Result<()>;
    /// Reads the first `buf.len()` bytes of dm device `name`.
    fn read_start(&self, name: &str, buf: &mut [u8]) -> io::Result<()>;
    /// The path of dm device `name`, for checkers that read it themselves.
    fn device_path(&self, name: &str) -> std::path::PathBuf {
        Path::new("/dev/mapper").join(name)
    }
}

impl DmBackend for Control {
    fn target_versions(&self) -> Result<Vec<(String, [u32; 3])>, DmError> {
        Control::target_versions(self)
    }
    fn list(&self) -> Result<Vec<String>, DmError> {
        Control::list(self)
    }
    fn create(&self, name: &str, uuid: &str) -> Result<DevInfo, DmError> {
        Control::create(self, name, uuid)
    }
    fn load(&self, dev: &DevId, table: &[Target], readonly: bool) -> Result<(), DmError> {
        Control::load(self, dev, table, readonly)
    }
    fn suspend(&self, dev: &DevId, noflush: bool) -> Result<(), DmError> {
        Control::suspend(self, dev, noflush)
    }
    fn resume(&self, dev: &DevId) -> Result<DevInfo, DmError> {
        Control::resume(self, dev)
    }
    fn remove(&self, dev: &DevId) -> Result<(), DmError> {
        Control::remove(self, dev)
    }
    fn rename(&self, dev: &DevId, new_name: &str) -> Result<(), DmError> {
        Control::rename(self, dev, new_name)
    }
    fn info(&self, dev: &DevId) -> Result<DevInfo, DmError> {
        Control::info(self, dev)
    }
    fn table(&self, dev: &DevId) -> Result<Vec<Target>, DmError> {
        Control::table(self, dev)
    }
    fn status(&self, dev: &DevId) -> Result<Vec<Target>, DmError> {
        Control::status(self, dev)
    }
    fn message(&self, dev: &DevId, sector: u64, msg: &str) -> Result<(), DmError> {
        Control::message(self, dev, sector, msg)
    }
    fn wait_event(&self, dev: &DevId, event_nr: u32) -> Result<(DevInfo, Vec<Target>), DmError> {
        Control::wait_event(self, dev, event_nr)
    }
    fn arm_events(&self) -> Result<(), DmError> {
        Control::arm_events(self)
    }
    fn poll_events(&self, timeout: std::time::Duration) -> Result<bool, DmError> {
        Control::poll_events(self, timeout)
    }
    fn make_node(&self, name: &str, major: u32, minor: u32) -> io::Result<()> {
        make_node(&Path::new("/dev/mapper").join(name), major, minor)
    }
    fn remove_node(&self, name: &str) {
        let _ = std::fs::remove_file(Path::new("/dev/mapper").join(name));
    }
    fn link_lv(&self, vg: &str, lv: &str) -> io::Result<()> {
        let vg_dir = Path::new("/dev").join(vg);
        std::fs::create_dir_all(&vg_dir)?;
        let link = vg_dir.join(lv);
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(
            Path::new("../mapper").join(super::activate::dm_name(vg, lv)),
            &link,
        )
    }
    fn unlink_lv(&self, vg: &str, lv: &str) {
        let _ = std::fs::remove_file(Path::new("/dev").join(vg).join(lv));
        let _ = std::fs::remove_dir(Path::new("/dev").join(vg));
    }
    fn load_module(&self, module: &str) {
        let _ = std::process::Command::new("modprobe")
            .arg(module)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
    fn zero_start(&self, name: &str, len: usize) -> io::Result<()> {
        use std::os::unix::fs::FileExt;
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(self.device_path(name))?;
        f.write_all_at(&vec![0u8; len], 0)?;
        f.sync_all()
    }
    fn read_start(&self, name: &str, buf: &mut [u8]) -> io::Result<()> {
        use std::os::unix::fs::FileExt;
        std::fs::File::open(self.device_path(name))?.read_exact_at(buf, 0)
    }
}
