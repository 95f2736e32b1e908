//! PKCS#12 bundles (RFC 7292), as in `autoprov_credentials.p12` and
//! `client_auth.p12`: open with a password, verify the MAC, decrypt, and
//! hand back the client certificate, its key and the CA chain.
//!
//! The ASN.1 types and the PKCS#12 key derivation come from RustCrypto's
//! `pkcs12` crate, CMS `EncryptedData` from `cms`, PBES2 from `pkcs5`; the
//! two legacy PBE schemes that OTA Connect-era bundles use (RC2-40 for
//! certificates, 3DES for the key, domain.md section 1) are put together
//! here from `rc2`, `des` and `cbc`.
//!
//! Order matters: the MAC is verified before any content is trusted, so a
//! wrong password is reported as such and not as a parse error further in,
//! and a bundle made without the password cannot make us decrypt.
//!
//! Work. Every key derivation runs a hash thousands of times, as often as
//! the file says, and a file may hold any number of encrypted parts: a
//! 4 MiB bundle of 1,000,000-iteration parts would keep a build busy for
//! hours. So a whole file gets one [`Budget`](budget): the hash compressions of
//! all its key derivations, the MAC's included, and counts of encrypted
//! parts, bags and certificates. Each derivation is paid for before it
//! runs; past a limit the bundle is refused, naming the limit.
//!
//! Passwords. The PKCS#12 schemes (MAC and legacy PBE) derive keys from the
//! password as a BMPString with two terminating zero bytes, so the empty
//! password is `00 00`; OpenSSL writes bundles that way for `-passout
//! pass:`. Some writers use no password bytes at all instead; for an empty
//! password both forms are tried on the MAC, the one that verifies is then
//! used for decryption (as `openssl pkcs12` does). PBES2 takes the password
//! as its UTF-8 bytes, as OpenSSL does.
//!
//! The files, one concern each. This one holds [`open`], which reads the
//! container (the PFX and its authenticated safe), and re-exports the
//! public items defined in the others:
//! - [`limits`]: the `MAX_` limits and [`Limit`], which names one;
//! - [`error`]: [`P12Error`], why a bundle is refused, and the DER checks
//!   every decoder here makes first;
//! - [`budget`]: what is left of the limits while a file is read, and the
//!   iteration counts accepted;
//! - [`kdf`]: key derivation: the password in its two forms, what each
//!   derivation costs, PBKDF2 for Camellia;
//! - [`mac`]: verifying the MAC, which picks the password form;
//! - [`cipher`]: the ciphers of legacy PKCS#12 PBE, PBES1 and PBES2;
//! - [`bags`]: the bag walk, pairing key and certificate, and [`P12`], the
//!   opened bundle;
//! - [`decrypt`]: an encrypted part decrypted (methods of the bag walk's
//!   state): its scheme's parameters read, its derivation paid for.
//!
//! The files import one another in one direction: `limits` <- `error` <-
//! `budget`, `kdf` <- `mac`, `cipher`, `bags` <- `decrypt`; none imports
//! this one (tests/architecture.rs), which is why the public types live in
//! `limits`, `error` and `bags`.

mod bags;
mod budget;
mod cipher;
mod decrypt;
mod error;
mod kdf;
mod limits;
mod mac;

pub use bags::P12;
pub use error::P12Error;
pub use limits::{
    Limit, MAX_BAGS, MAX_CERTIFICATES, MAX_ENCRYPTED_PARTS, MAX_ITERATIONS, MAX_WORK,
};

use der::asn1::OctetString;
use der::oid::db::rfc5911::{ID_DATA, ID_ENCRYPTED_DATA, ID_ENVELOPED_DATA, ID_SIGNED_DATA};
use der::Decode;
use pkcs12::authenticated_safe::AuthenticatedSafe;
use pkcs12::pfx::Pfx;

use self::bags::Contents;
use self::budget::{iterations_at, Budget};
use self::decrypt::encrypted_data;
use self::error::{malformed, sets_fit};
use self::kdf::Password;
use self::mac::verify_mac;
use crate::crypto::error::count_elements;
use crate::secret::Secret;

/// Open a PKCS#12 bundle with `password` (empty for the OTA Connect
/// default).
pub fn open(der: &[u8], password: &Secret<String>) -> Result<P12, P12Error> {
    sets_fit(der)?;
    let pfx = Pfx::from_der(der).map_err(|e| {
        // PFX { version, authSafe, macData { mac, macSalt, iterations } }
        iterations_at(der, &[2, 2])
            .unwrap_or_else(|| malformed("the PFX structure does not parse")(e))
    })?;
    match pfx.auth_safe.content_type {
        ID_DATA => {}
        ID_SIGNED_DATA => {
            return Err(P12Error::UnsupportedAlgorithm(
                "public-key integrity mode (signedData)".into(),
            ))
        }
        other => {
            return Err(P12Error::Malformed(format!(
                "unexpected content type {other} for the authenticated safe"
            )))
        }
    }
    let auth_safe = pfx
        .auth_safe
        .content
        .decode_as::<OctetString>()
        .map_err(malformed("the authenticated safe"))?;
    let auth_safe = auth_safe.as_bytes();

    let mut budget = Budget::new();
    let candidates = Password::candidates(password)?;
    let (password, mac) = match &pfx.mac_data {
        Some(mac_data) => {
            let (password, description) = verify_mac(mac_data, auth_safe, candidates, &mut budget)?;
            (password, Some(description))
        }
        None => match candidates.into_iter().next() {
            Some(password) => (password, None),
            None => return Err(P12Error::UnencodablePassword),
        },
    };

    let mut contents = Contents {
        password,
        budget,
        weak_key_cipher: None,
        encryption: Vec::new(),
        certs: Vec::new(),
        keys: Vec::new(),
    };
    contents
        .budget
        .room_for(Limit::Bags, count_elements(auth_safe))?;
    sets_fit(auth_safe)?;
    let safes = AuthenticatedSafe::from_der(auth_safe)
        .map_err(malformed("the authenticated safe's content list"))?;
    for info in &safes {
        contents.budget.count(Limit::Bags)?;
        match info.content_type {
            ID_DATA => {
                let data = info
                    .content
                    .decode_as::<OctetString>()
                    .map_err(malformed("a data content"))?;
                contents.safe_contents(data.as_bytes(), 0)?;
            }
            ID_ENCRYPTED_DATA => {
                contents.budget.count(Limit::EncryptedParts)?;
                let (alg, ciphertext) = encrypted_data(&info.content)?;
                let part = contents.decrypt(&alg, &ciphertext)?;
                contents.safe_contents(part.plain.expose(), 0)?;
            }
            ID_ENVELOPED_DATA => {
                return Err(P12Error::UnsupportedAlgorithm(
                    "public-key privacy mode (envelopedData)".into(),
                ))
            }
            other => {
                return Err(P12Error::UnsupportedAlgorithm(format!(
                    "content type {other}"
                )))
            }
        }
    }
    contents.finish(mac)
}

#[cfg(test)]
mod tests {
    //! The tests of [`open`] as a whole, and the helpers the other files'
    //! tests share (`pub(super)`: seen by this folder only).

    use super::*;
    use crate::crypto::private_key::{self, key_matches_cert, KeyMatch, PrivateKey};
    use crate::crypto::test_support::{upstream_entry, Workdir};
    use crate::crypto::x509::{parse_pem_certificates, CertInfo, KeyAlgorithm};

    pub(super) fn secret(password: &str) -> Secret<String> {
        Secret::new(password.to_owned())
    }

    /// A CA (EC P-256) and a client certificate with a `kind` key, signed
    /// by it, as `ca.key`/`ca.pem` and `client.key`/`client.pem`.
    pub(super) fn material(tag: &str, kind: &str) -> Workdir {
        let dir = Workdir::new(tag);
        dir.key("ca.key", "ec");
        dir.ca("ca.key", "ca.pem", "/O=Test/CN=test-ca", 3650);
        dir.key("client.key", kind);
        dir.client(
            "client.key",
            "client.pem",
            "/CN=device-1",
            ("ca.pem", "ca.key"),
            365,
        );
        dir
    }

    pub(super) fn export(dir: &Workdir, password: &str, extra: &[&str]) -> Vec<u8> {
        let mut args = vec![
            "-inkey",
            "client.key",
            "-in",
            "client.pem",
            "-certfile",
            "ca.pem",
        ];
        args.extend_from_slice(extra);
        dir.p12("bundle.p12", password, &args)
    }

    /// No error message or `Debug` output shows the password or the key.
    pub(super) fn assert_nothing_leaks(text: &str, password: &str, key: Option<&PrivateKey>) {
        if !password.is_empty() {
            assert!(!text.contains(password), "the password leaks: {text}");
        }
        if let Some(key) = key {
            let der = key.pkcs8_der().expose();
            // Any 12-byte window of the key, in hex, or a line of its PEM.
            for window in der.windows(12).step_by(7) {
                assert!(
                    !text.contains(&crate::digest::hex(window)),
                    "key bytes leak: {text}"
                );
            }
            for line in key
                .to_pem()
                .expose()
                .lines()
                .filter(|l| !l.starts_with("---"))
            {
                assert!(!text.contains(line), "key base64 leaks: {text}");
            }
        }
    }

    pub(super) fn contents(
        certs: Vec<(CertInfo, Option<Vec<u8>>)>,
        keys: Vec<(PrivateKey, Option<Vec<u8>>)>,
    ) -> Contents {
        Contents {
            password: Password {
                bmp: Secret::new(Vec::new()),
                utf8: Secret::new(Vec::new()),
            },
            budget: Budget::new(),
            weak_key_cipher: None,
            encryption: Vec::new(),
            certs,
            keys,
        }
    }

    /// Open a bundle made by OpenSSL and check everything `open` returns.
    fn round_trip(legacy: bool, password: &str, kind: &str, expected: KeyAlgorithm) {
        let dir = material(&format!("p12-{kind}-{legacy}"), kind);
        let extra: &[&str] = if legacy { &["-legacy"] } else { &[] };
        let bytes = export(&dir, password, extra);
        let p12 = open(&bytes, &secret(password)).unwrap();

        assert_eq!(p12.client.common_name.as_deref(), Some("device-1"));
        assert!(!p12.client.is_ca);
        assert_eq!(p12.key.algorithm(), &expected);
        assert_eq!(p12.client.key, expected);
        let client_pem = parse_pem_certificates(&dir.read("client.pem")).unwrap();
        assert_eq!(p12.client.der, client_pem[0].der);
        assert_eq!(p12.ca_chain.len(), 1);
        assert_eq!(p12.ca_chain[0].subject, "CN=test-ca,O=Test");
        assert!(p12.ca_chain[0].is_ca);
        assert_eq!(p12.certificates_stored, 2);
        if legacy {
            assert_eq!(p12.mac.as_deref(), Some("HMAC-SHA1, 2048 iterations"));
            assert_eq!(
                p12.encryption,
                [
                    "pbeWithSHA1And40BitRC2-CBC",
                    "pbeWithSHA1And3-KeyTripleDES-CBC"
                ]
            );
        } else {
            assert_eq!(p12.mac.as_deref(), Some("HMAC-SHA256, 2048 iterations"));
            assert_eq!(p12.encryption, ["PBES2 (PBKDF2-HMAC-SHA256, AES-256-CBC)"]);
        }
        // The key comes out as OpenSSL reads it, and it is the client's.
        let again =
            private_key::parse_private_key_pem(p12.key.to_pem().expose().as_bytes()).unwrap();
        assert_eq!(key_matches_cert(&again, &p12.client), KeyMatch::Matches);
        dir.write("out.key", p12.key.to_pem().expose().as_bytes());
        let theirs = dir.openssl(&["pkey", "-in", "client.key", "-pubout"]);
        let ours = dir.openssl(&["pkey", "-in", "out.key", "-pubout"]);
        assert_eq!(theirs, ours);

        assert_nothing_leaks(&format!("{p12:?}"), password, Some(&p12.key));
    }

    #[test]
    fn legacy_bundle_with_empty_password() {
        round_trip(true, "", "ec", KeyAlgorithm::EcP256);
    }

    #[test]
    fn legacy_bundle_with_password() {
        round_trip(true, "s3cret pass", "rsa", KeyAlgorithm::Rsa { bits: 2048 });
    }

    #[test]
    fn aes_bundle_with_empty_password() {
        round_trip(false, "", "rsa1024", KeyAlgorithm::Rsa { bits: 1024 });
    }

    #[test]
    fn aes_bundle_with_password() {
        round_trip(false, "s3cret pass", "ec384", KeyAlgorithm::EcP384);
    }

    #[test]
    fn non_ascii_passwords_are_encoded_as_openssl_does() {
        round_trip(true, "pässwörd€", "ec", KeyAlgorithm::EcP256);
        round_trip(false, "pässwörd€", "ec", KeyAlgorithm::EcP256);
    }

    #[test]
    fn the_upstream_sample_opens_with_the_empty_password() {
        // Both samples: same shape, different namespaces; the CA's CN is
        // the UUID in the archive's autoprov.url.
        for (archive, client, ca) in [
            ("aktualizr-credentials.zip", "47ff9a99-", "bd8012b4-"),
            (
                "aktualizr-auth_test_good_offline.zip",
                "79561c6d-",
                "dc7ac2e8-",
            ),
        ] {
            let bytes = upstream_entry(archive, "autoprov_credentials.p12");
            let p12 = open(&bytes, &secret("")).unwrap();
            let client_cn = p12.client.common_name.as_deref().unwrap_or_default();
            assert!(client_cn.starts_with(client), "{archive}: {client_cn}");
            assert_eq!(p12.client.key, KeyAlgorithm::EcP256);
            assert_eq!(p12.key.algorithm(), &KeyAlgorithm::EcP256);
            assert!(!p12.client.is_ca);
            assert_eq!(p12.certificates_stored, 3);
            assert_eq!(p12.ca_chain.len(), 1, "the CA is stored twice");
            let ca_cn = ca;
            let ca = &p12.ca_chain[0];
            assert!(ca
                .common_name
                .as_deref()
                .unwrap_or_default()
                .starts_with(ca_cn));
            assert!(ca.is_ca);
            assert!(ca.is_self_issued());
            assert_eq!(p12.client.issuer, ca.subject);
            assert_eq!(p12.mac.as_deref(), Some("HMAC-SHA1, 1024 iterations"));
            assert_eq!(
                p12.encryption,
                [
                    "pbeWithSHA1And3-KeyTripleDES-CBC",
                    "pbeWithSHA1And40BitRC2-CBC"
                ]
            );
            // OTA Connect wrote the empty password as OpenSSL does: `00 00`.
            let pfx = Pfx::from_der(&bytes).unwrap();
            let auth_safe = pfx.auth_safe.content.decode_as::<OctetString>().unwrap();
            let mut bmp_only = Password::candidates(&secret("")).unwrap();
            bmp_only.truncate(1);
            let mac_data = pfx.mac_data.as_ref().unwrap();
            assert!(
                verify_mac(mac_data, auth_safe.as_bytes(), bmp_only, &mut Budget::new()).is_ok()
            );

            assert_eq!(
                open(&bytes, &secret("not the password")).unwrap_err(),
                P12Error::WrongPassword
            );
        }
    }

    #[test]
    fn a_wrong_password_is_reported_before_anything_is_parsed() {
        let dir = material("wrong-password", "ec");
        for extra in [&["-legacy"][..], &[][..]] {
            let bytes = export(&dir, "right horse", extra);
            for wrong in ["", "right hors", "wrong battery staple"] {
                let err = open(&bytes, &secret(wrong)).unwrap_err();
                assert_eq!(err, P12Error::WrongPassword);
                assert_nothing_leaks(&format!("{err} {err:?}"), wrong, None);
                assert_nothing_leaks(&format!("{err} {err:?}"), "right horse", None);
            }
        }
    }

    #[test]
    fn without_a_mac_a_wrong_password_fails_to_decrypt() {
        let dir = material("nomac", "ec");
        for extra in [&["-legacy", "-nomac"][..], &["-nomac"][..]] {
            let bytes = export(&dir, "pw", extra);
            let p12 = open(&bytes, &secret("pw")).unwrap();
            assert_eq!(p12.mac, None);
            assert_eq!(
                open(&bytes, &secret("other")).unwrap_err(),
                P12Error::DecryptionFailed
            );
        }
    }

    #[test]
    fn garbage_and_truncated_files_are_malformed() {
        let bytes = upstream_entry("aktualizr-credentials.zip", "autoprov_credentials.p12");
        for bad in [
            &b""[..],
            b"not a p12",
            &bytes[..bytes.len() / 2],
            &bytes[1..],
        ] {
            let err = open(bad, &secret("")).unwrap_err();
            assert!(matches!(err, P12Error::Malformed(_)), "{err}");
        }
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(matches!(
            open(&trailing, &secret("")).unwrap_err(),
            P12Error::Malformed(_)
        ));
        // A flipped byte inside the content: the MAC catches it.
        let mut flipped = bytes;
        let at = flipped.len() / 2;
        flipped[at] ^= 0x01;
        let err = open(&flipped, &secret("")).unwrap_err();
        assert!(
            matches!(err, P12Error::WrongPassword | P12Error::Malformed(_)),
            "{err}"
        );
    }

    #[test]
    fn non_bmp_passwords_are_refused_clearly() {
        let bytes = upstream_entry("aktualizr-credentials.zip", "autoprov_credentials.p12");
        let err = open(&bytes, &secret("emoji 🔑")).unwrap_err();
        assert_eq!(err, P12Error::UnencodablePassword);
        assert_nothing_leaks(&format!("{err} {err:?}"), "emoji 🔑", None);
    }
}
