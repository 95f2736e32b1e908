//! `sota-stage inspect CREDENTIALS`: every entry with its role, whether it
//! is secret, who reads it and what is wrong with it, and the provisioning
//! methods the archive supports. Exit 0 without errors, 1 with.
//!
//! The JSON form (`--format json`) is stable; docs/inspect.md documents it.

use std::fmt::Write;

use serde::Serialize;

use std::path::PathBuf;

use crate::checks::{self, EntryReport, Findings};
use crate::commands::shared::{context, file_label, Outcome};
use crate::error::{Error, Result, EXIT_INVALID, EXIT_OK};
use crate::escape::escape;
use crate::intake::archive::{self, Archive, Limits};
use crate::plan::methods::Method;
use crate::report::{counted, Format, Problem};
use crate::secret::Secret;

/// Everything one `inspect` run needs.
#[derive(Debug)]
pub struct Config {
    pub credentials: PathBuf,
    pub p12_password: Secret<String>,
    pub allow_http: bool,
    pub format: Format,
    /// The time certificates are judged at.
    pub now: i64,
}

pub fn run(args: &Config) -> Result<Outcome> {
    let password = &args.p12_password;
    let label = file_label(&args.credentials);
    let archive = match archive::read(&args.credentials, &Limits::default()) {
        Ok(archive) => archive,
        Err(Error::Archive { file, source }) if args.format == Format::Json => {
            let problem = Problem::error(format!("{file}: {source}"));
            return Ok(Outcome {
                stdout: to_json(&Report {
                    schema: 1,
                    file: &label,
                    sha256: None,
                    ok: false,
                    methods: Vec::new(),
                    entries: &[],
                    problems: std::slice::from_ref(&problem),
                }),
                stderr: String::new(),
                exit: EXIT_INVALID,
            });
        }
        Err(e) => return Err(e),
    };
    let findings = checks::check_archive(&archive, &context(password, args.allow_http, args.now));
    Ok(report(&label, &archive, &findings, args.format))
}

/// The report on an archive that passed intake, as `inspect` prints it
/// (`label` names the archive). Pure; the fuzz targets call it too.
pub fn report(label: &str, archive: &Archive, findings: &Findings, format: Format) -> Outcome {
    let stdout = match format {
        Format::Json => to_json(&Report {
            schema: 1,
            file: label,
            sha256: Some(&archive.sha256),
            ok: findings.ok(),
            methods: findings.methods.clone(),
            entries: &findings.entries,
            problems: &findings.problems,
        }),
        Format::Text => text(label, &archive.sha256, findings),
    };
    Outcome {
        stdout,
        stderr: String::new(),
        exit: if findings.ok() { EXIT_OK } else { EXIT_INVALID },
    }
}

#[derive(Serialize)]
struct Report<'a> {
    schema: u32,
    file: &'a str,
    sha256: Option<&'a str>,
    ok: bool,
    methods: Vec<Method>,
    entries: &'a [EntryReport],
    problems: &'a [Problem],
}

fn to_json(report: &Report<'_>) -> String {
    // Serialising plain data into a String cannot fail.
    let mut out = serde_json::to_string_pretty(report).unwrap_or_default();
    out.push('\n');
    out
}

/// The text report. Every string that comes from outside (the file name,
/// entry names, details such as certificate subjects and root.json's
/// `expires`, problem messages that quote them) goes through [`escape`]:
/// a hostile value must not forge a line, a colour or a direction.
fn text(label: &str, sha256: &str, findings: &Findings) -> String {
    let label = escape(label);
    let mut out = String::new();
    let _ = writeln!(out, "{label}  sha256 {sha256}\n");
    let names: Vec<_> = findings.entries.iter().map(|e| escape(&e.name)).collect();
    let width = names
        .iter()
        .map(|n| n.chars().count())
        .max()
        .unwrap_or(0)
        .max("ENTRY".len());
    let _ = writeln!(
        out,
        "{:<width$}  {:<9}  {:<6}  {:>8}  READ BY",
        "ENTRY", "ROLE", "SECRET", "SIZE"
    );
    for (entry, name) in findings.entries.iter().zip(&names) {
        let _ = writeln!(
            out,
            "{:<width$}  {:<9}  {:<6}  {:>8}  {}",
            name,
            entry.role.as_str(),
            if entry.secret { "yes" } else { "no" },
            entry.size,
            if entry.readers.is_empty() {
                "-".to_string()
            } else {
                entry.readers.join(", ")
            },
        );
        for d in &entry.details {
            let _ = writeln!(out, "{:width$}    {}: {}", "", d.label, escape(&d.value));
        }
    }

    let problems: Vec<&Problem> = findings
        .problems
        .iter()
        .chain(findings.entries.iter().flat_map(|e| e.problems.iter()))
        .collect();
    if !problems.is_empty() {
        out.push('\n');
        for p in problems {
            let _ = writeln!(
                out,
                "{}: {label}: {}",
                p.severity.as_str(),
                escape(&p.message)
            );
        }
    }

    out.push('\n');
    let methods: Vec<&str> = findings.methods.iter().map(|m| m.as_str()).collect();
    let _ = writeln!(
        out,
        "methods: {}",
        if methods.is_empty() {
            "none".to_string()
        } else {
            methods.join(", ")
        }
    );
    let (errors, warnings) = (findings.error_count(), findings.warning_count());
    let _ = writeln!(
        out,
        "result: {}, {}, {}",
        if errors == 0 { "ok" } else { "not ok" },
        counted(errors as u64, "error", "errors"),
        counted(warnings as u64, "warning", "warnings"),
    );
    out
}
