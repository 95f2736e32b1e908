//! A PKCS#12 bundle and a password: the first byte picks the password from
//! a short list (the OTA Connect default is empty; the others are usual,
//! non-ASCII, or long), the rest is the bundle for `pkcs12::open`. What an
//! opened bundle yields is used as the checks use it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sota_stage::crypto::pkcs12;
use sota_stage::crypto::private_key::{key_matches_cert, parse_private_key_pem};
use sota_stage::crypto::x509;
use sota_stage::secret::Secret;

const PASSWORDS: [&str; 8] = [
    "",
    "secret",
    "1234",
    "password",
    "p\u{e4}ssw\u{f6}rd",
    "\u{1f511}",
    "with space and \"quote\"",
    "a-long-password-of-sixty-four-characters-aaaaaaaaaaaaaaaaaaaaaaa",
];

fuzz_target!(|data: &[u8]| {
    let Some((&choice, der)) = data.split_first() else {
        return;
    };
    let password = Secret::new(PASSWORDS[usize::from(choice) % PASSWORDS.len()].to_string());
    let Ok(p12) = pkcs12::open(der, &password) else {
        return;
    };
    let _ = key_matches_cert(&p12.key, &p12.client);
    let _ = x509::validity(&p12.client, 1_767_225_600, 30);
    // The key written out as PEM reads back.
    let pem = p12.key.to_pem();
    assert!(parse_private_key_pem(pem.expose().as_bytes()).is_ok());
    let chain = x509::to_pem(&p12.ca_chain);
    if !p12.ca_chain.is_empty() {
        assert!(x509::parse_pem_certificates(chain.as_bytes()).is_ok());
    }
});
