//! What several commands' arguments share: the environment variables, the
//! `--sync` switch, the lock timeout, the inputs a flag named, `--format`,
//! the p12 password, the secret files flags name, `SOURCE_DATE_EPOCH`.

use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};

use crate::error::{Error, Result};
use crate::escape::escape;
use crate::files::{self, Kind};
use crate::plan::render::dialect_string;
use crate::report::Format;
use crate::secret::Secret;

/// The name of the environment variable that may hold the fleet CA key's
/// password.
pub const FLEET_CA_KEY_PASSWORD_ENV: &str = "SOTA_FLEET_CA_KEY_PASSWORD";

/// The name of the environment variable that may hold the PIN of the
/// token that holds the fleet CA key.
pub const PKCS11_PIN_ENV: &str = "SOTA_PKCS11_PIN";

/// The name of the environment variable that may hold the p12 password.
pub const P12_PASSWORD_ENV: &str = "SOTA_P12_PASSWORD";

/// The name of the environment variable that turns `--sync` on.
pub const SYNC_ENV: &str = "SOTA_STAGE_SYNC";

/// `--sync`, else `SOTA_STAGE_SYNC` (1/0, true/false, yes/no, on/off, in
/// any case; unset or empty is off).
pub(super) fn sync_switch(flag: bool) -> Result<bool> {
    if flag {
        return Ok(true);
    }
    let value = match std::env::var_os(SYNC_ENV) {
        None => return Ok(false),
        Some(value) => value.to_string_lossy().into_owned(),
    };
    match value.to_ascii_lowercase().as_str() {
        "" | "0" | "false" | "no" | "off" => Ok(false),
        "1" | "true" | "yes" | "on" => Ok(true),
        _ => {
            let shown: String = value.chars().take(32).collect();
            let more = if shown.len() < value.len() { "..." } else { "" };
            Err(Error::Usage(format!(
                "{SYNC_ENV}=`{}{more}` is not a switch; set it to 1, 0, true, false, yes, no, on or off (any case), or unset it",
                escape(&shown)
            )))
        }
    }
}

/// `--lock-timeout SECONDS`, cut to the longest wait the writer allows.
pub(super) fn lock_timeout(seconds: u64) -> std::time::Duration {
    std::time::Duration::from_secs(seconds).min(crate::write::apply::MAX_LOCK_TIMEOUT)
}

/// The files among `given` that a flag named, as a command's inputs.
pub(super) fn named_inputs(given: &[(&str, &Option<PathBuf>)]) -> Vec<(String, PathBuf)> {
    given
        .iter()
        .filter_map(|(flag, path)| {
            let path = path.as_ref()?;
            Some((
                format!("{flag} `{}`", escape(&path.display().to_string())),
                path.clone(),
            ))
        })
        .collect()
}

/// `--format` of the reporting commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    Text,
    Json,
}

impl From<FormatArg> for Format {
    fn from(f: FormatArg) -> Format {
        match f {
            FormatArg::Text => Format::Text,
            FormatArg::Json => Format::Json,
        }
    }
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

impl P12PasswordArgs {
    pub(super) fn given(&self) -> Vec<&'static str> {
        [
            ("--p12-password", self.p12_password.is_some()),
            ("--p12-password-file", self.p12_password_file.is_some()),
        ]
        .into_iter()
        .filter(|(_, given)| *given)
        .map(|(flag, _)| flag)
        .collect()
    }

    /// Where [`P12PasswordArgs::resolve`] takes the password from, for
    /// messages.
    pub(super) fn source(&self) -> &'static str {
        if self.p12_password.is_some() {
            "--p12-password"
        } else if self.p12_password_file.is_some() {
            "--p12-password-file"
        } else {
            P12_PASSWORD_ENV
        }
    }

    /// Resolves the password: flag, else file, else environment, else empty.
    pub(super) fn resolve(&self) -> Result<Secret<String>> {
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

/// A secret the method writes into its fragment, refused on the command
/// line (naming where it came from, never its value) when aktualizr could
/// not read it back: the same rule as the templates' `str` helper.
pub(super) fn check_secret_value(
    value: Secret<String>,
    what: &str,
    from: &str,
) -> Result<Secret<String>> {
    match dialect_string(value.expose()) {
        Ok(_) => Ok(value),
        Err(why) => Err(Error::Usage(format!(
            "{what} given with {from} {why}, so it cannot be written into aktualizr's config; {what} must not contain `\"`, `\\` or control characters"
        ))),
    }
}

/// Reads a one-line secret from a file: one trailing `\n` or `\r\n` is
/// dropped, anything else is kept as is (a password may end in a space).
pub(super) fn read_secret_file(path: &Path, flag: &str) -> Result<Secret<String>> {
    let bytes = files::read(path, Kind::Secret)?;
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

/// A file's name without its folder, for messages that must not depend on
/// where the build runs.
pub(super) fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

/// `SOURCE_DATE_EPOCH`, or the documented default when it is unset.
pub(super) fn source_date_epoch() -> Result<i64> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(text) if !text.is_empty() => {
            crate::time::parse_source_date_epoch(&text).map_err(Error::Usage)
        }
        _ => Ok(crate::time::DEFAULT_SOURCE_DATE_EPOCH),
    }
}
