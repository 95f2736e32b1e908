//! `sota-stage lint`: find the files aktualizr would read, check each one,
//! and with `--explain` show the configuration they add up to.
//!
//! The files are gathered the way aktualizr's `BaseConfig::updateFromDirs`
//! does for `--config PATH...` (domain.md section 3): a folder gives its
//! `*.toml` files (hidden ones too, subfolders never), a file is taken
//! whatever its name, and all of them are applied in byte-wise order of
//! their file names, whichever folder they come from; a later PATH's file
//! replaces ("hides") an earlier one of the same name. `--root DIR` gives
//! the default folders `DIR/usr/lib/sota/conf.d` then `DIR/etc/sota/conf.d`.
//!
//! [`run`] reads: it finds the files (`gather`) and their bytes
//! (`read_all`); `check` is pure from there on: it parses, checks,
//! merges and writes the report. The checks are in
//! [`crate::aktualizr::rules`], the merge in [`crate::aktualizr::explain`].

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};

use serde::Serialize;

use crate::aktualizr::diagnostic::Diagnostic;
use crate::aktualizr::explain::{self, Explanation};
use crate::aktualizr::paths::DEFAULT_CONFIG_DIRS;
use crate::aktualizr::servers::{ServerUrls, Servers, RUNTIME_SERVER};
use crate::aktualizr::{ini, rules};
use crate::commands::shared::Outcome;
use crate::error::{Error, Result, EXIT_INVALID, EXIT_OK};
use crate::escape::escape;
use crate::files::{self, Kind};
use crate::report::{counted, has_errors, Format, Severity};

/// Version of the JSON report.
pub const JSON_SCHEMA: u32 = 1;

/// What `lint` reads and how it reports.
#[derive(Debug, Clone)]
pub struct Config {
    /// Config files or conf.d folders; inside `root` when it is given.
    pub paths: Vec<PathBuf>,
    /// A device root: read aktualizr's default folders under it.
    pub root: Option<PathBuf>,
    pub explain: bool,
    pub deny_warnings: bool,
    pub format: Format,
}

/// What `lint` is asked to do with the files, apart from finding them.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub explain: bool,
    pub deny_warnings: bool,
    pub format: Format,
}

pub fn run(args: &Config) -> Result<Outcome> {
    let sources = gather(args.root.as_deref(), &args.paths)?;
    if sources.applied.is_empty() {
        return Err(Error::Invalid(no_files_message(
            args.root.as_deref(),
            &args.paths,
        )));
    }
    let contents = read_all(&sources)?;
    let options = Options {
        explain: args.explain,
        deny_warnings: args.deny_warnings,
        format: args.format,
    };
    check(&sources, &contents, options, args.root.is_some())
}

/// The bytes of every file, in [`Sources::all`] order.
fn read_all(sources: &Sources) -> Result<Vec<Vec<u8>>> {
    sources
        .all()
        .map(|(file, _)| files::read_shown(&file.path, Path::new(&file.shown), Kind::Config))
        .collect()
}

/// Checks config texts given in memory, in the order aktualizr applies
/// them: (name as printed, bytes). No file is read; the fuzz targets call
/// it with hostile text.
pub fn check_texts(files: &[(String, Vec<u8>)], options: Options) -> Result<Outcome> {
    let sources = Sources {
        applied: files
            .iter()
            .map(|(shown, _)| SourceFile {
                path: PathBuf::from(shown),
                shown: shown.clone(),
            })
            .collect(),
        hidden: Vec::new(),
    };
    let contents: Vec<Vec<u8>> = files.iter().map(|(_, bytes)| bytes.clone()).collect();
    check(&sources, &contents, options, false)
}

/// The pure part: checks the files read (`contents`, in [`Sources::all`]
/// order) and writes the report. `image`: the files are a device root's
/// whole configuration, so a secret the merge would send to the server is
/// an error ([`explain::secrets_sent`]), with or without `--explain`.
fn check(
    sources: &Sources,
    contents: &[Vec<u8>],
    options: Options,
    image: bool,
) -> Result<Outcome> {
    let mut problems = Vec::new();
    let mut applied_docs = Vec::new();
    for ((file, hidden), bytes) in sources.all().zip(contents) {
        let (text, bad_utf8) = decode(bytes);
        if let Some(position) = bad_utf8 {
            problems.push(Diagnostic::warning(
                file.shown.as_str(),
                position,
                "the file is not valid UTF-8: aktualizr takes the bytes as they are; they are \
                 checked here as U+FFFD",
                Some("save the file as UTF-8".to_string()),
            ));
        }
        let doc = ini::parse(&file.shown, &text);
        problems.extend(rules::lint_document(&doc));
        if !hidden {
            applied_docs.push(doc);
        }
    }
    let merged = (options.explain || image).then(|| explain::explain(&applied_docs));
    if let Some(merged) = &merged {
        if image {
            problems.extend(explain::secrets_sent(merged));
        } else {
            problems.extend(merged.problems.iter().cloned());
        }
    }
    let explanation = merged.filter(|_| options.explain);
    // Files in the order read, then by position.
    let order: BTreeMap<&str, usize> = sources
        .all()
        .enumerate()
        .map(|(i, (f, _))| (f.shown.as_str(), i))
        .collect();
    problems.sort_by_key(|d| (order.get(d.file.as_str()).copied(), d.line, d.column));

    let errors = problems
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .count();
    let warnings = problems.len() - errors;
    let exit = if has_errors(&problems) || (options.deny_warnings && warnings > 0) {
        EXIT_INVALID
    } else {
        EXIT_OK
    };
    let report = Report {
        sources,
        problems: &problems,
        errors,
        warnings,
        explanation: explanation.as_ref(),
    };
    let stdout = match options.format {
        Format::Text => report.text(),
        Format::Json => report.json()?,
    };
    Ok(Outcome {
        stdout,
        stderr: String::new(),
        exit,
    })
}

/// The secrets the configuration under a device root (aktualizr's default
/// folders) would send to the server, as errors; for `verify`.
pub fn secrets_sent_under(root: &Path) -> Result<Vec<Diagnostic>> {
    let sources = gather(Some(root), &[])?;
    let contents = read_all(&sources)?;
    let docs: Vec<ini::Document> = sources
        .applied
        .iter()
        .zip(&contents)
        .map(|(file, bytes)| ini::parse(&file.shown, &decode(bytes).0))
        .collect();
    Ok(explain::secrets_sent(&explain::explain(&docs)))
}

fn no_files_message(root: Option<&Path>, paths: &[PathBuf]) -> String {
    match (root, paths.is_empty()) {
        (Some(root), true) => format!(
            "no aktualizr configuration under `{}`: no *.toml file in `{}` or `{}`",
            root.display(),
            DEFAULT_CONFIG_DIRS[0],
            DEFAULT_CONFIG_DIRS[1]
        ),
        _ => "no aktualizr configuration file found: the folders given hold no *.toml file"
            .to_string(),
    }
}

/// UTF-8 text, or a lossy copy and the position of the first bad byte.
fn decode(bytes: &[u8]) -> (String, Option<(usize, usize)>) {
    match std::str::from_utf8(bytes) {
        Ok(text) => (text.to_string(), None),
        Err(e) => {
            let good = &bytes[..e.valid_up_to()];
            let good = String::from_utf8_lossy(good);
            let line = good.matches('\n').count() + 1;
            let column = good.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            (
                String::from_utf8_lossy(bytes).into_owned(),
                Some((line, column)),
            )
        }
    }
}

// ---------------------------------------------------------------------------
// Finding the files, in aktualizr's order

/// A config file: where it is, and its name as printed.
#[derive(Debug, Clone, PartialEq, Eq)]
struct SourceFile {
    path: PathBuf,
    shown: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct HiddenFile {
    file: SourceFile,
    by: String,
}

/// The files aktualizr applies, in order, and those it never reads.
#[derive(Debug, Default)]
struct Sources {
    applied: Vec<SourceFile>,
    hidden: Vec<HiddenFile>,
}

impl Sources {
    /// Every file checked: the applied ones in order, then the hidden ones
    /// (marked `true`).
    fn all(&self) -> impl Iterator<Item = (&SourceFile, bool)> {
        let applied = self.applied.iter().map(|f| (f, false));
        applied.chain(self.hidden.iter().map(|h| (&h.file, true)))
    }
}

/// One PATH to read: the real path, its printed form, and whether a
/// missing one is an error (aktualizr skips missing default folders).
struct Target {
    path: PathBuf,
    shown: PathBuf,
    required: bool,
}

/// Finds the files under `root` (the default folders, or `paths` inside
/// it) or at `paths`: the only part that lists folders.
fn gather(root: Option<&Path>, paths: &[PathBuf]) -> Result<Sources> {
    let targets = match root {
        Some(root) => {
            let meta = fs::metadata(root).map_err(|e| Error::io("read", root, e))?;
            if !meta.is_dir() {
                return Err(Error::Usage(format!(
                    "--root `{}` is not a folder; give the image's root folder",
                    root.display()
                )));
            }
            if paths.is_empty() {
                DEFAULT_CONFIG_DIRS
                    .iter()
                    .map(|dir| Target {
                        path: root.join(dir),
                        shown: PathBuf::from(dir),
                        required: false,
                    })
                    .collect::<Vec<_>>()
            } else {
                // Like `aktualizr --config` on the device: the PATHs replace
                // the default folders, and are taken inside the root.
                paths
                    .iter()
                    .map(|p| {
                        let inside: PathBuf = p
                            .components()
                            .filter(|c| !matches!(c, Component::RootDir | Component::Prefix(_)))
                            .collect();
                        Target {
                            path: root.join(&inside),
                            shown: inside,
                            required: true,
                        }
                    })
                    .collect()
            }
        }
        None => paths
            .iter()
            .map(|p| Target {
                path: p.clone(),
                shown: p.clone(),
                required: true,
            })
            .collect(),
    };

    // aktualizr's `std::map<std::string, path>` keyed by file name.
    let mut by_name: BTreeMap<Vec<u8>, SourceFile> = BTreeMap::new();
    let mut hidden = Vec::new();
    let mut add = |name: Vec<u8>, file: SourceFile| {
        if let Some(old) = by_name.insert(name, file.clone()) {
            if old.shown != file.shown {
                hidden.push(HiddenFile {
                    file: old,
                    by: file.shown,
                });
            }
        }
    };
    for target in targets {
        let meta = match fs::metadata(&target.path) {
            Ok(meta) => meta,
            Err(e) if !target.required && e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::io("read", &target.shown, e)),
        };
        if meta.is_dir() {
            for (name, path) in toml_files(&target.path, &target.shown)? {
                let shown = target.shown.join(&name).display().to_string();
                add(name.as_encoded_bytes().to_vec(), SourceFile { path, shown });
            }
        } else {
            let name = target
                .path
                .file_name()
                .map_or_else(Vec::new, |n| n.as_encoded_bytes().to_vec());
            add(
                name,
                SourceFile {
                    path: target.path,
                    shown: target.shown.display().to_string(),
                },
            );
        }
    }
    Ok(Sources {
        applied: by_name.into_values().collect(),
        hidden,
    })
}

/// The files of one folder that aktualizr reads (`Utils::getDirEntriesByExt`
/// with `.toml`): the extension is what follows the last dot, compared
/// case-sensitively; folders (and links to folders) are skipped; nothing
/// recursive.
fn toml_files(dir: &Path, shown: &Path) -> Result<Vec<(std::ffi::OsString, PathBuf)>> {
    let entries = fs::read_dir(dir).map_err(|e| Error::io("list", shown, e))?;
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("list", shown, e))?;
        let name = entry.file_name();
        if !name.as_encoded_bytes().ends_with(b".toml") {
            continue;
        }
        let path = entry.path();
        // Follows links, like boost::filesystem::is_directory; a broken link
        // is kept, and reading it fails as it does in aktualizr.
        if fs::metadata(&path).is_ok_and(|m| m.is_dir()) {
            continue;
        }
        files.push((name, path));
    }
    files.sort();
    Ok(files)
}

// ---------------------------------------------------------------------------
// Output

struct Report<'a> {
    sources: &'a Sources,
    problems: &'a [Diagnostic],
    errors: usize,
    warnings: usize,
    explanation: Option<&'a Explanation>,
}

/// The JSON report (`--format json`), schema 1.
#[derive(Serialize)]
struct JsonReport<'a> {
    schema: u32,
    /// Every file checked: those aktualizr applies, in its order, then the
    /// hidden ones.
    files: Vec<&'a str>,
    problems: &'a [Diagnostic],
    errors: usize,
    warnings: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    applied: Option<Vec<&'a str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    hidden: Option<Vec<JsonHidden<'a>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    effective: Option<&'a explain::Effective>,
    #[serde(skip_serializing_if = "Option::is_none")]
    servers: Option<&'a Servers>,
}

#[derive(Serialize)]
struct JsonHidden<'a> {
    file: &'a str,
    hidden_by: &'a str,
}

impl Report<'_> {
    fn applied(&self) -> Vec<&str> {
        self.sources
            .applied
            .iter()
            .map(|f| f.shown.as_str())
            .collect()
    }

    fn json(&self) -> Result<String> {
        let files = self.sources.all().map(|(f, _)| f.shown.as_str()).collect();
        let report = JsonReport {
            schema: JSON_SCHEMA,
            files,
            problems: self.problems,
            errors: self.errors,
            warnings: self.warnings,
            applied: self.explanation.map(|_| self.applied()),
            hidden: self.explanation.map(|_| {
                self.sources
                    .hidden
                    .iter()
                    .map(|h| JsonHidden {
                        file: &h.file.shown,
                        hidden_by: &h.by,
                    })
                    .collect()
            }),
            effective: self.explanation.map(|e| &e.effective),
            servers: self.explanation.map(|e| &e.servers),
        };
        let mut text = serde_json::to_string_pretty(&report)
            .map_err(|e| Error::Invalid(format!("cannot write the JSON report: {e}")))?;
        text.push('\n');
        Ok(text)
    }

    fn text(&self) -> String {
        let mut out = String::new();
        for d in self.problems {
            // File names, messages and fixes quote what the files hold.
            let _ = writeln!(
                out,
                "{}:{}:{}: {}: {}",
                escape(&d.file),
                d.line,
                d.column,
                d.severity.as_str(),
                escape(&d.message)
            );
            if let Some(fix) = &d.fix {
                let _ = writeln!(out, "  fix: {}", escape(fix));
            }
        }
        if let Some(explanation) = self.explanation {
            if !self.problems.is_empty() {
                out.push('\n');
            }
            self.explain_text(&mut out, explanation);
            out.push('\n');
        }
        let files = self.sources.applied.len() + self.sources.hidden.len();
        let _ = write!(out, "{} checked: ", counted(files as u64, "file", "files"));
        let _ = match (self.errors, self.warnings) {
            (0, 0) => writeln!(out, "no problems"),
            (e, w) => writeln!(
                out,
                "{}, {}",
                counted(e as u64, "error", "errors"),
                counted(w as u64, "warning", "warnings")
            ),
        };
        out
    }

    fn explain_text(&self, out: &mut String, explanation: &Explanation) {
        let _ = writeln!(out, "aktualizr applies these files, in this order:");
        for (i, f) in self.sources.applied.iter().enumerate() {
            let _ = writeln!(out, "  {}. {}", i + 1, escape(&f.shown));
        }
        if !self.sources.hidden.is_empty() {
            let _ = writeln!(out, "hidden, never read:");
            for h in &self.sources.hidden {
                let _ = writeln!(
                    out,
                    "  {} (hidden by {})",
                    escape(&h.file.shown),
                    escape(&h.by)
                );
            }
        }
        if self.errors > 0 {
            let _ = writeln!(
                out,
                "note: aktualizr stops on the errors above; below is what the files hold \
                 apart from them"
            );
        }
        let _ = writeln!(out, "\neffective configuration:");
        if explanation.effective.is_empty() {
            let _ = writeln!(out, "  (nothing set: aktualizr's defaults)");
        }
        for (section, keys) in &explanation.effective {
            let _ = writeln!(out, "[{}]", escape(section));
            for (key, setting) in keys {
                let _ = writeln!(
                    out,
                    "{} = {}    # {}:{}",
                    escape(key),
                    escape(&setting.value.to_string()),
                    escape(&setting.file),
                    setting.line
                );
            }
        }
        let s = &explanation.servers;
        let _ = writeln!(out, "\nserver URLs:");
        let base = match (s.source, &s.server, &s.read_from) {
            ("tls.server", Some(server), _) => {
                let _ = writeln!(out, "  tls.server:       {}", escape(server));
                None
            }
            (source, _, Some(file)) => {
                let _ = writeln!(
                    out,
                    "  tls.server:       read at run time from {} ({source})",
                    escape(file)
                );
                Some(RUNTIME_SERVER)
            }
            _ => {
                let _ = writeln!(
                    out,
                    "  tls.server:       not set: no `server`, `server_url_path` or \
                     `provision_path`"
                );
                Some(RUNTIME_SERVER)
            }
        };
        let urls = match base {
            Some(base) => ServerUrls::derive(Some(base), s.urls.clone()),
            None => s.urls.clone(),
        };
        for (label, url) in [
            ("repo:", &urls.repo),
            ("director:", &urls.director),
            ("treehub:", &urls.treehub),
            ("ECU registration:", &urls.ecu_registration),
        ] {
            let _ = writeln!(
                out,
                "  {label:<17} {}",
                escape(url.as_deref().unwrap_or("(none)"))
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_reads_no_file() {
        let sources = Sources {
            applied: vec![SourceFile {
                path: PathBuf::from("/nowhere/a.toml"),
                shown: "a.toml".into(),
            }],
            hidden: Vec::new(),
        };
        let options = Options {
            explain: false,
            deny_warnings: true,
            format: Format::Text,
        };
        let contents = [b"[tls]\nserver = \"https://a\" # x\n".to_vec()];
        let outcome = check(&sources, &contents, options, false).unwrap();
        assert_eq!(outcome.exit, EXIT_INVALID);
        assert!(
            outcome.stdout.starts_with("a.toml:2:22: warning: "),
            "{}",
            outcome.stdout
        );
    }

    #[test]
    fn decode_points_at_the_first_bad_byte() {
        assert_eq!(decode(b"[a]\nx = 1\n").1, None);
        assert_eq!(decode(b"[a]\nx = \xff\n").1, Some((2, 5)));
    }
}
