//! The checks of aktualizr config files, and `--explain`'s merge.
//!
//! [`crate::aktualizr::dialect`] says how aktualizr splits a file and reads each value;
//! this module turns every difference between what a file seems to say and
//! what aktualizr really does into a [`Diagnostic`] worded for the
//! integrator (domain.md section 3), and merges files the way aktualizr
//! applies a conf.d set ([`explain`]).
//!
//! Pure: text in, values out. `render` calls [`lint_text`] on its fragments
//! before they are staged; the `lint` command reads files and calls the same
//! functions. No message or fix ever holds the value of a secret key
//! (`provision.p12_password`, `p11.pass`).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::aktualizr::dialect::{
    self, Document, Entry, KeySpec, MultiLine, PathFailure, Section, SyntaxError, SyntaxErrorKind,
    Value, ValueType,
};
use crate::report::{Graded, Severity};

/// What is shown instead of a secret value.
pub const MASK: &str = "********";

/// One problem in one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub file: String,
    /// 1-based.
    pub line: usize,
    /// 1-based, in characters.
    pub column: usize,
    pub severity: Severity,
    /// What aktualizr really does.
    pub message: String,
    /// What to write instead, when there is one answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Graded for Diagnostic {
    fn severity(&self) -> Severity {
        self.severity
    }
}

impl Diagnostic {
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// Checks one file's text. `file` is the name to put in diagnostics.
pub fn lint_text(file: &str, text: &str) -> Vec<Diagnostic> {
    lint_document(&dialect::parse(file, text))
}

/// Checks one parsed file. Diagnostics come sorted by line and column.
pub fn lint_document(doc: &Document) -> Vec<Diagnostic> {
    let mut out = Out {
        file: &doc.file,
        list: Vec::new(),
    };
    for error in &doc.errors {
        syntax_error(&mut out, error);
    }
    for entry in &doc.root {
        root_entry(&mut out, entry);
    }
    for section in &doc.sections {
        if section_header(&mut out, section) {
            for entry in &section.entries {
                section_entry(&mut out, &section.name, entry);
            }
        }
    }
    let mut list = out.list;
    list.sort_by_key(|d| (d.line, d.column));
    list
}

/// Collects the diagnostics of one file.
struct Out<'a> {
    file: &'a str,
    list: Vec<Diagnostic>,
}

impl Out<'_> {
    fn push(
        &mut self,
        severity: Severity,
        line: usize,
        column: usize,
        message: String,
        fix: Option<String>,
    ) {
        self.list.push(Diagnostic {
            file: self.file.to_string(),
            line,
            column,
            severity,
            message,
            fix,
        });
    }

    fn error(&mut self, line: usize, column: usize, message: String, fix: Option<String>) {
        self.push(Severity::Error, line, column, message, fix);
    }

    fn warn(&mut self, line: usize, column: usize, message: String, fix: Option<String>) {
        self.push(Severity::Warning, line, column, message, fix);
    }
}

// ---------------------------------------------------------------------------
// Errors: read_ini throws and aktualizr stops

fn syntax_error(out: &mut Out, e: &SyntaxError) {
    let (message, fix) = match &e.kind {
        SyntaxErrorKind::ByteOrderMark => (
            "the file starts with a UTF-8 byte order mark: aktualizr's INI parser does not skip \
             it and stops"
                .to_string(),
            Some("save the file as UTF-8 without a byte order mark".to_string()),
        ),
        SyntaxErrorKind::UnclosedSection => (
            "a section header without `]`: aktualizr stops (\"unmatched '['\")".to_string(),
            Some("close the header: `[section]`".to_string()),
        ),
        SyntaxErrorKind::MissingEquals => (
            "a line that is neither `key = value`, `[section]` nor a comment: aktualizr stops \
             (\"'=' character not found in line\")"
                .to_string(),
            Some(
                "write `key = value`, or start the line with `#` to make it a comment".to_string(),
            ),
        ),
        SyntaxErrorKind::MissingKey => (
            "a line starting with `=`: aktualizr stops (\"key expected\")".to_string(),
            Some("write `key = value`".to_string()),
        ),
        SyntaxErrorKind::DuplicateKey {
            key,
            section,
            first_line,
        } => (
            format!(
                "`{key}` is set twice in {} of this file (first on line {first_line}): \
                 aktualizr stops (\"duplicate key name\")",
                match section {
                    Some(name) => format!("`[{name}]`"),
                    None => "the part before the first section".to_string(),
                }
            ),
            Some(format!("keep one `{key}` line")),
        ),
        SyntaxErrorKind::DuplicateSection { name, first_line } => (
            format!(
                "`[{name}]` is opened twice in this file (first on line {first_line}): \
                 aktualizr stops (\"duplicate section name\")"
            ),
            Some(format!(
                "move these keys under the first `[{name}]`; only separate files may repeat a \
                 section"
            )),
        ),
        SyntaxErrorKind::MultiLine {
            what,
            key,
            stops_at,
        } => {
            let what = match what {
                MultiLine::Array => "a multi-line array",
                MultiLine::String => "a multi-line string (`\"\"\"` or `'''`)",
            };
            (
                format!(
                    "`{key}` is {what}: aktualizr reads one line per key and stops at line \
                     {stops_at} (\"'=' character not found in line\")"
                ),
                Some(format!(
                    "write `{key}` on one line; aktualizr has no arrays or multi-line strings"
                )),
            )
        }
    };
    out.error(e.line, e.column, message, fix);
}

// ---------------------------------------------------------------------------
// Names: sections and keys aktualizr ignores

/// Checks a section header; true when aktualizr reads the section (its keys
/// are then checked one by one).
fn section_header(out: &mut Out, section: &Section) -> bool {
    let name = section.name.as_str();
    let (line, column) = (section.line, section.name_column);
    // `[[x]]` leaves a `]` behind: the array-of-tables warning covers it.
    if let (Some(column), false) = (section.trailing_column, name.starts_with('[')) {
        let message = if section.trailing_is_comment {
            "a comment after a section header: aktualizr drops everything after `]`, so this \
             one is harmless, but comments after values are not (they become part of the \
             value); keep comments on their own lines"
        } else {
            "text after `]`: aktualizr drops everything after the `]` of a section header"
        };
        out.warn(
            section.line,
            column,
            message.to_string(),
            Some(format!("write `[{name}]` alone on its line")),
        );
    }
    if dialect::is_section(name) {
        return true;
    }
    if section.unclosed {
        // The error says it all; a name cut short is not a second problem.
        return false;
    }
    let (message, fix) = if name.is_empty() {
        (
            "an empty section name: aktualizr ignores `[]` and every key under it".to_string(),
            None,
        )
    } else if name.starts_with('[') {
        (
            format!(
                "`[{name}]` is a TOML array of tables: aktualizr reads the section name `{name}` \
                 and ignores it and every key under it"
            ),
            None,
        )
    } else if let Some(inner) = unquote(name) {
        (
            format!(
                "quoted section names are not supported: aktualizr reads `{name}`, quotes \
                 included, and ignores it and every key under it"
            ),
            Some(format!("write `[{inner}]`")),
        )
    } else if name.contains('.') {
        (
            format!(
                "aktualizr has no nested tables: it reads `[{name}]` as one section name, which \
                 it does not know, and ignores every key under it"
            ),
            None,
        )
    } else if let Some(known) = dialect::SECTIONS
        .iter()
        .find(|s| s.eq_ignore_ascii_case(name))
    {
        (
            format!(
                "section names are case-sensitive: aktualizr ignores `[{name}]` and every key \
                 under it"
            ),
            Some(format!("write `[{known}]`")),
        )
    } else {
        let closest = closest(name, dialect::SECTIONS.iter().copied());
        (
            format!(
                "aktualizr has no `[{name}]` section: it ignores it and every key under it{}",
                did_you_mean(closest.map(|s| format!("[{s}]")))
            ),
            closest.map(|s| format!("write `[{s}]`")),
        )
    };
    out.warn(line, column, message, fix);
    false
}

/// A key before the first section: aktualizr never looks there.
fn root_entry(out: &mut Out, entry: &Entry) {
    let key = entry.key.as_str();
    let bare = unquote(key).unwrap_or(key);
    let mut fix = None;
    let mut hint = String::new();
    if let Some((section, name)) = bare.split_once('.') {
        if let Some(spec) = dialect::key_spec(section, name) {
            hint = format!(" (TOML's dotted key `{key}` is one key name to aktualizr)");
            fix = Some(format!("write `{}` under `[{}]`", spec.key, spec.section));
        }
    } else {
        let homes: Vec<_> = dialect::SCHEMA.iter().filter(|s| s.key == bare).collect();
        if let [spec] = homes.as_slice() {
            fix = Some(format!("put `{}` under `[{}]`", spec.key, spec.section));
        }
    }
    out.warn(
        entry.line,
        entry.key_column,
        format!(
            "`{key}` comes before any `[section]`: aktualizr reads keys only inside its \
             sections and ignores it{hint}"
        ),
        fix,
    );
}

/// A key inside a section aktualizr reads.
fn section_entry(out: &mut Out, section: &str, entry: &Entry) {
    let key = entry.key.as_str();
    let (line, column) = (entry.line, entry.key_column);
    if let Some(inner) = unquote(key) {
        let fix = dialect::key_spec(section, inner)
            .map(|spec| format!("write `{}` without quotes", spec.key));
        out.warn(
            line,
            column,
            format!(
                "quoted key names are not supported: aktualizr reads the key `{key}`, quotes \
                 included, and ignores it"
            ),
            fix,
        );
        return;
    }
    if key.contains('.') {
        let mut fix = None;
        if let Some((first, rest)) = key.split_once('.') {
            if let Some(spec) = dialect::key_spec(first, rest) {
                fix = Some(format!("write `{}` under `[{}]`", spec.key, spec.section));
            }
        }
        out.warn(
            line,
            column,
            format!(
                "aktualizr has no dotted keys: `{key}` is one key name to it, which it does not \
                 know in `[{section}]`, so it ignores the line"
            ),
            fix,
        );
        return;
    }
    if let Some(spec) = dialect::key_spec(section, key) {
        check_value(out, spec, entry);
        return;
    }
    if let Some(spec) = dialect::keys_of(section).find(|s| s.key.eq_ignore_ascii_case(key)) {
        let kept = if dialect::accepts_unknown_keys(section) {
            " (it keeps it as an extra setting of the package manager)"
        } else {
            ""
        };
        out.warn(
            line,
            column,
            format!(
                "key names are case-sensitive: `{key}` is not `{}`, and aktualizr does not use \
                 it{kept}",
                spec.key
            ),
            Some(format!("write `{}`", spec.key)),
        );
        return;
    }
    if dialect::accepts_unknown_keys(section) {
        // aktualizr keeps unknown `[pacman]` keys for the package manager,
        // with the quotes removed like any string.
        check_string(out, None, entry);
        return;
    }
    let closest = closest(key, dialect::keys_of(section).map(|s| s.key));
    if let Some(name) = closest {
        out.warn(
            line,
            column,
            format!(
                "aktualizr does not know `{key}` in `[{section}]` and ignores it; did you mean \
                 `{name}`?"
            ),
            Some(format!("write `{name}`")),
        );
        return;
    }
    let homes: Vec<_> = dialect::SCHEMA.iter().filter(|s| s.key == key).collect();
    if !homes.is_empty() {
        let sections: Vec<String> = homes.iter().map(|s| format!("`[{}]`", s.section)).collect();
        out.warn(
            line,
            column,
            format!(
                "aktualizr does not read `{key}` in `[{section}]`, only in {}, and ignores it",
                sections.join(" and ")
            ),
            (homes.len() == 1).then(|| format!("move it under `[{}]`", homes[0].section)),
        );
        return;
    }
    out.warn(
        line,
        column,
        format!("aktualizr does not know `{key}` in `[{section}]` and ignores it"),
        None,
    );
}

// ---------------------------------------------------------------------------
// Values

fn check_value(out: &mut Out, spec: &KeySpec, entry: &Entry) {
    let raw = entry.value.as_str();
    let key = spec.key;
    if raw.starts_with('[') {
        let what = match spec.ty {
            ValueType::String => {
                if spec.secret {
                    "it reads the brackets and the text between them, without `\"`, as a string"
                        .to_string()
                } else {
                    format!("it reads the string `{}`", dialect::read_string(raw))
                }
            }
            ValueType::Enum(_) => format!(
                "it reads the string `{}`, which is not a value it knows",
                dialect::read_string(raw)
            ),
            _ => format!("it ignores `{key}` ({})", kept(spec)),
        };
        out.warn(
            entry.line,
            entry.value_column,
            format!("aktualizr has no arrays: {what}"),
            Some(format!("give `{key}` a single value")),
        );
        return;
    }
    if let Some(inner) = raw.strip_prefix('\'') {
        let inner = inner.split('\'').next().unwrap_or(inner);
        let (what, fix) = match spec.ty {
            ValueType::Enum(values) => {
                check_enum(out, spec, values, entry);
                return;
            }
            ValueType::String if spec.secret => (
                format!(
                    "aktualizr keeps single quotes: they become part of the secret value of \
                     `{key}`"
                ),
                "use double quotes".to_string(),
            ),
            ValueType::String => (
                format!(
                    "aktualizr keeps single quotes: it reads `{}`",
                    dialect::read_string(raw)
                ),
                format!("write `{key} = \"{inner}\"`"),
            ),
            ValueType::Path => (
                match dialect::read_path(raw) {
                    Ok(path) => format!("aktualizr keeps single quotes: it reads `{}`", path.value),
                    Err(_) => format!(
                        "single quotes are no quotes to aktualizr: it ignores `{key}` ({})",
                        kept(spec)
                    ),
                },
                format!("write `{key} = \"{}\"`", double_ampersands(inner)),
            ),
            ValueType::Integer | ValueType::Unsigned | ValueType::Boolean => (
                format!("a quoted value: aktualizr ignores `{key}` ({})", kept(spec)),
                format!("write `{key} = {inner}`"),
            ),
        };
        out.warn(entry.line, entry.value_column, what, Some(fix));
        return;
    }
    match spec.ty {
        ValueType::String => check_string(out, Some(spec), entry),
        ValueType::Enum(values) => {
            check_string(out, Some(spec), entry);
            check_enum(out, spec, values, entry);
        }
        ValueType::Path => check_path(out, spec, entry),
        ValueType::Integer | ValueType::Unsigned => check_integer(out, spec, entry),
        ValueType::Boolean => check_bool(out, spec, entry),
    }
}

/// "... it keeps the value from an earlier file, else the default `10`".
fn kept(spec: &KeySpec) -> String {
    match spec.default {
        Some("") => "it keeps the value from an earlier file, else the default (empty)".to_string(),
        Some(default) => {
            format!("it keeps the value from an earlier file, else the default `{default}`")
        }
        None => "it keeps the value from an earlier file, else the default".to_string(),
    }
}

/// Position (byte) of what looks like an inline comment in a bare value:
/// `#` or `;` at the start or after white space.
fn inline_comment(raw: &str) -> Option<usize> {
    let bytes = raw.as_bytes();
    bytes.iter().enumerate().find_map(|(i, &b)| {
        let starts = b == b'#' || b == b';';
        let after_space = i == 0 || matches!(bytes[i - 1], b' ' | b'\t');
        (starts && after_space).then_some(i)
    })
}

/// Column of byte `offset` of the value.
fn value_col(entry: &Entry, offset: usize) -> usize {
    entry.value_column + entry.value.get(..offset).map_or(0, |s| s.chars().count())
}

/// Strings (and enum values, and `[pacman]` extras): aktualizr removes
/// every `"` and keeps everything else. `spec` is `None` for extras.
fn check_string(out: &mut Out, spec: Option<&KeySpec>, entry: &Entry) {
    let raw = entry.value.as_str();
    let key = entry.key.as_str();
    let secret = spec.is_some_and(|s| s.secret);
    let read = dialect::read_string(raw);
    let shown = |what: &str| -> String {
        if secret {
            format!("{what} part of the secret value of `{key}`")
        } else {
            format!("it reads the value as `{read}`")
        }
    };
    if let Some(inner) = raw.strip_prefix('"') {
        match inner.find('"') {
            Some(close) => {
                let after = 1 + close + 1;
                let rest = &raw[after..];
                let rest_t = rest.trim_start_matches([' ', '\t']);
                let rest_at = after + (rest.len() - rest_t.len());
                if rest_t.starts_with('#') || rest_t.starts_with(';') {
                    let intended = &raw[..after];
                    out.warn(
                        entry.line,
                        value_col(entry, rest_at),
                        format!(
                            "aktualizr does not support inline comments: {}; move the comment \
                             to its own line",
                            shown("the comment becomes")
                        ),
                        Some(if secret {
                            "move the comment to its own line".to_string()
                        } else {
                            format!(
                                "write `{key} = {intended}` and put the comment on the line above"
                            )
                        }),
                    );
                } else if !rest_t.is_empty() {
                    // `"pa\"ss"` or `"a" b`: more quotes or text after the
                    // first closing quote.
                    let (at, message) = if raw.ends_with('"') {
                        let what = if secret {
                            format!("`{key}` is not what is written")
                        } else {
                            format!("it reads `{read}`")
                        };
                        (
                            1 + close,
                            format!(
                                "a `\"` inside a string: aktualizr removes every `\"` and has \
                                 no escapes, so {what}; a value with `\"` cannot be given to \
                                 aktualizr"
                            ),
                        )
                    } else {
                        (
                            rest_at,
                            format!(
                                "text after the closing quote: aktualizr removes the quotes and \
                                 keeps the text, {}",
                                shown("so the text is")
                            ),
                        )
                    };
                    out.warn(entry.line, value_col(entry, at), message, None);
                }
            }
            None => {
                out.warn(
                    entry.line,
                    entry.value_column,
                    format!(
                        "the closing `\"` is missing: aktualizr removes the opening one, {}",
                        shown("and the rest of the line is")
                    ),
                    Some("close the quote".to_string()),
                );
            }
        }
    } else if let Some(at) = inline_comment(raw) {
        let intended = raw[..at].trim_end_matches([' ', '\t']);
        out.warn(
            entry.line,
            value_col(entry, at),
            format!(
                "aktualizr does not support inline comments: {}; move the comment to its own \
                 line",
                shown("the comment becomes")
            ),
            Some(if secret || intended.is_empty() {
                "move the comment to its own line".to_string()
            } else {
                format!("write `{key} = \"{intended}\"` and put the comment on the line above")
            }),
        );
    } else if let Some(at) = raw.find('"') {
        out.warn(
            entry.line,
            value_col(entry, at),
            format!(
                "a `\"` inside a value: aktualizr removes every `\"`, {}",
                shown("so it changes")
            ),
            None,
        );
    }
    if let Some(at) = raw.find('\\') {
        out.warn(
            entry.line,
            value_col(entry, at),
            format!(
                "aktualizr has no escape sequences: a `\\` stays a backslash{}",
                if secret {
                    String::new()
                } else {
                    format!(", so it reads `{read}`")
                }
            ),
            None,
        );
    }
}

/// A value not among those aktualizr knows.
fn check_enum(out: &mut Out, spec: &KeySpec, values: &[&str], entry: &Entry) {
    let read = dialect::read_string(&entry.value);
    if values.contains(&read.as_str()) {
        return;
    }
    let known: Vec<String> = values.iter().map(|v| format!("`{v}`")).collect();
    let effect = match (spec.section, spec.key) {
        ("storage", "type") => ": it uses filesystem storage instead of sqlite",
        (_, "ca_source" | "pkey_source" | "cert_source" | "key_source") => {
            ": it reads anything but `pkcs11` as `file`"
        }
        _ => "",
    };
    let key = spec.key;
    let (lead, fix) = match values.iter().find(|v| v.eq_ignore_ascii_case(&read)) {
        Some(v) => ("values are case-sensitive: ".to_string(), Some(*v)),
        None => (String::new(), closest(&read, values.iter().copied())),
    };
    out.warn(
        entry.line,
        entry.value_column,
        format!(
            "{lead}aktualizr does not know `{read}` as `[{}] {key}` (it knows {}){effect}",
            spec.section,
            known.join(", ")
        ),
        fix.map(|v| format!("write `{key} = \"{v}\"`")),
    );
}

fn check_path(out: &mut Out, spec: &KeySpec, entry: &Entry) {
    let raw = entry.value.as_str();
    let key = spec.key;
    match dialect::read_path(raw) {
        Ok(path) => {
            if let Some(&at) = path.lone_ampersands.first() {
                out.warn(
                    entry.line,
                    value_col(entry, at),
                    format!(
                        "`&` is aktualizr's escape character in quoted paths: it reads `{}`",
                        path.value
                    ),
                    Some(format!(
                        "write `{key} = \"{}\"` (`&&` is one `&`)",
                        escape_lone_ampersands(raw)
                    )),
                );
            }
        }
        Err(PathFailure::Empty) => out.warn(
            entry.line,
            entry.value_column,
            format!("aktualizr ignores an empty path: {}", kept(spec)),
            Some(format!(
                "write `{key} = \"\"` for an empty path, or remove the line"
            )),
        ),
        Err(PathFailure::TextAfterBareWord(at)) => {
            let rest = &raw[at..];
            if rest.starts_with('#') || rest.starts_with(';') {
                let intended = raw[..at].trim_end_matches(|c: char| c.is_ascii_whitespace());
                out.warn(
                    entry.line,
                    value_col(entry, at),
                    format!(
                        "aktualizr does not support inline comments: it ignores `{key}` ({}); \
                         move the comment to its own line",
                        kept(spec)
                    ),
                    Some(format!(
                        "write `{key} = \"{}\"` and put the comment on the line above",
                        double_ampersands(intended)
                    )),
                );
            } else {
                out.warn(
                    entry.line,
                    entry.value_column,
                    format!(
                        "an unquoted path with a space: aktualizr reads up to the space, finds \
                         more text and ignores `{key}` ({})",
                        kept(spec)
                    ),
                    Some(format!("write `{key} = \"{}\"`", double_ampersands(raw))),
                );
            }
        }
        Err(PathFailure::TextAfterQuote(at)) => {
            let rest = &raw[at..];
            let comment = rest.starts_with('#') || rest.starts_with(';');
            let intended = raw[..at].trim_end_matches(|c: char| c.is_ascii_whitespace());
            out.warn(
                entry.line,
                value_col(entry, at),
                if comment {
                    format!(
                        "aktualizr does not support inline comments: after a quoted path it \
                         ignores `{key}` ({}); move the comment to its own line",
                        kept(spec)
                    )
                } else {
                    format!(
                        "text after the closing quote of a path: aktualizr ignores `{key}` ({})",
                        kept(spec)
                    )
                },
                Some(if comment {
                    format!("write `{key} = {intended}` and put the comment on the line above")
                } else {
                    format!("write `{key} = {intended}`")
                }),
            );
        }
        Err(PathFailure::Unclosed) => {
            let escaped = raw.ends_with("&\"");
            out.warn(
                entry.line,
                entry.value_column,
                format!(
                    "{}: aktualizr ignores `{key}` ({})",
                    if escaped {
                        "the closing `\"` is escaped by the `&` before it"
                    } else {
                        "the closing `\"` is missing"
                    },
                    kept(spec)
                ),
                Some(if escaped {
                    "double the `&` before the closing quote (`&&`)".to_string()
                } else {
                    "close the quote".to_string()
                }),
            );
        }
    }
}

/// The inside of a quoted path as written, with every `&` that is not
/// already doubled doubled: what to write for aktualizr to read the path a
/// TOML reader sees.
fn escape_lone_ampersands(raw: &str) -> String {
    let inner = raw.strip_prefix('"').unwrap_or(raw);
    let inner = inner.strip_suffix('"').unwrap_or(inner);
    let mut out = String::with_capacity(inner.len() + 2);
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        out.push(c);
        if c == '&' {
            out.push('&');
            if chars.peek() == Some(&'&') {
                chars.next();
            }
        }
    }
    out
}

/// A path as it must be written for aktualizr to read `path`.
fn double_ampersands(path: &str) -> String {
    path.replace('&', "&&")
}

fn check_integer(out: &mut Out, spec: &KeySpec, entry: &Entry) {
    let raw = entry.value.as_str();
    let key = spec.key;
    let unsigned = spec.ty == ValueType::Unsigned;
    let ignored = |why: &str| format!("{why}: aktualizr ignores `{key}` ({})", kept(spec));
    let (line, col) = (entry.line, entry.value_column);
    let fix_with = |n: &str| Some(format!("write `{key} = {n}`"));
    let canonical = |inner: &str| dialect::read_integer(inner).map(|_| inner.to_string());
    if misquoted_bare_value(out, spec, entry, "number", canonical) {
        return;
    }
    match dialect::read_integer(raw) {
        Some(n) if unsigned && n < 0 => match dialect::read_unsigned(raw) {
            Some(wrapped) => out.warn(
                line,
                col,
                format!(
                    "`{key}` is unsigned: aktualizr reads `{raw}` as {wrapped} (it wraps around)"
                ),
                None,
            ),
            None => out.warn(line, col, ignored("a number out of range"), None),
        },
        Some(_) => {
            if dialect::read(spec.ty, raw).is_none() {
                out.warn(line, col, ignored("a number out of range"), None);
            }
        }
        None => {
            let (why, fix) = non_decimal(raw);
            out.warn(line, col, ignored(&why), fix.and_then(|n| fix_with(&n)));
        }
    }
}

/// Why `raw` is not a decimal integer, and the decimal it was meant as.
fn non_decimal(raw: &str) -> (String, Option<String>) {
    let (sign, body) = match raw.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", raw.strip_prefix('+').unwrap_or(raw)),
    };
    let lower = body.to_ascii_lowercase();
    for (prefix, radix, name) in [
        ("0x", 16, "hexadecimal"),
        ("0o", 8, "octal"),
        ("0b", 2, "binary"),
    ] {
        if let Some(digits) = lower.strip_prefix(prefix) {
            let digits = digits.replace('_', "");
            let value = u128::from_str_radix(&digits, radix).ok();
            return (
                format!("aktualizr reads decimal numbers only, not {name}"),
                value.map(|v| format!("{sign}{v}")),
            );
        }
    }
    if body.contains('_') {
        let digits = body.replace('_', "");
        if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
            return (
                "aktualizr does not accept `_` in numbers".to_string(),
                Some(format!("{sign}{digits}")),
            );
        }
    }
    if !body.is_empty()
        && body
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'-' | b'+'))
        && body.bytes().any(|b| b.is_ascii_digit())
    {
        return ("not a whole number".to_string(), None);
    }
    ("not a decimal number".to_string(), None)
}

/// The mistakes numbers and booleans share: empty, quoted, or followed by
/// an inline comment. Each makes aktualizr ignore the key. Warns and
/// returns true when one is found; `canonical` gives the bare form of a
/// value that is valid inside its quotes.
fn misquoted_bare_value(
    out: &mut Out,
    spec: &KeySpec,
    entry: &Entry,
    what: &str,
    canonical: impl Fn(&str) -> Option<String>,
) -> bool {
    let raw = entry.value.as_str();
    let key = spec.key;
    let (line, col) = (entry.line, entry.value_column);
    let ignored = |why: &str| format!("{why}: aktualizr ignores `{key}` ({})", kept(spec));
    let fix_with = |v: &str| Some(format!("write `{key} = {v}`"));
    if raw.is_empty() {
        out.warn(line, col, ignored(&format!("an empty {what}")), None);
        return true;
    }
    if let Some(inner) = unquote(raw).or_else(|| quoted_prefix(raw)) {
        let fix = canonical(inner).and_then(|v| fix_with(&v));
        out.warn(line, col, ignored(&format!("a quoted {what}")), fix);
        return true;
    }
    if let Some(at) = inline_comment(raw) {
        let before = raw[..at].trim_end_matches([' ', '\t']);
        out.warn(
            line,
            value_col(entry, at),
            format!(
                "aktualizr does not support inline comments: after a {what} it ignores `{key}` \
                 ({}); move the comment to its own line",
                kept(spec)
            ),
            fix_with(before),
        );
        return true;
    }
    false
}

fn check_bool(out: &mut Out, spec: &KeySpec, entry: &Entry) {
    let raw = entry.value.as_str();
    let key = spec.key;
    let (line, col) = (entry.line, entry.value_column);
    if dialect::read_bool(raw).is_some() {
        return;
    }
    let ignored = |why: &str| format!("{why}: aktualizr ignores `{key}` ({})", kept(spec));
    let fix_with = |b: &str| Some(format!("write `{key} = {b}`"));
    let canonical = |inner: &str| dialect::read_bool(inner).map(|b| b.to_string());
    if misquoted_bare_value(out, spec, entry, "boolean", canonical) {
        return;
    }
    let word = raw.to_ascii_lowercase();
    let meant = match word.as_str() {
        "true" | "yes" | "on" | "y" => Some("true"),
        "false" | "no" | "off" | "n" => Some("false"),
        _ => None,
    };
    let why = if meant.is_some() {
        format!("only `true`, `false`, `1` and `0` are booleans to aktualizr, not `{raw}`")
    } else {
        format!("`{raw}` is not a boolean")
    };
    out.warn(line, col, ignored(&why), meant.and_then(fix_with));
}

// ---------------------------------------------------------------------------
// Helpers

/// The text between matching quotes around the whole of `s`.
fn unquote(s: &str) -> Option<&str> {
    for q in ['"', '\''] {
        if s.len() >= 2 && s.starts_with(q) && s.ends_with(q) {
            return Some(&s[1..s.len() - 1]);
        }
    }
    None
}

/// The text between the first pair of `"` at the start of `s` (`"30" # s`).
fn quoted_prefix(s: &str) -> Option<&str> {
    let inner = s.strip_prefix('"')?;
    inner.find('"').map(|end| &inner[..end])
}

/// " Did you mean `x`?" or nothing.
fn did_you_mean(name: Option<String>) -> String {
    name.map(|n| format!("; did you mean `{n}`?"))
        .unwrap_or_default()
}

/// The closest candidate by edit distance (ignoring case), when it is close
/// enough to be a typo.
fn closest<'a>(name: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let name_lower = name.to_ascii_lowercase();
    let limit = (name.chars().count() / 3).clamp(1, 3);
    candidates
        .map(|c| (edit_distance(&name_lower, &c.to_ascii_lowercase()), c))
        .filter(|&(d, _)| d <= limit)
        .min_by_key(|&(d, _)| d)
        .map(|(_, c)| c)
}

/// Levenshtein distance, in characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = Vec::with_capacity(b.len() + 1);
        current.push(i + 1);
        for (j, &cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != cb);
            let insertion = current[j] + 1;
            let deletion = previous[j + 1] + 1;
            current.push(substitution.min(insertion).min(deletion));
        }
        previous = current;
    }
    previous[b.len()]
}

// ---------------------------------------------------------------------------
// --explain: the configuration aktualizr ends up with

/// One effective setting: the value aktualizr holds and where it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Setting {
    pub value: Shown,
    pub file: String,
    pub line: usize,
    #[serde(skip)]
    pub column: usize,
}

/// A value as shown: secrets are masked before they leave the merge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Shown {
    Text(String),
    Integer(i64),
    Unsigned(u64),
    Boolean(bool),
    /// A non-empty secret, serialised as [`MASK`].
    #[serde(serialize_with = "serialize_mask")]
    Masked,
}

fn serialize_mask<S: serde::Serializer>(s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(MASK)
}

impl std::fmt::Display for Shown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Shown::Text(s) => write!(f, "\"{s}\""),
            Shown::Integer(n) => write!(f, "{n}"),
            Shown::Unsigned(n) => write!(f, "{n}"),
            Shown::Boolean(b) => write!(f, "{b}"),
            Shown::Masked => f.write_str(MASK),
        }
    }
}

impl Shown {
    fn text(&self) -> Option<&str> {
        match self {
            Shown::Text(s) => Some(s),
            _ => None,
        }
    }
}

/// Section -> key -> setting, sorted by name.
pub type Effective = BTreeMap<String, BTreeMap<String, Setting>>;

/// The server URLs aktualizr derives from `tls.server` (its
/// `Config::postUpdateValues`); a URL set explicitly is kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Servers {
    /// Where `tls.server` comes from: `tls.server` (set in a file),
    /// `tls.server_url_path` or `provision.provision_path` (read at run
    /// time), or `none`.
    pub source: &'static str,
    /// `tls.server` when a file sets it.
    pub server: Option<String>,
    /// The file aktualizr reads the server URL from at run time.
    pub read_from: Option<String>,
    pub repo: Option<String>,
    pub director: Option<String>,
    pub treehub: Option<String>,
    pub ecu_registration: Option<String>,
}

/// What `--explain` shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explanation {
    pub effective: Effective,
    pub servers: Servers,
    /// Warnings about the merged configuration (secrets sent by telemetry).
    pub problems: Vec<Diagnostic>,
}

/// Applies parsed files in the order given (the caller has already put them
/// in aktualizr's order): a later file overrides only the keys it sets, and
/// a value aktualizr ignores overrides nothing.
pub fn explain(docs: &[Document]) -> Explanation {
    let mut effective = Effective::new();
    for doc in docs {
        for section in &doc.sections {
            if !dialect::is_section(&section.name) {
                continue;
            }
            for entry in &section.entries {
                let spec = dialect::key_spec(&section.name, &entry.key);
                let value = match spec {
                    Some(spec) => match dialect::read(spec.ty, &entry.value) {
                        Some(_) if spec.secret && dialect::read_string(&entry.value).is_empty() => {
                            Shown::Text(String::new())
                        }
                        Some(_) if spec.secret => Shown::Masked,
                        Some(Value::Text(s)) => Shown::Text(s),
                        Some(Value::Integer(n)) => Shown::Integer(n),
                        Some(Value::Unsigned(n)) => Shown::Unsigned(n),
                        Some(Value::Boolean(b)) => Shown::Boolean(b),
                        None => continue,
                    },
                    None if dialect::accepts_unknown_keys(&section.name)
                        && unquote(&entry.key).is_none() =>
                    {
                        Shown::Text(dialect::read_string(&entry.value))
                    }
                    None => continue,
                };
                effective.entry(section.name.clone()).or_default().insert(
                    entry.key.clone(),
                    Setting {
                        value,
                        file: doc.file.clone(),
                        line: entry.line,
                        column: entry.key_column,
                    },
                );
            }
        }
    }
    let servers = servers(&effective);
    let problems = telemetry_secrets(&effective, &servers);
    Explanation {
        effective,
        servers,
        problems,
    }
}

fn get<'a>(effective: &'a Effective, section: &str, key: &str) -> Option<&'a Setting> {
    effective.get(section).and_then(|keys| keys.get(key))
}

fn non_empty_text<'a>(effective: &'a Effective, section: &str, key: &str) -> Option<&'a str> {
    get(effective, section, key)
        .and_then(|s| s.value.text())
        .filter(|s| !s.is_empty())
}

fn servers(effective: &Effective) -> Servers {
    let server = non_empty_text(effective, "tls", "server").map(str::to_string);
    let (source, read_from) = if server.is_some() {
        ("tls.server", None)
    } else if let Some(path) = non_empty_text(effective, "tls", "server_url_path") {
        ("tls.server_url_path", Some(path.to_string()))
    } else if let Some(path) = non_empty_text(effective, "provision", "provision_path") {
        (
            "provision.provision_path",
            Some(format!("{path} (its autoprov.url)")),
        )
    } else {
        ("none", None)
    };
    let derive = |section: &str, key: &str, suffix: &str| -> Option<String> {
        non_empty_text(effective, section, key)
            .map(str::to_string)
            .or_else(|| server.as_ref().map(|s| format!("{s}{suffix}")))
    };
    let repo = derive("uptane", "repo_server", "/repo");
    let director = derive("uptane", "director_server", "/director");
    let treehub = derive("pacman", "ostree_server", "/treehub");
    let ecu_registration = non_empty_text(effective, "provision", "ecu_registration_endpoint")
        .map(str::to_string)
        .or_else(|| director.as_ref().map(|d| format!("{d}/ecus")));
    Servers {
        source,
        server,
        read_from,
        repo,
        director,
        treehub,
        ecu_registration,
    }
}

/// `[telemetry] report_config` (true by default) sends the whole
/// configuration, secrets included, to `<server>/system_info/config`.
fn telemetry_secrets(effective: &Effective, servers: &Servers) -> Vec<Diagnostic> {
    let report = match get(effective, "telemetry", "report_config").map(|s| &s.value) {
        Some(Shown::Boolean(b)) => *b,
        _ => true,
    };
    if !report {
        return Vec::new();
    }
    let target = match &servers.server {
        Some(server) => format!("`{server}/system_info/config`"),
        None => "the server (`<server>/system_info/config`)".to_string(),
    };
    let mut problems = Vec::new();
    for (section, key) in [("provision", "p12_password"), ("p11", "pass")] {
        if let Some(setting) = get(effective, section, key) {
            if setting.value == Shown::Masked {
                problems.push(Diagnostic {
                    file: setting.file.clone(),
                    line: setting.line,
                    column: setting.column,
                    severity: Severity::Warning,
                    message: format!(
                        "`[telemetry] report_config` is true (its default): aktualizr sends \
                         its whole configuration, this `{section}.{key}` included, to {target}"
                    ),
                    fix: Some(
                        "add `report_config = false` under `[telemetry]` in this or a later file"
                            .to_string(),
                    ),
                });
            }
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    use Severity::{Error as E, Warning as W};

    /// (name, text, expected [(severity, line, column or 0 for any)],
    /// a piece of the first message or "").
    type Case = (
        &'static str,
        &'static str,
        &'static [(Severity, usize, usize)],
        &'static str,
    );

    /// Built from domain.md section 3, one behaviour per case.
    #[rustfmt::skip]
    const CASES: &[Case] = &[
        // What aktualizr reads fine.
        ("quoted string", "[tls]\nserver = \"https://a\"\n", &[], ""),
        ("bare string", "[tls]\nserver = https://a\n", &[], ""),
        ("full-line comments", "# a\n; b\n[tls]\n  # c\nserver = \"x\"\n", &[], ""),
        ("crlf", "[tls]\r\nserver = \"https://a\"\r\n[uptane]\r\npolling_sec = 30\r\n", &[], ""),
        ("bare number", "[uptane]\npolling_sec = 30\n", &[], ""),
        ("bare booleans", "[telemetry]\nreport_config = false\nreport_network = 1\n", &[], ""),
        ("doubled ampersand", "[storage]\npath = \"/a&&b\"\n", &[], ""),
        ("bare path", "[storage]\npath = /var/sota\n", &[], ""),
        ("negative signed", "[logger]\nloglevel = -1\n", &[], ""),
        ("pacman extras", "[pacman]\ntype = \"ostree\"\ncompose_apps_root = \"/var/x\"\n", &[], ""),
        ("expiry_days is a string", "[provision]\nexpiry_days = \"36000\"\n", &[], ""),
        ("hash inside quotes", "[provision]\ndevice_id = \"a # b\"\n", &[], ""),
        // Errors: aktualizr stops.
        ("multi-line array", "[uptane]\nx = [\n  \"a\",\n]\n", &[(E, 2, 5)], "stops at line 3"),
        ("multi-line string", "[tls]\nserver = \"\"\"\nhttps://a\n\"\"\"\n", &[(E, 2, 10)], "multi-line string"),
        ("duplicate key", "[tls]\nserver = \"a\"\nserver = \"b\"\n", &[(E, 3, 1)], "first on line 2"),
        ("repeated section", "[tls]\nserver = \"a\"\n[tls]\nca_source = \"file\"\n", &[(E, 3, 1)], "duplicate section name"),
        ("line without =", "[tls]\nserver\n", &[(E, 2, 1)], "'=' character not found"),
        ("line starting with =", "[tls]\n= x\n", &[(E, 2, 1)], "key expected"),
        ("byte order mark", "\u{feff}[tls]\nserver = \"a\"\n", &[(E, 1, 1)], "byte order mark"),
        ("unclosed section", "[tls\nserver = \"a\"\n", &[(E, 1, 1)], "unmatched"),
        ("unclosed unknown section", "[provison\nx = 1\n", &[(E, 1, 1)], "unmatched"),
        ("root key then same section", "tls = 1\n[tls]\n", &[(W, 1, 1), (E, 2, 1)], "before any"),
        // Inline comments.
        ("comment after string", "[tls]\nserver = \"https://a\" # x\n", &[(W, 2, 22)], "`https://a # x`"),
        ("comment after bare string", "[tls]\nserver = https://a # x\n", &[(W, 2, 20)], "`https://a # x`"),
        ("comment after number", "[uptane]\npolling_sec = 30 # s\n", &[(W, 2, 18)], "default `10`"),
        ("comment after path", "[storage]\npath = \"/var/sota\" # x\n", &[(W, 2, 20)], "ignores `path`"),
        ("comment after boolean", "[telemetry]\nreport_config = false ; x\n", &[(W, 2, 23)], "ignores"),
        ("comment after header", "[tls] # x\nserver = \"a\"\n", &[(W, 1, 7)], "after `]`"),
        // Strings.
        ("escaped quote", "[provision]\ndevice_id = \"pa\\\"ss\"\n", &[(W, 2, 16), (W, 2, 17)], "`pa\\ss`"),
        ("single quotes", "[provision]\ndevice_id = 'id'\n", &[(W, 2, 13)], "`'id'`"),
        ("single-quoted number", "[uptane]\npolling_sec = '30'\n", &[(W, 2, 15)], "write `polling_sec = 30`"),
        ("single-quoted enum", "[storage]\ntype = 'sqlite'\n", &[(W, 2, 8)], "filesystem storage"),
        ("single-quoted path", "[storage]\npath = '/my dir'\n", &[(W, 2, 8)], "ignores `path`"),
        ("backslash", "[provision]\ndevice_id = \"a\\nb\"\n", &[(W, 2, 15)], "no escape"),
        ("text after closing quote", "[tls]\nserver = \"a\" b\n", &[(W, 2, 14)], "`a b`"),
        ("unclosed quote", "[tls]\nserver = \"https://a\n", &[(W, 2, 10)], "closing"),
        // Paths.
        ("ampersand in path", "[storage]\npath = \"/a&b\"\n", &[(W, 2, 11)], "`/ab`"),
        ("unquoted path with space", "[storage]\npath = /a b\n", &[(W, 2, 8)], "unquoted path"),
        ("text after quoted path", "[storage]\npath = \"/a\" b\n", &[(W, 2, 13)], "after the closing quote"),
        ("empty bare path", "[import]\nbase_path =\n", &[(W, 2, 12)], "default `/var/sota/import`"),
        ("escaped closing quote", "[storage]\npath = \"/a&\"\n", &[(W, 2, 8)], "escaped"),
        // Numbers and booleans.
        ("quoted number", "[uptane]\npolling_sec = \"30\"\n", &[(W, 2, 15)], "quoted number"),
        ("quoted boolean", "[telemetry]\nreport_config = \"false\"\n", &[(W, 2, 17)], "quoted boolean"),
        ("True", "[telemetry]\nreport_config = True\n", &[(W, 2, 17)], "not `True`"),
        ("yes", "[uptane]\nforce_install_completion = yes\n", &[(W, 2, 28)], "not `yes`"),
        ("underscore", "[uptane]\npolling_sec = 1_000\n", &[(W, 2, 15)], "`_`"),
        ("hexadecimal", "[uptane]\npolling_sec = 0x10\n", &[(W, 2, 15)], "hexadecimal"),
        ("negative unsigned", "[uptane]\npolling_sec = -5\n", &[(W, 2, 15)], "18446744073709551611"),
        ("float", "[uptane]\npolling_sec = 1.5\n", &[(W, 2, 15)], "whole number"),
        ("int out of range", "[logger]\nloglevel = 2147483648\n", &[(W, 2, 12)], "out of range"),
        ("empty number", "[uptane]\npolling_sec =\n", &[(W, 2, 14)], "empty"),
        // Arrays.
        ("one-line array", "[provision]\ndevice_id = [\"a\", \"b\"]\n", &[(W, 2, 13)], "`[a, b]`"),
        ("one-line array number", "[uptane]\npolling_sec = [1]\n", &[(W, 2, 15)], "no arrays"),
        // Names.
        ("unknown section", "[provison]\nprovision_path = \"x\"\n", &[(W, 1, 2)], "`[provision]`"),
        ("unknown key", "[uptane]\npolling_secs = 5\n", &[(W, 2, 1)], "`polling_sec`"),
        ("key in other section", "[provision]\nserver_url_path = \"/x\"\n", &[(W, 2, 1)], "only in `[tls]`"),
        ("wrong case section", "[TLS]\nserver = \"a\"\n", &[(W, 1, 2)], "case-sensitive"),
        ("wrong case key", "[tls]\nServer = \"a\"\n", &[(W, 2, 1)], "case-sensitive"),
        ("wrong case pacman key", "[pacman]\nType = \"none\"\n", &[(W, 2, 1)], "extra"),
        ("dotted key at root", "tls.server = \"a\"\n", &[(W, 1, 1)], "dotted"),
        ("dotted key in section", "[provision]\ntls.server = \"a\"\n", &[(W, 2, 1)], "dotted"),
        ("dotted table", "[tls.extra]\nx = 1\n", &[(W, 1, 2)], "nested"),
        ("quoted key", "[tls]\n\"server\" = \"a\"\n", &[(W, 2, 1)], "quoted key"),
        ("key before any section", "server = \"a\"\n[tls]\n", &[(W, 1, 1)], "before any"),
        ("array of tables", "[[tls]]\n", &[(W, 1, 2)], "array of tables"),
        // Enums.
        ("mistyped storage type", "[storage]\ntype = \"sqllite\"\n", &[(W, 2, 8)], "filesystem storage"),
        ("storage type with comment", "[storage]\ntype = \"sqlite\" # db\n", &[(W, 2, 8), (W, 2, 17)], "filesystem storage"),
        ("mistyped crypto source", "[tls]\ncert_source = \"pkcs12\"\n", &[(W, 2, 15)], "`pkcs11`"),
        ("enum case", "[uptane]\nkey_type = \"ed25519\"\n", &[(W, 2, 12)], "case-sensitive"),
        ("mistyped pacman type", "[pacman]\ntype = \"ostre\"\n", &[(W, 2, 8)], "`ostree`"),
    ];

    #[test]
    fn table_from_domain_section_3() {
        assert!(CASES.len() >= 40);
        for (name, text, expected, needle) in CASES {
            let got = lint_text("t.toml", text);
            let positions: Vec<(Severity, usize, usize)> =
                got.iter().map(|d| (d.severity, d.line, d.column)).collect();
            let mut want: Vec<(Severity, usize, usize)> = expected.to_vec();
            want.sort_by_key(|&(_, l, c)| (l, c));
            assert_eq!(positions, want, "case `{name}`: {got:#?}");
            if !needle.is_empty() {
                assert!(
                    got.iter().any(|d| d.message.contains(needle)
                        || d.fix.as_deref().is_some_and(|f| f.contains(needle))),
                    "case `{name}`: no message with {needle:?}: {got:#?}"
                );
            }
            for d in &got {
                assert_eq!(d.file, "t.toml");
                assert!(
                    !d.message.is_empty() && !d.message.ends_with('.'),
                    "{name}: {d:?}"
                );
            }
        }
    }

    #[test]
    fn fixes_say_what_to_write() {
        let got = lint_text("t", "[uptane]\npolling_sec = \"30\"\n");
        assert_eq!(got[0].fix.as_deref(), Some("write `polling_sec = 30`"));
        let got = lint_text("t", "[tls]\nserver = \"https://a\" # x\n");
        assert_eq!(
            got[0].fix.as_deref(),
            Some("write `server = \"https://a\"` and put the comment on the line above")
        );
        let got = lint_text("t", "[storage]\npath = \"/a&b\"\n");
        assert_eq!(
            got[0].fix.as_deref(),
            Some("write `path = \"/a&&b\"` (`&&` is one `&`)")
        );
        let got = lint_text("t", "[storage]\npath = /my dir\n");
        assert_eq!(got[0].fix.as_deref(), Some("write `path = \"/my dir\"`"));
        let got = lint_text("t", "[uptane]\npolling_sec = 0x10\n");
        assert_eq!(got[0].fix.as_deref(), Some("write `polling_sec = 16`"));
        let got = lint_text("t", "[TLS]\n");
        assert_eq!(got[0].fix.as_deref(), Some("write `[tls]`"));
    }

    #[test]
    fn secrets_never_appear_in_messages() {
        for text in [
            "[provision]\np12_password = \"hunter\\\"2\"\n",
            "[provision]\np12_password = \"hunter2\" # x\n",
            "[provision]\np12_password = hunter2 #x\n",
            "[provision]\np12_password = 'hunter2'\n",
            "[provision]\np12_password = [\"hunter2\"]\n",
            "[provision]\np12_password = \"hunter2\n",
            "[provision]\np12_password = \"hun\"ter2\n",
            "[p11]\npass = \"hunter\\2\"\n",
            "[p11]\npass = hunter\"2\n",
            "[p11]\npass = \"\"\"\nhunter2\n\"\"\"\n",
            "[p11]\nhunter2\n",
        ] {
            let got = lint_text("t", text);
            assert!(!got.is_empty(), "{text}");
            let all = format!("{got:?}");
            assert!(!all.contains("hunter"), "{text}: {all}");
        }
    }

    #[test]
    fn upstream_examples_are_clean() {
        // The same texts as ../shared/fixtures/upstream/aktualizr-config
        // (checked there too by tests/lint.rs).
        let hsm = "[tls]\nserver_url_path = \"/var/sota/import/gateway.url\"\ncert_source = \"pkcs11\"\npkey_source = \"pkcs11\"\n\n[p11]\nmodule = \"/usr/lib/softhsm/libsofthsm2.so\"\npass = \"1234\"\nuptane_key_id = \"03\"\ntls_clientcert_id = \"01\"\ntls_pkey_id = \"02\"\n\n[uptane]\nkey_source = \"pkcs11\"\n\n[import]\nbase_path = \"/var/sota/import\"\ntls_cacert_path = \"root.crt\"\n";
        assert_eq!(lint_text("hsm", hsm), vec![]);
    }

    #[test]
    fn closest_names() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(
            closest("provison", dialect::SECTIONS.iter().copied()),
            Some("provision")
        );
        assert_eq!(closest("zzz", dialect::SECTIONS.iter().copied()), None);
        assert_eq!(closest("t", ["tls"].into_iter()), None);
    }

    fn docs(files: &[(&str, &str)]) -> Vec<Document> {
        files.iter().map(|(f, t)| dialect::parse(f, t)).collect()
    }

    #[test]
    fn explain_merges_key_by_key() {
        let e = explain(&docs(&[
            (
                "10-a.toml",
                "[tls]\nserver = \"https://a\"\n[uptane]\npolling_sec = 30\n",
            ),
            (
                "20-b.toml",
                "[uptane]\npolling_sec = \"60\"\nkey_type = \"ED25519\"\n",
            ),
        ]));
        let polling = &e.effective["uptane"]["polling_sec"];
        assert_eq!(
            (polling.value.clone(), polling.file.as_str(), polling.line),
            (Shown::Unsigned(30), "10-a.toml", 4)
        );
        assert_eq!(e.effective["uptane"]["key_type"].file, "20-b.toml");
        assert_eq!(e.servers.repo.as_deref(), Some("https://a/repo"));
        assert_eq!(e.servers.director.as_deref(), Some("https://a/director"));
        assert_eq!(e.servers.treehub.as_deref(), Some("https://a/treehub"));
        assert_eq!(
            e.servers.ecu_registration.as_deref(),
            Some("https://a/director/ecus")
        );
        assert!(e.problems.is_empty());
    }

    #[test]
    fn explain_shows_what_aktualizr_reads() {
        let e = explain(&docs(&[(
            "a",
            "[tls]\nserver = \"https://a\" # x\n[storage]\npath = \"/a&b\"\n",
        )]));
        assert_eq!(e.servers.repo.as_deref(), Some("https://a # x/repo"));
        assert_eq!(
            e.effective["storage"]["path"].value,
            Shown::Text("/ab".into())
        );
    }

    #[test]
    fn explain_masks_secrets_and_warns_about_telemetry() {
        let e = explain(&docs(&[(
            "a",
            "[provision]\np12_password = \"hunter2\"\n[p11]\npass = \"1234\"\n",
        )]));
        assert_eq!(
            e.effective["provision"]["p12_password"].value,
            Shown::Masked
        );
        assert_eq!(e.effective["p11"]["pass"].value, Shown::Masked);
        assert_eq!(e.problems.len(), 2);
        assert_eq!((e.problems[0].line, e.problems[1].line), (2, 4));
        let json = serde_json::to_string(&e.effective).unwrap_or_default();
        assert!(json.contains(MASK) && !json.contains("hunter2") && !json.contains("1234"));

        let e = explain(&docs(&[
            ("a", "[p11]\npass = \"1234\"\n"),
            ("b", "[telemetry]\nreport_config = false\n"),
        ]));
        assert!(e.problems.is_empty());

        let e = explain(&docs(&[("a", "[provision]\np12_password = \"\"\n")]));
        assert_eq!(
            e.effective["provision"]["p12_password"].value,
            Shown::Text(String::new())
        );
        assert!(e.problems.is_empty());
    }

    #[test]
    fn explain_runtime_server_sources() {
        let e = explain(&docs(&[(
            "a",
            "[tls]\nserver_url_path = \"/var/sota/import/gateway.url\"\n",
        )]));
        assert_eq!(e.servers.source, "tls.server_url_path");
        assert_eq!(e.servers.repo, None);
        let e = explain(&docs(&[(
            "a",
            "[uptane]\ndirector_server = \"https://d\"\n",
        )]));
        assert_eq!(
            e.servers.ecu_registration.as_deref(),
            Some("https://d/ecus")
        );
        assert_eq!(e.servers.source, "none");
    }
}
