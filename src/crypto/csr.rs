//! PKCS#10 certificate signing requests (RFC 2986) for `device-certs
//! --csr`: the device made its key and signed the request with it; the
//! station checks that signature, takes the device id from the subject's
//! CN and the public key byte for byte ([`parse`]). Nothing else of the
//! request is used: its other subject attributes and its requested
//! extensions are ignored (the certificate gets the station's, as for
//! minted keys).

use der::oid::db::rfc4519::COMMON_NAME;
use der::{Decode, Encode};
use x509_cert::request::CertReq;
use x509_cert::spki::SubjectPublicKeyInfoRef;

use super::error::{check_der_shape, der_detail, element_at};
use super::pem;
use super::signature::{self, SignatureError, RSA_BITS};
use super::x509::{directory_string, spki_algorithm, KeyAlgorithm};

/// The largest request file read: a PEM RSA 4096 request is about 1.7 KiB.
pub const MAX_CSR_BYTES: u64 = 64 * 1024;

/// A checked request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The subject's CN, as text (not yet checked as a device id).
    pub common_name: String,
    /// The DER SubjectPublicKeyInfo, as the request holds it.
    pub spki_der: Vec<u8>,
    pub key: KeyAlgorithm,
    /// Lowercase hex SHA-256 of `spki_der`: the public key's fingerprint.
    pub key_sha256: String,
}

/// Why a request is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CsrError {
    #[error("not a certificate request: {0}")]
    Malformed(String),
    #[error("its signature does not verify with its own public key; the request was altered or damaged: make it again on the device")]
    BadSignature,
    #[error("{0}")]
    Unsupported(String),
    #[error("its subject has no commonName; the device id is taken from it: make the request with `CN=<device id>`")]
    NoCommonName,
    #[error("its subject has {0} commonNames; give exactly one, the device id")]
    ManyCommonNames(usize),
}

/// Reads a request, PEM (`CERTIFICATE REQUEST`, or the older `NEW
/// CERTIFICATE REQUEST`) or DER, and checks it: its own signature, a
/// supported key (EC P-256, P-384, RSA 2048 to 4096) and one CN.
pub fn parse(bytes: &[u8]) -> Result<Request, CsrError> {
    let is_pem = bytes.windows(11).any(|w| w == b"-----BEGIN ");
    let der = if !is_pem {
        bytes.to_vec()
    } else {
        let blocks = pem::blocks(bytes).map_err(|e| CsrError::Malformed(e.to_string()))?;
        let requests: Vec<_> = blocks
            .iter()
            .filter(|b| {
                matches!(
                    b.label.as_str(),
                    "CERTIFICATE REQUEST" | "NEW CERTIFICATE REQUEST"
                )
            })
            .collect();
        match requests.as_slice() {
            [one] => one
                .decode()
                .map_err(|e| CsrError::Malformed(e.to_string()))?,
            [] => {
                return Err(CsrError::Malformed(
                    "it holds no PEM `CERTIFICATE REQUEST` block and is not DER".into(),
                ))
            }
            more => {
                return Err(CsrError::Malformed(format!(
                    "{} requests in one file; give one a file",
                    more.len()
                )))
            }
        }
    };
    check_der_shape(&der).map_err(CsrError::Malformed)?;
    let req = CertReq::from_der(&der).map_err(|e| CsrError::Malformed(der_detail(&e)))?;
    // The signed bytes as they are in the file (the first element), not
    // re-encoded from the parsed structure.
    let info = element_at(&der, &[0])
        .and_then(|any| any.to_der().ok())
        .ok_or_else(|| CsrError::Malformed("its request info does not parse".into()))?;
    let spki_der = req
        .info
        .public_key
        .to_der()
        .map_err(|e| CsrError::Malformed(der_detail(&e)))?;
    let spki = SubjectPublicKeyInfoRef::from_der(&spki_der)
        .map_err(|e| CsrError::Malformed(der_detail(&e)))?;
    let key = spki_algorithm(&spki).map_err(|e| CsrError::Unsupported(e.to_string()))?;
    match &key {
        KeyAlgorithm::EcP256 | KeyAlgorithm::EcP384 => {}
        KeyAlgorithm::Rsa { bits } if RSA_BITS.contains(bits) => {}
        other => {
            return Err(CsrError::Unsupported(format!(
                "its key is {other}; EC P-256, EC P-384 and RSA {} to {} are supported",
                RSA_BITS.start(),
                RSA_BITS.end()
            )))
        }
    }
    let signature = req
        .signature
        .as_bytes()
        .ok_or_else(|| CsrError::Malformed("its signature is not a whole number of bytes".into()))?
        .to_vec();
    signature::verify(&spki_der, req.algorithm.oid, &info, &signature).map_err(|e| match e {
        SignatureError::Invalid => CsrError::BadSignature,
        SignatureError::Unsupported(why) => CsrError::Unsupported(why),
    })?;
    let names: Vec<_> = req
        .info
        .subject
        .0
        .iter()
        .flat_map(|rdn| rdn.0.iter())
        .filter(|atv| atv.oid == COMMON_NAME)
        .collect();
    let common_name = match names.as_slice() {
        [] => return Err(CsrError::NoCommonName),
        [one] => directory_string(&one.value).ok_or_else(|| {
            CsrError::Unsupported(
                "its commonName is not a UTF8String, PrintableString or IA5String".into(),
            )
        })?,
        more => return Err(CsrError::ManyCommonNames(more.len())),
    };
    Ok(Request {
        common_name,
        key_sha256: crate::digest::sha256_hex(&spki_der),
        spki_der,
        key,
    })
}
