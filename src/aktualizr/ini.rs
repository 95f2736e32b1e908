//! aktualizr's INI parser: a file split into sections and `key = value`
//! lines the way Boost.PropertyTree's `read_ini` splits it, with the line
//! and column of everything, and what makes `read_ini` throw.
//!
//! aktualizr's `*.toml` files are not TOML (domain.md section 3). [`parse`]
//! follows `read_ini` (Boost `ini_parser.hpp`): lines trimmed of ASCII
//! white space, full-line `#`/`;` comments, `[section]` headers (anything
//! after the first `]` is dropped), `key = value` split at the first `=`.
//! What makes `read_ini` throw (and aktualizr stop) is recorded as a
//! [`SyntaxError`]. It judges nothing: what aktualizr makes of a value is in
//! [`crate::aktualizr::value`], the wording of problems in
//! [`crate::aktualizr::rules`].

use std::collections::BTreeMap;

/// One parsed file: its sections and keys as `read_ini` sees them, with
/// positions, and what would make `read_ini` throw.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Document {
    /// The file name as it should be printed.
    pub file: String,
    /// `key = value` lines before the first `[section]`.
    pub root: Vec<Entry>,
    /// Sections in file order. A repeated one appears twice: a
    /// [`SyntaxError`] when the first held a key, else
    /// [`Section::reopens_empty`].
    pub sections: Vec<Section>,
    /// What makes aktualizr stop on this file, in line order.
    pub errors: Vec<SyntaxError>,
}

/// A `[name]` header and the keys under it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// The name as `read_ini` keeps it: between `[` and the first `]`,
    /// trimmed.
    pub name: String,
    pub line: usize,
    /// Column of the `[`.
    pub column: usize,
    /// Column of the first character of the name (of the `]` when empty).
    pub name_column: usize,
    /// Column of the text after `]` that `read_ini` drops, if any.
    pub trailing_column: Option<usize>,
    /// Whether that dropped text starts with `#` or `;`.
    pub trailing_is_comment: bool,
    /// The header has no `]` (a [`SyntaxErrorKind::UnclosedSection`]); the
    /// section is kept so the keys under it are still checked.
    pub unclosed: bool,
    /// The line of an earlier `[name]` of this file that held no key:
    /// `read_ini` dropped it at the next header, so this opening is no
    /// duplicate to aktualizr.
    pub reopens_empty: Option<usize>,
    pub entries: Vec<Entry>,
}

/// A `key = value` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Text before the first `=`, trimmed.
    pub key: String,
    /// Text after the first `=`, trimmed: what `get_optional` is given.
    pub value: String,
    pub line: usize,
    pub key_column: usize,
    /// Column of the first character of the value (just after `=` when
    /// the value is empty).
    pub value_column: usize,
}

/// Something that makes `read_ini` throw: aktualizr stops.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub line: usize,
    pub column: usize,
    pub kind: SyntaxErrorKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyntaxErrorKind {
    /// The file starts with a UTF-8 byte order mark.
    ByteOrderMark,
    /// A line starts with `[` and has no `]` ("unmatched '['").
    UnclosedSection,
    /// A line with no `=` ("'=' character not found in line").
    MissingEquals,
    /// A line starting with `=` ("key expected").
    MissingKey,
    /// A key set twice in the same section of one file.
    DuplicateKey {
        key: String,
        section: Option<String>,
        first_line: usize,
    },
    /// A section opened again in one file after it held a key ("duplicate
    /// section name"); also a section named like a key before it.
    DuplicateSection { name: String, first_line: usize },
    /// A value that goes on over several lines; `stops_at` is the first
    /// line that `read_ini` rejects. The lines in between are not read.
    MultiLine {
        what: MultiLine,
        key: String,
        stops_at: usize,
    },
}

/// What kind of multi-line value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MultiLine {
    Array,
    /// `"""` or `'''`.
    String,
}

/// Boost's `trim` with the classic locale: ASCII white space only.
pub(crate) fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0b' | '\x0c')
}

/// Trims like Boost; returns the byte offset of the trimmed text too.
pub(crate) fn trim(s: &str) -> (usize, &str) {
    let start = s.len() - s.trim_start_matches(is_space).len();
    (start, s[start..].trim_end_matches(is_space))
}

/// 1-based column (in characters) of byte offset `byte` of `line`.
fn column(line: &str, byte: usize) -> usize {
    line.get(..byte).map_or(1, |s| s.chars().count() + 1)
}

/// True when `read_ini` throws on this line (already split off its file).
fn rejected(line: &str) -> bool {
    let (_, t) = trim(line);
    if t.is_empty() || t.starts_with('#') || t.starts_with(';') {
        return false;
    }
    if t.starts_with('[') {
        return !t.contains(']');
    }
    !matches!(t.find('='), Some(pos) if pos > 0)
}

/// The names `read_ini` has seen so far in one file.
#[derive(Default)]
struct Names {
    /// The top-level tree: root keys and section names share it; the line
    /// each was first given on.
    root: BTreeMap<String, usize>,
    /// The keys of the current section.
    section: BTreeMap<String, usize>,
    /// Sections `read_ini` dropped because they held no key, by name: the
    /// line of the last such header.
    dropped: BTreeMap<String, usize>,
}

/// Reads a `[section]` header line (trimmed text starting with `[`).
fn header(doc: &mut Document, names: &mut Names, line: &str, line_no: usize) -> Section {
    let (start, t) = trim(line);
    // Boost's `read_ini`, before it looks at a header: "If the previous
    // section was empty, drop it again". A section is known only once it
    // holds a key, so `[a]` alone and then `[a]` again is no duplicate.
    if let Some(previous) = doc.sections.last() {
        if names.section.is_empty() && names.root.get(&previous.name) == Some(&previous.line) {
            names.root.remove(&previous.name);
            names.dropped.insert(previous.name.clone(), previous.line);
        }
    }
    names.section.clear();
    let at = column(line, start);
    let end = t.find(']');
    let (name_off, name) = trim(end.map_or(&t[1..], |end| &t[1..end]));
    let mut section = Section {
        name: name.to_string(),
        line: line_no,
        column: at,
        name_column: match end {
            Some(end) if name.is_empty() => column(line, start + end),
            _ => column(line, start + 1 + name_off),
        },
        trailing_column: None,
        trailing_is_comment: false,
        unclosed: end.is_none(),
        reopens_empty: None,
        entries: Vec::new(),
    };
    let Some(end) = end else {
        // aktualizr stops here; the lines after are checked as if the `]`
        // were there, so one typo gives one problem.
        doc.errors.push(SyntaxError {
            line: line_no,
            column: at,
            kind: SyntaxErrorKind::UnclosedSection,
        });
        return section;
    };
    let (after_off, after) = trim(&t[end + 1..]);
    if !after.is_empty() {
        section.trailing_column = Some(column(line, start + end + 1 + after_off));
        section.trailing_is_comment = after.starts_with(['#', ';']);
    }
    match names.root.get(name) {
        Some(&first_line) => doc.errors.push(SyntaxError {
            line: line_no,
            column: at,
            kind: SyntaxErrorKind::DuplicateSection {
                name: name.to_string(),
                first_line,
            },
        }),
        None => {
            names.root.insert(name.to_string(), line_no);
            section.reopens_empty = names.dropped.get(name).copied();
        }
    }
    section
}

/// Parses one file the way `read_ini` does.
pub fn parse(file: &str, text: &str) -> Document {
    let mut doc = Document {
        file: file.to_string(),
        ..Document::default()
    };
    let text = match text.strip_prefix('\u{feff}') {
        Some(rest) => {
            doc.errors.push(SyntaxError {
                line: 1,
                column: 1,
                kind: SyntaxErrorKind::ByteOrderMark,
            });
            rest
        }
        None => text,
    };
    // `std::getline` splits at '\n' only; a '\r' before it is trimmed.
    let lines: Vec<&str> = text.split('\n').collect();
    let mut names = Names::default();
    let mut index = 0;
    while index < lines.len() {
        let line = lines[index];
        let line_no = index + 1;
        index += 1;
        let (start, t) = trim(line);
        if t.is_empty() || t.starts_with('#') || t.starts_with(';') {
            continue;
        }
        if t.starts_with('[') {
            let section = header(&mut doc, &mut names, line, line_no);
            doc.sections.push(section);
            continue;
        }
        let eq = match t.find('=') {
            Some(eq) if eq > 0 => eq,
            found => {
                doc.errors.push(SyntaxError {
                    line: line_no,
                    column: column(line, start),
                    kind: match found {
                        None => SyntaxErrorKind::MissingEquals,
                        Some(_) => SyntaxErrorKind::MissingKey,
                    },
                });
                continue;
            }
        };
        let (_, key) = trim(&t[..eq]);
        let (value_off, value) = trim(&t[eq + 1..]);
        let value_column = column(line, start + eq + 1 + value_off);
        let key_column = column(line, start);

        if let Some((what, end)) = multi_line_span(value, &lines, index) {
            // `index` is the line after the opener; `end` the last line of
            // the value (exclusive bound).
            if let Some(offset) = lines[index..end].iter().position(|l| rejected(l)) {
                doc.errors.push(SyntaxError {
                    line: line_no,
                    column: value_column,
                    kind: SyntaxErrorKind::MultiLine {
                        what,
                        key: key.to_string(),
                        stops_at: index + offset + 1,
                    },
                });
                index = end;
                continue;
            }
        }

        let entry = Entry {
            key: key.to_string(),
            value: value.to_string(),
            line: line_no,
            key_column,
            value_column,
        };
        let (known, section) = match doc.sections.last() {
            Some(section) => (&mut names.section, Some(section.name.clone())),
            None => (&mut names.root, None),
        };
        if let Some(&first_line) = known.get(key) {
            doc.errors.push(SyntaxError {
                line: line_no,
                column: key_column,
                kind: SyntaxErrorKind::DuplicateKey {
                    key: key.to_string(),
                    section,
                    first_line,
                },
            });
            continue;
        }
        known.insert(key.to_string(), line_no);
        match doc.sections.last_mut() {
            Some(section) => section.entries.push(entry),
            None => doc.root.push(entry),
        }
    }
    doc
}

/// When `value` opens a TOML multi-line value that it does not close,
/// returns its kind and the exclusive end (line index) of the lines it
/// spans, starting at `next` (the line after the opener).
fn multi_line_span(value: &str, lines: &[&str], next: usize) -> Option<(MultiLine, usize)> {
    for delimiter in ["\"\"\"", "'''"] {
        if let Some(rest) = value.strip_prefix(delimiter) {
            if rest.contains(delimiter) {
                return None;
            }
            let end = lines[next..]
                .iter()
                .position(|l| l.contains(delimiter))
                .map_or(lines.len(), |offset| next + offset + 1);
            return Some((MultiLine::String, end));
        }
    }
    if value.starts_with('[') {
        let mut depth = 0i64;
        let mut quote = None;
        bracket_depth(value, &mut depth, &mut quote);
        if depth <= 0 {
            return None;
        }
        for (offset, line) in lines[next..].iter().enumerate() {
            bracket_depth(line, &mut depth, &mut quote);
            if depth <= 0 {
                return Some((MultiLine::Array, next + offset + 1));
            }
        }
        return Some((MultiLine::Array, lines.len()));
    }
    None
}

/// Counts `[` and `]` outside quoted strings (TOML's view of an array).
fn bracket_depth(text: &str, depth: &mut i64, quote: &mut Option<char>) {
    let mut escaped = false;
    for c in text.chars() {
        match *quote {
            Some(q) => {
                if escaped {
                    escaped = false;
                } else if c == '\\' && q == '"' {
                    escaped = true;
                } else if c == q {
                    *quote = None;
                }
            }
            None => match c {
                '"' | '\'' => *quote = Some(c),
                '[' => *depth += 1,
                ']' => *depth -= 1,
                '#' => return,
                _ => {}
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sections_keys_and_positions() {
        let doc = parse(
            "f",
            "# c\n[tls]\n  server = \"https://a\"\r\n; x\n[p11] # c\npass=1\n",
        );
        assert!(doc.errors.is_empty(), "{:?}", doc.errors);
        assert_eq!(doc.sections.len(), 2);
        let tls = &doc.sections[0];
        assert_eq!((tls.name.as_str(), tls.line, tls.column), ("tls", 2, 1));
        let e = &tls.entries[0];
        assert_eq!(e.key, "server");
        assert_eq!(e.value, "\"https://a\"");
        assert_eq!((e.line, e.key_column, e.value_column), (3, 3, 12));
        assert_eq!(doc.sections[1].trailing_column, Some(7));
        assert!(doc.sections[1].trailing_is_comment);
        assert_eq!(doc.sections[1].entries[0].value, "1");
    }

    #[test]
    fn structural_errors() {
        let doc = parse("f", "\u{feff}[a]\nk = 1\nx\n= 1\n[b\n[a]\ny = 1\ny = 2\n");
        let kinds: Vec<_> = doc
            .errors
            .iter()
            .map(|e| (e.line, e.kind.clone()))
            .collect();
        assert_eq!(
            kinds,
            vec![
                (1, SyntaxErrorKind::ByteOrderMark),
                (3, SyntaxErrorKind::MissingEquals),
                (4, SyntaxErrorKind::MissingKey),
                (5, SyntaxErrorKind::UnclosedSection),
                (
                    6,
                    SyntaxErrorKind::DuplicateSection {
                        name: "a".into(),
                        first_line: 1
                    }
                ),
                (
                    8,
                    SyntaxErrorKind::DuplicateKey {
                        key: "y".into(),
                        section: Some("a".into()),
                        first_line: 7
                    }
                ),
            ]
        );
    }

    #[test]
    fn a_section_is_known_once_it_holds_a_key() {
        // Boost drops a section that holds no key at the next header, so
        // opening it again is no duplicate (aktualizr starts).
        let doc = parse("f", "[provision]\n[tls]\n[provision]\nserver = \"a\"\n");
        assert_eq!(doc.errors, vec![]);
        let reopened: Vec<_> = doc.sections.iter().map(|s| s.reopens_empty).collect();
        assert_eq!(reopened, [None, None, Some(1)]);
        let doc = parse("f", "[a]\n[a]\n[a]\nk = 1\n");
        assert_eq!(doc.errors, vec![]);
        assert_eq!(doc.sections[2].reopens_empty, Some(2));

        // Once it held a key, opening it again stops aktualizr.
        for text in [
            "[provision]\nserver = \"https://a\"\n[provision]\n",
            "[provision]\nserver = \"https://a\"\n[tls]\n[provision]\n",
        ] {
            let doc = parse("f", text);
            let kinds: Vec<_> = doc.errors.iter().map(|e| e.kind.clone()).collect();
            assert_eq!(
                kinds,
                [SyntaxErrorKind::DuplicateSection {
                    name: "provision".into(),
                    first_line: 1
                }],
                "{text}"
            );
        }
    }

    #[test]
    fn multi_line_values_are_one_error_and_skipped() {
        let doc = parse("f", "[a]\nx = [\n  \"1\",\n  [2, 3],\n]\ny = 1\n");
        assert_eq!(doc.errors.len(), 1);
        assert_eq!(
            doc.errors[0].kind,
            SyntaxErrorKind::MultiLine {
                what: MultiLine::Array,
                key: "x".into(),
                stops_at: 3
            }
        );
        assert_eq!(doc.sections[0].entries.len(), 1);
        assert_eq!(doc.sections[0].entries[0].key, "y");

        let doc = parse("f", "[a]\nx = \"\"\"\nline\n\"\"\"\ny = 1\n");
        assert_eq!(doc.errors.len(), 1);
        assert_eq!(doc.errors[0].line, 2);
        assert_eq!(doc.sections[0].entries[0].key, "y");

        // An opener followed by a key line is just the string `[`.
        let doc = parse("f", "[a]\nx = [\ny = 1\n");
        assert!(doc.errors.is_empty());
        assert_eq!(doc.sections[0].entries.len(), 2);
    }

    #[test]
    fn never_panics_on_odd_input() {
        for text in [
            "",
            "\n",
            "[",
            "]",
            "=",
            "[é",
            "é = \"é&",
            "x = [ é",
            "x = \"\"\"",
            "[a]\nk = \"&",
            "\u{feff}",
            "[a] é",
        ] {
            let _ = parse("f", text);
        }
    }
}
