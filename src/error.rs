//! The one error type of the library, and the exit status each kind maps
//! to (design.md section 2): 1 invalid input, 2 usage, 3 I/O or environment.

use std::io;
use std::path::{Path, PathBuf};

use crate::escape::escape;

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
    #[error("cannot {op} `{}`: {source}", escape(&path.display().to_string()))]
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

    /// Staged paths exist with other content or modes, and replacing them
    /// was not asked for; nothing was written. The command line adds how to
    /// ask.
    #[error("staging would change files that are already there; nothing was written:{}", list_lines(.0))]
    Conflicts(Vec<String>),

    /// A staging run is refused before anything is written; every reason
    /// at once.
    #[error("{label}: cannot stage for {method}:{}", list(blockers))]
    Refused {
        label: String,
        method: String,
        blockers: Vec<Blocker>,
    },

    /// Another run holds the roots and did not let go in time; nothing
    /// was written. The command line adds how to wait longer.
    #[error("cannot lock `{}`: another sota-stage run{} is staging into it and still holds it after {} s; nothing was written", path.display(), holder_text(*holder), waited.as_secs())]
    Locked {
        path: PathBuf,
        holder: Option<u32>,
        waited: std::time::Duration,
    },

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
            Error::Io { .. } | Error::Locked { .. } => EXIT_IO,
            Error::Archive { .. }
            | Error::Invalid(_)
            | Error::Refused { .. }
            | Error::Conflicts(_) => EXIT_INVALID,
            Error::Usage(_) => EXIT_USAGE,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// One reason a staging run is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Blocker {
    /// Worded for the user already.
    Problem(String),
    /// Entries the catalogue does not know, and nobody said what to do with
    /// them; the command line adds how to say it.
    UnknownEntries(Vec<String>),
}

impl std::fmt::Display for Blocker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Blocker::Problem(message) => f.write_str(message),
            Blocker::UnknownEntries(names) => write!(
                f,
                "unknown entries {}: say what to do with them",
                names
                    .iter()
                    .map(|n| format!("'{n}'"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
}

fn holder_text(holder: Option<u32>) -> String {
    holder
        .map(|pid| format!(" (process {pid})"))
        .unwrap_or_default()
}

fn list_lines(lines: &[String]) -> String {
    lines
        .iter()
        .map(|l| format!("\n  - {}", escape(l)))
        .collect()
}

fn list(blockers: &[Blocker]) -> String {
    blockers
        .iter()
        .map(|b| format!("\n  - {}", escape(&b.to_string())))
        .collect()
}

/// Why an archive is refused as a whole. Each message names the entry
/// (escaped, so a hostile name cannot forge output) and says what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArchiveError {
    #[error("not a zip archive ({detail}); pass the credentials.zip your OTA server gave you")]
    NotAZip { detail: String },
    #[error("the zip archive is truncated or damaged ({detail}); download the credentials again")]
    Truncated { detail: String },
    #[error("the archive has no entries; download the credentials again")]
    Empty,
    #[error("entry '{entry}' is encrypted; sota-stage reads only unencrypted archives: re-pack it without a password")]
    Encrypted { entry: String },
    #[error("entry '{entry}' has an unsafe name ({reason}); re-pack the archive with plain file names at its root")]
    UnsafeEntryName { entry: String, reason: &'static str },
    #[error("entry '{entry}' is a symbolic link; re-pack the archive with the real file")]
    SymlinkEntry { entry: String },
    #[error("entry '{entry}' appears more than once; tools would disagree on which copy is meant: re-pack the archive with one")]
    DuplicateEntry { entry: String },
    #[error("entry '{entry}' is in a subfolder, but aktualizr and the garage tools read '{root_name}' only at the archive root; re-pack the archive with the files at its root")]
    InSubfolder { entry: String, root_name: String },
    #[error("the archive has {count} entries, more than the limit of {limit}; this is not a credentials archive")]
    TooManyEntries { count: usize, limit: usize },
    #[error("entry '{entry}' is larger than the limit of {limit} bytes uncompressed; this is not a credentials file")]
    EntryTooLarge { entry: String, limit: u64 },
    #[error("the entries add up to more than the limit of {limit} bytes uncompressed; this is not a credentials archive")]
    TotalTooLarge { limit: u64 },
    #[error("the archive is {size} bytes, more than the limit of {limit}; this is not a credentials archive")]
    ArchiveTooLarge { size: u64, limit: u64 },
    #[error("entry '{entry}' cannot be read ({detail}); download the credentials again")]
    Unreadable { entry: String, detail: String },
    #[error("the end record counts {}, but the central directory holds {found}; zip readers would disagree on what the archive holds: download the credentials again", crate::report::counted(u64::from(*declared), "entry", "entries"))]
    EntryCountMismatch { declared: u16, found: usize },
    #[error("entry '{entry}' is named '{local}' in its local header; zip readers would disagree on its name: download the credentials again")]
    LocalNameMismatch { entry: String, local: String },
    #[error("the zip archive contradicts itself ({detail}); zip readers would disagree on what it holds: download the credentials again")]
    Inconsistent { detail: String },
    #[error("the archive uses zip64 records, which no credentials archive needs (they are for archives over 4 GiB or 65535 entries); re-pack it as a plain zip")]
    Zip64,
    #[error("entry '{entry}' uses compression method {method}; sota-stage reads stored and deflated entries only: re-pack the archive with plain zip")]
    UnsupportedMethod { entry: String, method: u16 },
}
