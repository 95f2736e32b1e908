//! The ciphers of the encryption schemes: the legacy PKCS#12 PBE ones
//! ([`LegacyCipher`]), PBES1 with SHA-1 ([`Pbes1Cipher`]) and PBES2's
//! ([`Pbes2Cipher`], Camellia-CBC included). Each names itself as OpenSSL
//! does, says when it is weak, and decrypts with a derived key.

use cbc::cipher::block_padding::Pkcs7;
use cbc::cipher::{BlockDecryptMut, InnerIvInit, KeyIvInit};
use der::asn1::ObjectIdentifier;
use der::ErrorKind;
use pkcs5::pbes2::{self, Kdf};
use x509_cert::spki::AlgorithmIdentifierRef;

use super::error::{malformed, P12Error};
use super::kdf::pbkdf2_hmac;
use crate::secret::Secret;

/// The two legacy PKCS#12 PBE ciphers in use, and their siblings that
/// cost nothing more (RFC 7292 appendix C).
#[derive(Clone, Copy)]
pub(super) enum LegacyCipher {
    Rc2_40,
    Rc2_128,
    TripleDes3Key,
    TripleDes2Key,
}

impl LegacyCipher {
    pub(super) fn from_oid(oid: ObjectIdentifier) -> Option<Self> {
        match oid {
            pkcs12::PKCS_12_PBEWITH_SHAAND40_BIT_RC2_CBC => Some(Self::Rc2_40),
            pkcs12::PKCS_12_PBE_WITH_SHAAND128_BIT_RC2_CBC => Some(Self::Rc2_128),
            pkcs12::PKCS_12_PBE_WITH_SHAAND3_KEY_TRIPLE_DES_CBC => Some(Self::TripleDes3Key),
            pkcs12::PKCS_12_PBE_WITH_SHAAND2_KEY_TRIPLE_DES_CBC => Some(Self::TripleDes2Key),
            _ => None,
        }
    }

    /// OpenSSL's names.
    pub(super) fn name(self) -> &'static str {
        match self {
            Self::Rc2_40 => "pbeWithSHA1And40BitRC2-CBC",
            Self::Rc2_128 => "pbeWithSHA1And128BitRC2-CBC",
            Self::TripleDes3Key => "pbeWithSHA1And3-KeyTripleDES-CBC",
            Self::TripleDes2Key => "pbeWithSHA1And2-KeyTripleDES-CBC",
        }
    }

    /// Why the cipher is weak, when it is: fewer than 112 bits of key.
    pub(super) fn weakness(self) -> Option<&'static str> {
        match self {
            Self::Rc2_40 => Some("40-bit RC2"),
            Self::TripleDes2Key => Some("two-key triple DES (80-bit security)"),
            Self::Rc2_128 | Self::TripleDes3Key => None,
        }
    }

    pub(super) fn key_len(self) -> usize {
        match self {
            Self::Rc2_40 => 5,
            Self::Rc2_128 | Self::TripleDes2Key => 16,
            Self::TripleDes3Key => 24,
        }
    }

    pub(super) fn decrypt(self, key: &[u8], iv: &[u8], data: &[u8]) -> Option<Vec<u8>> {
        match self {
            Self::Rc2_40 | Self::Rc2_128 => {
                let bits = key.len() * 8;
                let cipher = rc2::Rc2::new_with_eff_key_len(key, bits);
                cbc::Decryptor::<rc2::Rc2>::inner_iv_slice_init(cipher, iv)
                    .ok()?
                    .decrypt_padded_vec_mut::<Pkcs7>(data)
                    .ok()
            }
            Self::TripleDes3Key => cbc::Decryptor::<des::TdesEde3>::new_from_slices(key, iv)
                .ok()?
                .decrypt_padded_vec_mut::<Pkcs7>(data)
                .ok(),
            Self::TripleDes2Key => cbc::Decryptor::<des::TdesEde2>::new_from_slices(key, iv)
                .ok()?
                .decrypt_padded_vec_mut::<Pkcs7>(data)
                .ok(),
        }
    }
}

/// The PBES1 schemes with SHA-1 (RFC 8018 6.1); those with MD2 and MD5
/// would need a digest crate this tool does not have.
#[derive(Clone, Copy)]
pub(super) enum Pbes1Cipher {
    Des,
    Rc2,
}

impl Pbes1Cipher {
    pub(super) fn from_oid(oid: ObjectIdentifier) -> Option<Self> {
        match oid {
            pkcs5::pbes1::PBE_WITH_SHA1_AND_DES_CBC_OID => Some(Self::Des),
            pkcs5::pbes1::PBE_WITH_SHA1_AND_RC2_CBC_OID => Some(Self::Rc2),
            _ => None,
        }
    }

    /// OpenSSL's names.
    pub(super) fn name(self) -> &'static str {
        match self {
            Self::Des => "pbeWithSHA1AndDES-CBC",
            Self::Rc2 => "pbeWithSHA1AndRC2-CBC",
        }
    }

    /// Both have 64-bit keys.
    pub(super) fn weakness(self) -> &'static str {
        match self {
            Self::Des => "single DES (56-bit key)",
            Self::Rc2 => "64-bit RC2",
        }
    }

    pub(super) fn decrypt(self, key: &[u8], iv: &[u8], data: &[u8]) -> Option<Vec<u8>> {
        match self {
            Self::Des => cbc::Decryptor::<des::Des>::new_from_slices(key, iv)
                .ok()?
                .decrypt_padded_vec_mut::<Pkcs7>(data)
                .ok(),
            Self::Rc2 => {
                let cipher = rc2::Rc2::new_with_eff_key_len(key, 64);
                cbc::Decryptor::<rc2::Rc2>::inner_iv_slice_init(cipher, iv)
                    .ok()?
                    .decrypt_padded_vec_mut::<Pkcs7>(data)
                    .ok()
            }
        }
    }
}

/// OpenSSL's OIDs for Camellia in CBC mode (RFC 3657); not in const-oid
/// 0.9's database.
const CAMELLIA_128_CBC: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.392.200011.61.1.1.1.2");
const CAMELLIA_192_CBC: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.392.200011.61.1.1.1.3");
const CAMELLIA_256_CBC: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.392.200011.61.1.1.1.4");

/// The cipher of a PBES2 scheme.
#[derive(Clone, Copy)]
pub(super) enum Pbes2Cipher<'a> {
    /// What `pkcs5` decrypts: AES-128/192/256-CBC, DES-EDE3-CBC, DES-CBC.
    Pkcs5(pbes2::EncryptionScheme<'a>),
    /// Camellia-CBC; the key length in bytes and the IV.
    Camellia { key_len: usize, iv: &'a [u8] },
}

impl<'a> Pbes2Cipher<'a> {
    pub(super) fn from_algorithm(alg: AlgorithmIdentifierRef<'a>) -> Result<Self, P12Error> {
        let camellia = match alg.oid {
            CAMELLIA_128_CBC => Some(16),
            CAMELLIA_192_CBC => Some(24),
            CAMELLIA_256_CBC => Some(32),
            _ => None,
        };
        if let Some(key_len) = camellia {
            let iv = alg
                .parameters
                .ok_or_else(|| P12Error::Malformed("Camellia-CBC without its IV".into()))?
                .decode_as::<der::asn1::OctetStringRef<'a>>()
                .map_err(malformed("Camellia-CBC's IV"))?
                .as_bytes();
            if iv.len() != 16 {
                return Err(P12Error::Malformed(format!(
                    "a Camellia-CBC IV of {} bytes (16 expected)",
                    iv.len()
                )));
            }
            return Ok(Self::Camellia { key_len, iv });
        }
        pbes2::EncryptionScheme::try_from(alg)
            .map(Self::Pkcs5)
            .map_err(|e| match e.kind() {
                ErrorKind::OidUnknown { oid } => {
                    P12Error::UnsupportedAlgorithm(format!("PBES2 with cipher {oid}"))
                }
                _ => malformed("the PBES2 cipher's parameters")(e),
            })
    }

    /// OpenSSL's names.
    pub(super) fn name(self) -> &'static str {
        match self {
            Self::Pkcs5(pbes2::EncryptionScheme::Aes128Cbc { .. }) => "AES-128-CBC",
            Self::Pkcs5(pbes2::EncryptionScheme::Aes192Cbc { .. }) => "AES-192-CBC",
            Self::Pkcs5(pbes2::EncryptionScheme::Aes256Cbc { .. }) => "AES-256-CBC",
            Self::Pkcs5(pbes2::EncryptionScheme::DesEde3Cbc { .. }) => "DES-EDE3-CBC",
            Self::Pkcs5(pbes2::EncryptionScheme::DesCbc { .. }) => "DES-CBC",
            Self::Camellia { key_len: 16, .. } => "CAMELLIA-128-CBC",
            Self::Camellia { key_len: 24, .. } => "CAMELLIA-192-CBC",
            Self::Camellia { .. } => "CAMELLIA-256-CBC",
            // `from_algorithm` makes none: pkcs5 0.7 has no other cipher.
            Self::Pkcs5(_) => "another cipher",
        }
    }

    pub(super) fn key_len(self) -> usize {
        match self {
            Self::Pkcs5(scheme) => scheme.key_size(),
            Self::Camellia { key_len, .. } => key_len,
        }
    }

    /// Why the cipher is weak, when it is.
    pub(super) fn weakness(self) -> Option<&'static str> {
        match self {
            Self::Pkcs5(pbes2::EncryptionScheme::DesCbc { .. }) => Some("single DES (56-bit key)"),
            _ => None,
        }
    }

    pub(super) fn decrypt(
        self,
        kdf: &pbes2::Pbkdf2Params<'_>,
        password: &[u8],
        data: &[u8],
    ) -> Option<Secret<Vec<u8>>> {
        match self {
            Self::Pkcs5(encryption) => pbes2::Parameters {
                kdf: Kdf::Pbkdf2(*kdf),
                encryption,
            }
            .decrypt(password, data)
            .ok()
            .map(Secret::new),
            Self::Camellia { key_len, iv } => {
                if kdf
                    .key_length
                    .is_some_and(|len| usize::from(len) != key_len)
                {
                    return None;
                }
                let key = Secret::new(pbkdf2_hmac(kdf, password, key_len)?);
                let key = key.expose().as_slice();
                match key_len {
                    16 => camellia_cbc::<camellia::Camellia128>(key, iv, data),
                    24 => camellia_cbc::<camellia::Camellia192>(key, iv, data),
                    _ => camellia_cbc::<camellia::Camellia256>(key, iv, data),
                }
                .map(Secret::new)
            }
        }
    }
}

fn camellia_cbc<C>(key: &[u8], iv: &[u8], data: &[u8]) -> Option<Vec<u8>>
where
    C: cbc::cipher::BlockDecrypt + cbc::cipher::BlockCipher + cbc::cipher::KeyInit,
{
    cbc::Decryptor::<C>::new_from_slices(key, iv)
        .ok()?
        .decrypt_padded_vec_mut::<Pkcs7>(data)
        .ok()
}
