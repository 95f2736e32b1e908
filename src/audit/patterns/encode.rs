//! The encoded forms of a secret: what a reader can undo to get the secret
//! back (docs/audit.md, "What it looks for"). The needles are encoded, not
//! the haystack: the search stays one pass of fixed strings, as YARA's
//! `base64` modifier does (VirusTotal/yara-x `lib/src/compiler/base64.rs`).
//!
//! Pure and allocation-bounded by the secret's size.

const STD: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// The two base64 alphabets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alphabet {
    /// RFC 4648 section 4 (PEM, MIME).
    Standard,
    /// RFC 4648 section 5 (JWK, JWT, URLs).
    Url,
}

/// base64 of `data`, no padding.
pub fn base64(data: &[u8], alphabet: Alphabet) -> Vec<u8> {
    let table = match alphabet {
        Alphabet::Standard => STD,
        Alphabet::Url => URL,
    };
    let mut out = Vec::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk.first().copied().unwrap_or(0),
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let chars = chunk.len() + 1;
        for i in 0..chars {
            let index = (n >> (18 - 6 * i)) & 63;
            out.push(table[index as usize]);
        }
    }
    out
}

/// The base64 of `data` when it starts `shift` (0, 1 or 2) bytes into a
/// base64 group, keeping only the characters made of `data`'s bits alone:
/// the ones that depend on the neighbouring bytes are trimmed at both ends.
/// The three shifts together find `data` wherever it sits in any base64
/// text.
pub fn base64_shifted(data: &[u8], shift: usize, alphabet: Alphabet) -> Vec<u8> {
    let shift = shift % 3;
    let mut padded = vec![0u8; shift];
    padded.extend_from_slice(data);
    let encoded = base64(&padded, alphabet);
    // Character j holds bits [6j, 6j + 6) of the padded bytes; `data`
    // holds bits [8 shift, 8 (shift + len)).
    let start = (8 * shift).div_ceil(6);
    let end = (8 * (shift + data.len())) / 6;
    encoded
        .get(start..end)
        .map(<[u8]>::to_vec)
        .unwrap_or_default()
}

/// Lower-case hex.
pub fn hex_lower(data: &[u8]) -> Vec<u8> {
    crate::digest::hex(data).into_bytes()
}

/// Upper-case hex.
pub fn hex_upper(data: &[u8]) -> Vec<u8> {
    crate::digest::hex(data).to_ascii_uppercase().into_bytes()
}

/// The forms a JSON writer may give `text` inside a string, other than
/// `text` itself: the shortest escaping (`\"`, `\\`, `\n`, `\u001f`), the
/// same with `\/` (PHP, some Java writers), and every character as `\uXXXX`
/// (hex digits in both cases; surrogate pairs beyond the BMP).
pub fn json_forms(text: &str) -> Vec<Vec<u8>> {
    let mut short = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '"' => short.push_str("\\\""),
            '\\' => short.push_str("\\\\"),
            '\n' => short.push_str("\\n"),
            '\r' => short.push_str("\\r"),
            '\t' => short.push_str("\\t"),
            '\u{8}' => short.push_str("\\b"),
            '\u{c}' => short.push_str("\\f"),
            c if u32::from(c) < 0x20 => short.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => short.push(c),
        }
    }
    let slashed = short.replace('/', "\\/");
    let mut all = String::with_capacity(text.len() * 6);
    for unit in text.encode_utf16() {
        all.push_str(&format!("\\u{unit:04x}"));
    }
    let mut out = vec![short.into_bytes(), slashed.into_bytes()];
    out.push(all.clone().into_bytes());
    out.push(upper_hex_escapes(&all).into_bytes());
    out
}

/// `\u00e9` -> `\u00E9`: the hex digits upper-cased, the `u` kept.
fn upper_hex_escapes(escaped: &str) -> String {
    escaped
        .split("\\u")
        .map(str::to_ascii_uppercase)
        .collect::<Vec<_>>()
        .join("\\u")
}

/// UTF-16 little-endian (Windows, `wide` strings).
pub fn utf16_le(text: &str) -> Vec<u8> {
    text.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

/// UTF-16 big-endian.
pub fn utf16_be(text: &str) -> Vec<u8> {
    text.encode_utf16().flat_map(u16::to_be_bytes).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_rfc_vectors() {
        // RFC 4648 section 10, padding left out.
        for (plain, coded) in [
            ("", ""),
            ("f", "Zg"),
            ("fo", "Zm8"),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg"),
            ("fooba", "Zm9vYmE"),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(
                base64(plain.as_bytes(), Alphabet::Standard),
                coded.as_bytes()
            );
        }
        assert_eq!(base64(&[0xfb, 0xff], Alphabet::Standard), b"+/8");
        assert_eq!(base64(&[0xfb, 0xff], Alphabet::Url), b"-_8");
    }

    #[test]
    fn each_shift_is_inside_the_base64_of_the_data_at_that_offset() {
        let secret: Vec<u8> = (0u8..40).map(|b| b.wrapping_mul(97) ^ 0x5a).collect();
        for before in 0..9 {
            for after in 0..4 {
                let mut whole = vec![0xa5u8; before];
                whole.extend_from_slice(&secret);
                whole.extend(std::iter::repeat(0x3cu8).take(after));
                let coded = base64(&whole, Alphabet::Standard);
                let form = base64_shifted(&secret, before % 3, Alphabet::Standard);
                assert!(form.len() >= 50, "{}", form.len());
                assert!(
                    coded.windows(form.len()).any(|w| w == form.as_slice()),
                    "before {before} after {after}"
                );
            }
        }
    }

    #[test]
    fn json_forms_escape_what_json_writers_escape() {
        let forms = json_forms("a/b\"c\u{1}\né");
        assert_eq!(forms[0], r#"a/b\"c\u0001\né"#.as_bytes());
        assert_eq!(forms[1], r#"a\/b\"c\u0001\né"#.as_bytes());
        assert_eq!(
            forms[2],
            br#"\u0061\u002f\u0062\u0022\u0063\u0001\u000a\u00e9"#.to_vec()
        );
        assert_eq!(
            forms[3],
            br#"\u0061\u002F\u0062\u0022\u0063\u0001\u000A\u00E9"#.to_vec()
        );
        assert_eq!(utf16_le("ab"), b"a\0b\0");
        assert_eq!(utf16_be("ab"), b"\0a\0b");
    }
}
