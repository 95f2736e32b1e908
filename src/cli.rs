//! The command line: clap definitions, and their conversion into the
//! validated options the library works with. Flags beat the environment.

use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand};

use crate::error::{Error, Result};
use crate::report::Format;
use crate::secret::Secret;

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
    /// Check aktualizr config files or conf.d folders in aktualizr's real
    /// dialect, and explain the merged result
    Lint(LintArgs),
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The credentials archive (credentials.zip)
    #[arg(value_name = "CREDENTIALS", env = "SOTA_PACKED_CREDENTIALS")]
    pub credentials: PathBuf,

    #[command(flatten)]
    pub p12: P12PasswordArgs,

    /// Accept a plain-http device URL (local test servers only)
    #[arg(long)]
    pub allow_http: bool,

    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// Where the password of `autoprov_credentials.p12` comes from: the flag,
/// then the file, then `SOTA_P12_PASSWORD`; empty when none is given.
#[derive(Debug, Args)]
pub struct P12PasswordArgs {
    /// Password of autoprov_credentials.p12 (visible to other users in the
    /// process list: prefer --p12-password-file or SOTA_P12_PASSWORD)
    #[arg(long, value_name = "PASSWORD", conflicts_with = "p12_password_file")]
    pub p12_password: Option<String>,

    /// File whose content (one trailing newline dropped) is the p12 password
    #[arg(long, value_name = "FILE")]
    pub p12_password_file: Option<PathBuf>,
}

/// The name of the environment variable that may hold the p12 password.
pub const P12_PASSWORD_ENV: &str = "SOTA_P12_PASSWORD";

impl P12PasswordArgs {
    /// Resolves the password: flag, else file, else environment, else empty.
    pub fn resolve(&self) -> Result<Secret<String>> {
        if let Some(password) = &self.p12_password {
            return Ok(Secret::new(password.clone()));
        }
        if let Some(path) = &self.p12_password_file {
            return read_secret_file(path, "--p12-password-file");
        }
        match std::env::var(P12_PASSWORD_ENV) {
            Ok(password) => Ok(Secret::new(password)),
            Err(std::env::VarError::NotPresent) => Ok(Secret::new(String::new())),
            Err(std::env::VarError::NotUnicode(_)) => Err(Error::Usage(format!(
                "`{P12_PASSWORD_ENV}` is not valid UTF-8; pass the password with --p12-password-file"
            ))),
        }
    }
}

/// Reads a one-line secret from a file: one trailing `\n` or `\r\n` is
/// dropped, anything else is kept as is (a password may end in a space).
pub fn read_secret_file(path: &Path, flag: &str) -> Result<Secret<String>> {
    let bytes = std::fs::read(path).map_err(|e| Error::io("read", path, e))?;
    let mut text = String::from_utf8(bytes).map_err(|_| {
        Error::Usage(format!(
            "{flag} `{}`: the file is not valid UTF-8",
            path.display()
        ))
    })?;
    if text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
    Ok(Secret::new(text))
}

#[derive(Debug, Args)]
pub struct LintArgs {
    /// aktualizr config files or conf.d folders, read like `aktualizr
    /// --config PATH...`: a folder's *.toml files (hidden ones too, not
    /// recursive), all applied in byte-wise file-name order, a later PATH's
    /// file hiding an earlier one of the same name. With --root, each PATH
    /// is taken inside DIR and replaces the default folders
    #[arg(value_name = "PATH", required_unless_present = "root")]
    pub paths: Vec<PathBuf>,

    /// Read DIR/usr/lib/sota/conf.d then DIR/etc/sota/conf.d the way
    /// aktualizr does, and print paths relative to DIR
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,

    /// Show the configuration aktualizr ends up with, key by key, with the
    /// file and line each value comes from and the derived server URLs
    /// (p12_password and p11.pass masked)
    #[arg(long)]
    pub explain: bool,

    /// Exit 1 on warnings too
    #[arg(long)]
    pub deny_warnings: bool,

    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}
