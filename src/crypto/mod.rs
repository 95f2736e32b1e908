//! Certificates and keys found in credentials archives: PKCS#12 bundles
//! ([`pkcs12`]), X.509 certificates ([`x509`]), private keys
//! ([`private_key`]), PEM text ([`pem`]) and garage-sign's JSON key form
//! ([`garage_keys`]); [`error`] says why one is refused.
//!
//! Everything here is a pure function of bytes: no file is read, nothing is
//! printed. Private key material and passwords are kept in
//! [`crate::secret::Secret`] and never reach an error message or a `Debug`
//! output; errors say what is wrong with a key, never what is in it.
//! docs/crypto.md lists the accepted formats and algorithms, and what is
//! deliberately not checked.
//!
//! [`issue`] makes what the others read: device keys and certificates
//! signed by a checked fleet CA (`device-certs`), whose CA limits
//! ([`name_constraints`]) and chain signatures ([`signature`]) it checks;
//! [`csr`] reads and checks a device's certificate request. [`pkcs11`] is
//! the one exception to "pure functions of bytes": it loads a PKCS#11
//! module and signs with a key in a token.
//!
//! The modules import one another in one direction only: `error` <- `pem`
//! <- `x509` <- `signature`, `name_constraints` <- `private_key` <-
//! `csr`, `pkcs12`, `garage_keys`, `issue`. None of them
//! imports from this file, except their tests (`test_support`).

pub mod csr;
pub mod error;
pub mod garage_keys;
pub mod issue;
pub mod name_constraints;
pub mod pem;
pub mod pkcs11;
pub mod pkcs12;
pub mod private_key;
pub mod signature;
pub mod x509;

#[cfg(test)]
pub(crate) mod test_support;
