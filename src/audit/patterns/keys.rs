//! Private keys, two ways: the private material of a key we hold (what of
//! it must never be in an image: RSA `d`, `p`, `q`, an EC scalar, an
//! ED25519 seed; never the public half), and markers that tell any private
//! key in an image (`--any-private-key`), each verified by the structure
//! around it so that a certificate, a public key, or the string
//! `-----BEGIN PRIVATE KEY-----` in a man page is not one.

use der::asn1::OctetStringRef;
use der::oid::db::rfc5912::{ID_EC_PUBLIC_KEY, ID_RSASSA_PSS, RSA_ENCRYPTION};
use der::oid::db::rfc8410::ID_ED_25519;
use der::Decode;

use crate::crypto::pem;
use crate::crypto::private_key::{self, PrivateKey};
use crate::secret::Secret;

/// A private key file's key: PEM (PKCS#8, SEC1, PKCS#1; unencrypted) or
/// DER of the same.
pub fn parse_any(bytes: &[u8]) -> Option<PrivateKey> {
    if let Ok(key) = private_key::parse_private_key_pem(bytes) {
        return Some(key);
    }
    PrivateKey::from_pkcs8_der(bytes)
        .or_else(|_| PrivateKey::from_sec1_der(bytes))
        .or_else(|_| PrivateKey::from_pkcs1_der(bytes))
        .ok()
}

/// Whether `bytes` hold a PEM block of a private key (any, encrypted too).
pub fn is_pem_private_key(bytes: &[u8]) -> bool {
    pem::blocks(bytes)
        .map(|blocks| blocks.iter().any(|b| b.label.ends_with("PRIVATE KEY")))
        .unwrap_or(false)
}

/// The private material of `key`, each part named (`d`, `seed`): the
/// integers big-endian without leading zeros, as DER and JWK hold them.
pub fn private_parts(key: &PrivateKey) -> Vec<(&'static str, Secret<Vec<u8>>)> {
    let mut out = Vec::new();
    let Ok(info) = pkcs8::PrivateKeyInfo::from_der(key.pkcs8_der().expose()) else {
        return out;
    };
    match info.algorithm.oid {
        RSA_ENCRYPTION | ID_RSASSA_PSS => {
            if let Ok(rsa) = pkcs1::RsaPrivateKey::from_der(info.private_key) {
                for (name, int) in [
                    ("private exponent", rsa.private_exponent),
                    ("prime p", rsa.prime1),
                    ("prime q", rsa.prime2),
                ] {
                    out.push((name, Secret::new(int.as_bytes().to_vec())));
                }
            }
        }
        ID_EC_PUBLIC_KEY => {
            if let Ok(ec) = sec1::EcPrivateKey::from_der(info.private_key) {
                out.push(("private scalar", Secret::new(ec.private_key.to_vec())));
            }
        }
        ID_ED_25519 => {
            if let Ok(seed) = OctetStringRef::from_der(info.private_key) {
                out.push(("seed", Secret::new(seed.as_bytes().to_vec())));
            }
        }
        _ => {}
    }
    out
}

/// What a marker says is there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marker {
    /// `-----BEGIN ... PRIVATE KEY-----` but OpenSSH's.
    Pem,
    /// OpenSSH's format: PEM, blob or its base64.
    OpenSsh,
    /// The blob magic `openssh-key-v1\0`.
    OpenSshBlob,
    /// The blob magic in base64.
    OpenSshBase64,
    /// DER PKCS#1 `RSAPrivateKey`, from its version and modulus.
    Pkcs1,
    /// DER PKCS#8 `PrivateKeyInfo`, from its version and algorithm.
    Pkcs8,
    /// DER SEC1 `ECPrivateKey`, from its version and scalar.
    Sec1,
    /// A PKCS#12 `keyBag` or `pkcs8ShroudedKeyBag`.
    P12Bag,
}

impl Marker {
    /// What a finding calls it.
    pub fn what(self) -> &'static str {
        match self {
            Marker::Pem => "a private key (PEM)",
            Marker::OpenSsh | Marker::OpenSshBlob | Marker::OpenSshBase64 => {
                "a private key (OpenSSH)"
            }
            Marker::Pkcs1 | Marker::Pkcs8 | Marker::Sec1 => "a private key (DER)",
            Marker::P12Bag => "a private key (PKCS#12 key bag)",
        }
    }
}

/// The largest DER key looked at (RSA 8192 in PKCS#8 is about 4.8 KB).
pub const MAX_DER_KEY: usize = 12 * 1024;
/// The most bytes a marker's check reads past its start, or before it.
pub const MARKER_SPAN: usize = MAX_DER_KEY + 8;
/// The most header lines of a PEM block (`Proc-Type`, `DEK-Info`) read.
const MAX_PEM_HEADERS: usize = 512;

/// The markers and what each says.
pub fn markers() -> Vec<(Vec<u8>, Marker)> {
    let mut out: Vec<(Vec<u8>, Marker)> = Vec::new();
    for label in ["", "RSA ", "EC ", "DSA ", "ENCRYPTED "] {
        out.push((
            format!("-----BEGIN {label}PRIVATE KEY-----").into_bytes(),
            Marker::Pem,
        ));
    }
    out.push((
        b"-----BEGIN OPENSSH PRIVATE KEY-----".to_vec(),
        Marker::OpenSsh,
    ));
    out.push((b"openssh-key-v1\0".to_vec(), Marker::OpenSshBlob));
    out.push((b"b3BlbnNzaC1rZXktdjE".to_vec(), Marker::OpenSshBase64));
    // Version 0, then the modulus, two or three length bytes.
    out.push((vec![0x02, 0x01, 0x00, 0x02, 0x81], Marker::Pkcs1));
    out.push((vec![0x02, 0x01, 0x00, 0x02, 0x82], Marker::Pkcs1));
    // Version 0 (or 1, RFC 5958), then the algorithm: rsaEncryption,
    // id-ecPublicKey, Ed25519.
    for version in [0u8, 1] {
        let v = [0x02, 0x01, version];
        let mut rsa = v.to_vec();
        rsa.extend([
            0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01,
        ]);
        let mut ec = v.to_vec();
        ec.extend([
            0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01,
        ]);
        let mut ed = v.to_vec();
        ed.extend([0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70]);
        out.extend([
            (rsa, Marker::Pkcs8),
            (ec, Marker::Pkcs8),
            (ed, Marker::Pkcs8),
        ]);
    }
    // Version 1, then the scalar: P-256, P-384, P-521.
    for len in [0x20u8, 0x30, 0x42] {
        out.push((vec![0x02, 0x01, 0x01, 0x04, len], Marker::Sec1));
    }
    let bag = [
        0x06, 0x0b, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x0c, 0x0a, 0x01,
    ];
    for last in [0x01u8, 0x02] {
        let mut m = bag.to_vec();
        m.push(last);
        out.push((m, Marker::P12Bag));
    }
    out
}

/// Whether the marker found at `hay[start..start + len]` is really a
/// private key.
pub fn verify(marker: Marker, hay: &[u8], start: usize, len: usize) -> bool {
    let after = hay.get(start + len..).unwrap_or_default();
    match marker {
        Marker::Pem => pem_body(after, false),
        Marker::OpenSsh => pem_body(after, true),
        Marker::OpenSshBlob => {
            // string ciphername: `none`, `aes256-ctr`.
            let Some(&[a, b, c, d]) = after.get(..4) else {
                return false;
            };
            let n = u32::from_be_bytes([a, b, c, d]) as usize;
            (1..=64).contains(&n)
                && after.get(4..4 + n).is_some_and(|name| {
                    name.iter()
                        .all(|c| c.is_ascii_alphanumeric() || b"-@.".contains(c))
                })
        }
        Marker::OpenSshBase64 => after.first().is_some_and(|&c| is_base64(c)),
        Marker::Pkcs1 => der_around(hay, start, |der| {
            pkcs1::RsaPrivateKey::from_der(der).is_ok()
        }),
        Marker::Pkcs8 => der_around(hay, start, |der| PrivateKey::from_pkcs8_der(der).is_ok()),
        Marker::Sec1 => der_around(hay, start, |der| sec1::EcPrivateKey::from_der(der).is_ok()),
        Marker::P12Bag => {
            // SafeBag ::= SEQUENCE { bagId, [0] bagValue, ... }: the OID
            // opens a SEQUENCE and the explicit [0] follows it.
            after.first() == Some(&0xa0) && sequence_header_before(hay, start).is_some()
        }
    }
}

/// The DER SEQUENCE whose content starts at `start`, checked by `parse`.
fn der_around(hay: &[u8], start: usize, parse: impl Fn(&[u8]) -> bool) -> bool {
    let Some((begin, content)) = sequence_header_before(hay, start) else {
        return false;
    };
    content <= MAX_DER_KEY && hay.get(begin..start + content).is_some_and(parse)
}

/// A SEQUENCE header ending right at `start`: where it begins and how long
/// its content is.
fn sequence_header_before(hay: &[u8], start: usize) -> Option<(usize, usize)> {
    let byte = |i: usize| hay.get(i).copied();
    // 30 LL
    if start >= 2 && byte(start - 2) == Some(0x30) {
        let l = byte(start - 1)?;
        if l < 0x80 {
            return Some((start - 2, usize::from(l)));
        }
    }
    // 30 81 LL
    if start >= 3 && byte(start - 3) == Some(0x30) && byte(start - 2) == Some(0x81) {
        return Some((start - 3, usize::from(byte(start - 1)?)));
    }
    // 30 82 LL LL
    if start >= 4 && byte(start - 4) == Some(0x30) && byte(start - 3) == Some(0x82) {
        let len = usize::from(byte(start - 2)?) << 8 | usize::from(byte(start - 1)?);
        return Some((start - 4, len));
    }
    None
}

fn is_base64(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'+' || c == b'/'
}

/// After a BEGIN line: a line break, optional RFC 1421 headers (legacy
/// encrypted keys), then base64 that starts like a key: DER's SEQUENCE
/// (`M`), or OpenSSH's blob.
fn pem_body(after: &[u8], openssh: bool) -> bool {
    let mut rest = after;
    let Some(skip) = line_break(rest) else {
        return false;
    };
    rest = rest.get(skip..).unwrap_or_default();
    let mut headers = false;
    // Header lines hold a colon before their break.
    let mut budget = MAX_PEM_HEADERS;
    loop {
        let line_end = rest
            .iter()
            .take(budget)
            .position(|&c| c == b'\n' || c == b'\r' || c == b'\\');
        let Some(end) = line_end else {
            break;
        };
        let line = rest.get(..end).unwrap_or_default();
        if end == 0 && headers {
            // The empty line after the headers.
            if let Some(skip) = line_break(rest) {
                rest = rest.get(skip..).unwrap_or_default();
            }
            break;
        }
        if !line.contains(&b':') {
            break;
        }
        headers = true;
        let Some(skip) = line_break(rest.get(end..).unwrap_or_default()) else {
            return false;
        };
        budget = budget.saturating_sub(end + skip);
        rest = rest.get(end + skip..).unwrap_or_default();
    }
    let body: Vec<u8> = rest
        .iter()
        .copied()
        .take(64)
        .take_while(|&c| is_base64(c))
        .collect();
    if body.len() < 20 {
        return false;
    }
    if openssh {
        body.starts_with(b"b3BlbnNzaC1rZXktdjE")
    } else {
        headers || body.first() == Some(&b'M')
    }
}

/// The length of the line break `s` starts with: `\n`, `\r\n`, or JSON's
/// `\n` or `\r\n` written out.
fn line_break(s: &[u8]) -> Option<usize> {
    for b in [&b"\r\n"[..], b"\n", b"\\r\\n", b"\\n"] {
        if s.starts_with(b) {
            return Some(b.len());
        }
    }
    None
}
