//! An encrypted part decrypted: CMS `EncryptedData` read, the scheme's
//! parameters decoded, the key derivation paid for from the budget before
//! it runs, the scheme recorded. These are methods of the bag walk's
//! [`Contents`], which holds the password and the budget.

use cms::encrypted_data::EncryptedData;
use der::asn1::Any;
use der::{Decode, Encode, ErrorKind};
use hmac::digest::Digest;
use pkcs12::kdf::{derive_key, Pkcs12KeyType};
use pkcs12::pbe_params::Pkcs12PbeParams;
use pkcs5::pbes2::{self, Kdf, Pbkdf2Prf};
use sha1::Sha1;
use x509_cert::spki::{AlgorithmIdentifierOwned, AlgorithmIdentifierRef};

use super::bags::Contents;
use super::budget::{check_iterations, iterations_at};
use super::cipher::{LegacyCipher, Pbes1Cipher, Pbes2Cipher};
use super::error::{malformed, P12Error};
use super::kdf::{blocks, hash_size, Derivation, SHA1_SIZE};
use crate::secret::Secret;

/// CMS `EncryptedData` (RFC 5652 8), by the `cms` crate: the algorithm
/// and the ciphertext.
pub(super) fn encrypted_data(
    content: &Any,
) -> Result<(AlgorithmIdentifierOwned, Vec<u8>), P12Error> {
    let info = content
        .decode_as::<EncryptedData>()
        .map_err(malformed("an encrypted data content"))?
        .enc_content_info;
    let data = info.encrypted_content.ok_or_else(|| {
        P12Error::Malformed("an encrypted data content has no encrypted content".into())
    })?;
    Ok((info.content_enc_alg, data.into_bytes()))
}

/// A decrypted part, and why its cipher is weak, when it is.
pub(super) struct Decrypted {
    pub(super) plain: Secret<Vec<u8>>,
    pub(super) weak: Option<&'static str>,
}

impl Contents {
    pub(super) fn decrypt(
        &mut self,
        alg: &AlgorithmIdentifierOwned,
        data: &[u8],
    ) -> Result<Decrypted, P12Error> {
        let params = alg
            .parameters
            .as_ref()
            .ok_or_else(|| {
                P12Error::Malformed(format!("encryption {} has no parameters", alg.oid))
            })?
            .to_der()
            .map_err(malformed("encryption parameters"))?;
        if let Some(cipher) = LegacyCipher::from_oid(alg.oid) {
            // pkcs-12PbeParams { salt, iterations }
            let params = Pkcs12PbeParams::from_der(&params).map_err(|e| {
                iterations_at(&params, &[1])
                    .unwrap_or_else(|| malformed("PKCS#12 PBE parameters")(e))
            })?;
            let iterations = check_iterations(i128::from(params.iterations))?;
            let salt = params.salt.as_bytes();
            let pw = self.password.bmp.expose();
            let cost = |len| {
                Derivation::Pkcs12.cost(
                    SHA1_SIZE,
                    iterations.unsigned_abs().into(),
                    salt.len(),
                    pw.len(),
                    len,
                )
            };
            self.budget
                .spend(cost(cipher.key_len()).saturating_add(cost(8)))?;
            let key = Secret::new(derive_key::<Sha1>(
                pw,
                salt,
                Pkcs12KeyType::EncryptionKey,
                iterations,
                cipher.key_len(),
            ));
            let iv = derive_key::<Sha1>(pw, salt, Pkcs12KeyType::Iv, iterations, 8);
            self.record(cipher.name().into());
            let plain = cipher
                .decrypt(key.expose(), &iv, data)
                .map(Secret::new)
                .ok_or(P12Error::DecryptionFailed)?;
            return Ok(Decrypted {
                plain,
                weak: cipher.weakness(),
            });
        }
        if alg.oid == pbes2::PBES2_OID {
            return self.decrypt_pbes2(&params, data);
        }
        if let Some(cipher) = Pbes1Cipher::from_oid(alg.oid) {
            return self.decrypt_pbes1(cipher, &params, data);
        }
        Err(P12Error::UnsupportedAlgorithm(match alg.oid {
            pkcs12::PKCS_12_PBE_WITH_SHAAND128_BIT_RC4 => "pbeWithSHA1And128BitRC4".into(),
            pkcs12::PKCS_12_PBE_WITH_SHAAND40_BIT_RC4 => "pbeWithSHA1And40BitRC4".into(),
            other => format!("encryption {other}"),
        }))
    }

    /// PBES1 (RFC 8018 6.1) with SHA-1, which `openssl pkcs12 -export
    /// -legacy -keypbe PBE-SHA1-DES` writes: PBKDF1 makes 16 bytes, the
    /// DES or RC2 key and the IV, from the password's own bytes (as
    /// OpenSSL's `PKCS5_PBE_keyivgen` takes them).
    fn decrypt_pbes1(
        &mut self,
        cipher: Pbes1Cipher,
        params: &[u8],
        data: &[u8],
    ) -> Result<Decrypted, P12Error> {
        // PBEParameter { salt, iterationCount }: the shape of PKCS#12's.
        let params = Pkcs12PbeParams::from_der(params).map_err(|e| {
            iterations_at(params, &[1]).unwrap_or_else(|| malformed("PBES1 parameters")(e))
        })?;
        let iterations = check_iterations(i128::from(params.iterations))?;
        let salt = params.salt.as_bytes();
        let password = self.password.utf8.expose();
        self.budget.spend(
            (2 + blocks(salt.len() as u64, 64) + blocks(password.len() as u64, 64))
                .saturating_add(iterations.unsigned_abs().into()),
        )?;
        // PBKDF1: T_1 = SHA-1(P || S), T_i = SHA-1(T_{i-1}).
        let mut t = Sha1::new()
            .chain_update(password)
            .chain_update(salt)
            .finalize();
        for _ in 1..iterations {
            t = Sha1::digest(t);
        }
        let derived = Secret::new(t.to_vec());
        let (key, iv) = derived.expose().split_at(8);
        self.record(cipher.name().into());
        let plain = cipher
            .decrypt(key, &iv[..8], data)
            .map(Secret::new)
            .ok_or(P12Error::DecryptionFailed)?;
        Ok(Decrypted {
            plain,
            weak: Some(cipher.weakness()),
        })
    }

    /// PBES2 (RFC 8018 6.2) with PBKDF2: the ciphers `pkcs5` knows, and
    /// Camellia-CBC, which OpenSSL writes too.
    fn decrypt_pbes2(&mut self, params: &[u8], data: &[u8]) -> Result<Decrypted, P12Error> {
        // PBES2-params { keyDerivationFunc, encryptionScheme }
        let parts = Vec::<AlgorithmIdentifierRef<'_>>::from_der(params)
            .map_err(malformed("PBES2 parameters"))?;
        let [kdf, scheme] = parts.as_slice() else {
            return Err(P12Error::Malformed(
                "PBES2 parameters do not name a key derivation and a cipher".into(),
            ));
        };
        let kdf = Kdf::try_from(*kdf).map_err(|e| match e.kind() {
            ErrorKind::OidUnknown { oid } => {
                P12Error::UnsupportedAlgorithm(format!("PBES2 with {oid}"))
            }
            // keyDerivationFunc { algorithm, PBKDF2-params { salt,
            // iterationCount, .. } }
            _ => iterations_at(params, &[0, 1, 1])
                .unwrap_or_else(|| malformed("PBES2 parameters")(e)),
        })?;
        // scrypt (whose cost parameters could ask for gigabytes) and
        // whatever comes next.
        let Kdf::Pbkdf2(pbkdf2) = &kdf else {
            return Err(P12Error::UnsupportedAlgorithm(format!(
                "PBES2 with {}",
                kdf.oid()
            )));
        };
        check_iterations(i128::from(pbkdf2.iteration_count))?;
        let (prf, hash) = match (pbkdf2.prf, hash_size(pbkdf2.prf)) {
            (Pbkdf2Prf::HmacWithSha1, Some(hash)) => ("HMAC-SHA1", hash),
            (Pbkdf2Prf::HmacWithSha224, Some(hash)) => ("HMAC-SHA224", hash),
            (Pbkdf2Prf::HmacWithSha256, Some(hash)) => ("HMAC-SHA256", hash),
            (Pbkdf2Prf::HmacWithSha384, Some(hash)) => ("HMAC-SHA384", hash),
            (Pbkdf2Prf::HmacWithSha512, Some(hash)) => ("HMAC-SHA512", hash),
            (other, _) => {
                return Err(P12Error::UnsupportedAlgorithm(format!(
                    "PBKDF2 with {}",
                    other.oid()
                )))
            }
        };
        let cipher = Pbes2Cipher::from_algorithm(*scheme)?;
        self.budget.spend(Derivation::Pbkdf2.cost(
            hash,
            pbkdf2.iteration_count.into(),
            pbkdf2.salt.len(),
            self.password.utf8.expose().len(),
            cipher.key_len(),
        ))?;
        self.record(format!("PBES2 (PBKDF2-{prf}, {})", cipher.name()));
        let password = self.password.utf8.expose();
        let plain = cipher
            .decrypt(pbkdf2, password, data)
            .ok_or(P12Error::DecryptionFailed)?;
        Ok(Decrypted {
            plain,
            weak: cipher.weakness(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::pkcs12::open;
    use crate::crypto::pkcs12::tests::{contents, export, material, secret};
    use crate::crypto::pkcs12::{MAX_ITERATIONS, MAX_WORK};
    use der::asn1::OctetString;
    use der::oid::db::rfc5911::ID_DATA;

    #[test]
    fn pbes2_with_triple_des_and_sha1() {
        let dir = material("pbes2-3des", "ec");
        let bytes = export(
            &dir,
            "pw",
            &[
                "-keypbe",
                "DES-EDE3-CBC",
                "-certpbe",
                "AES-128-CBC",
                "-macalg",
                "SHA1",
            ],
        );
        let p12 = open(&bytes, &secret("pw")).unwrap();
        assert_eq!(p12.mac.as_deref(), Some("HMAC-SHA1, 2048 iterations"));
        assert_eq!(
            p12.encryption,
            [
                "PBES2 (PBKDF2-HMAC-SHA256, AES-128-CBC)",
                "PBES2 (PBKDF2-HMAC-SHA256, DES-EDE3-CBC)"
            ]
        );
    }

    #[test]
    fn encrypted_data_gives_its_algorithm_and_ciphertext() {
        use cms::content_info::CmsVersion;
        use cms::enveloped_data::EncryptedContentInfo;
        let alg = AlgorithmIdentifierOwned {
            oid: pkcs12::PKCS_12_PBEWITH_SHAAND40_BIT_RC2_CBC,
            parameters: None,
        };
        let with = |content: Option<&[u8]>| EncryptedData {
            version: CmsVersion::V0,
            enc_content_info: EncryptedContentInfo {
                content_type: ID_DATA,
                content_enc_alg: alg.clone(),
                encrypted_content: content.map(|c| OctetString::new(c).unwrap()),
            },
            unprotected_attrs: None,
        };
        let any = Any::encode_from(&with(Some(b"ciphertext"))).unwrap();
        assert_eq!(
            encrypted_data(&any).unwrap(),
            (alg.clone(), b"ciphertext".to_vec())
        );
        let any = Any::encode_from(&with(None)).unwrap();
        assert_eq!(
            encrypted_data(&any).unwrap_err().to_string(),
            "not a valid PKCS#12 file: an encrypted data content has no encrypted content"
        );
        let any = Any::encode_from(&OctetString::new(&b"x"[..]).unwrap()).unwrap();
        assert!(matches!(
            encrypted_data(&any).unwrap_err(),
            P12Error::Malformed(_)
        ));
    }

    #[test]
    fn iteration_counts_too_large_for_their_type_are_named() {
        // The INTEGER 2^32 (five content bytes) fits neither pkcs12's i32
        // nor pkcs5's u32.
        let big = der::asn1::AnyRef::new(der::Tag::Integer, &[0x01, 0, 0, 0, 0]).unwrap();
        let salt = OctetString::new(vec![7u8; 8]).unwrap();
        let algorithm = |oid, params: Vec<Any>| AlgorithmIdentifierOwned {
            oid,
            parameters: Some(Any::encode_from(&params).unwrap()),
        };
        let too_many = P12Error::TooManyIterations {
            count: 1 << 32,
            max: MAX_ITERATIONS,
        };
        // pkcs-12PbeParams { salt, iterations }
        let legacy = algorithm(
            pkcs12::PKCS_12_PBE_WITH_SHAAND3_KEY_TRIPLE_DES_CBC,
            vec![Any::encode_from(&salt).unwrap(), big.into()],
        );
        let mut bundle = contents(Vec::new(), Vec::new());
        assert_eq!(
            bundle.decrypt(&legacy, &[0; 8]).err(),
            Some(too_many.clone())
        );
        // PBES2-params { { PBKDF2, { salt, iterationCount } }, cipher }
        let pbkdf2 = algorithm(
            pbes2::PBKDF2_OID,
            vec![Any::encode_from(&salt).unwrap(), big.into()],
        );
        let aes = AlgorithmIdentifierOwned {
            oid: pbes2::AES_256_CBC_OID,
            parameters: Some(Any::encode_from(&OctetString::new(vec![0u8; 16]).unwrap()).unwrap()),
        };
        let pbes2 = algorithm(
            pbes2::PBES2_OID,
            vec![
                Any::encode_from(&pbkdf2).unwrap(),
                Any::encode_from(&aes).unwrap(),
            ],
        );
        assert_eq!(bundle.decrypt(&pbes2, &[0; 16]).err(), Some(too_many));
        assert_eq!(bundle.budget.work, MAX_WORK, "nothing was derived");
    }
}
