//! `device-certs --csr`: requests made by `openssl req -new` (EC P-256,
//! P-384, RSA 2048, 3072, 4096; PEM and DER) signed into bundles without
//! a key that `openssl verify -x509_strict -purpose sslclient` accepts,
//! whose public key is the request's byte for byte; the record says
//! `csr`; and hostile requests refused, each naming its file, nothing
//! written.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::*;
use sha2::Digest;

const CLIENT: &str = "var/sota/import/client.pem";
const PKEY: &str = "var/sota/import/pkey.pem";

/// `device-certs` with the Pki's CA, `--csr csr`, into `out`.
fn sign(pki: &Pki, csr: &Path, out: &Path, args: &[&str]) -> Run {
    sota(["device-certs", "--fleet-ca"])
        .arg(&pki.ca().cert)
        .arg("--fleet-ca-key")
        .arg(&pki.ca().key)
        .arg("--csr")
        .arg(csr)
        .arg("--out")
        .arg(out)
        .args(args)
        .run()
}

/// A key of `genpkey -algorithm ALG -pkeyopt OPT` and a request for it,
/// `subject`, with requested extensions the station must ignore; DER when
/// `der`. Returns the request's path.
fn request(dir: &Path, name: &str, alg: &str, opt: &str, subject: &str, der: bool) -> PathBuf {
    let key = format!("{name}.key");
    openssl(
        dir,
        ["genpkey", "-algorithm", alg, "-pkeyopt", opt, "-out", &key],
    );
    let out = format!("csrs/{name}.{}", if der { "der" } else { "csr" });
    let mut args = vec![
        "req",
        "-new",
        "-key",
        &key,
        "-subj",
        subject,
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "subjectAltName=DNS:evil.example.test",
        "-out",
        &out,
    ];
    if der {
        args.extend(["-outform", "DER"]);
    }
    fs::create_dir_all(dir.join("csrs")).unwrap();
    openssl(dir, args);
    dir.join(out)
}

fn text(dir: &Path, args: &[&str]) -> String {
    String::from_utf8(openssl(dir, args.iter().copied())).unwrap()
}

/// The SHA-256 of the DER SubjectPublicKeyInfo of a PEM certificate
/// (`x509`) or request (`req`, PEM or DER), as openssl extracts it.
fn spki_sha256(dir: &Path, command: &str, file: &Path, inform: &str) -> String {
    let public = dir.join("spki.pem");
    openssl(
        dir,
        [
            command,
            "-inform",
            inform,
            "-in",
            file.to_str().unwrap(),
            "-noout",
            "-pubkey",
            "-out",
            public.to_str().unwrap(),
        ],
    );
    let der = dir.join("spki.der");
    openssl(
        dir,
        [
            "pkey",
            "-pubin",
            "-in",
            public.to_str().unwrap(),
            "-outform",
            "DER",
            "-out",
            der.to_str().unwrap(),
        ],
    );
    hex(&sha2::Sha256::digest(fs::read(der).unwrap()))
}

fn verify(dir: &Path, ca: &Path, cert: &Path) {
    let verified = text(
        dir,
        &[
            "verify",
            "-x509_strict",
            "-purpose",
            "sslclient",
            "-CAfile",
            ca.to_str().unwrap(),
            cert.to_str().unwrap(),
        ],
    );
    assert!(verified.ends_with(": OK\n"), "{verified}");
}

#[test]
fn requests_of_every_key_type_are_signed_without_a_key_in_the_bundle() {
    let dir = TestDir::new();
    let pki = Pki::new(&dir);
    let d = dir.path();
    let devices = [
        ("ec256", "EC", "ec_paramgen_curve:P-256", "ec-p256", false),
        ("ec384", "EC", "ec_paramgen_curve:P-384", "ec-p384", true),
        ("rsa2048", "RSA", "rsa_keygen_bits:2048", "rsa-2048", false),
        ("rsa3072", "RSA", "rsa_keygen_bits:3072", "rsa-3072", true),
        ("rsa4096", "RSA", "rsa_keygen_bits:4096", "rsa-4096", false),
    ];
    for (name, alg, opt, _, der) in devices {
        let subject = format!("/C=XX/O=Requested Org/CN=dev-{name}");
        request(d, name, alg, opt, &subject, der);
    }
    let out = dir.join("out");
    sign(&pki, &dir.join("csrs"), &out, &["--subject-o", "Fleet"])
        .success()
        .stderr_has("issued 5 device certificates (from certificate requests");
    let json: serde_json::Value =
        serde_json::from_slice(&fs::read(out.join("devices.json")).unwrap()).unwrap();
    let records = json["devices"].as_array().unwrap();
    // Sorted by file name: ec256.csr, ec384.der, rsa2048.csr, ...
    assert_eq!(records.len(), 5);
    for ((name, _, _, key_type, der), record) in devices.iter().zip(records) {
        let id = format!("dev-{name}");
        let bundle = out.join(&id);
        assert!(!bundle.join(PKEY).exists(), "{id} got a key");
        let cert = bundle.join(CLIENT);
        verify(d, &pki.ca().cert, &cert);
        // The request's public key, byte for byte; its subject and
        // extensions are not taken.
        let csr = dir.join(format!("csrs/{name}.{}", if *der { "der" } else { "csr" }));
        let from_csr = spki_sha256(d, "req", &csr, if *der { "DER" } else { "PEM" });
        assert_eq!(spki_sha256(d, "x509", &cert, "PEM"), from_csr, "{id}");
        let dump = text(
            d,
            &["x509", "-in", cert.to_str().unwrap(), "-noout", "-text"],
        );
        assert!(dump.contains("CA:FALSE"), "{dump}");
        assert!(!dump.contains("evil.example.test"), "{dump}");
        assert!(dump.contains("TLS Web Client Authentication"), "{dump}");
        let subject = text(
            d,
            &[
                "x509",
                "-in",
                cert.to_str().unwrap(),
                "-noout",
                "-subject",
                "-nameopt",
                "RFC2253",
            ],
        );
        assert_eq!(subject, format!("subject=CN={id},O=Fleet\n"));
        assert_eq!(record["id"], id.as_str());
        assert_eq!(record["key_source"], "csr");
        assert_eq!(record["key_type"], *key_type);
        assert_eq!(record["public_key_sha256"], from_csr.as_str());
    }
    // The device's own key completes the pair: its public key is the
    // certificate's.
    let key_public = text(d, &["pkey", "-in", "rsa3072.key", "-pubout"]);
    let cert_public = text(
        d,
        &[
            "x509",
            "-in",
            out.join("dev-rsa3072").join(CLIENT).to_str().unwrap(),
            "-noout",
            "-pubkey",
        ],
    );
    assert_eq!(key_public, cert_public);
}

#[test]
fn one_request_file_into_a_tar_bundle_holds_no_key() {
    let dir = TestDir::new();
    let pki = Pki::new(&dir);
    let csr = request(
        dir.path(),
        "one",
        "EC",
        "ec_paramgen_curve:P-256",
        "/CN=one-device",
        false,
    );
    let out = dir.join("out");
    sign(&pki, &csr, &out, &["--format", "tar"]).success();
    let listing = String::from_utf8(
        std::process::Command::new("tar")
            .arg("-tvf")
            .arg(out.join("one-device.tar"))
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    assert!(listing.contains(CLIENT), "{listing}");
    assert!(!listing.contains("pkey.pem"), "{listing}");
}

/// The run failed with exit 1 naming `needle`, and wrote nothing.
fn refused(run: &Run, out: &Path, needle: &str) {
    run.code(1).stderr_has(needle).output_lacks("BEGIN");
    assert!(!out.exists(), "{} was made", out.display());
}

#[test]
fn hostile_requests_are_refused_naming_the_file() {
    let dir = TestDir::new();
    let pki = Pki::new(&dir);
    let d = dir.path();
    let good = request(d, "good", "EC", "ec_paramgen_curve:P-256", "/CN=good", true);
    let out = dir.join("out");
    let bad = dir.mkdir("bad");

    // A flipped bit in the signature (the last bytes of the DER).
    let mut bytes = fs::read(&good).unwrap();
    let at = bytes.len() - 4;
    bytes[at] ^= 1;
    let file = dir.write("bad/signature.der", &bytes);
    refused(
        &sign(&pki, &file, &out, &[]),
        &out,
        "signature.der`: its signature does not verify with its own public key",
    );
    // A flipped bit in the signed part (the CN's last letter): the
    // signature no longer covers it.
    let mut bytes = fs::read(&good).unwrap();
    let cn = bytes.windows(4).position(|w| w == b"good").unwrap();
    bytes[cn + 3] = b'e';
    let file = dir.write("bad/altered.der", &bytes);
    refused(
        &sign(&pki, &file, &out, &[]),
        &out,
        "altered.der`: its signature does not verify",
    );
    // Truncated DER.
    let bytes = fs::read(&good).unwrap();
    let file = dir.write("bad/truncated.der", &bytes[..bytes.len() / 2]);
    refused(
        &sign(&pki, &file, &out, &[]),
        &out,
        "truncated.der`: not a certificate request",
    );
    // A CN that breaks the id rules, and none at all.
    for (name, subject, needle) in [
        ("space", "/CN=a b", "its CN `a b` is no device id"),
        ("dotted", "/CN=.hidden", "its CN `.hidden` is no device id"),
        ("nocn", "/O=Fleet", "its subject has no commonName"),
    ] {
        let csr = request(d, name, "EC", "ec_paramgen_curve:P-256", subject, false);
        refused(&sign(&pki, &csr, &out, &[]), &out, needle);
        refused(&sign(&pki, &csr, &out, &[]), &out, &format!("{name}.csr`"));
    }
    // Unsupported keys: RSA below 2048 bits, another curve, ED25519.
    for (name, alg, opt, needle) in [
        (
            "rsa1024",
            "RSA",
            "rsa_keygen_bits:1024",
            "its key is RSA 1024",
        ),
        (
            "k256",
            "EC",
            "ec_paramgen_curve:secp256k1",
            "its key is EC curve",
        ),
    ] {
        let csr = request(d, name, alg, opt, "/CN=x", false);
        refused(&sign(&pki, &csr, &out, &[]), &out, needle);
    }
    openssl(d, ["genpkey", "-algorithm", "ED25519", "-out", "ed.key"]);
    openssl(
        d,
        [
            "req",
            "-new",
            "-key",
            "ed.key",
            "-subj",
            "/CN=ed",
            "-out",
            "bad/ed.csr",
        ],
    );
    refused(
        &sign(&pki, &bad.join("ed.csr"), &out, &[]),
        &out,
        "ed.csr`: its key is ED25519",
    );
    // A huge file is not read past the limit.
    let file = dir.write("bad/huge.csr", vec![b'A'; 65 * 1024]);
    refused(
        &sign(&pki, &file, &out, &[]),
        &out,
        "huge.csr` is larger than 65536 bytes",
    );
    // Not a request: a certificate.
    refused(
        &sign(&pki, &pki.ca().cert, &out, &[]),
        &out,
        "not a certificate request: it holds no PEM `CERTIFICATE REQUEST` block",
    );

    // A folder: every problem at once, each naming its file; two
    // requests for one id.
    let folder = dir.mkdir("folder");
    fs::copy(&good, folder.join("a.der")).unwrap();
    fs::copy(&good, folder.join("b.der")).unwrap();
    fs::copy(bad.join("signature.der"), folder.join("c.der")).unwrap();
    fs::copy(dir.join("csrs/space.csr"), folder.join("d.csr")).unwrap();
    let run = sign(&pki, &folder, &out, &[]);
    refused(
        &run,
        &out,
        "certificate requests are refused; nothing was written",
    );
    run.stderr_has("b.der`: its CN `good` is the id of `")
        .stderr_has("c.der`: its signature does not verify")
        .stderr_has("d.csr`: its CN `a b` is no device id");
    // An empty folder.
    let empty = dir.mkdir("empty");
    refused(
        &sign(&pki, &empty, &out, &[]),
        &out,
        "holds no request files",
    );
    // --csr with ids or a key type is a usage error.
    sign(&pki, &good, &out, &["--device-id", "x"]).code(2);
    sign(&pki, &good, &out, &["--key-type", "ec-p384"]).code(2);
}
