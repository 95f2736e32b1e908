//! Why a certificate, a private key or a PEM file is refused
//! ([`CryptoError`]), and the one way a DER parser's error becomes text
//! (`der_detail`). Its own module so that `pem`, `x509`, `private_key`
//! and `pkcs12` share it without importing one another or their parent.

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
