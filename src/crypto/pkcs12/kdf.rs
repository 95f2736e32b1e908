//! Key derivation: the password in the forms the schemes want
//! ([`Password`]), what a derivation costs the budget ([`HashSize`],
//! [`Derivation::cost`]), and PBKDF2 for the ciphers
//! `pkcs5` does not derive keys for ([`pbkdf2_hmac`]).

use der::asn1::BmpString;
use hmac::Hmac;
use pkcs5::pbes2::{self, Pbkdf2Prf};
use sha1::Sha1;
use sha2::{Sha224, Sha256, Sha384, Sha512};

use super::error::P12Error;
use crate::secret::Secret;

/// The password in the two forms the schemes want. `Debug` shows nothing
/// of it (`Secret`).
#[derive(Debug)]
pub(super) struct Password {
    /// BMPString bytes and the two terminating zero bytes, or nothing at
    /// all (the "absent password" form, tried only for an empty password).
    pub(super) bmp: Secret<Vec<u8>>,
    pub(super) utf8: Secret<Vec<u8>>,
}

impl Password {
    pub(super) fn candidates(password: &Secret<String>) -> Result<Vec<Password>, P12Error> {
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

/// A hash function's output and block sizes, in bytes, and what one of
/// its compressions costs, in SHA-256 compressions: SHA-384 and SHA-512
/// (128-byte blocks, no CPU instructions for them here) take 5 times as
/// long, measured by the `kdf_cost_per_compression` test.
#[derive(Debug, Clone, Copy)]
pub(super) struct HashSize {
    pub(super) output: u64,
    block: u64,
    weight: u64,
}

impl HashSize {
    const fn new(output: u64, block: u64, weight: u64) -> HashSize {
        HashSize {
            output,
            block,
            weight,
        }
    }
}

pub(super) const SHA1_SIZE: HashSize = HashSize::new(20, 64, 1);
pub(super) const SHA224_SIZE: HashSize = HashSize::new(28, 64, 1);
pub(super) const SHA256_SIZE: HashSize = HashSize::new(32, 64, 1);
pub(super) const SHA384_SIZE: HashSize = HashSize::new(48, 128, 5);
pub(super) const SHA512_SIZE: HashSize = HashSize::new(64, 128, 5);

/// PBKDF2's hash; `None` for one this module does not know.
pub(super) fn hash_size(prf: Pbkdf2Prf) -> Option<HashSize> {
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
pub(super) fn blocks(len: u64, block: u64) -> u64 {
    len.div_ceil(block.max(1))
}

/// A key derivation whose work the budget counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Derivation {
    /// The PKCS#12 KDF (RFC 7292 appendix B.2).
    Pkcs12,
    /// PBKDF2 with HMAC (RFC 8018 5.2).
    Pbkdf2,
}

impl Derivation {
    /// Cost of making `key_len` bytes from a password of `password` bytes
    /// and a salt of `salt` bytes. The PKCS#12 KDF: per output block, one
    /// hash of `D || S || P` and then one compression per further
    /// iteration. PBKDF2: the HMAC key, then per output block the salt and
    /// two compressions per iteration.
    pub(super) fn cost(
        self,
        hash: HashSize,
        iterations: u64,
        salt: usize,
        password: usize,
        key_len: usize,
    ) -> u64 {
        let (per_block, setup) = match self {
            Derivation::Pkcs12 => {
                let first =
                    2 + blocks(salt as u64, hash.block) + blocks(password as u64, hash.block);
                (first.saturating_add(iterations), 0)
            }
            Derivation::Pbkdf2 => {
                let first = 2 + blocks(salt as u64 + 4, hash.block);
                (
                    first.saturating_add(iterations.saturating_mul(2)),
                    2 + blocks(password as u64, hash.block),
                )
            }
        };
        blocks(key_len as u64, hash.output)
            .saturating_mul(per_block)
            .saturating_add(setup)
            .saturating_mul(hash.weight)
    }
}

/// PBKDF2 with the HMAC `kdf` names, `len` bytes.
pub(super) fn pbkdf2_hmac(
    kdf: &pbes2::Pbkdf2Params<'_>,
    password: &[u8],
    len: usize,
) -> Option<Vec<u8>> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::pkcs12::MAX_WORK;
    use pkcs12::kdf::{derive_key, Pkcs12KeyType};
    use pkcs5::pbes2::Kdf;

    #[test]
    fn what_openssl_defaults_cost() {
        // `openssl pkcs12 -export`: SHA-256 MAC and two PBES2 parts
        // (PBKDF2-HMAC-SHA256, AES-256), 2048 iterations, 8-byte salts.
        let aes = Derivation::Pkcs12.cost(SHA256_SIZE, 2048, 8, 2, 32)
            + 2 * Derivation::Pbkdf2.cost(SHA256_SIZE, 2048, 8, 0, 32);
        assert_eq!(aes, 2052 + 2 * 4101);
        // `-legacy`: SHA-1 MAC, RC2-40 (key and IV, one block each) and
        // 3DES (a 24-byte key is two SHA-1 blocks, and the IV).
        let legacy = 6 * Derivation::Pkcs12.cost(SHA1_SIZE, 2048, 8, 2, 20);
        assert_eq!(legacy, 6 * 2052);
        // SHA-512 counts five times.
        assert_eq!(
            Derivation::Pbkdf2.cost(SHA512_SIZE, 1000, 8, 0, 32),
            5 * (2 + 2000 + 3)
        );
        assert!(legacy * 150 < MAX_WORK);
    }

    /// The measurement behind [`MAX_WORK`]: time per unit of cost (a
    /// SHA-256 compression) of each key derivation as [`Derivation::cost`]
    /// counts them, the fastest of 5 runs. Run it in the
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
        let cost =
            |hash| Derivation::Pkcs12.cost(hash, iterations.into(), salt.len(), pw.len(), 32);
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
                Derivation::Pbkdf2.cost(hash, iterations.into(), salt.len(), 0, 32),
                took,
            );
        }
    }
}
