//! `sota-stage`: put OTA credentials and aktualizr configuration into
//! Yocto/OpenEmbedded images safely.
//!
//! The library never prints: commands return an [`commands::Outcome`] (what
//! to print and the exit status) or an [`error::Error`]. Only
//! [`archive`] reads a credentials archive; everything after it works on
//! bytes in memory and is pure.

pub mod archive;
pub mod catalogue;
pub mod checks;
pub mod cli;
pub mod commands;
pub mod crypto;
pub mod device_zip;
pub mod dialect;
pub mod error;
pub mod layout;
pub mod lint;
pub mod manifest;
pub mod methods;
pub mod render;
pub mod report;
pub mod secret;
pub mod stage;
pub mod time;
