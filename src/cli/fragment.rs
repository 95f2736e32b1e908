//! The options that shape the rendered fragments (`stage` and `render`),
//! the PKCS#11 options, and the refusal of an option the method does not
//! take.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use super::shared::{check_secret_value, read_secret_file, P12PasswordArgs};
use crate::error::{Error, Result};
use crate::escape::escape;
use crate::plan::methods::{Method, MethodOption};
use crate::plan::options::{FragmentOptions, HardwareId, Hsm, ObjectId, ReportConfig};
use crate::plan::render::dialect_path;
use crate::secret::Secret;

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

pub(super) fn parse_method(s: &str) -> std::result::Result<Method, String> {
    s.parse()
}

/// Refuses options the method does not take, the same way for each:
/// `given` lists (option, flag) pairs the user gave.
pub(super) fn refuse_foreign(method: Method, given: &[(MethodOption, &str)]) -> Result<()> {
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
    pub(super) fn into_options(
        self,
        reads_archive: bool,
        device_cert: bool,
    ) -> Result<FragmentConfig> {
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
pub(super) struct FragmentConfig {
    pub(super) options: FragmentOptions,
    pub(super) template_dir: Option<PathBuf>,
    /// For standard error, worded with the flags.
    pub(super) warnings: Vec<String>,
}
