// SPDX-License-Identifier: GPL-2.0 OR MIT

//! The device-mapper ioctl interface: one safe handle on `/dev/mapper/control` with a
//! method per ioctl. Every `unsafe` of orion-lvm is in this file.
//!
//! UAPI header: `include/uapi/linux/dm-ioctl.h`. Each call passes a buffer that starts
//! with `struct dm_ioctl` (312 bytes) followed by the call's data; the kernel writes its
//! answer into the same buffer and sets `DM_BUFFER_FULL_FLAG` when it needs a larger one.

#![allow(unsafe_code)]

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;

const HEADER: usize = 312;
const NAME_LEN: usize = 128;
const UUID_LEN: usize = 129;
const SPEC: usize = 40;

/// Interface version we speak.
const VERSION: [u32; 3] = [4, 0, 0];

/// `DM_READONLY_FLAG`.
pub const READONLY: u32 = 1 << 0;
/// `DM_SUSPEND_FLAG`.
pub const SUSPEND: u32 = 1 << 1;
/// `DM_STATUS_TABLE_FLAG`: table rather than status.
pub const STATUS_TABLE: u32 = 1 << 4;
/// `DM_ACTIVE_PRESENT_FLAG`.
pub const ACTIVE_PRESENT: u32 = 1 << 5;
/// `DM_INACTIVE_PRESENT_FLAG`.
pub const INACTIVE_PRESENT: u32 = 1 << 6;
const BUFFER_FULL: u32 = 1 << 8;
/// `DM_NOFLUSH_FLAG`: suspend without flushing queued I/O.
pub const NOFLUSH: u32 = 1 << 11;

#[derive(Clone, Copy)]
enum Cmd {
    Version = 0,
    ListDevices = 2,
    DevCreate = 3,
    DevRemove = 4,
    DevRename = 5,
    DevSuspend = 6,
    DevStatus = 7,
    DevWait = 8,
    TableLoad = 9,
    TableStatus = 12,
    ListVersions = 13,
    TargetMsg = 14,
    DevArmPoll = 16,
}

impl Cmd {
    /// `_IOWR(0xfd, cmd, struct dm_ioctl)`.
    fn request(self) -> libc::c_ulong {
        (3 << 30) | ((HEADER as libc::c_ulong) << 16) | (0xfd << 8) | self as libc::c_ulong
    }

    fn name(self) -> &'static str {
        match self {
            Cmd::Version => "DM_VERSION",
            Cmd::ListDevices => "DM_LIST_DEVICES",
            Cmd::DevCreate => "DM_DEV_CREATE",
            Cmd::DevRemove => "DM_DEV_REMOVE",
            Cmd::DevRename => "DM_DEV_RENAME",
            Cmd::DevSuspend => "DM_DEV_SUSPEND",
            Cmd::DevStatus => "DM_DEV_STATUS",
            Cmd::DevWait => "DM_DEV_WAIT",
            Cmd::TableLoad => "DM_TABLE_LOAD",
            Cmd::TableStatus => "DM_TABLE_STATUS",
            Cmd::ListVersions => "DM_LIST_VERSIONS",
            Cmd::TargetMsg => "DM_TARGET_MSG",
            Cmd::DevArmPoll => "DM_DEV_ARM_POLL",
        }
    }
}

/// A device-mapper ioctl that failed.
#[derive(Debug, thiserror::Error)]
#[error("{call} on {device:?}: {err}")]
pub struct DmError {
    /// The ioctl.
    pub call: &'static str,
    /// The device it was about ("" for global calls).
    pub device: String,
    /// What the kernel said.
    pub err: io::Error,
}

/// Which device a call is about.
#[derive(Clone, Debug)]
pub enum DevId {
    /// By name.
    Name(String),
    /// By DM UUID.
    Uuid(String),
}

impl DevId {
    fn label(&self) -> String {
        match self {
            DevId::Name(n) | DevId::Uuid(n) => n.clone(),
        }
    }
}

/// One line of a table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// First sector.
    pub start: u64,
    /// Length in sectors.
    pub len: u64,
    /// Target type.
    pub kind: String,
    /// Parameters.
    pub params: String,
}

/// What DM_DEV_STATUS reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DevInfo {
    /// Major number.
    pub major: u32,
    /// Minor number.
    pub minor: u32,
    /// Flags (`SUSPEND`, `ACTIVE_PRESENT`, ...).
    pub flags: u32,
    /// Openers.
    pub open_count: i32,
    /// Targets in the live table.
    pub target_count: u32,
    /// The device's event counter (raised by the targets' `dm_table_event`).
    pub event_nr: u32,
    /// Name.
    pub name: String,
    /// UUID.
    pub uuid: String,
}

/// The header fields a call sets.
#[derive(Default, Clone, Copy)]
struct Request<'a> {
    dev: Option<&'a DevId>,
    uuid: Option<&'a str>,
    flags: u32,
    target_count: u32,
    event_nr: u32,
}

impl<'a> Request<'a> {
    fn on(dev: &'a DevId, flags: u32) -> Self {
        Request {
            dev: Some(dev),
            flags,
            ..Request::default()
        }
    }
}

/// An open `/dev/mapper/control`.
pub struct Control {
    file: File,
}

fn put_str(buf: &mut [u8], off: usize, max: usize, s: &str) -> io::Result<()> {
    let b = s.as_bytes();
    if b.len() >= max || b.contains(&0) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("name {s:?} too long"),
        ));
    }
    buf[off..off + b.len()].copy_from_slice(b);
    Ok(())
}

fn get_str(buf: &[u8]) -> String {
    let end = buf.iter().position(|c| *c == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

fn u32_at(b: &[u8], o: usize) -> u32 {
    u32::from_ne_bytes(b[o..o + 4].try_into().unwrap_or([0; 4]))
}

fn u64_at(b: &[u8], o: usize) -> u64 {
    u64::from_ne_bytes(b[o..o + 8].try_into().unwrap_or([0; 8]))
}

impl Control {
    /// Opens the control device (creating its node if devtmpfs has not).
    pub fn open() -> io::Result<Control> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/mapper/control")?;
        Ok(Control { file })
    }

    /// Runs one ioctl with `data` after the header; grows the buffer while the kernel says
    /// it is full. Returns the buffer as the kernel left it.
    fn call(&self, cmd: Cmd, req: Request<'_>, data: &[u8]) -> Result<Vec<u8>, DmError> {
        let fail = |err| DmError {
            call: cmd.name(),
            device: req.dev.map(DevId::label).unwrap_or_default(),
            err,
        };
        let mut size = (HEADER + data.len()).max(16 * 1024);
        loop {
            let mut buf = vec![0u8; size];
            for (i, v) in VERSION.iter().enumerate() {
                buf[i * 4..i * 4 + 4].copy_from_slice(&v.to_ne_bytes());
            }
            buf[12..16].copy_from_slice(&(size as u32).to_ne_bytes());
            buf[16..20].copy_from_slice(&(HEADER as u32).to_ne_bytes());
            buf[20..24].copy_from_slice(&req.target_count.to_ne_bytes());
            buf[28..32].copy_from_slice(&req.flags.to_ne_bytes());
            buf[32..36].copy_from_slice(&req.event_nr.to_ne_bytes());
            match req.dev {
                Some(DevId::Name(n)) => put_str(&mut buf, 48, NAME_LEN, n).map_err(fail)?,
                Some(DevId::Uuid(u)) => {
                    put_str(&mut buf, 48 + NAME_LEN, UUID_LEN, u).map_err(fail)?
                }
                None => {}
            }
            if let Some(u) = req.uuid {
                put_str(&mut buf, 48 + NAME_LEN, UUID_LEN, u).map_err(fail)?;
            }
            buf[HEADER..HEADER + data.len()].copy_from_slice(data);
            // SAFETY: `buf` is a live, exclusively borrowed allocation of `size` bytes and
            // `data_size` in its header says so, so the kernel reads and writes only inside
            // it; the request number encodes the header size and direction as the UAPI
            // defines them.
            let r = unsafe { libc::ioctl(self.file.as_raw_fd(), cmd.request(), buf.as_mut_ptr()) };
            if r < 0 {
                return Err(fail(io::Error::last_os_error()));
            }
            if u32_at(&buf, 28) & BUFFER_FULL != 0 {
                size *= 4;
                if size > 64 << 20 {
                    return Err(fail(io::Error::other("reply larger than 64 MiB")));
                }
                continue;
            }
            return Ok(buf);
        }
    }

    /// The kernel's ioctl interface version.
    pub fn version(&self) -> Result<[u32; 3], DmError> {
        let b = self.call(Cmd::Version, Request::default(), &[])?;
        Ok([u32_at(&b, 0), u32_at(&b, 4), u32_at(&b, 8)])
    }

    /// Registered target types and their versions.
    pub fn target_versions(&self) -> Result<Vec<(String, [u32; 3])>, DmError> {
        let b = self.call(Cmd::ListVersions, Request::default(), &[])?;
        let mut out = Vec::new();
        let mut off = u32_at(&b, 16) as usize;
        let end = u32_at(&b, 12) as usize;
        // struct dm_target_versions { u32 next; u32 version[3]; char name[]; }
        while off + 16 < end.min(b.len()) {
            let next = u32_at(&b, off) as usize;
            let v = [
                u32_at(&b, off + 4),
                u32_at(&b, off + 8),
                u32_at(&b, off + 12),
            ];
            out.push((get_str(&b[off + 16..]), v));
            if next == 0 {
                break;
            }
            off += next;
        }
        Ok(out)
    }

    /// Names of all dm devices.
    pub fn list(&self) -> Result<Vec<String>, DmError> {
        let b = self.call(Cmd::ListDevices, Request::default(), &[])?;
        let mut out = Vec::new();
        let mut off = u32_at(&b, 16) as usize;
        // struct dm_name_list { u64 dev; u32 next; char name[]; }
        if u32_at(&b, 12) as usize <= off {
            return Ok(out);
        }
        while off + 12 < b.len() {
            let next = u32_at(&b, off + 8) as usize;
            let name = get_str(&b[off + 12..]);
            if !name.is_empty() {
                out.push(name);
            }
            if next == 0 {
                break;
            }
            off += next;
        }
        Ok(out)
    }

    /// Creates an empty device.
    pub fn create(&self, name: &str, uuid: &str) -> Result<DevInfo, DmError> {
        let dev = DevId::Name(name.to_owned());
        let req = Request {
            dev: Some(&dev),
            uuid: Some(uuid),
            ..Request::default()
        };
        self.call(Cmd::DevCreate, req, &[]).map(|b| info_of(&b))
    }

    /// Loads `table` as the inactive table of `dev`.
    pub fn load(&self, dev: &DevId, table: &[Target], readonly: bool) -> Result<(), DmError> {
        let mut data = Vec::new();
        for t in table {
            let mut spec = vec![0u8; SPEC];
            spec[0..8].copy_from_slice(&t.start.to_ne_bytes());
            spec[8..16].copy_from_slice(&t.len.to_ne_bytes());
            let kind = t.kind.as_bytes();
            if kind.len() >= 16 {
                return Err(DmError {
                    call: "DM_TABLE_LOAD",
                    device: dev.label(),
                    err: io::Error::new(io::ErrorKind::InvalidInput, "target type name too long"),
                });
            }
            spec[24..24 + kind.len()].copy_from_slice(kind);
            spec.extend_from_slice(t.params.as_bytes());
            spec.push(0);
            while !spec.len().is_multiple_of(8) {
                spec.push(0);
            }
            let next = spec.len() as u32;
            spec[20..24].copy_from_slice(&next.to_ne_bytes());
            data.extend_from_slice(&spec);
        }
        let req = Request {
            dev: Some(dev),
            flags: if readonly { READONLY } else { 0 },
            target_count: table.len() as u32,
            ..Request::default()
        };
        self.call(Cmd::TableLoad, req, &data).map(|_| ())
    }

    /// Suspends `dev` (flushing I/O unless `noflush`).
    pub fn suspend(&self, dev: &DevId, noflush: bool) -> Result<(), DmError> {
        let f = SUSPEND | if noflush { NOFLUSH } else { 0 };
        self.call(Cmd::DevSuspend, Request::on(dev, f), &[])
            .map(|_| ())
    }

    /// Resumes `dev`, swapping in its inactive table if it has one.
    pub fn resume(&self, dev: &DevId) -> Result<DevInfo, DmError> {
        self.call(Cmd::DevSuspend, Request::on(dev, 0), &[])
            .map(|b| info_of(&b))
    }

    /// Removes `dev`.
    pub fn remove(&self, dev: &DevId) -> Result<(), DmError> {
        self.call(Cmd::DevRemove, Request::on(dev, 0), &[])
            .map(|_| ())
    }

    /// Renames `dev` to `new_name` (the new name follows the header, NUL-terminated).
    pub fn rename(&self, dev: &DevId, new_name: &str) -> Result<(), DmError> {
        if new_name.is_empty() || new_name.len() >= NAME_LEN || new_name.contains('\0') {
            return Err(DmError {
                call: Cmd::DevRename.name(),
                device: dev.label(),
                err: io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("bad new name {new_name:?}"),
                ),
            });
        }
        let mut data = new_name.as_bytes().to_vec();
        data.push(0);
        self.call(Cmd::DevRename, Request::on(dev, 0), &data)
            .map(|_| ())
    }

    /// Information about `dev`.
    pub fn info(&self, dev: &DevId) -> Result<DevInfo, DmError> {
        self.call(Cmd::DevStatus, Request::on(dev, 0), &[])
            .map(|b| info_of(&b))
    }

    fn table_status(&self, dev: &DevId, flags: u32) -> Result<Vec<Target>, DmError> {
        let b = self.call(Cmd::TableStatus, Request::on(dev, flags), &[])?;
        Ok(targets_of(&b))
    }

    /// DM_DEV_WAIT: sleeps until the event counter of `dev` differs from `event_nr`
    /// (at once when it already does), then returns the device's information and status
    /// lines. The kernel holds a reference on the device while it sleeps, so a
    /// `DM_DEV_REMOVE` of it waits for the next event: callers that must not block
    /// removals only call this when [`DevInfo::event_nr`] has already moved.
    pub fn wait_event(
        &self,
        dev: &DevId,
        event_nr: u32,
    ) -> Result<(DevInfo, Vec<Target>), DmError> {
        let req = Request {
            event_nr,
            ..Request::on(dev, 0)
        };
        let b = self.call(Cmd::DevWait, req, &[])?;
        Ok((info_of(&b), targets_of(&b)))
    }

    /// DM_DEV_ARM_POLL: from now on, [`Control::poll_events`] wakes when any device
    /// raises an event (or is created, removed or renamed).
    pub fn arm_events(&self) -> Result<(), DmError> {
        self.call(Cmd::DevArmPoll, Request::default(), &[])
            .map(|_| ())
    }

    /// Waits up to `timeout` for an event since the last [`Control::arm_events`];
    /// returns whether one came.
    pub fn poll_events(&self, timeout: std::time::Duration) -> Result<bool, DmError> {
        let mut fds = [libc::pollfd {
            fd: self.file.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
        let ms = timeout.as_millis().min(i32::MAX as u128) as libc::c_int;
        // SAFETY: `fds` is a live array of one initialised pollfd, and the length passed
        // is its length; poll only writes `revents` inside it.
        let r = unsafe { libc::poll(fds.as_mut_ptr(), 1, ms) };
        if r < 0 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::Interrupted {
                return Ok(false);
            }
            return Err(DmError {
                call: "poll",
                device: "/dev/mapper/control".into(),
                err,
            });
        }
        Ok(r > 0 && fds[0].revents & libc::POLLIN != 0)
    }
}

/// The target lines after the header of a DM_TABLE_STATUS or DM_DEV_WAIT reply.
fn targets_of(b: &[u8]) -> Vec<Target> {
    let count = u32_at(b, 20);
    let mut off = u32_at(b, 16) as usize;
    let mut out = Vec::new();
    for _ in 0..count {
        if off + SPEC > b.len() {
            break;
        }
        let next = u32_at(b, off + 20) as usize;
        out.push(Target {
            start: u64_at(b, off),
            len: u64_at(b, off + 8),
            kind: get_str(&b[off + 24..off + 40]),
            params: get_str(&b[off + SPEC..]),
        });
        // `next` counts from the start of the data area for table/status replies.
        off = u32_at(b, 16) as usize + next;
    }
    out
}

impl Control {
    /// The live table of `dev`.
    pub fn table(&self, dev: &DevId) -> Result<Vec<Target>, DmError> {
        self.table_status(dev, STATUS_TABLE)
    }

    /// The status lines of `dev`.
    pub fn status(&self, dev: &DevId) -> Result<Vec<Target>, DmError> {
        self.table_status(dev, 0)
    }

    /// Sends `msg` to the target at `sector` of `dev`.
    pub fn message(&self, dev: &DevId, sector: u64, msg: &str) -> Result<(), DmError> {
        let mut data = sector.to_ne_bytes().to_vec();
        data.extend_from_slice(msg.as_bytes());
        data.push(0);
        self.call(Cmd::TargetMsg, Request::on(dev, 0), &data)
            .map(|_| ())
    }
}

fn info_of(b: &[u8]) -> DevInfo {
    let dev = u64_at(b, 40);
    DevInfo {
        // The kernel's huge_encode_dev layout.
        major: ((dev >> 8) & 0xfff) as u32,
        minor: ((dev & 0xff) | ((dev >> 12) & 0xfff_ff00)) as u32,
        flags: u32_at(b, 28),
        open_count: u32_at(b, 24) as i32,
        target_count: u32_at(b, 20),
        event_nr: u32_at(b, 32),
        name: get_str(&b[48..48 + NAME_LEN]),
        uuid: get_str(&b[48 + NAME_LEN..48 + NAME_LEN + UUID_LEN]),
    }
}

/// Creates the block-device node `path` for `major:minor` (what udev would do), replacing
/// whatever is there.
pub fn make_node(path: &std::path::Path, major: u32, minor: u32) -> io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let _ = std::fs::remove_file(path);
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in device path"))?;
    let dev = libc::makedev(major, minor);
    // SAFETY: `c` is a NUL-terminated path that outlives the call; mknod only reads it.
    let r = unsafe { libc::mknod(c.as_ptr(), libc::S_IFBLK | 0o600, dev) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
