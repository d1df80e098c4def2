// SPDX-License-Identifier: GPL-2.0 OR MIT

//! The kernel log, read from `/dev/kmsg` from where a case begins: what dm core and the
//! targets said about it.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;

/// An open `/dev/kmsg`, positioned after the records already read.
pub struct Kmsg {
    file: File,
    marks: u64,
}

impl Kmsg {
    /// Opens the log positioned at its end.
    pub fn open() -> io::Result<Self> {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open("/dev/kmsg")?;
        file.seek(SeekFrom::End(0))?;
        Ok(Kmsg { file, marks: 0 })
    }

    /// Every record logged until now, complete: a record whose text lost its newline (C
    /// truncates lines past 1024 bytes) stays open until the next record, so a marker is
    /// logged and the records before it are returned.
    pub fn drain_marked(&mut self) -> Vec<String> {
        self.marks += 1;
        let mark = format!("orion-fuzz: mark {}", self.marks);
        if self.file.write_all(format!("{mark}\n").as_bytes()).is_err() {
            return self.drain();
        }
        let mut out = Vec::new();
        // The marker is in the buffer once the write returned; a few rounds cover readers
        // racing with it.
        for _ in 0..100 {
            for l in self.drain() {
                if l.contains(&mark) {
                    return out;
                }
                out.push(l);
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        out
    }

    /// The text of every record logged since the last call.
    pub fn drain(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        let mut buf = vec![0u8; 8192];
        loop {
            match self.file.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    let rec = String::from_utf8_lossy(&buf[..n]);
                    let text = rec.split_once(';').map(|(_, t)| t).unwrap_or(&rec);
                    out.push(text.lines().next().unwrap_or("").to_owned());
                }
                // EPIPE: records were overwritten before being read; go on from the next.
                Err(e) if e.raw_os_error() == Some(libc::EPIPE) => continue,
                Err(_) => break,
            }
        }
        out
    }
}

/// The `ti->error` text of dm core's "table: MAJ:MIN: TYPE: TEXT" line, without the device
/// and the type (which differ between the sides).
pub fn table_error(lines: &[String]) -> Option<String> {
    lines.iter().find_map(|l| {
        let rest = l.split_once("device-mapper: table: ")?.1;
        let (_, rest) = rest.split_once(": ")?;
        let (_, text) = rest.split_once(": ")?;
        Some(text.to_owned())
    })
}

/// Whether a line reports a kernel bug: an oops, BUG, WARN, KASAN, lockdep or leak report.
pub fn is_bug_report(line: &str) -> bool {
    [
        "BUG:",
        "WARNING:",
        "Oops",
        "KASAN",
        "UBSAN",
        "possible circular locking",
        "inconsistent lock state",
        "unreferenced object",
        "Call Trace",
        "kernel BUG",
    ]
    .iter()
    .any(|p| line.contains(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_error_drops_device_and_type() {
        let l = vec![
            "device-mapper: ioctl: 4.48.0-ioctl".to_owned(),
            "device-mapper: table: 253:3: orion-thin-pool: Error opening metadata block device (-EINVAL)".to_owned(),
        ];
        assert_eq!(
            table_error(&l).as_deref(),
            Some("Error opening metadata block device (-EINVAL)")
        );
        assert_eq!(table_error(&l[..1]), None);
    }
}
