//! Intake: reading a credentials archive (the only module that does) and
//! the catalogue of the entries it may hold.
//!
//! - [`archive`]: the zip read within its limits (size, entries, ratio,
//!   names), every hostile form refused before anything is inflated.
//! - [`catalogue`]: the known entries as data: side (device or host),
//!   secret or not, read on the host or not, which tools read each.

pub mod archive;
pub mod catalogue;
