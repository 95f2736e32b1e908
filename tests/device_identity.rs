//! `stage --method device-cred --device-cert`: a certificate that cannot be
//! a device's identity is refused before anything is written (issue 19,
//! section 2, defect 3): a CA (basicConstraints CA:TRUE, or keyUsage
//! keyCertSign), whose key would sign certificates and be in every image,
//! and one whose extendedKeyUsage lacks clientAuth. No extendedKeyUsage at
//! all is fine.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};

use common::*;

/// The extension sections the certificates of these tests are issued with.
const EXTENSIONS: &str = "\
[ sign_only ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyCertSign
extendedKeyUsage = clientAuth
[ server_only ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
[ no_eku ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
";

/// A certificate and key for `cn`, issued by `pki`'s CA with the
/// extensions of `section` of [`EXTENSIONS`].
fn issue(pki: &Pki, cn: &str, section: &str) -> (PathBuf, PathBuf) {
    let dir = pki.dir();
    std::fs::write(dir.join("identity.cnf"), EXTENSIONS).unwrap();
    let key = format!("{cn}.key");
    let request = format!("{cn}.csr");
    let pem = format!("{cn}.pem");
    ec_p256_key(dir, &key);
    csr(dir, &key, &format!("/CN={cn}"), &request);
    openssl(
        dir,
        [
            "x509",
            "-req",
            "-in",
            &request,
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-set_serial",
            "0x77",
            "-days",
            "365",
            "-extfile",
            "identity.cnf",
            "-extensions",
            section,
            "-out",
            &pem,
        ],
    );
    (dir.join(pem), dir.join(key))
}

fn stage(zip: &Path, dev: &Path, cert: &Path, key: &Path) -> Run {
    sota(["stage", "--method", "device-cred", "--credentials"])
        .arg(zip)
        .arg("--device-root")
        .arg(dev)
        .arg("--device-cert")
        .arg(cert)
        .arg("--device-key")
        .arg(key)
        .run()
}

#[test]
fn a_ca_certificate_is_refused_as_the_device_identity() {
    let dir = TestDir::new();
    let pki = Pki::new(&dir);
    let zip = Creds::typical(&pki).write_to(&dir, "credentials.zip");
    let dev = dir.join("image");

    // The fleet CA itself (CA:TRUE, keyCertSign): the issue's field case.
    let ca = pki.ca();
    let run = stage(&zip, &dev, &ca.cert, &ca.key);
    run.code(1)
        .stderr_has("the device certificate `")
        .stderr_has("ca.pem")
        .stderr_has(
            "is a CA certificate (basicConstraints CA:TRUE and keyUsage keyCertSign): its key signs certificates and would be in every image; give the device's own client certificate and key",
        )
        .output_lacks("BEGIN");
    assert!(!dev.exists(), "nothing is written");

    // Not a CA, but its key may sign certificates.
    let (cert, key) = issue(&pki, "signer", "sign_only");
    stage(&zip, &dev, &cert, &key)
        .code(1)
        .stderr_has("(`signer`) is a CA certificate (keyUsage keyCertSign)");
    assert!(!dev.exists());
}

#[test]
fn a_device_certificate_needs_client_auth_when_it_has_an_extended_key_usage() {
    let dir = TestDir::new();
    let pki = Pki::new(&dir);
    let zip = Creds::typical(&pki).write_to(&dir, "credentials.zip");
    let dev = dir.join("image");

    let (cert, key) = issue(&pki, "server", "server_only");
    stage(&zip, &dev, &cert, &key)
        .code(1)
        .stderr_has("(`server`) has an extendedKeyUsage without clientAuth, so the server refuses it as a TLS client certificate; give a certificate issued with extendedKeyUsage clientAuth (or none)");
    assert!(!dev.exists());

    // No extendedKeyUsage at all: any use, clientAuth included.
    let (cert, key) = issue(&pki, "plain", "no_eku");
    stage(&zip, &dev, &cert, &key).success();
    assert!(dev.join("var/sota/import/client.pem").exists());
}
