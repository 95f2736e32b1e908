//! `render`'s arguments and their conversion.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use super::fragment::{FragmentArgs, FragmentConfig};
use super::shared::{named_inputs, source_date_epoch};
use crate::commands::render;
use crate::crypto::x509;
use crate::error::{Error, Result};

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
    pub(super) fn into_config(self) -> Result<render::Config> {
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
