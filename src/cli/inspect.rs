//! `inspect`'s arguments and their conversion.

use std::path::PathBuf;

use clap::Args;

use super::shared::{FormatArg, P12PasswordArgs};
use crate::commands::inspect;
use crate::crypto::x509;
use crate::error::{Error, Result};

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The credentials archive (credentials.zip); or --credentials, or
    /// SOTA_PACKED_CREDENTIALS
    #[arg(value_name = "CREDENTIALS")]
    pub archive: Option<PathBuf>,

    /// The credentials archive, as the other commands take it
    #[arg(long, value_name = "FILE", conflicts_with = "archive")]
    pub credentials: Option<PathBuf>,

    #[command(flatten)]
    pub p12: P12PasswordArgs,

    /// Accept a plain-http device URL (local test servers only)
    #[arg(long)]
    pub allow_http: bool,

    /// Output format
    #[arg(long, value_enum, default_value_t = FormatArg::Text)]
    pub format: FormatArg,
}

/// The name of the environment variable that may name the archive.
pub(super) const PACKED_CREDENTIALS_ENV: &str = "SOTA_PACKED_CREDENTIALS";

impl InspectArgs {
    pub(super) fn into_config(self) -> Result<inspect::Config> {
        // As an argument, with --credentials (clap refuses both), else from
        // the environment, as bitbake has it.
        let credentials = match self.archive.or(self.credentials) {
            Some(path) => path,
            None => match std::env::var_os(PACKED_CREDENTIALS_ENV) {
                Some(path) if !path.is_empty() => PathBuf::from(path),
                _ => {
                    return Err(Error::Usage(format!(
                        "no credentials archive: give it as CREDENTIALS, with --credentials FILE, or in {PACKED_CREDENTIALS_ENV}"
                    )))
                }
            },
        };
        Ok(inspect::Config {
            p12_password: self.p12.resolve()?,
            credentials,
            allow_http: self.allow_http,
            format: self.format.into(),
            now: x509::now_unix(),
        })
    }
}
