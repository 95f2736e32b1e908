//! Why a fleet CA is refused or a certificate cannot be made
//! (`IssueError`), and how messages name a certificate of the CA file.

use std::fmt;

/// Why a fleet CA is refused or a certificate cannot be made. Never holds
/// key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IssueError {
    #[error("the CA certificate file holds {0} certificates; give the issuing CA first, then the intermediates above it (at most {MAX_CHAIN} in all), without the root")]
    ChainTooLong(usize),
    #[error("{0}")]
    BadCertificate(String),
    #[error("the CA key is {0}: RSA fleet CAs cannot sign here, because the only pure-Rust RSA implementation (the `rsa` crate) has an open security advisory (RUSTSEC-2023-0071) with no fixed release; use an EC P-256 or P-384 fleet CA")]
    RsaCa(String),
    #[error("the CA key is {0}, which cannot sign here; use an EC P-256 or P-384 fleet CA")]
    UnsupportedCaKey(String),
    #[error("the CA key does not belong to the CA certificate (`{0}`); give the key the CA certificate was made for")]
    KeyMismatch(String),
    #[error(
        "{0} is not a CA: it has no basicConstraints CA:TRUE; give the fleet CA's certificate"
    )]
    NotCa(Ca),
    #[error("{0} may not sign certificates: its keyUsage {1}; give a CA certificate with keyUsage keyCertSign")]
    NoKeyCertSign(Ca, &'static str),
    #[error("{0} expired on {1}; renew the fleet CA")]
    Expired(Ca, String),
    #[error("{0} is not valid before {1}; check the clock, or wait")]
    NotYetValid(Ca, String),
    #[error("{0} limits what it signs: its extendedKeyUsage lacks clientAuth, so every client certificate below it is invalid; use a CA whose extendedKeyUsage allows clientAuth (or has none)")]
    NoClientAuth(Ca),
    #[error("{0} carries the critical extension {1}, which this tool does not know; a verifier that does not know it either must reject every certificate below it: use a CA without it")]
    UnknownCritical(Ca, String),
    #[error("{0} has pathLenConstraint {1}, but {2} CA certificates stand below it in the chain; every device certificate would be invalid")]
    PathLength(Ca, u32, usize),
    #[error("{0} is a self-signed root; leave the root out of the CA file (the server trusts it; aktualizr sends the chain below it)")]
    RootInChain(Ca),
    #[error("{0} was not issued by certificate {1} of the file (`{2}`); give the issuing CA first, then each certificate's issuer, in order")]
    ChainOrder(Ca, usize, String),
    #[error("{0}: its signature does not verify with the key of certificate {1} of the file (`{2}`): {3}")]
    ChainSignature(Ca, usize, String, String),
    #[error("{0}: its {1}; every certificate it issued for `{2}` would be invalid: give a device subject it permits, or another CA")]
    NameConstraint(Ca, String, String),
    #[error("cannot make the certificate: {0}")]
    Build(String),
}

/// A certificate of the CA file, as messages name it: the issuing CA (the
/// first) as "the CA certificate", the others by position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ca {
    /// 1-based position in the CA file.
    pub position: usize,
    pub subject: String,
}

impl fmt::Display for Ca {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.position <= 1 {
            write!(f, "the CA certificate (`{}`)", self.subject)
        } else {
            write!(
                f,
                "certificate {} of the CA file (`{}`)",
                self.position, self.subject
            )
        }
    }
}

/// The most certificates a CA file may hold: the issuing CA and the
/// intermediates above it.
pub const MAX_CHAIN: usize = 8;

pub(super) fn build(e: der::Error) -> IssueError {
    IssueError::Build(e.to_string())
}
