// SPDX-License-Identifier: GPL-2.0 OR MIT

//! The writer behind `dmsetup status`, `dmsetup table` and message replies.
//!
//! It behaves like the C `DMEMIT`: output is cut at `maxlen - 1` bytes and always
//! NUL-terminated, so dm core sees a full buffer and retries with a larger one.

use super::target::TargetRef;
use core::fmt;
use kernel::ffi::{c_char, c_uint};

/// Appends formatted text to dm core's result buffer without ever overrunning it.
pub struct StatusWriter<'a> {
    buf: &'a mut [u8],
    pos: usize,
}

impl<'a> StatusWriter<'a> {
    /// # Safety
    ///
    /// - `result` is valid for writes of `maxlen` bytes for `'a` (or `maxlen` is 0).
    pub(crate) unsafe fn from_raw(result: *mut c_char, maxlen: c_uint) -> Self {
        let buf: &'a mut [u8] = if result.is_null() || maxlen == 0 {
            &mut []
        } else {
            // SAFETY: the caller guarantees `maxlen` writable bytes at `result` for `'a`.
            unsafe { core::slice::from_raw_parts_mut(result.cast::<u8>(), maxlen as usize) }
        };
        let mut w = Self { buf, pos: 0 };
        w.terminate();
        w
    }

    fn terminate(&mut self) {
        if let Some(b) = self.buf.get_mut(self.pos) {
            *b = 0;
        }
    }

    /// Whether nothing has been written.
    pub fn is_empty(&self) -> bool {
        self.pos == 0
    }

    /// Appends formatted text (the `DMEMIT` of C targets).
    pub fn emit(&mut self, args: fmt::Arguments<'_>) {
        // `write_str` never fails: it truncates instead.
        let _ = fmt::Write::write_fmt(self, args);
    }

    /// Appends `target_name=...,target_version=x.y.z`, which opens every IMA status line.
    pub fn target_name_version(&mut self, ti: &TargetRef) {
        let [major, minor, patch] = ti.type_version();
        self.emit(format_args!(
            "target_name={},target_version={}.{}.{}",
            ti.type_name(),
            major,
            minor,
            patch
        ));
    }
}

impl fmt::Write for StatusWriter<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        // Keep the last byte for the terminating NUL.
        let room = self.buf.len().saturating_sub(1).saturating_sub(self.pos);
        let n = s.len().min(room);
        self.buf[self.pos..self.pos + n].copy_from_slice(&s.as_bytes()[..n]);
        self.pos += n;
        self.terminate();
        Ok(())
    }
}
