//! `device-certs` with the fleet CA key in a token (SoftHSM 2): the keys
//! are made by the token (EC P-256 and P-384, RSA 2048 and 3072), the CA
//! certificate by openssl through the PKCS#11 engine with the token's key,
//! and every device certificate is signed by the token and verified with
//! `openssl verify -x509_strict -purpose sslclient`. Then the refusals:
//! a wrong PIN, a URI holding a PIN, a missing object, a key that is not
//! the certificate's, a relative module path, unknown URI attributes.
//!
//! Each test has its own token folder and `SOFTHSM2_CONF`. Needs
//! `softhsm2-util` (Debian softhsm2), `pkcs11-tool` (opensc) and the
//! OpenSSL pkcs11 engine (libengine-pkcs11-openssl); `.ci/run` installs
//! them, and a test fails, never skips, without them.
//!
//! They need the cargo feature `pkcs11` (the README's test command turns
//! every feature on); tests/device_certs_hsm_unbuilt.rs checks a build
//! without it.

#![cfg(feature = "pkcs11")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};

use common::*;

const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
const PIN: &str = "836201";
const SO_PIN: &str = "12345678";
const CLIENT: &str = "var/sota/import/client.pem";

/// A SoftHSM token of its own, in the test's folder.
struct Token {
    dir: TestDir,
    conf: PathBuf,
    openssl_conf: PathBuf,
}

impl Token {
    /// A fresh token labelled `fleet`, with the user PIN [`PIN`].
    fn new() -> Token {
        let dir = TestDir::new();
        let conf = softhsm::softhsm2_conf(&dir, "tokens");
        // The engine pointed at SoftHSM itself, not at p11-kit's proxy.
        let openssl_conf = dir.write(
            "openssl.cnf",
            format!(
                "openssl_conf = init\n[init]\nengines = engines\n[engines]\npkcs11 = pkcs11\n\
                 [pkcs11]\nengine_id = pkcs11\nMODULE_PATH = {MODULE}\ninit = 0\n\
                 [req]\ndistinguished_name = dn\n[dn]\n\
                 [v3_ca]\nbasicConstraints = critical,CA:TRUE\n\
                 keyUsage = critical,keyCertSign,cRLSign\nsubjectKeyIdentifier = hash\n"
            ),
        );
        let token = Token {
            dir,
            conf,
            openssl_conf,
        };
        token
            .tool("softhsm2-util")
            .args(["--init-token", "--free", "--label", "fleet"])
            .args(["--pin", PIN, "--so-pin", SO_PIN])
            .run()
            .success();
        token
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `program` with this token's SoftHSM configuration.
    fn tool(&self, program: &str) -> Cmd {
        tool(program)
            .env("SOFTHSM2_CONF", &self.conf)
            .current_dir(self.path())
    }

    /// A key pair made by the token (`EC:prime256v1`, `rsa:3072`, ...).
    fn keypair(&self, key_type: &str, id: &str, label: &str) {
        self.tool("pkcs11-tool")
            .args(["--module", MODULE, "--token-label", "fleet", "--login"])
            .args(["--pin", PIN, "--keypairgen", "--key-type", key_type])
            .args(["--id", id, "--label", label])
            .run()
            .success();
    }

    /// A self-signed CA certificate for the token's key `label`, made by
    /// openssl through the PKCS#11 engine: the token signs it.
    fn ca_cert(&self, label: &str, out: &str) -> PathBuf {
        self.tool("openssl")
            .env("OPENSSL_CONF", &self.openssl_conf)
            .args([
                "req", "-new", "-x509", "-engine", "pkcs11", "-keyform", "engine",
            ])
            .arg("-key")
            .arg(format!(
                "pkcs11:token=fleet;object={label};type=private?pin-value={PIN}"
            ))
            .args(["-subj", &format!("/CN=Fleet {label}"), "-days", "30"])
            .args(["-extensions", "v3_ca", "-out", out])
            .run()
            .success();
        self.dir.join(out)
    }

    /// `device-certs` with the CA `ca` and the key `uri` in this token.
    fn issue(&self, ca: &Path, uri: &str, out: &str, extra: &[&str]) -> Run {
        sota(["device-certs", "--fleet-ca"])
            .arg(ca)
            .args(["--fleet-ca-key", uri, "--pkcs11-module", MODULE])
            .arg("--out")
            .arg(self.dir.join(out))
            .args(extra)
            .env("SOFTHSM2_CONF", &self.conf)
            .current_dir(self.path())
            .run()
    }

    /// A PIN file holding `pin`.
    fn pin_file(&self, pin: &str) -> PathBuf {
        self.dir.write("pin", format!("{pin}\n"))
    }

    /// `openssl verify -x509_strict -purpose sslclient` on a bundle's
    /// certificate, and its signature algorithm.
    fn verify(&self, ca: &Path, out: &str, id: &str) -> String {
        let cert = self.dir.join(out).join(id).join(CLIENT);
        let (ok, said) = openssl_status(
            self.path(),
            [
                "verify".as_ref(),
                "-x509_strict".as_ref(),
                "-purpose".as_ref(),
                "sslclient".as_ref(),
                "-CAfile".as_ref(),
                ca.as_os_str(),
                cert.as_os_str(),
            ],
        );
        assert!(ok, "openssl verify refused {}: {said}", cert.display());
        let text = openssl(
            self.path(),
            [
                "x509".as_ref(),
                "-noout".as_ref(),
                "-text".as_ref(),
                "-in".as_ref(),
                cert.as_os_str(),
            ],
        );
        let text = String::from_utf8(text).unwrap();
        text.lines()
            .find_map(|l| l.trim().strip_prefix("Signature Algorithm: "))
            .unwrap()
            .to_string()
    }
}

#[test]
fn ec_p256_and_p384_ca_keys_in_the_token_sign_every_certificate() {
    for (curve, label) in [("EC:prime256v1", "ec256"), ("EC:secp384r1", "ec384")] {
        let token = Token::new();
        token.keypair(curve, "01", label);
        let ca = token.ca_cert(label, "ca.pem");
        let pin = token.pin_file(PIN);
        let uri = format!("pkcs11:token=fleet;object={label};type=private");
        let run = sota(["device-certs", "--fleet-ca"])
            .arg(&ca)
            .args(["--fleet-ca-key", &uri, "--pkcs11-module", MODULE])
            .arg("--pkcs11-pin-file")
            .arg(&pin)
            .arg("--out")
            .arg(token.dir.join("out"))
            .args(["--count", "3", "--id-prefix", "dev-"])
            .env("SOFTHSM2_CONF", &token.conf)
            .run();
        run.success().output_lacks(PIN);
        for id in ["dev-1", "dev-2", "dev-3"] {
            assert_eq!(token.verify(&ca, "out", id), "ecdsa-with-SHA256", "{curve}");
        }
    }
}

#[test]
fn rsa_ca_keys_made_by_the_token_sign_with_sha256_with_rsa() {
    for (key_type, label) in [("rsa:2048", "rsa2048"), ("rsa:3072", "rsa3072")] {
        let token = Token::new();
        token.keypair(key_type, "02", label);
        let ca = token.ca_cert(label, "ca.pem");
        // The PIN from the environment this time; by id, percent-encoded.
        token
            .issue(
                &ca,
                "pkcs11:token=fleet;id=%02",
                "out",
                &["--device-id", "rsa-dev"],
            )
            .code(2)
            .stderr_has("SOTA_PKCS11_PIN");
        let run = sota(["device-certs", "--fleet-ca"])
            .arg(&ca)
            .args(["--fleet-ca-key", "pkcs11:token=fleet;id=%02"])
            .args(["--pkcs11-module", MODULE, "--device-id", "rsa-dev", "--out"])
            .arg(token.dir.join("out"))
            .env("SOFTHSM2_CONF", &token.conf)
            .env("SOTA_PKCS11_PIN", PIN)
            .run();
        run.success().output_lacks(PIN);
        assert_eq!(
            token.verify(&ca, "out", "rsa-dev"),
            "sha256WithRSAEncryption",
            "{key_type}"
        );
    }
}

/// The usual run against one token, with `uri`, `pin` and `module`.
fn issue_with(token: &Token, ca: &Path, uri: &str, pin: &str, module: &str) -> Run {
    let pin = token.pin_file(pin);
    sota(["device-certs", "--fleet-ca"])
        .arg(ca)
        .args(["--fleet-ca-key", uri, "--pkcs11-module", module])
        .arg("--pkcs11-pin-file")
        .arg(&pin)
        .arg("--out")
        .arg(token.dir.join("out"))
        .args(["--device-id", "dev-1"])
        .env("SOFTHSM2_CONF", &token.conf)
        .run()
}

#[test]
fn refusals_name_the_uri_and_never_the_pin() {
    let token = Token::new();
    token.keypair("EC:prime256v1", "01", "ca");
    token.keypair("EC:prime256v1", "02", "other");
    let ca = token.ca_cert("ca", "ca.pem");
    let nothing_written = |run: &Run| {
        assert!(
            !token.dir.join("out").join("devices.json").exists(),
            "{}",
            run.stderr
        );
    };

    // A wrong PIN: refused by the token, said so, never shown.
    let run = issue_with(
        &token,
        &ca,
        "pkcs11:token=fleet;object=ca",
        "999999",
        MODULE,
    );
    run.code(1)
        .stderr_has("the token refused the PIN from --pkcs11-pin-file")
        .output_lacks("999999");
    nothing_written(&run);

    // A PIN in the URI, in the query or the path, or where to find one.
    for (uri, attr) in [
        ("pkcs11:token=fleet;object=ca?pin-value=836201", "pin-value"),
        ("pkcs11:token=fleet;object=ca;pin-value=836201", "pin-value"),
        (
            "pkcs11:token=fleet;object=ca?pin-source=file:/pin",
            "pin-source",
        ),
    ] {
        let run = issue_with(&token, &ca, uri, PIN, MODULE);
        run.code(2)
            .stderr_has(&format!("it holds `{attr}`"))
            .output_lacks(PIN);
        nothing_written(&run);
    }

    // The module from the URI is not used: it is refused.
    issue_with(
        &token,
        &ca,
        "pkcs11:object=ca?module-path=/tmp/evil.so",
        PIN,
        MODULE,
    )
    .code(2)
    .stderr_has("it holds `module-path`");

    // Unknown attributes, all named.
    issue_with(
        &token,
        &ca,
        "pkcs11:object=ca;slot-id=0;x-vendor=1",
        PIN,
        MODULE,
    )
    .code(2)
    .stderr_has("`slot-id`, `x-vendor`");

    // A missing object and a missing token: the URI named, not the PIN.
    issue_with(&token, &ca, "pkcs11:token=fleet;object=nope", PIN, MODULE)
        .code(1)
        .stderr_has("no private key matching `pkcs11:token=fleet;object=nope`")
        .output_lacks(PIN);
    issue_with(&token, &ca, "pkcs11:token=other;object=ca", PIN, MODULE)
        .code(1)
        .stderr_has("no token matches `pkcs11:token=other;object=ca`");

    // The token's other key is not the certificate's.
    let run = issue_with(&token, &ca, "pkcs11:token=fleet;object=other", PIN, MODULE);
    run.code(1)
        .stderr_has("the CA key does not belong to the CA certificate");
    nothing_written(&run);

    // A relative module path would be looked up in the library path.
    issue_with(
        &token,
        &ca,
        "pkcs11:token=fleet;object=ca",
        PIN,
        "libsofthsm2.so",
    )
    .code(2)
    .stderr_has("--pkcs11-module `libsofthsm2.so` is not an absolute path");

    // A module that does not load.
    issue_with(
        &token,
        &ca,
        "pkcs11:token=fleet;object=ca",
        PIN,
        "/nonexistent/p11.so",
    )
    .code(1)
    .stderr_has("the PKCS#11 module `/nonexistent/p11.so` cannot be loaded");

    // The token options without a URI, and a key password with one.
    sota(["device-certs", "--fleet-ca"])
        .arg(&ca)
        .args(["--fleet-ca-key", "ca.key", "--pkcs11-module", MODULE])
        .args(["--out", "out", "--device-id", "a"])
        .current_dir(token.path())
        .run()
        .code(2)
        .stderr_has("--pkcs11-module is for a fleet CA key in a token");
    let pw = token.dir.write("pw", "x\n");
    sota(["device-certs", "--fleet-ca"])
        .arg(&ca)
        .args([
            "--fleet-ca-key",
            "pkcs11:object=ca",
            "--pkcs11-module",
            MODULE,
        ])
        .arg("--fleet-ca-key-password-file")
        .arg(&pw)
        .args(["--out", "out", "--device-id", "a"])
        .env("SOTA_PKCS11_PIN", PIN)
        .current_dir(token.path())
        .run()
        .code(2)
        .stderr_has("--fleet-ca-key-password-file is for a key file");

    // And the right key signs.
    issue_with(&token, &ca, "pkcs11:token=fleet;object=ca", PIN, MODULE).success();
    token.verify(&ca, "out", "dev-1");
}

#[test]
fn a_token_key_signs_batch_after_batch_and_the_journal_names_its_uri_not_its_pin() {
    let token = Token::new();
    token.keypair("EC:prime256v1", "01", "ec256");
    let ca = token.ca_cert("ec256", "ca.pem");
    let out = token.dir.join("out");
    // Folder bundles go 200 to a batch: the 250th cannot be written, so
    // the first batch stays, journaled (--force: the folder exists).
    std::fs::create_dir_all(out.join("dev-250")).unwrap();
    std::fs::write(out.join("dev-250").join("var"), "in the way").unwrap();
    let run = |uri: &str, extra: &[&str]| {
        token.issue(
            &ca,
            uri,
            "out",
            &[&["--count", "250", "--id-prefix", "dev-"], extra].concat(),
        )
    };
    let uri = "pkcs11:token=fleet;object=ec256;type=private";
    let with_pin = |uri: &str, extra: &[&str]| {
        sota(["device-certs", "--fleet-ca"])
            .arg(&ca)
            .args(["--fleet-ca-key", uri, "--pkcs11-module", MODULE])
            .args(["--count", "250", "--id-prefix", "dev-", "--out"])
            .arg(&out)
            .args(extra)
            .env("SOFTHSM2_CONF", &token.conf)
            .env("SOTA_PKCS11_PIN", PIN)
            .run()
    };
    // Without the PIN: a usage error, nothing written.
    run(uri, &[]).code(2).stderr_has("SOTA_PKCS11_PIN");
    assert!(!out.join(".sota-stage-devices.journal").exists());
    with_pin(uri, &["--force"])
        .code(1)
        .stderr_has("note: 200 of 250 bundles are written and recorded in `")
        .output_lacks(PIN);
    let journal = std::fs::read_to_string(out.join(".sota-stage-devices.journal")).unwrap();
    let header = journal.lines().next().unwrap();
    assert!(
        header.contains(&format!("\"fleet_ca_key\":\"token:{uri}\"")),
        "{header}"
    );
    assert!(!journal.contains(PIN), "{journal}");
    // The same key by another URI: another source, refused.
    with_pin("pkcs11:token=fleet;id=%01", &[])
        .code(1)
        .stderr_has("(they differ in: fleet CA key)");
    // The same command finishes: the token signs the second batch.
    std::fs::remove_dir_all(out.join("dev-250")).unwrap();
    with_pin(uri, &[])
        .success()
        .stderr_has("issued 50 device certificates (ec-p256) in `")
        .stderr_has("; 200 more were issued by the interrupted run it finished");
    for id in ["dev-001", "dev-200", "dev-201", "dev-250"] {
        assert_eq!(token.verify(&ca, "out", id), "ecdsa-with-SHA256", "{id}");
    }
    let csv = std::fs::read_to_string(out.join("devices.csv")).unwrap();
    assert_eq!(csv.lines().count(), 251);
}
