//! The fields of a device certificate and key: the public key info, the
//! key's PEM, the serial, the times, the extensions.

use std::time::Duration;

use der::asn1::ObjectIdentifier;
use der::asn1::{Any, BitString, GeneralizedTime, OctetString, UtcTime};
use der::oid::db::rfc5280::ID_KP_CLIENT_AUTH;
use der::oid::db::rfc5912::ID_EC_PUBLIC_KEY;
use der::oid::AssociatedOid;
use der::{DateTime, Encode};
use rand_core::{OsRng, RngCore};
use sha1::Sha1;
use sha2::Digest;
use x509_cert::ext::pkix::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, KeyUsages,
    SubjectKeyIdentifier,
};
use x509_cert::ext::Extension;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use x509_cert::time::Time;

use super::error::{build, IssueError};
use crate::crypto::private_key::PrivateKey;
use crate::secret::Secret;

pub(super) fn ec_spki(
    curve: ObjectIdentifier,
    point: &[u8],
) -> Result<SubjectPublicKeyInfoOwned, IssueError> {
    Ok(SubjectPublicKeyInfoOwned {
        algorithm: AlgorithmIdentifierOwned {
            oid: ID_EC_PUBLIC_KEY,
            parameters: Some(Any::from(&curve)),
        },
        subject_public_key: BitString::from_bytes(point).map_err(build)?,
    })
}

/// The key as PKCS#8 PEM, with its public point (RFC 5915), as OpenSSL
/// writes it.
pub(super) fn key_pem(
    curve: ObjectIdentifier,
    scalar: &[u8],
    point: &[u8],
) -> Result<Secret<String>, IssueError> {
    let sec1 = Secret::new(
        sec1::EcPrivateKey {
            private_key: scalar,
            parameters: Some(sec1::EcParameters::NamedCurve(curve)),
            public_key: Some(point),
        }
        .to_der()
        .map_err(build)?,
    );
    let key =
        PrivateKey::from_sec1_der(sec1.expose()).map_err(|e| IssueError::Build(e.to_string()))?;
    Ok(key.to_pem())
}

/// 128 bits from the OS's CSPRNG, as a positive INTEGER (DER adds a zero
/// byte when the top bit is set; RFC 5280 allows up to 20 octets).
pub(super) fn random_serial() -> Result<SerialNumber, IssueError> {
    let mut bytes = [0u8; 16];
    OsRng
        .try_fill_bytes(&mut bytes)
        .map_err(|e| IssueError::Build(format!("the OS's random number generator failed: {e}")))?;
    SerialNumber::new(&bytes).map_err(build)
}

/// RFC 5280 4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050.
pub(super) fn time(unix: i64) -> Result<Time, IssueError> {
    let secs =
        u64::try_from(unix).map_err(|_| IssueError::Build("a validity date before 1970".into()))?;
    let dt = DateTime::from_unix_duration(Duration::from_secs(secs)).map_err(build)?;
    Ok(if dt.year() < 2050 {
        Time::UtcTime(UtcTime::from_date_time(dt).map_err(build)?)
    } else {
        Time::GeneralTime(GeneralizedTime::from_date_time(dt))
    })
}

/// basicConstraints CA:FALSE (critical), keyUsage digitalSignature
/// (critical), extendedKeyUsage clientAuth (critical, as the OTA Connect
/// docs recommend), subject and authority key identifiers.
pub(super) fn extensions(
    public_bits: &[u8],
    ca_key_id: &[u8],
) -> Result<Vec<Extension>, IssueError> {
    fn ext<T: Encode + AssociatedOid>(value: &T, critical: bool) -> Result<Extension, IssueError> {
        Ok(Extension {
            extn_id: T::OID,
            critical,
            extn_value: OctetString::new(value.to_der().map_err(build)?).map_err(build)?,
        })
    }
    let ski = OctetString::new(Sha1::digest(public_bits).to_vec()).map_err(build)?;
    let aki = AuthorityKeyIdentifier {
        key_identifier: Some(OctetString::new(ca_key_id.to_vec()).map_err(build)?),
        authority_cert_issuer: None,
        authority_cert_serial_number: None,
    };
    Ok(vec![
        ext(
            &BasicConstraints {
                ca: false,
                path_len_constraint: None,
            },
            true,
        )?,
        ext(&KeyUsage(KeyUsages::DigitalSignature.into()), true)?,
        ext(&ExtendedKeyUsage(vec![ID_KP_CLIENT_AUTH]), true)?,
        ext(&SubjectKeyIdentifier(ski), false)?,
        ext(&aki, false)?,
    ])
}
