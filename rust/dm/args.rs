// SPDX-License-Identifier: GPL-2.0 OR MIT

//! Typed parsing of constructor and message arguments.
//!
//! Numbers are decimal and parsed as the C function the target uses for that argument:
//! `kstrtoull` (an optional `+`) for [`Args::next_u64`], `sscanf("%llu%c")` (digits only)
//! for [`Args::next_scanned_u64`] and feature counts. Where C's `sscanf` silently wraps a
//! number that overflows, these parsers refuse it (the documented contract: stricter).
//!
//! C header: [include/linux/device-mapper.h](srctree/include/linux/device-mapper.h)

use super::target::CtrError;
use core::{marker::PhantomData, ptr::NonNull};
use kernel::{
    ffi::{c_char, c_uint},
    prelude::*,
};

/// The remaining arguments of a table line or message, consumed front to back.
///
/// # Invariants
///
/// `argv[pos..argc]` are valid NUL-terminated strings that live for `'a`.
pub struct Args<'a> {
    argv: Option<NonNull<*mut c_char>>,
    argc: usize,
    pos: usize,
    _p: PhantomData<&'a CStr>,
}

impl<'a> Args<'a> {
    /// # Safety
    ///
    /// - `argv` points to `argc` valid NUL-terminated strings (or `argc` is 0), and the array
    ///   and the strings outlive `'a`.
    pub(crate) unsafe fn from_raw(argc: c_uint, argv: *mut *mut c_char) -> Self {
        let argv = NonNull::new(argv);
        // INVARIANT: the caller guarantees the strings; a NULL array holds none.
        Self {
            argc: if argv.is_some() { argc as usize } else { 0 },
            argv,
            pos: 0,
            _p: PhantomData,
        }
    }

    /// The number of arguments not yet consumed.
    pub fn len(&self) -> usize {
        self.argc - self.pos
    }

    /// Whether every argument has been consumed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Takes the next argument.
    #[expect(
        clippy::should_implement_trait,
        reason = "a cursor, not an iterator of owned items"
    )]
    pub fn next(&mut self) -> Option<&'a CStr> {
        let argv = self.argv?;
        if self.pos >= self.argc {
            return None;
        }
        // SAFETY: `pos < argc`, so the element is in bounds of the array.
        let s = unsafe { *argv.as_ptr().add(self.pos) };
        self.pos += 1;
        if s.is_null() {
            return None;
        }
        // SAFETY: by the type invariant the string is NUL-terminated and lives for `'a`.
        Some(unsafe { CStr::from_char_ptr(s) })
    }

    /// Takes the next argument, or fails with `msg`.
    pub fn next_str(&mut self, msg: &'static CStr) -> Result<&'a CStr, CtrError> {
        self.next().ok_or(CtrError::inval(msg))
    }

    /// Takes the next argument as a `u64`, or fails with `msg`.
    pub fn next_u64(&mut self, msg: &'static CStr) -> Result<u64, CtrError> {
        self.next()
            .and_then(|s| parse_u64(s.as_bytes()))
            .ok_or(CtrError::inval(msg))
    }

    /// Takes the next argument as a `u32`, or fails with `msg`.
    pub fn next_u32(&mut self, msg: &'static CStr) -> Result<u32, CtrError> {
        self.next()
            .and_then(|s| parse_u64(s.as_bytes()))
            .and_then(|v| u32::try_from(v).ok())
            .ok_or(CtrError::inval(msg))
    }

    /// Takes the next argument as a `u64` the way C's `sscanf("%llu%c")` reads it (digits
    /// only), or fails with `msg`.
    pub fn next_scanned_u64(&mut self, msg: &'static CStr) -> Result<u64, CtrError> {
        self.next()
            .and_then(|s| parse_scanned_u64(s.as_bytes()))
            .ok_or(CtrError::inval(msg))
    }

    /// Takes the next argument as a `u32` in `min..=max`, or fails with `msg`.
    pub fn next_u32_in(&mut self, min: u32, max: u32, msg: &'static CStr) -> Result<u32, CtrError> {
        match self.next_u32(msg)? {
            v if (min..=max).contains(&v) => Ok(v),
            _ => Err(CtrError::inval(msg)),
        }
    }

    /// Reads a count `n` in `min..=max` and takes the `n` arguments that follow as a group
    /// (the shape of `dm_read_arg_group`: optional feature arguments); fails with `msg` if the
    /// count is bad or fewer than `n` arguments remain.
    pub fn group(&mut self, min: u32, max: u32, msg: &'static CStr) -> Result<Args<'a>, CtrError> {
        // `dm_read_arg` reads the count with `sscanf("%u%c")`.
        let n = self
            .next()
            .and_then(|s| parse_scanned_u64(s.as_bytes()))
            .and_then(|v| u32::try_from(v).ok())
            .filter(|v| (min..=max).contains(v))
            .ok_or(CtrError::inval(msg))? as usize;
        if n > self.len() {
            return Err(CtrError::inval(msg));
        }
        Ok(self.group_of(n))
    }

    /// Takes the next `n` arguments (at most those left) as a group.
    pub fn group_of(&mut self, n: usize) -> Args<'a> {
        let n = n.min(self.len());
        // INVARIANT: the group is a sub-range of our remaining, valid arguments.
        let group = Args {
            argv: self.argv,
            argc: self.pos + n,
            pos: self.pos,
            _p: PhantomData,
        };
        self.pos += n;
        group
    }

    /// Fails with `msg` unless every argument has been consumed.
    pub fn expect_end(&self, msg: &'static CStr) -> Result<(), CtrError> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(CtrError::inval(msg))
        }
    }
}

/// Parses a decimal `u64`: ASCII digits with an optional leading `+` (which the C parsers also
/// take), no sign, no overflow, nothing after the digits.
pub fn parse_u64(s: &[u8]) -> Option<u64> {
    let digits = s.strip_prefix(b"+").unwrap_or(s);
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |acc, &c| {
        if !c.is_ascii_digit() {
            return None;
        }
        acc.checked_mul(10)?.checked_add(u64::from(c - b'0'))
    })
}

/// Parses a decimal `u64` as C's `sscanf("%llu%c")` accepts it: ASCII digits only (no sign),
/// nothing after them; a number that overflows is refused where `sscanf` would wrap it.
pub fn parse_scanned_u64(s: &[u8]) -> Option<u64> {
    if s.first() == Some(&b'+') {
        return None;
    }
    parse_u64(s)
}

/// An argument's bytes for a log line, as C's `%s` prints them (the kernel log escapes what
/// is not printable); bytes that are not UTF-8 become U+FFFD.
pub struct Raw<'a>(pub &'a [u8]);

impl core::fmt::Display for Raw<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let mut rest = self.0;
        loop {
            match core::str::from_utf8(rest) {
                Ok(text) => return f.write_str(text),
                Err(e) => {
                    let (good, bad) = rest.split_at(e.valid_up_to());
                    f.write_str(core::str::from_utf8(good).unwrap_or(""))?;
                    f.write_str("\u{fffd}")?;
                    rest = bad.get(e.error_len().unwrap_or(bad.len())..).unwrap_or(&[]);
                }
            }
        }
    }
}
