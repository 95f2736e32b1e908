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
//!
//! The modules: `error.rs` `IssueError` and how messages name a CA;
//! `subject.rs` the device id and subject; `ca_check.rs` each CA of the
//! file checked, and the links of the chain; `signer.rs` the CA's signing
//! key (a file's or a token's); `fields.rs` a certificate's fields (public
//! key info, serial, times, extensions) and the key's PEM; `mod.rs` the
//! fleet CA and the certificate assembled and signed; `tests.rs`.

use std::fmt;

use der::asn1::BitString;
use der::oid::db::rfc5912::{SECP_256_R_1, SECP_384_R_1};
use der::{Decode, Encode};
use rand_core::OsRng;
use sha1::Sha1;
use sha2::Digest;
use x509_cert::ext::pkix::NameConstraints;
use x509_cert::name::Name;
use x509_cert::spki::SubjectPublicKeyInfoOwned;
use x509_cert::time::Validity;
use x509_cert::{Certificate, TbsCertificate, Version};

use super::name_constraints as names;
use super::pem;
use super::pkcs11::TokenKey;
use super::private_key::PrivateKey;
use super::x509::{self, CertInfo, KeyAlgorithm};
use crate::secret::Secret;

mod ca_check;
mod error;
mod fields;
mod signer;
mod subject;

use ca_check::{check_ca, check_signed_by};
use error::build;
use fields::{ec_spki, extensions, key_pem, random_serial, time};
use signer::{ca_key, ec_point, CaKey};
use subject::subject;

pub use error::{Ca, IssueError, MAX_CHAIN};
pub use subject::{check_device_id, SubjectExtra, SubjectPart, MAX_ID_LEN};

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

#[cfg(test)]
mod tests;
