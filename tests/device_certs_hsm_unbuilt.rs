//! A build without the cargo feature `pkcs11` (the default: cryptoki needs
//! Rust 1.77, docs/dependencies.md) still parses and checks a PKCS#11 URI
//! and the PIN's source, then refuses the key, saying how to get a build
//! that takes it; nothing is written. CI runs this file once without
//! features (`.ci/run`); with the feature it holds no test.

#![cfg(not(feature = "pkcs11"))]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;

#[test]
fn a_key_in_a_token_is_refused_saying_how_to_build_the_support() {
    let dir = TestDir::new();
    let pki = Pki::new(&dir);
    let pin = dir.write("pin", "836201\n");
    let out = dir.join("out");
    sota(["device-certs", "--fleet-ca"])
        .arg(&pki.ca().cert)
        .args([
            "--fleet-ca-key",
            "pkcs11:token=fleet;object=ca",
            "--pkcs11-module",
            "/usr/lib/softhsm/libsofthsm2.so",
            "--pkcs11-pin-file",
        ])
        .arg(&pin)
        .arg("--out")
        .arg(&out)
        .args(["--device-id", "dev-1"])
        .run()
        .code(1)
        .stderr_has("built without PKCS#11 support")
        .stderr_has("the cargo feature `pkcs11`")
        .output_lacks("836201");
    assert!(!out.join("devices.json").exists());
    // The URI is still checked first: a PIN in it is a usage error.
    sota(["device-certs", "--fleet-ca"])
        .arg(&pki.ca().cert)
        .args([
            "--fleet-ca-key",
            "pkcs11:token=fleet;object=ca?pin-value=836201",
            "--pkcs11-module",
            "/usr/lib/softhsm/libsofthsm2.so",
            "--out",
        ])
        .arg(&out)
        .args(["--device-id", "dev-1"])
        .run()
        .code(2)
        .stderr_has("it holds `pin-value`")
        .output_lacks("836201");
}
