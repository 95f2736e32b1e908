//! `sota-stage audit --credentials C PATH...`: proves that no host secret
//! of the archive reached an image (docs/audit.md). Exit 0 when no error
//! was found (warnings are printed), 1 otherwise. Never prints a secret:
//! paths, members, kinds and the secrets' names.
//!
//! The JSON form (`--format json`) is stable: `schema`, `ok`, `files`,
//! `notes`, `findings` (`root` when several PATHs were given, `path`,
//! `member`, `kind`, `severity`, `message`).
//!
//! `--secret-file` and `--any-private-key` add to what the archive says
//! must not be there; `--print-needles` (hidden, a debug option for the
//! benchmark script) writes the fixed strings searched, which are secrets.

use std::io::{IsTerminal, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::audit::patterns::{Extra, SecretFile};
use crate::audit::{self, Finding, Kind, Limits, Needles};
use crate::commands::shared::{file_label, json_report, Outcome};
use crate::error::{Error, Result, EXIT_INVALID, EXIT_OK};
use crate::escape::escape;
use crate::files;
use crate::intake::archive;
use crate::intake::catalogue::Side;
use crate::plan::manifest::Manifest;
use crate::report::{counted, Format, Severity};

/// Everything one `audit` run needs.
#[derive(Debug)]
pub struct Config {
    pub credentials: PathBuf,
    pub roots: Vec<PathBuf>,
    pub format: Format,
    /// `--secret-file`.
    pub secret_files: Vec<PathBuf>,
    pub any_private_key: bool,
    /// `--manifest`: its device files may hold keys.
    pub manifest: Option<PathBuf>,
    /// `--allow`.
    pub allow: Vec<String>,
    /// `--print-needles`.
    pub print_needles: Option<PathBuf>,
    /// Only what this ref or commit of the one OSTree repository given
    /// reaches.
    pub ostree_ref: Option<String>,
}

/// What the options add to the archive's secrets.
fn extra(args: &Config) -> Result<Extra> {
    let mut secret_files = Vec::new();
    for path in &args.secret_files {
        let data = files::read(path, files::Kind::Pem)?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| path.display().to_string());
        secret_files.push(SecretFile { name, data });
    }
    let mut allow: Vec<String> = args.allow.clone();
    if let Some(path) = &args.manifest {
        let text = files::read(path, files::Kind::Manifest)?;
        let manifest = Manifest::parse(&file_label(path), &text)?;
        allow.extend(
            manifest
                .files
                .into_iter()
                .filter(|f| f.root == Side::Device)
                .map(|f| f.path),
        );
    }
    Ok(Extra {
        secret_files,
        any_private_key: args.any_private_key,
        allow,
    })
}

/// `--print-needles`: one fixed string a line, as `rg -F -f` reads them,
/// into a new file only its owner reads; never a terminal. Strings holding
/// a line break cannot be written so: their count goes to stderr.
fn print_needles(path: &Path, needles: &Needles) -> Result<String> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| Error::io("create", path, e))?;
    if file.is_terminal() {
        return Err(Error::Usage(format!(
            "`{}` is a terminal; --print-needles writes secrets, give it a new file",
            escape(&path.display().to_string())
        )));
    }
    let mut out = Vec::new();
    let mut skipped = 0;
    for s in needles.fixed_strings() {
        if s.contains(&b'\n') || s.contains(&b'\r') {
            skipped += 1;
            continue;
        }
        out.extend_from_slice(s);
        out.push(b'\n');
    }
    file.write_all(&out)
        .map_err(|e| Error::io("write", path, e))?;
    Ok(format!(
        "warning: --print-needles wrote secrets to `{}`; {} holding a line break left out\n",
        escape(&path.display().to_string()),
        counted(skipped as u64, "string", "strings")
    ))
}

pub fn run(args: &Config) -> Result<Outcome> {
    let label = file_label(&args.credentials);
    let archive = archive::read(&args.credentials, &archive::Limits::default())?;
    // The file's size selects which image files get hashed; intake read
    // its bytes already.
    let size = std::fs::metadata(&args.credentials)
        .map_err(|e| Error::io("read", &args.credentials, e))?
        .len();
    let needles = Needles::build(&archive, size, &extra(args)?);
    let printed = match &args.print_needles {
        Some(path) => print_needles(path, &needles)?,
        None => String::new(),
    };
    let limits = Limits::default();
    let several = args.roots.len() > 1;
    let mut findings: Vec<Finding> = Vec::new();
    let mut files = 0;
    for root in &args.roots {
        let report = match &args.ostree_ref {
            Some(name) => audit::audit_ostree_ref(root, name, &needles, &limits)?,
            None => audit::audit(root, &needles, &limits)?,
        };
        files += report.files;
        // A key where the manifest or --allow puts one is no finding (the
        // scanner asks too; a member is allowed by its container's path).
        let report_findings = report
            .findings
            .into_iter()
            .filter(|f| !(f.kind == Kind::PrivateKey && needles.allowed(&f.path)));
        findings.extend(report_findings.map(|mut f| {
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
            struct Audited<'a> {
                files: u64,
                notes: &'a [String],
                findings: &'a [Finding],
            }
            json_report(
                ok,
                &Audited {
                    files,
                    notes: &notes,
                    findings: &findings,
                },
            )
        }
        Format::Text => {
            let mut out: String = findings
                .iter()
                .map(
                    |f| match (&f.root, f.path.is_empty(), args.roots.as_slice()) {
                        // On the root itself: named by the one PATH given (the
                        // JSON keeps `path` empty and no `root`, as documented).
                        (None, true, [root]) => {
                            let named = Finding {
                                root: Some(root.display().to_string()),
                                ..f.clone()
                            };
                            format!("{}\n", named.line())
                        }
                        _ => format!("{}\n", f.line()),
                    },
                )
                .collect();
            out.push_str(&format!(
                "{}: {} audited against {}, {}, {}\n",
                if ok { "ok" } else { "not ok" },
                counted(files, "file", "files"),
                escape(&label),
                counted(errors as u64, "error", "errors"),
                counted(warnings as u64, "warning", "warnings")
            ));
            out
        }
    };
    let stderr = printed
        + &notes
            .iter()
            .map(|n| format!("warning: {}\n", escape(n)))
            .collect::<String>();
    Ok(Outcome {
        stdout,
        stderr,
        exit: if ok { EXIT_OK } else { EXIT_INVALID },
    })
}
