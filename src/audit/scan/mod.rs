//! Looking into one file's bytes, as a stream: the multi-pattern search,
//! the whole-file digest (only for a size that some needle has), and every
//! container and compressed stream found inside (told by content), each
//! read as it streams and bounded by [`Limits`]: bytes decoded per file
//! and per run, members per container, nesting levels, and one memory
//! budget shared by the nested decoders of a file.
//!
//! Every level is searched twice: its raw bytes (a tee as a decoder or an
//! archive reader reads them: headers, padding, data after the end) and
//! what it holds. A secret found inside is reported there, not again at
//! the raw bytes; a level whose whole bytes are a known file (by digest)
//! is reported as that file and not for what it holds.
//!
//! - `place.rs`: where bytes are (`Place`, a path and a chain of members)
//!   and the level being read (`Cx`).
//! - `scanner.rs`: the `Scanner`, the driver: a file's levels, each told
//!   by its content and searched, decoded or looked into; the findings.
//! - `what.rs`: what a level is, from its first bytes; what a root file is.
//! - `stream.rs`: the search as bytes pass (`Window`) and the tee that
//!   hands them on to a decoder or an archive reader (`Tee`).
//! - `budget.rs`: the bytes decoded per file and per run (`Shared`,
//!   `Budgeted`), and the errors that stop a read from above (`Stop`).
//! - `members.rs`: an archive's members, their names (redacted) and zips.
//! - `images.rs`: disk and file system images, their file systems walked
//!   as members.
//! - `tests.rs`: the unit tests.

mod budget;
mod images;
mod members;
mod place;
mod scanner;
mod stream;
mod what;

pub use budget::Shared;
pub use place::{Place, REDACTED};
pub use scanner::{redact, Scanner};
pub use what::root_kind;

#[cfg(doc)]
use crate::audit::findings::Limits;

#[cfg(test)]
pub(crate) mod tests;
