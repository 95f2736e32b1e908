//! The checks of one value against its key's type: where what a file
//! seems to say and what aktualizr reads differ (domain.md section 3),
//! worded for the integrator.
//!
//! Strings keep everything but `"`, paths use `&` as their escape, numbers
//! and booleans must be bare, enums are compared case-sensitively. Each
//! check says what aktualizr really reads, or that it ignores the key and
//! what it keeps instead. No message or fix holds a secret value.

use crate::aktualizr::diagnostic::FileDiagnostics;
use crate::aktualizr::ini::Entry;
use crate::aktualizr::names;
use crate::aktualizr::schema::{KeySpec, ValueType};
use crate::aktualizr::value::{self, quoted_prefix, unquote, PathFailure};

/// Checks the value of a key aktualizr knows, by the key's type.
pub fn check_value(out: &mut FileDiagnostics, spec: &KeySpec, entry: &Entry) {
    let raw = entry.value.as_str();
    let key = spec.key;
    if raw.starts_with('[') {
        let what = match spec.ty {
            ValueType::String => {
                if spec.secret {
                    "it reads the brackets and the text between them, without `\"`, as a string"
                        .to_string()
                } else {
                    format!("it reads the string `{}`", value::read_string(raw))
                }
            }
            ValueType::Enum(_) => format!(
                "it reads the string `{}`, which is not a value it knows",
                value::read_string(raw)
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
                    value::read_string(raw)
                ),
                format!("write `{key} = \"{inner}\"`"),
            ),
            ValueType::Path => (
                match value::read_path(raw) {
                    Ok(path) => format!("aktualizr keeps single quotes: it reads `{}`", path.value),
                    Err(_) => format!(
                        "single quotes are no quotes to aktualizr: it ignores `{key}` ({})",
                        kept(spec)
                    ),
                },
                format!("write `{key} = \"{}\"`", double_ampersands(inner)),
            ),
            ValueType::Integer | ValueType::Unsigned | ValueType::Boolean => {
                (ignored(spec, "a quoted value"), write_bare(key, inner))
            }
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

/// "`why`: aktualizr ignores `key` (it keeps ...)".
fn ignored(spec: &KeySpec, why: &str) -> String {
    format!("{why}: aktualizr ignores `{}` ({})", spec.key, kept(spec))
}

/// The fix for a number or boolean: `value` bare.
fn write_bare(key: &str, value: &str) -> String {
    format!("write `{key} = {value}`")
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
pub fn check_string(out: &mut FileDiagnostics, spec: Option<&KeySpec>, entry: &Entry) {
    let raw = entry.value.as_str();
    let key = entry.key.as_str();
    let secret = spec.is_some_and(|s| s.secret);
    let read = value::read_string(raw);
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
fn check_enum(out: &mut FileDiagnostics, spec: &KeySpec, values: &[&str], entry: &Entry) {
    let read = value::read_string(&entry.value);
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
    let (lead, fix) = match names::same_but_case(&read, values.iter().copied()) {
        Some(v) => ("values are case-sensitive: ".to_string(), Some(v)),
        None => (String::new(), names::closest(&read, values.iter().copied())),
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

fn check_path(out: &mut FileDiagnostics, spec: &KeySpec, entry: &Entry) {
    let raw = entry.value.as_str();
    let key = spec.key;
    match value::read_path(raw) {
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

fn check_integer(out: &mut FileDiagnostics, spec: &KeySpec, entry: &Entry) {
    let raw = entry.value.as_str();
    let key = spec.key;
    let unsigned = spec.ty == ValueType::Unsigned;
    let (line, col) = (entry.line, entry.value_column);
    let canonical = |inner: &str| value::read_integer(inner).map(|_| inner.to_string());
    if misquoted_bare_value(out, spec, entry, "number", canonical) {
        return;
    }
    match value::read_integer(raw) {
        Some(n) if unsigned && n < 0 => match value::read_unsigned(raw) {
            Some(wrapped) => out.warn(
                line,
                col,
                format!(
                    "`{key}` is unsigned: aktualizr reads `{raw}` as {wrapped} (it wraps around)"
                ),
                None,
            ),
            None => out.warn(line, col, ignored(spec, "a number out of range"), None),
        },
        Some(_) => {
            if value::read(spec.ty, raw).is_none() {
                out.warn(line, col, ignored(spec, "a number out of range"), None);
            }
        }
        None => {
            let (why, fix) = non_decimal(raw);
            out.warn(
                line,
                col,
                ignored(spec, &why),
                fix.map(|n| write_bare(key, &n)),
            );
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
    out: &mut FileDiagnostics,
    spec: &KeySpec,
    entry: &Entry,
    what: &str,
    canonical: impl Fn(&str) -> Option<String>,
) -> bool {
    let raw = entry.value.as_str();
    let key = spec.key;
    let (line, col) = (entry.line, entry.value_column);
    if raw.is_empty() {
        out.warn(line, col, ignored(spec, &format!("an empty {what}")), None);
        return true;
    }
    if let Some(inner) = unquote(raw).or_else(|| quoted_prefix(raw)) {
        let fix = canonical(inner).map(|v| write_bare(key, &v));
        out.warn(line, col, ignored(spec, &format!("a quoted {what}")), fix);
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
            Some(write_bare(key, before)),
        );
        return true;
    }
    false
}

fn check_bool(out: &mut FileDiagnostics, spec: &KeySpec, entry: &Entry) {
    let raw = entry.value.as_str();
    let key = spec.key;
    let (line, col) = (entry.line, entry.value_column);
    if value::read_bool(raw).is_some() {
        return;
    }
    let canonical = |inner: &str| value::read_bool(inner).map(|b| b.to_string());
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
    out.warn(
        line,
        col,
        ignored(spec, &why),
        meant.map(|b| write_bare(key, b)),
    );
}
