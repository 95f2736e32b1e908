//! `sota-stage audit --credentials C PATH...`: proves that no host secret
//! of the archive reached an image (docs/audit.md). Exit 0 when no error
//! was found (warnings are printed), 1 otherwise. Never prints a secret:
//! paths, members, kinds and the secrets' names.
//!
//! The JSON form (`--format json`) is stable: `schema`, `ok`, `files`,
//! `notes`, `findings` (`root` when several PATHs were given, `path`,
//! `member`, `kind`, `severity`, `message`).

use std::path::PathBuf;

use serde::Serialize;

use crate::audit::{self, Finding, Limits, Needles};
use crate::commands::shared::{file_label, Outcome};
use crate::error::{Error, Result, EXIT_INVALID, EXIT_OK};
use crate::escape::escape;
use crate::intake::archive;
use crate::report::{Format, Severity};

/// Everything one `audit` run needs.
#[derive(Debug)]
pub struct Config {
    pub credentials: PathBuf,
    pub roots: Vec<PathBuf>,
    pub format: Format,
}

pub fn run(args: &Config) -> Result<Outcome> {
    let label = file_label(&args.credentials);
    let archive = archive::read(&args.credentials, &archive::Limits::default())?;
    // The file's size selects which image files get hashed; intake read
    // its bytes already.
    let size = std::fs::metadata(&args.credentials)
        .map_err(|e| Error::io("read", &args.credentials, e))?
        .len();
    let needles = Needles::from_archive(&archive, size);
    let limits = Limits::default();
    let several = args.roots.len() > 1;
    let mut findings: Vec<Finding> = Vec::new();
    let mut files = 0;
    for root in &args.roots {
        let report = audit::audit(root, &needles, &limits)?;
        files += report.files;
        findings.extend(report.findings.into_iter().map(|mut f| {
            if several {
                f.root = Some(root.display().to_string());
            }
            f
        }));
    }
    let errors = findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .count();
    let warnings = findings.len() - errors;
    let ok = errors == 0;
    let notes: Vec<String> = needles
        .notes
        .iter()
        .map(|n| format!("{label}: {n}"))
        .collect();
    let stdout = match args.format {
        Format::Json => {
            #[derive(Serialize)]
            struct Report<'a> {
                schema: u32,
                ok: bool,
                files: u64,
                notes: &'a [String],
                findings: &'a [Finding],
            }
            let mut out = serde_json::to_string_pretty(&Report {
                schema: 1,
                ok,
                files,
                notes: &notes,
                findings: &findings,
            })
            .unwrap_or_default();
            out.push('\n');
            out
        }
        Format::Text => {
            let mut out: String = findings.iter().map(|f| format!("{}\n", f.line())).collect();
            out.push_str(&format!(
                "{}: {files} files audited against {}, {errors} errors, {warnings} warnings\n",
                if ok { "ok" } else { "not ok" },
                escape(&label)
            ));
            out
        }
    };
    let stderr = notes
        .iter()
        .map(|n| format!("warning: {}\n", escape(n)))
        .collect();
    Ok(Outcome {
        stdout,
        stderr,
        exit: if ok { EXIT_OK } else { EXIT_INVALID },
    })
}
