//! Checking a signature made with a public key: a certificate request's
//! own signature (`device-certs --csr`) and each certificate of a fleet
//! CA's chain signed by the next ([`verify`]).
//!
//! ECDSA on P-256 and P-384 (with SHA-256, SHA-384 or SHA-512) is checked
//! by RustCrypto's `p256`/`p384`, already built to sign; RSA PKCS#1 v1.5
//! (sha256/384/512WithRSAEncryption, keys of 2048 to 4096 bits) by `ring`,
//! a public-key operation only: the RustCrypto `rsa` crate stays out
//! (RUSTSEC-2023-0071, docs/dependencies.md). Anything else (RSA-PSS,
//! SHA-1, other curves) is refused by name.

use der::asn1::ObjectIdentifier;
use der::oid::db::rfc5912::{
    ECDSA_WITH_SHA_256, ECDSA_WITH_SHA_384, ECDSA_WITH_SHA_512, ID_EC_PUBLIC_KEY, RSA_ENCRYPTION,
    SECP_256_R_1, SECP_384_R_1, SHA_256_WITH_RSA_ENCRYPTION, SHA_384_WITH_RSA_ENCRYPTION,
    SHA_512_WITH_RSA_ENCRYPTION,
};
use der::Decode;
use p256::ecdsa::signature::hazmat::PrehashVerifier;
use sha2::{Digest, Sha256, Sha384, Sha512};
use x509_cert::spki::SubjectPublicKeyInfoRef;

use super::error::element_at;
use super::x509::{bit_length, named_curve};

/// The RSA key sizes accepted, in bits.
pub const RSA_BITS: std::ops::RangeInclusive<u32> = 2048..=4096;

/// Why a signature is not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The key or the algorithm is not one this tool checks.
    #[error("{0}")]
    Unsupported(String),
    /// The signature does not verify with the key.
    #[error("the signature does not verify with the public key")]
    Invalid,
}

#[derive(Clone, Copy)]
enum Hash {
    Sha256,
    Sha384,
    Sha512,
}

impl Hash {
    fn digest(self, message: &[u8]) -> Vec<u8> {
        match self {
            Hash::Sha256 => Sha256::digest(message).to_vec(),
            Hash::Sha384 => Sha384::digest(message).to_vec(),
            Hash::Sha512 => Sha512::digest(message).to_vec(),
        }
    }
}

/// Checks that the certificate `cert_der` was signed by the key of
/// `issuer_spki_der` (the issuer's DER SubjectPublicKeyInfo): its
/// tbsCertificate, as the file holds it (not re-encoded), against its
/// signature and signature algorithm.
pub fn certificate_signed_by(
    cert_der: &[u8],
    issuer_spki_der: &[u8],
) -> Result<(), SignatureError> {
    let unreadable = || SignatureError::Unsupported("the certificate does not parse".into());
    let cert = x509_cert::Certificate::from_der(cert_der).map_err(|_| unreadable())?;
    let tbs = element_at(cert_der, &[0])
        .and_then(|any| der::Encode::to_der(&any).ok())
        .ok_or_else(unreadable)?;
    let signature = cert.signature.as_bytes().ok_or_else(|| {
        SignatureError::Unsupported("the signature is not a whole number of bytes".into())
    })?;
    verify(
        issuer_spki_der,
        cert.signature_algorithm.oid,
        &tbs,
        signature,
    )
}

/// Checks that `signature` over `message` was made by the key of
/// `spki_der` (a DER SubjectPublicKeyInfo) with the signature algorithm
/// `algorithm` (its OID; ECDSA signatures DER, as X.509 and PKCS#10 carry
/// them).
pub fn verify(
    spki_der: &[u8],
    algorithm: ObjectIdentifier,
    message: &[u8],
    signature: &[u8],
) -> Result<(), SignatureError> {
    let spki = SubjectPublicKeyInfoRef::from_der(spki_der)
        .map_err(|_| SignatureError::Unsupported("its public key does not parse".into()))?;
    let key_bits = spki
        .subject_public_key
        .as_bytes()
        .ok_or_else(|| SignatureError::Unsupported("its public key does not parse".into()))?;
    // A signature of the other family cannot have been made by this key.
    let rsa_algorithms = [
        SHA_256_WITH_RSA_ENCRYPTION,
        SHA_384_WITH_RSA_ENCRYPTION,
        SHA_512_WITH_RSA_ENCRYPTION,
    ];
    let ec_algorithms = [ECDSA_WITH_SHA_256, ECDSA_WITH_SHA_384, ECDSA_WITH_SHA_512];
    match spki.algorithm.oid {
        ID_EC_PUBLIC_KEY if rsa_algorithms.contains(&algorithm) => {
            return Err(SignatureError::Invalid)
        }
        RSA_ENCRYPTION if ec_algorithms.contains(&algorithm) => {
            return Err(SignatureError::Invalid)
        }
        _ => {}
    }
    match (spki.algorithm.oid, algorithm) {
        (ID_EC_PUBLIC_KEY, alg) => {
            let hash = match alg {
                ECDSA_WITH_SHA_256 => Hash::Sha256,
                ECDSA_WITH_SHA_384 => Hash::Sha384,
                ECDSA_WITH_SHA_512 => Hash::Sha512,
                other => return Err(unsupported_algorithm(other)),
            };
            let digest = hash.digest(message);
            match named_curve(&spki.algorithm) {
                Some(SECP_256_R_1) => {
                    let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(key_bits)
                        .map_err(|_| bad_point())?;
                    let sig = p256::ecdsa::Signature::from_der(signature)
                        .map_err(|_| SignatureError::Invalid)?;
                    key.verify_prehash(&digest, &sig)
                        .map_err(|_| SignatureError::Invalid)
                }
                Some(SECP_384_R_1) => {
                    let key = p384::ecdsa::VerifyingKey::from_sec1_bytes(key_bits)
                        .map_err(|_| bad_point())?;
                    let sig = p384::ecdsa::Signature::from_der(signature)
                        .map_err(|_| SignatureError::Invalid)?;
                    key.verify_prehash(&digest, &sig)
                        .map_err(|_| SignatureError::Invalid)
                }
                Some(other) => Err(SignatureError::Unsupported(format!(
                    "its key is on the EC curve {other}; only P-256 and P-384 are supported"
                ))),
                None => Err(SignatureError::Unsupported(
                    "its EC key does not name its curve; only P-256 and P-384 are supported".into(),
                )),
            }
        }
        (RSA_ENCRYPTION, alg) => {
            let scheme: &'static ring::signature::RsaParameters = match alg {
                SHA_256_WITH_RSA_ENCRYPTION => &ring::signature::RSA_PKCS1_2048_8192_SHA256,
                SHA_384_WITH_RSA_ENCRYPTION => &ring::signature::RSA_PKCS1_2048_8192_SHA384,
                SHA_512_WITH_RSA_ENCRYPTION => &ring::signature::RSA_PKCS1_2048_8192_SHA512,
                other => return Err(unsupported_algorithm(other)),
            };
            let bits = pkcs1::RsaPublicKey::from_der(key_bits)
                .map(|k| bit_length(k.modulus.as_bytes()))
                .map_err(|_| SignatureError::Unsupported("its RSA key does not parse".into()))?;
            if !RSA_BITS.contains(&bits) {
                return Err(SignatureError::Unsupported(format!(
                    "its key is RSA {bits}; RSA keys of {} to {} bits are supported",
                    RSA_BITS.start(),
                    RSA_BITS.end()
                )));
            }
            // ring takes the RSAPublicKey DER, the SPKI's BIT STRING.
            ring::signature::UnparsedPublicKey::new(scheme, key_bits)
                .verify(message, signature)
                .map_err(|_| SignatureError::Invalid)
        }
        (other, _) => Err(SignatureError::Unsupported(format!(
            "its key is of algorithm {other}; EC P-256, P-384 and RSA 2048 to 4096 are supported"
        ))),
    }
}

fn bad_point() -> SignatureError {
    SignatureError::Unsupported("its EC public key is not a point on its curve".into())
}

fn unsupported_algorithm(oid: ObjectIdentifier) -> SignatureError {
    let name = match oid.to_string().as_str() {
        "1.2.840.113549.1.1.10" => "RSASSA-PSS".to_string(),
        "1.2.840.113549.1.1.5" => "sha1WithRSAEncryption".to_string(),
        "1.2.840.10045.4.1" => "ecdsa-with-SHA1".to_string(),
        other => format!("signature algorithm {other}"),
    };
    SignatureError::Unsupported(format!(
        "it is signed with {name}, which is not supported; use ecdsa-with-SHA256/384/512 or sha256/384/512WithRSAEncryption"
    ))
}
