//! X.509 certificates: what `inspect` reports about one (subject, validity,
//! key type), PEM certificate files such as `server_ca.pem`, and where a
//! certificate stands in time ([`validity`]).
//!
//! Parsing is done by RustCrypto's `x509-cert`; this module turns its types
//! into the few facts the tool needs ([`CertInfo`]). [`KeyAlgorithm`], the
//! type of a public key as a person reads it, lives here because a
//! certificate is where a public key is found; [`super::private_key`] uses
//! it for private keys too. PEM text is cut into blocks by [`super::pem`].

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use der::asn1::{Any, AnyRef, Ia5StringRef, ObjectIdentifier};
use der::oid::db::rfc4519::COMMON_NAME;
use der::oid::db::rfc5280::{
    ID_CE_BASIC_CONSTRAINTS, ID_CE_EXT_KEY_USAGE, ID_CE_KEY_USAGE, ID_KP_CLIENT_AUTH,
};
use der::oid::db::rfc5912::{
    ID_EC_PUBLIC_KEY, ID_RSASSA_PSS, RSA_ENCRYPTION, SECP_256_R_1, SECP_384_R_1,
};
use der::oid::db::rfc8410::ID_ED_25519;
use der::{Decode, Encode, Tag, TagNumber, Tagged};
use x509_cert::ext::pkix::name::DirectoryString;
use x509_cert::ext::pkix::{BasicConstraints, ExtendedKeyUsage, KeyUsage};
use x509_cert::spki::{AlgorithmIdentifierRef, SubjectPublicKeyInfoRef};
use x509_cert::Certificate;

use super::error::{check_der_shape, der_detail, element_at, CryptoError};
use super::pem;

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
    pub(crate) fn ec(curve: ObjectIdentifier) -> Self {
        match curve {
            SECP_256_R_1 => KeyAlgorithm::EcP256,
            SECP_384_R_1 => KeyAlgorithm::EcP384,
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
    /// keyUsage `keyCertSign`: the key signs certificates.
    pub key_cert_sign: bool,
    /// extendedKeyUsage: `None` without the extension, else whether it
    /// lists `clientAuth` (TLS client authentication).
    pub client_auth: Option<bool>,
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
            .field("key_cert_sign", &self.key_cert_sign)
            .field("client_auth", &self.client_auth)
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
    check_der_shape(der).map_err(CryptoError::BadCertificate)?;
    let cert =
        Certificate::from_der(der).map_err(|e| serial_problem(der).unwrap_or_else(|| bad(e)))?;
    let tbs = &cert.tbs_certificate;

    let spki_der = tbs.subject_public_key_info.to_der().map_err(bad)?;
    let spki = SubjectPublicKeyInfoRef::from_der(&spki_der).map_err(bad)?;
    let key = spki_algorithm(&spki)?;

    let mut is_ca = false;
    let mut key_cert_sign = false;
    let mut client_auth = None;
    let bad_ext = |name: &str, e: der::Error| {
        CryptoError::BadCertificate(format!("{name}: {}", der_detail(&e)))
    };
    for ext in tbs.extensions.iter().flatten() {
        let value = ext.extn_value.as_bytes();
        if ext.extn_id == ID_CE_BASIC_CONSTRAINTS {
            let bc =
                BasicConstraints::from_der(value).map_err(|e| bad_ext("basicConstraints", e))?;
            is_ca = bc.ca;
        } else if ext.extn_id == ID_CE_KEY_USAGE {
            let ku = KeyUsage::from_der(value).map_err(|e| bad_ext("keyUsage", e))?;
            key_cert_sign = ku.key_cert_sign();
        } else if ext.extn_id == ID_CE_EXT_KEY_USAGE {
            let eku =
                ExtendedKeyUsage::from_der(value).map_err(|e| bad_ext("extendedKeyUsage", e))?;
            client_auth = Some(eku.0.contains(&ID_KP_CLIENT_AUTH));
        }
    }

    let common_name = tbs
        .subject
        .0
        .iter()
        .flat_map(|rdn| rdn.0.iter())
        .rev()
        .filter(|atv| atv.oid == COMMON_NAME)
        .find_map(|atv| directory_string(&atv.value));

    Ok(CertInfo {
        subject: tbs.subject.to_string(),
        issuer: tbs.issuer.to_string(),
        common_name,
        serial_hex: crate::digest::hex(tbs.serial_number.as_bytes()),
        not_before: unix_seconds(tbs.validity.not_before.to_unix_duration()),
        not_after: unix_seconds(tbs.validity.not_after.to_unix_duration()),
        is_ca,
        key_cert_sign,
        client_auth,
        key,
        sha256: crate::digest::sha256_hex(der),
        der: der.to_vec(),
        spki_der,
    })
}

/// RFC 5280 4.1.2.2 allows serial numbers of up to 20 bytes (x509-cert
/// reads 21, for writers that count without the sign byte); a longer one
/// is refused as a malformed INTEGER. Say so, when that is what is wrong.
fn serial_problem(der: &[u8]) -> Option<CryptoError> {
    // Certificate { tbsCertificate { [0] version OPTIONAL, serialNumber, .. } }
    let first = element_at(der, &[0, 0])?;
    let version = Tag::ContextSpecific {
        constructed: true,
        number: TagNumber::N0,
    };
    let serial = if first.tag() == version {
        element_at(der, &[0, 1])?
    } else {
        first
    };
    let len = serial.value().len();
    (serial.tag() == Tag::Integer && len > 21).then(|| {
        CryptoError::BadCertificate(format!(
            "its serial number is {len} bytes long; RFC 5280 allows at most 20"
        ))
    })
}

/// A commonName as text. UTF8String, PrintableString and TeletexString are
/// read as x509-cert's `DirectoryString` (RFC 5280 4.1.2.4). IA5String is
/// no DirectoryString, but some old CAs wrote commonName in it, so it is
/// read too. Anything else (BMPString, UniversalString) gives `None`.
pub(crate) fn directory_string(value: &Any) -> Option<String> {
    if value.tag() == Tag::Ia5String {
        return Some(
            Ia5StringRef::try_from(AnyRef::from(value))
                .ok()?
                .to_string(),
        );
    }
    // `DirectoryString` is a CHOICE, which `der` decodes from whole DER
    // only, not from an `Any`'s value.
    let der = value.to_der().ok()?;
    Some(match DirectoryString::from_der(&der).ok()? {
        DirectoryString::PrintableString(s) => s.to_string(),
        DirectoryString::TeletexString(s) => s.to_string(),
        DirectoryString::Utf8String(s) => s,
    })
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
        RSA_ENCRYPTION | ID_RSASSA_PSS => {
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
        ID_EC_PUBLIC_KEY => match named_curve(&spki.algorithm) {
            Some(curve) => KeyAlgorithm::ec(curve),
            None => KeyAlgorithm::Ec("explicit parameters".into()),
        },
        ID_ED_25519 => KeyAlgorithm::Ed25519,
        other => KeyAlgorithm::Other(other.to_string()),
    })
}

/// The named curve of an `id-ecPublicKey` algorithm identifier.
pub(crate) fn named_curve(alg: &AlgorithmIdentifierRef<'_>) -> Option<ObjectIdentifier> {
    alg.parameters?.decode_as::<ObjectIdentifier>().ok()
}

/// Bits in a big-endian unsigned integer as `der`'s `UintRef::as_bytes`
/// gives it: leading zero bytes already stripped (zero is one `00` byte).
pub(crate) fn bit_length(be: &[u8]) -> u32 {
    match be.first() {
        None => 0,
        Some(first) => {
            let bytes = u32::try_from(be.len()).unwrap_or(u32::MAX / 8);
            (bytes - 1) * 8 + (8 - first.leading_zeros())
        }
    }
}

/// Parse PEM text holding one or more certificates, e.g. `server_ca.pem`.
/// Every block must be a `CERTIFICATE`; a private key block is refused
/// (without showing it), since a certificate file is not secret and is
/// staged as such.
pub fn parse_pem_certificates(text: &[u8]) -> Result<Vec<CertInfo>, CryptoError> {
    let blocks = pem::blocks(text)?;
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
        .map(|cert| pem::encode("CERTIFICATE", &cert.der))
        .collect()
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::crypto::test_support::Workdir;

    /// `ca.pem` (EC P-256 CA) and `rsa.pem`/`ec.pem`, client certificates
    /// for `rsa.key` (1024 bits, for speed) and `ec.key`.
    pub(crate) fn material(tag: &str) -> Workdir {
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

    pub(crate) fn cert(dir: &Workdir, name: &str) -> CertInfo {
        let mut certs = parse_pem_certificates(&dir.read(name)).unwrap();
        assert_eq!(certs.len(), 1);
        certs.remove(0)
    }

    /// Text that must never show up in an output: the base64 lines of a
    /// PEM key file.
    pub(crate) fn assert_no_key_text(output: &str, key_pem: &[u8]) {
        for line in String::from_utf8_lossy(key_pem).lines() {
            if !line.starts_with("-----") && line.len() > 8 {
                assert!(!output.contains(line), "key text leaks: {output}");
            }
        }
    }

    #[test]
    fn an_overlong_serial_number_is_named_as_such() {
        let dir = Workdir::new("long-serial");
        dir.key("k.key", "ec");
        let issue = |serial: &str, out: &str| {
            dir.ca_with_serial("k.key", out, "/CN=long", 1, serial);
            parse_pem_certificates(&dir.read(out))
        };
        let err = issue(&format!("0x01{}", "ab".repeat(200)), "201.pem").unwrap_err();
        assert_eq!(
            err.to_string(),
            "not a valid X.509 certificate: PEM block 1: its serial number is 201 bytes \
             long; RFC 5280 allows at most 20"
        );
        // 20 bytes, the high bit set: DER adds a zero byte, still fine.
        let cert = issue(&format!("0x{}", "ab".repeat(20)), "20.pem").unwrap();
        assert_eq!(cert[0].serial_hex, format!("00{}", "ab".repeat(20)));
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
        assert!(!client.key_cert_sign);
        assert_eq!(client.client_auth, Some(true));
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
        assert!(ca.key_cert_sign);
        assert_eq!(ca.client_auth, None);
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
    fn common_names_in_every_string_form_read() {
        use der::asn1::{BmpString, PrintableStringRef, TeletexStringRef, Utf8StringRef};
        for (value, expected) in [
            (
                Any::encode_from(&Utf8StringRef::new("dév-1").unwrap()),
                Some("dév-1"),
            ),
            (
                Any::encode_from(&PrintableStringRef::new("dev-1").unwrap()),
                Some("dev-1"),
            ),
            (
                Any::encode_from(&TeletexStringRef::new("dev-1").unwrap()),
                Some("dev-1"),
            ),
            (
                Any::encode_from(&Ia5StringRef::new("dev-1").unwrap()),
                Some("dev-1"),
            ),
            (
                Any::encode_from(&BmpString::from_utf8("dev-1").unwrap()),
                None,
            ),
            (
                Any::encode_from(&ObjectIdentifier::new_unwrap("1.2.3")),
                None,
            ),
        ] {
            assert_eq!(directory_string(&value.unwrap()).as_deref(), expected);
        }
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
}
