//! `device-certs`' arguments and their conversion.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use super::shared::{
    lock_timeout, named_inputs, read_secret_file, source_date_epoch, sync_switch, P12PasswordArgs,
    FLEET_CA_KEY_PASSWORD_ENV, PKCS11_PIN_ENV,
};
use crate::commands::device_certs;
use crate::crypto::issue::{KeyType, SubjectExtra, SubjectPart};
use crate::crypto::pkcs11::Pkcs11Uri;
use crate::crypto::x509;
use crate::error::{Error, Result};
use crate::files::{self, Kind};
use crate::plan::bundles::Format as BundleFormat;
use crate::secret::Secret;

#[derive(Debug, Args)]
pub struct DeviceCertsArgs {
    /// The fleet CA's certificate (PEM)
    #[arg(long, value_name = "FILE")]
    pub fleet_ca: PathBuf,

    /// The fleet CA's private key (PEM; only read), or a key in a token, as
    /// a PKCS#11 URI (pkcs11:token=...;object=...). An encrypted PKCS#8 key
    /// needs --fleet-ca-key-password-file or SOTA_FLEET_CA_KEY_PASSWORD
    #[arg(long, value_name = "FILE|URI")]
    pub fleet_ca_key: PathBuf,

    /// File whose content (one trailing newline dropped) is the CA key's
    /// password
    #[arg(long, value_name = "FILE")]
    pub fleet_ca_key_password_file: Option<PathBuf>,

    /// The PKCS#11 module (an absolute path) of the token holding the
    /// fleet CA key given as a pkcs11: URI
    #[arg(long, value_name = "PATH")]
    pub pkcs11_module: Option<PathBuf>,

    /// File whose content (one trailing newline dropped) is the token's
    /// user PIN (or SOTA_PKCS11_PIN)
    #[arg(long, value_name = "FILE")]
    pub pkcs11_pin_file: Option<PathBuf>,

    /// Folder the bundles, devices.json and devices.csv go into
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,

    /// Each bundle as a folder OUT/ID/var/sota/import/..., or as a
    /// reproducible OUT/ID.tar to unpack over a device's data partition
    #[arg(long, value_enum, default_value_t = BundleFormatArg::Dir)]
    pub format: BundleFormatArg,

    /// Put the archive's gateway.url and root.crt into each bundle too, as
    /// `stage --method device-cred` makes them
    #[arg(long, value_name = "FILE")]
    pub credentials: Option<PathBuf>,

    /// File whose content is the password of the archive's p12, when the
    /// server CA is only in it (or SOTA_P12_PASSWORD)
    #[arg(long, value_name = "FILE", requires = "credentials")]
    pub p12_password_file: Option<PathBuf>,

    /// Replace existing bundles and the record
    #[arg(long)]
    pub force: bool,

    /// Seconds to wait for another run writing into the same folder
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    pub lock_timeout: u64,

    /// fsync the journal before each batch's keys, every bundle and the
    /// record (for a folder that must survive a power cut); also
    /// SOTA_STAGE_SYNC=1 (1, 0, true, false, yes, no, on, off)
    #[arg(long)]
    pub sync: bool,

    /// No progress on the terminal and no summary line (warnings and
    /// errors still show)
    #[arg(long, short = 'q')]
    pub quiet: bool,

    #[command(flatten)]
    pub ids: DeviceIdArgs,

    #[command(flatten)]
    pub cert: DeviceCertOptions,
}

/// Which devices: all sources together, each id once.
#[derive(Debug, Args)]
#[command(next_help_heading = "Devices (any together, each id once)")]
pub struct DeviceIdArgs {
    /// A device id, the certificate's CN (repeatable): 1 to 64 characters
    /// of [A-Za-z0-9._-], not starting with `.`
    #[arg(long = "device-id", value_name = "ID")]
    pub device_ids: Vec<String>,

    /// File of device ids, one a line (blank lines and lines starting
    /// with # are skipped)
    #[arg(long, value_name = "FILE")]
    pub ids: Option<PathBuf>,

    /// N devices named PREFIX plus a number from 1 to N, zero-padded to
    /// N's width (--count 100 --id-prefix dev- makes dev-001 ... dev-100)
    #[arg(long, value_name = "N", requires = "id_prefix")]
    pub count: Option<u32>,

    /// The prefix of --count's ids
    #[arg(long, value_name = "PREFIX", requires = "count")]
    pub id_prefix: Option<String>,

    /// Sign the devices' certificate requests (PKCS#10, PEM or DER): one
    /// file, or a folder of them (not its subfolders), sorted by name. The
    /// id is each request's CN; its key stays on the device (no pkey.pem)
    #[arg(
        long,
        value_name = "FILE|DIR",
        conflicts_with_all = ["device_ids", "ids", "count", "key_type"]
    )]
    pub csr: Option<PathBuf>,
}

/// What the certificates are.
#[derive(Debug, Args)]
#[command(next_help_heading = "Certificates")]
pub struct DeviceCertOptions {
    /// Type of the device keys (RSA is refused in this build: see
    /// docs/device-certs.md)
    #[arg(long, value_enum, value_name = "TYPE", default_value_t = KeyTypeArg::EcP256)]
    pub key_type: KeyTypeArg,

    /// Days of validity from now; shortened to the CA's end, with a warning
    #[arg(long, value_name = "N", default_value_t = 365)]
    pub days: u32,

    /// Subject organization (O)
    #[arg(long, value_name = "O")]
    pub subject_o: Option<String>,

    /// Subject organizational unit (OU)
    #[arg(long, value_name = "OU")]
    pub subject_ou: Option<String>,

    /// Subject country (C), two letters
    #[arg(long, value_name = "C")]
    pub subject_c: Option<String>,

    /// Subject state or province (ST)
    #[arg(long, value_name = "ST")]
    pub subject_st: Option<String>,
}

/// `device-certs --format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BundleFormatArg {
    Dir,
    Tar,
}

/// `device-certs --key-type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum KeyTypeArg {
    #[value(name = "ec-p256")]
    EcP256,
    #[value(name = "ec-p384")]
    EcP384,
    #[value(name = "rsa-2048")]
    Rsa2048,
    #[value(name = "rsa-3072")]
    Rsa3072,
}

impl DeviceCertsArgs {
    pub(super) fn into_config(self) -> Result<device_certs::Config> {
        let fleet_ca_key = self.ca_key_source()?;
        let key_type = match self.cert.key_type {
            KeyTypeArg::EcP256 => KeyType::EcP256,
            KeyTypeArg::EcP384 => KeyType::EcP384,
            KeyTypeArg::Rsa2048 | KeyTypeArg::Rsa3072 => {
                return Err(Error::Invalid(
                    "--key-type rsa-2048 and rsa-3072 are not available in this build: the only pure-Rust RSA implementation (the `rsa` crate) has an open security advisory (RUSTSEC-2023-0071, the Marvin attack) with no fixed release; use --key-type ec-p256 (the default, as the OTA Connect docs recommend) or ec-p384".into(),
                ))
            }
        };
        if self.cert.days == 0 {
            return Err(Error::Usage("--days must be at least 1".into()));
        }
        let subject = SubjectExtra {
            country: self.cert.subject_c,
            state: self.cert.subject_st,
            organization: self.cert.subject_o,
            unit: self.cert.subject_ou,
        };
        subject.check().map_err(|(part, why)| {
            let flag = match part {
                SubjectPart::Country => "--subject-c",
                SubjectPart::State => "--subject-st",
                SubjectPart::Organization => "--subject-o",
                SubjectPart::Unit => "--subject-ou",
            };
            Error::Usage(format!("{flag} {why}"))
        })?;
        let inputs = named_inputs(&[
            (
                "--fleet-ca-key-password-file",
                &self.fleet_ca_key_password_file,
            ),
            ("--ids", &self.ids.ids),
            ("--p12-password-file", &self.p12_password_file),
            ("--pkcs11-pin-file", &self.pkcs11_pin_file),
        ]);
        let password = match &self.fleet_ca_key_password_file {
            Some(path) => Some(read_secret_file(path, "--fleet-ca-key-password-file")?),
            None => match std::env::var(FLEET_CA_KEY_PASSWORD_ENV) {
                Ok(password) => Some(Secret::new(password)),
                Err(std::env::VarError::NotPresent) => None,
                Err(std::env::VarError::NotUnicode(_)) => {
                    return Err(Error::Usage(format!(
                        "`{FLEET_CA_KEY_PASSWORD_ENV}` is not valid UTF-8; pass the password with --fleet-ca-key-password-file"
                    )))
                }
            },
        };
        Ok(device_certs::Config {
            fleet_ca: self.fleet_ca,
            fleet_ca_key,
            fleet_ca_key_password: password,
            csr: self.ids.csr.clone(),
            ids: self.ids.collect()?,
            subject,
            key_type,
            days: self.cert.days,
            out: self.out,
            format: match self.format {
                BundleFormatArg::Dir => BundleFormat::Dir,
                BundleFormatArg::Tar => BundleFormat::Tar,
            },
            credentials: self.credentials,
            p12_password: P12PasswordArgs {
                p12_password: None,
                p12_password_file: self.p12_password_file,
            }
            .resolve()?,
            force: self.force,
            sync: sync_switch(self.sync)?,
            quiet: self.quiet,
            lock_timeout: lock_timeout(self.lock_timeout),
            epoch: source_date_epoch()?,
            now: x509::now_unix(),
            inputs,
        })
    }
}

impl DeviceCertsArgs {
    /// A key file, or a token key named by a PKCS#11 URI with its module
    /// and PIN; the options of the one refused with the other.
    fn ca_key_source(&self) -> Result<device_certs::CaKeySource> {
        let text = self.fleet_ca_key.to_str().unwrap_or_default();
        let is_uri = text
            .get(..7)
            .is_some_and(|s| s.eq_ignore_ascii_case("pkcs11:"));
        if !is_uri {
            for (flag, given) in [
                ("--pkcs11-module", self.pkcs11_module.is_some()),
                ("--pkcs11-pin-file", self.pkcs11_pin_file.is_some()),
            ] {
                if given {
                    return Err(Error::Usage(format!(
                        "{flag} is for a fleet CA key in a token: give --fleet-ca-key as a PKCS#11 URI (pkcs11:token=...;object=...)"
                    )));
                }
            }
            return Ok(device_certs::CaKeySource::File(self.fleet_ca_key.clone()));
        }
        // Never echo the URI here: one that holds a PIN is refused.
        let uri = Pkcs11Uri::parse(text).map_err(|e| {
            Error::Usage(format!("--fleet-ca-key is not a usable PKCS#11 URI: {e}"))
        })?;
        if self.fleet_ca_key_password_file.is_some() {
            return Err(Error::Usage(
                "--fleet-ca-key-password-file is for a key file; a key in a token takes its PIN from --pkcs11-pin-file or SOTA_PKCS11_PIN".into(),
            ));
        }
        let module = self.pkcs11_module.clone().ok_or_else(|| {
            Error::Usage(format!(
                "--fleet-ca-key `{uri}` is in a token: give its PKCS#11 module with --pkcs11-module PATH (e.g. /usr/lib/softhsm/libsofthsm2.so)"
            ))
        })?;
        if !module.is_absolute() {
            return Err(Error::Usage(format!(
                "--pkcs11-module `{}` is not an absolute path: a relative one would be looked up in the library search path; give the module's absolute path",
                module.display()
            )));
        }
        let (pin, pin_from) = match &self.pkcs11_pin_file {
            Some(path) => (
                read_secret_file(path, "--pkcs11-pin-file")?,
                format!("--pkcs11-pin-file `{}`", path.display()),
            ),
            None => match std::env::var(PKCS11_PIN_ENV) {
                Ok(pin) => (Secret::new(pin), format!("`{PKCS11_PIN_ENV}`")),
                Err(std::env::VarError::NotPresent) => {
                    return Err(Error::Usage(format!(
                        "--fleet-ca-key `{uri}` is in a token: give its PIN with --pkcs11-pin-file FILE or {PKCS11_PIN_ENV} (never on the command line)"
                    )))
                }
                Err(std::env::VarError::NotUnicode(_)) => {
                    return Err(Error::Usage(format!(
                        "`{PKCS11_PIN_ENV}` is not valid UTF-8; pass the PIN with --pkcs11-pin-file"
                    )))
                }
            },
        };
        Ok(device_certs::CaKeySource::Token(Box::new(
            device_certs::TokenSource {
                uri,
                module,
                pin,
                pin_from,
            },
        )))
    }
}

impl DeviceIdArgs {
    /// The ids in the order given: --device-id, then --ids, then --count.
    /// Checked by the command, every problem at once.
    fn collect(self) -> Result<Vec<String>> {
        let mut ids = self.device_ids;
        if let Some(path) = &self.ids {
            let bytes = files::read(path, Kind::DeviceIds)?;
            let text = String::from_utf8(bytes).map_err(|_| {
                Error::Invalid(format!(
                    "--ids `{}`: the file is not valid UTF-8",
                    path.display()
                ))
            })?;
            ids.extend(
                text.lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty() && !l.starts_with('#'))
                    .map(str::to_string),
            );
        }
        if let (Some(count), Some(prefix)) = (self.count, &self.id_prefix) {
            if count as usize > device_certs::MAX_DEVICES {
                return Err(Error::Usage(format!(
                    "--count {count} is more than one run issues ({}); split the batch",
                    device_certs::MAX_DEVICES
                )));
            }
            let width = count.to_string().len();
            ids.extend((1..=count).map(|n| format!("{prefix}{n:0width$}")));
        }
        if ids.is_empty() && self.csr.is_none() {
            return Err(Error::Usage(
                "no device ids: give --device-id ID, --ids FILE, --count N with --id-prefix PREFIX, or --csr FILE|DIR".into(),
            ));
        }
        Ok(ids)
    }
}
