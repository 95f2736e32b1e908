//! The CA's signing key, in memory or in a token: that it belongs to the
//! CA certificate, its signatures, its signature algorithm.

use der::asn1::Any;
use der::asn1::ObjectIdentifier;
use der::oid::db::rfc5912::{
    ECDSA_WITH_SHA_256, ID_EC_PUBLIC_KEY, RSA_ENCRYPTION, SECP_256_R_1, SECP_384_R_1,
    SHA_256_WITH_RSA_ENCRYPTION,
};
use der::Decode;
use p256::ecdsa::signature::hazmat::PrehashSigner;
use rand_core::{OsRng, RngCore};
use sha2::{Digest, Sha256};
use x509_cert::spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};

use super::error::IssueError;
use crate::crypto::pkcs11::{self, TokenKey, TokenKeyKind};
use crate::crypto::private_key::PrivateKey;
use crate::crypto::x509::KeyAlgorithm;

/// The CA's signing key: in memory, or in a token that signs.
pub(super) enum CaKey {
    P256(p256::ecdsa::SigningKey),
    P384(p384::ecdsa::SigningKey),
    Token(Box<TokenKey>),
}

impl CaKey {
    /// Whether the key belongs to the certificate whose SubjectPublicKeyInfo
    /// is `spki_der`. A key in memory: its public point derived from the
    /// private scalar, compared. An EC key in a token: a signature of the
    /// token over a fresh challenge, verified with the certificate's key
    /// (needs no public key object in the token, and proves the private
    /// key itself). An RSA key in a token: the modulus and exponent on the
    /// token's private key object, compared.
    pub(super) fn belongs_to(&self, spki_der: &[u8]) -> Result<bool, IssueError> {
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
    pub(super) fn sign_sha256(&self, message: &[u8]) -> Result<Vec<u8>, IssueError> {
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
    pub(super) fn signature_algorithm(&self) -> AlgorithmIdentifierOwned {
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
pub(super) fn verify_ec(p256: bool, point: &[u8], digest: &[u8], signature: &[u8]) -> bool {
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
pub(super) fn ca_key(key: &PrivateKey) -> Result<CaKey, IssueError> {
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
pub(super) fn ec_point(spki_der: &[u8]) -> Vec<u8> {
    SubjectPublicKeyInfoOwned::from_der(spki_der)
        .map(|s| s.subject_public_key.raw_bytes().to_vec())
        .unwrap_or_default()
}

/// The public point of an EC P-256 or P-384 SubjectPublicKeyInfo, SEC1
/// uncompressed, whatever form the certificate holds it in; `None` for
/// other keys and points off the curve.
pub(super) fn uncompressed_point(key: &KeyAlgorithm, spki_der: &[u8]) -> Option<Vec<u8>> {
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
