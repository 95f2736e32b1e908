//! PEM text (RFC 7468): cutting a file into its `-----BEGIN ...-----`
//! blocks, and writing DER out as PEM.
//!
//! Blocks are cut here, not by a crate: text outside blocks is ignored (as
//! OpenSSL does, so `Bag Attributes` lines and comments between
//! certificates are fine), and RFC 1421 headers are recognised so that a
//! legacy encrypted key is named as such. Each block is then decoded by
//! `der`'s strict RFC 7468 decoder after its base64 lines are re-wrapped, so
//! files wrapped at 76 columns or written with CRLF still read. What a block
//! holds (certificate, key) is for [`super::x509`] and
//! [`super::private_key`] to decide.

use super::error::CryptoError;

/// One `-----BEGIN ...-----` to `-----END ...-----` block, not yet decoded.
pub(crate) struct Block {
    /// 1-based position among the blocks of the text.
    pub index: usize,
    pub label: String,
    /// Base64 text with the line breaks and blanks removed.
    body: String,
    /// RFC 1421 headers (`Proc-Type: 4,ENCRYPTED`, `DEK-Info`): the legacy
    /// OpenSSL way of encrypting a key.
    has_headers: bool,
    encrypted: bool,
    /// The `DEK-Info` header's value (`AES-256-CBC,<IV in hex>`).
    dek_info: Option<String>,
}

impl Block {
    /// The DER bytes. The base64 is re-wrapped at 64 columns so that the
    /// strict RFC 7468 decoder accepts any line width and line ending.
    pub(crate) fn decode(&self) -> Result<Vec<u8>, CryptoError> {
        let bad = |detail: &str| CryptoError::BadPem {
            index: self.index,
            detail: detail.to_owned(),
        };
        if self.encrypted {
            return Err(CryptoError::EncryptedKey);
        }
        if self.has_headers {
            return Err(bad("PEM headers are not supported"));
        }
        self.decode_body()
    }

    /// The `DEK-Info` of a legacy encrypted key (`Proc-Type: 4,ENCRYPTED`).
    pub(crate) fn legacy_encryption(&self) -> Option<&str> {
        self.dek_info.as_deref().filter(|_| self.encrypted)
    }

    /// The encrypted bytes of a legacy encrypted key, headers aside.
    pub(crate) fn decode_encrypted(&self) -> Result<Vec<u8>, CryptoError> {
        self.decode_body()
    }

    fn decode_body(&self) -> Result<Vec<u8>, CryptoError> {
        let bad = |detail: &str| CryptoError::BadPem {
            index: self.index,
            detail: detail.to_owned(),
        };
        if self.body.is_empty() {
            return Err(bad("the block is empty"));
        }
        if !self
            .body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='))
        {
            return Err(bad("the block holds characters that are not base64"));
        }
        let mut pem = String::with_capacity(self.body.len() + 2 * self.label.len() + 64);
        pem.push_str("-----BEGIN ");
        pem.push_str(&self.label);
        pem.push_str("-----\n");
        for (i, c) in self.body.chars().enumerate() {
            if i > 0 && i % 64 == 0 {
                pem.push('\n');
            }
            pem.push(c);
        }
        pem.push_str("\n-----END ");
        pem.push_str(&self.label);
        pem.push_str("-----\n");
        der::pem::decode_vec(pem.as_bytes())
            .map(|(_, der)| der)
            .map_err(|e| CryptoError::BadPem {
                index: self.index,
                detail: e.to_string(),
            })
    }
}

/// Cut PEM text into its blocks. Text outside blocks is ignored; a block
/// without its END line, or with a mismatched one, is an error.
pub(crate) fn blocks(text: &[u8]) -> Result<Vec<Block>, CryptoError> {
    let mut blocks = Vec::new();
    let mut current: Option<Block> = None;
    for raw in text.split(|&b| b == b'\n') {
        let line = trim_ascii(raw);
        let Some(block) = current.as_mut() else {
            if let Some(label) = boundary(line, b"-----BEGIN ") {
                current = Some(Block {
                    index: blocks.len() + 1,
                    label,
                    body: String::new(),
                    has_headers: false,
                    encrypted: false,
                    dek_info: None,
                });
            }
            continue;
        };
        let bad = |detail: &str| CryptoError::BadPem {
            index: block.index,
            detail: detail.to_owned(),
        };
        if let Some(label) = boundary(line, b"-----END ") {
            if label != block.label {
                return Err(bad("its END line does not match its BEGIN line"));
            }
            if let Some(done) = current.take() {
                blocks.push(done);
            }
        } else if boundary(line, b"-----BEGIN ").is_some() {
            return Err(bad("it has no END line"));
        } else if line.contains(&b':') {
            block.has_headers = true;
            if line.starts_with(b"Proc-Type:") && contains(line, b"ENCRYPTED") {
                block.encrypted = true;
            }
            if let Some(value) = line.strip_prefix(b"DEK-Info:") {
                block.dek_info = Some(String::from_utf8_lossy(trim_ascii(value)).into_owned());
            }
        } else {
            for &b in line {
                if !b.is_ascii_whitespace() {
                    // Non-ASCII bytes are turned into a replacement
                    // character, which `decode` refuses as not base64.
                    block.body.push(if b.is_ascii() {
                        char::from(b)
                    } else {
                        '\u{fffd}'
                    });
                }
            }
        }
    }
    if let Some(block) = current {
        return Err(CryptoError::BadPem {
            index: block.index,
            detail: "it has no END line".into(),
        });
    }
    Ok(blocks)
}

/// The label of a `-----BEGIN label-----` or `-----END label-----` line.
/// Labels are shown in messages, so odd characters are escaped.
fn boundary(line: &[u8], prefix: &[u8]) -> Option<String> {
    let rest = line.strip_prefix(prefix)?;
    let label = rest.strip_suffix(b"-----")?;
    let label: String = String::from_utf8_lossy(label)
        .chars()
        .take(64)
        .flat_map(char::escape_default)
        .collect();
    Some(label)
}

fn trim_ascii(mut s: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = s {
        if first.is_ascii_whitespace() {
            s = rest;
        } else {
            break;
        }
    }
    while let [rest @ .., last] = s {
        if last.is_ascii_whitespace() {
            s = rest;
        } else {
            break;
        }
    }
    s
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// RFC 7468 encoding by `der::pem`: LF line ends, base64 wrapped at 64
/// columns, a final newline, as OpenSSL writes it.
///
/// `der::pem` fails only for a label that is not printable ASCII or for
/// output longer than `usize` can count. Neither can happen here: the
/// labels are this crate's constants (`CERTIFICATE`, `PRIVATE KEY`) and the
/// DER is already in memory. So callers get a `String`, not a `Result`
/// they could never see fail; the empty string stands in for the error.
pub(crate) fn encode(label: &str, der: &[u8]) -> String {
    der::pem::encode_string(label, der::pem::LineEnding::LF, der).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_encoding_pads_like_base64() {
        for (der, body) in [
            // An empty body is one empty line in `der::pem`'s form (the
            // hand-written encoder wrote none). Nothing encodes empty DER:
            // callers pass a parsed certificate's or key's bytes.
            (&b""[..], "\n"),
            (b"f", "Zg==\n"),
            (b"fo", "Zm8=\n"),
            (b"foo", "Zm9v\n"),
            (b"foob", "Zm9vYg==\n"),
        ] {
            assert_eq!(
                encode("X", der),
                format!("-----BEGIN X-----\n{body}-----END X-----\n")
            );
        }
        let long = encode("X", &[0xffu8; 49]);
        let lines: Vec<&str> = long.lines().collect();
        assert_eq!(lines[1].len(), 64);
        assert_eq!(lines.len(), 4);
        assert_eq!(lines[2], "/w==");
        // The labels callers use encode.
        for label in ["CERTIFICATE", "PRIVATE KEY"] {
            assert!(encode(label, b"x").starts_with("-----BEGIN "), "{label}");
        }
    }
}
