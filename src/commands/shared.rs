//! What the commands share: their outcome, reading and checking the
//! archive, reading the template folder, and the wording of hints and
//! refusals that name the command line's flags.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::checks::{self, Context, Findings, Hints};
use crate::error::{Blocker, Error, Result};
use crate::escape::escape;
use crate::files::{self, Kind};
use crate::intake::archive::{self, Archive, Limits};
use crate::plan::options::{FragmentOptions, ReportConfig};
use crate::plan::render::Templates;
use crate::report::Problem;
use crate::secret::Secret;

/// What a command wants printed, and the exit status.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    pub stdout: String,
    pub stderr: String,
    pub exit: u8,
}

/// The fixes the checks suggest, in the command line's words.
const HINTS: Hints = Hints {
    p12_password: "give the right one with --p12-password-file or SOTA_P12_PASSWORD",
    unknown: "--unknown host or --unknown drop",
    allow_http: "pass --allow-http",
};
/// The same, in a refusal.
const UNKNOWN_FIX: &str = "--unknown host (stage them with the host files) or --unknown drop";

/// The checks' context, with the command line's wording.
pub(crate) fn context(password: &Secret<String>, allow_http: bool, now: i64) -> Context<'_> {
    Context {
        p12_password: password,
        allow_http,
        now,
        hints: &HINTS,
    }
}

/// A refusal, worded with the flags that fix it.
pub(crate) fn with_flags(e: Error) -> Error {
    match e {
        Error::Refused {
            label,
            method,
            blockers,
        } => {
            let lines: Vec<String> = blockers
                .iter()
                .map(|b| match b {
                    Blocker::UnknownEntries(_) => format!("{b} with {UNKNOWN_FIX}"),
                    Blocker::Problem(_) => b.to_string(),
                })
                .map(|line| escape(&line).into_owned())
                .collect();
            Error::Invalid(format!(
                "{label}: cannot stage for {method}:\n  - {}",
                lines.join("\n  - ")
            ))
        }
        Error::Conflicts(conflicts) => Error::Invalid(format!(
            "staging would change files that are already there; nothing was written (pass --force to replace them):\n  - {}",
            conflicts.join("\n  - ")
        )),
        Error::Locked {
            path,
            holder,
            waited,
        } => Error::io(
            "lock",
            &path,
            std::io::Error::other(format!(
                "another sota-stage run{} is staging into it and still holds it after {} s; nothing was written: wait for it to finish, or wait longer with --lock-timeout",
                holder.map(|pid| format!(" (process {pid})")).unwrap_or_default(),
                waited.as_secs()
            )),
        ),
        other => other,
    }
}

/// Reads and checks an archive for `stage` and `render`.
pub(crate) fn read_checked(
    path: &Path,
    password: &Secret<String>,
    allow_http: bool,
    now: i64,
) -> Result<(Archive, Findings)> {
    let archive = archive::read(path, &Limits::default())?;
    let findings = checks::check_archive(&archive, &context(password, allow_http, now));
    Ok((archive, findings))
}

/// The most files a template folder may hold: it replaces four templates.
const MAX_TEMPLATE_DIR_ENTRIES: usize = 1000;

/// The templates of a run: the built-in ones, replaced file by file by the
/// `*.hbs` files of `dir`. Read once, before planning; a folder that cannot
/// be read is an error, never a silent fall-back to the built-in ones.
pub(crate) fn read_templates(dir: Option<&Path>) -> Result<Templates> {
    let Some(dir) = dir else {
        return Ok(Templates::built_in());
    };
    let entries =
        std::fs::read_dir(dir).map_err(|e| Error::io("read the template folder", dir, e))?;
    let mut files = Vec::new();
    for (count, entry) in entries.enumerate() {
        let entry = entry.map_err(|e| Error::io("read the template folder", dir, e))?;
        if count >= MAX_TEMPLATE_DIR_ENTRIES {
            return Err(Error::Usage(format!(
                "template folder `{}` holds more than {MAX_TEMPLATE_DIR_ENTRIES} entries; give a folder of *.toml.hbs templates",
                dir.display()
            )));
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.ends_with(".hbs") {
            continue;
        }
        let path = entry.path();
        // File names in the folder come from disk: shown escaped in every
        // message that names the template.
        let origin = escape(&path.display().to_string()).into_owned();
        let bytes = files::read(&path, Kind::Template)?;
        let text = String::from_utf8(bytes)
            .map_err(|_| Error::Invalid(format!("template `{origin}` is not valid UTF-8")))?;
        files.push((name, origin, text));
    }
    Templates::with_overrides(files).map_err(Error::Usage)
}

/// The archive's file name, without its folder: messages and reports do not
/// depend on where the archive sits.
pub(crate) fn file_label(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

/// Warnings, one per line, for standard error, naming the archive.
pub(crate) fn warnings_text(label: &str, problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| {
            format!(
                "{}: {}: {}\n",
                p.severity.as_str(),
                escape(label),
                escape(&p.message)
            )
        })
        .collect()
}

/// A file a run reads or writes, as the messages name it (`--credentials
/// `c.zip``, `host:credentials.zip (under --host-root)`), and its path.
pub(crate) type Named = (String, PathBuf);

/// `--flag `path``, the path escaped.
pub(crate) fn flag_file(flag: &str, path: &Path) -> String {
    format!("{flag} `{}`", escape(&path.display().to_string()))
}

/// The templates of `--template-dir`, as inputs of the run.
pub(crate) fn template_inputs(dir: Option<&Path>) -> Vec<Named> {
    let Some(entries) = dir.and_then(|d| std::fs::read_dir(d).ok()) else {
        return Vec::new();
    };
    entries
        .flatten()
        .take(MAX_TEMPLATE_DIR_ENTRIES)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "hbs"))
        .map(|p| (flag_file("the template", &p), p))
        .collect()
}

/// Refuses an output that is one of the inputs: the same file once links
/// are followed (the same device and inode numbers, so a hard link or a
/// bind mount is seen too), whatever the paths say. An output that does
/// not exist yet is no input. Run before anything is written.
pub(crate) fn refuse_outputs_over_inputs(outputs: &[Named], inputs: &[Named]) -> Result<()> {
    let id = |path: &Path| std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()));
    let inputs: Vec<(&String, (u64, u64))> = inputs
        .iter()
        .filter_map(|(name, path)| Some((name, id(path)?)))
        .collect();
    if inputs.is_empty() {
        return Ok(());
    }
    for (output, path) in outputs {
        let Some(out) = id(path) else { continue };
        if let Some((input, _)) = inputs.iter().find(|(_, i)| *i == out) {
            return Err(Error::Usage(format!(
                "{output} is {input} (the same file): an output never replaces an input; nothing was written: write it elsewhere"
            )));
        }
    }
    Ok(())
}

/// What `stage` and `render` say about their options on standard error:
/// the command line's warnings, and a note when the method's fragment got
/// `report_config = false` because it holds a secret (not when told to:
/// `--report-config off` asked for it).
pub(crate) fn options_text(warnings: &[String], fragment: &FragmentOptions) -> String {
    let mut out: String = warnings.iter().map(|w| format!("warning: {w}\n")).collect();
    if fragment.report_config == ReportConfig::Auto && fragment.report_config_off() {
        out.push_str(&format!(
            "note: {} holds a password or PIN: it sets `[telemetry] report_config = false`, so aktualizr does not send its configuration to the server (--report-config on leaves aktualizr's default)\n",
            fragment.method.spec().template.trim_end_matches(".hbs")
        ));
    }
    out
}

/// A command's report in JSON (`--format json`): `schema` 1 and `ok`,
/// then the command's own `fields` in their order, pretty-printed, with a
/// final newline.
pub fn json_report<T: serde::Serialize>(ok: bool, fields: &T) -> String {
    #[derive(serde::Serialize)]
    struct Report<'a, T> {
        schema: u32,
        ok: bool,
        #[serde(flatten)]
        fields: &'a T,
    }
    let mut out = serde_json::to_string_pretty(&Report {
        schema: 1,
        ok,
        fields,
    })
    .unwrap_or_default();
    out.push('\n');
    out
}
