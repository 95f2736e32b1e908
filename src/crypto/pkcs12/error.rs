//! Why a bundle is refused ([`P12Error`]), and the two helpers every
//! decoder of this folder uses: the DER shape check made before decoding,
//! and the message of a structure that does not decode.

use crate::crypto::error::{check_der_shape, der_detail};

use super::limits::Limit;

/// Why a bundle cannot be used. No message carries a password or a key
/// byte.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum P12Error {
    #[error("not a valid PKCS#12 file: {0}")]
    Malformed(String),

    #[error("the MAC does not verify: the password is wrong or the file is damaged")]
    WrongPassword,

    #[error(
        "an encrypted part does not decrypt with the password: the password is wrong \
         or the file is damaged"
    )]
    DecryptionFailed,

    #[error(
        "the bundle uses {0}, which is not supported; re-export it with \
         `openssl pkcs12 -export` (AES-256-CBC, SHA-256 MAC)"
    )]
    UnsupportedAlgorithm(String),

    #[error(
        "the bundle asks for {count} key-derivation iterations, more than the \
         {max} accepted; re-export it with `openssl pkcs12 -export` and its \
         default iteration count"
    )]
    TooManyIterations { count: i128, max: u32 },

    #[error(
        "the bundle asks for too much work: {0}; re-export it with `openssl pkcs12 \
         -export` and its default iteration counts, holding only the client \
         certificate, its key and the CA chain"
    )]
    OverBudget(Limit),

    #[error(
        "the password holds characters PKCS#12 cannot encode (outside the Basic \
         Multilingual Plane)"
    )]
    UnencodablePassword,

    #[error("the bundle holds no certificate; export it with the client certificate")]
    NoCertificate,

    #[error("the bundle holds no private key; export it with the client key")]
    NoPrivateKey,

    #[error("the bundle holds more than one private key; give one with only the client key")]
    MoreThanOneKey,

    #[error("no certificate in the bundle matches its private key")]
    KeyDoesNotMatch,

    #[error(
        "cannot tell which certificate belongs to the private key ({0}), and no \
         `localKeyId` attribute links them"
    )]
    CannotPairKey(String),
}

/// DER about to be decoded holds no SET too large to sort and not too
/// many values ([`check_der_shape`]): bag attributes and their values are
/// SETs.
pub(super) fn sets_fit(der: &[u8]) -> Result<(), P12Error> {
    check_der_shape(der).map_err(P12Error::Malformed)
}

pub(super) fn malformed(what: &str) -> impl Fn(der::Error) -> P12Error + '_ {
    move |e| P12Error::Malformed(format!("{what}: {}", der_detail(&e)))
}
