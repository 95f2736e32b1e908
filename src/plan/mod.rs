//! Planning, pure: from a checked archive and one validated set of
//! options, every file and folder to stage with its bytes and mode, the
//! rendered fragments, the zips the tool builds and the manifest. No I/O
//! here.
//!
//! - [`methods`]: the method table, each method one row.
//! - [`options`]: a run's validated options.
//! - [`files`]: `FileSpec`, `DirSpec`, `Plan`, and the modes.
//! - [`staging`]: the split into device and host files, and what blocks it.
//! - [`fragments`]: a method's fragment from its row; the hardware id's.
//! - [`render`]: handlebars, strict, with the dialect helpers.
//! - [`zip`] and [`tar`]: the reproducible archives the tool writes.
//! - [`bundles`]: `device-certs`' bundles, journal lines and record.
//! - [`manifest`]: the manifest, made from a plan, read back and checked.

pub mod bundles;
pub mod files;
pub mod fragments;
pub mod manifest;
pub mod methods;
pub mod options;
pub mod render;
pub mod staging;
pub mod tar;
pub mod zip;
