//! The one escaping function for untrusted text in text output: entry names,
//! certificate subjects, URLs, JSON values, config values, file names from
//! the command line. A terminal acts on control characters (a colour, a
//! cursor move, a carriage return that overwrites the line) and on bidi
//! controls (U+202E turns the rest of a line around); a line break starts a
//! forged line; zero-width and other format characters make two different
//! names look the same. All of them are shown escaped instead, the way
//! Rust's `escape_debug` writes them: `\n`, `\r`, `\t`, `\0`, `\u{1b}`,
//! `\u{202e}`.
//!
//! The escaping is idempotent: it never escapes a backslash, so text escaped
//! once (an entry name inside an error) passes a second time unchanged.
//! A backslash is plain text on a terminal; it forges nothing.
//!
//! JSON output needs none of this: serde escapes control characters, and a
//! JSON reader gets the real value.

use std::borrow::Cow;
use std::fmt::Write as _;

/// True for what must never reach a terminal raw, and never be part of an
/// archive entry name: Unicode controls (general category Cc: C0, DEL, C1),
/// format characters (Cf: bidi controls, zero-width characters, the BOM,
/// soft hyphen...) and the line and paragraph separators (Zl, Zp).
pub fn is_hidden(c: char) -> bool {
    c.is_control() || c == '\u{2028}' || c == '\u{2029}' || is_format(c)
}

/// Unicode general category Cf ("Other, format"), from
/// DerivedGeneralCategory.txt of Unicode 15.1. No crate of Cargo.lock gives
/// general categories, and this is the whole table.
pub fn is_format(c: char) -> bool {
    const CF: &[(u32, u32)] = &[
        (0xAD, 0xAD),
        (0x600, 0x605),
        (0x61C, 0x61C),
        (0x6DD, 0x6DD),
        (0x70F, 0x70F),
        (0x890, 0x891),
        (0x8E2, 0x8E2),
        (0x180E, 0x180E),
        (0x200B, 0x200F),
        (0x202A, 0x202E),
        (0x2060, 0x2064),
        (0x2066, 0x206F),
        (0xFEFF, 0xFEFF),
        (0xFFF9, 0xFFFB),
        (0x110BD, 0x110BD),
        (0x110CD, 0x110CD),
        (0x13430, 0x1343F),
        (0x1BCA0, 0x1BCA3),
        (0x1D173, 0x1D17A),
        (0xE0001, 0xE0001),
        (0xE0020, 0xE007F),
    ];
    let c = u32::from(c);
    CF.iter().any(|&(low, high)| (low..=high).contains(&c))
}

/// `text` with every [`is_hidden`] character escaped; borrowed when there
/// is none.
pub fn escape(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_hidden) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\0' => out.push_str("\\0"),
            c if is_hidden(c) => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Raw bytes (an entry name, a file name) as escaped text: bytes that are
/// not UTF-8 become U+FFFD, then [`escape`].
pub fn escape_bytes(bytes: &[u8]) -> String {
    escape(&String::from_utf8_lossy(bytes)).into_owned()
}

/// Every line of `text` escaped, the line breaks between them kept: for
/// text made of lines the tool wrote around untrusted parts.
pub fn escape_lines(text: &str) -> String {
    text.split('\n').map(escape).collect::<Vec<_>>().join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_line_breaks_and_format_characters_are_escaped() {
        let cases = [
            ("plain name.url", "plain name.url"),
            ("a\nb\r\t\0", "a\\nb\\r\\t\\0"),
            ("\u{1b}[31m", "\\u{1b}[31m"),
            ("\u{7f}\u{85}\u{9b}", "\\u{7f}\\u{85}\\u{9b}"),
            ("gnp.\u{202e}exe", "gnp.\\u{202e}exe"),
            ("autoprov.url\u{200b}", "autoprov.url\\u{200b}"),
            (
                "\u{feff}\u{2028}\u{2029}\u{2066}",
                "\\u{feff}\\u{2028}\\u{2029}\\u{2066}",
            ),
            ("\u{e0041}\u{ad}", "\\u{e0041}\\u{ad}"),
            ("grüße, 証明書, emoji 🙂", "grüße, 証明書, emoji 🙂"),
            ("C:\\x", "C:\\x"),
        ];
        for (raw, shown) in cases {
            assert_eq!(escape(raw), shown, "{raw:?}");
        }
    }

    #[test]
    fn escaping_twice_changes_nothing() {
        let once = escape("x\u{1b}\n\u{202e}").into_owned();
        assert_eq!(escape(&once), once);
    }

    #[test]
    fn the_format_table_agrees_with_std_where_std_knows() {
        // std has no categories, but every Cf character is "not printable"
        // for escape_debug: a sampled cross-check of the table.
        for c in [
            '\u{ad}',
            '\u{200b}',
            '\u{202e}',
            '\u{2066}',
            '\u{feff}',
            '\u{e0001}',
        ] {
            assert!(is_format(c), "{c:?}");
            assert_ne!(c.escape_debug().to_string(), c.to_string(), "{c:?}");
        }
        for c in ['a', ' ', '\u{a0}', '\u{2010}', '\u{fffd}'] {
            assert!(!is_hidden(c), "{c:?}");
        }
    }

    #[test]
    fn bytes_that_are_not_utf8_are_replaced() {
        assert_eq!(escape_bytes(b"a\xff\x1b"), "a\u{fffd}\\u{1b}");
    }

    #[test]
    fn lines_keep_their_breaks() {
        assert_eq!(escape_lines("a\u{1b}\nb\r"), "a\\u{1b}\nb\\r");
    }
}
