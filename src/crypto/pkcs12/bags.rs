//! The bag walk: the contents of a bundle read bag by bag (nested ones
//! included, each counted against the budget), certificates and keys
//! gathered with their `localKeyId`, and at the end the key paired with
//! its certificate ([`P12`], the opened bundle).

use der::asn1::{Any, ObjectIdentifier, OctetString};
use der::{Decode, Encode};
use pkcs12::cert_type::CertBag;
use pkcs12::pbe_params::EncryptedPrivateKeyInfo;
use pkcs12::safe_bag::{SafeBag, SafeContents};
use x509_cert::attr::Attributes;

use super::budget::Budget;
use super::error::{malformed, sets_fit, P12Error};
use super::kdf::Password;
use super::limits::Limit;
use crate::crypto::error::count_elements;
use crate::crypto::private_key::{key_matches_cert, KeyMatch, PrivateKey};
use crate::crypto::x509::{self, CertInfo};
use crate::secret::Secret;

/// PKCS#9 `localKeyId` (RFC 2985), which pairs a key with its
/// certificate. Written out: const-oid 0.9's database does not carry it.
const ID_LOCAL_KEY_ID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.21");

/// SafeContents bags may nest; real bundles never do more than once.
const MAX_NESTING: usize = 4;

/// An opened bundle.
#[derive(Debug, Clone)]
pub struct P12 {
    /// The certificate whose public key is the bundle's private key.
    pub client: CertInfo,
    pub key: PrivateKey,
    /// Every other certificate, de-duplicated by DER, in first-seen order.
    pub ca_chain: Vec<CertInfo>,
    /// Certificate bags in the file, duplicates included.
    pub certificates_stored: usize,
    /// The MAC, e.g. `HMAC-SHA1, 1024 iterations`; `None` when the bundle
    /// has no MAC (nothing then proves the content is intact).
    pub mac: Option<String>,
    /// The encryption schemes used, distinct, in first-seen order.
    pub encryption: Vec<String>,
    /// Why the cipher protecting the private key is weak (fewer than 112
    /// bits of key), when it is: `single DES (56-bit key)`. OpenSSL and
    /// so aktualizr open such a bundle; the checks warn.
    pub weak_key_cipher: Option<&'static str>,
}

/// What the bags of a bundle hold, gathered while reading it.
pub(super) struct Contents {
    pub(super) password: Password,
    pub(super) budget: Budget,
    /// Why the cipher of a shrouded key bag is weak, when one is.
    pub(super) weak_key_cipher: Option<&'static str>,
    pub(super) encryption: Vec<String>,
    /// Certificates with their `localKeyId`, in file order.
    pub(super) certs: Vec<(CertInfo, Option<Vec<u8>>)>,
    pub(super) keys: Vec<(PrivateKey, Option<Vec<u8>>)>,
}

impl Contents {
    pub(super) fn record(&mut self, scheme: String) {
        if !self.encryption.contains(&scheme) {
            self.encryption.push(scheme);
        }
    }

    pub(super) fn safe_contents(&mut self, der: &[u8], depth: usize) -> Result<(), P12Error> {
        self.budget.room_for(Limit::Bags, count_elements(der))?;
        sets_fit(der)?;
        let bags = SafeContents::from_der(der).map_err(malformed("a bag list"))?;
        for bag in &bags {
            self.bag(bag, depth)?;
        }
        Ok(())
    }

    fn bag(&mut self, bag: &SafeBag, depth: usize) -> Result<(), P12Error> {
        self.budget.count(Limit::Bags)?;
        // `bag_value` is the `[0] EXPLICIT` wrapper; the value is inside.
        let inner = der::asn1::ContextSpecific::<Any>::from_der(&bag.bag_value)
            .and_then(|cs| cs.value.to_der())
            .map(Secret::new)
            .map_err(malformed("a bag"))?;
        let inner = inner.expose();
        let local_key_id = local_key_id(bag.bag_attributes.as_ref());
        match bag.bag_id {
            pkcs12::PKCS_12_CERT_BAG_OID => {
                self.budget.count(Limit::Certificates)?;
                let cert_bag = CertBag::from_der(inner).map_err(malformed("a certificate bag"))?;
                if cert_bag.cert_id != pkcs12::PKCS_12_X509_CERT_OID {
                    return Err(P12Error::UnsupportedAlgorithm(format!(
                        "certificates of type {}",
                        cert_bag.cert_id
                    )));
                }
                let cert = x509::parse_der(cert_bag.cert_value.as_bytes())
                    .map_err(|e| P12Error::Malformed(format!("a certificate bag: {e}")))?;
                self.certs.push((cert, local_key_id));
            }
            pkcs12::PKCS_12_KEY_BAG_OID => {
                let key = PrivateKey::from_pkcs8_der(inner)
                    .map_err(|e| P12Error::Malformed(format!("a key bag: {e}")))?;
                self.keys.push((key, local_key_id));
            }
            pkcs12::PKCS_12_PKCS8_KEY_BAG_OID => {
                self.budget.count(Limit::EncryptedParts)?;
                let shrouded = EncryptedPrivateKeyInfo::from_der(inner)
                    .map_err(malformed("a shrouded key bag"))?;
                let part = self.decrypt(
                    &shrouded.encryption_algorithm,
                    shrouded.encrypted_data.as_bytes(),
                )?;
                if part.weak.is_some() {
                    self.weak_key_cipher = part.weak;
                }
                let key = PrivateKey::from_pkcs8_der(part.plain.expose())
                    .map_err(|e| P12Error::Malformed(format!("a shrouded key bag: {e}")))?;
                self.keys.push((key, local_key_id));
            }
            pkcs12::PKCS_12_SAFE_CONTENTS_BAG_OID => {
                if depth >= MAX_NESTING {
                    return Err(P12Error::Malformed("bags are nested too deep".into()));
                }
                self.safe_contents(inner, depth + 1)?;
            }
            // CRL and secret bags, and bag types from the future: nothing
            // the device or the tool uses.
            _ => {}
        }
        Ok(())
    }

    pub(super) fn finish(self, mac: Option<String>) -> Result<P12, P12Error> {
        let Contents {
            encryption,
            certs,
            keys: stored_keys,
            weak_key_cipher,
            ..
        } = self;
        // The same key stored twice is still one key.
        let mut keys: Vec<(PrivateKey, Option<Vec<u8>>)> = Vec::new();
        for key in stored_keys {
            if !keys.iter().any(|k| k.0.pkcs8_der() == key.0.pkcs8_der()) {
                keys.push(key);
            }
        }
        let (key, key_id) = match keys.len() {
            0 => return Err(P12Error::NoPrivateKey),
            1 => keys.remove(0),
            _ => return Err(P12Error::MoreThanOneKey),
        };
        if certs.is_empty() {
            return Err(P12Error::NoCertificate);
        }

        let matches: Vec<KeyMatch> = certs
            .iter()
            .map(|(cert, _)| key_matches_cert(&key, cert))
            .collect();
        let by_key = matches.iter().position(|m| *m == KeyMatch::Matches);
        // Only when the key cannot be compared: the attribute that PKCS#12
        // writers put on a key and its certificate alike.
        let by_id = || {
            let id = key_id.as_ref()?;
            certs.iter().zip(&matches).position(|((_, cert_id), m)| {
                cert_id.as_ref() == Some(id) && matches!(m, KeyMatch::CannotTell(_))
            })
        };
        let Some(client_index) = by_key.or_else(by_id) else {
            return Err(
                match matches.into_iter().find_map(|m| match m {
                    KeyMatch::CannotTell(reason) => Some(reason),
                    _ => None,
                }) {
                    Some(reason) => P12Error::CannotPairKey(reason),
                    None => P12Error::KeyDoesNotMatch,
                },
            );
        };

        let certificates_stored = certs.len();
        let mut client = None;
        let mut ca_chain: Vec<CertInfo> = Vec::new();
        for (index, (cert, _)) in certs.into_iter().enumerate() {
            if index == client_index {
                client = Some(cert);
            } else if !ca_chain.iter().any(|c| c.der == cert.der) {
                ca_chain.push(cert);
            }
        }
        let client = client.ok_or(P12Error::NoCertificate)?;
        ca_chain.retain(|c| c.der != client.der);
        Ok(P12 {
            client,
            key,
            ca_chain,
            certificates_stored,
            mac,
            encryption,
            weak_key_cipher,
        })
    }
}

/// The `localKeyId` attribute of a bag (PKCS#9), when it is there.
fn local_key_id(attributes: Option<&Attributes>) -> Option<Vec<u8>> {
    attributes?
        .iter()
        .find(|attr| attr.oid == ID_LOCAL_KEY_ID)?
        .values
        .iter()
        .next()?
        .decode_as::<OctetString>()
        .ok()
        .map(OctetString::into_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::pkcs12::open;
    use crate::crypto::pkcs12::tests::{contents, export, material, secret};
    use crate::crypto::private_key;
    use crate::crypto::x509::{parse_pem_certificates, KeyAlgorithm};

    #[test]
    fn unencrypted_bags_are_read() {
        let dir = material("plain", "ec");
        let bytes = export(&dir, "", &["-keypbe", "NONE", "-certpbe", "NONE"]);
        let p12 = open(&bytes, &secret("")).unwrap();
        assert!(p12.encryption.is_empty());
        assert_eq!(p12.client.common_name.as_deref(), Some("device-1"));
        assert_eq!(p12.ca_chain.len(), 1);
    }

    #[test]
    fn a_bundle_without_key_or_without_certificate_is_refused() {
        let dir = material("partial", "ec");
        let no_keys = dir.p12(
            "nokeys.p12",
            "",
            &["-nokeys", "-in", "client.pem", "-certfile", "ca.pem"],
        );
        assert_eq!(
            open(&no_keys, &secret("")).unwrap_err(),
            P12Error::NoPrivateKey
        );
        let no_certs = dir.p12("nocerts.p12", "", &["-nocerts", "-inkey", "client.key"]);
        assert_eq!(
            open(&no_certs, &secret("")).unwrap_err(),
            P12Error::NoCertificate
        );
    }

    #[test]
    fn the_ca_chain_is_deduplicated_in_first_seen_order() {
        let dir = material("dedup", "ec");
        dir.key("other.key", "rsa1024");
        dir.ca("other.key", "other.pem", "/CN=other-ca", 30);
        let mut chain = dir.read("ca.pem");
        chain.extend(dir.read("other.pem"));
        chain.extend(dir.read("ca.pem"));
        chain.extend(dir.read("client.pem"));
        dir.write("chain.pem", &chain);
        let bytes = dir.p12(
            "dedup.p12",
            "",
            &[
                "-inkey",
                "client.key",
                "-in",
                "client.pem",
                "-certfile",
                "chain.pem",
            ],
        );
        let p12 = open(&bytes, &secret("")).unwrap();
        assert_eq!(p12.certificates_stored, 5);
        let names: Vec<_> = p12
            .ca_chain
            .iter()
            .map(|c| c.common_name.as_deref().unwrap_or_default())
            .collect();
        assert_eq!(names, ["test-ca", "other-ca"]);
        assert_eq!(p12.client.common_name.as_deref(), Some("device-1"));
    }

    #[test]
    fn an_ed25519_client_is_found_by_its_local_key_id() {
        // OpenSSL writes ED25519 keys as PKCS#8 v1, without the public key,
        // so only the localKeyId attribute pairs key and certificate.
        let dir = material("ed25519", "ed25519");
        let bytes = export(&dir, "pw", &[]);
        let p12 = open(&bytes, &secret("pw")).unwrap();
        assert_eq!(p12.client.common_name.as_deref(), Some("device-1"));
        assert_eq!(p12.key.algorithm(), &KeyAlgorithm::Ed25519);
        assert_eq!(p12.ca_chain.len(), 1);
    }

    #[test]
    fn a_key_that_matches_no_certificate_is_refused() {
        let dir = material("mismatch", "ec");
        dir.key("stray.key", "ec");
        dir.key("ed.key", "ed25519");
        let certs = || {
            let mut certs = parse_pem_certificates(&dir.read("client.pem")).unwrap();
            certs.extend(parse_pem_certificates(&dir.read("ca.pem")).unwrap());
            certs.into_iter().map(|c| (c, None)).collect::<Vec<_>>()
        };
        let stray = private_key::parse_private_key_pem(&dir.read("stray.key")).unwrap();
        let err = contents(certs(), vec![(stray.clone(), None)])
            .finish(None)
            .unwrap_err();
        assert_eq!(err, P12Error::KeyDoesNotMatch);
        assert_eq!(
            err.to_string(),
            "no certificate in the bundle matches its private key"
        );

        let client = private_key::parse_private_key_pem(&dir.read("client.key")).unwrap();
        let err = contents(certs(), vec![(stray, None), (client.clone(), None)])
            .finish(None)
            .unwrap_err();
        assert_eq!(err, P12Error::MoreThanOneKey);

        // The same key twice is one key.
        let p12 = contents(certs(), vec![(client.clone(), None), (client, None)])
            .finish(None)
            .unwrap();
        assert_eq!(p12.client.common_name.as_deref(), Some("device-1"));

        // An ED25519 cert and key with no localKeyId: nothing pairs them.
        dir.ca("ed.key", "ed.pem", "/CN=ed", 30);
        let ed_cert = parse_pem_certificates(&dir.read("ed.pem")).unwrap();
        let ed_key = private_key::parse_private_key_pem(&dir.read("ed.key")).unwrap();
        let err = contents(
            ed_cert.into_iter().map(|c| (c, None)).collect(),
            vec![(ed_key, None)],
        )
        .finish(None)
        .unwrap_err();
        assert!(matches!(err, P12Error::CannotPairKey(_)), "{err}");
    }

    #[test]
    fn a_bag_attribute_set_too_large_to_sort_is_refused() {
        // SafeContents { SafeBag { id, [0] NULL, SET { 65 NULLs } } }:
        // `der` would sort the attributes with an insertion sort.
        let mut set = vec![0x31, 0x81, 130];
        set.extend([0x05, 0x00].repeat(65));
        let mut bag = vec![0x06, 0x01, 0x2a, 0xa0, 0x02, 0x05, 0x00];
        bag.extend(set);
        let mut safe = vec![0x30, 0x81, 0x00];
        safe.extend(
            der::asn1::AnyRef::new(der::Tag::Sequence, &bag)
                .unwrap()
                .to_der()
                .unwrap(),
        );
        safe[2] = u8::try_from(safe.len() - 3).unwrap();
        let err = contents(Vec::new(), Vec::new())
            .safe_contents(&safe, 0)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "not a valid PKCS#12 file: a SET holds more than 64 elements"
        );
    }
}
