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
//! hours. So a whole file gets one [`Budget`]: the hash compressions of
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

use cbc::cipher::block_padding::Pkcs7;
use cbc::cipher::{BlockDecryptMut, InnerIvInit, KeyIvInit};
use cms::encrypted_data::EncryptedData;
use der::asn1::{Any, BmpString, ObjectIdentifier, OctetString};
use der::oid::db::rfc5911::{ID_DATA, ID_ENCRYPTED_DATA, ID_ENVELOPED_DATA, ID_SIGNED_DATA};
use der::oid::db::rfc5912::{ID_MD_5, ID_SHA_1, ID_SHA_224, ID_SHA_256, ID_SHA_384, ID_SHA_512};
use der::{Decode, Encode, ErrorKind, Tagged};
use hmac::digest::core_api::BlockSizeUser;
use hmac::digest::{Digest, FixedOutputReset};
use hmac::{Hmac, Mac, SimpleHmac};
use pkcs12::authenticated_safe::AuthenticatedSafe;
use pkcs12::cert_type::CertBag;
use pkcs12::kdf::{derive_key, Pkcs12KeyType};
use pkcs12::mac_data::MacData;
use pkcs12::pbe_params::{EncryptedPrivateKeyInfo, Pkcs12PbeParams};
use pkcs12::pfx::Pfx;
use pkcs12::safe_bag::{SafeBag, SafeContents};
use pkcs5::pbes2::{self, Kdf, Pbkdf2Prf};
use sha1::Sha1;
use sha2::{Sha224, Sha256, Sha384, Sha512};
use x509_cert::attr::Attributes;
use x509_cert::spki::{AlgorithmIdentifierOwned, AlgorithmIdentifierRef};

use super::error::{check_der_shape, count_elements, der_detail, element_at, integer_value};
use super::private_key::{key_matches_cert, KeyMatch, PrivateKey};
use super::x509::{self, CertInfo};
use crate::secret::Secret;

/// PKCS#9 `localKeyId` (RFC 2985), which pairs a key with its
/// certificate. Written out: const-oid 0.9's database does not carry it.
const ID_LOCAL_KEY_ID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.21");

/// Most key-derivation iterations accepted, for the MAC and every
/// encryption. OpenSSL writes 2048 (1024 in older versions); a hostile
/// bundle asking for billions would hang the build.
pub const MAX_ITERATIONS: u32 = 1_000_000;

/// SafeContents bags may nest; real bundles never do more than once.
const MAX_NESTING: usize = 4;

/// What all the key derivations of one file may cost, the MAC's (tried
/// twice for an empty password) included, in SHA-256 compressions (about
/// 55 ns each here; a SHA-512 one counts 5). OpenSSL 3's defaults cost
/// about 10,000 (three derivations of 2048 iterations), `-legacy` about
/// 12,000, Java's keytool about 50,000 (10,000 iterations): this is 40
/// times keytool, and three derivations of 300,000 PBKDF2-SHA256
/// iterations. The worst accepted file opens in about a tenth of a second
/// on an idle machine (docs/crypto.md, "Work budget").
pub const MAX_WORK: u64 = 2_000_000;

/// Parts that must be decrypted (encrypted contents and shrouded key
/// bags). OpenSSL and keytool write 2.
pub const MAX_ENCRYPTED_PARTS: usize = 8;

/// Contents of the authenticated safe plus bags, nested ones included.
/// OpenSSL writes 2 contents and one bag per certificate and key.
pub const MAX_BAGS: usize = 64;

/// Certificate bags. A provisioning bundle holds the client certificate
/// and its CA chain: 2 to 4.
pub const MAX_CERTIFICATES: usize = 32;

/// A limit of [`Budget`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// [`MAX_WORK`].
    Work,
    /// [`MAX_ENCRYPTED_PARTS`].
    EncryptedParts,
    /// [`MAX_BAGS`].
    Bags,
    /// [`MAX_CERTIFICATES`].
    Certificates,
}

impl std::fmt::Display for Limit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Limit::Work => write!(
                f,
                "its key derivations cost more than {MAX_WORK} SHA-256 compressions in all \
                 (OpenSSL's defaults cost about 10000)"
            ),
            Limit::EncryptedParts => write!(
                f,
                "it holds more than {MAX_ENCRYPTED_PARTS} encrypted parts (OpenSSL writes 2)"
            ),
            Limit::Bags => write!(
                f,
                "it holds more than {MAX_BAGS} contents and bags (OpenSSL writes 2 \
                 contents and one bag per certificate and key)"
            ),
            Limit::Certificates => {
                write!(f, "it holds more than {MAX_CERTIFICATES} certificates")
            }
        }
    }
}

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

/// Why a bundle cannot be used. No message carries a password or a key
/// byte.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum P12Error {
    #[error("not a valid PKCS#12 file: {0}")]
    Malformed(String),

    #[error("the MAC does not verify: the password is wrong or the file is damaged")]
    WrongPassword,

    #[error(
        "an encrypted part does not decrypt with the password: the password is wrong \
         or the file is damaged"
    )]
    DecryptionFailed,

    #[error(
        "the bundle uses {0}, which is not supported; re-export it with \
         `openssl pkcs12 -export` (AES-256-CBC, SHA-256 MAC)"
    )]
    UnsupportedAlgorithm(String),

    #[error(
        "the bundle asks for {count} key-derivation iterations, more than the \
         {max} accepted; re-export it with `openssl pkcs12 -export` and its \
         default iteration count"
    )]
    TooManyIterations { count: i128, max: u32 },

    #[error(
        "the bundle asks for too much work: {0}; re-export it with `openssl pkcs12 \
         -export` and its default iteration counts, holding only the client \
         certificate, its key and the CA chain"
    )]
    OverBudget(Limit),

    #[error(
        "the password holds characters PKCS#12 cannot encode (outside the Basic \
         Multilingual Plane)"
    )]
    UnencodablePassword,

    #[error("the bundle holds no certificate; export it with the client certificate")]
    NoCertificate,

    #[error("the bundle holds no private key; export it with the client key")]
    NoPrivateKey,

    #[error("the bundle holds more than one private key; give one with only the client key")]
    MoreThanOneKey,

    #[error("no certificate in the bundle matches its private key")]
    KeyDoesNotMatch,

    #[error(
        "cannot tell which certificate belongs to the private key ({0}), and no \
         `localKeyId` attribute links them"
    )]
    CannotPairKey(String),
}

/// DER about to be decoded holds no SET too large to sort and not too
/// many values ([`check_der_shape`]): bag attributes and their values are
/// SETs.
fn sets_fit(der: &[u8]) -> Result<(), P12Error> {
    check_der_shape(der).map_err(P12Error::Malformed)
}

fn malformed(what: &str) -> impl Fn(der::Error) -> P12Error + '_ {
    move |e| P12Error::Malformed(format!("{what}: {}", der_detail(&e)))
}

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

/// The password in the two forms the schemes want. `Debug` shows nothing
/// of it (`Secret`).
#[derive(Debug)]
struct Password {
    /// BMPString bytes and the two terminating zero bytes, or nothing at
    /// all (the "absent password" form, tried only for an empty password).
    bmp: Secret<Vec<u8>>,
    utf8: Secret<Vec<u8>>,
}

impl Password {
    fn candidates(password: &Secret<String>) -> Result<Vec<Password>, P12Error> {
        let text = password.expose();
        let bmp = BmpString::from_utf8(text).map_err(|_| P12Error::UnencodablePassword)?;
        let mut bytes = bmp.into_bytes().into_vec();
        bytes.extend([0, 0]);
        let mut candidates = vec![Password {
            bmp: Secret::new(bytes),
            utf8: Secret::new(text.as_bytes().to_vec()),
        }];
        if text.is_empty() {
            candidates.push(Password {
                bmp: Secret::new(Vec::new()),
                utf8: Secret::new(Vec::new()),
            });
        }
        Ok(candidates)
    }
}

/// What one file may still make the tool do (see the module's "Work").
#[derive(Debug)]
struct Budget {
    work: u64,
    encrypted_parts: usize,
    bags: usize,
    certificates: usize,
}

impl Budget {
    fn new() -> Budget {
        Budget {
            work: MAX_WORK,
            encrypted_parts: MAX_ENCRYPTED_PARTS,
            bags: MAX_BAGS,
            certificates: MAX_CERTIFICATES,
        }
    }

    /// Pay for a key derivation before running it.
    fn spend(&mut self, cost: u64) -> Result<(), P12Error> {
        self.work = self
            .work
            .checked_sub(cost)
            .ok_or(P12Error::OverBudget(Limit::Work))?;
        Ok(())
    }

    /// Refuse at once a list of `count` things that cannot all fit,
    /// before it is decoded; `None` (not a list) is left to the decoder.
    fn room_for(&self, limit: Limit, count: Option<usize>) -> Result<(), P12Error> {
        let left = match limit {
            Limit::Work => return Ok(()),
            Limit::EncryptedParts => self.encrypted_parts,
            Limit::Bags => self.bags,
            Limit::Certificates => self.certificates,
        };
        match count {
            Some(count) if count > left => Err(P12Error::OverBudget(limit)),
            _ => Ok(()),
        }
    }

    /// Count one more of `limit`'s things.
    fn count(&mut self, limit: Limit) -> Result<(), P12Error> {
        let left = match limit {
            Limit::Work => return self.spend(1),
            Limit::EncryptedParts => &mut self.encrypted_parts,
            Limit::Bags => &mut self.bags,
            Limit::Certificates => &mut self.certificates,
        };
        *left = left.checked_sub(1).ok_or(P12Error::OverBudget(limit))?;
        Ok(())
    }
}

/// A hash function's output and block sizes, in bytes, and what one of
/// its compressions costs, in SHA-256 compressions: SHA-384 and SHA-512
/// (128-byte blocks, no CPU instructions for them here) take 5 times as
/// long, measured by the `kdf_cost_per_compression` test.
#[derive(Debug, Clone, Copy)]
struct HashSize {
    output: u64,
    block: u64,
    weight: u64,
}

const SHA1_SIZE: HashSize = HashSize {
    output: 20,
    block: 64,
    weight: 1,
};
const SHA224_SIZE: HashSize = HashSize {
    output: 28,
    block: 64,
    weight: 1,
};
const SHA256_SIZE: HashSize = HashSize {
    output: 32,
    block: 64,
    weight: 1,
};
const SHA384_SIZE: HashSize = HashSize {
    output: 48,
    block: 128,
    weight: 5,
};
const SHA512_SIZE: HashSize = HashSize {
    output: 64,
    block: 128,
    weight: 5,
};

/// PBKDF2's hash; `None` for one this module does not know.
fn hash_size(prf: Pbkdf2Prf) -> Option<HashSize> {
    Some(match prf {
        Pbkdf2Prf::HmacWithSha1 => SHA1_SIZE,
        Pbkdf2Prf::HmacWithSha224 => SHA224_SIZE,
        Pbkdf2Prf::HmacWithSha256 => SHA256_SIZE,
        Pbkdf2Prf::HmacWithSha384 => SHA384_SIZE,
        Pbkdf2Prf::HmacWithSha512 => SHA512_SIZE,
        _ => return None,
    })
}

/// Blocks of `len` bytes, rounded up.
fn blocks(len: u64, block: u64) -> u64 {
    len.div_ceil(block.max(1))
}

/// Cost of the PKCS#12 KDF (RFC 7292 appendix B.2) making `key_len`
/// bytes: per output block, one hash of `D || S || P` and then one
/// compression per further iteration.
fn pkcs12_kdf_cost(
    hash: HashSize,
    iterations: u64,
    salt: usize,
    password: usize,
    key_len: usize,
) -> u64 {
    let first = 2 + blocks(salt as u64, hash.block) + blocks(password as u64, hash.block);
    blocks(key_len as u64, hash.output)
        .saturating_mul(first.saturating_add(iterations))
        .saturating_mul(hash.weight)
}

/// Cost of PBKDF2 with HMAC (RFC 8018 5.2) making `key_len` bytes: the
/// HMAC key, then per output block the salt and two compressions per
/// iteration.
fn pbkdf2_cost(
    hash: HashSize,
    iterations: u64,
    salt: usize,
    password: usize,
    key_len: usize,
) -> u64 {
    let key_setup = 2 + blocks(password as u64, hash.block);
    let first = 2 + blocks(salt as u64 + 4, hash.block);
    let per_block = first.saturating_add(iterations.saturating_mul(2));
    blocks(key_len as u64, hash.output)
        .saturating_mul(per_block)
        .saturating_add(key_setup)
        .saturating_mul(hash.weight)
}

/// Why the iteration count at `path` of `der` is refused, when it is: for
/// a structure the strict decoder refused, whose iteration count may not
/// fit its Rust type (`i32` in `pkcs12`, `u32` in `pkcs5`).
fn iterations_at(der: &[u8], path: &[usize]) -> Option<P12Error> {
    let element = element_at(der, path)?;
    match integer_value(&element) {
        Some(count) => check_iterations(count).err(),
        None if element.tag() == der::Tag::Integer => Some(P12Error::Malformed(format!(
            "an iteration count {} bytes long is not a number of iterations",
            element.value().len()
        ))),
        None => None,
    }
}

fn check_iterations(count: i128) -> Result<i32, P12Error> {
    if count < 1 {
        return Err(P12Error::Malformed(format!(
            "an iteration count of {count} is not allowed"
        )));
    }
    if count > i128::from(MAX_ITERATIONS) {
        return Err(P12Error::TooManyIterations {
            count,
            max: MAX_ITERATIONS,
        });
    }
    i32::try_from(count).map_err(|_| P12Error::TooManyIterations {
        count,
        max: MAX_ITERATIONS,
    })
}

/// Verify the MAC with each candidate password; return the one that
/// verifies and a description of the MAC.
fn verify_mac(
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
        budget.spend(pkcs12_kdf_cost(
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

/// CMS `EncryptedData` (RFC 5652 8), by the `cms` crate: the algorithm
/// and the ciphertext.
fn encrypted_data(content: &Any) -> Result<(AlgorithmIdentifierOwned, Vec<u8>), P12Error> {
    let info = content
        .decode_as::<EncryptedData>()
        .map_err(malformed("an encrypted data content"))?
        .enc_content_info;
    let data = info.encrypted_content.ok_or_else(|| {
        P12Error::Malformed("an encrypted data content has no encrypted content".into())
    })?;
    Ok((info.content_enc_alg, data.into_bytes()))
}

/// The two legacy PKCS#12 PBE ciphers in use, and their siblings that
/// cost nothing more (RFC 7292 appendix C).
#[derive(Clone, Copy)]
enum LegacyCipher {
    Rc2_40,
    Rc2_128,
    TripleDes3Key,
    TripleDes2Key,
}

impl LegacyCipher {
    fn from_oid(oid: ObjectIdentifier) -> Option<Self> {
        match oid {
            pkcs12::PKCS_12_PBEWITH_SHAAND40_BIT_RC2_CBC => Some(Self::Rc2_40),
            pkcs12::PKCS_12_PBE_WITH_SHAAND128_BIT_RC2_CBC => Some(Self::Rc2_128),
            pkcs12::PKCS_12_PBE_WITH_SHAAND3_KEY_TRIPLE_DES_CBC => Some(Self::TripleDes3Key),
            pkcs12::PKCS_12_PBE_WITH_SHAAND2_KEY_TRIPLE_DES_CBC => Some(Self::TripleDes2Key),
            _ => None,
        }
    }

    /// OpenSSL's names.
    fn name(self) -> &'static str {
        match self {
            Self::Rc2_40 => "pbeWithSHA1And40BitRC2-CBC",
            Self::Rc2_128 => "pbeWithSHA1And128BitRC2-CBC",
            Self::TripleDes3Key => "pbeWithSHA1And3-KeyTripleDES-CBC",
            Self::TripleDes2Key => "pbeWithSHA1And2-KeyTripleDES-CBC",
        }
    }

    /// Why the cipher is weak, when it is: fewer than 112 bits of key.
    fn weakness(self) -> Option<&'static str> {
        match self {
            Self::Rc2_40 => Some("40-bit RC2"),
            Self::TripleDes2Key => Some("two-key triple DES (80-bit security)"),
            Self::Rc2_128 | Self::TripleDes3Key => None,
        }
    }

    fn key_len(self) -> usize {
        match self {
            Self::Rc2_40 => 5,
            Self::Rc2_128 | Self::TripleDes2Key => 16,
            Self::TripleDes3Key => 24,
        }
    }

    fn decrypt(self, key: &[u8], iv: &[u8], data: &[u8]) -> Option<Vec<u8>> {
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
enum Pbes1Cipher {
    Des,
    Rc2,
}

impl Pbes1Cipher {
    fn from_oid(oid: ObjectIdentifier) -> Option<Self> {
        match oid {
            pkcs5::pbes1::PBE_WITH_SHA1_AND_DES_CBC_OID => Some(Self::Des),
            pkcs5::pbes1::PBE_WITH_SHA1_AND_RC2_CBC_OID => Some(Self::Rc2),
            _ => None,
        }
    }

    /// OpenSSL's names.
    fn name(self) -> &'static str {
        match self {
            Self::Des => "pbeWithSHA1AndDES-CBC",
            Self::Rc2 => "pbeWithSHA1AndRC2-CBC",
        }
    }

    /// Both have 64-bit keys.
    fn weakness(self) -> &'static str {
        match self {
            Self::Des => "single DES (56-bit key)",
            Self::Rc2 => "64-bit RC2",
        }
    }

    fn decrypt(self, key: &[u8], iv: &[u8], data: &[u8]) -> Option<Vec<u8>> {
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
enum Pbes2Cipher<'a> {
    /// What `pkcs5` decrypts: AES-128/192/256-CBC, DES-EDE3-CBC, DES-CBC.
    Pkcs5(pbes2::EncryptionScheme<'a>),
    /// Camellia-CBC; the key length in bytes and the IV.
    Camellia { key_len: usize, iv: &'a [u8] },
}

impl<'a> Pbes2Cipher<'a> {
    fn from_algorithm(alg: AlgorithmIdentifierRef<'a>) -> Result<Self, P12Error> {
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
    fn name(self) -> &'static str {
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

    fn key_len(self) -> usize {
        match self {
            Self::Pkcs5(scheme) => scheme.key_size(),
            Self::Camellia { key_len, .. } => key_len,
        }
    }

    /// Why the cipher is weak, when it is.
    fn weakness(self) -> Option<&'static str> {
        match self {
            Self::Pkcs5(pbes2::EncryptionScheme::DesCbc { .. }) => Some("single DES (56-bit key)"),
            _ => None,
        }
    }

    fn decrypt(
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

/// PBKDF2 with the HMAC `kdf` names, `len` bytes.
fn pbkdf2_hmac(kdf: &pbes2::Pbkdf2Params<'_>, password: &[u8], len: usize) -> Option<Vec<u8>> {
    let mut key = vec![0; len];
    let (salt, rounds) = (kdf.salt, kdf.iteration_count);
    match kdf.prf {
        Pbkdf2Prf::HmacWithSha1 => pbkdf2::pbkdf2::<Hmac<Sha1>>(password, salt, rounds, &mut key),
        Pbkdf2Prf::HmacWithSha224 => {
            pbkdf2::pbkdf2::<Hmac<Sha224>>(password, salt, rounds, &mut key)
        }
        Pbkdf2Prf::HmacWithSha256 => {
            pbkdf2::pbkdf2::<Hmac<Sha256>>(password, salt, rounds, &mut key)
        }
        Pbkdf2Prf::HmacWithSha384 => {
            pbkdf2::pbkdf2::<Hmac<Sha384>>(password, salt, rounds, &mut key)
        }
        Pbkdf2Prf::HmacWithSha512 => {
            pbkdf2::pbkdf2::<Hmac<Sha512>>(password, salt, rounds, &mut key)
        }
        _ => return None,
    }
    .ok()?;
    Some(key)
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

/// A decrypted part, and why its cipher is weak, when it is.
struct Decrypted {
    plain: Secret<Vec<u8>>,
    weak: Option<&'static str>,
}

/// What the bags of a bundle hold, gathered while reading it.
struct Contents {
    password: Password,
    budget: Budget,
    /// Why the cipher of a shrouded key bag is weak, when one is.
    weak_key_cipher: Option<&'static str>,
    encryption: Vec<String>,
    /// Certificates with their `localKeyId`, in file order.
    certs: Vec<(CertInfo, Option<Vec<u8>>)>,
    keys: Vec<(PrivateKey, Option<Vec<u8>>)>,
}

impl Contents {
    fn record(&mut self, scheme: String) {
        if !self.encryption.contains(&scheme) {
            self.encryption.push(scheme);
        }
    }

    fn decrypt(
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
                pkcs12_kdf_cost(
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
        self.budget.spend(pbkdf2_cost(
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

    fn safe_contents(&mut self, der: &[u8], depth: usize) -> Result<(), P12Error> {
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

    fn finish(self, mac: Option<String>) -> Result<P12, P12Error> {
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
    use crate::crypto::private_key;
    use crate::crypto::test_support::{upstream_entry, Workdir};
    use crate::crypto::x509::{parse_pem_certificates, KeyAlgorithm};

    fn secret(password: &str) -> Secret<String> {
        Secret::new(password.to_owned())
    }

    /// A CA (EC P-256) and a client certificate with a `kind` key, signed
    /// by it, as `ca.key`/`ca.pem` and `client.key`/`client.pem`.
    fn material(tag: &str, kind: &str) -> Workdir {
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

    fn export(dir: &Workdir, password: &str, extra: &[&str]) -> Vec<u8> {
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
    fn assert_nothing_leaks(text: &str, password: &str, key: Option<&PrivateKey>) {
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
    fn unencrypted_bags_are_read() {
        let dir = material("plain", "ec");
        let bytes = export(&dir, "", &["-keypbe", "NONE", "-certpbe", "NONE"]);
        let p12 = open(&bytes, &secret("")).unwrap();
        assert!(p12.encryption.is_empty());
        assert_eq!(p12.client.common_name.as_deref(), Some("device-1"));
        assert_eq!(p12.ca_chain.len(), 1);
    }

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
    fn absurd_iteration_counts_are_refused() {
        let dir = material("iter", "ec");
        let bytes = export(&dir, "", &["-nomac", "-iter", "1000001"]);
        assert_eq!(
            open(&bytes, &secret("")).unwrap_err(),
            P12Error::TooManyIterations {
                count: 1_000_001,
                max: MAX_ITERATIONS
            }
        );
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

    fn contents(
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

    #[test]
    fn what_openssl_defaults_cost() {
        // `openssl pkcs12 -export`: SHA-256 MAC and two PBES2 parts
        // (PBKDF2-HMAC-SHA256, AES-256), 2048 iterations, 8-byte salts.
        let aes = pkcs12_kdf_cost(SHA256_SIZE, 2048, 8, 2, 32)
            + 2 * pbkdf2_cost(SHA256_SIZE, 2048, 8, 0, 32);
        assert_eq!(aes, 2052 + 2 * 4101);
        // `-legacy`: SHA-1 MAC, RC2-40 (key and IV, one block each) and
        // 3DES (a 24-byte key is two SHA-1 blocks, and the IV).
        let legacy = 6 * pkcs12_kdf_cost(SHA1_SIZE, 2048, 8, 2, 20);
        assert_eq!(legacy, 6 * 2052);
        // SHA-512 counts five times.
        assert_eq!(pbkdf2_cost(SHA512_SIZE, 1000, 8, 0, 32), 5 * (2 + 2000 + 3));
        assert!(legacy * 150 < MAX_WORK);
    }

    #[test]
    fn the_budget_refuses_the_first_thing_over_a_limit() {
        let mut budget = Budget::new();
        budget.spend(MAX_WORK - 1).unwrap();
        budget.spend(1).unwrap();
        assert_eq!(budget.spend(1), Err(P12Error::OverBudget(Limit::Work)));
        for (limit, max) in [
            (Limit::EncryptedParts, MAX_ENCRYPTED_PARTS),
            (Limit::Bags, MAX_BAGS),
            (Limit::Certificates, MAX_CERTIFICATES),
        ] {
            let mut budget = Budget::new();
            for _ in 0..max {
                budget.count(limit).unwrap();
            }
            let err = budget.count(limit).unwrap_err();
            assert_eq!(err, P12Error::OverBudget(limit));
            assert!(
                err.to_string().contains(&format!("more than {max} ")),
                "{err}"
            );
        }
        assert_eq!(
            P12Error::OverBudget(Limit::Certificates).to_string(),
            "the bundle asks for too much work: it holds more than 32 certificates; \
             re-export it with `openssl pkcs12 -export` and its default iteration \
             counts, holding only the client certificate, its key and the CA chain"
        );
    }

    /// The measurement behind [`MAX_WORK`]: time per unit of cost (a
    /// SHA-256 compression) of each key derivation as [`pkcs12_kdf_cost`]
    /// and [`pbkdf2_cost`] count them, the fastest of 5 runs. Run it in the
    /// build that ships:
    /// `cargo test --release --locked --lib kdf_cost -- --ignored --nocapture`
    #[test]
    #[ignore = "a measurement, not a check"]
    fn kdf_cost_per_compression() {
        use std::time::{Duration, Instant};
        let iterations: u32 = 100_000;
        let salt = [1u8; 8];
        let pw = [0u8, 0];
        let fastest = |run: &dyn Fn()| {
            (0..5)
                .map(|_| {
                    let started = Instant::now();
                    run();
                    started.elapsed()
                })
                .min()
                .unwrap_or(Duration::MAX)
        };
        let report = |what: &str, cost: u64, took: Duration| {
            let ns = took.as_nanos() as f64 / cost as f64;
            println!("{what:<20} {ns:6.1} ns per unit");
        };
        let rounds = iterations as i32;
        let cost = |hash| pkcs12_kdf_cost(hash, iterations.into(), salt.len(), pw.len(), 32);
        let took = fastest(&|| {
            derive_key::<Sha1>(&pw, &salt, Pkcs12KeyType::Mac, rounds, 32);
        });
        report("PKCS#12 KDF SHA-1", cost(SHA1_SIZE), took);
        let took = fastest(&|| {
            derive_key::<Sha256>(&pw, &salt, Pkcs12KeyType::Mac, rounds, 32);
        });
        report("PKCS#12 KDF SHA-256", cost(SHA256_SIZE), took);
        let took = fastest(&|| {
            derive_key::<Sha512>(&pw, &salt, Pkcs12KeyType::Mac, rounds, 32);
        });
        report("PKCS#12 KDF SHA-512", cost(SHA512_SIZE), took);
        for (prf, name) in [
            (Pbkdf2Prf::HmacWithSha1, "PBKDF2 SHA-1"),
            (Pbkdf2Prf::HmacWithSha256, "PBKDF2 SHA-256"),
            (Pbkdf2Prf::HmacWithSha512, "PBKDF2 SHA-512"),
        ] {
            let iv = [0u8; 16];
            let params = pbes2::Parameters {
                kdf: Kdf::Pbkdf2(pbes2::Pbkdf2Params {
                    salt: &salt,
                    iteration_count: iterations,
                    key_length: None,
                    prf,
                }),
                encryption: pbes2::EncryptionScheme::Aes256Cbc { iv: &iv },
            };
            // Decryption fails (the ciphertext is made up) after the
            // derivation, which is what is timed.
            let took = fastest(&|| {
                let _ = params.decrypt([], &[0u8; 16]);
            });
            let hash = hash_size(prf).unwrap();
            report(
                name,
                pbkdf2_cost(hash, iterations.into(), salt.len(), 0, 32),
                took,
            );
        }
    }
}
