//! One CA certificate of the fleet CA file checked on its own (CA:TRUE,
//! keyCertSign, validity, extendedKeyUsage, critical extensions), and
//! each link of the chain.

use der::asn1::ObjectIdentifier;
use der::oid::db::rfc5280::{self, ID_KP_CLIENT_AUTH};
use der::oid::AssociatedOid;
use der::Decode;
use x509_cert::ext::pkix::{
    BasicConstraints, ExtendedKeyUsage, KeyUsage, NameConstraints, SubjectKeyIdentifier,
};
use x509_cert::Certificate;

use super::error::{Ca, IssueError};
use crate::crypto::signature;
use crate::crypto::x509::{self, CertInfo};

/// What [`check_ca`] found that the chain as a whole needs.
pub(super) struct Limits {
    pub(super) key_id: Option<Vec<u8>>,
    pub(super) path_len: Option<u32>,
    pub(super) name_constraints: Option<NameConstraints>,
}

/// The extensions a verifier knows (RFC 5280 4.2): critical or not, they
/// are no reason to refuse a CA.
pub(super) const KNOWN_EXTENSIONS: [ObjectIdentifier; 16] = [
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
pub(super) fn check_ca(
    ca: &Ca,
    info: &CertInfo,
    cert: &Certificate,
    now: i64,
) -> Result<Limits, IssueError> {
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
pub(super) fn check_signed_by(
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
