//! The MAC (RFC 7292 appendix B), verified before any content is
//! trusted; for an empty password it picks the form that verifies.

use der::asn1::ObjectIdentifier;
use der::oid::db::rfc5912::{ID_MD_5, ID_SHA_1, ID_SHA_224, ID_SHA_256, ID_SHA_384, ID_SHA_512};
use hmac::digest::core_api::BlockSizeUser;
use hmac::digest::{Digest, FixedOutputReset};
use hmac::{Mac, SimpleHmac};
use pkcs12::kdf::{derive_key, Pkcs12KeyType};
use pkcs12::mac_data::MacData;
use sha1::Sha1;
use sha2::{Sha224, Sha256, Sha384, Sha512};

use super::budget::{check_iterations, Budget};
use super::error::P12Error;
use super::kdf::{
    Derivation, Password, SHA1_SIZE, SHA224_SIZE, SHA256_SIZE, SHA384_SIZE, SHA512_SIZE,
};
use crate::secret::Secret;

/// Verify the MAC with each candidate password; return the one that
/// verifies and a description of the MAC.
pub(super) fn verify_mac(
    mac_data: &MacData,
    content: &[u8],
    candidates: Vec<Password>,
    budget: &mut Budget,
) -> Result<(Password, String), P12Error> {
    let iterations = check_iterations(i128::from(mac_data.iterations))?;
    let salt = mac_data.mac_salt.as_bytes();
    let expected = mac_data.mac.digest.as_bytes();
    let oid = mac_data.mac.algorithm.oid;
    let (name, hash) = match oid {
        ID_SHA_1 => ("HMAC-SHA1", SHA1_SIZE),
        ID_SHA_224 => ("HMAC-SHA224", SHA224_SIZE),
        ID_SHA_256 => ("HMAC-SHA256", SHA256_SIZE),
        ID_SHA_384 => ("HMAC-SHA384", SHA384_SIZE),
        ID_SHA_512 => ("HMAC-SHA512", SHA512_SIZE),
        other => {
            return Err(P12Error::UnsupportedAlgorithm(format!(
                "a MAC with digest {}",
                digest_name(other)
            )))
        }
    };
    for password in candidates {
        let pw = password.bmp.expose();
        budget.spend(Derivation::Pkcs12.cost(
            hash,
            iterations.unsigned_abs().into(),
            salt.len(),
            pw.len(),
            hash.output as usize,
        ))?;
        let verified = match oid {
            ID_SHA_1 => mac_verifies::<Sha1>(pw, salt, iterations, content, expected),
            ID_SHA_224 => mac_verifies::<Sha224>(pw, salt, iterations, content, expected),
            ID_SHA_256 => mac_verifies::<Sha256>(pw, salt, iterations, content, expected),
            ID_SHA_384 => mac_verifies::<Sha384>(pw, salt, iterations, content, expected),
            _ => mac_verifies::<Sha512>(pw, salt, iterations, content, expected),
        };
        if verified {
            return Ok((password, format!("{name}, {iterations} iterations")));
        }
    }
    Err(P12Error::WrongPassword)
}

/// RFC 7292 appendix B with digest `D`: the MAC key from the PKCS#12 KDF
/// (as long as `D`'s output, as OpenSSL makes it), then HMAC-`D`.
fn mac_verifies<D>(
    password: &[u8],
    salt: &[u8],
    iterations: i32,
    content: &[u8],
    expected: &[u8],
) -> bool
where
    D: Digest + FixedOutputReset + BlockSizeUser,
{
    let len = <D as Digest>::output_size();
    let key = Secret::new(derive_key::<D>(
        password,
        salt,
        Pkcs12KeyType::Mac,
        iterations,
        len,
    ));
    <SimpleHmac<D> as Mac>::new_from_slice(key.expose())
        .map(|mac| mac.chain_update(content).verify_slice(expected).is_ok())
        .unwrap_or(false)
}

fn digest_name(oid: ObjectIdentifier) -> String {
    match oid {
        ID_MD_5 => "MD5".into(),
        ID_SHA_224 => "SHA-224".into(),
        ID_SHA_384 => "SHA-384".into(),
        ID_SHA_512 => "SHA-512".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::pkcs12::open;
    use crate::crypto::pkcs12::tests::{export, material, secret};
    use der::asn1::OctetString;
    use hmac::Hmac;
    use x509_cert::spki::AlgorithmIdentifierOwned;

    #[test]
    fn unsupported_mac_digest_is_named() {
        // OpenSSL writes an MD5 MAC too; no crate here computes MD5.
        let dir = material("mac-md5", "ec");
        let bytes = export(&dir, "", &["-macalg", "MD5"]);
        assert_eq!(
            open(&bytes, &secret("")).unwrap_err(),
            P12Error::UnsupportedAlgorithm("a MAC with digest MD5".into())
        );
    }

    #[test]
    fn an_absent_empty_password_is_tried_after_the_bmp_one() {
        // Some writers derive the MAC key from no password bytes at all
        // rather than from the BMPString terminator `00 00`.
        let content = b"authenticated safe";
        let salt = [7u8; 8];
        let key = derive_key::<Sha1>(&[], &salt, Pkcs12KeyType::Mac, 3, 20);
        let digest = Hmac::<Sha1>::new_from_slice(&key)
            .unwrap()
            .chain_update(content)
            .finalize()
            .into_bytes();
        let mac_data = MacData {
            mac: pkcs12::digest_info::DigestInfo {
                algorithm: AlgorithmIdentifierOwned {
                    oid: ID_SHA_1,
                    parameters: None,
                },
                digest: OctetString::new(digest.to_vec()).unwrap(),
            },
            mac_salt: OctetString::new(salt.to_vec()).unwrap(),
            iterations: 3,
        };
        let (password, mac) = verify_mac(
            &mac_data,
            content,
            Password::candidates(&secret("")).unwrap(),
            &mut Budget::new(),
        )
        .unwrap();
        assert!(password.bmp.expose().is_empty());
        assert_eq!(mac, "HMAC-SHA1, 3 iterations");
        assert_eq!(
            verify_mac(
                &mac_data,
                content,
                Password::candidates(&secret("x")).unwrap(),
                &mut Budget::new(),
            )
            .unwrap_err(),
            P12Error::WrongPassword
        );
    }
}
