//! `sota-stage`: put OTA credentials and aktualizr configuration into
//! Yocto/OpenEmbedded images safely.
//!
//! The library never prints: commands return an [`commands::Outcome`] (what
//! to print and the exit status) or an [`error::Error`]. Only
//! [`intake::archive`] reads a credentials archive and only [`write`]
//! writes files; everything between them works on bytes in memory and is
//! pure. DEVELOPERS.md maps every module.

pub mod aktualizr;
pub mod audit;
pub mod checks;
pub mod cli;
pub mod commands;
pub mod crypto;
pub mod digest;
pub mod error;
pub mod escape;
pub mod files;
pub mod intake;
pub mod json;
pub mod plan;
pub mod report;
pub mod secret;
pub mod time;
pub mod write;

#[cfg(test)]
mod test_support;
