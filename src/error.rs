//! The one error type of the library, and the exit status each kind maps
//! to (design.md section 2): 1 invalid input, 2 usage, 3 I/O or environment.

use std::io;
use std::path::{Path, PathBuf};

use crate::archive::ArchiveError;

/// Exit status: success.
pub const EXIT_OK: u8 = 0;
/// Exit status: the input is invalid (bad archive, bad config, mismatch).
pub const EXIT_INVALID: u8 = 1;
/// Exit status: the command line is wrong.
pub const EXIT_USAGE: u8 = 2;
/// Exit status: cannot read, cannot write, no space.
pub const EXIT_IO: u8 = 3;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file-system operation failed; names the operation and the path.
    #[error("cannot {op} `{}`: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// The credentials archive is refused as a whole.
    #[error("{file}: {source}")]
    Archive {
        file: String,
        #[source]
        source: ArchiveError,
    },

    /// The input is invalid for a reason already worded for the user.
    #[error("{0}")]
    Invalid(String),

    /// The command line is wrong in a way clap cannot see (conflicting
    /// sources, a value in the wrong shape).
    #[error("{0}")]
    Usage(String),
}

impl Error {
    /// Wraps an I/O error with the operation and the path it concerned.
    pub fn io(op: &'static str, path: &Path, source: io::Error) -> Self {
        Error::Io {
            op,
            path: path.to_path_buf(),
            source,
        }
    }

    /// The process exit status for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Io { .. } => EXIT_IO,
            Error::Archive { .. } | Error::Invalid(_) => EXIT_INVALID,
            Error::Usage(_) => EXIT_USAGE,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
