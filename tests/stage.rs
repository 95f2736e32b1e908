//! `sota-stage stage`: the exact trees each method stages (files, modes,
//! contents, times) and the device zip byte by byte (design.md 4-5). The
//! upstream samples and host secrets are in `stage_upstream.rs`;
//! reproducibility, all-or-nothing writes and the options that shape the
//! split in `stage_runs.rs`; the kit they share is `common::staged`.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;

use common::staged::*;
use common::*;

// --- each method, exactly ----------------------------------------------------

/// The host side of [`Creds::typical`]: every entry a host tool reads, as
/// files, and the host-only credentials.zip of the same entries.
#[track_caller]
fn assert_typical_host(roots: &Roots, creds: &Creds<'_>) {
    let host = tree(&roots.host);
    let files = files(&host);
    assert_eq!(listing(&files), HOST_FILES);
    let entries = entries_of(creds);
    for (name, (_, bytes)) in &files {
        if name != "credentials.zip" {
            assert_eq!(bytes, &entries[name], "host {name}");
        }
    }
    let host_zip: Vec<(&str, &[u8])> = [
        "root.json",
        "targets.pub",
        "targets.sec",
        "treehub.json",
        "tufrepo.url",
    ]
    .iter()
    .map(|n| (*n, entries[*n].as_slice()))
    .collect();
    assert_fixed_zip(&files["credentials.zip"].1, &host_zip, dos_epoch());
    assert!(folders(&host).is_empty());
    assert_times(&host, EPOCH);
}

#[test]
fn shared_cred_stages_exactly_these_files() {
    let roots = Roots::new();
    let pki = Pki::new(&roots.dir);
    let creds = Creds::typical(&pki);
    let zip = creds.write_to(&roots.dir, "c.zip");
    roots
        .stage(&zip, "shared-cred", &["--hardware-id", "raspberrypi4-64"])
        .success()
        .stderr_is("staged c.zip for shared-cred: 10 files written, 0 already in place\n");

    let dev = tree(&roots.dev);
    assert_eq!(
        folders(&dev),
        BTreeMap::from(
            [
                ("usr", 0o755),
                ("usr/lib", 0o755),
                ("usr/lib/sota", 0o755),
                ("usr/lib/sota/conf.d", 0o755),
                ("var", 0o755),
                ("var/sota", 0o700),
                ("var/sota/import", 0o700),
                ("var/sota/import/repo", 0o755),
            ]
            .map(|(p, m)| (p.to_string(), m))
        )
    );
    let files = files(&dev);
    assert_eq!(
        listing(&files),
        [
            (SHARED_FRAGMENT, 0o644),
            (HARDWARE_FRAGMENT, 0o644),
            ("var/sota/import/repo/root.json", 0o644),
            (DEVICE_ZIP, 0o600),
        ]
    );
    assert_snapshot("20-sota-shared-cred.toml", &files[SHARED_FRAGMENT].1);
    assert_eq!(
        files[HARDWARE_FRAGMENT].1,
        b"# The hardware ID of the primary ECU (sota-stage).\n[provision]\nprimary_ecu_hardware_id = \"raspberrypi4-64\"\n"
    );
    assert_eq!(
        files["var/sota/import/repo/root.json"].1,
        ROOT_JSON.as_bytes()
    );
    let entries = entries_of(&creds);
    assert_fixed_zip(
        &files[DEVICE_ZIP].1,
        &[
            ("autoprov.url", &entries["autoprov.url"]),
            (
                "autoprov_credentials.p12",
                &entries["autoprov_credentials.p12"],
            ),
        ],
        dos_epoch(),
    );
    assert_times(&dev, EPOCH);
    assert_typical_host(&roots, &creds);

    // Again: everything is in place, nothing under the roots changes, the
    // manifest is the same.
    let before = (
        tree(&roots.dev),
        tree(&roots.host),
        fs::read(&roots.manifest).unwrap(),
    );
    roots
        .stage(&zip, "shared-cred", &["--hardware-id", "raspberrypi4-64"])
        .success()
        .stderr_is("staged c.zip for shared-cred: 0 files written, 10 already in place\n");
    assert_eq!(
        (
            tree(&roots.dev),
            tree(&roots.host),
            fs::read(&roots.manifest).unwrap()
        ),
        before
    );
    // One file gone: one written, in the singular.
    fs::remove_file(roots.dev.join(HARDWARE_FRAGMENT)).unwrap();
    roots
        .stage(&zip, "shared-cred", &["--hardware-id", "raspberrypi4-64"])
        .success()
        .stderr_is("staged c.zip for shared-cred: 1 file written, 9 already in place\n");
}

#[test]
fn the_device_zip_time_is_source_date_epoch_as_utc() {
    let dir = TestDir::new();
    let pki = Pki::new(&dir);
    let creds = Creds::typical(&pki);
    let zip = creds.write_to(&dir, "c.zip");
    let entries = entries_of(&creds);
    let expected: [(&str, &[u8]); 2] = [
        ("autoprov.url", &entries["autoprov.url"]),
        (
            "autoprov_credentials.p12",
            &entries["autoprov_credentials.p12"],
        ),
    ];
    let mut first: Option<Vec<u8>> = None;
    for (epoch, dos_time, tz) in [
        ("1700000001", dos(2023, 11, 14, 22, 13, 21), "UTC"),
        (
            "1700000001",
            dos(2023, 11, 14, 22, 13, 21),
            "Pacific/Kiritimati",
        ),
        (
            "1700000001",
            dos(2023, 11, 14, 22, 13, 21),
            "America/Los_Angeles",
        ),
        // Unset: 2011-04-05T23:00:00Z.
        ("", dos(2011, 4, 5, 23, 0, 0), "UTC"),
        // Before 1980: the earliest DOS time.
        ("0", dos(1980, 1, 1, 0, 0, 0), "UTC"),
    ] {
        let dev = dir.join(format!("dev-{epoch}-{}", tz.replace('/', "-")));
        let mut cmd = stage_device_cmd(&zip, "shared-cred", &dev).env("TZ", tz);
        if !epoch.is_empty() {
            cmd = cmd.env("SOURCE_DATE_EPOCH", epoch);
        }
        cmd.run().success();
        let bytes = fs::read(dev.join(DEVICE_ZIP)).unwrap();
        assert_fixed_zip(&bytes, &expected, dos_time);
        let mtime = fs::metadata(dev.join(DEVICE_ZIP)).unwrap().mtime();
        let expected_mtime = if epoch.is_empty() {
            DEFAULT_EPOCH
        } else {
            epoch.parse().unwrap()
        };
        assert_eq!(mtime, expected_mtime);
        if epoch == "1700000001" {
            // The time zone changes nothing.
            match &first {
                None => first = Some(bytes),
                Some(f) => assert_eq!(&bytes, f, "TZ={tz}"),
            }
        }
    }
}

#[test]
fn device_cred_takes_root_crt_from_server_ca_pem() {
    let roots = Roots::new();
    let pki = Pki::new(&roots.dir);
    let creds = Creds::typical(&pki).server_ca();
    let zip = creds.write_to(&roots.dir, "c.zip");
    roots.stage(&zip, "device-cred", &[]).success();
    let dev = tree(&roots.dev);
    let files = files(&dev);
    assert_eq!(
        listing(&files),
        [
            (DEVICE_FRAGMENT, 0o644),
            ("var/sota/import/gateway.url", 0o644),
            ("var/sota/import/repo/root.json", 0o644),
            ("var/sota/import/root.crt", 0o644),
        ]
    );
    assert_snapshot("20-sota-device-cred.toml", &files[DEVICE_FRAGMENT].1);
    let entries = entries_of(&creds);
    assert_eq!(
        files["var/sota/import/gateway.url"].1,
        entries["autoprov.url"]
    );
    assert_eq!(
        files["var/sota/import/root.crt"].1,
        pki.server_ca_pem().as_bytes()
    );
    assert_eq!(folders(&dev)["var/sota/import"], 0o700);
    assert_eq!(folders(&dev)["var/sota"], 0o700);
    assert_times(&dev, EPOCH);
    assert_typical_host(&roots, &creds);
}

#[test]
fn device_cred_takes_root_crt_from_the_p12_chain_once() {
    let roots = Roots::new();
    let pki = Pki::new(&roots.dir);
    // The typical p12 holds the CA twice, as aktualizr's sample does.
    let zip = Creds::typical(&pki).write_to(&roots.dir, "c.zip");
    roots.stage(&zip, "device-cred", &[]).success();
    assert_eq!(
        fs::read_to_string(roots.dev.join("var/sota/import/root.crt")).unwrap(),
        pki.server_ca_pem()
    );
}

#[test]
fn device_cred_hsm_with_the_certificate_as_a_file_and_the_key_in_the_token() {
    let roots = Roots::new();
    let pki = Pki::new(&roots.dir);
    let zip = Creds::typical(&pki).write_to(&roots.dir, "c.zip");
    let device = pki.client(KeyAlg::Ec, Validity::Normal);
    let cert = device.cert.to_str().unwrap();
    let fragment = "usr/lib/sota/conf.d/20-sota-device-cred-hsm.toml";

    // Refused: a certificate from the token and a file at once; the
    // certificate's object id when the certificate is a file.
    roots
        .stage(
            &zip,
            "device-cred-hsm",
            &["--device-cert", cert, "--p11-cert-source", "pkcs11"],
        )
        .code(2)
        .stderr_has("--device-cert with --p11-cert-source pkcs11");
    roots
        .stage(
            &zip,
            "device-cred-hsm",
            &["--device-cert", cert, "--p11-tls-cert-id", "01"],
        )
        .code(2)
        .stderr_has("--p11-tls-cert-id names the certificate's token object");
    assert!(!roots.dev.exists());

    // The certificate staged, no key; the fragment reads it from the file.
    roots
        .stage(&zip, "device-cred-hsm", &["--device-cert", cert])
        .success();
    assert_eq!(
        fs::read(roots.dev.join("var/sota/import/client.pem")).unwrap(),
        fs::read(&device.cert).unwrap()
    );
    assert!(!roots.dev.join("var/sota/import/pkey.pem").exists());
    let text = String::from_utf8(fs::read(roots.dev.join(fragment)).unwrap()).unwrap();
    for line in [
        "cert_source = \"file\"\n",
        "pkey_source = \"pkcs11\"\n",
        "tls_pkey_id = \"02\"\n",
        "tls_clientcert_path = \"client.pem\"\n",
    ] {
        assert!(text.contains(line), "{line}in\n{text}");
    }
    assert!(!text.contains("tls_clientcert_id"), "{text}");
    sota(["lint"]).arg(roots.dev.join(fragment)).run().success();

    // A generic image: the same fragment without a certificate, which a
    // bundle brings later; without the option, the certificate is the
    // token's, as before.
    let generic = roots.dir.join("generic.toml");
    sota([
        "render",
        "--method",
        "device-cred-hsm",
        "--p11-cert-source",
        "file",
        "--output",
    ])
    .arg(&generic)
    .run()
    .success();
    assert_eq!(fs::read(&generic).unwrap(), text.as_bytes());
    let token = roots.dir.join("token.toml");
    sota(["render", "--method", "device-cred-hsm", "--output"])
        .arg(&token)
        .run()
        .success();
    let token = fs::read_to_string(&token).unwrap();
    assert!(token.contains("cert_source = \"pkcs11\"\n"), "{token}");
    assert!(token.contains("tls_clientcert_id = \"01\"\n"), "{token}");
    assert!(!token.contains("tls_clientcert_path"), "{token}");
}

#[test]
fn device_cred_with_a_device_certificate_and_key() {
    let roots = Roots::new();
    let pki = Pki::new(&roots.dir);
    let zip = Creds::typical(&pki).write_to(&roots.dir, "c.zip");
    let device = pki.client(KeyAlg::Ec, Validity::Normal);
    let other = pki.client(KeyAlg::Ec, Validity::Normal);
    let expired = pki.client(KeyAlg::Ec, Validity::Expired);
    let args = |c: &Cert, k: &Cert| {
        vec![
            "--device-cert".to_string(),
            c.cert.to_str().unwrap().to_string(),
            "--device-key".to_string(),
            k.key.to_str().unwrap().to_string(),
        ]
    };
    let run_with = |a: Vec<String>| {
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        roots.stage(&zip, "device-cred", &a)
    };

    // Refused: the key of another certificate; an expired certificate.
    run_with(args(&device, &other))
        .code(1)
        .stderr_has("the device key `client-")
        .stderr_has("` does not match the device certificate `client-")
        .output_lacks("BEGIN");
    run_with(args(&expired, &expired))
        .code(1)
        .stderr_has("the device certificate `client-")
        .stderr_has("expired on 2020-01-01");
    assert!(!roots.dev.exists() && !roots.host.exists() && !roots.manifest.exists());
    // Half a pair is a usage error.
    stage_device_cmd(&zip, "device-cred", &roots.dev)
        .arg("--device-cert")
        .arg(&device.cert)
        .run()
        .code(2)
        .stderr_has("--device-key");
    // Not for shared-cred; device-cred-hsm takes the certificate alone
    // (its key is in the token).
    let a = args(&device, &device);
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    roots.stage(&zip, "shared-cred", &a).code(2).stderr_is(
        "error: `--device-cert` does not apply to shared-cred: it is for device-cred and device-cred-hsm\n",
    );
    roots.stage(&zip, "device-cred-hsm", &a).code(2).stderr_is(
        "error: --device-key does not apply to device-cred-hsm: the device's key is in its token; give only --device-cert\n",
    );
    // A certificate file with the root after the device's own: the root
    // stays out (a chain below an intermediate: tests/device_certs_ca.rs).
    let chain = roots.dir.write(
        "chain.pem",
        format!("{}{}", device.cert_pem(), pki.server_ca_pem()),
    );
    roots
        .stage_cmd(&zip, "device-cred", &[])
        .arg("--device-cert")
        .arg(&chain)
        .arg("--device-key")
        .arg(&device.key)
        .run()
        .code(1)
        .stderr_has("certificate 2 of `chain.pem`")
        .stderr_has("is a root (self-signed): leave it out of the file");
    assert!(!roots.dev.exists());

    // Matching and valid: client.pem 0644, pkey.pem 0600.
    run_with(args(&device, &device)).success();
    let files = files(&tree(&roots.dev));
    assert_eq!(
        listing(&files),
        [
            (DEVICE_FRAGMENT, 0o644),
            ("var/sota/import/client.pem", 0o644),
            ("var/sota/import/gateway.url", 0o644),
            ("var/sota/import/pkey.pem", 0o600),
            ("var/sota/import/repo/root.json", 0o644),
            ("var/sota/import/root.crt", 0o644),
        ]
    );
    assert_eq!(
        files["var/sota/import/client.pem"].1,
        device.cert_pem().as_bytes()
    );
    assert_eq!(
        files["var/sota/import/pkey.pem"].1,
        device.key_pem().as_bytes()
    );
    let manifest = roots.manifest();
    let pkey = manifest["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == "var/sota/import/pkey.pem")
        .unwrap();
    assert_eq!(pkey["secret"], true);
    assert_eq!(pkey["mode"], "0600");
}

#[test]
fn device_cred_hsm_stages_a_0600_fragment() {
    let roots = Roots::new();
    let pki = Pki::new(&roots.dir);
    let creds = Creds::typical(&pki);
    let zip = creds.write_to(&roots.dir, "c.zip");
    roots
        .stage(&zip, "aktualizr-device-prov-hsm", &[])
        .success();
    let dev = tree(&roots.dev);
    let files = files(&dev);
    assert_eq!(
        listing(&files),
        [
            (HSM_FRAGMENT, 0o600),
            ("var/sota/import/gateway.url", 0o644),
            ("var/sota/import/repo/root.json", 0o644),
            ("var/sota/import/root.crt", 0o644),
        ]
    );
    assert_snapshot("20-sota-device-cred-hsm.toml", &files[HSM_FRAGMENT].1);
    assert_times(&dev, EPOCH);
    assert_typical_host(&roots, &creds);
    assert_eq!(roots.manifest()["method"], "device-cred-hsm");

    // Every option, the PIN from a file: the fragment render snapshots too.
    let again = Roots::new();
    let pin = again.dir.write("pin", "7 seven 7\n");
    again
        .stage_cmd(&zip, "device-cred-hsm", &HSM_OPTIONS)
        .arg("--p11-pin-file")
        .arg(&pin)
        .run()
        .success()
        .output_lacks("seven");
    assert_snapshot(
        "20-sota-device-cred-hsm.custom.toml",
        &fs::read(again.dev.join(HSM_FRAGMENT)).unwrap(),
    );
}

#[test]
fn values_that_cannot_be_written_safely_stage_nothing() {
    let roots = Roots::new();
    let pki = Pki::new(&roots.dir);
    let zip = Creds::typical(&pki).write_to(&roots.dir, "c.zip");
    let cases: &[(&str, &[&str], i32, &str)] = &[
        (
            "device-cred",
            &["--hardware-id", "rpi\"4"],
            2,
            "hardware ID `rpi\\\"4` is not allowed",
        ),
        (
            "shared-cred",
            &["--hardware-id", "rpi 4"],
            2,
            "is not allowed",
        ),
        (
            "device-cred-hsm",
            &["--p11-pin", "TEST-ONLY-12\"34"],
            2,
            "the PKCS#11 PIN given with --p11-pin contains `\"`",
        ),
        (
            "device-cred-hsm",
            &["--p11-module", "/opt/my hsm/p11.so"],
            2,
            "--p11-module `/opt/my hsm/p11.so` contains whitespace",
        ),
        (
            "device-cred-hsm",
            &["--p11-module", "/opt/a&b/p11.so"],
            2,
            "--p11-module `/opt/a&b/p11.so` contains `&`",
        ),
    ];
    for (method, args, code, message) in cases {
        roots
            .stage(&zip, method, args)
            .code(*code)
            .stderr_has(message)
            .output_lacks("TEST-ONLY-12");
        assert!(!roots.dev.exists(), "{method} {args:?}");
        assert!(!roots.host.exists(), "{method} {args:?}");
        assert!(!roots.manifest.exists(), "{method} {args:?}");
    }
    // From the environment, as bitbake passes it: refused the same way.
    roots
        .stage_cmd(&zip, "shared-cred", &[])
        .env("SOTA_HARDWARE_ID", "rpi'4")
        .run()
        .code(2)
        .stderr_is(
            "error: hardware ID `rpi\\'4` is not allowed: use letters, digits, `.`, `_` and `-` \
             only (meta-updater's rule)\n",
        );
    assert!(!roots.dev.exists());
}

#[test]
fn device_cred_with_the_server_ca_only_in_a_p12_that_does_not_open_names_its_mac() {
    let roots = Roots::new();
    let pki = Pki::new(&roots.dir);
    let client = pki.client(KeyAlg::Ec, Validity::Normal);
    let p12 = pki.p12(&client, "TEST-ONLY-p12 pw", P12Form::Aes, 1);
    let zip = Creds::typical(&pki).p12(p12).write_to(&roots.dir, "c.zip");
    // The CA is only in the p12, and a wrong password keeps it shut: the
    // run says why (the MAC), not only that a server CA is missing.
    for method in ["device-cred", "device-cred-hsm"] {
        roots
            .stage_cmd(&zip, method, &[])
            .env("SOTA_P12_PASSWORD", "TEST-ONLY-wrong")
            .run()
            .code(1)
            .stderr_is(&format!(
                "error: c.zip: cannot stage for {method}:\n  - the archive does not support \
                 {method}: it lacks a server CA (`server_ca.pem`, or CA certificates in \
                 `autoprov_credentials.p12`)\n  - entry 'autoprov_credentials.p12' does not \
                 open with the given password (its MAC does not verify); give the right one \
                 with --p12-password-file or SOTA_P12_PASSWORD\n"
            ))
            .output_lacks("TEST-ONLY");
        assert!(!roots.dev.exists());
    }
    // With server_ca.pem, the p12 is not needed and does not block.
    let zip = Creds::typical(&pki)
        .p12(pki.p12(&client, "TEST-ONLY-p12 pw", P12Form::Aes, 1))
        .server_ca()
        .write_to(&roots.dir, "ca.zip");
    roots
        .stage_cmd(&zip, "device-cred", &[])
        .env("SOTA_P12_PASSWORD", "TEST-ONLY-wrong")
        .run()
        .success();
}

#[test]
fn a_p12_password_lands_in_a_0600_fragment() {
    let roots = Roots::new();
    let pki = Pki::new(&roots.dir);
    let client = pki.client(KeyAlg::Ec, Validity::Normal);
    let p12 = pki.p12(&client, "TEST-ONLY-p12 pw", P12Form::Aes, 1);
    let zip = Creds::typical(&pki).p12(p12).write_to(&roots.dir, "c.zip");
    // Without the password the p12 does not open: refused.
    roots.stage(&zip, "shared-cred", &[]).code(1).stderr_is(
        "error: c.zip: cannot stage for shared-cred:\n  - the archive does not support \
             shared-cred: it lacks an `autoprov_credentials.p12` that opens and holds a client \
             certificate with its key\n  - entry 'autoprov_credentials.p12' does not open with \
             the empty password (its MAC does not verify); give the right one with \
             --p12-password-file or SOTA_P12_PASSWORD\n",
    );
    assert!(!roots.dev.exists());
    roots
        .stage_cmd(&zip, "shared-cred", &[])
        .env("SOURCE_DATE_EPOCH", EPOCH.to_string())
        .env("SOTA_P12_PASSWORD", "TEST-ONLY-p12 pw")
        .run()
        .success()
        .output_lacks("TEST-ONLY");
    let files = files(&tree(&roots.dev));
    assert_eq!(files[SHARED_FRAGMENT].0, 0o600);
    assert_snapshot(
        "20-sota-shared-cred.p12-password.toml",
        &files[SHARED_FRAGMENT].1,
    );
    let manifest = roots.manifest();
    let fragment = manifest["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == SHARED_FRAGMENT)
        .unwrap();
    assert_eq!(
        (fragment["mode"].as_str(), fragment["secret"].as_bool()),
        (Some("0600"), Some(true))
    );
    // The manifest holds no secret either.
    assert!(!fs::read_to_string(&roots.manifest)
        .unwrap()
        .contains("TEST-ONLY"));
}
