//! `sota-stage`: put OTA credentials and aktualizr configuration into
//! Yocto/OpenEmbedded images safely.
//!
//! The library never prints: commands return an [`commands::Outcome`] (what
//! to print and the exit status) or an [`error::Error`]. Only
//! [`intake::archive`] reads a credentials archive and only [`write`]
//! writes files; everything between them works on bytes in memory and is
//! pure. DEVELOPERS.md maps every module.
//!
//! Top down, as a run goes:
//! - [`cli`]: the command line (the only module that knows clap), and
//!   [`commands`]: one module per command, each `run(&Config) -> Outcome`.
//! - Input edges, each bounded: [`intake`] (credentials archives),
//!   [`files`] (every file an operator names: regular, size-limited),
//!   [`audit`] (root file systems, archives, disk images, repositories).
//! - The pure core: [`checks`] (each entry judged), [`crypto`]
//!   (certificates, keys, PKCS#12, issuing), [`aktualizr`] (its config
//!   dialect), [`plan`] (what to stage, rendered, as a plan).
//! - [`write`]: the only writer, all or nothing.
//! - Small shared pieces: [`error`] (the error type and exit codes),
//!   [`report`] (problems and their grades), [`secret`] (a value that never
//!   prints), [`digest`] (SHA-256, hex), [`json`] (JSON from archives,
//!   value-budgeted), [`time`] (dates, `SOURCE_DATE_EPOCH`), [`escape`]
//!   (untrusted text made safe for a terminal); `test_support` gives the
//!   unit tests their files.

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
