//! `sota-stage verify`: compare staged files with the manifest; exit 1 on
//! any missing, changed, extra or re-moded file.

use serde::Serialize;

use std::path::PathBuf;

use crate::aktualizr::diagnostic::Diagnostic;
use crate::commands::lint;
use crate::commands::shared::{file_label, json_report, Outcome};
use crate::error::{Result, EXIT_INVALID, EXIT_OK};
use crate::escape::escape;
use crate::files::{self, Kind};
use crate::intake::catalogue::Side;
use crate::plan::manifest::Manifest;
use crate::report::counted;
use crate::write::apply::Roots;
use crate::write::verify::{self, Difference};

/// `verify`'s output: a report, JSON, or a `sha256sum -c` listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
    Sha256sum,
}

/// Everything one `verify` run needs.
#[derive(Debug)]
pub struct Config {
    pub manifest: PathBuf,
    pub device_root: PathBuf,
    pub host_root: Option<PathBuf>,
    pub format: Format,
}

pub fn run(args: &Config) -> Result<Outcome> {
    let text = files::read(&args.manifest, Kind::Manifest)?;
    let manifest = Manifest::parse(&file_label(&args.manifest), &text)?;
    let roots = Roots {
        device: &args.device_root,
        host: args.host_root.as_deref(),
    };
    let differences = verify::verify(&manifest, &roots)?;
    // The configuration the device root adds up to must not send a secret
    // to the server (`[telemetry] report_config`): what `lint --root` says.
    // A config file that cannot be read (one replaced by something huge)
    // fails the run anyway when it is a staged file: the differences say so.
    let config_errors = if args.device_root.is_dir() {
        match lint::secrets_sent_under(&args.device_root) {
            Ok(errors) => errors,
            Err(_) if !differences.is_empty() => Vec::new(),
            Err(e) => return Err(e),
        }
    } else {
        Vec::new()
    };
    let ok = differences.is_empty() && config_errors.is_empty();
    let exit = if ok { EXIT_OK } else { EXIT_INVALID };
    // File names and messages quote what the files hold.
    let config_listing: String = config_errors
        .iter()
        .map(|d| {
            let fix = d
                .fix
                .as_deref()
                .map(|f| format!("; {f}"))
                .unwrap_or_default();
            format!(
                "{}:{}:{}: error: {}{}\n",
                escape(&d.file),
                d.line,
                d.column,
                escape(&d.message),
                escape(&fix)
            )
        })
        .collect();
    // A difference names paths from the manifest, which is read from outside.
    let listing: String = differences
        .iter()
        .map(|d| format!("{}\n", escape(&d.to_string())))
        .collect();
    let checked = manifest
        .files
        .iter()
        .filter(|f| f.root == Side::Device || args.host_root.is_some())
        .count();
    let (stdout, stderr) = match args.format {
        Format::Text => {
            let mut out = listing;
            out.push_str(&config_listing);
            let config = match config_errors.len() {
                0 => String::new(),
                1 => ", 1 configuration error".to_string(),
                n => format!(", {n} configuration errors"),
            };
            out.push_str(&format!(
                "{}: {} checked, {}{config}\n",
                if ok { "ok" } else { "not ok" },
                counted(checked as u64, "file", "files"),
                counted(differences.len() as u64, "difference", "differences")
            ));
            (out, String::new())
        }
        Format::Json => {
            #[derive(Serialize)]
            struct Verified<'a> {
                checked: usize,
                differences: &'a [Difference],
                #[serde(skip_serializing_if = "<[Diagnostic]>::is_empty")]
                config_errors: &'a [Diagnostic],
            }
            let fields = Verified {
                checked,
                differences: &differences,
                config_errors: &config_errors,
            };
            (json_report(ok, &fields), String::new())
        }
        Format::Sha256sum => {
            let mut out = manifest.sha256sum(Side::Device, &args.device_root.to_string_lossy());
            if let Some(host) = &args.host_root {
                out.push_str(&manifest.sha256sum(Side::Host, &host.to_string_lossy()));
            }
            (out, format!("{listing}{config_listing}"))
        }
    };
    Ok(Outcome {
        stdout,
        stderr,
        exit,
    })
}
