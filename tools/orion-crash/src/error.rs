// SPDX-License-Identifier: GPL-2.0 OR MIT

//! The errors of the crash tools, each a class the command line turns into an exit code.

use std::io;
use std::path::Path;

/// An error of the crash tools.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A device, log or journal could not be read or written.
    #[error("{what}: {source}")]
    Io {
        /// What was being done, naming the file.
        what: String,
        /// The system's error.
        source: io::Error,
    },
    /// The input is not what it should be: a damaged log, journal or a bad argument for it.
    #[error("{0}")]
    Invalid(String),
}

/// The crash tools' result.
pub type Result<T> = std::result::Result<T, Error>;

/// Adds the path and the action to an I/O error.
pub trait IoContext<T> {
    /// Wraps the error as "ACTION PATH: error".
    fn at(self, action: &str, path: &Path) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn at(self, action: &str, path: &Path) -> Result<T> {
        self.map_err(|source| Error::Io {
            what: format!("{action} {}", path.display()),
            source,
        })
    }
}

/// An [`Error::Invalid`] from a format string.
#[macro_export]
macro_rules! invalid {
    ($($arg:tt)*) => {
        $crate::error::Error::Invalid(format!($($arg)*))
    };
}
