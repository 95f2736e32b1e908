//! The command line: clap's definitions, and their conversion into the one
//! complete, validated configuration of each command
//! ([`crate::commands::Config`]). Flags beat the environment. Nothing below
//! this module knows clap or a flag's name; files named by flags (password
//! and PIN files, device certificates) are read here, each once.
//!
//! The modules: `mod.rs` the top-level parser (`Cli`, `Command`);
//! `shared.rs` what several commands share (environment variables,
//! `--sync`, `--format`, the p12 password, secret files, the epoch);
//! `fragment.rs` the fragment and PKCS#11 options of `stage` and `render`;
//! one file per command's arguments and their conversion: `inspect.rs`,
//! `stage.rs`, `render.rs`, `verify.rs`, `lint.rs`, `audit.rs`,
//! `device_certs.rs`.

use clap::{Parser, Subcommand};

use crate::commands;
use crate::error::Result;

mod audit;
mod device_certs;
mod fragment;
mod inspect;
mod lint;
mod render;
mod shared;
mod stage;
mod verify;

pub use audit::AuditArgs;
pub use device_certs::{
    BundleFormatArg, DeviceCertOptions, DeviceCertsArgs, DeviceIdArgs, KeyTypeArg,
};
pub use fragment::{CertSourceArg, FragmentArgs, P11Args, ReportConfigArg};
pub use inspect::InspectArgs;
pub use lint::LintArgs;
pub use render::{FragmentArg, RenderArgs};
pub use shared::{
    FormatArg, P12PasswordArgs, FLEET_CA_KEY_PASSWORD_ENV, P12_PASSWORD_ENV, PKCS11_PIN_ENV,
    SYNC_ENV,
};
pub use stage::{DeviceCertArgs, StageArgs, StageContentArgs, StageOutputArgs, UnknownArg};
pub use verify::{VerifyArgs, VerifyFormatArg};

/// Put OTA credentials and aktualizr configuration into Yocto images, safely.
#[derive(Debug, Parser)]
#[command(name = "sota-stage", version, about, max_term_width = 100)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List and check every entry of a credentials archive, and the
    /// provisioning methods it supports
    Inspect(InspectArgs),
    /// Split a credentials archive and stage the device and host files for
    /// one provisioning method, all or nothing
    Stage(StageArgs),
    /// Print or write aktualizr's config fragment(s) for a method
    Render(RenderArgs),
    /// Re-check staged files against a manifest
    Verify(VerifyArgs),
    /// Check aktualizr config files or conf.d folders in aktualizr's real
    /// dialect, and explain the merged result
    Lint(LintArgs),
    /// Prove that no host secret of a credentials archive is in an image
    /// (a root file system folder, an archive of one, a disk image, a git or
    /// OSTree repository)
    Audit(AuditArgs),
    /// Issue one client certificate and key per device with a fleet CA, in
    /// bulk, as device-cred bundles (folders or tars) with a record
    DeviceCerts(DeviceCertsArgs),
}

impl Command {
    /// The command's configuration, complete and checked.
    pub fn into_config(self) -> Result<commands::Config> {
        Ok(match self {
            Command::Inspect(a) => commands::Config::Inspect(a.into_config()?),
            Command::Stage(a) => commands::Config::Stage(Box::new(a.into_config()?)),
            Command::Render(a) => commands::Config::Render(a.into_config()?),
            Command::Verify(a) => commands::Config::Verify(a.into_config()),
            Command::Lint(a) => commands::Config::Lint(a.into_config()),
            Command::Audit(a) => commands::Config::Audit(a.into_config()),
            Command::DeviceCerts(a) => commands::Config::DeviceCerts(Box::new(a.into_config()?)),
        })
    }
}
