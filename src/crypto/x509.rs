//! X.509 certificates, PEM text and private keys: what `inspect` reports
//! about a certificate (subject, validity, key type), PEM certificate files
//! such as `server_ca.pem`, and the client key that goes with a client
//! certificate.
//!
//! Parsing is done by RustCrypto's `x509-cert`, `pkcs8`, `sec1` and `pkcs1`;
//! this module turns their types into the few facts the tool needs. PEM text
//! is cut into blocks here (text outside blocks is ignored, as OpenSSL does)
//! and each block is decoded by `der`'s strict RFC 7468 decoder after its
//! base64 lines are re-wrapped, so files wrapped at 76 columns or written
//! with CRLF still read.
//!
//! Whether a key belongs to a certificate is decided by comparing public
//! keys, without any curve arithmetic: RSA keys carry their modulus and
//! exponent, and an EC key carries its public point in the optional
//! `publicKey` field of `ECPrivateKey` (RFC 5915), which OpenSSL always
//! writes. An EC key without it cannot be checked here
//! ([`KeyMatch::CannotTell`]); docs/crypto.md says why.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use der::asn1::{
    AnyRef, Ia5StringRef, ObjectIdentifier, OctetStringRef, PrintableStringRef, TeletexStringRef,
    Utf8StringRef,
};
use der::{Decode, Encode, Tag, Tagged};
use x509_cert::ext::pkix::BasicConstraints;
use x509_cert::spki::{AlgorithmIdentifierRef, SubjectPublicKeyInfoRef};
use x509_cert::Certificate;

use super::{der_detail, CryptoError};
use crate::secret::Secret;

/// `rsaEncryption` (RFC 8017).
pub(crate) const OID_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
/// `id-RSASSA-PSS` (RFC 8017): an RSA key restricted to PSS signatures.
const OID_RSA_PSS: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.10");
/// `id-ecPublicKey` (RFC 5480).
const OID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
/// `secp256r1` / `prime256v1` (RFC 5480).
const OID_P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
/// `secp384r1` (RFC 5480).
const OID_P384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
/// `id-Ed25519` (RFC 8410).
const OID_ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");
/// `id-at-commonName` (RFC 5280).
const OID_COMMON_NAME: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.3");
/// `id-ce-basicConstraints` (RFC 5280).
const OID_BASIC_CONSTRAINTS: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.19");

const SECONDS_PER_DAY: i64 = 86_400;

/// The type of a public or private key, as a person reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyAlgorithm {
    EcP256,
    EcP384,
    /// An EC key on another named curve, by the curve's OID.
    Ec(String),
    Rsa {
        bits: u32,
    },
    Ed25519,
    /// Any other key type, by its algorithm OID.
    Other(String),
}

impl fmt::Display for KeyAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyAlgorithm::EcP256 => f.write_str("EC P-256"),
            KeyAlgorithm::EcP384 => f.write_str("EC P-384"),
            KeyAlgorithm::Ec(curve) => write!(f, "EC curve {curve}"),
            KeyAlgorithm::Rsa { bits } => write!(f, "RSA {bits}"),
            KeyAlgorithm::Ed25519 => f.write_str("ED25519"),
            KeyAlgorithm::Other(oid) => write!(f, "key algorithm {oid}"),
        }
    }
}

impl KeyAlgorithm {
    fn ec(curve: ObjectIdentifier) -> Self {
        match curve {
            OID_P256 => KeyAlgorithm::EcP256,
            OID_P384 => KeyAlgorithm::EcP384,
            other => KeyAlgorithm::Ec(other.to_string()),
        }
    }
}

/// What the tool needs to know about one X.509 certificate.
#[derive(Clone, PartialEq, Eq)]
pub struct CertInfo {
    /// RFC 4514 form, most specific attribute first: `CN=abc,O=x`.
    pub subject: String,
    pub issuer: String,
    /// The (last) commonName of the subject, when it is a string.
    pub common_name: Option<String>,
    /// Lowercase hex of the serial number's bytes.
    pub serial_hex: String,
    /// Unix seconds.
    pub not_before: i64,
    /// Unix seconds; the certificate is valid up to and including it.
    pub not_after: i64,
    /// basicConstraints `cA`.
    pub is_ca: bool,
    pub key: KeyAlgorithm,
    /// Lowercase hex sha256 of `der`: the usual certificate fingerprint.
    pub sha256: String,
    pub der: Vec<u8>,
    /// The DER `SubjectPublicKeyInfo`, for matching a private key.
    pub spki_der: Vec<u8>,
}

impl fmt::Debug for CertInfo {
    // The DER is public but long; the fingerprint identifies it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertInfo")
            .field("subject", &self.subject)
            .field("issuer", &self.issuer)
            .field("serial_hex", &self.serial_hex)
            .field("not_before", &format_date(self.not_before))
            .field("not_after", &format_date(self.not_after))
            .field("is_ca", &self.is_ca)
            .field("key", &self.key)
            .field("sha256", &self.sha256)
            .finish_non_exhaustive()
    }
}

impl CertInfo {
    /// Whether the certificate is its own issuer (a root CA, usually).
    pub fn is_self_issued(&self) -> bool {
        self.subject == self.issuer
    }
}

/// Parse one DER certificate. Trailing bytes are an error.
pub fn parse_der(der: &[u8]) -> Result<CertInfo, CryptoError> {
    let bad = |e: der::Error| CryptoError::BadCertificate(der_detail(&e));
    let cert = Certificate::from_der(der).map_err(bad)?;
    let tbs = &cert.tbs_certificate;

    let spki_der = tbs.subject_public_key_info.to_der().map_err(bad)?;
    let spki = SubjectPublicKeyInfoRef::from_der(&spki_der).map_err(bad)?;
    let key = spki_algorithm(&spki)?;

    let mut is_ca = false;
    for ext in tbs.extensions.iter().flatten() {
        if ext.extn_id == OID_BASIC_CONSTRAINTS {
            let bc = BasicConstraints::from_der(ext.extn_value.as_bytes()).map_err(|e| {
                CryptoError::BadCertificate(format!("basicConstraints: {}", der_detail(&e)))
            })?;
            is_ca = bc.ca;
        }
    }

    let common_name = tbs
        .subject
        .0
        .iter()
        .flat_map(|rdn| rdn.0.iter())
        .rev()
        .filter(|atv| atv.oid == OID_COMMON_NAME)
        .find_map(|atv| directory_string(AnyRef::from(&atv.value)));

    Ok(CertInfo {
        subject: tbs.subject.to_string(),
        issuer: tbs.issuer.to_string(),
        common_name,
        serial_hex: crate::digest::hex(tbs.serial_number.as_bytes()),
        not_before: unix_seconds(tbs.validity.not_before.to_unix_duration()),
        not_after: unix_seconds(tbs.validity.not_after.to_unix_duration()),
        is_ca,
        key,
        sha256: crate::digest::sha256_hex(der),
        der: der.to_vec(),
        spki_der,
    })
}

/// The string forms a DirectoryString takes in practice (RFC 5280
/// 4.1.2.4); `None` for anything else.
fn directory_string(value: AnyRef<'_>) -> Option<String> {
    let s = match value.tag() {
        Tag::Utf8String => Utf8StringRef::try_from(value).ok()?.as_str().to_owned(),
        Tag::PrintableString => PrintableStringRef::try_from(value)
            .ok()?
            .as_str()
            .to_owned(),
        Tag::Ia5String => Ia5StringRef::try_from(value).ok()?.as_str().to_owned(),
        Tag::TeletexString => TeletexStringRef::try_from(value).ok()?.as_str().to_owned(),
        _ => return None,
    };
    Some(s)
}

fn unix_seconds(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

/// The key type of a certificate's public key.
pub(crate) fn spki_algorithm(
    spki: &SubjectPublicKeyInfoRef<'_>,
) -> Result<KeyAlgorithm, CryptoError> {
    let oid = spki.algorithm.oid;
    Ok(match oid {
        OID_RSA | OID_RSA_PSS => {
            let key = spki
                .subject_public_key
                .as_bytes()
                .and_then(|bytes| pkcs1::RsaPublicKey::from_der(bytes).ok())
                .ok_or_else(|| {
                    CryptoError::BadCertificate("the RSA public key does not parse".into())
                })?;
            KeyAlgorithm::Rsa {
                bits: bit_length(key.modulus.as_bytes()),
            }
        }
        OID_EC_PUBLIC_KEY => match named_curve(&spki.algorithm) {
            Some(curve) => KeyAlgorithm::ec(curve),
            None => KeyAlgorithm::Ec("explicit parameters".into()),
        },
        OID_ED25519 => KeyAlgorithm::Ed25519,
        other => KeyAlgorithm::Other(other.to_string()),
    })
}

/// The named curve of an `id-ecPublicKey` algorithm identifier.
fn named_curve(alg: &AlgorithmIdentifierRef<'_>) -> Option<ObjectIdentifier> {
    alg.parameters?.decode_as::<ObjectIdentifier>().ok()
}

/// Bits in a big-endian unsigned integer, leading zero bytes ignored.
pub(crate) fn bit_length(be: &[u8]) -> u32 {
    let be = strip_zeros(be);
    match be.first() {
        None => 0,
        Some(first) => {
            let bytes = u32::try_from(be.len()).unwrap_or(u32::MAX / 8);
            (bytes - 1) * 8 + (8 - first.leading_zeros())
        }
    }
}

pub(crate) fn strip_zeros(be: &[u8]) -> &[u8] {
    let start = be.iter().position(|&b| b != 0).unwrap_or(be.len());
    &be[start..]
}

// ---------------------------------------------------------------------------
// PEM

/// One `-----BEGIN ...-----` to `-----END ...-----` block, not yet decoded.
pub(crate) struct PemBlock {
    /// 1-based position among the blocks of the text.
    pub index: usize,
    pub label: String,
    /// Base64 text with the line breaks and blanks removed.
    body: String,
    /// RFC 1421 headers (`Proc-Type: 4,ENCRYPTED`, `DEK-Info`): the legacy
    /// OpenSSL way of encrypting a key.
    has_headers: bool,
    encrypted: bool,
}

impl PemBlock {
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
pub(crate) fn pem_blocks(text: &[u8]) -> Result<Vec<PemBlock>, CryptoError> {
    let mut blocks = Vec::new();
    let mut current: Option<PemBlock> = None;
    for raw in text.split(|&b| b == b'\n') {
        let line = trim_ascii(raw);
        let Some(block) = current.as_mut() else {
            if let Some(label) = boundary(line, b"-----BEGIN ") {
                current = Some(PemBlock {
                    index: blocks.len() + 1,
                    label,
                    body: String::new(),
                    has_headers: false,
                    encrypted: false,
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

/// Parse PEM text holding one or more certificates, e.g. `server_ca.pem`.
/// Every block must be a `CERTIFICATE`; a private key block is refused
/// (without showing it), since a certificate file is not secret and is
/// staged as such.
pub fn parse_pem_certificates(text: &[u8]) -> Result<Vec<CertInfo>, CryptoError> {
    let blocks = pem_blocks(text)?;
    if blocks.is_empty() {
        return Err(CryptoError::NoCertificate);
    }
    let mut certs = Vec::with_capacity(blocks.len());
    for block in &blocks {
        if block.label.ends_with("PRIVATE KEY") {
            return Err(CryptoError::PrivateKeyInCertificates {
                index: block.index,
                label: block.label.clone(),
            });
        }
        if block.label != "CERTIFICATE" {
            return Err(CryptoError::NotACertificate {
                index: block.index,
                label: block.label.clone(),
            });
        }
        let der = block.decode()?;
        let cert = parse_der(&der).map_err(|e| match e {
            CryptoError::BadCertificate(detail) => {
                CryptoError::BadCertificate(format!("PEM block {}: {detail}", block.index))
            }
            other => other,
        })?;
        certs.push(cert);
    }
    Ok(certs)
}

/// Certificates as PEM: LF line ends, base64 wrapped at 64 columns, a final
/// newline. The same certificates always give the same text.
pub fn to_pem(certs: &[CertInfo]) -> String {
    certs
        .iter()
        .map(|cert| pem_encode("CERTIFICATE", &cert.der))
        .collect()
}

/// RFC 7468 encoding. Written out (rather than through `der::pem`) because
/// it cannot fail, so callers get a `String`, not a `Result`.
pub(crate) fn pem_encode(label: &str, der: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut b64 = Vec::with_capacity(der.len().div_ceil(3) * 4);
    for chunk in der.chunks(3) {
        let b = [
            chunk.first().copied().unwrap_or(0),
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let sextet = |shift: u32| ALPHABET[((n >> shift) & 63) as usize];
        b64.push(sextet(18));
        b64.push(sextet(12));
        b64.push(if chunk.len() > 1 { sextet(6) } else { b'=' });
        b64.push(if chunk.len() > 2 { sextet(0) } else { b'=' });
    }
    let mut out = String::with_capacity(b64.len() + b64.len() / 64 + 2 * label.len() + 40);
    out.push_str("-----BEGIN ");
    out.push_str(label);
    out.push_str("-----\n");
    for line in b64.chunks(64) {
        out.extend(line.iter().map(|&b| char::from(b)));
        out.push('\n');
    }
    out.push_str("-----END ");
    out.push_str(label);
    out.push_str("-----\n");
    out
}

// ---------------------------------------------------------------------------
// Validity and dates

/// Where a certificate stands at a given time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validity {
    Valid {
        days_left: i64,
    },
    /// Valid, but for fewer than the warning's number of days.
    ExpiresSoon {
        days_left: i64,
    },
    Expired {
        since_days: i64,
    },
    NotYetValid,
}

/// Classify `cert` at `now` (unix seconds). Whole days are rounded down, so
/// a certificate that expires in 10 hours has 0 days left. `warn_days`:
/// fewer days left than this is [`Validity::ExpiresSoon`] (design.md uses
/// 30).
pub fn validity(cert: &CertInfo, now: i64, warn_days: i64) -> Validity {
    if now < cert.not_before {
        Validity::NotYetValid
    } else if now > cert.not_after {
        Validity::Expired {
            since_days: now.saturating_sub(cert.not_after) / SECONDS_PER_DAY,
        }
    } else {
        let days_left = cert.not_after.saturating_sub(now) / SECONDS_PER_DAY;
        if days_left < warn_days {
            Validity::ExpiresSoon { days_left }
        } else {
            Validity::Valid { days_left }
        }
    }
}

/// The current time in unix seconds (negative before 1970, for a clock
/// that is badly wrong).
pub fn now_unix() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => unix_seconds(d),
        Err(e) => unix_seconds(e.duration()).saturating_neg(),
    }
}

/// A unix time as its UTC date, `YYYY-MM-DD`.
pub use crate::time::format_date;

// ---------------------------------------------------------------------------
// Private keys

/// An unencrypted private key, held as PKCS#8 DER whatever form it came in.
/// `Debug` shows only the algorithm.
#[derive(Clone)]
pub struct PrivateKey {
    algorithm: KeyAlgorithm,
    pkcs8: Secret<Vec<u8>>,
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrivateKey")
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

impl PrivateKey {
    pub fn algorithm(&self) -> &KeyAlgorithm {
        &self.algorithm
    }

    /// The PKCS#8 DER (`PrivateKeyInfo`).
    pub fn pkcs8_der(&self) -> &Secret<Vec<u8>> {
        &self.pkcs8
    }

    /// The key as PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`), the form
    /// aktualizr's `pkey.pem` is read in (OpenSSL reads any of them).
    pub fn to_pem(&self) -> Secret<String> {
        Secret::new(pem_encode("PRIVATE KEY", self.pkcs8.expose()))
    }

    /// A key out of a PKCS#12 key bag, or any PKCS#8 `PrivateKeyInfo`.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<PrivateKey, CryptoError> {
        let info = pkcs8::PrivateKeyInfo::from_der(der).map_err(bad_key)?;
        let algorithm = match info.algorithm.oid {
            OID_RSA | OID_RSA_PSS => rsa_algorithm(info.private_key)?,
            OID_EC_PUBLIC_KEY => {
                let ec = sec1::EcPrivateKey::from_der(info.private_key).map_err(bad_key)?;
                let curve = named_curve(&info.algorithm)
                    .or_else(|| ec.parameters.and_then(|p| p.named_curve()))
                    .ok_or_else(|| {
                        CryptoError::BadPrivateKey("the EC key does not name its curve".into())
                    })?;
                KeyAlgorithm::ec(curve)
            }
            OID_ED25519 => {
                // RFC 8410: the key is an OCTET STRING inside the OCTET STRING.
                let seed = OctetStringRef::from_der(info.private_key).map_err(bad_key)?;
                if seed.as_bytes().len() != 32 {
                    return Err(CryptoError::BadPrivateKey(
                        "an ED25519 key must be 32 bytes".into(),
                    ));
                }
                KeyAlgorithm::Ed25519
            }
            other => KeyAlgorithm::Other(other.to_string()),
        };
        Ok(PrivateKey {
            algorithm,
            pkcs8: Secret::new(der.to_vec()),
        })
    }

    /// A SEC1 `ECPrivateKey` (`-----BEGIN EC PRIVATE KEY-----`), which
    /// names its curve in its `parameters` field.
    pub fn from_sec1_der(der: &[u8]) -> Result<PrivateKey, CryptoError> {
        let ec = sec1::EcPrivateKey::from_der(der).map_err(bad_key)?;
        let curve = ec.parameters.and_then(|p| p.named_curve()).ok_or_else(|| {
            CryptoError::BadPrivateKey("the EC key does not name its curve".into())
        })?;
        // Inside PKCS#8 the curve is named by the algorithm identifier and
        // left out of ECPrivateKey, as OpenSSL writes it.
        let inner = sec1::EcPrivateKey {
            private_key: ec.private_key,
            parameters: None,
            public_key: ec.public_key,
        }
        .to_der()
        .map_err(bad_key)?;
        let algorithm = AlgorithmIdentifierRef {
            oid: OID_EC_PUBLIC_KEY,
            parameters: Some(AnyRef::from(&curve)),
        };
        let pkcs8 = pkcs8::PrivateKeyInfo::new(algorithm, &inner)
            .to_der()
            .map_err(bad_key)?;
        Ok(PrivateKey {
            algorithm: KeyAlgorithm::ec(curve),
            pkcs8: Secret::new(pkcs8),
        })
    }

    /// A PKCS#1 `RSAPrivateKey` (`-----BEGIN RSA PRIVATE KEY-----`).
    pub fn from_pkcs1_der(der: &[u8]) -> Result<PrivateKey, CryptoError> {
        let algorithm = rsa_algorithm(der)?;
        let id = AlgorithmIdentifierRef {
            oid: OID_RSA,
            parameters: Some(AnyRef::NULL),
        };
        let pkcs8 = pkcs8::PrivateKeyInfo::new(id, der)
            .to_der()
            .map_err(bad_key)?;
        Ok(PrivateKey {
            algorithm,
            pkcs8: Secret::new(pkcs8),
        })
    }

    /// The modulus and public exponent of an RSA key, leading zeros
    /// stripped; `None` for other keys.
    pub(crate) fn rsa_public(&self) -> Option<(Vec<u8>, Vec<u8>)> {
        let info = pkcs8::PrivateKeyInfo::from_der(self.pkcs8.expose()).ok()?;
        if !matches!(info.algorithm.oid, OID_RSA | OID_RSA_PSS) {
            return None;
        }
        let key = pkcs1::RsaPrivateKey::from_der(info.private_key).ok()?;
        Some((
            strip_zeros(key.modulus.as_bytes()).to_vec(),
            strip_zeros(key.public_exponent.as_bytes()).to_vec(),
        ))
    }
}

fn bad_key(e: der::Error) -> CryptoError {
    CryptoError::BadPrivateKey(der_detail(&e))
}

fn rsa_algorithm(pkcs1_der: &[u8]) -> Result<KeyAlgorithm, CryptoError> {
    let key = pkcs1::RsaPrivateKey::from_der(pkcs1_der).map_err(bad_key)?;
    Ok(KeyAlgorithm::Rsa {
        bits: bit_length(key.modulus.as_bytes()),
    })
}

/// Parse a PEM private key: PKCS#8 `PRIVATE KEY`, SEC1 `EC PRIVATE KEY` or
/// PKCS#1 `RSA PRIVATE KEY`. Other blocks (`EC PARAMETERS` that
/// `openssl ecparam -genkey` writes, certificates) are ignored; exactly one
/// key must be there, and it must not be encrypted.
pub fn parse_private_key_pem(text: &[u8]) -> Result<PrivateKey, CryptoError> {
    let blocks = pem_blocks(text)?;
    let mut keys = Vec::new();
    for block in &blocks {
        match block.label.as_str() {
            "ENCRYPTED PRIVATE KEY" => return Err(CryptoError::EncryptedKey),
            "PRIVATE KEY" | "EC PRIVATE KEY" | "RSA PRIVATE KEY" => keys.push(block),
            other if other.ends_with("PRIVATE KEY") => {
                return Err(CryptoError::BadPrivateKey(format!(
                    "PEM block {} is a `{other}`, which is not supported; give a PKCS#8 \
                     (`PRIVATE KEY`), SEC1 (`EC PRIVATE KEY`) or PKCS#1 (`RSA PRIVATE KEY`) key",
                    block.index
                )))
            }
            _ => {}
        }
    }
    let block = match keys.as_slice() {
        [] => return Err(CryptoError::NoPrivateKey),
        [one] => *one,
        _ => return Err(CryptoError::MoreThanOneKey),
    };
    let der = Secret::new(block.decode()?);
    match block.label.as_str() {
        "EC PRIVATE KEY" => PrivateKey::from_sec1_der(der.expose()),
        "RSA PRIVATE KEY" => PrivateKey::from_pkcs1_der(der.expose()),
        _ => PrivateKey::from_pkcs8_der(der.expose()),
    }
}

// ---------------------------------------------------------------------------
// Key and certificate matching

/// Whether a private key belongs to a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyMatch {
    Matches,
    DoesNotMatch,
    /// The key does not carry what the comparison needs; the reason says
    /// what.
    CannotTell(String),
}

/// Compare the public half of `key` with the certificate's public key.
pub fn key_matches_cert(key: &PrivateKey, cert: &CertInfo) -> KeyMatch {
    let Ok(spki) = SubjectPublicKeyInfoRef::from_der(&cert.spki_der) else {
        return KeyMatch::CannotTell("the certificate's public key does not parse".into());
    };
    let Ok(info) = pkcs8::PrivateKeyInfo::from_der(key.pkcs8.expose()) else {
        return KeyMatch::CannotTell("the private key does not parse".into());
    };
    let Some(cert_public) = spki.subject_public_key.as_bytes() else {
        return KeyMatch::CannotTell("the certificate's public key does not parse".into());
    };
    let is_rsa = |oid: ObjectIdentifier| matches!(oid, OID_RSA | OID_RSA_PSS);
    match (info.algorithm.oid, spki.algorithm.oid) {
        (k, c) if is_rsa(k) && is_rsa(c) => {
            let (Some((n, e)), Ok(public)) =
                (key.rsa_public(), pkcs1::RsaPublicKey::from_der(cert_public))
            else {
                return KeyMatch::CannotTell("the RSA key does not parse".into());
            };
            matched(
                n == strip_zeros(public.modulus.as_bytes())
                    && e == strip_zeros(public.public_exponent.as_bytes()),
            )
        }
        (OID_EC_PUBLIC_KEY, OID_EC_PUBLIC_KEY) => {
            if key.algorithm != cert.key {
                return KeyMatch::DoesNotMatch;
            }
            let Ok(ec) = sec1::EcPrivateKey::from_der(info.private_key) else {
                return KeyMatch::CannotTell("the EC key does not parse".into());
            };
            match ec.public_key {
                Some(point) => matched(same_ec_point(point, cert_public)),
                None => KeyMatch::CannotTell("the EC key does not carry its public key".into()),
            }
        }
        (OID_ED25519, OID_ED25519) => match info.public_key {
            Some(public) => matched(public == cert_public),
            None => KeyMatch::CannotTell(
                "the ED25519 key does not carry its public key (PKCS#8 v1)".into(),
            ),
        },
        (k, c) if k == c => {
            KeyMatch::CannotTell(format!("keys of algorithm {k} cannot be compared"))
        }
        _ => KeyMatch::DoesNotMatch,
    }
}

fn matched(same: bool) -> KeyMatch {
    if same {
        KeyMatch::Matches
    } else {
        KeyMatch::DoesNotMatch
    }
}

/// SEC1 points: equal bytes, or the same point once compressed
/// (`02`/`03` || x) and once uncompressed (`04` || x || y), where the
/// prefix's low bit is the parity of y.
fn same_ec_point(a: &[u8], b: &[u8]) -> bool {
    fn compressed_is(c: &[u8], u: &[u8]) -> bool {
        let n = c.len().saturating_sub(1);
        n > 0
            && u.len() == 1 + 2 * n
            && c.get(1..) == u.get(1..=n)
            && c.first().map(|p| p & 1) == u.last().map(|y| y & 1)
    }
    if a == b {
        return true;
    }
    match (a.first(), b.first()) {
        (Some(0x04), Some(0x02 | 0x03)) => compressed_is(b, a),
        (Some(0x02 | 0x03), Some(0x04)) => compressed_is(a, b),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::test_support::Workdir;

    /// `ca.pem` (EC P-256 CA) and `rsa.pem`/`ec.pem`, client certificates
    /// for `rsa.key` (1024 bits, for speed) and `ec.key`.
    fn material(tag: &str) -> Workdir {
        let dir = Workdir::new(tag);
        dir.key("ca.key", "ec");
        dir.ca("ca.key", "ca.pem", "/O=Test/CN=test-ca", 3650);
        for kind in ["rsa", "ec"] {
            let key = format!("{kind}.key");
            dir.key(&key, if kind == "rsa" { "rsa1024" } else { "ec" });
            let subject = format!("/CN=device-{kind}");
            let cert = format!("{kind}.pem");
            dir.client(&key, &cert, &subject, ("ca.pem", "ca.key"), 365);
        }
        dir
    }

    fn cert(dir: &Workdir, name: &str) -> CertInfo {
        let mut certs = parse_pem_certificates(&dir.read(name)).unwrap();
        assert_eq!(certs.len(), 1);
        certs.remove(0)
    }

    fn key(dir: &Workdir, name: &str) -> PrivateKey {
        parse_private_key_pem(&dir.read(name)).unwrap()
    }

    /// Text that must never show up in an output: the base64 lines of a
    /// PEM key file.
    fn assert_no_key_text(output: &str, key_pem: &[u8]) {
        for line in String::from_utf8_lossy(key_pem).lines() {
            if !line.starts_with("-----") && line.len() > 8 {
                assert!(!output.contains(line), "key text leaks: {output}");
            }
        }
    }

    #[test]
    fn certificate_fields_agree_with_openssl() {
        let dir = material("fields");
        let client = cert(&dir, "ec.pem");
        assert_eq!(client.subject, "CN=device-ec");
        assert_eq!(client.issuer, "CN=test-ca,O=Test");
        assert_eq!(client.common_name.as_deref(), Some("device-ec"));
        assert_eq!(client.serial_hex, "01f2");
        assert_eq!(client.not_after - client.not_before, 365 * 86_400);
        assert!(!client.is_ca);
        assert!(!client.is_self_issued());
        assert_eq!(client.key, KeyAlgorithm::EcP256);
        let fingerprint =
            dir.openssl(&["x509", "-in", "ec.pem", "-noout", "-fingerprint", "-sha256"]);
        let fingerprint = String::from_utf8(fingerprint).unwrap();
        let expected = fingerprint
            .trim()
            .rsplit('=')
            .next()
            .unwrap()
            .replace(':', "")
            .to_lowercase();
        assert_eq!(client.sha256, expected);
        let enddate = dir.openssl(&[
            "x509", "-in", "ec.pem", "-noout", "-enddate", "-dateopt", "iso_8601",
        ]);
        let enddate = String::from_utf8(enddate).unwrap();
        assert!(
            enddate.contains(&format_date(client.not_after)),
            "{enddate} vs {}",
            format_date(client.not_after)
        );

        let ca = cert(&dir, "ca.pem");
        assert!(ca.is_ca);
        assert!(ca.is_self_issued());
        assert_eq!(ca.serial_hex, "0a0b");
        assert_eq!(cert(&dir, "rsa.pem").key, KeyAlgorithm::Rsa { bits: 1024 });

        let der = dir.openssl(&["x509", "-in", "ec.pem", "-outform", "DER"]);
        assert_eq!(parse_der(&der).unwrap(), client);
        let mut trailing = der.clone();
        trailing.push(0);
        assert!(matches!(
            parse_der(&trailing),
            Err(CryptoError::BadCertificate(_))
        ));
        assert!(matches!(
            parse_der(&der[..der.len() - 1]),
            Err(CryptoError::BadCertificate(_))
        ));
        assert!(matches!(
            parse_der(b""),
            Err(CryptoError::BadCertificate(_))
        ));
    }

    #[test]
    fn key_algorithms_read_well() {
        for (algorithm, text) in [
            (KeyAlgorithm::EcP256, "EC P-256"),
            (KeyAlgorithm::EcP384, "EC P-384"),
            (
                KeyAlgorithm::Ec("1.3.132.0.35".into()),
                "EC curve 1.3.132.0.35",
            ),
            (KeyAlgorithm::Rsa { bits: 2048 }, "RSA 2048"),
            (KeyAlgorithm::Ed25519, "ED25519"),
            (KeyAlgorithm::Other("1.2.3".into()), "key algorithm 1.2.3"),
        ] {
            assert_eq!(algorithm.to_string(), text);
        }
    }

    #[test]
    fn pem_files_with_several_certificates_and_noise() {
        let dir = material("pem");
        let ca = dir.read("ca.pem");
        let ec = dir.read("ec.pem");
        let mut text = b"Bag Attributes\n    friendlyName: x\nsubject=CN = test-ca\n".to_vec();
        text.extend(&ca);
        text.extend(b"\n\nsome words between\n");
        text.extend(&ec);
        let certs = parse_pem_certificates(&text).unwrap();
        let names: Vec<_> = certs
            .iter()
            .map(|c| c.common_name.clone().unwrap())
            .collect();
        assert_eq!(names, ["test-ca", "device-ec"]);

        // CRLF line ends and 76-column base64 read the same.
        let der = dir.openssl(&["x509", "-in", "ca.pem", "-outform", "DER"]);
        let b64: String = to_pem(&certs[..1])
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect();
        let mut wide = String::from("-----BEGIN CERTIFICATE-----\r\n");
        for chunk in b64.as_bytes().chunks(76) {
            wide.push_str(std::str::from_utf8(chunk).unwrap());
            wide.push_str("\r\n");
        }
        wide.push_str("-----END CERTIFICATE-----\r\n");
        assert_eq!(parse_pem_certificates(wide.as_bytes()).unwrap()[0].der, der);

        // Our PEM is OpenSSL's, byte for byte, and reads back the same.
        let mut both = ca.clone();
        both.extend(&ec);
        assert_eq!(to_pem(&certs).as_bytes(), both.as_slice());
        assert_eq!(
            parse_pem_certificates(to_pem(&certs).as_bytes()).unwrap(),
            certs
        );
        assert_eq!(to_pem(&[]), "");
    }

    #[test]
    fn pem_files_that_are_not_certificates_are_refused() {
        let dir = material("pem-bad");
        let ca = dir.read("ca.pem");
        let key_pem = dir.read("ec.key");

        for garbage in [
            &b""[..],
            b"hello",
            b"\x00\xff\xfe binary",
            b"-----BEGIN CERTIFICATE",
        ] {
            assert_eq!(
                parse_pem_certificates(garbage),
                Err(CryptoError::NoCertificate)
            );
        }

        let mut with_key = ca.clone();
        with_key.extend(&key_pem);
        let err = parse_pem_certificates(&with_key).unwrap_err();
        assert_eq!(
            err,
            CryptoError::PrivateKeyInCertificates {
                index: 2,
                label: "PRIVATE KEY".into()
            }
        );
        assert!(err.to_string().contains("private key"), "{err}");
        assert_no_key_text(&format!("{err} {err:?}"), &key_pem);

        let public = dir.openssl(&["pkey", "-in", "ec.key", "-pubout"]);
        assert_eq!(
            parse_pem_certificates(&public).unwrap_err(),
            CryptoError::NotACertificate {
                index: 1,
                label: "PUBLIC KEY".into()
            }
        );

        let text = String::from_utf8(ca).unwrap();
        let unterminated = text.replace("-----END CERTIFICATE-----\n", "");
        let mismatched = text.replace("END CERTIFICATE", "END X509 CRL");
        let nested = format!("{unterminated}{text}");
        let bad_base64 = text.replacen('M', "*", 1);
        let truncated = {
            let lines: Vec<&str> = text.lines().collect();
            let mut keep = lines[..2].to_vec();
            keep.push(lines[lines.len() - 1]);
            keep.join("\n")
        };
        for bad in [unterminated, mismatched, nested, bad_base64] {
            let err = parse_pem_certificates(bad.as_bytes()).unwrap_err();
            assert!(matches!(err, CryptoError::BadPem { index: 1, .. }), "{err}");
        }
        let err = parse_pem_certificates(truncated.as_bytes()).unwrap_err();
        assert!(matches!(err, CryptoError::BadCertificate(_)), "{err}");
        assert!(err.to_string().contains("PEM block 1"), "{err}");
    }

    #[test]
    fn validity_is_classified_in_whole_days() {
        let dir = material("validity");
        let cert = cert(&dir, "ec.pem");
        let day = 86_400;
        let (start, end) = (cert.not_before, cert.not_after);
        for (now, expected) in [
            (start - 1, Validity::NotYetValid),
            (start, Validity::Valid { days_left: 365 }),
            (end - 31 * day, Validity::Valid { days_left: 31 }),
            (end - 30 * day, Validity::Valid { days_left: 30 }),
            (end - 30 * day + 1, Validity::ExpiresSoon { days_left: 29 }),
            (end - 10, Validity::ExpiresSoon { days_left: 0 }),
            (end, Validity::ExpiresSoon { days_left: 0 }),
            (end + 1, Validity::Expired { since_days: 0 }),
            (end + 3 * day, Validity::Expired { since_days: 3 }),
            (
                i64::MAX,
                Validity::Expired {
                    since_days: (i64::MAX - end) / day,
                },
            ),
            (i64::MIN, Validity::NotYetValid),
        ] {
            assert_eq!(validity(&cert, now, 30), expected, "now = {now}");
        }
        // A fresh certificate is valid now (the same second or a little later).
        let fresh = validity(&cert, now_unix(), 30);
        assert!(
            matches!(
                fresh,
                Validity::Valid {
                    days_left: 364 | 365
                }
            ),
            "{fresh:?}"
        );
    }

    #[test]
    fn dates_are_utc_calendar_days() {
        for (unix, date) in [
            (0, "1970-01-01"),
            (-1, "1969-12-31"),
            (86_399, "1970-01-01"),
            (951_782_400, "2000-02-29"),
            (1_709_251_199, "2024-02-29"),
            (1_709_251_200, "2024-03-01"),
            (4_102_444_800, "2100-01-01"),
            (253_402_300_799, "9999-12-31"),
        ] {
            assert_eq!(format_date(unix), date, "{unix}");
        }
        // No panic at the extremes.
        let _ = format_date(i64::MAX);
        let _ = format_date(i64::MIN);
        assert!(now_unix() > 1_700_000_000);
    }

    #[test]
    fn keys_in_every_pem_form_match_their_certificate() {
        let dir = material("forms");
        dir.key("ec384.key", "ec384");
        for kind in ["rsa", "ec"] {
            let pkcs8 = format!("{kind}.key");
            let traditional = format!("{kind}.trad.key");
            dir.traditional(&pkcs8, &traditional);
            let own = cert(&dir, &format!("{kind}.pem"));
            let other = cert(&dir, if kind == "rsa" { "ec.pem" } else { "rsa.pem" });
            for form in [&pkcs8, &traditional] {
                let text = dir.read(form);
                let key = parse_private_key_pem(&text).unwrap();
                assert_eq!(key.algorithm(), &own.key, "{form}");
                assert_eq!(key_matches_cert(&key, &own), KeyMatch::Matches, "{form}");
                assert_eq!(
                    key_matches_cert(&key, &other),
                    KeyMatch::DoesNotMatch,
                    "{form}"
                );
                // Whatever the form, the key comes out as OpenSSL's PKCS#8.
                assert_eq!(key.to_pem().expose().as_bytes(), dir.read(&pkcs8), "{form}");
                let debug = format!("{key:?}");
                assert!(debug.starts_with("PrivateKey { algorithm: "), "{debug}");
                assert_no_key_text(&debug, &text);
            }
        }
        let first = traditional_label(&dir.read("rsa.trad.key"));
        assert_eq!(first, "-----BEGIN RSA PRIVATE KEY-----");
        assert_eq!(
            traditional_label(&dir.read("ec.trad.key")),
            "-----BEGIN EC PRIVATE KEY-----"
        );

        // Another key of the same type, and a key on another curve.
        dir.key("rsa2.key", "rsa1024");
        assert_eq!(
            key_matches_cert(&key(&dir, "rsa2.key"), &cert(&dir, "rsa.pem")),
            KeyMatch::DoesNotMatch
        );
        assert_eq!(
            key_matches_cert(&key(&dir, "ca.key"), &cert(&dir, "ec.pem")),
            KeyMatch::DoesNotMatch
        );
        let p384 = key(&dir, "ec384.key");
        assert_eq!(p384.algorithm(), &KeyAlgorithm::EcP384);
        assert_eq!(
            key_matches_cert(&p384, &cert(&dir, "ec.pem")),
            KeyMatch::DoesNotMatch
        );
    }

    fn traditional_label(text: &[u8]) -> String {
        String::from_utf8_lossy(text)
            .lines()
            .next()
            .unwrap_or_default()
            .to_owned()
    }

    #[test]
    fn ec_keys_without_or_with_compressed_public_points() {
        let dir = material("ec-forms");
        let cert = cert(&dir, "ec.pem");
        dir.openssl(&["ec", "-in", "ec.key", "-no_public", "-out", "nopub.key"]);
        let key = parse_private_key_pem(&dir.read("nopub.key")).unwrap();
        assert_eq!(
            key_matches_cert(&key, &cert),
            KeyMatch::CannotTell("the EC key does not carry its public key".into())
        );
        dir.openssl(&[
            "ec",
            "-in",
            "ec.key",
            "-conv_form",
            "compressed",
            "-out",
            "comp.key",
        ]);
        let key = parse_private_key_pem(&dir.read("comp.key")).unwrap();
        assert_eq!(key_matches_cert(&key, &cert), KeyMatch::Matches);
        dir.openssl(&[
            "ec",
            "-in",
            "ca.key",
            "-conv_form",
            "compressed",
            "-out",
            "comp2.key",
        ]);
        let other = parse_private_key_pem(&dir.read("comp2.key")).unwrap();
        assert_eq!(key_matches_cert(&other, &cert), KeyMatch::DoesNotMatch);

        // `openssl ecparam -genkey` writes the parameters first.
        let text = dir.openssl(&["ecparam", "-name", "prime256v1", "-genkey"]);
        assert!(String::from_utf8_lossy(&text).starts_with("-----BEGIN EC PARAMETERS-----"));
        assert_eq!(
            parse_private_key_pem(&text).unwrap().algorithm(),
            &KeyAlgorithm::EcP256
        );
    }

    #[test]
    fn ed25519_keys_match_only_when_they_carry_their_public_key() {
        let dir = Workdir::new("ed25519");
        dir.key("ed.key", "ed25519");
        dir.ca("ed.key", "ed.pem", "/CN=ed", 30);
        let cert = cert(&dir, "ed.pem");
        assert_eq!(cert.key, KeyAlgorithm::Ed25519);
        let v1 = key(&dir, "ed.key");
        assert_eq!(v1.algorithm(), &KeyAlgorithm::Ed25519);
        assert!(matches!(
            key_matches_cert(&v1, &cert),
            KeyMatch::CannotTell(_)
        ));

        // PKCS#8 v2 (RFC 5958) with the public key: comparable.
        let public = dir.openssl(&["pkey", "-in", "ed.key", "-pubout", "-outform", "DER"]);
        let public = &public[public.len() - 32..];
        let v1_der = v1.pkcs8_der().expose();
        let info = pkcs8::PrivateKeyInfo::from_der(v1_der).unwrap();
        let v2 = pkcs8::PrivateKeyInfo {
            public_key: Some(public),
            ..info
        };
        let v2 = PrivateKey::from_pkcs8_der(&v2.to_der().unwrap()).unwrap();
        assert_eq!(key_matches_cert(&v2, &cert), KeyMatch::Matches);
        let other = [7u8; 32];
        let wrong = pkcs8::PrivateKeyInfo {
            public_key: Some(&other),
            ..info
        };
        let wrong = PrivateKey::from_pkcs8_der(&wrong.to_der().unwrap()).unwrap();
        assert_eq!(key_matches_cert(&wrong, &cert), KeyMatch::DoesNotMatch);
        // An ED25519 key is no RSA key.
        let rsa = Workdir::new("ed-rsa");
        rsa.key("rsa.key", "rsa1024");
        assert_eq!(
            key_matches_cert(&key(&rsa, "rsa.key"), &cert),
            KeyMatch::DoesNotMatch
        );
    }

    #[test]
    fn private_key_pem_is_refused_when_encrypted_missing_or_ambiguous() {
        let dir = material("key-bad");
        dir.openssl(&[
            "pkey", "-in", "ec.key", "-aes256", "-passout", "pass:pw", "-out", "enc.key",
        ]);
        dir.openssl(&[
            "pkey",
            "-in",
            "rsa.key",
            "-traditional",
            "-aes256",
            "-passout",
            "pass:pw",
            "-out",
            "enc-trad.key",
        ]);
        for name in ["enc.key", "enc-trad.key"] {
            let err = parse_private_key_pem(&dir.read(name)).unwrap_err();
            assert_eq!(err, CryptoError::EncryptedKey, "{name}");
            assert_eq!(
                err.to_string(),
                "the key is encrypted; give an unencrypted key"
            );
        }

        assert_eq!(
            parse_private_key_pem(&dir.read("ec.pem")).unwrap_err(),
            CryptoError::NoPrivateKey
        );
        assert_eq!(
            parse_private_key_pem(b"").unwrap_err(),
            CryptoError::NoPrivateKey
        );

        let mut two = dir.read("ec.key");
        two.extend(dir.read("rsa.key"));
        assert_eq!(
            parse_private_key_pem(&two).unwrap_err(),
            CryptoError::MoreThanOneKey
        );

        // A key with a certificate in the same file is fine.
        let mut combined = dir.read("ec.pem");
        combined.extend(dir.read("ec.key"));
        assert_eq!(
            parse_private_key_pem(&combined).unwrap().algorithm(),
            &KeyAlgorithm::EcP256
        );

        // Damaged key DER: the message has a parser position, no key text.
        let text = String::from_utf8(dir.read("rsa.key")).unwrap();
        let mut lines: Vec<&str> = text.lines().collect();
        lines.remove(3);
        let damaged = lines.join("\n");
        let err = parse_private_key_pem(damaged.as_bytes()).unwrap_err();
        assert!(
            matches!(
                err,
                CryptoError::BadPrivateKey(_) | CryptoError::BadPem { .. }
            ),
            "{err}"
        );
        assert_no_key_text(&format!("{err} {err:?}"), text.as_bytes());

        let err = parse_private_key_pem(
            b"-----BEGIN DSA PRIVATE KEY-----\nAAAA\n-----END DSA PRIVATE KEY-----\n",
        )
        .unwrap_err();
        assert!(err.to_string().contains("not supported"), "{err}");

        // Wrong inner structure behind a right label.
        let cert_der = dir.openssl(&["x509", "-in", "ec.pem", "-outform", "DER"]);
        for label in ["PRIVATE KEY", "EC PRIVATE KEY", "RSA PRIVATE KEY"] {
            let text = pem_encode(label, &cert_der);
            let err = parse_private_key_pem(text.as_bytes()).unwrap_err();
            assert!(
                matches!(err, CryptoError::BadPrivateKey(_)),
                "{label}: {err}"
            );
        }
    }

    #[test]
    fn pem_encoding_pads_like_base64() {
        for (der, body) in [
            (&b""[..], ""),
            (b"f", "Zg==\n"),
            (b"fo", "Zm8=\n"),
            (b"foo", "Zm9v\n"),
            (b"foob", "Zm9vYg==\n"),
        ] {
            assert_eq!(
                pem_encode("X", der),
                format!("-----BEGIN X-----\n{body}-----END X-----\n")
            );
        }
        let long = pem_encode("X", &[0xffu8; 49]);
        let lines: Vec<&str> = long.lines().collect();
        assert_eq!(lines[1].len(), 64);
        assert_eq!(lines.len(), 4);
        assert_eq!(lines[2], "/w==");
    }
}
