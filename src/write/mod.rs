//! Writing: applying a plan to the roots, all or nothing (the only module
//! that changes files), and reading them back against a manifest.
//!
//! - [`apply`]: the writer (transactions, locks, folder handles opened
//!   without following links, rollback, leftovers of killed runs).
//! - [`verify`]: the roots read back against a manifest.

pub mod apply;
pub mod verify;
