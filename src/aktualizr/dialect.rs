//! aktualizr's configuration dialect: the parser and the key schema.
//!
//! aktualizr's `*.toml` files are not TOML. aktualizr reads them with
//! Boost.PropertyTree's INI parser (`read_ini`) and then takes each known key
//! with `ptree::get_optional<T>` (domain.md section 3, checked against a
//! real aktualizr). This module reproduces both steps, keeping the file,
//! line and column of everything it reads:
//!
//! - [`parse`] splits a file the way `read_ini` does: lines trimmed of ASCII
//!   white space, full-line `#`/`;` comments, `[section]` headers (anything
//!   after the first `]` is dropped), `key = value` split at the first `=`.
//!   What makes `read_ini` throw (and aktualizr stop) is recorded as a
//!   [`SyntaxError`].
//! - [`read`] and the `read_*` functions say what aktualizr gets from a raw
//!   value of a given [`ValueType`], or that it silently ignores the key.
//! - [`SCHEMA`] lists every key aktualizr reads, with its type.
//!
//! It judges nothing: the wording of problems is in [`crate::aktualizr::lint`].

use std::collections::BTreeMap;

/// How aktualizr reads the value of a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueType {
    /// `std::string`: every `"` removed, no escapes, taken as is otherwise.
    String,
    /// `boost::filesystem::path`: a bare word, or a `"`-quoted string whose
    /// escape character is `&`; anything left over and the key is ignored.
    Path,
    /// `int`: bare decimal, else ignored.
    Integer,
    /// `uint64_t`: bare decimal, else ignored; `-5` wraps around.
    Unsigned,
    /// `bool`: bare `true`, `false`, `1` or `0`, else ignored.
    Boolean,
    /// A string compared with the known values, case-sensitively.
    Enum(&'static [&'static str]),
}

impl ValueType {
    /// The name used in docs/lint.md and in messages.
    pub fn name(self) -> &'static str {
        match self {
            ValueType::String => "string",
            ValueType::Path => "path",
            ValueType::Integer => "integer",
            ValueType::Unsigned => "unsigned",
            ValueType::Boolean => "boolean",
            ValueType::Enum(_) => "enum",
        }
    }
}

/// One key aktualizr reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeySpec {
    pub section: &'static str,
    pub key: &'static str,
    pub ty: ValueType,
    /// aktualizr's default, as text, where it is a constant.
    pub default: Option<&'static str>,
    /// A password or PIN: its value never appears in any output.
    pub secret: bool,
}

impl KeySpec {
    const fn new(section: &'static str, key: &'static str, ty: ValueType) -> Self {
        KeySpec {
            section,
            key,
            ty,
            default: None,
            secret: false,
        }
    }

    const fn default(self, value: &'static str) -> Self {
        KeySpec {
            default: Some(value),
            ..self
        }
    }

    const fn secret(self) -> Self {
        KeySpec {
            secret: true,
            ..self
        }
    }
}

const CRYPTO_SOURCE: ValueType = ValueType::Enum(&["file", "pkcs11"]);

const STRING: ValueType = ValueType::String;
const PATH: ValueType = ValueType::Path;
const INTEGER: ValueType = ValueType::Integer;
const UNSIGNED: ValueType = ValueType::Unsigned;
const BOOLEAN: ValueType = ValueType::Boolean;

/// The sections aktualizr reads, in the order `Config::updateFromPropertyTree`
/// reads them.
pub const SECTIONS: &[&str] = &[
    "logger",
    "p11",
    "tls",
    "provision",
    "uptane",
    "pacman",
    "storage",
    "import",
    "telemetry",
    "bootloader",
];

/// Every key aktualizr reads. Types and defaults: domain.md section 3 where
/// it gives them, else docs/lint.md says where they come from.
pub const SCHEMA: &[KeySpec] = &[
    KeySpec::new("logger", "loglevel", INTEGER).default("2"),
    // [p11]
    KeySpec::new("p11", "module", PATH),
    KeySpec::new("p11", "pass", STRING).secret(),
    KeySpec::new("p11", "uptane_key_id", STRING),
    KeySpec::new("p11", "tls_cacert_id", STRING),
    KeySpec::new("p11", "tls_pkey_id", STRING),
    KeySpec::new("p11", "tls_clientcert_id", STRING),
    // [tls]
    KeySpec::new("tls", "server", STRING),
    KeySpec::new("tls", "server_url_path", PATH),
    KeySpec::new("tls", "ca_source", CRYPTO_SOURCE).default("file"),
    KeySpec::new("tls", "pkey_source", CRYPTO_SOURCE).default("file"),
    KeySpec::new("tls", "cert_source", CRYPTO_SOURCE).default("file"),
    // [provision]
    KeySpec::new("provision", "server", STRING),
    KeySpec::new("provision", "p12_password", STRING)
        .default("")
        .secret(),
    KeySpec::new("provision", "expiry_days", STRING).default("36000"),
    KeySpec::new("provision", "provision_path", PATH).default(""),
    KeySpec::new("provision", "device_id", STRING),
    KeySpec::new("provision", "primary_ecu_serial", STRING),
    KeySpec::new("provision", "primary_ecu_hardware_id", STRING),
    KeySpec::new("provision", "ecu_registration_endpoint", STRING),
    KeySpec::new(
        "provision",
        "mode",
        ValueType::Enum(&["SharedCred", "DeviceCred", "SharedCredReuse"]),
    ),
    // [uptane]
    KeySpec::new("uptane", "polling_sec", UNSIGNED).default("10"),
    KeySpec::new("uptane", "director_server", STRING),
    KeySpec::new("uptane", "repo_server", STRING),
    KeySpec::new("uptane", "key_source", CRYPTO_SOURCE).default("file"),
    KeySpec::new(
        "uptane",
        "key_type",
        ValueType::Enum(&["RSA2048", "RSA3072", "RSA4096", "ED25519"]),
    )
    .default("RSA2048"),
    KeySpec::new("uptane", "force_install_completion", BOOLEAN).default("false"),
    KeySpec::new("uptane", "secondary_config_file", PATH),
    KeySpec::new("uptane", "secondary_preinstall_wait_sec", UNSIGNED).default("600"),
    // [pacman]: unknown keys are kept too (see OPEN_SECTIONS).
    KeySpec::new(
        "pacman",
        "type",
        ValueType::Enum(&["ostree", "none", "debian", "android"]),
    )
    .default("ostree"),
    KeySpec::new("pacman", "os", STRING),
    KeySpec::new("pacman", "sysroot", PATH),
    KeySpec::new("pacman", "ostree_server", STRING),
    KeySpec::new("pacman", "images_path", PATH),
    KeySpec::new("pacman", "packages_file", PATH),
    KeySpec::new("pacman", "fake_need_reboot", BOOLEAN).default("false"),
    // [storage]
    KeySpec::new(
        "storage",
        "type",
        ValueType::Enum(&["sqlite", "filesystem"]),
    )
    .default("sqlite"),
    KeySpec::new("storage", "path", PATH).default("/var/sota"),
    KeySpec::new("storage", "sqldb_path", STRING).default("sql.db"),
    KeySpec::new("storage", "uptane_metadata_path", STRING),
    KeySpec::new("storage", "uptane_private_key_path", STRING),
    KeySpec::new("storage", "uptane_public_key_path", STRING),
    KeySpec::new("storage", "tls_cacert_path", STRING),
    KeySpec::new("storage", "tls_pkey_path", STRING),
    KeySpec::new("storage", "tls_clientcert_path", STRING),
    // [import]
    KeySpec::new("import", "base_path", PATH).default("/var/sota/import"),
    KeySpec::new("import", "uptane_private_key_path", STRING),
    KeySpec::new("import", "uptane_public_key_path", STRING),
    KeySpec::new("import", "tls_cacert_path", STRING),
    KeySpec::new("import", "tls_pkey_path", STRING),
    KeySpec::new("import", "tls_clientcert_path", STRING),
    // [telemetry]
    KeySpec::new("telemetry", "report_network", BOOLEAN).default("true"),
    KeySpec::new("telemetry", "report_config", BOOLEAN).default("true"),
    // [bootloader]
    KeySpec::new(
        "bootloader",
        "rollback_mode",
        ValueType::Enum(&["none", "uboot_generic", "uboot_masked", "fiovb"]),
    )
    .default("none"),
    KeySpec::new("bootloader", "reboot_sentinel_dir", PATH),
    KeySpec::new("bootloader", "reboot_sentinel_name", PATH),
    KeySpec::new("bootloader", "reboot_command", STRING),
];

/// Sections whose unknown keys aktualizr keeps (as `pacman.extra`).
pub const OPEN_SECTIONS: &[&str] = &["pacman"];

/// The schema entry of `[section] key`, exact match (aktualizr's names are
/// case-sensitive).
pub fn key_spec(section: &str, key: &str) -> Option<&'static KeySpec> {
    SCHEMA
        .iter()
        .find(|spec| spec.section == section && spec.key == key)
}

/// True when aktualizr reads a section of that exact name.
pub fn is_section(name: &str) -> bool {
    SECTIONS.contains(&name)
}

/// True when aktualizr keeps unknown keys of that section.
pub fn accepts_unknown_keys(section: &str) -> bool {
    OPEN_SECTIONS.contains(&section)
}

/// The keys aktualizr reads in one section.
pub fn keys_of(section: &str) -> impl Iterator<Item = &'static KeySpec> + '_ {
    SCHEMA.iter().filter(move |spec| spec.section == section)
}

// ---------------------------------------------------------------------------
// The parsed form

/// One parsed file: its sections and keys as `read_ini` sees them, with
/// positions, and what would make `read_ini` throw.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Document {
    /// The file name as it should be printed.
    pub file: String,
    /// `key = value` lines before the first `[section]`.
    pub root: Vec<Entry>,
    /// Sections in file order (a repeated one appears twice: it is also a
    /// [`SyntaxError`]).
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
    /// A section opened twice in one file ("duplicate section name").
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
fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0b' | '\x0c')
}

/// Trims like Boost; returns the byte offset of the trimmed text too.
fn trim(s: &str) -> (usize, &str) {
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
    // Names in the top-level tree: root keys and section names share it.
    let mut root_names: BTreeMap<String, usize> = BTreeMap::new();
    let mut section_keys: BTreeMap<String, usize> = BTreeMap::new();
    let mut index = 0;
    while index < lines.len() {
        let line = lines[index];
        let line_no = index + 1;
        index += 1;
        let (start, t) = trim(line);
        if t.is_empty() || t.starts_with('#') || t.starts_with(';') {
            continue;
        }
        if let Some(header) = t.strip_prefix('[') {
            let Some(end) = t.find(']') else {
                doc.errors.push(SyntaxError {
                    line: line_no,
                    column: column(line, start),
                    kind: SyntaxErrorKind::UnclosedSection,
                });
                // aktualizr stops here; the lines after are checked as if
                // the `]` were there, so one typo gives one problem.
                let (name_off, name) = trim(header);
                section_keys.clear();
                doc.sections.push(Section {
                    name: name.to_string(),
                    line: line_no,
                    column: column(line, start),
                    name_column: column(line, start + 1 + name_off),
                    trailing_column: None,
                    trailing_is_comment: false,
                    unclosed: true,
                    entries: Vec::new(),
                });
                continue;
            };
            let (name_off, name) = trim(&t[1..end]);
            let name_column = if name.is_empty() {
                column(line, start + end)
            } else {
                column(line, start + 1 + name_off)
            };
            let after = &t[end + 1..];
            let (after_off, after_t) = trim(after);
            let trailing_column =
                (!after_t.is_empty()).then(|| column(line, start + end + 1 + after_off));
            if let Some(&first_line) = root_names.get(name) {
                doc.errors.push(SyntaxError {
                    line: line_no,
                    column: column(line, start),
                    kind: SyntaxErrorKind::DuplicateSection {
                        name: name.to_string(),
                        first_line,
                    },
                });
            } else {
                root_names.insert(name.to_string(), line_no);
            }
            section_keys.clear();
            doc.sections.push(Section {
                name: name.to_string(),
                line: line_no,
                column: column(line, start),
                name_column,
                trailing_column,
                trailing_is_comment: after_t.starts_with('#') || after_t.starts_with(';'),
                unclosed: false,
                entries: Vec::new(),
            });
            continue;
        }
        let eq = match t.find('=') {
            None => {
                doc.errors.push(SyntaxError {
                    line: line_no,
                    column: column(line, start),
                    kind: SyntaxErrorKind::MissingEquals,
                });
                continue;
            }
            Some(0) => {
                doc.errors.push(SyntaxError {
                    line: line_no,
                    column: column(line, start),
                    kind: SyntaxErrorKind::MissingKey,
                });
                continue;
            }
            Some(eq) => eq,
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
        let (names, section) = match doc.sections.last() {
            Some(section) => (&mut section_keys, Some(section.name.clone())),
            None => (&mut root_names, None),
        };
        if let Some(&first_line) = names.get(key) {
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
        names.insert(key.to_string(), line_no);
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

// ---------------------------------------------------------------------------
// What aktualizr gets from a value

/// A value as aktualizr holds it after reading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Text(String),
    Integer(i64),
    Unsigned(u64),
    Boolean(bool),
}

/// What aktualizr gets from `raw` for a key of type `ty`; `None` when it
/// silently ignores the key (the earlier value or the default stays).
pub fn read(ty: ValueType, raw: &str) -> Option<Value> {
    match ty {
        ValueType::String | ValueType::Enum(_) => Some(Value::Text(read_string(raw))),
        ValueType::Path => read_path(raw).ok().map(|p| Value::Text(p.value)),
        ValueType::Integer => match read_integer(raw)? {
            n if n >= i128::from(i32::MIN) && n <= i128::from(i32::MAX) => {
                i64::try_from(n).ok().map(Value::Integer)
            }
            _ => None,
        },
        ValueType::Unsigned => read_unsigned(raw).map(Value::Unsigned),
        ValueType::Boolean => read_bool(raw).map(Value::Boolean),
    }
}

/// aktualizr's `StripQuotesFromStrings`: every `"` removed, nothing else
/// touched (no escapes; single quotes stay).
pub fn read_string(raw: &str) -> String {
    raw.chars().filter(|&c| c != '"').collect()
}

/// A path as aktualizr reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathValue {
    pub value: String,
    /// Byte offsets (in the raw value) of every `&` that escapes a
    /// character other than `&`: where a TOML reader and aktualizr differ.
    pub lone_ampersands: Vec<usize>,
}

/// Why aktualizr ignores a path value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathFailure {
    /// Nothing after `=`: the stream has nothing to extract.
    Empty,
    /// A bare path followed by more text after white space, which starts at
    /// this byte offset.
    TextAfterBareWord(usize),
    /// Text after the closing quote, starting at this byte offset.
    TextAfterQuote(usize),
    /// No closing quote (an `&` before the last `"` escapes it).
    Unclosed,
}

/// `iss >> boost::io::quoted(path, '&')` and the check that the whole
/// value was used (`stream_translator::get_value`).
pub fn read_path(raw: &str) -> Result<PathValue, PathFailure> {
    if raw.is_empty() {
        return Err(PathFailure::Empty);
    }
    let Some(quoted) = raw.strip_prefix('"') else {
        // Not quoted: `operator>>` reads one white-space delimited word.
        return match raw.find(is_space) {
            None => Ok(PathValue {
                value: raw.to_string(),
                lone_ampersands: Vec::new(),
            }),
            Some(pos) => {
                let rest = raw.len() - raw[pos..].trim_start_matches(is_space).len();
                Err(PathFailure::TextAfterBareWord(rest))
            }
        };
    };
    let mut value = String::new();
    let mut lone_ampersands = Vec::new();
    let mut chars = quoted.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '&' => match chars.next() {
                Some((_, escaped)) => {
                    if escaped != '&' {
                        lone_ampersands.push(i + 1);
                    }
                    value.push(escaped);
                }
                None => return Err(PathFailure::Unclosed),
            },
            '"' => {
                let after = i + 2;
                let rest = &raw[after..];
                let (off, t) = trim(rest);
                return if t.is_empty() {
                    Ok(PathValue {
                        value,
                        lone_ampersands,
                    })
                } else {
                    Err(PathFailure::TextAfterQuote(after + off))
                };
            }
            c => value.push(c),
        }
    }
    Err(PathFailure::Unclosed)
}

/// `iss >> n` in the classic locale: optional sign, decimal digits, and
/// nothing else. Returns the number with its sign, unbounded by the
/// target type (up to what fits in an i128); `None` when the stream fails.
pub fn read_integer(raw: &str) -> Option<i128> {
    let (negative, digits) = match raw.as_bytes().first()? {
        b'-' => (true, &raw[1..]),
        b'+' => (false, &raw[1..]),
        _ => (false, raw),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let digits = digits.trim_start_matches('0');
    if digits.len() > 30 {
        return None;
    }
    let magnitude: i128 = if digits.is_empty() {
        0
    } else {
        digits.parse().ok()?
    };
    Some(if negative { -magnitude } else { magnitude })
}

/// `iss >> n` for a `uint64_t`: a negative number wraps around, as
/// `strtoull` does; a magnitude over `u64::MAX` fails.
pub fn read_unsigned(raw: &str) -> Option<u64> {
    let n = read_integer(raw)?;
    let magnitude = u64::try_from(n.unsigned_abs()).ok()?;
    Some(if n < 0 {
        magnitude.wrapping_neg()
    } else {
        magnitude
    })
}

/// Boost's `customize_stream<bool>`: a number that is 0 or 1, else the
/// words `true` or `false` (lower case only).
pub fn read_bool(raw: &str) -> Option<bool> {
    match raw {
        "true" => Some(true),
        "false" => Some(false),
        _ => match read_integer(raw)? {
            0 => Some(false),
            1 => Some(true),
            _ => None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_has_no_duplicates_and_known_sections() {
        for (i, a) in SCHEMA.iter().enumerate() {
            assert!(is_section(a.section), "{}", a.section);
            for b in &SCHEMA[i + 1..] {
                assert!(
                    !(a.section == b.section && a.key == b.key),
                    "{}.{}",
                    a.section,
                    a.key
                );
            }
        }
    }

    #[test]
    fn domain_path_keys_are_paths() {
        for (section, key) in [
            ("provision", "provision_path"),
            ("tls", "server_url_path"),
            ("import", "base_path"),
            ("storage", "path"),
            ("p11", "module"),
            ("uptane", "secondary_config_file"),
            ("pacman", "sysroot"),
            ("pacman", "images_path"),
            ("pacman", "packages_file"),
            ("bootloader", "reboot_sentinel_dir"),
            ("bootloader", "reboot_sentinel_name"),
        ] {
            assert_eq!(key_spec(section, key).map(|s| s.ty), Some(ValueType::Path));
        }
        let paths = SCHEMA.iter().filter(|s| s.ty == ValueType::Path).count();
        assert_eq!(paths, 11);
    }

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
        let doc = parse("f", "\u{feff}[a]\nx\n= 1\n[b\n[a]\ny = 1\ny = 2\n");
        let kinds: Vec<_> = doc
            .errors
            .iter()
            .map(|e| (e.line, e.kind.clone()))
            .collect();
        assert_eq!(
            kinds,
            vec![
                (1, SyntaxErrorKind::ByteOrderMark),
                (2, SyntaxErrorKind::MissingEquals),
                (3, SyntaxErrorKind::MissingKey),
                (4, SyntaxErrorKind::UnclosedSection),
                (
                    5,
                    SyntaxErrorKind::DuplicateSection {
                        name: "a".into(),
                        first_line: 1
                    }
                ),
                (
                    7,
                    SyntaxErrorKind::DuplicateKey {
                        key: "y".into(),
                        section: Some("a".into()),
                        first_line: 6
                    }
                ),
            ]
        );
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
    fn reads_values_like_aktualizr() {
        assert_eq!(read_string("\"pa\\\"ss\""), "pa\\ss");
        assert_eq!(read_string("'secret'"), "'secret'");
        assert_eq!(read_string("\"https://a\" # x"), "https://a # x");
        let p = read_path("\"/a&b\"").map(|p| p.value);
        assert_eq!(p, Ok("/ab".to_string()));
        assert_eq!(read_path("\"/a&&b\"").map(|p| p.value), Ok("/a&b".into()));
        assert_eq!(read_path("/a&b").map(|p| p.value), Ok("/a&b".into()));
        assert_eq!(read_path("/a b"), Err(PathFailure::TextAfterBareWord(3)));
        assert_eq!(read_path("\"/a\" # x"), Err(PathFailure::TextAfterQuote(5)));
        assert_eq!(read_path("\"/a"), Err(PathFailure::Unclosed));
        assert_eq!(read_path("\"/a&\""), Err(PathFailure::Unclosed));
        assert_eq!(read_path(""), Err(PathFailure::Empty));
        assert_eq!(read_path("\"\"").map(|p| p.value), Ok(String::new()));
        assert_eq!(read_integer("30"), Some(30));
        assert_eq!(read_integer("+30"), Some(30));
        assert_eq!(read_integer("\"30\""), None);
        assert_eq!(read_integer("0x10"), None);
        assert_eq!(read_integer("1_000"), None);
        assert_eq!(read_unsigned("-5"), Some(u64::MAX - 4));
        assert_eq!(read_unsigned("18446744073709551616"), None);
        assert_eq!(read(ValueType::Integer, "2147483648"), None);
        assert_eq!(read(ValueType::Integer, "-5"), Some(Value::Integer(-5)));
        assert_eq!(read_bool("true"), Some(true));
        assert_eq!(read_bool("0"), Some(false));
        assert_eq!(read_bool("True"), None);
        assert_eq!(read_bool("yes"), None);
        assert_eq!(read_bool("2"), None);
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
        for raw in ["\"", "&", "\"&", "\"é&é\" é", "-", "+", "é é"] {
            let _ = read_path(raw);
            let _ = read_integer(raw);
        }
    }
}
