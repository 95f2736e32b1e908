//! The limits of one file's work budget (the module's "Work"): the
//! `MAX_` numbers and [`Limit`], which names one in a refusal. Plain
//! data: this file imports nothing of the folder, so every other file may
//! import it.

/// Most key-derivation iterations accepted, for the MAC and every
/// encryption. OpenSSL writes 2048 (1024 in older versions); a hostile
/// bundle asking for billions would hang the build.
pub const MAX_ITERATIONS: u32 = 1_000_000;

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
