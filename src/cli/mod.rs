//! The command line: clap's definitions, and their conversion into the one
//! complete, validated configuration of each command
//! ([`crate::commands::Config`]). Flags beat the environment. Nothing below
//! this module knows clap or a flag's name; files named by flags (password
//! and PIN files, device certificates) are read here, each once.

use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::commands::{self, audit, device_certs, inspect, lint, render, stage, verify};
use crate::crypto::issue::{KeyType, SubjectExtra, SubjectPart};
use crate::crypto::pkcs11::Pkcs11Uri;
use crate::crypto::{private_key, x509};
use crate::error::{Error, Result};
use crate::escape::escape;
use crate::files::{self, Kind};
use crate::plan::bundles::Format as BundleFormat;
use crate::plan::methods::{Method, MethodOption};
use crate::plan::options::{
    DeviceCert, FragmentOptions, HardwareId, Hsm, ObjectId, ReportConfig, StageOptions,
    UnknownPolicy,
};
use crate::plan::render::{dialect_path, dialect_string};
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
    /// Prove that no host secret of a credentials archive is in an image
    /// (a root file system folder, an archive of one, a disk image, a git or
    /// OSTree repository)
    Audit(AuditArgs),
    /// Issue one client certificate and key per device with a fleet CA, in
    /// bulk, as device-cred bundles (folders or tars) with a record
    DeviceCerts(DeviceCertsArgs),
}

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
fn sync_switch(flag: bool) -> Result<bool> {
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
fn lock_timeout(seconds: u64) -> std::time::Duration {
    std::time::Duration::from_secs(seconds).min(crate::write::apply::MAX_LOCK_TIMEOUT)
}

/// The files among `given` that a flag named, as a command's inputs.
fn named_inputs(given: &[(&str, &Option<PathBuf>)]) -> Vec<(String, PathBuf)> {
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

    /// Folder whose *.toml.hbs files replace the built-in templates, file by file
    #[arg(long, value_name = "DIR")]
    pub template_dir: Option<PathBuf>,

    /// aktualizr's [telemetry] report_config, which sends its whole
    /// configuration, passwords and PINs included, to the server: off
    /// writes report_config = false into the method's fragment, on leaves
    /// aktualizr's default (true), auto is off when the fragment holds a
    /// password or PIN
    #[arg(long, value_enum, value_name = "WHEN", default_value_t = ReportConfigArg::Auto)]
    pub report_config: ReportConfigArg,

    #[command(flatten)]
    pub p12: P12PasswordArgs,

    #[command(flatten)]
    pub p11: P11Args,
}

/// `--report-config`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportConfigArg {
    /// Off when the fragment holds a password or PIN
    Auto,
    /// Leave aktualizr's default (true): it sends its configuration
    On,
    /// Always write report_config = false
    Off,
}

/// The `[p11]` settings of device-cred-hsm.
#[derive(Debug, Args)]
#[command(next_help_heading = "PKCS#11 (device-cred-hsm only)")]
pub struct P11Args {
    /// PKCS#11 module [default: /usr/lib/softhsm/libsofthsm2.so]
    #[arg(long, value_name = "PATH")]
    pub p11_module: Option<String>,

    /// PKCS#11 user PIN (visible in the process list: prefer --p11-pin-file)
    /// [default: 1234]
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

    /// Where aktualizr takes the TLS client certificate from: the token,
    /// or the file var/sota/import/client.pem (the key stays in the token;
    /// the certificate comes with the image, --device-cert, or a bundle)
    /// [default: pkcs11; file with --device-cert]
    #[arg(long, value_enum, value_name = "SOURCE")]
    pub p11_cert_source: Option<CertSourceArg>,
}

/// `--p11-cert-source`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CertSourceArg {
    /// A token object (--p11-tls-cert-id).
    Pkcs11,
    /// var/sota/import/client.pem, imported by aktualizr.
    File,
}

impl P11Args {
    /// The flags given, by name.
    fn given(&self) -> Vec<&'static str> {
        [
            ("--p11-module", self.p11_module.is_some()),
            ("--p11-pin", self.p11_pin.is_some()),
            ("--p11-pin-file", self.p11_pin_file.is_some()),
            ("--p11-tls-cert-id", self.p11_tls_cert_id.is_some()),
            ("--p11-tls-key-id", self.p11_tls_key_id.is_some()),
            ("--p11-uptane-key-id", self.p11_uptane_key_id.is_some()),
            ("--p11-cert-source", self.p11_cert_source.is_some()),
        ]
        .into_iter()
        .filter(|(_, given)| *given)
        .map(|(flag, _)| flag)
        .collect()
    }

    /// No PIN was given: the fragment gets aktualizr's example PIN.
    fn example_pin(&self) -> bool {
        self.p11_pin.is_none() && self.p11_pin_file.is_none()
    }

    /// The settings; `device_cert`: a certificate file was given, so the
    /// certificate is a file unless the command line says otherwise.
    fn into_hsm(self, device_cert: bool) -> Result<Hsm> {
        let defaults = Hsm::default();
        let cert_from_file = match (self.p11_cert_source, device_cert) {
            (Some(CertSourceArg::Pkcs11), true) => {
                return Err(Error::Usage(
                    "--device-cert with --p11-cert-source pkcs11: a certificate file is only staged when aktualizr reads it from a file; give --p11-cert-source file, or leave --device-cert out".into(),
                ))
            }
            (Some(CertSourceArg::File), _) | (None, true) => true,
            (Some(CertSourceArg::Pkcs11), false) | (None, false) => false,
        };
        if cert_from_file && self.p11_tls_cert_id.is_some() {
            return Err(Error::Usage(
                "--p11-tls-cert-id names the certificate's token object, but the certificate is a file here (--p11-cert-source file or --device-cert); leave one out".into(),
            ));
        }
        let pin = match (self.p11_pin, &self.p11_pin_file) {
            (Some(pin), _) => check_secret_value(Secret::new(pin), "the PKCS#11 PIN", "--p11-pin")?,
            (None, Some(path)) => check_secret_value(
                read_secret_file(path, "--p11-pin-file")?,
                "the PKCS#11 PIN",
                "--p11-pin-file",
            )?,
            (None, None) => defaults.pin,
        };
        if let Some(module) = &self.p11_module {
            dialect_path(module).map_err(|why| {
                Error::Usage(format!(
                    "--p11-module `{}` {why}, so aktualizr cannot be given it; give the module's absolute path on the device (e.g. {})",
                    escape(module),
                    defaults.module
                ))
            })?;
        }
        Hsm::new(
            self.p11_module.unwrap_or(defaults.module),
            pin,
            self.p11_tls_cert_id.unwrap_or(defaults.tls_cert_id),
            self.p11_tls_key_id.unwrap_or(defaults.tls_key_id),
            self.p11_uptane_key_id.unwrap_or(defaults.uptane_key_id),
            cert_from_file,
        )
        .map_err(|(which, why)| {
            let flag = match which {
                ObjectId::TlsCert => "--p11-tls-cert-id",
                ObjectId::TlsKey => "--p11-tls-key-id",
                ObjectId::Uptane => "--p11-uptane-key-id",
            };
            Error::Usage(format!(
                "{flag} is not a PKCS#11 object ID: {why}; give the ID as hex bytes, an even number of hex digits (e.g. 01)"
            ))
        })
    }
}

fn parse_method(s: &str) -> std::result::Result<Method, String> {
    s.parse()
}

/// Refuses options the method does not take, the same way for each:
/// `given` lists (option, flag) pairs the user gave.
fn refuse_foreign(method: Method, given: &[(MethodOption, &str)]) -> Result<()> {
    for (option, flag) in given {
        if !method.takes(*option) {
            let takers: Vec<String> = Method::taking(*option)
                .iter()
                .map(ToString::to_string)
                .collect();
            return Err(Error::Usage(format!(
                "`{flag}` does not apply to {method}: it is for {}",
                takers.join(" and ")
            )));
        }
    }
    Ok(())
}

impl FragmentArgs {
    /// The fragment options, and the warnings about them. `reads_archive`:
    /// the p12 password is also needed to open the archive's p12, whatever
    /// the method; `device_cert`: a certificate file was given.
    fn into_options(self, reads_archive: bool, device_cert: bool) -> Result<FragmentConfig> {
        let method = self.method;
        let mut given: Vec<(MethodOption, &str)> = self
            .p11
            .given()
            .into_iter()
            .map(|flag| (MethodOption::Pkcs11, flag))
            .collect();
        if !reads_archive {
            given.extend(
                self.p12
                    .given()
                    .into_iter()
                    .map(|flag| (MethodOption::P12Password, flag)),
            );
        }
        refuse_foreign(method, &given)?;
        let hardware_id = self
            .hardware_id
            .as_deref()
            .map(HardwareId::parse)
            .transpose()
            .map_err(Error::Usage)?;
        let mut warnings = Vec::new();
        if method.takes(MethodOption::Pkcs11) && self.p11.example_pin() {
            // As sota-stage.bbclass says it when SOTA_HSM_PIN_FILE is unset.
            warnings.push(format!(
                "no --p11-pin-file given: the device gets aktualizr's example PKCS#11 PIN {}; give the token's user PIN with --p11-pin-file",
                Hsm::default().pin.expose()
            ));
        }

        let mut p12_password = self.p12.resolve()?;
        if method.takes(MethodOption::P12Password) && !p12_password.expose().is_empty() {
            p12_password = check_secret_value(p12_password, "the p12 password", self.p12.source())?;
        }
        let options = FragmentOptions {
            method,
            hardware_id,
            p12_password,
            hsm: self
                .p11
                .into_hsm(device_cert && method == Method::DeviceCredHsm)?,
            report_config: match self.report_config {
                ReportConfigArg::Auto => ReportConfig::Auto,
                ReportConfigArg::On => ReportConfig::On,
                ReportConfigArg::Off => ReportConfig::Off,
            },
        };
        Ok(FragmentConfig {
            options,
            template_dir: self.template_dir,
            warnings,
        })
    }
}

/// What [`FragmentArgs`] become.
struct FragmentConfig {
    options: FragmentOptions,
    template_dir: Option<PathBuf>,
    /// For standard error, worded with the flags.
    warnings: Vec<String>,
}

#[derive(Debug, Args)]
pub struct StageArgs {
    /// The credentials archive (credentials.zip)
    #[arg(long, env = "SOTA_PACKED_CREDENTIALS", value_name = "FILE")]
    pub credentials: PathBuf,

    /// Folder the device files go under (a recipe's ${D})
    #[arg(long, value_name = "DIR")]
    pub device_root: PathBuf,

    #[command(flatten)]
    pub fragment: FragmentArgs,

    #[command(flatten)]
    pub output: StageOutputArgs,

    #[command(flatten)]
    pub device: DeviceCertArgs,

    #[command(flatten)]
    pub content: StageContentArgs,
}

/// Where `stage` writes besides the device root.
#[derive(Debug, Args)]
#[command(next_help_heading = "Outputs")]
pub struct StageOutputArgs {
    /// Folder the host tools' files go under
    #[arg(long, value_name = "DIR")]
    pub host_root: Option<PathBuf>,

    /// Write a manifest of the staged files here
    #[arg(long, value_name = "FILE")]
    pub manifest: Option<PathBuf>,

    /// Replace files (and folder modes) that differ from what would be
    /// staged, and remove files of the tool that this run does not stage
    #[arg(long)]
    pub force: bool,

    /// fsync every file written and each folder changed (for a live root
    /// filesystem; a build tree does not need it); also SOTA_STAGE_SYNC=1
    /// (1, 0, true, false, yes, no, on, off)
    #[arg(long)]
    pub sync: bool,

    /// Seconds to wait for another run staging into the same roots
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    pub lock_timeout: u64,
}

/// A device certificate staged into a device-cred image.
#[derive(Debug, Args)]
#[command(next_help_heading = "Device certificate (device-cred, device-cred-hsm)")]
pub struct DeviceCertArgs {
    /// Device certificate (PEM) to put in the image; with device-cred-hsm
    /// its key is in the device's token and the certificate is imported
    /// from var/sota/import/client.pem
    #[arg(long, value_name = "FILE")]
    pub device_cert: Option<PathBuf>,

    /// Its private key (PEM, unencrypted; device-cred only)
    #[arg(long, value_name = "FILE", requires = "device_cert")]
    pub device_key: Option<PathBuf>,
}

impl DeviceCertArgs {
    /// The certificate and, for device-cred, its key (required there;
    /// refused for device-cred-hsm, whose key is in the token).
    fn read(self, method: Method) -> Result<Option<DeviceCert>> {
        let Some(cert) = self.device_cert else {
            return Ok(None);
        };
        let key = match (method, self.device_key) {
            (Method::DeviceCredHsm, Some(_)) => {
                return Err(Error::Usage(
                    "--device-key does not apply to device-cred-hsm: the device's key is in its token; give only --device-cert".into(),
                ))
            }
            (Method::DeviceCredHsm, None) => None,
            (_, Some(key)) => Some(key),
            (_, None) => {
                return Err(Error::Usage(
                    "--device-cert needs --device-key for device-cred (the key the certificate was issued for)".into(),
                ))
            }
        };
        let cert_pem = files::read(&cert, Kind::Pem)?;
        let certs = x509::parse_pem_certificates(&cert_pem)
            .map_err(|e| Error::Invalid(format!("--device-cert `{}`: {e}", cert.display())))?;
        // The device's certificate, then the CAs that issued it (a
        // `device-certs` bundle's client.pem below an intermediate).
        let mut certs = certs.into_iter();
        let Some(cert_info) = certs.next() else {
            return Err(Error::Invalid(format!(
                "--device-cert `{}` holds no certificate",
                cert.display()
            )));
        };
        let chain: Vec<_> = certs.collect();
        let key = match key {
            Some(key) => {
                let key_pem = files::read(&key, Kind::Pem)?;
                let key_info = private_key::parse_private_key_pem(&key_pem).map_err(|e| {
                    Error::Invalid(format!("--device-key `{}`: {e}", key.display()))
                })?;
                Some((key_info, file_name(&key)))
            }
            None => None,
        };
        Ok(Some(DeviceCert {
            cert: cert_info,
            chain,
            key,
            cert_file: file_name(&cert),
        }))
    }
}

/// What `stage` takes from the archive.
#[derive(Debug, Args)]
#[command(next_help_heading = "Archive content")]
pub struct StageContentArgs {
    /// Do not pin root.json (and director.root.json) under var/sota/import
    #[arg(long)]
    pub no_root_pinning: bool,

    /// What to do with entries no tool reads: stage them with the host
    /// files, or drop them [default: refuse the archive]
    #[arg(long, value_enum, value_name = "WHAT")]
    pub unknown: Option<UnknownArg>,

    /// Accept a plain-http device URL (local test servers only)
    #[arg(long)]
    pub allow_http: bool,
}

/// `--unknown`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum UnknownArg {
    /// Stage them on the host side, with the host tools' files.
    Host,
    /// Leave them out.
    Drop,
}

impl StageArgs {
    fn into_config(self) -> Result<stage::Config> {
        let method = self.fragment.method;
        let inputs = named_inputs(&[
            ("--p12-password-file", &self.fragment.p12.p12_password_file),
            ("--p11-pin-file", &self.fragment.p11.p11_pin_file),
            ("--device-cert", &self.device.device_cert),
            ("--device-key", &self.device.device_key),
        ]);
        if self.device.device_cert.is_some() {
            refuse_foreign(method, &[(MethodOption::DeviceCert, "--device-cert")])?;
        }
        let FragmentConfig {
            options: fragment,
            template_dir,
            warnings,
        } = self
            .fragment
            .into_options(true, self.device.device_cert.is_some())?;
        let options = StageOptions {
            fragment,
            device_cert: self.device.read(method)?,
            root_pinning: !self.content.no_root_pinning,
            unknown: match self.content.unknown {
                None => UnknownPolicy::Refuse,
                Some(UnknownArg::Host) => UnknownPolicy::Host,
                Some(UnknownArg::Drop) => UnknownPolicy::Drop,
            },
            with_host: self.output.host_root.is_some(),
            epoch: source_date_epoch()?,
            now: x509::now_unix(),
        };
        Ok(stage::Config {
            options,
            template_dir,
            credentials: self.credentials,
            device_root: self.device_root,
            host_root: self.output.host_root,
            manifest: self.output.manifest,
            allow_http: self.content.allow_http,
            force: self.output.force,
            sync: sync_switch(self.output.sync)?,
            lock_timeout: lock_timeout(self.output.lock_timeout),
            inputs,
            warnings,
        })
    }
}

#[derive(Debug, Args)]
pub struct RenderArgs {
    #[command(flatten)]
    pub fragment: FragmentArgs,

    // The headings are named on each argument: the flattened PKCS#11
    // group's heading would otherwise carry over to them.
    /// Check that this credentials archive supports the method first
    #[arg(
        long,
        env = "SOTA_PACKED_CREDENTIALS",
        value_name = "FILE",
        help_heading = "Archive"
    )]
    pub credentials: Option<PathBuf>,

    /// Accept a plain-http device URL in --credentials
    #[arg(long, help_heading = "Archive")]
    pub allow_http: bool,

    /// Write the fragment to FILE (mode 0600 if it holds a password or PIN,
    /// else 0644) instead of standard output; missing folders are created
    #[arg(
        long,
        value_name = "FILE",
        conflicts_with = "output_dir",
        help_heading = "Outputs"
    )]
    pub output: Option<PathBuf>,

    /// Write each fragment into DIR under its own name (e.g.
    /// DIR/40-hardware-id.toml), with its mode; DIR is created if missing
    #[arg(long, value_name = "DIR", help_heading = "Outputs")]
    pub output_dir: Option<PathBuf>,

    /// Render only this fragment: the method's, or 40-hardware-id.toml
    #[arg(
        long = "fragment",
        value_enum,
        value_name = "WHICH",
        help_heading = "Outputs"
    )]
    pub only: Option<FragmentArg>,
}

/// `--fragment`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FragmentArg {
    /// 20-sota-<method>.toml
    Method,
    /// 40-hardware-id.toml (needs --hardware-id)
    HardwareId,
}

impl RenderArgs {
    fn into_config(self) -> Result<render::Config> {
        let reads_archive = self.credentials.is_some();
        let inputs = named_inputs(&[
            ("--p12-password-file", &self.fragment.p12.p12_password_file),
            ("--p11-pin-file", &self.fragment.p11.p11_pin_file),
        ]);
        let FragmentConfig {
            options: fragment,
            template_dir,
            warnings,
        } = self.fragment.into_options(reads_archive, false)?;
        let only = match self.only {
            None => None,
            Some(FragmentArg::Method) => Some(render::Only::Method),
            Some(FragmentArg::HardwareId) if fragment.hardware_id.is_none() => {
                return Err(Error::Usage(
                    "--fragment hardware-id needs --hardware-id (or SOTA_HARDWARE_ID)".into(),
                ))
            }
            Some(FragmentArg::HardwareId) => Some(render::Only::HardwareId),
        };
        let output = match (self.output, self.output_dir) {
            (Some(file), _) => {
                if fragment.hardware_id.is_some() && only.is_none() {
                    return Err(Error::Usage(
                        "--output takes one fragment, but --hardware-id adds a second (40-hardware-id.toml); pick one with --fragment, or use --output-dir".into(),
                    ));
                }
                render::Output::File(file)
            }
            (None, Some(dir)) => render::Output::Dir(dir),
            (None, None) => render::Output::Stdout,
        };
        Ok(render::Config {
            fragment,
            template_dir,
            credentials: self.credentials,
            allow_http: self.allow_http,
            output,
            only,
            epoch: source_date_epoch()?,
            now: x509::now_unix(),
            inputs,
            warnings,
        })
    }
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
    fn into_config(self) -> verify::Config {
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

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// The credentials archive whose host secrets must not be in the image
    #[arg(long, value_name = "CREDENTIALS", env = "SOTA_PACKED_CREDENTIALS")]
    pub credentials: PathBuf,

    /// Output format
    #[arg(long, value_enum, default_value_t = FormatArg::Text)]
    pub format: FormatArg,

    /// A file whose bytes, and private key when it is one, must not be in
    /// the image either (a fleet CA key, a signing key); repeatable
    #[arg(long, value_name = "FILE")]
    pub secret_file: Vec<PathBuf>,

    /// Report every private key in the image (PEM, DER, OpenSSH, PKCS#12)
    /// but where --manifest and --allow allow one
    #[arg(long)]
    pub any_private_key: bool,

    /// The manifest `stage --manifest` wrote: its device files may hold
    /// private keys (with --any-private-key)
    #[arg(long, value_name = "FILE", requires = "any_private_key")]
    pub manifest: Option<PathBuf>,

    /// A root-relative path where a private key is allowed (with
    /// --any-private-key); repeatable
    #[arg(long, value_name = "PATH", requires = "any_private_key")]
    pub allow: Vec<String>,

    /// Audit only what this ref (or commit id) of the OSTree repository
    /// PATH reaches: the commit an image build just made, not the earlier
    /// builds the repository keeps
    #[arg(long, value_name = "REF")]
    pub ostree_ref: Option<String>,

    /// Debug: write the fixed strings searched for, which are secrets, to
    /// a new file (mode 0600), one per line, for `rg -F -f`
    #[arg(long, value_name = "FILE", hide = true)]
    pub print_needles: Option<PathBuf>,

    /// Root file systems to audit: folders (IMAGE_ROOTFS), archives of them
    /// (tar, cpio, zip, compressed or not), disk or file system images,
    /// repositories (git, OSTree)
    #[arg(value_name = "PATH", required = true)]
    pub roots: Vec<PathBuf>,
}

impl AuditArgs {
    fn into_config(self) -> audit::Config {
        audit::Config {
            credentials: self.credentials,
            roots: self.roots,
            format: self.format.into(),
            secret_files: self.secret_file,
            any_private_key: self.any_private_key,
            manifest: self.manifest,
            allow: self.allow,
            print_needles: self.print_needles,
            ostree_ref: self.ostree_ref,
        }
    }
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
const PACKED_CREDENTIALS_ENV: &str = "SOTA_PACKED_CREDENTIALS";

impl InspectArgs {
    fn into_config(self) -> Result<inspect::Config> {
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
    fn given(&self) -> Vec<&'static str> {
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
    fn source(&self) -> &'static str {
        if self.p12_password.is_some() {
            "--p12-password"
        } else if self.p12_password_file.is_some() {
            "--p12-password-file"
        } else {
            P12_PASSWORD_ENV
        }
    }

    /// Resolves the password: flag, else file, else environment, else empty.
    fn resolve(&self) -> Result<Secret<String>> {
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
fn check_secret_value(value: Secret<String>, what: &str, from: &str) -> Result<Secret<String>> {
    match dialect_string(value.expose()) {
        Ok(_) => Ok(value),
        Err(why) => Err(Error::Usage(format!(
            "{what} given with {from} {why}, so it cannot be written into aktualizr's config; {what} must not contain `\"`, `\\` or control characters"
        ))),
    }
}

/// Reads a one-line secret from a file: one trailing `\n` or `\r\n` is
/// dropped, anything else is kept as is (a password may end in a space).
fn read_secret_file(path: &Path, flag: &str) -> Result<Secret<String>> {
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
fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

/// `SOURCE_DATE_EPOCH`, or the documented default when it is unset.
fn source_date_epoch() -> Result<i64> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(text) if !text.is_empty() => {
            crate::time::parse_source_date_epoch(&text).map_err(Error::Usage)
        }
        _ => Ok(crate::time::DEFAULT_SOURCE_DATE_EPOCH),
    }
}

#[derive(Debug, Args)]
#[command(
    override_usage = "sota-stage lint [OPTIONS] <PATH>...\n       sota-stage lint [OPTIONS] --root <DIR> [PATH]..."
)]
pub struct LintArgs {
    /// aktualizr config files or conf.d folders, read like `aktualizr
    /// --config PATH...`: a folder's *.toml files (hidden ones too, not
    /// recursive), all applied in byte-wise file-name order, a later PATH's
    /// file hiding an earlier one of the same name. Required unless --root
    /// is given; with --root, each PATH is taken inside DIR and replaces
    /// the default folders
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
    #[arg(long, value_enum, default_value_t = FormatArg::Text)]
    pub format: FormatArg,
}

impl LintArgs {
    fn into_config(self) -> lint::Config {
        lint::Config {
            paths: self.paths,
            root: self.root,
            explain: self.explain,
            deny_warnings: self.deny_warnings,
            format: self.format.into(),
        }
    }
}

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
    fn into_config(self) -> Result<device_certs::Config> {
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
