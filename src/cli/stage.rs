//! `stage`'s arguments and their conversion.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use super::fragment::{refuse_foreign, FragmentArgs, FragmentConfig};
use super::shared::{file_name, lock_timeout, named_inputs, source_date_epoch, sync_switch};
use crate::commands::stage;
use crate::crypto::{private_key, x509};
use crate::error::{Error, Result};
use crate::files::{self, Kind};
use crate::plan::methods::{Method, MethodOption};
use crate::plan::options::{DeviceCert, StageOptions, UnknownPolicy};

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
    pub(super) fn into_config(self) -> Result<stage::Config> {
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
