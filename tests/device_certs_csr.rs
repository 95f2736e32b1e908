//! `device-certs --csr`: requests made by `openssl req -new` (EC P-256,
//! P-384, RSA 2048, 3072, 4096; PEM and DER) signed into bundles without
//! a key that `openssl verify -x509_strict -purpose sslclient` accepts,
//! whose public key is the request's byte for byte; the record says
//! `csr`; and hostile requests refused, each naming its file, nothing
//! written. Then streaming: a run of 2,000 requests (made in-process)
//! killed and finished by the same command, and a resumed run refused
//! with other requests or another CA key file.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::device_certs::*;
use common::*;
use sha2::Digest;

/// `device-certs` with the Pki's CA, `--csr csr`, into `out`.
fn sign(pki: &Pki, csr: &Path, out: &Path, args: &[&str]) -> Run {
    device_certs(&pki.ca().cert, &pki.ca().key, out)
        .arg("--csr")
        .arg(csr)
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
    let json = record(&out);
    let records = json["devices"].as_array().unwrap();
    // Sorted by file name: ec256.csr, ec384.der, rsa2048.csr, ...
    assert_eq!(records.len(), 5);
    for ((name, _, _, key_type, der), record) in devices.iter().zip(records) {
        let id = format!("dev-{name}");
        let bundle = out.join(&id);
        assert!(!bundle.join(PKEY).exists(), "{id} got a key");
        let cert = bundle.join(CLIENT);
        assert_verifies(d, &pki.ca().cert, &cert);
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
        (
            "record",
            "/CN=DEVICES.json",
            "its CN `DEVICES.json` is the name of the record",
        ),
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

/// DER: `tag`, its length, `content`.
fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else if len < 0x100 {
        out.extend([0x81, len as u8]);
    } else {
        out.extend([0x82, (len >> 8) as u8, len as u8]);
    }
    out.extend_from_slice(content);
    out
}

/// A PKCS#10 request (DER) for a new EC P-256 key with subject `CN=cn`,
/// made in-process (2,000 through openssl take minutes); with the DER
/// SubjectPublicKeyInfo.
fn p256_request(cn: &str) -> (Vec<u8>, Vec<u8>) {
    use p256::ecdsa::signature::Signer;
    let key = p256::ecdsa::SigningKey::random(&mut rand_core::OsRng);
    let point = key.verifying_key().to_encoded_point(false);
    // id-ecPublicKey, prime256v1.
    let alg = tlv(
        0x30,
        &[
            &[0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01][..],
            &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07],
        ]
        .concat(),
    );
    let bits = [&[0u8][..], point.as_bytes()].concat();
    let spki = tlv(0x30, &[alg, tlv(0x03, &bits)].concat());
    let cn_attr = tlv(
        0x30,
        &[
            &[0x06, 0x03, 0x55, 0x04, 0x03][..],
            &tlv(0x0c, cn.as_bytes()),
        ]
        .concat(),
    );
    let name = tlv(0x30, &tlv(0x31, &cn_attr));
    let info = tlv(
        0x30,
        &[&[0x02, 0x01, 0x00][..], &name, &spki, &[0xa0, 0x00]].concat(),
    );
    let signature: p256::ecdsa::Signature = key.sign(&info);
    // ecdsa-with-SHA256.
    let sig_alg = tlv(
        0x30,
        &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02],
    );
    let sig_bits = [&[0u8][..], signature.to_der().as_bytes()].concat();
    let request = tlv(0x30, &[info, sig_alg, tlv(0x03, &sig_bits)].concat());
    (request, spki)
}

/// `id -> serial` of each device's last line in `out`'s journal, whose
/// bundle is in place (all its files renamed into place): the bundles a
/// re-run must keep. Every line must say `csr`. A run that finished
/// before the kill reached it has no journal: then every device of its
/// `devices.json` is kept (a fast machine finishes the last batch within
/// the kill's delay).
fn kept_by_the_journal(out: &Path, format: &str) -> std::collections::BTreeMap<String, String> {
    let mut kept = std::collections::BTreeMap::new();
    let Ok(text) = fs::read_to_string(out.join(".sota-stage-devices.journal")) else {
        if let Ok(record) = fs::read(out.join("devices.json")) {
            let json: serde_json::Value = serde_json::from_slice(&record).unwrap();
            for d in json["devices"].as_array().unwrap() {
                assert_eq!(d["key_source"], "csr", "{d}");
                kept.insert(
                    d["id"].as_str().unwrap().to_string(),
                    d["serial"].as_str().unwrap().to_string(),
                );
            }
        }
        return kept;
    };
    for line in text.lines().skip(1) {
        // A line cut by the kill is not a record.
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        assert_eq!(v["key_source"], "csr", "{line}");
        let id = v["id"].as_str().unwrap().to_string();
        let whole = if format == "tar" {
            out.join(format!("{id}.tar")).is_file()
        } else {
            out.join(&id).join(CLIENT).is_file()
        };
        if whole {
            kept.insert(id, v["serial"].as_str().unwrap().to_string());
        } else {
            kept.remove(&id);
        }
    }
    kept
}

#[test]
fn a_killed_csr_run_is_finished_by_the_same_command() {
    let dir = TestDir::new();
    let pki = Pki::new(&dir);
    let n = 2000;
    let requests = dir.mkdir("requests");
    // id -> SHA-256 of its request's public key.
    let mut want = std::collections::BTreeMap::new();
    for i in 1..=n {
        let id = format!("dev-{i:04}");
        let (request, spki) = p256_request(&id);
        fs::write(requests.join(format!("{id}.der")), request).unwrap();
        want.insert(id, hex(&sha2::Sha256::digest(&spki)));
    }
    // Kill points from the clock, printed, so a failure can be tried
    // again with the same ones.
    let mut points = KillPoints::from_clock();
    for format in ["dir", "tar"] {
        let command_into = |out: &Path| {
            let mut cmd = device_certs_command(&pki.ca().cert, &pki.ca().key, out);
            cmd.arg("--csr")
                .arg(&requests)
                .args(["--format", format])
                .env_remove("SOTA_STAGE_SYNC");
            cmd
        };
        // Kill points spread over a whole run on this machine (reading
        // and checking the requests first, then the batches).
        let started = std::time::Instant::now();
        let timed = command_into(&dir.join(format!("timed-{format}")))
            .output()
            .unwrap();
        assert_eq!(timed.status.code(), Some(0), "{timed:?}");
        let whole = started.elapsed().as_millis() as u64;
        eprintln!("{format}: a whole run takes {whole} ms");
        let out = dir.join(format);
        let command = || command_into(&out);
        let spawn = || {
            command()
                .arg("--quiet")
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap()
        };
        // First a kill once the second batch is journaled (so the first
        // is in place: 200 folder or 1,000 tar bundles), a little later.
        let batch = if format == "tar" { 1000 } else { 200 };
        let mut child = spawn();
        let journal = out.join(".sota-stage-devices.journal");
        loop {
            let lines = fs::read_to_string(&journal).map_or(0, |t| t.lines().count());
            if lines > batch + 1 {
                break;
            }
            // A fast machine may finish between two looks: then the
            // record is what the re-runs keep.
            if let Some(status) = child.try_wait().unwrap() {
                assert!(status.success(), "{format}: the run failed: {status}");
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        let delay = points.next(300);
        eprintln!("{format}: killed {delay} ms after the second batch was journaled");
        std::thread::sleep(std::time::Duration::from_millis(delay));
        child.kill().unwrap();
        child.wait().unwrap();
        let first = kept_by_the_journal(&out, format);
        assert!(first.len() >= batch, "{format}: {} kept", first.len());
        // Then kills at random points of the re-runs.
        for round in 0..4 {
            let delay = 20 + points.next(whole.max(1));
            eprintln!("{format}: round {round}, killed after {delay} ms");
            let mut child = spawn();
            std::thread::sleep(std::time::Duration::from_millis(delay));
            child.kill().unwrap();
            child.wait().unwrap();
        }
        // What the journal and the folder hold now: kept as they are, and
        // those of the first kill too.
        let mut kept = kept_by_the_journal(&out, format);
        eprintln!("{format}: {} bundles journaled and in place", kept.len());
        for (id, serial) in first {
            if let Some(now) = kept.insert(id.clone(), serial.clone()) {
                assert_eq!(now, serial, "{format}: {id} was issued again by a re-run");
            }
        }
        let done = command().output().unwrap();
        let stderr = String::from_utf8_lossy(&done.stderr);
        assert_eq!(done.status.code(), Some(0), "{format}: {stderr}");
        assert!(
            stderr.contains("device certificates (from certificate requests) in `")
                || stderr.contains("were issued already"),
            "{format}: {stderr}"
        );
        assert!(!out.join(".sota-stage-devices.journal").exists());
        let csv = fs::read_to_string(out.join("devices.csv")).unwrap();
        let mut lines = csv.lines();
        assert_eq!(lines.next().unwrap(), CSV_HEADER);
        let mut ids = Vec::new();
        for line in lines {
            let f: Vec<&str> = line.split(',').collect();
            ids.push(f[0].to_string());
            assert_eq!(f[5], "ec-p256", "{line}");
            assert_eq!(f[7], "csr", "{line}");
            assert_eq!(Some(&f[8].to_string()), want.get(f[0]), "{format}: {line}");
            if let Some(serial) = kept.get(f[0]) {
                assert_eq!(serial, f[1], "{format}: {} was issued again", f[0]);
            }
            if format == "dir" {
                assert!(out.join(f[0]).join(CLIENT).is_file(), "{line}");
                assert!(!out.join(f[0]).join(PKEY).exists(), "{line}");
            } else {
                assert!(out.join(format!("{}.tar", f[0])).is_file(), "{line}");
            }
        }
        assert_eq!(ids, want.keys().cloned().collect::<Vec<_>>(), "{format}");
        let json = record(&out);
        let devices = json["devices"].as_array().unwrap();
        assert_eq!(devices.len(), n);
        for d in devices {
            assert_eq!(d["key_source"], "csr", "{d}");
            assert_eq!(
                d["public_key_sha256"].as_str(),
                want.get(d["id"].as_str().unwrap()).map(String::as_str),
                "{d}"
            );
        }
        // Nothing of the tool's own temporaries is left.
        let left = leftovers(&out);
        assert!(left.is_empty(), "{format}: {left:?}");
    }
}

#[test]
fn a_resumed_csr_run_is_refused_with_other_requests_or_another_ca_key_file() {
    let dir = TestDir::new();
    let pki = Pki::new(&dir);
    let requests = dir.mkdir("requests");
    for i in 1..=250 {
        let id = format!("d-{i:03}");
        fs::write(requests.join(format!("{id}.der")), p256_request(&id).0).unwrap();
    }
    let out = dir.join("out");
    // Folder bundles go 200 to a batch: the 250th cannot be written, so
    // the first batch stays, journaled (--force: the folder exists).
    in_the_way(&out, "d-250");
    sign(&pki, &requests, &out, &["--force"])
        .code(1)
        .stderr_has("note: 200 of 250 bundles are written and recorded in `");
    let journal = fs::read_to_string(out.join(".sota-stage-devices.journal")).unwrap();
    assert!(journal
        .lines()
        .next()
        .unwrap()
        .contains("\"key_type\":\"csr\""));
    // Another request for one device: refused, naming what differs.
    let first = requests.join("d-001.der");
    let kept = fs::read(&first).unwrap();
    fs::write(&first, p256_request("d-001").0).unwrap();
    sign(&pki, &requests, &out, &[])
        .code(1)
        .stderr_has("(they differ in: certificate requests)");
    fs::write(&first, kept).unwrap();
    // The same CA key in another file (SEC1 instead of PKCS#8).
    let key = dir.join("ca-sec1.key");
    openssl(
        dir.path(),
        [
            "ec".as_ref(),
            "-in".as_ref(),
            pki.ca().key.as_os_str(),
            "-out".as_ref(),
            key.as_os_str(),
        ],
    );
    let run = device_certs(&pki.ca().cert, &key, &out)
        .arg("--csr")
        .arg(&requests)
        .run();
    run.code(1).stderr_has("(they differ in: fleet CA key)");
    // Minted keys for the same ids: another key type.
    issue(&pki, &out, &["--count", "250", "--id-prefix", "d-"])
        .code(1)
        .stderr_has("(they differ in: key type, certificate requests)");
    // The same command finishes, keeping the first batch.
    let client_1 = fs::read(out.join("d-001").join(CLIENT)).unwrap();
    fs::remove_dir_all(out.join("d-250")).unwrap();
    sign(&pki, &requests, &out, &[])
        .success()
        .stderr_has("issued 50 device certificates (from certificate requests) in `")
        .stderr_has("; 200 more were issued by the interrupted run it finished");
    assert_eq!(fs::read(out.join("d-001").join(CLIENT)).unwrap(), client_1);
    assert!(!out.join("d-001").join(PKEY).exists());
    let csv = fs::read_to_string(out.join("devices.csv")).unwrap();
    assert_eq!(csv.lines().count(), 251);
    assert!(csv.lines().skip(1).all(|l| l.contains(",csr,")), "{csv}");
    sign(&pki, &requests, &out, &[])
        .success()
        .stderr_has("all 250 device certificates were issued already");
}
