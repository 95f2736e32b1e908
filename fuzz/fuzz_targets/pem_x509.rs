//! Certificates and private keys: the input is read as PEM certificates,
//! as one DER certificate, as a PEM private key (PKCS#8, encrypted or not,
//! SEC1, PKCS#1) and as DER keys of each form. What parses is written back
//! out and must read back; keys are matched against certificates.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sota_stage::crypto::private_key::{key_matches_cert, parse_private_key_pem, PrivateKey};
use sota_stage::crypto::x509::{self, CertInfo};

const NOW: i64 = 1_767_225_600;

fn use_cert(cert: &CertInfo) {
    let _ = x509::validity(cert, NOW, 30);
    let _ = sota_stage::time::format_date(cert.not_before);
    let _ = sota_stage::time::format_date(cert.not_after);
    let _ = format!("{cert:?} {}", cert.key);
    // The DER a certificate was read from reads again.
    assert!(x509::parse_der(&cert.der).is_ok());
}

fn use_key(key: &PrivateKey, certs: &[CertInfo]) {
    let _ = format!("{key:?} {}", key.algorithm());
    for cert in certs {
        let _ = key_matches_cert(key, cert);
    }
    // pkey.pem as the tool writes it reads back.
    let pem = key.to_pem();
    assert!(parse_private_key_pem(pem.expose().as_bytes()).is_ok());
}

fn certs_of(data: &[u8]) -> Vec<CertInfo> {
    let mut certs = Vec::new();
    if let Ok(pem_certs) = x509::parse_pem_certificates(data) {
        let text = x509::to_pem(&pem_certs);
        let again = x509::parse_pem_certificates(text.as_bytes());
        assert!(again.is_ok_and(|c| c == pem_certs));
        certs.extend(pem_certs);
    }
    if let Ok(cert) = x509::parse_der(data) {
        certs.push(cert);
    }
    certs
}

fuzz_target!(|data: &[u8]| {
    let certs = certs_of(data);
    for cert in &certs {
        use_cert(cert);
    }
    let keys = [
        parse_private_key_pem(data),
        PrivateKey::from_pkcs8_der(data),
        PrivateKey::from_sec1_der(data),
        PrivateKey::from_pkcs1_der(data),
    ];
    for key in keys.iter().flatten() {
        use_key(key, &certs);
    }
});
