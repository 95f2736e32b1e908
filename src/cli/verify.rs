//! `verify`'s arguments and their conversion.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use crate::commands::verify;

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The manifest `stage --manifest` wrote
    #[arg(long, value_name = "FILE")]
    pub manifest: PathBuf,

    /// The device root the manifest describes
    #[arg(long, value_name = "DIR")]
    pub device_root: PathBuf,

    /// The host root, to check the host files too
    #[arg(long, value_name = "DIR")]
    pub host_root: Option<PathBuf>,

    /// Output format: a report, JSON, or a `sha256sum -c` listing
    #[arg(long, value_enum, default_value_t = VerifyFormatArg::Text)]
    pub format: VerifyFormatArg,
}

/// `verify --format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum VerifyFormatArg {
    Text,
    Json,
    Sha256sum,
}

impl VerifyArgs {
    pub(super) fn into_config(self) -> verify::Config {
        verify::Config {
            manifest: self.manifest,
            device_root: self.device_root,
            host_root: self.host_root,
            format: match self.format {
                VerifyFormatArg::Text => verify::Format::Text,
                VerifyFormatArg::Json => verify::Format::Json,
                VerifyFormatArg::Sha256sum => verify::Format::Sha256sum,
            },
        }
    }
}
