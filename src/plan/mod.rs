//! Planning, pure: from a checked archive and one validated set of
//! options, every file and folder to stage with its bytes and mode, the
//! rendered fragments, the zips the tool builds and the manifest. No I/O
//! here.

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
