//! The lint rules: every difference between what an aktualizr config file
//! seems to say and what aktualizr really does, as a [`Diagnostic`] worded
//! for the integrator (domain.md section 3).
//!
//! [`lint_document`] words the errors that stop aktualizr (from
//! [`crate::aktualizr::ini`]), the sections and keys it ignores (with the
//! name meant, from [`crate::aktualizr::names`]), and hands each value to
//! [`crate::aktualizr::value_rules`]. Pure: text in, diagnostics out.
//! `render` calls [`lint_text`] on its fragments before they are staged;
//! the `lint` command reads files and calls the same functions. No message
//! or fix ever holds the value of a secret key, nor quotes a raw line.

use crate::aktualizr::diagnostic::{Diagnostic, FileDiagnostics};
use crate::aktualizr::ini::{
    self, Document, Entry, MultiLine, Section, SyntaxError, SyntaxErrorKind,
};
use crate::aktualizr::names;
use crate::aktualizr::schema;
use crate::aktualizr::value::unquote;
use crate::aktualizr::value_rules::{check_string, check_value};

/// Checks one file's text. `file` is the name to put in diagnostics.
pub fn lint_text(file: &str, text: &str) -> Vec<Diagnostic> {
    lint_document(&ini::parse(file, text))
}

/// Checks one parsed file. Diagnostics come sorted by line and column.
pub fn lint_document(doc: &Document) -> Vec<Diagnostic> {
    let mut out = FileDiagnostics::new(&doc.file);
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
    out.into_sorted()
}

/// Whether the text before `=` reads as a key name (letters, digits, `_`,
/// `-`, `.`, at most 64 of them, quoted or not), so a message may quote it.
/// Anything else is not quoted: the text before `=` of a broken line (a
/// value wrapped onto the next line, a password typed without its key) can
/// be a secret.
fn is_name(key: &str) -> bool {
    let bare = unquote(key).unwrap_or(key);
    !bare.is_empty()
        && bare.len() <= 64
        && bare
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// A key as messages show it: `` `name` ``, or words that do not quote it.
fn shown_key(key: &str) -> String {
    if is_name(key) {
        format!("`{key}`")
    } else {
        NOT_A_NAME.to_string()
    }
}

/// How messages speak of text before `=` that is not a key name.
const NOT_A_NAME: &str = "a key that is not a name (not quoted here: it may be part of a secret)";

/// The one warning for text before `=` that is not a key name: aktualizr
/// takes it as a key it does not know and ignores the line.
fn not_a_name(out: &mut FileDiagnostics, entry: &Entry, section: Option<&str>) {
    let effect = match section {
        Some(name) if schema::accepts_unknown_keys(name) => {
            format!("in `[{name}]` and keeps the line as an extra setting of the package manager")
        }
        Some(name) => format!("in `[{name}]` and ignores the line"),
        None => "before any `[section]` and ignores the line".to_string(),
    };
    out.warn(
        entry.line,
        entry.key_column,
        format!(
            "the text before `=` is not a key name (letters, digits, `_`, `-` and `.` only): \
             aktualizr takes it for a key it does not know {effect}; it is not quoted here, as \
             a broken line may hold a secret"
        ),
        Some("write `key = value` on one line, or remove the line".to_string()),
    );
}

// ---------------------------------------------------------------------------
// Errors: read_ini throws and aktualizr stops

fn syntax_error(out: &mut FileDiagnostics, e: &SyntaxError) {
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
                "{} is set twice in {} of this file (first on line {first_line}): \
                 aktualizr stops (\"duplicate key name\")",
                shown_key(key),
                match section {
                    Some(name) => format!("`[{name}]`"),
                    None => "the part before the first section".to_string(),
                }
            ),
            Some(if is_name(key) {
                format!("keep one `{key}` line")
            } else {
                "keep one of the two lines".to_string()
            }),
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
                    "{} is {what}: aktualizr reads one line per key and stops at line \
                     {stops_at} (\"'=' character not found in line\")",
                    shown_key(key)
                ),
                Some(if is_name(key) {
                    format!(
                        "write `{key}` on one line; aktualizr has no arrays or multi-line strings"
                    )
                } else {
                    "write the value on one line; aktualizr has no arrays or multi-line strings"
                        .to_string()
                }),
            )
        }
    };
    out.error(e.line, e.column, message, fix);
}

// ---------------------------------------------------------------------------
// Names: sections and keys aktualizr ignores

/// Checks a section header; true when aktualizr reads the section (its keys
/// are then checked one by one).
fn section_header(out: &mut FileDiagnostics, section: &Section) -> bool {
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
    if let Some(first_line) = section.reopens_empty {
        out.warn(
            section.line,
            section.column,
            format!(
                "`[{name}]` is opened again (first on line {first_line}, with no key under it): \
                 aktualizr's parser drops a section with no key, so this is no duplicate to it, \
                 but TOML tools refuse a table defined twice"
            ),
            Some(format!("remove the empty `[{name}]` on line {first_line}")),
        );
    }
    if schema::is_section(name) {
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
    } else if let Some(known) = names::same_but_case(name, schema::SECTIONS.iter().copied()) {
        (
            format!(
                "section names are case-sensitive: aktualizr ignores `[{name}]` and every key \
                 under it"
            ),
            Some(format!("write `[{known}]`")),
        )
    } else {
        let closest = names::closest(name, schema::SECTIONS.iter().copied());
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
fn root_entry(out: &mut FileDiagnostics, entry: &Entry) {
    let key = entry.key.as_str();
    if !is_name(key) {
        not_a_name(out, entry, None);
        return;
    }
    let bare = unquote(key).unwrap_or(key);
    let mut fix = None;
    let mut hint = String::new();
    if let Some((section, name)) = bare.split_once('.') {
        if let Some(spec) = schema::key_spec(section, name) {
            hint = format!(" (TOML's dotted key `{key}` is one key name to aktualizr)");
            fix = Some(format!("write `{}` under `[{}]`", spec.key, spec.section));
        }
    } else {
        let homes: Vec<_> = schema::keys_named(bare).collect();
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
fn section_entry(out: &mut FileDiagnostics, section: &str, entry: &Entry) {
    let key = entry.key.as_str();
    let (line, column) = (entry.line, entry.key_column);
    if !is_name(key) && schema::key_spec(section, key).is_none() {
        not_a_name(out, entry, Some(section));
        return;
    }
    if let Some(inner) = unquote(key) {
        let fix = schema::key_spec(section, inner)
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
            if let Some(spec) = schema::key_spec(first, rest) {
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
    if let Some(spec) = schema::key_spec(section, key) {
        check_value(out, spec, entry);
        return;
    }
    if let Some(known) = names::same_but_case(key, schema::keys_of(section).map(|s| s.key)) {
        let kept = if schema::accepts_unknown_keys(section) {
            " (it keeps it as an extra setting of the package manager)"
        } else {
            ""
        };
        out.warn(
            line,
            column,
            format!(
                "key names are case-sensitive: `{key}` is not `{known}`, and aktualizr does not \
                 use it{kept}"
            ),
            Some(format!("write `{known}`")),
        );
        return;
    }
    if schema::accepts_unknown_keys(section) {
        // aktualizr keeps unknown `[pacman]` keys for the package manager,
        // with the quotes removed like any string.
        check_string(out, None, entry);
        return;
    }
    let closest = names::closest(key, schema::keys_of(section).map(|s| s.key));
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
    let homes: Vec<_> = schema::keys_named(key).collect();
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

/// " Did you mean `x`?" or nothing.
fn did_you_mean(name: Option<String>) -> String {
    name.map(|n| format!("; did you mean `{n}`?"))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Severity;

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
        ("reopened section that had keys", "[provision]\nserver = \"https://a\"\n[provision]\n", &[(E, 3, 1)], "duplicate section name"),
        ("line without =", "[tls]\nserver\n", &[(E, 2, 1)], "'=' character not found"),
        ("line starting with =", "[tls]\n= x\n", &[(E, 2, 1)], "key expected"),
        ("byte order mark", "\u{feff}[tls]\nserver = \"a\"\n", &[(E, 1, 1)], "byte order mark"),
        ("unclosed section", "[tls\nserver = \"a\"\n", &[(E, 1, 1)], "unmatched"),
        ("unclosed unknown section", "[provison\nx = 1\n", &[(E, 1, 1)], "unmatched"),
        ("root key then same section", "tls = 1\n[tls]\n", &[(W, 1, 1), (E, 2, 1)], "before any"),
        // Boost drops a section that holds no key at the next header:
        // aktualizr starts.
        ("reopened empty section", "[provision]\n[provision]\nprovision_path = \"/x\"\n", &[(W, 2, 1)], "no duplicate to it"),
        ("reopened empty section later", "[provision]\n[tls]\nserver = \"https://a\"\n[provision]\nprovision_path = \"/x\"\n", &[(W, 4, 1)], "remove the empty `[provision]` on line 1"),
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
}
