//! `sota-stage audit`: host secrets in the encodings a reader can undo,
//! targets.sec's key in the forms tools write it, `--secret-file`,
//! `--any-private-key` and its allowed paths, `--print-needles`. Each
//! planted file is found at its path; nothing secret is ever printed.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::{Creds, Pki, TestDir, OAUTH2_SECRET};

fn b64(data: &[u8]) -> String {
    const T: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in data.chunks(3) {
        let b = [c[0], *c.get(1).unwrap_or(&0), *c.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= c.len() {
                out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn wrap(text: &str, width: usize, sep: &str) -> String {
    text.as_bytes()
        .chunks(width)
        .map(|l| String::from_utf8(l.to_vec()).unwrap())
        .collect::<Vec<_>>()
        .join(sep)
}

fn audit(zip: &Path, root: &Path, extra: &[&str]) -> common::Run {
    common::sota(["audit", "--format", "json", "--credentials"])
        .arg(zip)
        .args(extra)
        .arg(root)
        .run()
}

/// (path, kind) of every finding.
fn found(run: &common::Run) -> BTreeSet<(String, String)> {
    run.json()["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["path"].as_str().unwrap().to_owned(),
                f["kind"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn set(items: &[(&str, &str)]) -> BTreeSet<(String, String)> {
    items
        .iter()
        .map(|(p, k)| ((*p).to_owned(), (*k).to_owned()))
        .collect()
}

#[test]
fn the_client_secret_is_found_in_every_encoding_and_never_printed() {
    let dir = TestDir::new();
    let pki = Pki::new(&dir);
    let zip = Creds::typical(&pki).write_to(&dir, "credentials.zip");
    let root = dir.mkdir("root");
    let s = OAUTH2_SECRET;
    let hex: String = s.bytes().map(|b| format!("{b:02x}")).collect();
    let utf16: Vec<u8> = s.encode_utf16().flat_map(u16::to_le_bytes).collect();
    let escaped: String = s.chars().map(|c| format!("\\u{:04x}", c as u32)).collect();
    let files: Vec<(&str, Vec<u8>)> = vec![
        (
            "etc/hex.txt",
            format!("x={}\n", hex.to_uppercase()).into_bytes(),
        ),
        (
            "etc/b64.txt",
            format!("k: {}\n", b64(format!("ab{s}").as_bytes())).into_bytes(),
        ),
        ("etc/wide.bin", utf16),
        ("etc/upper.txt", s.to_uppercase().into_bytes()),
        (
            "etc/escaped.json",
            format!("{{\"v\":\"{escaped}\"}}").into_bytes(),
        ),
    ];
    for (path, bytes) in &files {
        dir.write(root.join(path), bytes);
    }
    let run = audit(&zip, &root, &[]);
    run.code(1).output_lacks(s).output_lacks(&hex);
    let expected: Vec<(&str, &str)> = files.iter().map(|(p, _)| (*p, "host-secret")).collect();
    assert_eq!(found(&run), set(&expected), "{}", run.stdout);
    run.stdout_has(r#"the value of \"oauth2.client_secret\" in treehub.json (hex)"#)
        .stdout_has("(UTF-16)")
        .stdout_has("(base64)");
}

#[test]
fn the_ed25519_targets_key_is_found_as_pkcs8_pem() {
    let dir = TestDir::new();
    let pki = Pki::new(&dir);
    let creds = Creds::typical(&pki);
    let zip = creds.write_to(&dir, "credentials.zip");
    let raw = creds.raw();
    let sec = &raw
        .entries
        .iter()
        .find(|e| e.name == b"targets.sec")
        .unwrap()
        .data;
    let v: serde_json::Value = serde_json::from_slice(sec).unwrap();
    let hex = v["keyval"]["private"].as_str().unwrap();
    let seed: Vec<u8> = (0..32)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    let mut der = vec![
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    der.extend(&seed);
    let pem = format!(
        "-----BEGIN PRIVATE KEY-----\r\n{}\r\n-----END PRIVATE KEY-----\r\n",
        wrap(&b64(&der), 64, "\r\n")
    );
    let root = dir.mkdir("root");
    dir.write(root.join("etc/signing.pem"), &pem);
    let run = audit(&zip, &root, &[]);
    run.code(1).output_lacks(hex).output_lacks(&b64(&der));
    assert_eq!(found(&run), set(&[("etc/signing.pem", "host-secret")]));
    run.stdout_has("the private key of targets.sec (base64)");
}

#[test]
fn the_rsa_public_key_is_no_finding_and_the_private_one_rewrapped_is() {
    let dir = TestDir::new();
    let pki = Pki::new(&dir);
    let (public, private) = pki.targets_rsa();
    let creds = Creds::typical(&pki)
        .file("targets.pub", public.clone())
        .file("targets.sec", private.clone());
    let zip = creds.write_to(&dir, "credentials.zip");
    let pub_pem: serde_json::Value = serde_json::from_str(&public).unwrap();
    let pub_pem = pub_pem["keyval"]["public"].as_str().unwrap().to_owned();
    let key: serde_json::Value = serde_json::from_str(&private).unwrap();
    let key = key["keyval"]["private"].as_str().unwrap().to_owned();
    let body: String = key.lines().filter(|l| !l.starts_with("-----")).collect();

    let clean = dir.mkdir("clean");
    dir.write(clean.join("etc/targets.pub.pem"), &pub_pem);
    audit(&zip, &clean, &[]).code(0);

    let root = dir.mkdir("root");
    dir.write(root.join("etc/mime.txt"), wrap(&body, 76, "\n"));
    let json = serde_json::json!({ "key": key }).to_string();
    assert!(json.contains("\\n"));
    dir.write(root.join("etc/key.json"), json);
    let run = audit(&zip, &root, &[]);
    run.code(1).output_lacks(&body[..40]);
    assert_eq!(
        found(&run),
        set(&[
            ("etc/key.json", "host-secret"),
            ("etc/mime.txt", "host-secret")
        ]),
        "{}",
        run.stdout
    );
}

#[test]
fn a_provision_json_secret_under_any_key_is_found_and_named_by_its_path() {
    let dir = TestDir::new();
    let pki = Pki::new(&dir);
    let secret = "torizon-provision-0123456789";
    let provision = serde_json::json!({
        "server": "https://provision.example.test",
        "client_id": "client-id-0123456789",
        "secret": secret,
        "pin": 1234,
    })
    .to_string();
    let zip = Creds::typical(&pki)
        .file("provision.json", provision)
        .write_to(&dir, "credentials.zip");
    let root = dir.mkdir("root");
    dir.write(root.join("etc/app.conf"), format!("secret={secret}\n"));
    dir.write(root.join("etc/ids.conf"), "id=client-id-0123456789\n");
    let run = audit(&zip, &root, &[]);
    run.code(1).output_lacks(secret).output_lacks("1234");
    assert_eq!(found(&run), set(&[("etc/app.conf", "host-secret")]));
    run.stdout_has(r#"the value of \"secret\" in provision.json"#);
}

#[test]
fn a_secret_file_is_found_by_its_bytes_and_its_key_and_a_missing_one_is_refused() {
    let dir = TestDir::new();
    let pki = Pki::new(&dir);
    let zip = Creds::typical(&pki).write_to(&dir, "credentials.zip");
    common::ec_p256_key(dir.path(), "fleet-ca.key");
    common::openssl(
        dir.path(),
        [
            "pkey",
            "-in",
            "fleet-ca.key",
            "-outform",
            "DER",
            "-out",
            "ca.der",
        ],
    );
    let key = dir.join("fleet-ca.key");
    let root = dir.mkdir("root");
    dir.write(root.join("etc/copy.key"), dir.read("fleet-ca.key"));
    let mut embedded = b"header".to_vec();
    embedded.extend(dir.read("ca.der"));
    dir.write(root.join("usr/lib/blob.bin"), embedded);
    let arg = key.to_str().unwrap();
    let run = audit(&zip, &root, &["--secret-file", arg]);
    run.code(1);
    assert_eq!(
        found(&run),
        set(&[
            ("etc/copy.key", "host-file"),
            ("usr/lib/blob.bin", "host-secret")
        ]),
        "{}",
        run.stdout
    );
    run.stdout_has("the secret file 'fleet-ca.key'")
        .stdout_has("the private key of the secret file 'fleet-ca.key' (raw bytes)");
    // Without it, the image is clean.
    audit(&zip, &root, &[]).code(0);
    let missing = dir.join("nope.key");
    let run = audit(&zip, &root, &["--secret-file", missing.to_str().unwrap()]);
    run.code(3).stderr_has("nope.key");
}

#[test]
fn any_private_key_reports_keys_outside_the_manifest_and_the_allowed_paths() {
    let dir = TestDir::new();
    let pki = Pki::new(&dir);
    let zip = Creds::typical(&pki).write_to(&dir, "credentials.zip");
    let dev = dir.join("dev");
    let manifest = dir.join("manifest.json");
    common::staged::stage_shared_cred(&zip, &dev, &manifest);
    let client = pki.client(common::KeyAlg::Ec, common::Validity::Normal);
    dir.write(dev.join("etc/ssl/private/web.pem"), client.key_pem());
    dir.write(dev.join("opt/app/allowed.pem"), client.key_pem());
    dir.write(dev.join("etc/ssl/certs/web.crt"), client.cert_pem());
    // Without the option, keys are not secrets of the archive.
    audit(&zip, &dev, &[]).code(0);
    let run = audit(&zip, &dev, &["--any-private-key"]);
    run.code(1);
    let all = found(&run);
    assert!(
        all.contains(&("etc/ssl/private/web.pem".into(), "private-key".into())),
        "{all:?}"
    );
    assert!(all.contains(&("opt/app/allowed.pem".into(), "private-key".into())));
    assert!(all
        .iter()
        .any(|(p, k)| p == "var/sota/sota_provisioning_credentials.zip" && k == "private-key"));
    assert!(!all.iter().any(|(p, _)| p.ends_with(".crt")));
    let m = manifest.to_str().unwrap();
    let run = audit(
        &zip,
        &dev,
        &[
            "--any-private-key",
            "--manifest",
            m,
            "--allow",
            "/opt/app/allowed.pem",
        ],
    );
    run.code(1);
    assert_eq!(
        found(&run),
        set(&[("etc/ssl/private/web.pem", "private-key")]),
        "{}",
        run.stdout
    );
}

#[test]
fn print_needles_writes_a_new_private_file_and_refuses_an_existing_one() {
    let dir = TestDir::new();
    let pki = Pki::new(&dir);
    let zip = Creds::typical(&pki).write_to(&dir, "credentials.zip");
    let root = dir.mkdir("root");
    let out = dir.join("needles.txt");
    let arg = out.to_str().unwrap();
    let run = audit(&zip, &root, &["--print-needles", arg]);
    run.code(0).stderr_has("--print-needles wrote secrets");
    let mode = std::fs::metadata(&out).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let text = dir.read("needles.txt");
    let lines: Vec<&[u8]> = text
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    assert!(lines.len() > 10 && lines.iter().all(|l| l.len() >= 16));
    assert!(lines
        .iter()
        .any(|l| OAUTH2_SECRET.as_bytes().windows(16).any(|w| w == *l)));
    audit(&zip, &root, &["--print-needles", arg])
        .code(3)
        .stderr_has("needles.txt");
    common::sota(["audit", "--help"])
        .run()
        .success()
        .stdout_lacks("print-needles");
}
