//! `device-certs`: bundles that `openssl verify -purpose sslclient`
//! accepts, that complete a real mutual-TLS handshake against a server
//! demanding a client certificate of the fleet CA, that `stage
//! --method device-cred` takes; the record; reproducible tars; and every
//! refusal, each leaving nothing behind.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::device_certs::*;
use common::*;
use sha2::Digest;

#[test]
fn bundles_verify_as_client_certificates_with_every_extension() {
    let (dir, pki) = fleet();
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
        assert_verifies(pki.dir(), &pki.ca().cert, &cert);
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
    let (dir, pki) = fleet();
    let out = dir.join("out");
    let ids_file = dir.write("ids.txt", "# line 4\nalpha\n\n  beta  \r\n");
    issue(
        &pki,
        &out,
        &["--ids", ids_file.to_str().unwrap(), "--days", "30"],
    )
    .success();
    let json = record(&out);
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
    assert_eq!(lines.next(), Some(CSV_HEADER));
    for (device, id) in devices.iter().zip(["alpha", "beta"]) {
        assert_eq!(device["id"], id);
        assert_eq!(device["path"], id);
        assert_eq!(device["key_type"], "ec-p256");
        assert_eq!(device["key_source"], "minted");
        let cert = out.join(id).join(CLIENT);
        assert_eq!(
            device["public_key_sha256"],
            spki_sha256(pki.dir(), "x509", &cert, "PEM")
        );
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
        let (ok, end) = valid_in_days(pki.dir(), &cert, 29);
        assert!(ok && end.contains("will not expire"), "{end} ({not_after})");
        let (ok, _) = valid_in_days(pki.dir(), &cert, 31);
        assert!(!ok, "valid past 30 days");
    }
}

/// A CA made here with `openssl req -x509`: `key_alg` for genpkey's
/// `-algorithm EC -pkeyopt ec_paramgen_curve:...`, the extensions given.
fn custom_ca(dir: &TestDir, name: &str, curve: &str, extensions: &str) -> (PathBuf, PathBuf) {
    let cas = Cas::at(dir.mkdir(name));
    cas.key(name, "EC", &format!("ec_paramgen_curve:{curve}"));
    cas.root(name, extensions);
    (
        cas.path(&format!("{name}.pem")),
        cas.path(&format!("{name}.key")),
    )
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
    assert_verifies(dir.path(), &ca, &cert);
    let dump = text(
        dir.path(),
        &["x509", "-in", cert.to_str().unwrap(), "-noout", "-text"],
    );
    assert!(dump.contains("ASN1 OID: secp384r1"), "{dump}");
    assert!(
        dump.contains("Signature Algorithm: ecdsa-with-SHA256"),
        "{dump}"
    );
    let json = record(&out);
    assert_eq!(json["devices"][0]["key_type"], "ec-p384");
}

/// One TLS connection to an `openssl s_server` that demands a client
/// certificate issued by `client_ca` (`-Verify 1 -verify_return_error`)
/// and answers with a web page; `client` are s_client's certificate
/// arguments. Returns whether the page came back, and what s_client said.
fn handshake(dir: &TestDir, client_ca: &Path, client: &[&str]) -> (bool, String) {
    let server = TlsServer::start(dir.path(), client_ca, 1);
    let connect = format!("127.0.0.1:{}", server.port);
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
    let client = Cmd::new("openssl")
        .args(args)
        .current_dir(&server.dir)
        .stdin("GET / HTTP/1.0\r\n\r\n");
    server.connect(client, "HTTP/1.0 200 ok")
}

#[test]
fn a_bundle_completes_a_mutual_tls_handshake() {
    let (dir, pki) = fleet();
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
    let (dir, pki) = fleet();
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
    let (dir, pki) = fleet();
    let run = |out: &Path| {
        device_certs(&pki.ca().cert, &pki.ca().key, out)
            .args(["--format", "tar", "--device-id", "t1", "--device-id", "t2"])
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
    let json = record(&a);
    assert_eq!(json["devices"][1]["path"], "t2.tar");
    let cert_der = der(pki.dir(), &unpacked.join(CLIENT));
    assert_eq!(
        json["devices"][1]["sha256"],
        hex(&sha2::Sha256::digest(&cert_der))
    );
    assert_eq!(mode(&unpacked.join(PKEY)), 0o600);
    // Folder bundles get SOURCE_DATE_EPOCH as their time too.
    let folders = dir.join("folders");
    device_certs(&pki.ca().cert, &pki.ca().key, &folders)
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

/// One device `d` with the CA `ca` and `key`: exit 1 naming `needle`,
/// nothing left in `out`.
fn refused_with_ca(ca: &Path, key: &Path, out: &Path, needle: &str) {
    refused_leaving_out_empty(
        &issue_with(ca, key, out, &["--device-id", "d"]),
        out,
        needle,
    );
}

#[test]
fn refuses_a_ca_key_that_does_not_belong_to_the_ca() {
    let (dir, pki) = fleet();
    let other = pki.client(KeyAlg::Ec, Validity::Normal);
    let out = dir.join("out");
    refused_with_ca(
        &pki.ca().cert,
        &other.key,
        &out,
        "the CA key does not belong to the CA certificate",
    );
}

#[test]
fn refuses_a_certificate_that_is_not_a_signing_ca() {
    let (dir, pki) = fleet();
    let out = dir.join("out");
    // A client certificate: CA:FALSE.
    let client = pki.client(KeyAlg::Ec, Validity::Normal);
    refused_with_ca(
        &client.cert,
        &client.key,
        &out,
        "is not a CA: it has no basicConstraints CA:TRUE",
    );
    // CA:TRUE, but keyUsage without keyCertSign, or no keyUsage at all.
    for (name, extensions, needle) in [
        (
            "no-certsign",
            "basicConstraints = critical, CA:TRUE\nkeyUsage = critical, digitalSignature, cRLSign",
            "may not sign certificates: its keyUsage lacks keyCertSign",
        ),
        (
            "no-ku",
            "basicConstraints = critical, CA:TRUE",
            "may not sign certificates: its keyUsage extension is missing",
        ),
    ] {
        let (ca, key) = custom_ca(&dir, name, "P-256", extensions);
        refused_with_ca(&ca, &key, &out, needle);
    }
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
    let ca_args = |out: &str, dates: &[&str]| pki.sign_request("sub.csr", out, "v3_ca", dates);
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
    refused_leaving_out_empty(
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
    let (ok, _) = valid_in_days(sub, &cert, 11);
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
    let (dir, pki) = fleet();
    let out = dir.join("out");
    for key_type in ["rsa-2048", "rsa-3072"] {
        refused_leaving_out_empty(
            &issue(&pki, &out, &["--device-id", "d", "--key-type", key_type]),
            &out,
            "RUSTSEC-2023-0071",
        );
    }
    issue(&pki, &out, &["--device-id", "d", "--key-type", "rsa-2048"])
        .stderr_has("use --key-type ec-p256");
    let rsa = Pki::with_ca(&dir, KeyAlg::Rsa);
    refused_leaving_out_empty(
        &issue(&rsa, &out, &["--device-id", "d"]),
        &out,
        "the CA key is RSA 2048: RSA fleet CAs cannot sign here",
    );
    issue(&rsa, &out, &["--device-id", "d"]).stderr_has("use an EC P-256 or P-384 fleet CA");
}

#[test]
fn refuses_bad_and_duplicate_ids_all_at_once() {
    let (dir, pki) = fleet();
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
    refused_leaving_out_empty(&run, &out, "device ids are refused; nothing was written");
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
fn an_encrypted_ca_key_opens_with_its_password_from_a_file_or_the_environment() {
    let (dir, pki) = fleet();
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
        let mut cmd = device_certs(&pki.ca().cert, &encrypted, &out)
            .args(["--device-id", "d", "--force"])
            .args(extra);
        if let Some(password) = env {
            cmd = cmd.env("SOTA_FLEET_CA_KEY_PASSWORD", password);
        }
        cmd.run()
    };
    refused_leaving_out_empty(&run(&[], None), &out, "the key is encrypted");
    let wrong = dir.write("wrong", "not it\n");
    refused_leaving_out_empty(
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
    let (dir, pki) = fleet();
    let client = pki.client(KeyAlg::Ec, Validity::Normal);
    let url = format!("https://{}.device-gateway.example.test:443", pki.uuid());
    let zip = Creds::new(&pki)
        .url(&url)
        .p12(pki.p12(&client, "p12 secret", P12Form::Legacy, 1))
        .write_to(&dir, "c.zip");
    let out = dir.join("out");
    let with_zip = ["--device-id", "d", "--credentials", zip.to_str().unwrap()];
    refused_leaving_out_empty(
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
    let (dir, pki) = fleet();
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
        refused_leaving_out_empty(&run, &out, "device ids are refused; nothing was written");
        run.stderr_has("device id `devices.json`: it is the name of the record")
            .stderr_has("device id `DEVICES.csv`: it is the name of the record");
        assert!(!out.exists());
    }
}

#[test]
fn an_out_folder_inside_a_bundle_is_refused_up_front() {
    let (dir, pki) = fleet();
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
    let (dir, pki) = fleet();
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
