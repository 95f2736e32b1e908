//! The command line: clap definitions, and their conversion into the
//! validated options the library works with. Flags beat the environment.

use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand};

use crate::error::{Error, Result};
use crate::plan::layout::UnknownPolicy;
use crate::plan::methods::Method;
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
}

/// The options that shape the rendered fragments, shared by `stage` and
/// `render`.
#[derive(Debug, Args)]
pub struct FragmentArgs {
    /// Provisioning method: shared-cred, device-cred, device-cred-hsm, or
    /// meta-updater's aktualizr-shared-prov, aktualizr-device-prov,
    /// aktualizr-device-prov-hsm
    #[arg(long, env = "SOTA_CLIENT_PROV", value_name = "METHOD", value_parser = parse_method)]
    pub method: Method,

    /// Hardware ID of the primary ECU; writes 40-hardware-id.toml
    #[arg(long, env = "SOTA_HARDWARE_ID", value_name = "ID")]
    pub hardware_id: Option<String>,

    #[command(flatten)]
    pub p12: P12PasswordArgs,

    /// PKCS#11 module (device-cred-hsm) [default: /usr/lib/softhsm/libsofthsm2.so]
    #[arg(long, value_name = "PATH")]
    pub p11_module: Option<String>,

    /// PKCS#11 user PIN (device-cred-hsm; visible in the process list: prefer
    /// --p11-pin-file) [default: 1234]
    #[arg(long, value_name = "PIN", conflicts_with = "p11_pin_file")]
    pub p11_pin: Option<String>,

    /// File whose content (one trailing newline dropped) is the PKCS#11 PIN
    #[arg(long, value_name = "FILE")]
    pub p11_pin_file: Option<PathBuf>,

    /// Token object ID of the TLS client certificate [default: 01]
    #[arg(long, value_name = "ID")]
    pub p11_tls_cert_id: Option<String>,

    /// Token object ID of the TLS client key [default: 02]
    #[arg(long, value_name = "ID")]
    pub p11_tls_key_id: Option<String>,

    /// Token object ID of the Uptane key [default: 03]
    #[arg(long, value_name = "ID")]
    pub p11_uptane_key_id: Option<String>,

    /// Folder whose *.toml.hbs files replace the built-in templates, file by file
    #[arg(long, value_name = "DIR")]
    pub template_dir: Option<PathBuf>,
}

fn parse_method(s: &str) -> std::result::Result<Method, String> {
    s.parse()
}

#[derive(Debug, Args)]
pub struct StageArgs {
    #[command(flatten)]
    pub fragment: FragmentArgs,

    /// The credentials archive (credentials.zip)
    #[arg(long, env = "SOTA_PACKED_CREDENTIALS", value_name = "FILE")]
    pub credentials: PathBuf,

    /// Folder the device files go under (a recipe's ${D})
    #[arg(long, value_name = "DIR")]
    pub device_root: PathBuf,

    /// Folder the host tools' files go under
    #[arg(long, value_name = "DIR")]
    pub host_root: Option<PathBuf>,

    /// Write a manifest of the staged files here
    #[arg(long, value_name = "FILE")]
    pub manifest: Option<PathBuf>,

    /// Device certificate (PEM) to put in the image (device-cred)
    #[arg(long, value_name = "FILE", requires = "device_key")]
    pub device_cert: Option<PathBuf>,

    /// Its private key (PEM, unencrypted)
    #[arg(long, value_name = "FILE", requires = "device_cert")]
    pub device_key: Option<PathBuf>,

    /// Do not pin root.json (and director.root.json) under var/sota/import
    #[arg(long)]
    pub no_root_pinning: bool,

    /// What to do with entries no tool reads: stage them with the host
    /// files, or drop them [default: refuse the archive]
    #[arg(long, value_enum, value_name = "WHAT")]
    pub unknown: Option<UnknownPolicy>,

    /// Accept a plain-http device URL (local test servers only)
    #[arg(long)]
    pub allow_http: bool,

    /// Replace files (and folder modes) that differ from what would be staged
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct RenderArgs {
    #[command(flatten)]
    pub fragment: FragmentArgs,

    /// Check that this credentials archive supports the method first
    #[arg(long, env = "SOTA_PACKED_CREDENTIALS", value_name = "FILE")]
    pub credentials: Option<PathBuf>,

    /// Accept a plain-http device URL in --credentials
    #[arg(long)]
    pub allow_http: bool,

    /// Write the fragment to FILE (mode 0600 if it holds a password or PIN,
    /// else 0644) instead of standard output
    #[arg(long, value_name = "FILE", conflicts_with = "output_dir")]
    pub output: Option<PathBuf>,

    /// Write each fragment into DIR under its own name (e.g.
    /// DIR/40-hardware-id.toml), with its mode
    #[arg(long, value_name = "DIR")]
    pub output_dir: Option<PathBuf>,

    /// Render only this fragment: the method's, or 40-hardware-id.toml
    #[arg(long = "fragment", value_enum, value_name = "WHICH")]
    pub only: Option<FragmentKind>,
}

/// One of the fragments `render` can write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FragmentKind {
    /// 20-sota-<method>.toml
    Method,
    /// 40-hardware-id.toml (needs --hardware-id)
    HardwareId,
}

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
    #[arg(long, value_enum, default_value_t = VerifyFormat::Text)]
    pub format: VerifyFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum VerifyFormat {
    Text,
    Json,
    Sha256sum,
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
