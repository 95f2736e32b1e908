//! Private keys: a PEM key file in any of the three forms OpenSSL writes
//! ([`parse_private_key_pem`]), the key of a PKCS#12 bundle
//! ([`PrivateKey::from_pkcs8_der`]), the key as aktualizr's `pkey.pem`
//! ([`PrivateKey::to_pem`]), and whether a key belongs to a certificate
//! ([`key_matches_cert`]).
//!
//! Parsing is done by RustCrypto's `pkcs8`, `sec1` and `pkcs1`; whatever
//! form a key came in, it is held as PKCS#8 DER in a [`Secret`].
//!
//! Whether a key belongs to a certificate is decided by comparing public
//! keys, without any curve arithmetic: RSA keys carry their modulus and
//! exponent, and an EC key carries its public point in the optional
//! `publicKey` field of `ECPrivateKey` (RFC 5915), which OpenSSL always
//! writes. An EC key without it cannot be checked here
//! ([`KeyMatch::CannotTell`]); docs/crypto.md says why. The comparison
//! lives with the key, not the certificate, because it reads the key's
//! inner structure; a certificate only offers its `SubjectPublicKeyInfo`.

use std::fmt;

use der::asn1::{AnyRef, ObjectIdentifier, OctetStringRef};
use der::oid::db::rfc5912::{ID_EC_PUBLIC_KEY, ID_RSASSA_PSS, RSA_ENCRYPTION};
use der::oid::db::rfc8410::ID_ED_25519;
use der::{Decode, Encode};
use x509_cert::spki::{AlgorithmIdentifierRef, SubjectPublicKeyInfoRef};

use super::error::{der_detail, element_at, CryptoError};
use super::pem;
use super::x509::{bit_length, named_curve, CertInfo, KeyAlgorithm};
use crate::secret::Secret;

/// An unencrypted private key, held as PKCS#8 DER whatever form it came in.
/// `Debug` shows only the algorithm.
#[derive(Clone)]
pub struct PrivateKey {
    algorithm: KeyAlgorithm,
    pkcs8: Secret<Vec<u8>>,
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrivateKey")
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

impl PrivateKey {
    pub fn algorithm(&self) -> &KeyAlgorithm {
        &self.algorithm
    }

    /// The PKCS#8 DER (`PrivateKeyInfo`).
    pub fn pkcs8_der(&self) -> &Secret<Vec<u8>> {
        &self.pkcs8
    }

    /// The key as PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`), the form
    /// aktualizr's `pkey.pem` is read in (OpenSSL reads any of them).
    pub fn to_pem(&self) -> Secret<String> {
        Secret::new(pem::encode("PRIVATE KEY", self.pkcs8.expose()))
    }

    /// A key out of a PKCS#12 key bag, or any PKCS#8 `PrivateKeyInfo`.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<PrivateKey, CryptoError> {
        let info = pkcs8::PrivateKeyInfo::from_der(der).map_err(bad_key)?;
        let algorithm = match info.algorithm.oid {
            RSA_ENCRYPTION | ID_RSASSA_PSS => rsa_algorithm(info.private_key)?,
            ID_EC_PUBLIC_KEY => {
                let ec = sec1::EcPrivateKey::from_der(info.private_key).map_err(bad_key)?;
                let curve = named_curve(&info.algorithm)
                    .or_else(|| ec.parameters.and_then(|p| p.named_curve()))
                    .ok_or_else(|| {
                        CryptoError::BadPrivateKey("the EC key does not name its curve".into())
                    })?;
                KeyAlgorithm::ec(curve)
            }
            ID_ED_25519 => {
                // RFC 8410: the key is an OCTET STRING inside the OCTET STRING.
                let seed = OctetStringRef::from_der(info.private_key).map_err(bad_key)?;
                if seed.as_bytes().len() != 32 {
                    return Err(CryptoError::BadPrivateKey(
                        "an ED25519 key must be 32 bytes".into(),
                    ));
                }
                KeyAlgorithm::Ed25519
            }
            other => KeyAlgorithm::Other(other.to_string()),
        };
        Ok(PrivateKey {
            algorithm,
            pkcs8: Secret::new(der.to_vec()),
        })
    }

    /// A SEC1 `ECPrivateKey` (`-----BEGIN EC PRIVATE KEY-----`), which
    /// names its curve in its `parameters` field.
    pub fn from_sec1_der(der: &[u8]) -> Result<PrivateKey, CryptoError> {
        let ec = sec1::EcPrivateKey::from_der(der).map_err(bad_key)?;
        let curve = ec.parameters.and_then(|p| p.named_curve()).ok_or_else(|| {
            CryptoError::BadPrivateKey("the EC key does not name its curve".into())
        })?;
        // Inside PKCS#8 the curve is named by the algorithm identifier and
        // left out of ECPrivateKey, as OpenSSL writes it.
        let inner = sec1::EcPrivateKey {
            private_key: ec.private_key,
            parameters: None,
            public_key: ec.public_key,
        }
        .to_der()
        .map_err(bad_key)?;
        let algorithm = AlgorithmIdentifierRef {
            oid: ID_EC_PUBLIC_KEY,
            parameters: Some(AnyRef::from(&curve)),
        };
        let pkcs8 = pkcs8::PrivateKeyInfo::new(algorithm, &inner)
            .to_der()
            .map_err(bad_key)?;
        Ok(PrivateKey {
            algorithm: KeyAlgorithm::ec(curve),
            pkcs8: Secret::new(pkcs8),
        })
    }

    /// A PKCS#1 `RSAPrivateKey` (`-----BEGIN RSA PRIVATE KEY-----`).
    pub fn from_pkcs1_der(der: &[u8]) -> Result<PrivateKey, CryptoError> {
        let algorithm = rsa_algorithm(der)?;
        let id = AlgorithmIdentifierRef {
            oid: RSA_ENCRYPTION,
            parameters: Some(AnyRef::NULL),
        };
        let pkcs8 = pkcs8::PrivateKeyInfo::new(id, der)
            .to_der()
            .map_err(bad_key)?;
        Ok(PrivateKey {
            algorithm,
            pkcs8: Secret::new(pkcs8),
        })
    }

    /// The modulus and public exponent of an RSA key, leading zeros
    /// stripped (as `der`'s `UintRef` holds them); `None` for other keys.
    pub(crate) fn rsa_public(&self) -> Option<(Vec<u8>, Vec<u8>)> {
        let info = pkcs8::PrivateKeyInfo::from_der(self.pkcs8.expose()).ok()?;
        if !matches!(info.algorithm.oid, RSA_ENCRYPTION | ID_RSASSA_PSS) {
            return None;
        }
        let key = pkcs1::RsaPrivateKey::from_der(info.private_key).ok()?;
        Some((
            key.modulus.as_bytes().to_vec(),
            key.public_exponent.as_bytes().to_vec(),
        ))
    }
}

fn bad_key(e: der::Error) -> CryptoError {
    CryptoError::BadPrivateKey(der_detail(&e))
}

fn rsa_algorithm(pkcs1_der: &[u8]) -> Result<KeyAlgorithm, CryptoError> {
    let key = pkcs1::RsaPrivateKey::from_der(pkcs1_der).map_err(bad_key)?;
    Ok(KeyAlgorithm::Rsa {
        bits: bit_length(key.modulus.as_bytes()),
    })
}

/// Parse a PEM private key: PKCS#8 `PRIVATE KEY`, SEC1 `EC PRIVATE KEY` or
/// PKCS#1 `RSA PRIVATE KEY`. Other blocks (`EC PARAMETERS` that
/// `openssl ecparam -genkey` writes, certificates) are ignored; exactly one
/// key must be there, and it must not be encrypted.
pub fn parse_private_key_pem(text: &[u8]) -> Result<PrivateKey, CryptoError> {
    let blocks = pem::blocks(text)?;
    let mut keys = Vec::new();
    for block in &blocks {
        match block.label.as_str() {
            "ENCRYPTED PRIVATE KEY" => return Err(CryptoError::EncryptedKey),
            "PRIVATE KEY" | "EC PRIVATE KEY" | "RSA PRIVATE KEY" => keys.push(block),
            other if other.ends_with("PRIVATE KEY") => {
                return Err(CryptoError::BadPrivateKey(format!(
                    "PEM block {} is a `{other}`, which is not supported; give a PKCS#8 \
                     (`PRIVATE KEY`), SEC1 (`EC PRIVATE KEY`) or PKCS#1 (`RSA PRIVATE KEY`) key",
                    block.index
                )))
            }
            _ => {}
        }
    }
    let block = match keys.as_slice() {
        [] => return Err(CryptoError::NoPrivateKey),
        [one] => *one,
        _ => return Err(CryptoError::MoreThanOneKey),
    };
    let der = Secret::new(block.decode()?);
    match block.label.as_str() {
        "EC PRIVATE KEY" => PrivateKey::from_sec1_der(der.expose()),
        "RSA PRIVATE KEY" => PrivateKey::from_pkcs1_der(der.expose()),
        _ => PrivateKey::from_pkcs8_der(der.expose()),
    }
}

/// Like [`parse_private_key_pem`], but an encrypted PKCS#8 key
/// (`-----BEGIN ENCRYPTED PRIVATE KEY-----`, PBES2 as `openssl pkcs8
/// -topk8` writes it) is decrypted with `password` when one is given.
pub fn parse_private_key_pem_with_password(
    text: &[u8],
    password: Option<&Secret<String>>,
) -> Result<PrivateKey, CryptoError> {
    let Some(password) = password else {
        return parse_private_key_pem(text);
    };
    let blocks = pem::blocks(text)?;
    let encrypted: Vec<_> = blocks
        .iter()
        .filter(|b| b.label == "ENCRYPTED PRIVATE KEY" || b.legacy_encryption().is_some())
        .collect();
    let block = match encrypted.as_slice() {
        [] => return parse_private_key_pem(text),
        [one] => *one,
        _ => return Err(CryptoError::MoreThanOneKey),
    };
    if let Some(dek_info) = block.legacy_encryption() {
        let plain = Secret::new(decrypt_legacy(block, dek_info, password)?);
        return match block.label.as_str() {
            "EC PRIVATE KEY" => PrivateKey::from_sec1_der(plain.expose()),
            "RSA PRIVATE KEY" => PrivateKey::from_pkcs1_der(plain.expose()),
            other => Err(CryptoError::BadPrivateKey(format!(
                "PEM block {} is a legacy encrypted `{other}`, which is not supported; convert it to PKCS#8 with `openssl pkcs8 -topk8 -v2 aes-256-cbc`",
                block.index
            ))),
        };
    }
    let der = block.decode()?;
    if let Some(scheme) = pbes1_scheme(&der) {
        return Err(CryptoError::BadPrivateKey(format!(
            "it is encrypted with {scheme} (PBES1, what `openssl pkcs8 -topk8 -v1` writes), an old scheme that is not supported; re-encrypt it with PBES2: `openssl pkcs8 -topk8 -v2 aes-256-cbc -in OLD -out NEW`"
        )));
    }
    let info = pkcs8::EncryptedPrivateKeyInfo::from_der(&der).map_err(bad_key)?;
    let plain = info
        .decrypt(password.expose().as_bytes())
        .map_err(|_| {
            CryptoError::BadPrivateKey(
                "it does not decrypt with the password given (wrong password, or an encryption scheme other than PBES2)".into(),
            )
        })?;
    PrivateKey::from_pkcs8_der(plain.as_bytes())
}

/// The PBES1 or PKCS#12 PBE scheme (RFC 8018 A.3, RFC 7292 appendix C)
/// of an `EncryptedPrivateKeyInfo`, by name; `None` for any other.
fn pbes1_scheme(der: &[u8]) -> Option<&'static str> {
    let oid = element_at(der, &[0, 0])?
        .decode_as::<ObjectIdentifier>()
        .ok()?;
    Some(match oid.to_string().as_str() {
        "1.2.840.113549.1.5.1" => "pbeWithMD2AndDES-CBC",
        "1.2.840.113549.1.5.3" => "pbeWithMD5AndDES-CBC",
        "1.2.840.113549.1.5.4" => "pbeWithMD2AndRC2-CBC",
        "1.2.840.113549.1.5.6" => "pbeWithMD5AndRC2-CBC",
        "1.2.840.113549.1.5.10" => "pbeWithSHA1AndDES-CBC",
        "1.2.840.113549.1.5.11" => "pbeWithSHA1AndRC2-CBC",
        "1.2.840.113549.1.12.1.1" => "pbeWithSHAAnd128BitRC4",
        "1.2.840.113549.1.12.1.2" => "pbeWithSHAAnd40BitRC4",
        "1.2.840.113549.1.12.1.3" => "pbeWithSHAAnd3-KeyTripleDES-CBC",
        "1.2.840.113549.1.12.1.4" => "pbeWithSHAAnd2-KeyTripleDES-CBC",
        "1.2.840.113549.1.12.1.5" => "pbeWithSHAAnd128BitRC2-CBC",
        "1.2.840.113549.1.12.1.6" => "pbeWithSHAAnd40BitRC2-CBC",
        _ => return None,
    })
}

/// Decrypts a legacy encrypted PEM key (`Proc-Type: 4,ENCRYPTED`,
/// `DEK-Info: CIPHER,IV`), as `openssl ec -aes256` and `openssl rsa -des3`
/// write it: the key is OpenSSL's `EVP_BytesToKey` with MD5, one round,
/// over the password and the IV's first 8 bytes; the cipher CBC with
/// PKCS#7 padding.
fn decrypt_legacy(
    block: &pem::Block,
    dek_info: &str,
    password: &Secret<String>,
) -> Result<Vec<u8>, CryptoError> {
    use cbc::cipher::block_padding::Pkcs7;
    use cbc::cipher::{BlockDecryptMut, KeyIvInit};
    use md5::{Digest, Md5};

    let (cipher, iv_hex) = dek_info.split_once(',').unwrap_or((dek_info, ""));
    let cipher = cipher.trim().to_ascii_uppercase();
    let key_len = match cipher.as_str() {
        "AES-128-CBC" => 16,
        "AES-192-CBC" | "DES-EDE3-CBC" => 24,
        "AES-256-CBC" => 32,
        other => {
            return Err(CryptoError::BadPrivateKey(format!(
                "PEM block {} is a legacy encrypted key (`Proc-Type: 4,ENCRYPTED`) with the cipher `{}`, which is not supported (AES-128/192/256-CBC and DES-EDE3-CBC are); convert it to PKCS#8 with `openssl pkcs8 -topk8 -v2 aes-256-cbc`",
                block.index,
                other.chars().take(32).flat_map(char::escape_default).collect::<String>()
            )))
        }
    };
    let iv_len = if cipher == "DES-EDE3-CBC" { 8 } else { 16 };
    let iv = hex_bytes(iv_hex.trim())
        .filter(|iv| iv.len() == iv_len)
        .ok_or_else(|| {
            CryptoError::BadPrivateKey(format!(
                "PEM block {}: its DEK-Info IV is not {iv_len} bytes of hex",
                block.index
            ))
        })?;
    let salt = iv.get(..8).unwrap_or_default();
    let mut key = Secret::new(Vec::with_capacity(key_len + 16));
    let mut last: Vec<u8> = Vec::new();
    while key.expose().len() < key_len {
        let mut md5 = Md5::new();
        md5.update(&last);
        md5.update(password.expose().as_bytes());
        md5.update(salt);
        last = md5.finalize().to_vec();
        key = Secret::new([key.expose().as_slice(), &last].concat());
    }
    let key = Secret::new(key.expose().get(..key_len).unwrap_or_default().to_vec());
    let data = block.decode_encrypted()?;
    let wrong = || {
        CryptoError::BadPrivateKey(
            "it does not decrypt with the password given (a legacy encrypted PEM key); check the password".into(),
        )
    };
    let k = key.expose();
    let plain = match key_len {
        16 => cbc::Decryptor::<aes::Aes128>::new_from_slices(k, &iv)
            .map_err(|_| wrong())?
            .decrypt_padded_vec_mut::<Pkcs7>(&data),
        32 => cbc::Decryptor::<aes::Aes256>::new_from_slices(k, &iv)
            .map_err(|_| wrong())?
            .decrypt_padded_vec_mut::<Pkcs7>(&data),
        _ if cipher == "DES-EDE3-CBC" => cbc::Decryptor::<des::TdesEde3>::new_from_slices(k, &iv)
            .map_err(|_| wrong())?
            .decrypt_padded_vec_mut::<Pkcs7>(&data),
        _ => cbc::Decryptor::<aes::Aes192>::new_from_slices(k, &iv)
            .map_err(|_| wrong())?
            .decrypt_padded_vec_mut::<Pkcs7>(&data),
    }
    .map_err(|_| wrong())?;
    // A wrong password gives valid padding about once in 256 tries: the
    // DER is what tells.
    if AnyRef::from_der(&plain).is_err() {
        return Err(wrong());
    }
    Ok(plain)
}

fn hex_bytes(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Whether a private key belongs to a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyMatch {
    Matches,
    DoesNotMatch,
    /// The key does not carry what the comparison needs; the reason says
    /// what.
    CannotTell(String),
}

/// Compare the public half of `key` with the certificate's public key.
pub fn key_matches_cert(key: &PrivateKey, cert: &CertInfo) -> KeyMatch {
    let Ok(spki) = SubjectPublicKeyInfoRef::from_der(&cert.spki_der) else {
        return KeyMatch::CannotTell("the certificate's public key does not parse".into());
    };
    let Ok(info) = pkcs8::PrivateKeyInfo::from_der(key.pkcs8.expose()) else {
        return KeyMatch::CannotTell("the private key does not parse".into());
    };
    let Some(cert_public) = spki.subject_public_key.as_bytes() else {
        return KeyMatch::CannotTell("the certificate's public key does not parse".into());
    };
    let is_rsa = |oid: ObjectIdentifier| matches!(oid, RSA_ENCRYPTION | ID_RSASSA_PSS);
    match (info.algorithm.oid, spki.algorithm.oid) {
        (k, c) if is_rsa(k) && is_rsa(c) => {
            let (Some((n, e)), Ok(public)) =
                (key.rsa_public(), pkcs1::RsaPublicKey::from_der(cert_public))
            else {
                return KeyMatch::CannotTell("the RSA key does not parse".into());
            };
            matched(n == public.modulus.as_bytes() && e == public.public_exponent.as_bytes())
        }
        (ID_EC_PUBLIC_KEY, ID_EC_PUBLIC_KEY) => {
            if key.algorithm != cert.key {
                return KeyMatch::DoesNotMatch;
            }
            let Ok(ec) = sec1::EcPrivateKey::from_der(info.private_key) else {
                return KeyMatch::CannotTell("the EC key does not parse".into());
            };
            match ec.public_key {
                Some(point) => matched(same_ec_point(point, cert_public)),
                None => KeyMatch::CannotTell("the EC key does not carry its public key".into()),
            }
        }
        (ID_ED_25519, ID_ED_25519) => match info.public_key {
            Some(public) => matched(public == cert_public),
            None => KeyMatch::CannotTell(
                "the ED25519 key does not carry its public key (PKCS#8 v1)".into(),
            ),
        },
        (k, c) if k == c => {
            KeyMatch::CannotTell(format!("keys of algorithm {k} cannot be compared"))
        }
        _ => KeyMatch::DoesNotMatch,
    }
}

fn matched(same: bool) -> KeyMatch {
    if same {
        KeyMatch::Matches
    } else {
        KeyMatch::DoesNotMatch
    }
}

/// SEC1 points: equal bytes, or the same point once compressed
/// (`02`/`03` || x) and once uncompressed (`04` || x || y), where the
/// prefix's low bit is the parity of y.
fn same_ec_point(a: &[u8], b: &[u8]) -> bool {
    fn compressed_is(c: &[u8], u: &[u8]) -> bool {
        let n = c.len().saturating_sub(1);
        n > 0
            && u.len() == 1 + 2 * n
            && c.get(1..) == u.get(1..=n)
            && c.first().map(|p| p & 1) == u.last().map(|y| y & 1)
    }
    if a == b {
        return true;
    }
    match (a.first(), b.first()) {
        (Some(0x04), Some(0x02 | 0x03)) => compressed_is(b, a),
        (Some(0x02 | 0x03), Some(0x04)) => compressed_is(a, b),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::pem;
    use crate::crypto::test_support::Workdir;
    use crate::crypto::x509::tests::{assert_no_key_text, cert, material};

    fn key(dir: &Workdir, name: &str) -> PrivateKey {
        parse_private_key_pem(&dir.read(name)).unwrap()
    }

    #[test]
    fn keys_in_every_pem_form_match_their_certificate() {
        let dir = material("forms");
        dir.key("ec384.key", "ec384");
        for kind in ["rsa", "ec"] {
            let pkcs8 = format!("{kind}.key");
            let traditional = format!("{kind}.trad.key");
            dir.traditional(&pkcs8, &traditional);
            let own = cert(&dir, &format!("{kind}.pem"));
            let other = cert(&dir, if kind == "rsa" { "ec.pem" } else { "rsa.pem" });
            for form in [&pkcs8, &traditional] {
                let text = dir.read(form);
                let key = parse_private_key_pem(&text).unwrap();
                assert_eq!(key.algorithm(), &own.key, "{form}");
                assert_eq!(key_matches_cert(&key, &own), KeyMatch::Matches, "{form}");
                assert_eq!(
                    key_matches_cert(&key, &other),
                    KeyMatch::DoesNotMatch,
                    "{form}"
                );
                // Whatever the form, the key comes out as OpenSSL's PKCS#8.
                assert_eq!(key.to_pem().expose().as_bytes(), dir.read(&pkcs8), "{form}");
                let debug = format!("{key:?}");
                assert!(debug.starts_with("PrivateKey { algorithm: "), "{debug}");
                assert_no_key_text(&debug, &text);
            }
        }
        let first = traditional_label(&dir.read("rsa.trad.key"));
        assert_eq!(first, "-----BEGIN RSA PRIVATE KEY-----");
        assert_eq!(
            traditional_label(&dir.read("ec.trad.key")),
            "-----BEGIN EC PRIVATE KEY-----"
        );

        // Another key of the same type, and a key on another curve.
        dir.key("rsa2.key", "rsa1024");
        assert_eq!(
            key_matches_cert(&key(&dir, "rsa2.key"), &cert(&dir, "rsa.pem")),
            KeyMatch::DoesNotMatch
        );
        assert_eq!(
            key_matches_cert(&key(&dir, "ca.key"), &cert(&dir, "ec.pem")),
            KeyMatch::DoesNotMatch
        );
        let p384 = key(&dir, "ec384.key");
        assert_eq!(p384.algorithm(), &KeyAlgorithm::EcP384);
        assert_eq!(
            key_matches_cert(&p384, &cert(&dir, "ec.pem")),
            KeyMatch::DoesNotMatch
        );
    }

    fn traditional_label(text: &[u8]) -> String {
        String::from_utf8_lossy(text)
            .lines()
            .next()
            .unwrap_or_default()
            .to_owned()
    }

    #[test]
    fn legacy_encrypted_pem_keys_open_with_their_password() {
        let dir = material("legacy-enc");
        dir.key("ec384.key", "ec384");
        let password = Secret::new("pässwörd 1".to_string());
        for (key, command, cipher) in [
            ("ec.key", "ec", "-aes256"),
            ("ec.key", "ec", "-aes128"),
            ("ec384.key", "ec", "-aes192"),
            ("ec.key", "ec", "-des3"),
            ("rsa.key", "rsa", "-aes256"),
        ] {
            let out = format!("{key}{cipher}.pem");
            let mut args = vec![
                command,
                "-in",
                key,
                cipher,
                "-passout",
                "pass:pässwörd 1",
                "-out",
                &out,
            ];
            if command == "rsa" {
                args.push("-traditional");
            }
            dir.openssl(&args);
            let text = dir.read(&out);
            assert!(String::from_utf8_lossy(&text).contains("Proc-Type: 4,ENCRYPTED"));
            let opened = parse_private_key_pem_with_password(&text, Some(&password))
                .unwrap_or_else(|e| panic!("{out}: {e}"));
            assert_eq!(opened.to_pem().expose().as_bytes(), dir.read(key), "{out}");
            // Without a password: asked for; with a wrong one: refused
            // as such, never as malformed.
            assert_eq!(
                parse_private_key_pem(&text).unwrap_err(),
                CryptoError::EncryptedKey
            );
            let wrong = Secret::new("wrong".to_string());
            let err = parse_private_key_pem_with_password(&text, Some(&wrong)).unwrap_err();
            assert!(
                err.to_string()
                    .contains("does not decrypt with the password given"),
                "{out}: {err}"
            );
        }
        // A cipher it does not know is named.
        let text = String::from_utf8(dir.read("ec.key-aes256.pem"))
            .unwrap()
            .replace("AES-256-CBC", "CAMELLIA-256-CBC");
        let err = parse_private_key_pem_with_password(text.as_bytes(), Some(&password))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("with the cipher `CAMELLIA-256-CBC`, which is not supported"),
            "{err}"
        );
    }

    #[test]
    fn a_pbes1_pkcs8_key_is_named_as_such() {
        let dir = material("pbes1");
        for (scheme, name) in [
            ("PBE-SHA1-3DES", "pbeWithSHAAnd3-KeyTripleDES-CBC"),
            ("PBE-SHA1-2DES", "pbeWithSHAAnd2-KeyTripleDES-CBC"),
        ] {
            let out = format!("{scheme}.pem");
            dir.openssl(&[
                "pkcs8", "-topk8", "-v1", scheme, "-in", "ec.key", "-passout", "pass:pw", "-out",
                &out,
            ]);
            let err = parse_private_key_pem_with_password(
                &dir.read(&out),
                Some(&Secret::new("pw".to_string())),
            )
            .unwrap_err()
            .to_string();
            assert!(
                err.contains(&format!("encrypted with {name} (PBES1")),
                "{err}"
            );
            assert!(!err.contains("DER"), "{err}");
        }
    }

    #[test]
    fn ec_keys_without_or_with_compressed_public_points() {
        let dir = material("ec-forms");
        let cert = cert(&dir, "ec.pem");
        dir.openssl(&["ec", "-in", "ec.key", "-no_public", "-out", "nopub.key"]);
        let key = parse_private_key_pem(&dir.read("nopub.key")).unwrap();
        assert_eq!(
            key_matches_cert(&key, &cert),
            KeyMatch::CannotTell("the EC key does not carry its public key".into())
        );
        dir.openssl(&[
            "ec",
            "-in",
            "ec.key",
            "-conv_form",
            "compressed",
            "-out",
            "comp.key",
        ]);
        let key = parse_private_key_pem(&dir.read("comp.key")).unwrap();
        assert_eq!(key_matches_cert(&key, &cert), KeyMatch::Matches);
        dir.openssl(&[
            "ec",
            "-in",
            "ca.key",
            "-conv_form",
            "compressed",
            "-out",
            "comp2.key",
        ]);
        let other = parse_private_key_pem(&dir.read("comp2.key")).unwrap();
        assert_eq!(key_matches_cert(&other, &cert), KeyMatch::DoesNotMatch);

        // `openssl ecparam -genkey` writes the parameters first.
        let text = dir.openssl(&["ecparam", "-name", "prime256v1", "-genkey"]);
        assert!(String::from_utf8_lossy(&text).starts_with("-----BEGIN EC PARAMETERS-----"));
        assert_eq!(
            parse_private_key_pem(&text).unwrap().algorithm(),
            &KeyAlgorithm::EcP256
        );
    }

    #[test]
    fn ed25519_keys_match_only_when_they_carry_their_public_key() {
        let dir = Workdir::new("ed25519");
        dir.key("ed.key", "ed25519");
        dir.ca("ed.key", "ed.pem", "/CN=ed", 30);
        let cert = cert(&dir, "ed.pem");
        assert_eq!(cert.key, KeyAlgorithm::Ed25519);
        let v1 = key(&dir, "ed.key");
        assert_eq!(v1.algorithm(), &KeyAlgorithm::Ed25519);
        assert!(matches!(
            key_matches_cert(&v1, &cert),
            KeyMatch::CannotTell(_)
        ));

        // PKCS#8 v2 (RFC 5958) with the public key: comparable.
        let public = dir.openssl(&["pkey", "-in", "ed.key", "-pubout", "-outform", "DER"]);
        let public = &public[public.len() - 32..];
        let v1_der = v1.pkcs8_der().expose();
        let info = pkcs8::PrivateKeyInfo::from_der(v1_der).unwrap();
        let v2 = pkcs8::PrivateKeyInfo {
            public_key: Some(public),
            ..info
        };
        let v2 = PrivateKey::from_pkcs8_der(&v2.to_der().unwrap()).unwrap();
        assert_eq!(key_matches_cert(&v2, &cert), KeyMatch::Matches);
        let other = [7u8; 32];
        let wrong = pkcs8::PrivateKeyInfo {
            public_key: Some(&other),
            ..info
        };
        let wrong = PrivateKey::from_pkcs8_der(&wrong.to_der().unwrap()).unwrap();
        assert_eq!(key_matches_cert(&wrong, &cert), KeyMatch::DoesNotMatch);
        // An ED25519 key is no RSA key.
        let rsa = Workdir::new("ed-rsa");
        rsa.key("rsa.key", "rsa1024");
        assert_eq!(
            key_matches_cert(&key(&rsa, "rsa.key"), &cert),
            KeyMatch::DoesNotMatch
        );
    }

    #[test]
    fn private_key_pem_is_refused_when_encrypted_missing_or_ambiguous() {
        let dir = material("key-bad");
        dir.openssl(&[
            "pkey", "-in", "ec.key", "-aes256", "-passout", "pass:pw", "-out", "enc.key",
        ]);
        dir.openssl(&[
            "pkey",
            "-in",
            "rsa.key",
            "-traditional",
            "-aes256",
            "-passout",
            "pass:pw",
            "-out",
            "enc-trad.key",
        ]);
        for name in ["enc.key", "enc-trad.key"] {
            let err = parse_private_key_pem(&dir.read(name)).unwrap_err();
            assert_eq!(err, CryptoError::EncryptedKey, "{name}");
            assert_eq!(
                err.to_string(),
                "the key is encrypted; give an unencrypted key"
            );
        }

        assert_eq!(
            parse_private_key_pem(&dir.read("ec.pem")).unwrap_err(),
            CryptoError::NoPrivateKey
        );
        assert_eq!(
            parse_private_key_pem(b"").unwrap_err(),
            CryptoError::NoPrivateKey
        );

        let mut two = dir.read("ec.key");
        two.extend(dir.read("rsa.key"));
        assert_eq!(
            parse_private_key_pem(&two).unwrap_err(),
            CryptoError::MoreThanOneKey
        );

        // A key with a certificate in the same file is fine.
        let mut combined = dir.read("ec.pem");
        combined.extend(dir.read("ec.key"));
        assert_eq!(
            parse_private_key_pem(&combined).unwrap().algorithm(),
            &KeyAlgorithm::EcP256
        );

        // Damaged key DER: the message has a parser position, no key text.
        let text = String::from_utf8(dir.read("rsa.key")).unwrap();
        let mut lines: Vec<&str> = text.lines().collect();
        lines.remove(3);
        let damaged = lines.join("\n");
        let err = parse_private_key_pem(damaged.as_bytes()).unwrap_err();
        assert!(
            matches!(
                err,
                CryptoError::BadPrivateKey(_) | CryptoError::BadPem { .. }
            ),
            "{err}"
        );
        assert_no_key_text(&format!("{err} {err:?}"), text.as_bytes());

        let err = parse_private_key_pem(
            b"-----BEGIN DSA PRIVATE KEY-----\nAAAA\n-----END DSA PRIVATE KEY-----\n",
        )
        .unwrap_err();
        assert!(err.to_string().contains("not supported"), "{err}");

        // Wrong inner structure behind a right label.
        let cert_der = dir.openssl(&["x509", "-in", "ec.pem", "-outform", "DER"]);
        for label in ["PRIVATE KEY", "EC PRIVATE KEY", "RSA PRIVATE KEY"] {
            let text = pem::encode(label, &cert_der);
            let err = parse_private_key_pem(text.as_bytes()).unwrap_err();
            assert!(
                matches!(err, CryptoError::BadPrivateKey(_)),
                "{label}: {err}"
            );
        }
    }
}
