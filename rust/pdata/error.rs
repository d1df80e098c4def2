// SPDX-License-Identifier: GPL-2.0 OR MIT

//! Errors of the persistent-data layer.

use core::fmt;

/// What went wrong, with the block it was found in where there is one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// The block device or file failed a read or write.
    Io(u64),
    /// A block number lies past the end of the metadata device.
    OutOfBounds(u64),
    /// A block's checksum does not match its contents.
    Checksum(u64),
    /// A block claims to live somewhere else (misdirected write, or not metadata at all).
    WrongLocation {
        /// Where the block was read from.
        block: u64,
        /// Where its header says it belongs.
        found: u64,
    },
    /// A structure in a block is inconsistent.
    Corrupt {
        /// The block holding the structure.
        block: u64,
        /// What is wrong, for the log.
        what: &'static str,
    },
    /// No free block is left in a space map.
    NoSpace,
    /// A block is already locked in a way that conflicts with the request.
    Busy(u64),
    /// A tree is deeper than any valid tree can be.
    TooDeep(u64),
    /// The caller asked for something the metadata does not hold or already holds.
    Invalid(&'static str),
}

/// The result type of this layer.
pub type Result<T> = core::result::Result<T, Error>;

/// Shorthand for a corruption error.
pub(crate) fn corrupt<T>(block: u64, what: &'static str) -> Result<T> {
    Err(Error::Corrupt { block, what })
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io(b) => write!(f, "I/O error on metadata block {b}"),
            Error::OutOfBounds(b) => write!(f, "metadata block {b} is beyond the device"),
            Error::Checksum(b) => write!(f, "checksum mismatch in metadata block {b}"),
            Error::WrongLocation { block, found } => {
                write!(f, "metadata block {block} says it is block {found}")
            }
            Error::Corrupt { block, what } => write!(f, "metadata block {block}: {what}"),
            Error::NoSpace => write!(f, "out of space"),
            Error::Busy(b) => write!(f, "metadata block {b} is locked"),
            Error::TooDeep(b) => write!(f, "btree under block {b} is too deep"),
            Error::Invalid(what) => write!(f, "{what}"),
        }
    }
}
