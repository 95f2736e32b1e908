//! Issuing device client certificates with a fleet CA (`device-certs`):
//! the CA checked before it signs anything ([`FleetCa::new`]), then one key
//! pair and one X.509 v3 certificate per device ([`FleetCa::issue`]).
//!
//! What aktualizr-cert-provider gets wrong (domain.md section 5) is done
//! here on purpose: the CA key must belong to the CA certificate (the
//! public point is derived from the private scalar and compared, not read
//! from the key file); the CA must say CA:TRUE and keyCertSign and be in
//! its validity; serials are 128 bits from the OS's CSPRNG; the
//! certificate carries basicConstraints, keyUsage, extendedKeyUsage
//! clientAuth and both key identifiers, as `openssl verify -x509_strict
//! -purpose sslclient` wants and the OTA Connect docs recommend.
//!
//! Device keys EC P-256 or P-384; fleet CA keys from a file EC P-256 or
//! P-384, signing with ECDSA-SHA256 (a P-384 CA signs a SHA-256 digest,
//! which RFC 5758 allows). An RSA key from a file is refused: the only
//! pure-Rust RSA crate, `rsa`, has an open advisory (RUSTSEC-2023-0071) and
//! no fixed release; docs/device-certs.md. A fleet CA key in a token
//! ([`FleetCa::with_token`], [`super::pkcs11`]) may be EC or RSA: the token
//! signs, and the certificate's signature algorithm follows the key
//! (sha256WithRSAEncryption for RSA).
//!
//! Keys live in `SigningKey`s (zeroized on drop) and leave this module only
//! as a [`Secret`] PEM.

use std::fmt;
use std::time::Duration;

use der::asn1::ObjectIdentifier;
use der::asn1::{
    Any, BitString, GeneralizedTime, OctetString, PrintableStringRef, SetOfVec, UtcTime,
    Utf8StringRef,
};
use der::oid::db::rfc4519::{
    COMMON_NAME, COUNTRY_NAME, ORGANIZATIONAL_UNIT_NAME, ORGANIZATION_NAME, ST,
};
use der::oid::db::rfc5280::{self, ID_KP_CLIENT_AUTH};
use der::oid::db::rfc5912::{
    ECDSA_WITH_SHA_256, ID_EC_PUBLIC_KEY, RSA_ENCRYPTION, SECP_256_R_1, SECP_384_R_1,
    SHA_256_WITH_RSA_ENCRYPTION,
};
use der::oid::AssociatedOid;
use der::{DateTime, Decode, Encode};
use p256::ecdsa::signature::hazmat::PrehashSigner;
use rand_core::{OsRng, RngCore};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use x509_cert::attr::AttributeTypeAndValue;
use x509_cert::ext::pkix::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, KeyUsages,
    NameConstraints, SubjectKeyIdentifier,
};
use x509_cert::ext::Extension;
use x509_cert::name::{Name, RdnSequence, RelativeDistinguishedName};
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use x509_cert::time::{Time, Validity};
use x509_cert::{Certificate, TbsCertificate, Version};

use super::name_constraints as names;
use super::pem;
use super::pkcs11::{self, TokenKey, TokenKeyKind};
use super::private_key::PrivateKey;
use super::signature;
use super::x509::{self, CertInfo, KeyAlgorithm};
use crate::secret::Secret;

/// The longest device id: a CN may be 64 characters (RFC 5280 ub-common-name).
pub const MAX_ID_LEN: usize = 64;

/// The key type of the device keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    EcP256,
    EcP384,
}

impl KeyType {
    /// As `devices.json` and `devices.csv` name it.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyType::EcP256 => "ec-p256",
            KeyType::EcP384 => "ec-p384",
        }
    }
}

/// Why a fleet CA is refused or a certificate cannot be made. Never holds
/// key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IssueError {
    #[error("the CA certificate file holds {0} certificates; give the issuing CA first, then the intermediates above it (at most {MAX_CHAIN} in all), without the root")]
    ChainTooLong(usize),
    #[error("{0}")]
    BadCertificate(String),
    #[error("the CA key is {0}: RSA fleet CAs cannot sign here, because the only pure-Rust RSA implementation (the `rsa` crate) has an open security advisory (RUSTSEC-2023-0071) with no fixed release; use an EC P-256 or P-384 fleet CA")]
    RsaCa(String),
    #[error("the CA key is {0}, which cannot sign here; use an EC P-256 or P-384 fleet CA")]
    UnsupportedCaKey(String),
    #[error("the CA key does not belong to the CA certificate (`{0}`); give the key the CA certificate was made for")]
    KeyMismatch(String),
    #[error(
        "{0} is not a CA: it has no basicConstraints CA:TRUE; give the fleet CA's certificate"
    )]
    NotCa(Ca),
    #[error("{0} may not sign certificates: its keyUsage {1}; give a CA certificate with keyUsage keyCertSign")]
    NoKeyCertSign(Ca, &'static str),
    #[error("{0} expired on {1}; renew the fleet CA")]
    Expired(Ca, String),
    #[error("{0} is not valid before {1}; check the clock, or wait")]
    NotYetValid(Ca, String),
    #[error("{0} limits what it signs: its extendedKeyUsage lacks clientAuth, so every client certificate below it is invalid; use a CA whose extendedKeyUsage allows clientAuth (or has none)")]
    NoClientAuth(Ca),
    #[error("{0} carries the critical extension {1}, which this tool does not know; a verifier that does not know it either must reject every certificate below it: use a CA without it")]
    UnknownCritical(Ca, String),
    #[error("{0} has pathLenConstraint {1}, but {2} CA certificates stand below it in the chain; every device certificate would be invalid")]
    PathLength(Ca, u32, usize),
    #[error("{0} is a self-signed root; leave the root out of the CA file (the server trusts it; aktualizr sends the chain below it)")]
    RootInChain(Ca),
    #[error("{0} was not issued by certificate {1} of the file (`{2}`); give the issuing CA first, then each certificate's issuer, in order")]
    ChainOrder(Ca, usize, String),
    #[error("{0}: its signature does not verify with the key of certificate {1} of the file (`{2}`): {3}")]
    ChainSignature(Ca, usize, String, String),
    #[error("{0}: its {1}; every certificate it issued for `{2}` would be invalid: give a device subject it permits, or another CA")]
    NameConstraint(Ca, String, String),
    #[error("cannot make the certificate: {0}")]
    Build(String),
}

/// A certificate of the CA file, as messages name it: the issuing CA (the
/// first) as "the CA certificate", the others by position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ca {
    /// 1-based position in the CA file.
    pub position: usize,
    pub subject: String,
}

impl fmt::Display for Ca {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.position <= 1 {
            write!(f, "the CA certificate (`{}`)", self.subject)
        } else {
            write!(
                f,
                "certificate {} of the CA file (`{}`)",
                self.position, self.subject
            )
        }
    }
}

/// The most certificates a CA file may hold: the issuing CA and the
/// intermediates above it.
pub const MAX_CHAIN: usize = 8;

/// The CA's signing key: in memory, or in a token that signs.
enum CaKey {
    P256(p256::ecdsa::SigningKey),
    P384(p384::ecdsa::SigningKey),
    Token(Box<TokenKey>),
}

/// A fleet CA, checked: its key belongs to its certificate, it may sign
/// certificates, it is valid now, and so is every intermediate above it.
pub struct FleetCa {
    info: CertInfo,
    issuer: Name,
    /// The CA's subject key identifier: the authority key identifier of
    /// what it issues.
    key_id: Vec<u8>,
    key: CaKey,
    /// The CA file's certificates but a self-signed root, PEM, in order:
    /// what follows the device certificate in `client.pem`.
    chain_pem: String,
    /// Every CA's name constraints, with the CA they come from.
    constraints: Vec<(Ca, NameConstraints)>,
}

impl fmt::Debug for FleetCa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FleetCa")
            .field("subject", &self.info.subject)
            .field("sha256", &self.info.sha256)
            .finish_non_exhaustive()
    }
}

/// The optional subject attributes every device certificate gets besides
/// its CN.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubjectExtra {
    /// Two letters (ISO 3166), checked by [`SubjectExtra::check`].
    pub country: Option<String>,
    pub state: Option<String>,
    pub organization: Option<String>,
    pub unit: Option<String>,
}

impl SubjectExtra {
    /// The attributes' values, checked: C two ASCII letters, the others
    /// 1 to 64 characters without control characters. Returns which one is
    /// wrong and why.
    pub fn check(&self) -> Result<(), (SubjectPart, String)> {
        if let Some(c) = &self.country {
            if c.len() != 2 || !c.bytes().all(|b| b.is_ascii_alphabetic()) {
                return Err((
                    SubjectPart::Country,
                    "must be two letters (ISO 3166)".into(),
                ));
            }
        }
        for (part, value) in [
            (SubjectPart::State, &self.state),
            (SubjectPart::Organization, &self.organization),
            (SubjectPart::Unit, &self.unit),
        ] {
            let Some(value) = value else { continue };
            let chars = value.chars().count();
            if chars == 0 || chars > 64 {
                return Err((part, "must be 1 to 64 characters".into()));
            }
            if value.chars().any(char::is_control) {
                return Err((part, "must not hold control characters".into()));
            }
        }
        Ok(())
    }
}

/// One attribute of [`SubjectExtra`], for the command line's wording.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubjectPart {
    Country,
    State,
    Organization,
    Unit,
}

/// One device's certificate and key.
#[derive(Debug)]
pub struct Issued {
    /// The certificate as read back: serial, fingerprint, dates.
    pub cert: CertInfo,
    /// The certificate, PEM, followed by the CA file's certificates
    /// below the root (the issuing CA first): `client.pem`.
    pub cert_pem: String,
    /// The key, PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`); none when the
    /// device made its own (a certificate request).
    pub key_pem: Option<Secret<String>>,
}

impl FleetCa {
    /// Checks the CA file (PEM: the issuing CA, then the intermediates
    /// above it, in order, without the root) and the issuing CA's key, at
    /// `now` (Unix seconds).
    pub fn new(cert_pem: &[u8], key: &PrivateKey, now: i64) -> Result<FleetCa, IssueError> {
        let key = match key.algorithm() {
            KeyAlgorithm::EcP256 | KeyAlgorithm::EcP384 => ca_key(key)?,
            KeyAlgorithm::Rsa { .. } => return Err(IssueError::RsaCa(key.algorithm().to_string())),
            other => return Err(IssueError::UnsupportedCaKey(other.to_string())),
        };
        FleetCa::checked(cert_pem, key, now)
    }

    /// Checks the CA certificate (PEM, exactly one) and the key in a token,
    /// at `now` (Unix seconds): EC P-256, P-384 or RSA; the token signs.
    pub fn with_token(cert_pem: &[u8], key: TokenKey, now: i64) -> Result<FleetCa, IssueError> {
        FleetCa::checked(cert_pem, CaKey::Token(Box::new(key)), now)
    }

    fn checked(cert_pem: &[u8], key: CaKey, now: i64) -> Result<FleetCa, IssueError> {
        let certs = x509::parse_pem_certificates(cert_pem)
            .map_err(|e| IssueError::BadCertificate(e.to_string()))?;
        if certs.len() > MAX_CHAIN {
            return Err(IssueError::ChainTooLong(certs.len()));
        }
        let parsed = certs
            .iter()
            .map(|c| Certificate::from_der(&c.der))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| IssueError::BadCertificate(e.to_string()))?;
        let (Some(info), Some(cert)) = (certs.first(), parsed.first()) else {
            return Err(IssueError::BadCertificate(
                "the CA file holds no certificate".into(),
            ));
        };
        if !key.belongs_to(&info.spki_der)? {
            return Err(IssueError::KeyMismatch(info.subject.clone()));
        }
        let mut key_id = None;
        let mut constraints = Vec::new();
        for (i, (c, parsed)) in certs.iter().zip(&parsed).enumerate() {
            let ca = Ca {
                position: i + 1,
                subject: c.subject.clone(),
            };
            let limits = check_ca(&ca, c, parsed, now)?;
            if i == 0 {
                key_id = limits.key_id;
            }
            if let Some(path_len) = limits.path_len {
                // Below certificate i stand i CA certificates of the file.
                if (path_len as usize) < i {
                    return Err(IssueError::PathLength(ca, path_len, i));
                }
            }
            if let Some(nc) = limits.name_constraints {
                constraints.push((ca.clone(), nc));
            }
            if i > 0 && c.is_self_issued() {
                return Err(IssueError::RootInChain(ca));
            }
            if let Some(next) = certs.get(i + 1) {
                check_signed_by(&ca, c, i + 2, next)?;
            }
        }
        // Without an SKI on the CA, the key identifier its issuer would have
        // computed (RFC 5280 4.2.1.2, method 1), as OpenSSL does: over the
        // public key as the certificate holds it.
        let key_id = key_id.unwrap_or_else(|| Sha1::digest(ec_point(&info.spki_der)).to_vec());
        // What the device sends after its certificate: every CA of the file
        // but a self-signed root (a fleet CA that is its own root sends
        // nothing more; an issuing CA below a root is sent, whether the
        // file holds intermediates above it or not).
        let sent: Vec<CertInfo> = certs
            .iter()
            .filter(|c| !c.is_self_issued())
            .cloned()
            .collect();
        let chain_pem = x509::to_pem(&sent);
        Ok(FleetCa {
            issuer: cert.tbs_certificate.subject.clone(),
            info: info.clone(),
            key_id,
            key,
            chain_pem,
            constraints,
        })
    }

    /// Whether every CA's name constraints permit the subject `CN=id`
    /// (plus `extra`); which forbids it and why when not.
    pub fn check_subject(&self, id: &str, extra: &SubjectExtra) -> Result<(), IssueError> {
        let name = subject(id, extra)?;
        for (ca, nc) in &self.constraints {
            if let Err(why) = names::permits(nc, &name) {
                return Err(IssueError::NameConstraint(
                    ca.clone(),
                    why,
                    name.to_string(),
                ));
            }
        }
        Ok(())
    }

    /// The CA certificate's facts (subject, fingerprint, notAfter).
    pub fn info(&self) -> &CertInfo {
        &self.info
    }

    /// Makes a key of `key_type` and a certificate for it with subject
    /// `CN=id` (plus `extra`), valid from `not_before` to `not_after` (Unix
    /// seconds), signed by the CA. `id` must be checked already.
    pub fn issue(
        &self,
        id: &str,
        extra: &SubjectExtra,
        key_type: KeyType,
        not_before: i64,
        not_after: i64,
    ) -> Result<Issued, IssueError> {
        let (spki, key_pem) = match key_type {
            KeyType::EcP256 => {
                let key = p256::ecdsa::SigningKey::random(&mut OsRng);
                let point = key.verifying_key().to_encoded_point(false);
                let scalar = key.to_bytes();
                (
                    ec_spki(SECP_256_R_1, point.as_bytes())?,
                    key_pem(SECP_256_R_1, &scalar, point.as_bytes())?,
                )
            }
            KeyType::EcP384 => {
                let key = p384::ecdsa::SigningKey::random(&mut OsRng);
                let point = key.verifying_key().to_encoded_point(false);
                let scalar = key.to_bytes();
                (
                    ec_spki(SECP_384_R_1, point.as_bytes())?,
                    key_pem(SECP_384_R_1, &scalar, point.as_bytes())?,
                )
            }
        };
        let (cert, cert_pem) = self.certify(id, extra, spki, not_before, not_after)?;
        Ok(Issued {
            cert,
            cert_pem,
            key_pem: Some(key_pem),
        })
    }

    /// A certificate for a public key the device holds (a checked
    /// certificate request's SPKI, DER, copied byte for byte), subject
    /// `CN=id` (plus `extra`); no key is made. `id` must be checked already.
    pub fn issue_for_key(
        &self,
        id: &str,
        extra: &SubjectExtra,
        spki_der: &[u8],
        not_before: i64,
        not_after: i64,
    ) -> Result<Issued, IssueError> {
        let spki = SubjectPublicKeyInfoOwned::from_der(spki_der).map_err(build)?;
        let (cert, cert_pem) = self.certify(id, extra, spki, not_before, not_after)?;
        Ok(Issued {
            cert,
            cert_pem,
            key_pem: None,
        })
    }

    /// The certificate of `spki`, read back, and `client.pem`'s text: the
    /// certificate followed by the intermediates.
    fn certify(
        &self,
        id: &str,
        extra: &SubjectExtra,
        spki: SubjectPublicKeyInfoOwned,
        not_before: i64,
        not_after: i64,
    ) -> Result<(CertInfo, String), IssueError> {
        self.check_subject(id, extra)?;
        let public_bits = spki.subject_public_key.raw_bytes().to_vec();
        let tbs = TbsCertificate {
            version: Version::V3,
            serial_number: random_serial()?,
            signature: self.key.signature_algorithm(),
            issuer: self.issuer.clone(),
            validity: Validity {
                not_before: time(not_before)?,
                not_after: time(not_after)?,
            },
            subject: subject(id, extra)?,
            subject_public_key_info: spki,
            issuer_unique_id: None,
            subject_unique_id: None,
            extensions: Some(extensions(&public_bits, &self.key_id)?),
        };
        let tbs_der = tbs.to_der().map_err(build)?;
        let signature = self.key.sign_sha256(&tbs_der)?;
        let cert = Certificate {
            tbs_certificate: tbs,
            signature_algorithm: self.key.signature_algorithm(),
            signature: BitString::from_bytes(&signature).map_err(build)?,
        };
        let der = cert.to_der().map_err(build)?;
        let info = x509::parse_der(&der).map_err(|e| IssueError::Build(e.to_string()))?;
        let mut cert_pem = pem::encode("CERTIFICATE", &der);
        cert_pem.push_str(&self.chain_pem);
        Ok((info, cert_pem))
    }
}

/// What [`check_ca`] found that the chain as a whole needs.
struct Limits {
    key_id: Option<Vec<u8>>,
    path_len: Option<u32>,
    name_constraints: Option<NameConstraints>,
}

/// The extensions a verifier knows (RFC 5280 4.2): critical or not, they
/// are no reason to refuse a CA.
const KNOWN_EXTENSIONS: [ObjectIdentifier; 16] = [
    rfc5280::ID_CE_BASIC_CONSTRAINTS,
    rfc5280::ID_CE_KEY_USAGE,
    rfc5280::ID_CE_EXT_KEY_USAGE,
    rfc5280::ID_CE_NAME_CONSTRAINTS,
    rfc5280::ID_CE_SUBJECT_KEY_IDENTIFIER,
    rfc5280::ID_CE_AUTHORITY_KEY_IDENTIFIER,
    rfc5280::ID_CE_SUBJECT_ALT_NAME,
    rfc5280::ID_CE_ISSUER_ALT_NAME,
    rfc5280::ID_CE_CERTIFICATE_POLICIES,
    rfc5280::ID_CE_POLICY_MAPPINGS,
    rfc5280::ID_CE_POLICY_CONSTRAINTS,
    rfc5280::ID_CE_INHIBIT_ANY_POLICY,
    rfc5280::ID_CE_CRL_DISTRIBUTION_POINTS,
    rfc5280::ID_CE_FRESHEST_CRL,
    rfc5280::ID_PE_AUTHORITY_INFO_ACCESS,
    rfc5280::ID_PE_SUBJECT_INFO_ACCESS,
];

/// One CA certificate of the file checked on its own: CA:TRUE,
/// keyCertSign, valid at `now`, an extendedKeyUsage (when present) that
/// allows clientAuth, no critical extension a verifier may not know.
fn check_ca(ca: &Ca, info: &CertInfo, cert: &Certificate, now: i64) -> Result<Limits, IssueError> {
    if !info.is_ca {
        return Err(IssueError::NotCa(ca.clone()));
    }
    let bad =
        |what: &str, e: der::Error| IssueError::BadCertificate(format!("{ca}: its {what}: {e}"));
    let mut usage = None;
    let mut limits = Limits {
        key_id: None,
        path_len: None,
        name_constraints: None,
    };
    for ext in cert.tbs_certificate.extensions.iter().flatten() {
        let value = ext.extn_value.as_bytes();
        if ext.extn_id == KeyUsage::OID {
            usage = Some(KeyUsage::from_der(value).map_err(|e| bad("keyUsage", e))?);
        } else if ext.extn_id == SubjectKeyIdentifier::OID {
            let ski = SubjectKeyIdentifier::from_der(value)
                .map_err(|e| bad("subjectKeyIdentifier", e))?;
            limits.key_id = Some(ski.0.as_bytes().to_vec());
        } else if ext.extn_id == BasicConstraints::OID {
            let bc = BasicConstraints::from_der(value).map_err(|e| bad("basicConstraints", e))?;
            limits.path_len = bc.path_len_constraint.map(u32::from);
        } else if ext.extn_id == ExtendedKeyUsage::OID {
            let eku = ExtendedKeyUsage::from_der(value).map_err(|e| bad("extendedKeyUsage", e))?;
            if !eku
                .0
                .iter()
                .any(|p| *p == ID_KP_CLIENT_AUTH || *p == rfc5280::ANY_EXTENDED_KEY_USAGE)
            {
                return Err(IssueError::NoClientAuth(ca.clone()));
            }
        } else if ext.extn_id == NameConstraints::OID {
            limits.name_constraints =
                Some(NameConstraints::from_der(value).map_err(|e| bad("nameConstraints", e))?);
        } else if ext.critical && !KNOWN_EXTENSIONS.contains(&ext.extn_id) {
            return Err(IssueError::UnknownCritical(
                ca.clone(),
                ext.extn_id.to_string(),
            ));
        }
    }
    // RFC 5280 4.2.1.3: a CA certificate whose key signs certificates
    // must carry keyUsage with keyCertSign.
    match usage {
        None => {
            return Err(IssueError::NoKeyCertSign(
                ca.clone(),
                "extension is missing",
            ))
        }
        Some(ku) if !ku.key_cert_sign() => {
            return Err(IssueError::NoKeyCertSign(ca.clone(), "lacks keyCertSign"))
        }
        Some(_) => {}
    }
    if now > info.not_after {
        return Err(IssueError::Expired(
            ca.clone(),
            x509::format_date(info.not_after),
        ));
    }
    if now < info.not_before {
        return Err(IssueError::NotYetValid(
            ca.clone(),
            x509::format_date(info.not_before),
        ));
    }
    Ok(limits)
}

/// Certificate `ca` was issued by `next` (at `next_position`): its issuer
/// is `next`'s subject, and its signature verifies with `next`'s key.
fn check_signed_by(
    ca: &Ca,
    info: &CertInfo,
    next_position: usize,
    next: &CertInfo,
) -> Result<(), IssueError> {
    if info.issuer != next.subject {
        return Err(IssueError::ChainOrder(
            ca.clone(),
            next_position,
            next.subject.clone(),
        ));
    }
    let fail = |why: String| {
        IssueError::ChainSignature(ca.clone(), next_position, next.subject.clone(), why)
    };
    signature::certificate_signed_by(&info.der, &next.spki_der).map_err(|e| fail(e.to_string()))
}

impl CaKey {
    /// Whether the key belongs to the certificate whose SubjectPublicKeyInfo
    /// is `spki_der`. A key in memory: its public point derived from the
    /// private scalar, compared. An EC key in a token: a signature of the
    /// token over a fresh challenge, verified with the certificate's key
    /// (needs no public key object in the token, and proves the private
    /// key itself). An RSA key in a token: the modulus and exponent on the
    /// token's private key object, compared.
    fn belongs_to(&self, spki_der: &[u8]) -> Result<bool, IssueError> {
        let Ok(spki) = SubjectPublicKeyInfoOwned::from_der(spki_der) else {
            return Ok(false);
        };
        let bits = spki.subject_public_key.raw_bytes();
        let curve = spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.decode_as::<ObjectIdentifier>().ok());
        let ec = spki.algorithm.oid == ID_EC_PUBLIC_KEY;
        Ok(match self {
            // The certificate's point may be compressed: compared
            // uncompressed.
            CaKey::P256(k) => {
                ec && curve == Some(SECP_256_R_1)
                    && uncompressed_point(&KeyAlgorithm::EcP256, spki_der).as_deref()
                        == Some(k.verifying_key().to_encoded_point(false).as_bytes())
            }
            CaKey::P384(k) => {
                ec && curve == Some(SECP_384_R_1)
                    && uncompressed_point(&KeyAlgorithm::EcP384, spki_der).as_deref()
                        == Some(k.verifying_key().to_encoded_point(false).as_bytes())
            }
            CaKey::Token(token) => match token.kind() {
                TokenKeyKind::EcP256 | TokenKeyKind::EcP384 => {
                    let p256 = *token.kind() == TokenKeyKind::EcP256;
                    let wanted = if p256 { SECP_256_R_1 } else { SECP_384_R_1 };
                    if !ec || curve != Some(wanted) {
                        return Ok(false);
                    }
                    let mut challenge = [0u8; 32];
                    OsRng.try_fill_bytes(&mut challenge).map_err(|e| {
                        IssueError::Build(format!("the OS's random number generator failed: {e}"))
                    })?;
                    let signature = self.sign_sha256(&challenge)?;
                    let digest = Sha256::digest(challenge);
                    verify_ec(p256, bits, &digest, &signature)
                }
                TokenKeyKind::Rsa { modulus, exponent } => {
                    spki.algorithm.oid == RSA_ENCRYPTION
                        && pkcs1::RsaPublicKey::from_der(bits).is_ok_and(|cert_key| {
                            pkcs11::strip_zeros(cert_key.modulus.as_bytes()) == *modulus
                                && pkcs11::strip_zeros(cert_key.public_exponent.as_bytes())
                                    == *exponent
                        })
                }
            },
        })
    }

    /// A signature over `message` with SHA-256: ECDSA, DER, or for an RSA
    /// key in a token PKCS#1 v1.5.
    fn sign_sha256(&self, message: &[u8]) -> Result<Vec<u8>, IssueError> {
        let sign_error = |_| IssueError::Build("the CA key could not sign".into());
        Ok(match self {
            CaKey::P256(k) => {
                let digest = Sha256::digest(message);
                let sig: p256::ecdsa::Signature = k.sign_prehash(&digest).map_err(sign_error)?;
                sig.to_der().as_bytes().to_vec()
            }
            CaKey::P384(k) => {
                let digest = Sha256::digest(message);
                let sig: p384::ecdsa::Signature = k.sign_prehash(&digest).map_err(sign_error)?;
                sig.to_der().as_bytes().to_vec()
            }
            CaKey::Token(token) => token
                .sign_sha256(message)
                .map_err(|e| IssueError::Build(e.to_string()))?,
        })
    }

    /// The signature algorithm of what the key signs: ECDSA with SHA-256
    /// (RFC 5758 3.2: no parameters), or sha256WithRSAEncryption (RFC 4055
    /// 5: parameters NULL).
    fn signature_algorithm(&self) -> AlgorithmIdentifierOwned {
        match self {
            CaKey::Token(token) if matches!(token.kind(), TokenKeyKind::Rsa { .. }) => {
                AlgorithmIdentifierOwned {
                    oid: SHA_256_WITH_RSA_ENCRYPTION,
                    parameters: Some(Any::null()),
                }
            }
            _ => AlgorithmIdentifierOwned {
                oid: ECDSA_WITH_SHA_256,
                parameters: None,
            },
        }
    }
}

/// Whether `signature` (DER) is an ECDSA signature of `digest` by the
/// P-256 (or else P-384) public key `point`.
fn verify_ec(p256: bool, point: &[u8], digest: &[u8], signature: &[u8]) -> bool {
    use p256::ecdsa::signature::hazmat::PrehashVerifier;
    if p256 {
        let (Ok(key), Ok(sig)) = (
            p256::ecdsa::VerifyingKey::from_sec1_bytes(point),
            p256::ecdsa::Signature::from_der(signature),
        ) else {
            return false;
        };
        key.verify_prehash(digest, &sig).is_ok()
    } else {
        let (Ok(key), Ok(sig)) = (
            p384::ecdsa::VerifyingKey::from_sec1_bytes(point),
            p384::ecdsa::Signature::from_der(signature),
        ) else {
            return false;
        };
        key.verify_prehash(digest, &sig).is_ok()
    }
}

/// The signing key of an EC P-256 or P-384 private key.
fn ca_key(key: &PrivateKey) -> Result<CaKey, IssueError> {
    let bad = |what: &str| IssueError::UnsupportedCaKey(format!("an EC key whose {what}"));
    let info = pkcs8::PrivateKeyInfo::from_der(key.pkcs8_der().expose())
        .map_err(|_| bad("PKCS#8 form does not parse"))?;
    let ec = sec1::EcPrivateKey::from_der(info.private_key)
        .map_err(|_| bad("SEC1 form does not parse"))?;
    Ok(match key.algorithm() {
        KeyAlgorithm::EcP256 => CaKey::P256(
            p256::ecdsa::SigningKey::from_slice(ec.private_key)
                .map_err(|_| bad("scalar is out of range"))?,
        ),
        _ => CaKey::P384(
            p384::ecdsa::SigningKey::from_slice(ec.private_key)
                .map_err(|_| bad("scalar is out of range"))?,
        ),
    })
}

/// The raw public key bits of a DER SubjectPublicKeyInfo (for an EC key,
/// the SEC1 point); empty when it does not parse.
fn ec_point(spki_der: &[u8]) -> Vec<u8> {
    SubjectPublicKeyInfoOwned::from_der(spki_der)
        .map(|s| s.subject_public_key.raw_bytes().to_vec())
        .unwrap_or_default()
}

/// The public point of an EC P-256 or P-384 SubjectPublicKeyInfo, SEC1
/// uncompressed, whatever form the certificate holds it in; `None` for
/// other keys and points off the curve.
fn uncompressed_point(key: &KeyAlgorithm, spki_der: &[u8]) -> Option<Vec<u8>> {
    let point = ec_point(spki_der);
    match key {
        KeyAlgorithm::EcP256 => p256::ecdsa::VerifyingKey::from_sec1_bytes(&point)
            .ok()
            .map(|k| k.to_encoded_point(false).as_bytes().to_vec()),
        KeyAlgorithm::EcP384 => p384::ecdsa::VerifyingKey::from_sec1_bytes(&point)
            .ok()
            .map(|k| k.to_encoded_point(false).as_bytes().to_vec()),
        _ => None,
    }
}

fn build(e: der::Error) -> IssueError {
    IssueError::Build(e.to_string())
}

fn ec_spki(curve: ObjectIdentifier, point: &[u8]) -> Result<SubjectPublicKeyInfoOwned, IssueError> {
    Ok(SubjectPublicKeyInfoOwned {
        algorithm: AlgorithmIdentifierOwned {
            oid: ID_EC_PUBLIC_KEY,
            parameters: Some(Any::from(&curve)),
        },
        subject_public_key: BitString::from_bytes(point).map_err(build)?,
    })
}

/// The key as PKCS#8 PEM, with its public point (RFC 5915), as OpenSSL
/// writes it.
fn key_pem(
    curve: ObjectIdentifier,
    scalar: &[u8],
    point: &[u8],
) -> Result<Secret<String>, IssueError> {
    let sec1 = Secret::new(
        sec1::EcPrivateKey {
            private_key: scalar,
            parameters: Some(sec1::EcParameters::NamedCurve(curve)),
            public_key: Some(point),
        }
        .to_der()
        .map_err(build)?,
    );
    let key =
        PrivateKey::from_sec1_der(sec1.expose()).map_err(|e| IssueError::Build(e.to_string()))?;
    Ok(key.to_pem())
}

/// 128 bits from the OS's CSPRNG, as a positive INTEGER (DER adds a zero
/// byte when the top bit is set; RFC 5280 allows up to 20 octets).
fn random_serial() -> Result<SerialNumber, IssueError> {
    let mut bytes = [0u8; 16];
    OsRng
        .try_fill_bytes(&mut bytes)
        .map_err(|e| IssueError::Build(format!("the OS's random number generator failed: {e}")))?;
    SerialNumber::new(&bytes).map_err(build)
}

/// RFC 5280 4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050.
fn time(unix: i64) -> Result<Time, IssueError> {
    let secs =
        u64::try_from(unix).map_err(|_| IssueError::Build("a validity date before 1970".into()))?;
    let dt = DateTime::from_unix_duration(Duration::from_secs(secs)).map_err(build)?;
    Ok(if dt.year() < 2050 {
        Time::UtcTime(UtcTime::from_date_time(dt).map_err(build)?)
    } else {
        Time::GeneralTime(GeneralizedTime::from_date_time(dt))
    })
}

/// `C, ST, O, OU, CN`, most general first as in DER; C as a
/// PrintableString (RFC 5280 appendix A), the others as UTF8String.
fn subject(id: &str, extra: &SubjectExtra) -> Result<Name, IssueError> {
    let mut rdns = Vec::new();
    let mut push = |oid, value: Any| -> Result<(), IssueError> {
        let set = SetOfVec::try_from(vec![AttributeTypeAndValue { oid, value }]).map_err(build)?;
        rdns.push(RelativeDistinguishedName(set));
        Ok(())
    };
    if let Some(c) = &extra.country {
        let c = c.to_ascii_uppercase();
        push(
            COUNTRY_NAME,
            Any::from(PrintableStringRef::new(&c).map_err(build)?),
        )?;
    }
    for (oid, value) in [
        (ST, &extra.state),
        (ORGANIZATION_NAME, &extra.organization),
        (ORGANIZATIONAL_UNIT_NAME, &extra.unit),
        (COMMON_NAME, &Some(id.to_string())),
    ] {
        if let Some(value) = value {
            push(oid, Any::from(Utf8StringRef::new(value).map_err(build)?))?;
        }
    }
    Ok(RdnSequence(rdns))
}

/// basicConstraints CA:FALSE (critical), keyUsage digitalSignature
/// (critical), extendedKeyUsage clientAuth (critical, as the OTA Connect
/// docs recommend), subject and authority key identifiers.
fn extensions(public_bits: &[u8], ca_key_id: &[u8]) -> Result<Vec<Extension>, IssueError> {
    fn ext<T: Encode + AssociatedOid>(value: &T, critical: bool) -> Result<Extension, IssueError> {
        Ok(Extension {
            extn_id: T::OID,
            critical,
            extn_value: OctetString::new(value.to_der().map_err(build)?).map_err(build)?,
        })
    }
    let ski = OctetString::new(Sha1::digest(public_bits).to_vec()).map_err(build)?;
    let aki = AuthorityKeyIdentifier {
        key_identifier: Some(OctetString::new(ca_key_id.to_vec()).map_err(build)?),
        authority_cert_issuer: None,
        authority_cert_serial_number: None,
    };
    Ok(vec![
        ext(
            &BasicConstraints {
                ca: false,
                path_len_constraint: None,
            },
            true,
        )?,
        ext(&KeyUsage(KeyUsages::DigitalSignature.into()), true)?,
        ext(&ExtendedKeyUsage(vec![ID_KP_CLIENT_AUTH]), true)?,
        ext(&SubjectKeyIdentifier(ski), false)?,
        ext(&aki, false)?,
    ])
}

/// Whether `id` may be a device id: 1 to 64 characters of `[A-Za-z0-9._-]`,
/// not starting with `.` (it names a folder and a CN). The reason when not.
pub fn check_device_id(id: &str) -> Result<(), &'static str> {
    if id.is_empty() {
        return Err("it is empty");
    }
    if id.len() > MAX_ID_LEN {
        return Err("it is longer than 64 characters");
    }
    if id.starts_with('.') {
        return Err("it starts with `.`");
    }
    if !id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return Err("it holds a character outside [A-Za-z0-9._-]");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_ids() {
        for ok in ["a", "dev-0001", "A.b_c-9", &"x".repeat(64)] {
            assert_eq!(check_device_id(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            ".hidden",
            "..",
            "a/b",
            "a b",
            "é",
            "a\n",
            &"x".repeat(65),
        ] {
            assert!(check_device_id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn subject_extra_checks() {
        let ok = SubjectExtra {
            country: Some("de".into()),
            organization: Some("Fleet Ümlaut".into()),
            ..Default::default()
        };
        assert_eq!(ok.check(), Ok(()));
        let bad_c = SubjectExtra {
            country: Some("DEU".into()),
            ..Default::default()
        };
        assert_eq!(bad_c.check().map_err(|e| e.0), Err(SubjectPart::Country));
        let bad_o = SubjectExtra {
            organization: Some("a\u{7}".into()),
            ..Default::default()
        };
        assert_eq!(
            bad_o.check().map_err(|e| e.0),
            Err(SubjectPart::Organization)
        );
    }

    #[test]
    fn times_switch_to_generalized_in_2050() {
        assert!(matches!(time(0).unwrap(), Time::UtcTime(_)));
        // 2049-12-31T23:59:59Z and 2050-01-01T00:00:00Z.
        assert!(matches!(time(2_524_607_999).unwrap(), Time::UtcTime(_)));
        assert!(matches!(time(2_524_608_000).unwrap(), Time::GeneralTime(_)));
    }

    #[test]
    fn serials_are_positive_and_128_bits() {
        for _ in 0..64 {
            let serial = random_serial().unwrap();
            let bytes = serial.as_bytes();
            assert!(bytes.len() <= 17);
            // Positive: a set top bit is preceded by a zero byte.
            assert!(bytes[0] & 0x80 == 0, "{bytes:02x?}");
        }
    }
}
