//! Why a certificate, a private key or a PEM file is refused
//! ([`CryptoError`]), and the one way a DER parser's error becomes text
//! (`der_detail`), and a lenient look into DER that a strict decoder
//! refused (`element_at`), so that a message can say what is wrong rather
//! than what the decoder choked on. Its own module so that `pem`, `x509`,
//! `private_key` and `pkcs12` share it without importing one another or
//! their parent.

use der::asn1::AnyRef;
use der::{Decode, Reader, SliceReader, Tag, Tagged};

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

/// The element at `path` (indices into nested SEQUENCEs) of `der`, read by
/// tags and lengths only: a value the strict decoders refuse (an INTEGER
/// too large for its Rust type) can still be looked at, to name it.
/// `None` when the path does not lead to an element. Each step reads at
/// most `index + 1` elements.
pub(crate) fn element_at<'a>(der: &'a [u8], path: &[usize]) -> Option<AnyRef<'a>> {
    let mut reader = SliceReader::new(der).ok()?;
    let mut current = AnyRef::decode(&mut reader).ok()?;
    for &index in path {
        if current.tag() != Tag::Sequence {
            return None;
        }
        let mut inner = SliceReader::new(current.value()).ok()?;
        let mut found = None;
        for _ in 0..=index {
            if inner.is_finished() {
                return None;
            }
            found = Some(AnyRef::decode(&mut inner).ok()?);
        }
        current = found?;
    }
    Some(current)
}

/// The value of a DER INTEGER's content bytes, when it fits an `i128`.
pub(crate) fn integer_value(element: &AnyRef<'_>) -> Option<i128> {
    if element.tag() != Tag::Integer {
        return None;
    }
    let bytes = element.value();
    let first = *bytes.first()?;
    if bytes.len() > 16 {
        return None;
    }
    let mut value: i128 = if first & 0x80 != 0 { -1 } else { 0 };
    for &b in bytes {
        value = (value << 8) | i128::from(b);
    }
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elements_are_found_by_their_path_and_integers_read_at_any_size() {
        // SEQUENCE { INTEGER 2^31, SEQUENCE { NULL, INTEGER -1 } }
        let der = [
            0x30, 0x0e, 0x02, 0x05, 0x00, 0x80, 0x00, 0x00, 0x00, 0x30, 0x05, 0x05, 0x00, 0x02,
            0x01, 0xff,
        ];
        let big = element_at(&der, &[0]).unwrap();
        assert_eq!(integer_value(&big), Some(1 << 31));
        let minus = element_at(&der, &[1, 1]).unwrap();
        assert_eq!(integer_value(&minus), Some(-1));
        assert_eq!(integer_value(&element_at(&der, &[1, 0]).unwrap()), None);
        assert!(element_at(&der, &[2]).is_none());
        assert!(element_at(&der, &[0, 0]).is_none());
        assert!(element_at(&der[..5], &[0]).is_none());
        let mut huge = vec![0x02, 0x11, 0x01];
        huge.extend([0u8; 16]);
        assert_eq!(integer_value(&element_at(&huge, &[]).unwrap()), None);
    }
}
