//! What aktualizr gets from a raw value: `ptree::get_optional<T>`, that is
//! Boost's stream extraction of a string, path, number or boolean.
//!
//! [`read`] says what aktualizr holds for a value of a given
//! [`ValueType`], or that it silently ignores the key (domain.md section
//! 3); the `read_*` functions give the detail the checks need (where a path
//! goes wrong, the unbounded number behind an out-of-range one).

use crate::aktualizr::ini::{is_space, trim};
use crate::aktualizr::schema::ValueType;

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

/// The text between matching quotes around the whole of `s`: what TOML
/// would read, where aktualizr keeps the quotes of a key or section name
/// and of a number.
pub fn unquote(s: &str) -> Option<&str> {
    for q in ['"', '\''] {
        if s.len() >= 2 && s.starts_with(q) && s.ends_with(q) {
            return Some(&s[1..s.len() - 1]);
        }
    }
    None
}

/// The text between the first pair of `"` at the start of `s` (`"30" # s`).
pub fn quoted_prefix(s: &str) -> Option<&str> {
    let inner = s.strip_prefix('"')?;
    inner.find('"').map(|end| &inner[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

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
        for raw in ["\"", "&", "\"&", "\"é&é\" é", "-", "+", "é é"] {
            let _ = read_path(raw);
            let _ = read_integer(raw);
        }
    }
}
