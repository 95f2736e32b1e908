//! `device-certs`: bundles that `openssl verify -purpose sslclient`
//! accepts, that complete a real mutual-TLS handshake against a server
//! demanding a client certificate of the fleet CA, that `stage
//! --method device-cred` takes; the record; reproducible tars; and every
//! refusal, each leaving nothing behind.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::*;
use sha2::Digest;

const CLIENT: &str = "var/sota/import/client.pem";
const PKEY: &str = "var/sota/import/pkey.pem";

/// `device-certs` with the Pki's CA and `args`, into `out`.
fn issue(pki: &Pki, out: &Path, args: &[&str]) -> Run {
    sota(["device-certs", "--fleet-ca"])
        .arg(&pki.ca().cert)
        .arg("--fleet-ca-key")
        .arg(&pki.ca().key)
        .arg("--out")
        .arg(out)
        .args(args)
        .run()
}

/// `device-certs` with any CA files.
fn issue_with(ca: &Path, key: &Path, out: &Path, args: &[&str]) -> Run {
    sota(["device-certs", "--fleet-ca"])
        .arg(ca)
        .arg("--fleet-ca-key")
        .arg(key)
        .arg("--out")
        .arg(out)
        .args(args)
        .run()
}

fn mode(path: &Path) -> u32 {
    fs::symlink_metadata(path).unwrap().permissions().mode() & 0o7777
}

fn text(dir: &Path, args: &[&str]) -> String {
    String::from_utf8(openssl(dir, args.iter().copied())).unwrap()
}

/// The DER of a PEM certificate.
fn der(dir: &Path, pem: &Path) -> Vec<u8> {
    let out = dir.join("cert.der");
    openssl(
        dir,
        [
            "x509",
            "-in",
            pem.to_str().unwrap(),
            "-outform",
            "DER",
            "-out",
            out.to_str().unwrap(),
        ],
    );
    fs::read(out).unwrap()
}

/// The SHA-256 of a PEM certificate's or request's DER
/// SubjectPublicKeyInfo, as openssl extracts it.
fn spki_sha256(dir: &Path, pem: &Path) -> String {
    let command = if fs::read_to_string(pem).unwrap().contains("REQUEST") {
        "req"
    } else {
        "x509"
    };
    let public = dir.join("spki.pem");
    openssl(
        dir,
        [
            command,
            "-in",
            pem.to_str().unwrap(),
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

#[test]
fn bundles_verify_as_client_certificates_with_every_extension() {
    let dir = TestDir::new();
    let pki = Pki::new(&dir);
    let out = dir.join("out");
    issue(
        &pki,
        &out,
        &[
            "--count",
            "3",
            "--id-prefix",
            "dev-",
            "--device-id",
            "vin.XY_99",
            "--subject-o",
            "Example Fleet",
            "--subject-ou",
            "Line 2",
            "--subject-c",
            "de",
            "--subject-st",
            "Berlin",
        ],
    )
    .success()
    .stderr_has("issued 4 device certificates (ec-p256) in `")
    .output_lacks("BEGIN")
    .output_lacks("PRIVATE");

    let ids = ["vin.XY_99", "dev-1", "dev-2", "dev-3"];
    for id in ids {
        let bundle = out.join(id);
        assert_eq!(mode(&bundle.join("var/sota")), 0o700, "{id}");
        assert_eq!(mode(&bundle.join("var/sota/import")), 0o700, "{id}");
        assert_eq!(mode(&bundle.join(CLIENT)), 0o644, "{id}");
        assert_eq!(mode(&bundle.join(PKEY)), 0o600, "{id}");
        let cert = bundle.join(CLIENT);
        let cert_arg = cert.to_str().unwrap();
        let ca = pki.ca().cert.to_str().unwrap();
        let verified = text(
            pki.dir(),
            &[
                "verify",
                "-x509_strict",
                "-purpose",
                "sslclient",
                "-CAfile",
                ca,
                cert_arg,
            ],
        );
        assert!(verified.ends_with(": OK\n"), "{verified}");
        let subject = text(
            pki.dir(),
            &[
                "x509", "-in", cert_arg, "-noout", "-subject", "-nameopt", "RFC2253",
            ],
        );
        assert_eq!(
            subject,
            format!("subject=CN={id},OU=Line 2,O=Example Fleet,ST=Berlin,C=DE\n")
        );
        let dump = text(pki.dir(), &["x509", "-in", cert_arg, "-noout", "-text"]);
        for needle in [
            "Version: 3 (0x2)",
            "Signature Algorithm: ecdsa-with-SHA256",
            "ASN1 OID: prime256v1",
            "X509v3 Basic Constraints: critical\n                CA:FALSE",
            "X509v3 Key Usage: critical\n                Digital Signature\n",
            "X509v3 Extended Key Usage: critical\n                TLS Web Client Authentication\n",
            "X509v3 Subject Key Identifier",
            "X509v3 Authority Key Identifier",
        ] {
            assert!(dump.contains(needle), "{needle} in\n{dump}");
        }
        // The key in the bundle is the certificate's.
        let key = bundle.join(PKEY);
        let from_cert = text(pki.dir(), &["x509", "-in", cert_arg, "-noout", "-pubkey"]);
        let from_key = text(
            pki.dir(),
            &["pkey", "-in", key.to_str().unwrap(), "-pubout"],
        );
        assert_eq!(from_cert, from_key, "{id}");
        assert!(fs::read_to_string(&key)
            .unwrap()
            .starts_with("-----BEGIN PRIVATE KEY-----\n"));
    }
    // The authority key identifier is the CA's subject key identifier.
    let ca_dump = text(
        pki.dir(),
        &[
            "x509",
            "-in",
            pki.ca().cert.to_str().unwrap(),
            "-noout",
            "-ext",
            "subjectKeyIdentifier",
        ],
    );
    let ca_ski = ca_dump.lines().nth(1).unwrap().trim().to_string();
    let aki = text(
        pki.dir(),
        &[
            "x509",
            "-in",
            out.join("dev-1").join(CLIENT).to_str().unwrap(),
            "-noout",
            "-ext",
            "authorityKeyIdentifier",
        ],
    );
    assert!(aki.contains(&ca_ski), "{ca_ski} in {aki}");
}

#[test]
fn the_record_lists_every_device_in_json_and_csv() {
    let dir = TestDir::new();
    let pki = Pki::new(&dir);
    let out = dir.join("out");
    let ids_file = dir.write("ids.txt", "# line 4\nalpha\n\n  beta  \r\n");
    issue(
        &pki,
        &out,
        &["--ids", ids_file.to_str().unwrap(), "--days", "30"],
    )
    .success();
    let json: serde_json::Value =
        serde_json::from_slice(&fs::read(out.join("devices.json")).unwrap()).unwrap();
    assert_eq!(json["schema"], 1);
    let ca_der = der(pki.dir(), &pki.ca().cert);
    assert_eq!(
        json["fleet_ca"]["sha256"],
        hex(&sha2::Sha256::digest(&ca_der))
    );
    assert_eq!(json["fleet_ca"]["subject"], format!("CN={CA_UUID}"));
    let devices = json["devices"].as_array().unwrap();
    assert_eq!(devices.len(), 2);
    let csv = fs::read_to_string(out.join("devices.csv")).unwrap();
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("id,serial,sha256,not_before,not_after,key_type,path,key_source,public_key_sha256")
    );
    for (device, id) in devices.iter().zip(["alpha", "beta"]) {
        assert_eq!(device["id"], id);
        assert_eq!(device["path"], id);
        assert_eq!(device["key_type"], "ec-p256");
        assert_eq!(device["key_source"], "minted");
        let cert = out.join(id).join(CLIENT);
        assert_eq!(device["public_key_sha256"], spki_sha256(pki.dir(), &cert));
        let cert_der = der(pki.dir(), &cert);
        assert_eq!(device["sha256"], hex(&sha2::Sha256::digest(&cert_der)));
        let serial = text(
            pki.dir(),
            &["x509", "-in", cert.to_str().unwrap(), "-noout", "-serial"],
        );
        let serial = serial
            .trim()
            .strip_prefix("serial=")
            .unwrap()
            .to_lowercase();
        assert_eq!(device["serial"], serial.as_str());
        // 128 random bits: at most 16 bytes as a number.
        assert!(serial.len() <= 32 && serial.len() >= 24, "{serial}");
        let not_before = device["not_before"].as_str().unwrap();
        let not_after = device["not_after"].as_str().unwrap();
        assert!(not_before.ends_with('Z') && not_before.contains('T'));
        let fields: Vec<String> = [
            "id",
            "serial",
            "sha256",
            "not_before",
            "not_after",
            "key_type",
            "path",
            "key_source",
            "public_key_sha256",
        ]
        .iter()
        .map(|k| device[*k].as_str().unwrap().to_string())
        .collect();
        assert_eq!(lines.next().unwrap(), fields.join(","));
        // 30 days from now.
        let end = text(
            pki.dir(),
            &[
                "x509",
                "-in",
                cert.to_str().unwrap(),
                "-noout",
                "-checkend",
                &(29 * 86_400).to_string(),
            ],
        );
        assert!(end.contains("will not expire"), "{end} ({not_after})");
        let (ok, _) = openssl_status(
            pki.dir(),
            [
                "x509",
                "-in",
                cert.to_str().unwrap(),
                "-noout",
                "-checkend",
                &(31 * 86_400).to_string(),
            ],
        );
        assert!(!ok, "valid past 30 days");
    }
}

#[test]
fn serials_are_unique_across_a_batch() {
    let dir = TestDir::new();
    let pki = Pki::new(&dir);
    let out = dir.join("out");
    issue(&pki, &out, &["--count", "500", "--id-prefix", "n"]).success();
    let json: serde_json::Value =
        serde_json::from_slice(&fs::read(out.join("devices.json")).unwrap()).unwrap();
    let devices = json["devices"].as_array().unwrap();
    assert_eq!(devices.len(), 500);
    assert_eq!(devices[0]["id"], "n001");
    assert_eq!(devices[499]["id"], "n500");
    let serials: BTreeSet<&str> = devices
        .iter()
        .map(|d| d["serial"].as_str().unwrap())
        .collect();
    assert_eq!(serials.len(), 500);
}

/// A CA made here with `openssl req -x509`: `key_alg` for genpkey's
/// `-algorithm EC -pkeyopt ec_paramgen_curve:...`, the extensions given.
fn custom_ca(dir: &TestDir, name: &str, curve: &str, extensions: &str) -> (PathBuf, PathBuf) {
    let folder = dir.mkdir(name);
    fs::write(
        folder.join("ca.cnf"),
        format!(
            "[req]\ndistinguished_name = dn\nprompt = no\n[dn]\nCN = {name}\n[ext]\n{extensions}\n"
        ),
    )
    .unwrap();
    openssl(
        &folder,
        [
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            &format!("ec_paramgen_curve:{curve}"),
            "-out",
            "ca.key",
        ],
    );
    openssl(
        &folder,
        [
            "req",
            "-x509",
            "-new",
            "-key",
            "ca.key",
            "-config",
            "ca.cnf",
            "-extensions",
            "ext",
            "-days",
            "3650",
            "-out",
            "ca.pem",
        ],
    );
    (folder.join("ca.pem"), folder.join("ca.key"))
}

const GOOD_CA_EXT: &str = "basicConstraints = critical, CA:TRUE\nkeyUsage = critical, keyCertSign, cRLSign\nsubjectKeyIdentifier = hash";

#[test]
fn p384_keys_and_a_p384_ca() {
    let dir = TestDir::new();
    let (ca, key) = custom_ca(&dir, "p384-ca", "P-384", GOOD_CA_EXT);
    let out = dir.join("out");
    issue_with(
        &ca,
        &key,
        &out,
        &["--device-id", "d1", "--key-type", "ec-p384"],
    )
    .success()
    .stderr_has("(ec-p384");
    let cert = out.join("d1").join(CLIENT);
    let verified = text(
        dir.path(),
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
    let dump = text(
        dir.path(),
        &["x509", "-in", cert.to_str().unwrap(), "-noout", "-text"],
    );
    assert!(dump.contains("ASN1 OID: secp384r1"), "{dump}");
    assert!(
        dump.contains("Signature Algorithm: ecdsa-with-SHA256"),
        "{dump}"
    );
    let json: serde_json::Value =
        serde_json::from_slice(&fs::read(out.join("devices.json")).unwrap()).unwrap();
    assert_eq!(json["devices"][0]["key_type"], "ec-p384");
}

/// Kills the server when a test ends, however it ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A free port on localhost, for a moment.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One TLS connection to an `openssl s_server` that demands a client
/// certificate issued by `client_ca` (`-Verify 1 -verify_return_error`)
/// and answers with a web page; `client` are s_client's certificate
/// arguments. Returns whether the page came back, and what s_client said.
fn handshake(dir: &TestDir, client_ca: &Path, client: &[&str]) -> (bool, String) {
    let server_dir = dir.join("server");
    if !server_dir.exists() {
        fs::create_dir(&server_dir).unwrap();
        fs::write(
            server_dir.join("s.cnf"),
            "[req]\ndistinguished_name = dn\nprompt = no\n[dn]\nCN = localhost\n[ext]\nsubjectAltName = IP:127.0.0.1\n",
        )
        .unwrap();
        openssl(
            &server_dir,
            [
                "req",
                "-x509",
                "-new",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                "server.key",
                "-config",
                "s.cnf",
                "-extensions",
                "ext",
                "-days",
                "2",
                "-out",
                "server.pem",
            ],
        );
    }
    let port = free_port().to_string();
    let mut child = Command::new("openssl")
        .current_dir(&server_dir)
        .args([
            "s_server",
            "-accept",
            &port,
            "-naccept",
            "1",
            "-cert",
            "server.pem",
            "-key",
            "server.key",
            "-CAfile",
            client_ca.to_str().unwrap(),
            "-Verify",
            "1",
            "-verify_return_error",
            "-www",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("openssl s_server");
    let stdout = child.stdout.take().unwrap();
    let server = Server(child);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if line.contains("ACCEPT") {
                let _ = tx.send(());
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(20))
        .expect("openssl s_server did not start listening within 20 s");
    let connect = format!("127.0.0.1:{port}");
    let mut args = vec![
        "s_client",
        "-connect",
        &connect,
        "-CAfile",
        "server.pem",
        "-verify_return_error",
        "-quiet",
        "-ign_eof",
    ];
    args.extend(client);
    let run = Cmd::new("openssl")
        .args(args)
        .current_dir(&server_dir)
        .stdin("GET / HTTP/1.0\r\n\r\n")
        .timeout(Duration::from_secs(30))
        .run();
    drop(server);
    let said = format!("{}{}", run.stdout, run.stderr);
    (run.stdout.contains("HTTP/1.0 200 ok"), said)
}

#[test]
fn a_bundle_completes_a_mutual_tls_handshake() {
    let dir = TestDir::new();
    let pki = Pki::new(&dir);
    let out = dir.join("out");
    // One device: the summary counts it in the singular.
    issue(&pki, &out, &["--device-id", "tls-device"])
        .success()
        .stderr_has("issued 1 device certificate (ec-p256");
    let cert = out.join("tls-device").join(CLIENT);
    let key = out.join("tls-device").join(PKEY);
    let (ok, said) = handshake(
        &dir,
        &pki.ca().cert,
        &[
            "-cert",
            cert.to_str().unwrap(),
            "-key",
            key.to_str().unwrap(),
        ],
    );
    assert!(ok, "the server refused the bundle:\n{said}");
    // The server really demands a certificate of the fleet CA: none, or one
    // of another CA, gets no page.
    let (ok, said) = handshake(&dir, &pki.ca().cert, &[]);
    assert!(!ok, "served without a client certificate:\n{said}");
    let other = Pki::new(&dir);
    let stranger = dir.join("stranger");
    issue(&other, &stranger, &["--device-id", "tls-device"]).success();
    let (ok, said) = handshake(
        &dir,
        &pki.ca().cert,
        &[
            "-cert",
            stranger.join("tls-device").join(CLIENT).to_str().unwrap(),
            "-key",
            stranger.join("tls-device").join(PKEY).to_str().unwrap(),
        ],
    );
    assert!(!ok, "served a certificate of another CA:\n{said}");
}

#[test]
fn stage_takes_a_bundle_and_credentials_complete_it() {
    let dir = TestDir::new();
    let pki = Pki::new(&dir);
    let zip = Creds::typical(&pki).write_to(&dir, "c.zip");
    let out = dir.join("out");
    issue(
        &pki,
        &out,
        &[
            "--device-id",
            "car-1",
            "--credentials",
            zip.to_str().unwrap(),
        ],
    )
    .success();
    let bundle = out.join("car-1");
    let dev = dir.join("dev");
    sota(["stage", "--method", "device-cred", "--credentials"])
        .arg(&zip)
        .arg("--device-root")
        .arg(&dev)
        .arg("--device-cert")
        .arg(bundle.join(CLIENT))
        .arg("--device-key")
        .arg(bundle.join(PKEY))
        .run()
        .success();
    // What stage put in the image is what the bundle holds, fleet files
    // included, with the same modes.
    for file in [
        CLIENT,
        PKEY,
        "var/sota/import/root.crt",
        "var/sota/import/gateway.url",
    ] {
        assert_eq!(
            fs::read(dev.join(file)).unwrap(),
            fs::read(bundle.join(file)).unwrap(),
            "{file}"
        );
        assert_eq!(mode(&dev.join(file)), mode(&bundle.join(file)), "{file}");
    }
}

fn tar_listing(dir: &Path, tar: &Path) -> String {
    let run = Cmd::new("tar")
        .args(["--numeric-owner", "--full-time", "-tvf"])
        .arg(tar)
        .current_dir(dir)
        .env("TZ", "UTC")
        .run();
    run.success();
    // Sizes differ by a byte now and then (DER integers): leave them out.
    run.stdout
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            format!("{} {} {} {} {}", f[0], f[1], f[3], f[4], f[5])
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn tar_bundles_are_reproducible_and_unpack_like_folders() {
    let dir = TestDir::new();
    let pki = Pki::new(&dir);
    let run = |out: &Path| {
        sota(["device-certs", "--format", "tar", "--fleet-ca"])
            .arg(&pki.ca().cert)
            .arg("--fleet-ca-key")
            .arg(&pki.ca().key)
            .arg("--out")
            .arg(out)
            .args(["--device-id", "t1", "--device-id", "t2"])
            .env("SOURCE_DATE_EPOCH", "1700000000")
            .run()
            .success();
    };
    let (a, b) = (dir.join("a"), dir.join("b"));
    run(&a);
    run(&b);
    assert_eq!(mode(&a.join("t1.tar")), 0o600);
    let listing = tar_listing(dir.path(), &a.join("t1.tar"));
    assert_eq!(
        listing,
        "drwxr-xr-x 0/0 2023-11-14 22:13:20 var/\n\
         drwx------ 0/0 2023-11-14 22:13:20 var/sota/\n\
         drwx------ 0/0 2023-11-14 22:13:20 var/sota/import/\n\
         -rw-r--r-- 0/0 2023-11-14 22:13:20 var/sota/import/client.pem\n\
         -rw------- 0/0 2023-11-14 22:13:20 var/sota/import/pkey.pem"
    );
    assert_eq!(listing, tar_listing(dir.path(), &b.join("t1.tar")));
    // Unpacked, it is the folder bundle: same paths and modes; the record
    // names the tar.
    let unpacked = dir.mkdir("unpacked");
    Cmd::new("tar")
        .args(["-xpf"])
        .arg(a.join("t2.tar"))
        .current_dir(&unpacked)
        .run()
        .success();
    let json: serde_json::Value =
        serde_json::from_slice(&fs::read(a.join("devices.json")).unwrap()).unwrap();
    assert_eq!(json["devices"][1]["path"], "t2.tar");
    let cert_der = der(pki.dir(), &unpacked.join(CLIENT));
    assert_eq!(
        json["devices"][1]["sha256"],
        hex(&sha2::Sha256::digest(&cert_der))
    );
    assert_eq!(mode(&unpacked.join(PKEY)), 0o600);
    // Folder bundles get SOURCE_DATE_EPOCH as their time too.
    let folders = dir.join("folders");
    sota(["device-certs", "--fleet-ca"])
        .arg(&pki.ca().cert)
        .arg("--fleet-ca-key")
        .arg(&pki.ca().key)
        .arg("--out")
        .arg(&folders)
        .args(["--device-id", "t1"])
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .run()
        .success();
    let t = tree(&folders);
    for (path, node) in &t {
        if !path.is_empty() {
            assert_eq!(node.mtime.0, 1_700_000_000, "{path}");
        }
    }
}

/// A refused run: exit 1, the message, no key material, and nothing in
/// `out`.
fn refused(run: &Run, out: &Path, needle: &str) {
    run.code(1).stderr_has(needle).output_lacks("BEGIN");
    let left: Vec<_> = fs::read_dir(out)
        .map(|d| d.map(|e| e.unwrap().file_name()).collect())
        .unwrap_or_default();
    assert!(
        left.is_empty(),
        "left behind in {}: {left:?}",
        out.display()
    );
}

#[test]
fn refuses_a_ca_key_that_does_not_belong_to_the_ca() {
    let dir = TestDir::new();
    let pki = Pki::new(&dir);
    let other = pki.client(KeyAlg::Ec, Validity::Normal);
    let out = dir.join("out");
    refused(
        &issue_with(&pki.ca().cert, &other.key, &out, &["--device-id", "d"]),
        &out,
        "the CA key does not belong to the CA certificate",
    );
}

#[test]
fn refuses_a_certificate_that_is_not_a_signing_ca() {
    let dir = TestDir::new();
    let pki = Pki::new(&dir);
    let out = dir.join("out");
    // A client certificate: CA:FALSE.
    let client = pki.client(KeyAlg::Ec, Validity::Normal);
    refused(
        &issue_with(&client.cert, &client.key, &out, &["--device-id", "d"]),
        &out,
        "is not a CA: it has no basicConstraints CA:TRUE",
    );
    // CA:TRUE, but keyUsage without keyCertSign, or no keyUsage at all.
    let (ca, key) = custom_ca(
        &dir,
        "no-certsign",
        "P-256",
        "basicConstraints = critical, CA:TRUE\nkeyUsage = critical, digitalSignature, cRLSign",
    );
    refused(
        &issue_with(&ca, &key, &out, &["--device-id", "d"]),
        &out,
        "may not sign certificates: its keyUsage lacks keyCertSign",
    );
    let (ca, key) = custom_ca(
        &dir,
        "no-ku",
        "P-256",
        "basicConstraints = critical, CA:TRUE",
    );
    refused(
        &issue_with(&ca, &key, &out, &["--device-id", "d"]),
        &out,
        "may not sign certificates: its keyUsage extension is missing",
    );
}

#[test]
fn refuses_an_expired_ca_and_shortens_to_the_cas_end() {
    let dir = TestDir::new();
    let pki = Pki::new(&dir);
    // A sub-CA of the Pki's, expired in 2020.
    let sub = pki.dir();
    ec_p256_key(sub, "sub.key");
    openssl(
        sub,
        [
            "req",
            "-config",
            "openssl.cnf",
            "-new",
            "-key",
            "sub.key",
            "-subj",
            "/CN=sub",
            "-out",
            "sub.csr",
        ],
    );
    let ca_args = |out: &str, dates: &[&str]| {
        let mut args = vec![
            "ca",
            "-batch",
            "-config",
            "openssl.cnf",
            "-cert",
            "ca.pem",
            "-keyfile",
            "ca.key",
            "-in",
            "sub.csr",
            "-out",
            out,
            "-extensions",
            "v3_ca",
            "-notext",
        ];
        args.extend(dates);
        openssl(sub, args);
    };
    ca_args(
        "sub-expired.pem",
        &[
            "-startdate",
            "20190101000000Z",
            "-enddate",
            "20200101000000Z",
        ],
    );
    let out = dir.join("out");
    refused(
        &issue_with(
            &sub.join("sub-expired.pem"),
            &sub.join("sub.key"),
            &out,
            &["--device-id", "d"],
        ),
        &out,
        "expired on 2020-01-01; renew the fleet CA",
    );
    // Valid for 10 more days: 365 days are cut to 10, with a warning, and
    // the chain verifies.
    ca_args("sub-short.pem", &["-days", "10"]);
    issue_with(
        &sub.join("sub-short.pem"),
        &sub.join("sub.key"),
        &out,
        &["--device-id", "d"],
    )
    .success()
    .stderr_has("warning: the fleet CA expires on ")
    .stderr_has("instead of 365");
    let cert = out.join("d").join(CLIENT);
    let (ok, _) = openssl_status(
        sub,
        [
            "x509",
            "-in",
            cert.to_str().unwrap(),
            "-noout",
            "-checkend",
            &(11 * 86_400).to_string(),
        ],
    );
    assert!(!ok, "valid past the CA's end");
    let verified = text(
        sub,
        &[
            "verify",
            "-purpose",
            "sslclient",
            "-CAfile",
            "ca.pem",
            "-untrusted",
            "sub-short.pem",
            cert.to_str().unwrap(),
        ],
    );
    assert!(verified.ends_with(": OK\n"), "{verified}");
}

#[test]
fn refuses_rsa_with_the_reason_and_what_to_do() {
    let dir = TestDir::new();
    let pki = Pki::new(&dir);
    let out = dir.join("out");
    for key_type in ["rsa-2048", "rsa-3072"] {
        refused(
            &issue(&pki, &out, &["--device-id", "d", "--key-type", key_type]),
            &out,
            "RUSTSEC-2023-0071",
        );
    }
    issue(&pki, &out, &["--device-id", "d", "--key-type", "rsa-2048"])
        .stderr_has("use --key-type ec-p256");
    let rsa = Pki::with_ca(&dir, KeyAlg::Rsa);
    refused(
        &issue(&rsa, &out, &["--device-id", "d"]),
        &out,
        "the CA key is RSA 2048: RSA fleet CAs cannot sign here",
    );
    issue(&rsa, &out, &["--device-id", "d"]).stderr_has("use an EC P-256 or P-384 fleet CA");
}

#[test]
fn refuses_bad_and_duplicate_ids_all_at_once() {
    let dir = TestDir::new();
    let pki = Pki::new(&dir);
    let out = dir.join("out");
    let long = "x".repeat(65);
    let ids = dir.write("ids", format!("ok-1\n.hidden\na/b\n{long}\nok-1\n"));
    let run = issue(
        &pki,
        &out,
        &[
            "--ids",
            ids.to_str().unwrap(),
            "--device-id",
            "",
            "--device-id",
            "caf\u{e9}",
        ],
    );
    refused(&run, &out, "device ids are refused; nothing was written");
    run.stderr_has("device id ``: it is empty")
        .stderr_has("device id `.hidden`: it starts with `.`")
        .stderr_has("device id `a/b`: it holds a character outside [A-Za-z0-9._-]")
        .stderr_has(&format!(
            "device id `{long}`: it is longer than 64 characters"
        ))
        .stderr_has("device id `café`: it holds a character outside")
        .stderr_has("device id `ok-1` is given more than once");
    // 64 characters is fine.
    issue(&pki, &out, &["--device-id", &"x".repeat(64)]).success();
    // No ids at all is a usage error.
    issue(&pki, &dir.join("none"), &[])
        .code(2)
        .stderr_has("no device ids");
}

#[test]
fn refuses_existing_bundles_unless_forced() {
    let dir = TestDir::new();
    let pki = Pki::new(&dir);
    let out = dir.join("out");
    issue(&pki, &out, &["--device-id", "a"]).success();
    let first = fs::read(out.join("a").join(PKEY)).unwrap();
    let record = fs::read(out.join("devices.json")).unwrap();
    issue(&pki, &out, &["--device-id", "a", "--device-id", "b"])
        .code(1)
        .stderr_has("already holds bundles or a record of an earlier run; nothing was written (give another --out folder, or --force to replace them):\n  - a\n  - devices.json\n  - devices.csv");
    assert!(!out.join("b").exists());
    assert_eq!(fs::read(out.join("a").join(PKEY)).unwrap(), first);
    assert_eq!(fs::read(out.join("devices.json")).unwrap(), record);
    issue(
        &pki,
        &out,
        &["--device-id", "a", "--device-id", "b", "--force"],
    )
    .success();
    assert_ne!(fs::read(out.join("a").join(PKEY)).unwrap(), first);
    assert!(out.join("b").join(PKEY).exists());
}

#[test]
fn a_failure_part_way_leaves_nothing() {
    let dir = TestDir::new();
    let pki = Pki::new(&dir);
    let out = dir.join("out");
    // The third bundle cannot be written (a file where its folder goes):
    // the first two and the record are not left behind.
    fs::create_dir_all(out.join("c")).unwrap();
    fs::write(out.join("c").join("var"), "in the way").unwrap();
    issue(
        &pki,
        &out,
        &[
            "--device-id",
            "a",
            "--device-id",
            "b",
            "--device-id",
            "c",
            "--force",
        ],
    )
    .code(1)
    .stderr_has("host:c/var exists and is not a folder");
    let mut left: Vec<_> = fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    left.sort();
    assert_eq!(left, ["c"]);
}

#[test]
fn an_encrypted_ca_key_opens_with_its_password_from_a_file_or_the_environment() {
    let dir = TestDir::new();
    let pki = Pki::new(&dir);
    let encrypted = pki.dir().join("ca-enc.key");
    openssl(
        pki.dir(),
        [
            "pkcs8",
            "-topk8",
            "-v2",
            "aes-256-cbc",
            "-in",
            "ca.key",
            "-out",
            "ca-enc.key",
            "-passout",
            "pass:fleet secret",
        ],
    );
    let out = dir.join("out");
    let run = |extra: &[&str], env: Option<&str>| {
        let mut cmd = sota(["device-certs", "--fleet-ca"])
            .arg(&pki.ca().cert)
            .arg("--fleet-ca-key")
            .arg(&encrypted)
            .arg("--out")
            .arg(&out)
            .args(["--device-id", "d", "--force"])
            .args(extra);
        if let Some(password) = env {
            cmd = cmd.env("SOTA_FLEET_CA_KEY_PASSWORD", password);
        }
        cmd.run()
    };
    refused(&run(&[], None), &out, "the key is encrypted");
    let wrong = dir.write("wrong", "not it\n");
    refused(
        &run(
            &["--fleet-ca-key-password-file", wrong.to_str().unwrap()],
            None,
        ),
        &out,
        "it does not decrypt with the password given",
    );
    run(&[], Some("fleet secret"))
        .success()
        .output_lacks("fleet secret");
    let right = dir.write("right", "fleet secret\n");
    run(
        &["--fleet-ca-key-password-file", right.to_str().unwrap()],
        None,
    )
    .success();
    // No flag takes the password itself.
    sota(["device-certs", "--help"])
        .run()
        .success()
        .stdout_lacks("--fleet-ca-key-password ");
}

#[test]
fn credentials_whose_server_ca_is_in_a_protected_p12_need_its_password() {
    let dir = TestDir::new();
    let pki = Pki::new(&dir);
    let client = pki.client(KeyAlg::Ec, Validity::Normal);
    let url = format!("https://{}.device-gateway.example.test:443", pki.uuid());
    let zip = Creds::new(&pki)
        .url(&url)
        .p12(pki.p12(&client, "p12 secret", P12Form::Legacy, 1))
        .write_to(&dir, "c.zip");
    let out = dir.join("out");
    let with_zip = ["--device-id", "d", "--credentials", zip.to_str().unwrap()];
    refused(
        &issue(&pki, &out, &with_zip),
        &out,
        "cannot stage for device-cred",
    );
    let password = dir.write("p12-password", "p12 secret\n");
    let mut args = with_zip.to_vec();
    args.extend(["--p12-password-file", password.to_str().unwrap()]);
    issue(&pki, &out, &args)
        .success()
        .output_lacks("p12 secret");
    assert_eq!(
        fs::read_to_string(out.join("d/var/sota/import/root.crt")).unwrap(),
        pki.server_ca_pem()
    );
    assert_eq!(
        fs::read_to_string(out.join("d/var/sota/import/gateway.url")).unwrap(),
        url
    );
}

#[test]
fn the_records_names_are_refused_as_ids_before_anything_is_written() {
    let dir = TestDir::new();
    let pki = Pki::new(&dir);
    let out = dir.join("out");
    for format in ["dir", "tar"] {
        let run = issue(
            &pki,
            &out,
            &[
                "--format",
                format,
                "--device-id",
                "ok",
                "--device-id",
                "devices.json",
                "--device-id",
                "DEVICES.csv",
            ],
        );
        refused(&run, &out, "device ids are refused; nothing was written");
        run.stderr_has("device id `devices.json`: it is the name of the record")
            .stderr_has("device id `DEVICES.csv`: it is the name of the record");
        assert!(!out.exists());
    }
}

#[test]
fn an_out_folder_inside_a_bundle_is_refused_up_front() {
    let dir = TestDir::new();
    let pki = Pki::new(&dir);
    let out = dir.join("out");
    issue(&pki, &out, &["--device-id", "a", "--device-id", "b"]).success();
    let key_a = fs::read(out.join("a").join(PKEY)).unwrap();
    // Inside a bundle's layout, at any depth, existing or not yet.
    for inner in ["a", "a/var/sota/import", "a/var/sota/import/new", "a/x"] {
        let inside = out.join(inner);
        issue(&pki, &inside, &["--device-id", "c"])
            .code(2)
            .stderr_has("is inside the device bundle `")
            .stderr_has("it holds var/sota/import with a certificate or key")
            .stderr_has("nothing was written");
        assert!(!out.join("a/x").exists(), "{inner}");
        assert!(!out.join("a/var/sota/import/new").exists(), "{inner}");
    }
    assert_eq!(fs::read(out.join("a").join(PKEY)).unwrap(), key_a);
    assert!(!out.join("a").join("var/sota/import/c").exists());
    // A bundle folder the record names, whatever it holds now.
    fs::remove_dir_all(out.join("b").join("var")).unwrap();
    issue(&pki, &out.join("b"), &["--device-id", "c"])
        .code(2)
        .stderr_has("a record beside it names it");
    assert_eq!(fs::read_dir(out.join("b")).unwrap().count(), 0);
    // A folder beside the bundles is fine.
    issue(&pki, &out.join("next-batch"), &["--device-id", "c"]).success();
}

#[test]
fn the_summary_is_one_line_and_quiet_leaves_it_out() {
    let dir = TestDir::new();
    let pki = Pki::new(&dir);
    let run = issue(&pki, &dir.join("one"), &["--device-id", "a"]);
    run.success();
    let out = dir.join("one").display().to_string();
    assert!(
        run.stderr.starts_with(&format!(
            "issued 1 device certificate (ec-p256) in `{out}` ("
        )),
        "{}",
        run.stderr
    );
    assert!(run.stderr.ends_with(" s)\n"), "{}", run.stderr);
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    // Not a terminal: no progress.
    assert!(!run.stderr.contains("issuing"), "{}", run.stderr);
    issue(
        &pki,
        &dir.join("two"),
        &["--count", "2", "--id-prefix", "d"],
    )
    .success()
    .stderr_has("issued 2 device certificates (ec-p256) in `");
    let run = issue(&pki, &dir.join("three"), &["--device-id", "a", "--quiet"]);
    run.success();
    assert_eq!(run.stderr, "");
}

/// Every name under `dir`, relative, sorted.
fn names_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let rel = e.path().strip_prefix(dir).unwrap().display().to_string();
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            }
            out.push(rel);
        }
    }
    out.sort();
    out
}

/// The ids of `out`'s journal lines.
fn journaled(out: &Path) -> BTreeSet<String> {
    let Ok(text) = fs::read_to_string(out.join(".sota-stage-devices.journal")) else {
        return BTreeSet::new();
    };
    text.lines()
        .skip(1)
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["id"].as_str().map(str::to_string))
        .collect()
}

/// The device id a file under `out` belongs to: its first path part,
/// without `.tar`, or for a temporary in `out` the name inside it.
fn owner(rel: &str) -> String {
    let first = rel.split('/').next().unwrap();
    let first = first
        .strip_prefix('.')
        .and_then(|f| f.split(".sota-stage-").next())
        .unwrap_or(first);
    first.strip_suffix(".tar").unwrap_or(first).to_string()
}

#[test]
fn a_run_killed_at_many_points_is_finished_by_the_same_command() {
    let dir = TestDir::new();
    let pki = Pki::new(&dir);
    let n = 2000;
    // Kill points from the clock, different every run; printed, so a
    // failure can be tried again with the same ones.
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64
        | 1;
    let mut next = move |below: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % below
    };
    for format in ["dir", "tar"] {
        let out = dir.join(format);
        let args = |cmd: &mut Command| {
            cmd.arg("device-certs")
                .arg("--fleet-ca")
                .arg(&pki.ca().cert)
                .arg("--fleet-ca-key")
                .arg(&pki.ca().key)
                .arg("--out")
                .arg(&out)
                .args(["--format", format, "--count", &n.to_string()])
                .args(["--id-prefix", "dev-", "--quiet"]);
        };
        for round in 0..5 {
            let delay = 30 + next(1200);
            eprintln!("{format}: round {round}, killed after {delay} ms");
            let mut cmd = Command::new(env!("CARGO_BIN_EXE_sota-stage"));
            args(&mut cmd);
            let mut child = cmd
                .env_remove("SOTA_STAGE_SYNC")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            std::thread::sleep(Duration::from_millis(delay));
            child.kill().unwrap();
            child.wait().unwrap();
            // No key outside a bundle the journal (or, finished, the
            // record) names.
            if !out.exists() {
                continue;
            }
            let recorded = journaled(&out);
            let finished = out.join("devices.json").exists() && recorded.is_empty();
            for rel in names_under(&out) {
                let path = out.join(&rel);
                if path.is_dir()
                    || !fs::read(&path)
                        .unwrap()
                        .windows(11)
                        .any(|w| w == b"PRIVATE KEY")
                        && !rel.ends_with(".tar")
                        && !rel.contains(".tar.")
                {
                    continue;
                }
                assert!(
                    finished || recorded.contains(&owner(&rel)),
                    "{format}, round {round}: `{rel}` holds a key of a device the journal does not name"
                );
            }
        }
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_sota-stage"));
        args(&mut cmd);
        let done = cmd.output().unwrap();
        let stderr = String::from_utf8_lossy(&done.stderr);
        assert_eq!(done.status.code(), Some(0), "{format}: {stderr}");
        // Every id once, in the record, with its bundle; nothing else.
        let names = names_under(&out);
        assert!(
            !names.iter().any(|n| n.contains("sota-stage")),
            "{format}: leftovers: {:?}",
            names
                .iter()
                .filter(|n| n.contains("sota-stage"))
                .collect::<Vec<_>>()
        );
        let csv = fs::read_to_string(out.join("devices.csv")).unwrap();
        let ids: Vec<&str> = csv
            .lines()
            .skip(1)
            .map(|l| l.split(',').next().unwrap())
            .collect();
        let expected: Vec<String> = (1..=n).map(|i| format!("dev-{i:04}")).collect();
        assert_eq!(ids, expected, "{format}: the record");
        let json: serde_json::Value =
            serde_json::from_slice(&fs::read(out.join("devices.json")).unwrap()).unwrap();
        assert_eq!(json["devices"].as_array().unwrap().len(), n);
        let top: BTreeSet<String> = names.iter().filter(|n| !n.contains('/')).cloned().collect();
        let mut want: BTreeSet<String> = expected
            .iter()
            .map(|id| {
                if format == "tar" {
                    format!("{id}.tar")
                } else {
                    id.clone()
                }
            })
            .collect();
        want.insert("devices.json".into());
        want.insert("devices.csv".into());
        assert_eq!(top, want, "{format}: the folder");
        for line in csv.lines().skip(1) {
            let f: Vec<&str> = line.split(',').collect();
            let cert = if format == "dir" {
                fs::read(out.join(f[0]).join(CLIENT)).unwrap()
            } else {
                continue;
            };
            let pem = String::from_utf8(cert).unwrap();
            let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
            let der = base64_decode(&b64);
            assert_eq!(hex(&sha2::Sha256::digest(&der)), f[2], "{}", f[0]);
            assert!(out.join(f[0]).join(PKEY).is_file());
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn base64_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' => 62,
            _ => 63,
        }
    };
    let bytes: Vec<u8> = text.bytes().filter(|&c| c != b'=').collect();
    let mut out = Vec::new();
    for chunk in bytes.chunks(4) {
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            n |= value(c) << (18 - 6 * i);
        }
        let take = chunk.len() - 1;
        for i in 0..take {
            out.push((n >> (16 - 8 * i)) as u8);
        }
    }
    out
}

#[test]
fn a_run_that_failed_in_a_later_batch_is_resumed_and_other_arguments_are_refused() {
    let dir = TestDir::new();
    let pki = Pki::new(&dir);
    let out = dir.join("out");
    // Folder bundles go 200 to a batch: the 250th cannot be written (a
    // file where its folder goes), so the first batch stays, journaled.
    fs::create_dir_all(out.join("d-250")).unwrap();
    fs::write(out.join("d-250").join("var"), "in the way").unwrap();
    let count = ["--count", "250", "--id-prefix", "d-", "--force"];
    let run = issue(&pki, &out, &count);
    run.code(1)
        .stderr_has("host:d-250/var exists and is not a folder")
        .stderr_has("note: 200 of 250 bundles are written and recorded in `");
    assert!(out.join("d-200").join(PKEY).is_file());
    assert!(!out.join("d-201").exists());
    assert!(!out.join("devices.json").exists());
    let key_1 = fs::read(out.join("d-001").join(PKEY)).unwrap();
    assert_eq!(journaled(&out).len(), 200);
    // Other arguments: refused, naming the journal and what differs.
    let run = issue(
        &pki,
        &out,
        &["--count", "250", "--id-prefix", "d-", "--days", "10"],
    );
    run.code(1)
        .stderr_has(".sota-stage-devices.journal` is the journal of an interrupted run with other arguments (they differ in: days)")
        .stderr_has("run that command again to finish it, or give --force");
    issue(&pki, &out, &["--count", "251", "--id-prefix", "d-"])
        .code(1)
        .stderr_has("(they differ in: device ids)");
    assert!(!out.join("d-201").exists());
    // The same command finishes, keeping the first batch.
    fs::remove_dir_all(out.join("d-250")).unwrap();
    issue(&pki, &out, &count)
        .success()
        .stderr_has("issued 50 device certificates (ec-p256) in `")
        .stderr_has("; 200 more were issued by the interrupted run it finished");
    assert_eq!(fs::read(out.join("d-001").join(PKEY)).unwrap(), key_1);
    assert!(!out.join(".sota-stage-devices.journal").exists());
    let csv = fs::read_to_string(out.join("devices.csv")).unwrap();
    assert_eq!(csv.lines().count(), 251);
    // Run again (without --force), it is done: nothing is replaced.
    issue(&pki, &out, &count[..4])
        .success()
        .stderr_has("all 250 device certificates were issued already");
    assert_eq!(fs::read(out.join("d-001").join(PKEY)).unwrap(), key_1);
}
