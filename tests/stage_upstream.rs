//! `sota-stage stage` on the real upstream samples (what each method
//! stages from them, what it refuses), and no byte of a host-only entry on
//! the device (design.md 4-5).

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use common::staged::*;
use common::*;

// --- the upstream samples -----------------------------------------------------

#[test]
fn upstream_credentials_zip_refused_for_shared_cred_staged_for_device_cred() {
    // Its shared client certificate expired in 2018.
    let roots = Roots::new();
    let zip = upstream("aktualizr-credentials.zip");
    roots
        .stage(&zip, "shared-cred", &[])
        .code(1)
        .stderr_is(
            "error: aktualizr-credentials.zip: cannot stage for shared-cred:\n  - entry \
             'autoprov_credentials.p12': the client certificate `47ff9a99-7a8d-42f9-ae28-f7f0332016b5` expired on 2018-07-18; ask your OTA server for new credentials\n",
        );
    assert!(!roots.dev.exists() && !roots.host.exists() && !roots.manifest.exists());

    // device-cred uses only its URL and the CA inside the p12 (still valid).
    for (method, fragment) in [
        ("device-cred", DEVICE_FRAGMENT),
        ("device-cred-hsm", HSM_FRAGMENT),
    ] {
        let roots = Roots::new();
        let run = roots.stage(&zip, method, &[]);
        let hsm = if method == "device-cred-hsm" {
            "warning: no --p11-pin-file given: the device gets aktualizr's example PKCS#11 PIN 1234; give the token's user PIN with --p11-pin-file\n\
             note: 20-sota-device-cred-hsm.toml holds a password or PIN: it sets `[telemetry] report_config = false`, so aktualizr does not send its configuration to the server (--report-config on leaves aktualizr's default)\n"
        } else {
            ""
        };
        run.success().stderr_is(&format!(
            "{hsm}warning: aktualizr-credentials.zip: entry 'autoprov_credentials.p12': \
             the client certificate `47ff9a99-7a8d-42f9-ae28-f7f0332016b5` expired on 2018-07-18; ask your OTA server for new credentials (not staged for {method})\n\
             staged aktualizr-credentials.zip for {method}: 5 files written, 0 already in place\n"
        ));
        let files = files(&tree(&roots.dev));
        let mode = if method == "device-cred" {
            0o644
        } else {
            0o600
        };
        assert_eq!(
            listing(&files),
            [
                (fragment, mode),
                ("var/sota/import/gateway.url", 0o644),
                ("var/sota/import/root.crt", 0o644),
            ]
        );
        assert_eq!(
            files["var/sota/import/gateway.url"].1,
            upstream_entry("aktualizr-credentials.zip", "autoprov.url")
        );
        // root.crt: the p12's CA certificates (the same one twice), once;
        // openssl reads the same out of the p12.
        let p12 = roots.dir.write(
            "sample.p12",
            upstream_entry("aktualizr-credentials.zip", "autoprov_credentials.p12"),
        );
        let cas = openssl(
            roots.dir.path(),
            [
                os("pkcs12"),
                os("-in"),
                p12.as_os_str(),
                os("-legacy"),
                os("-passin"),
                os("pass:"),
                os("-nokeys"),
                os("-cacerts"),
            ],
        );
        let mut blocks = pem_blocks(&String::from_utf8(cas).unwrap());
        assert_eq!(blocks.len(), 2, "the sample holds its CA twice");
        blocks.dedup();
        assert_eq!(
            String::from_utf8(files["var/sota/import/root.crt"].1.clone()).unwrap(),
            blocks.concat()
        );
        // Host: treehub.json, and the host-only zip; never the p12.
        let host = files_of(&roots.host);
        assert_eq!(
            listing(&host),
            [("credentials.zip", 0o600), ("treehub.json", 0o600)]
        );
        assert_eq!(
            host["treehub.json"].1,
            upstream_entry("aktualizr-credentials.zip", "treehub.json")
        );
        assert_eq!(
            zip_entries(&host["credentials.zip"].1)
                .into_keys()
                .collect::<Vec<_>>(),
            ["treehub.json"]
        );
    }
}
#[test]
fn upstream_offline_signing_set() {
    let zip = upstream("aktualizr-auth_test_good_offline.zip");
    let roots = Roots::new();
    roots.stage(&zip, "shared-cred", &[]).code(1).stderr_is(
        "error: aktualizr-auth_test_good_offline.zip: cannot stage for shared-cred:\n  - \
             entry 'autoprov_credentials.p12': the client certificate \
             `79561c6d-416c-4588-89f5-9053bef6a66b` expired on 2018-11-11; ask your OTA server \
             for new credentials\n",
    );
    let roots = Roots::new();
    roots.stage(&zip, "device-cred", &[]).success().stderr_is(
        "warning: aktualizr-auth_test_good_offline.zip: entry 'autoprov_credentials.p12': \
             the client certificate `79561c6d-416c-4588-89f5-9053bef6a66b` expired on \
             2018-11-11; ask your OTA server for new credentials (not staged for device-cred)\n\
             warning: aktualizr-auth_test_good_offline.zip: entry 'root.json': `signed.expires` \
             is 2018-11-10T11:15:27Z, in the past; aktualizr can still rotate from it to the \
             newer roots of the repository, but check that it has them\n\
             warning: aktualizr-auth_test_good_offline.zip: entry 'tufrepo.url' is empty; \
             garage-sign cannot reach the image repository from it (real archives sometimes \
             ship it empty)\n\
             staged aktualizr-auth_test_good_offline.zip for device-cred: 10 files written, 0 \
             already in place\n",
    );
    let dev = files_of(&roots.dev);
    assert_eq!(
        listing(&dev),
        [
            (DEVICE_FRAGMENT, 0o644),
            ("var/sota/import/gateway.url", 0o644),
            ("var/sota/import/repo/root.json", 0o644),
            ("var/sota/import/root.crt", 0o644),
        ]
    );
    let root_json = upstream_entry("aktualizr-auth_test_good_offline.zip", "root.json");
    assert_eq!(dev["var/sota/import/repo/root.json"].1, root_json);
    let host = files_of(&roots.host);
    assert_eq!(listing(&host), HOST_FILES);
    for &(name, _) in &HOST_FILES[1..] {
        let bytes = upstream_entry("aktualizr-auth_test_good_offline.zip", name);
        assert_eq!(host[name].1, bytes, "{name}");
        assert_eq!(
            zip_entries(&host["credentials.zip"].1)[name],
            bytes,
            "zip {name}"
        );
    }
}

#[test]
fn upstream_archives_without_what_a_method_needs_are_refused() {
    let cannot = "cannot stage for";
    let lacks = "the archive does not support";
    let shared_needs = "an `autoprov_credentials.p12` that opens and holds a client certificate \
                        with its key";
    let device_needs = "a server CA (`server_ca.pem`, or CA certificates in \
                        `autoprov_credentials.p12`)";
    // (archive, method, stderr after `error: ARCHIVE: `)
    for (name, method, message) in [
        (
            "aktualizr-cred.zip",
            "device-cred",
            format!(
                "{cannot} device-cred:\n  - {lacks} device-cred: it lacks a valid `autoprov.url`"
            ),
        ),
        (
            "aktualizr-auth_test_noauth_good.zip",
            "device-cred",
            format!(
                "{cannot} device-cred:\n  - {lacks} device-cred: it lacks a valid `autoprov.url` \
                 and {device_needs}"
            ),
        ),
        (
            "aktualizr-auth_test_noauth_good.zip",
            "shared-cred",
            format!(
                "{cannot} shared-cred:\n  - {lacks} shared-cred: it lacks a valid `autoprov.url` \
                 and {shared_needs}"
            ),
        ),
        (
            "aktualizr-auth_test_no_json.zip",
            "shared-cred",
            format!(
                "{cannot} shared-cred:\n  - entry 'autoprov_credentials.p12': the client \
                 certificate `b003ba3d-d854-4703-9e6e-c73b395b4281` expired on 2020-07-22; ask \
                 your OTA server for new credentials"
            ),
        ),
        (
            "aktualizr-invalid-credentials.zip",
            "device-cred",
            "not a zip archive (Could not find EOCD); pass the credentials.zip your OTA server \
             gave you"
                .to_owned(),
        ),
    ] {
        let roots = Roots::new();
        roots
            .stage(&upstream(name), method, &[])
            .code(1)
            .stderr_is(&format!("error: {name}: {message}\n"));
        assert!(
            !roots.dev.exists() && !roots.host.exists() && !roots.manifest.exists(),
            "{name}"
        );
    }
    // The no-json sample works for device-cred and has no host files.
    let roots = Roots::new();
    roots
        .stage(
            &upstream("aktualizr-auth_test_no_json.zip"),
            "device-cred",
            &[],
        )
        .success();
    assert_eq!(files_of(&roots.dev).len(), 3);
    assert!(files_of(&roots.host).is_empty());
}

// --- host secrets never reach the device -------------------------------------

#[test]
fn no_byte_of_a_host_only_entry_reaches_the_device() {
    let dir = TestDir::new();
    let pki = Pki::new(&dir);
    let creds = Creds::typical(&pki)
        .server_ca()
        .api_gateway_url("https://TEST-ONLY-api.example.test/api")
        .file("TEST-ONLY-notes.txt", "TEST-ONLY-unknown-entry-payload");
    let zip = creds.write_to(&dir, "c.zip");
    let entries = entries_of(&creds);
    let targets_sec: serde_json::Value = serde_json::from_slice(&entries["targets.sec"]).unwrap();
    let private_hex = targets_sec["keyval"]["private"]
        .as_str()
        .unwrap()
        .to_string();
    let device_cert = pki.client(KeyAlg::Ec, Validity::Normal);

    for (method, extra) in [
        ("shared-cred", vec![]),
        (
            "device-cred",
            vec![
                "--device-cert",
                device_cert.cert.to_str().unwrap(),
                "--device-key",
                device_cert.key.to_str().unwrap(),
            ],
        ),
        ("device-cred-hsm", vec![]),
    ] {
        for unknown in ["host", "drop"] {
            let roots = Roots::new();
            let mut args = extra.clone();
            args.extend(["--unknown", unknown, "--hardware-id", "rpi4"]);
            roots
                .stage(&zip, method, &args)
                .success()
                .output_lacks(OAUTH2_SECRET);
            let host = files_of(&roots.host);
            // The needles: every host-only entry's bytes, the OAuth2
            // secret, the signing key's private half, the host zip.
            let mut needles: Vec<(String, Vec<u8>)> = vec![
                ("OAuth2 secret".into(), OAUTH2_SECRET.as_bytes().to_vec()),
                (
                    "targets.sec private key".into(),
                    private_hex.as_bytes().to_vec(),
                ),
                (
                    "host credentials.zip".into(),
                    host["credentials.zip"].1.clone(),
                ),
            ];
            for name in [
                "treehub.json",
                "targets.sec",
                "targets.pub",
                "tufrepo.url",
                "api_gateway.url",
                "TEST-ONLY-notes.txt",
            ] {
                needles.push((name.into(), entries[name].clone()));
            }
            needles.push(("host-only names".into(), b"TEST-ONLY".to_vec()));
            let mut searched = 0;
            for (path, (_, bytes)) in files_of(&roots.dev) {
                let mut blobs = vec![(path.clone(), bytes.clone())];
                if path.ends_with(".zip") {
                    for (name, data) in zip_entries(&bytes) {
                        blobs.push((format!("{path}!{name}"), data));
                    }
                }
                for (where_, blob) in blobs {
                    searched += 1;
                    for (what, needle) in &needles {
                        assert!(
                            !blob.windows(needle.len()).any(|w| w == needle.as_slice()),
                            "{method}: {what} found in device file {where_}"
                        );
                    }
                }
            }
            assert!(searched >= 4, "{method}: searched {searched} device files");
            // Where the host-only entries went.
            assert_eq!(host.contains_key("TEST-ONLY-notes.txt"), unknown == "host");
            assert_eq!(host["treehub.json"].1, entries["treehub.json"]);
            assert!(!host.contains_key("autoprov_credentials.p12"));
            assert!(
                !zip_entries(&host["credentials.zip"].1).contains_key("autoprov_credentials.p12")
            );
        }
    }
}
