//! Planning, pure: from a checked archive and one validated configuration,
//! every file and folder to stage with its bytes and mode, the rendered
//! fragments, the zips the tool builds and the manifest. No I/O here.

pub mod layout;
pub mod manifest;
pub mod methods;
pub mod render;
pub mod zip;
