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

/// The most elements one DER SET may hold in what this tool reads. `der`
/// (0.7) puts every SET OF it decodes in order with an insertion sort, so
/// a SET of n elements written in reverse order costs n²/2 comparisons: a
/// certificate with a 4 MiB name would take hours. Real sets hold one to
/// three elements (a name's attributes, a bag's attributes, their values).
pub(crate) const MAX_SET_ELEMENTS: usize = 64;

/// The most values one DER structure may hold (outside OCTET and BIT
/// STRINGs, whose DER is checked where it is decoded). Each becomes a few
/// allocations in the decoded types: a 4 MiB name of 300,000 one-attribute
/// RDNs would take about 50 MiB. A certificate holds 100 to 300, a layer
/// of a PKCS#12 bundle a few dozen.
pub(crate) const MAX_DER_VALUES: usize = 4096;

/// Refuses DER in which a SET, at any depth, holds more than
/// [`MAX_SET_ELEMENTS`] elements, or which holds more than
/// [`MAX_DER_VALUES`] values. One pass over the bytes, by tags and
/// lengths only, descending into constructed values. Anything malformed is
/// left to the strict decoder that comes next.
pub(crate) fn check_der_shape(der: &[u8]) -> Result<(), String> {
    // The open constructed values: where each ends, whether it is a SET,
    // and how many elements it has shown so far.
    let mut open: Vec<(usize, bool, usize)> = Vec::new();
    let mut values = 0;
    let mut pos = 0;
    loop {
        while open.last().is_some_and(|&(end, ..)| pos >= end) {
            open.pop();
        }
        let limit = open.last().map_or(der.len(), |&(end, ..)| end);
        if pos >= limit {
            return Ok(());
        }
        let Some((tag, content, end)) = tlv_at(der, pos, limit) else {
            return Ok(());
        };
        values += 1;
        if values > MAX_DER_VALUES {
            return Err(format!("it holds more than {MAX_DER_VALUES} DER values"));
        }
        if let Some((_, true, count)) = open.last_mut() {
            *count += 1;
            if *count > MAX_SET_ELEMENTS {
                return Err(format!("a SET holds more than {MAX_SET_ELEMENTS} elements"));
            }
        }
        if tag & 0x20 != 0 {
            open.push((end, tag == 0x31, 0));
            pos = content;
        } else {
            pos = end;
        }
    }
}

/// How many elements the SEQUENCE (or SET) `der` holds, counted by tags
/// and lengths; `None` when it is not one.
pub(crate) fn count_elements(der: &[u8]) -> Option<usize> {
    let (tag, content, end) = tlv_at(der, 0, der.len())?;
    if tag & 0x20 == 0 {
        return None;
    }
    let mut count = 0;
    let mut pos = content;
    while pos < end {
        (_, _, pos) = tlv_at(der, pos, end)?;
        count += 1;
    }
    Some(count)
}

/// The first tag byte, where the content starts and where the value ends,
/// of the DER value at `pos`, which must end by `limit`.
fn tlv_at(der: &[u8], pos: usize, limit: usize) -> Option<(u8, usize, usize)> {
    let tag = *der.get(pos)?;
    let mut at = pos + 1;
    if tag & 0x1f == 0x1f {
        // High tag number: base-128 digits, the last without bit 8.
        while *der.get(at)? & 0x80 != 0 {
            at += 1;
        }
        at += 1;
    }
    let first = *der.get(at)?;
    at += 1;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let digits = usize::from(first & 0x7f);
        if digits == 0 || digits > 4 {
            return None;
        }
        let mut len = 0usize;
        for _ in 0..digits {
            len = (len << 8) | usize::from(*der.get(at)?);
            at += 1;
        }
        len
    };
    let end = at.checked_add(len)?;
    (end <= limit).then_some((tag, at, end))
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

    /// SEQUENCE { SET { n NULLs }, [0] { SET { n NULLs } } }, with the
    /// length of a SET of n NULLs in long form.
    fn sets_of(n: usize) -> Vec<u8> {
        let set = |n: usize| {
            let mut set = vec![0x31, 0x82, ((2 * n) >> 8) as u8, (2 * n) as u8];
            for _ in 0..n {
                set.extend([0x05, 0x00]);
            }
            set
        };
        let inner = set(n);
        let mut tagged = vec![0xa0, 0x82, (inner.len() >> 8) as u8, inner.len() as u8];
        tagged.extend(&inner);
        let mut body = set(n);
        body.extend(tagged);
        let mut der = vec![0x30, 0x82, (body.len() >> 8) as u8, body.len() as u8];
        der.extend(body);
        der
    }

    #[test]
    fn sets_are_counted_at_any_depth() {
        assert_eq!(check_der_shape(&sets_of(MAX_SET_ELEMENTS)), Ok(()));
        let err = check_der_shape(&sets_of(MAX_SET_ELEMENTS + 1)).unwrap_err();
        assert_eq!(err, "a SET holds more than 64 elements");
        // Only the nested one too large.
        let mut der = sets_of(MAX_SET_ELEMENTS + 1);
        der[4..8].copy_from_slice(&[0x31, 0x82, 0x00, 0x00]);
        assert!(check_der_shape(&der).is_err());
        // Values are counted at every depth.
        let mut many = Vec::new();
        for _ in 0..MAX_DER_VALUES {
            many.extend([0x05, 0x00]);
        }
        assert_eq!(check_der_shape(&many), Ok(()));
        many.extend([0x05, 0x00]);
        assert_eq!(
            check_der_shape(&many).unwrap_err(),
            "it holds more than 4096 DER values"
        );
        assert_eq!(count_elements(&sets_of(3)), Some(2));
        assert_eq!(count_elements(&[0x05, 0x00]), None);
        // Malformed input is left to the strict decoders.
        for bad in [
            &b""[..],
            &[0x30],
            &[0x30, 0x85, 1, 1, 1, 1, 1],
            &[0x31, 0x05, 0x05],
        ] {
            assert_eq!(check_der_shape(bad), Ok(()));
        }
    }
}
