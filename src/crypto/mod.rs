//! Certificates and keys found in credentials archives: PKCS#12 bundles
//! ([`pkcs12`]), X.509 certificates, PEM files and private keys ([`x509`]),
//! and garage-sign's JSON key form ([`keys`]).
//!
//! Everything here is a pure function of bytes: no file is read, nothing is
//! printed. Private key material and passwords are kept in
//! [`crate::secret::Secret`] and never reach an error message or a `Debug`
//! output; errors say what is wrong with a key, never what is in it.
//! docs/crypto.md lists the accepted formats and algorithms, and what is
//! deliberately not checked.

pub mod garage_keys;
pub mod pkcs12;
pub mod x509;

/// Why a certificate or a private key (PEM or DER) is refused.
///
/// Messages are lowercase, name what is wrong and, where there is one, what
/// to do. They carry PEM labels and DER parser positions, never key bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    #[error("not a valid X.509 certificate: {0}")]
    BadCertificate(String),

    #[error("no PEM certificate found; expected `-----BEGIN CERTIFICATE-----` blocks")]
    NoCertificate,

    #[error(
        "PEM block {index} is a private key (`{label}`), not a certificate; \
         keep private keys out of certificate files"
    )]
    PrivateKeyInCertificates { index: usize, label: String },

    #[error("PEM block {index} is `{label}`, not a certificate")]
    NotACertificate { index: usize, label: String },

    #[error("PEM block {index} is not valid PEM: {detail}")]
    BadPem { index: usize, detail: String },

    #[error(
        "no PEM private key found; expected `PRIVATE KEY`, `EC PRIVATE KEY` \
         or `RSA PRIVATE KEY`"
    )]
    NoPrivateKey,

    #[error("more than one private key in the PEM text; give exactly one")]
    MoreThanOneKey,

    #[error("the key is encrypted; give an unencrypted key")]
    EncryptedKey,

    #[error("not a valid private key: {0}")]
    BadPrivateKey(String),
}

/// A DER parser's error, as text. `der` reports a kind and a byte
/// position, never the bytes themselves, so this is safe for key material.
pub(crate) fn der_detail(e: &der::Error) -> String {
    e.to_string()
}

#[cfg(test)]
pub(crate) mod test_support;
