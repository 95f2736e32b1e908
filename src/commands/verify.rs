//! `sota-stage verify`: compare staged files with the manifest; exit 1 on
//! any missing, changed, extra or re-moded file.

use serde::Serialize;

use std::path::PathBuf;

use crate::commands::shared::{file_label, Outcome};
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
    let exit = if differences.is_empty() {
        EXIT_OK
    } else {
        EXIT_INVALID
    };
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
            out.push_str(&format!(
                "{}: {} checked, {}\n",
                if differences.is_empty() {
                    "ok"
                } else {
                    "not ok"
                },
                counted(checked as u64, "file", "files"),
                counted(differences.len() as u64, "difference", "differences")
            ));
            (out, String::new())
        }
        Format::Json => {
            #[derive(Serialize)]
            struct Report<'a> {
                schema: u32,
                ok: bool,
                checked: usize,
                differences: &'a [Difference],
            }
            let mut out = serde_json::to_string_pretty(&Report {
                schema: 1,
                ok: differences.is_empty(),
                checked,
                differences: &differences,
            })
            .unwrap_or_default();
            out.push('\n');
            (out, String::new())
        }
        Format::Sha256sum => {
            let mut out = manifest.sha256sum(Side::Device, &args.device_root.to_string_lossy());
            if let Some(host) = &args.host_root {
                out.push_str(&manifest.sha256sum(Side::Host, &host.to_string_lossy()));
            }
            (out, listing)
        }
    };
    Ok(Outcome {
        stdout,
        stderr,
        exit,
    })
}
