//! Certificates and keys found in credentials archives: PKCS#12 bundles,
//! X.509 certificates and PEM files, and garage-sign's JSON key form.

pub mod keys;
pub mod pkcs12;
pub mod x509;
