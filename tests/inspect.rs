//! `sota-stage inspect`: archive intake refusals, content checks, the
//! upstream samples, and the JSON report. Each refusal rule of
//! docs/inspect.md section 1 has its test here.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use common::*;
use serde_json::Value;

/// Runs `inspect` on an archive given as bytes.
fn inspect_bytes(dir: &TestDir, bytes: &[u8], extra: &[&str]) -> Run {
    let zip = dir.write("credentials.zip", bytes);
    sota(["inspect"]).arg(&zip).args(extra).run()
}

/// Asserts a refusal: exit 1, the archive and the key words in the message.
fn refused(bytes: &[u8], words: &[&str]) {
    let dir = TestDir::new();
    let run = inspect_bytes(&dir, bytes, &[]);
    run.code(1).stderr_has("error: credentials.zip: ");
    for w in words {
        run.stderr_has(w);
    }
    assert!(run.stdout.is_empty(), "nothing on stdout: {}", run.stdout);
}

const URL: &[u8] = b"https://gw.example.test:443";

// --- intake: one test per refusal rule -------------------------------------

#[test]
fn refuses_what_is_not_a_zip() {
    refused(b"this is not a zip\n", &["not a zip archive"]);
    refused(b"", &["not a zip archive", "empty"]);
}

#[test]
fn refuses_the_upstream_invalid_archive() {
    let run = sota(["inspect"])
        .arg(upstream("aktualizr-invalid-credentials.zip"))
        .run();
    run.code(1)
        .stderr_is("error: aktualizr-invalid-credentials.zip: not a zip archive (Could not find EOCD); pass the credentials.zip your OTA server gave you\n");
}

#[test]
fn refuses_a_truncated_zip() {
    let full = RawZip::new().file("autoprov.url", URL).finish();
    refused(&full[..full.len() - 10], &["truncated or damaged"]);
    refused(&full[..40], &["truncated or damaged"]);
}

#[test]
fn refuses_data_before_the_zip() {
    let mut bytes = b"#!/bin/sh\nexit 0\n".to_vec();
    bytes.extend(RawZip::new().file("autoprov.url", URL).finish());
    refused(&bytes, &["not a zip archive", "before the zip"]);
}

#[test]
fn refuses_an_empty_zip_and_one_with_only_folders() {
    refused(&RawZip::new().finish(), &["no entries"]);
    refused(&RawZip::new().dir("keys/").finish(), &["no entries"]);
}

#[test]
fn refuses_encrypted_entries() {
    let bytes = RawZip::new()
        .entry(ZipEntry::file("autoprov.url", URL).encrypted())
        .finish();
    refused(&bytes, &["entry 'autoprov.url' is encrypted"]);
}

#[test]
fn refuses_unsafe_names() {
    let cases: &[(&[u8], &str)] = &[
        (b"/etc/passwd", "absolute path"),
        (b"../autoprov.url", "`..`"),
        (b"keys/../../x", "`..`"),
        (b"keys\\autoprov.url", "backslash"),
        (b"auto\0prov.url", "NUL"),
        (b"auto\nprov.url", "control character"),
        (b"\xff\xfe.url", "UTF-8"),
    ];
    for (name, word) in cases {
        let bytes = RawZip::new()
            .file("autoprov.url", URL)
            .entry(ZipEntry::file(*name, b"x".to_vec()))
            .finish();
        refused(&bytes, &["has an unsafe name", word]);
    }
}

#[test]
fn hostile_names_are_printed_escaped() {
    let dir = TestDir::new();
    let bytes = RawZip::new()
        .entry(ZipEntry::file(b"x\x1b[2J\nerror: forged", b"x".to_vec()))
        .finish();
    let run = inspect_bytes(&dir, &bytes, &[]);
    // One line, the escape and the line break shown, not acted on.
    run.code(1).stderr_is(
        "error: credentials.zip: entry 'x\\u{1b}[2J\\nerror: forged' has an unsafe name (it \
         contains a control character, a line break or an invisible format character); re-pack \
         the archive with plain file names at its root\n",
    );
}

#[test]
fn refuses_symlinks() {
    let bytes = RawZip::new()
        .entry(ZipEntry::symlink("autoprov.url", "/etc/shadow"))
        .finish();
    refused(&bytes, &["entry 'autoprov.url' is a symbolic link"]);
}

#[test]
fn refuses_duplicate_names() {
    let bytes = RawZip::new()
        .file("autoprov.url", URL)
        .file("autoprov.url", b"https://evil.example.test".to_vec())
        .finish();
    refused(&bytes, &["entry 'autoprov.url' appears more than once"]);
}

#[test]
fn refuses_credentials_only_in_a_subfolder() {
    let bytes = RawZip::new()
        .dir("creds/")
        .file("creds/autoprov.url", URL)
        .finish();
    refused(
        &bytes,
        &[
            "entry 'creds/autoprov.url' is in a subfolder",
            "'autoprov.url' only at the archive root",
        ],
    );
}

#[test]
fn a_subfolder_copy_beside_the_root_entry_is_only_unknown() {
    let dir = TestDir::new();
    let bytes = RawZip::new()
        .file("autoprov.url", URL)
        .file("old/autoprov.url", URL)
        .finish();
    let run = inspect_bytes(&dir, &bytes, &["--format", "json"]);
    let json = run.json();
    let old = &json["entries"][1];
    assert_eq!(old["name"], "old/autoprov.url");
    assert_eq!(old["role"], "unknown");
}

#[test]
fn refuses_too_many_entries() {
    let mut zip = RawZip::new();
    for i in 0..300 {
        zip = zip.file(format!("f{i}"), b"x".to_vec());
    }
    refused(&zip.finish(), &["300 entries", "limit of 256"]);
}

#[test]
fn refuses_an_entry_over_the_size_limit_by_its_header() {
    let bytes = RawZip::new()
        .entry(ZipEntry::file("root.json", b"{}".to_vec()).declared_size(64 << 20))
        .finish();
    refused(
        &bytes,
        &["entry 'root.json' is larger than the limit of 4194304 bytes"],
    );
}

#[test]
fn refuses_a_zip_bomb_whose_headers_lie() {
    // 64 MiB of zeros that claims to be 100 bytes: counted while inflating.
    let bytes = RawZip::new()
        .entry(ZipEntry::bomb("root.json", 64 << 20, 100))
        .finish();
    refused(&bytes, &["entry 'root.json' is larger than the limit"]);
}

#[test]
fn refuses_a_total_over_the_limit() {
    let mut zip = RawZip::new();
    for i in 0..5 {
        zip = zip.entry(ZipEntry::zeros(format!("part{i}.bin"), 4 << 20));
    }
    refused(
        &zip.finish(),
        &["add up to more than the limit of 16777216 bytes"],
    );
}

#[test]
fn refuses_an_entry_with_a_bad_crc() {
    let bytes = RawZip::new()
        .entry(ZipEntry::deflated("autoprov.url", URL).bad_crc())
        .finish();
    refused(&bytes, &["entry 'autoprov.url' cannot be read"]);
}

#[test]
fn directory_entries_are_ignored_and_reported() {
    let dir = TestDir::new();
    let pki = Pki::new(&dir);
    let zip = Creds::typical(&pki).dir("keys/").write_to(&dir, "c.zip");
    let run = sota(["inspect", "--format", "json"]).arg(&zip).run();
    run.code(0);
    let json = run.json();
    let keys = json["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .find(|e| e["name"] == "keys/")
        .expect("listed");
    assert_eq!(keys["role"], "directory");
    assert_eq!(keys["sha256"], Value::Null);
}

// --- the upstream samples ---------------------------------------------------

fn upstream_json(name: &str) -> (i32, Value) {
    let run = sota(["inspect", "--format", "json"])
        .arg(upstream(name))
        .run();
    (run.code, run.json())
}

fn entry<'a>(json: &'a Value, name: &str) -> &'a Value {
    json["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .find(|e| e["name"] == name)
        .unwrap_or_else(|| panic!("no entry {name} in {json}"))
}

fn messages(v: &Value) -> Vec<String> {
    v["problems"]
        .as_array()
        .expect("problems")
        .iter()
        .map(|p| {
            format!(
                "{}: {}",
                p["severity"].as_str().unwrap_or(""),
                p["message"].as_str().unwrap_or("")
            )
        })
        .collect()
}

#[test]
fn upstream_credentials_zip() {
    let (code, json) = upstream_json("aktualizr-credentials.zip");
    assert_eq!(json["schema"], 1);
    assert_eq!(json["file"], "aktualizr-credentials.zip");
    assert_eq!(
        json["methods"],
        serde_json::json!(["shared-cred", "device-cred", "device-cred-hsm"])
    );
    let p12 = entry(&json, "autoprov_credentials.p12");
    assert_eq!(p12["role"], "device");
    assert_eq!(p12["secret"], true);
    let details = p12["details"].to_string();
    assert!(
        details.contains("47ff9a99-7a8d-42f9-ae28-f7f0332016b5 (EC P-256, expires 2018-07-18)"),
        "{details}"
    );
    // The CA is stored twice and reported once.
    assert_eq!(
        details.matches("\"CA certificate\"").count(),
        1,
        "{details}"
    );
    assert!(
        details.contains("3 certificates stored, 2 after removing duplicates"),
        "{details}"
    );
    // Its client certificate expired in 2018: an error, so not ok.
    assert_eq!(code, 1);
    assert_eq!(json["ok"], false);
    let problems = messages(p12);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].starts_with("error: entry 'autoprov_credentials.p12': the client certificate `47ff9a99-7a8d-42f9-ae28-f7f0332016b5` expired on 2018-07-18"), "{problems:?}");
    let treehub = entry(&json, "treehub.json");
    assert_eq!(treehub["role"], "host");
    assert!(treehub["details"].to_string().contains("OAuth2"));
    let url = entry(&json, "autoprov.url");
    assert!(messages(url).is_empty());
    // The OAuth2 secret of the sample never shows.
    assert!(!json.to_string().contains("XSE271ywWD"));
}

#[test]
fn upstream_samples_never_print_their_oauth2_secret() {
    for name in [
        "aktualizr-credentials.zip",
        "aktualizr-auth_test_good_offline.zip",
    ] {
        for format in ["text", "json"] {
            let run = sota(["inspect", "--format", format])
                .arg(upstream(name))
                .run();
            // The samples' OAuth2 client secrets.
            run.output_lacks("XSE271ywWD")
                .output_lacks("BEGIN RSA PRIVATE KEY");
        }
    }
}

#[test]
fn upstream_offline_signing_set() {
    let (code, json) = upstream_json("aktualizr-auth_test_good_offline.zip");
    assert_eq!(code, 1, "expired client cert");
    let tufrepo = entry(&json, "tufrepo.url");
    assert_eq!(messages(tufrepo), ["warning: entry 'tufrepo.url' is empty; garage-sign cannot reach the image repository from it (real archives sometimes ship it empty)"]);
    assert!(
        messages(entry(&json, "targets.sec")).is_empty(),
        "the RSA pair matches"
    );
    assert!(entry(&json, "targets.pub")["details"]
        .to_string()
        .contains("RSA"));
    assert_eq!(entry(&json, "targets.sec")["secret"], true);
    assert_eq!(entry(&json, "root.json")["role"], "device");
    // The sample's root expired in 2018: a warning, since Uptane root
    // rotation can start from an expired root.
    assert_eq!(
        messages(entry(&json, "root.json")),
        [
            "warning: entry 'root.json': `signed.expires` is 2018-11-10T11:15:27Z, in the past; \
          aktualizr can still rotate from it to the newer roots of the repository, but check \
          that it has them"
        ]
    );
}

#[test]
fn upstream_p12_only_archive() {
    let (code, json) = upstream_json("aktualizr-cred.zip");
    assert_eq!(code, 1);
    assert_eq!(json["methods"], serde_json::json!([]));
    let all = json["problems"].to_string();
    assert!(all.contains("supports no provisioning method"), "{all}");
}

#[test]
fn upstream_no_auth_treehub() {
    let (code, json) = upstream_json("aktualizr-auth_test_noauth_good.zip");
    assert_eq!(code, 0, "warnings only");
    assert_eq!(json["ok"], true);
    assert_eq!(json["methods"], serde_json::json!([]));
    let treehub = entry(&json, "treehub.json");
    assert!(treehub["details"].to_string().contains("none"));
    assert!(messages(treehub)[0].contains("no authentication section"));
}

#[test]
fn upstream_no_json_archive() {
    let (_, json) = upstream_json("aktualizr-auth_test_no_json.zip");
    assert_eq!(
        json["methods"],
        serde_json::json!(["shared-cred", "device-cred", "device-cred-hsm"])
    );
}

// --- content checks on archives built here ----------------------------------

#[test]
fn a_typical_archive_is_ok_for_every_method() {
    let dir = TestDir::new();
    let pki = Pki::new(&dir);
    let zip = Creds::typical(&pki).write_to(&dir, "credentials.zip");
    let run = sota(["inspect"]).arg(&zip).run();
    run.code(0)
        .stdout_has("methods: shared-cred, device-cred, device-cred-hsm")
        .stdout_has("result: ok, 0 errors, 0 warnings")
        .output_lacks(OAUTH2_SECRET);
    let json = sota(["inspect", "--format", "json"]).arg(&zip).run().json();
    assert_eq!(json["ok"], true);
    for e in json["entries"].as_array().expect("entries") {
        assert_eq!(e["problems"], serde_json::json!([]), "{e}");
        assert_eq!(e["sha256"].as_str().map(str::len), Some(64));
    }
}

#[test]
fn legacy_and_aes_p12_open_with_and_without_a_password() {
    let dir = TestDir::new();
    let pki = Pki::new(&dir);
    let client = pki.client(KeyAlg::Ec, Validity::Normal);
    for form in [P12Form::Legacy, P12Form::Aes] {
        for password in ["", "s3cret-pw"] {
            let zip = Creds::typical(&pki)
                .p12(pki.p12(&client, password, form, 1))
                .write_to(&dir, "c.zip");
            let mut cmd = sota(["inspect"]).arg(&zip);
            if !password.is_empty() {
                cmd = cmd.env("SOTA_P12_PASSWORD", password);
            }
            let run = cmd.run();
            run.code(0);
            if !password.is_empty() {
                run.output_lacks(password);
            }
            if !password.is_empty() {
                sota(["inspect"])
                    .arg(&zip)
                    .run()
                    .code(1)
                    .stdout_has("does not open with the empty password");
                let pw = dir.write("pw", format!("{password}\n"));
                sota(["inspect", "--p12-password-file"])
                    .arg(&pw)
                    .arg(&zip)
                    .run()
                    .code(0);
                // The flag beats the environment.
                sota(["inspect", "--p12-password", password])
                    .arg(&zip)
                    .env("SOTA_P12_PASSWORD", "wrong")
                    .run()
                    .code(0);
                sota(["inspect", "--p12-password", "wrong"])
                    .arg(&zip)
                    .run()
                    .code(1)
                    .stdout_has("does not open with the given password")
                    .output_lacks("wrong");
            }
        }
    }
}

#[test]
fn expired_and_expiring_client_certificates() {
    let dir = TestDir::new();
    let pki = Pki::new(&dir);
    let expired = pki.client(KeyAlg::Ec, Validity::Expired);
    let zip = Creds::typical(&pki)
        .p12(pki.p12(&expired, "", P12Form::Aes, 1))
        .write_to(&dir, "c.zip");
    sota(["inspect"])
        .arg(&zip)
        .run()
        .code(1)
        .stdout_has("error: c.zip: entry 'autoprov_credentials.p12': the client certificate")
        .stdout_has("expired on 2020-01-01");
    let soon = pki.client(KeyAlg::Ec, Validity::ExpiresInDays(10));
    let zip = Creds::typical(&pki)
        .p12(pki.p12(&soon, "", P12Form::Aes, 1))
        .write_to(&dir, "c.zip");
    sota(["inspect"])
        .arg(&zip)
        .run()
        .code(0)
        .stdout_has("warning: c.zip: entry 'autoprov_credentials.p12': the client certificate")
        .stdout_has("expires in")
        .stdout_has("days (20");
}

#[test]
fn p12_without_key_or_certificate() {
    let dir = TestDir::new();
    let pki = Pki::new(&dir);
    let client = pki.client(KeyAlg::Ec, Validity::Normal);
    let zip = Creds::typical(&pki)
        .p12(pki.p12_parts(Some(&client), None, "", P12Form::Aes, 1))
        .write_to(&dir, "c.zip");
    let run = sota(["inspect"]).arg(&zip).run();
    run.code(1)
        .stdout_has("entry 'autoprov_credentials.p12' cannot be used");
    let zip = Creds::typical(&pki)
        .p12(pki.p12_parts(None, Some(&client), "", P12Form::Aes, 0))
        .write_to(&dir, "c.zip");
    sota(["inspect"])
        .arg(&zip)
        .run()
        .code(1)
        .stdout_has("entry 'autoprov_credentials.p12' cannot be used");
}

#[test]
fn device_url_rules() {
    let dir = TestDir::new();
    let pki = Pki::new(&dir);
    let cases: &[(&str, &[&str], i32, &str)] = &[
        ("http://gw.example.test", &[], 1, "is plain http"),
        (
            "http://gw.example.test",
            &["--allow-http"],
            0,
            "methods: shared-cred",
        ),
        ("https://gw.example.test/?a=b", &[], 1, "query or fragment"),
        (
            "https://gw.example.test/",
            &[],
            0,
            "stage writes it as `https://gw.example.test`",
        ),
        ("https://gw.example.test # comment", &[], 1, "whitespace"),
        ("\u{feff}https://gw.example.test", &[], 1, "byte order mark"),
        ("", &[], 1, "is empty"),
        ("  https://gw.example.test\r\n", &[], 0, "result: ok"),
    ];
    for (url, flags, code, word) in cases {
        let zip = Creds::typical(&pki).url(url).write_to(&dir, "c.zip");
        sota(["inspect"])
            .arg(&zip)
            .args(*flags)
            .run()
            .code(*code)
            .stdout_has(word);
    }
}

#[test]
fn host_urls_on_http_are_warnings() {
    let dir = TestDir::new();
    let pki = Pki::new(&dir);
    let zip = Creds::typical(&pki)
        .tufrepo_url("http://tuf.example.test")
        .api_gateway_url("http://api.example.test")
        .treehub_json(
            r#"{"no_auth": true, "ostree": {"server": "http://treehub.example.test/api/v3/"}}"#,
        )
        .write_to(&dir, "c.zip");
    let run = sota(["inspect"]).arg(&zip).run();
    run.code(0)
        .stdout_has("warning: c.zip: entry 'tufrepo.url': `http://tuf.example.test` is plain http")
        .stdout_has("entry 'api_gateway.url': `http://api.example.test` is plain http")
        .stdout_has("entry 'treehub.json': `ostree.server` `http://treehub.example.test/api/v3/` is plain http");
}

#[test]
fn treehub_json_problems() {
    let dir = TestDir::new();
    let pki = Pki::new(&dir);
    let cases: &[(&str, &str)] = &[
        ("{not json", "is not valid JSON"),
        (
            r#"{"oauth2":{"server":"https://a.example.test","client_id":"x"},"ostree":{"server":"https://t.example.test"}}"#,
            "`oauth2.client_secret` is missing",
        ),
        (
            r#"{"no_auth": false, "ostree": {"server": "https://t.example.test"}}"#,
            "garage-sign refuses this",
        ),
        (
            r#"{"oauth2":{"server":"https://a.example.test","client_id":"x","client_secret":"TEST-ONLY-client-secret-0123"}}"#,
            "has no `ostree.server`",
        ),
    ];
    for (json, word) in cases {
        let zip = Creds::typical(&pki)
            .treehub_json(json)
            .write_to(&dir, "c.zip");
        sota(["inspect"])
            .arg(&zip)
            .run()
            .code(1)
            .stdout_has(word)
            .output_lacks(OAUTH2_SECRET);
    }
}

#[test]
fn client_auth_p12_means_mutual_tls() {
    let dir = TestDir::new();
    let pki = Pki::new(&dir);
    let client = pki.client(KeyAlg::Ec, Validity::Normal);
    let zip = Creds::typical(&pki)
        .file("client_auth.p12", pki.p12(&client, "", P12Form::Aes, 1))
        .write_to(&dir, "c.zip");
    let json = sota(["inspect", "--format", "json"]).arg(&zip).run().json();
    assert!(entry(&json, "treehub.json")["details"]
        .to_string()
        .contains("mutual TLS"));
    assert_eq!(entry(&json, "client_auth.p12")["role"], "host");
}

#[test]
fn root_json_and_targets_keys() {
    let dir = TestDir::new();
    let pki = Pki::new(&dir);
    let cases: Vec<(Creds, &str)> = vec![
        (
            Creds::typical(&pki).file("root.json", "[]"),
            "has no `signed` object",
        ),
        (
            Creds::typical(&pki).file(
                "root.json",
                r#"{"signed":{"_type":"Targets","version":1,"expires":"x"},"signatures":[]}"#,
            ),
            "not `Root`",
        ),
        (
            Creds::typical(&pki).file(
                "root.json",
                r#"{"signed":{"_type":"Root","version":1,"expires":"x"}}"#,
            ),
            "has no `signatures` list",
        ),
        (
            Creds::typical(&pki).file("targets.pub", "{}"),
            "is not a garage-sign public key",
        ),
    ];
    for (creds, word) in cases {
        let zip = creds.write_to(&dir, "c.zip");
        sota(["inspect"]).arg(&zip).run().code(1).stdout_has(word);
    }
    // A public key from one pair with the private key of another.
    let (public, _) = pki.targets_ed25519();
    let zip = Creds::typical(&pki)
        .file("targets.pub", public)
        .write_to(&dir, "c.zip");
    sota(["inspect"])
        .arg(&zip)
        .run()
        .code(1)
        .stdout_has("entry 'targets.sec' does not match targets.pub");
}

#[test]
fn community_edition_archive_supports_device_credentials() {
    let dir = TestDir::new();
    let pki = Pki::new(&dir);
    let zip = Creds::new(&pki)
        .url("https://gw.example.test:8000")
        .server_ca()
        .treehub_no_auth()
        .write_to(&dir, "c.zip");
    let json = sota(["inspect", "--format", "json"]).arg(&zip).run().json();
    assert_eq!(
        json["methods"],
        serde_json::json!(["device-cred", "device-cred-hsm"])
    );
    assert_eq!(entry(&json, "server_ca.pem")["role"], "device");
}

#[test]
fn unknown_entries_are_warnings_and_secret() {
    let dir = TestDir::new();
    let pki = Pki::new(&dir);
    let zip = Creds::typical(&pki)
        .file("priv.key", "x")
        .write_to(&dir, "c.zip");
    let run = sota(["inspect", "--format", "json"]).arg(&zip).run();
    run.code(0);
    let json = run.json();
    let e = entry(&json, "priv.key");
    assert_eq!(e["role"], "unknown");
    assert_eq!(e["secret"], true);
    assert!(messages(e)[0].contains("--unknown host or --unknown drop"));
}

#[test]
fn refused_archive_in_json() {
    let dir = TestDir::new();
    let run = inspect_bytes(&dir, b"nope", &["--format", "json"]);
    run.code(1);
    let json = run.json();
    assert_eq!(json["ok"], false);
    assert_eq!(json["entries"], serde_json::json!([]));
    assert!(json["problems"][0]["message"]
        .as_str()
        .unwrap_or("")
        .contains("not a zip archive"));
}

#[test]
fn exit_codes_for_usage_and_io() {
    sota(["inspect", "--format", "yaml", "x.zip"]).run().code(2);
    sota(["inspect"]).run().code(2);
    let dir = TestDir::new();
    sota(["inspect"])
        .arg(dir.join("missing.zip"))
        .run()
        .code(3)
        .stderr_has("cannot open")
        .stderr_has("missing.zip");
    // The archive comes from the environment too.
    let pki = Pki::new(&dir);
    let zip = Creds::typical(&pki).write_to(&dir, "env.zip");
    let env = sota(["inspect"]).env("SOTA_PACKED_CREDENTIALS", &zip).run();
    env.code(0);
    // With --credentials, as every other command takes it: the same
    // report; the flag beats the environment; both forms at once is a
    // usage error.
    sota(["inspect", "--credentials"])
        .arg(&zip)
        .run()
        .code(0)
        .stdout_is(&env.stdout);
    sota(["inspect", "--credentials"])
        .arg(&zip)
        .env("SOTA_PACKED_CREDENTIALS", dir.join("missing.zip"))
        .run()
        .code(0)
        .stdout_is(&env.stdout);
    sota(["inspect", "--credentials"])
        .arg(&zip)
        .arg(&zip)
        .run()
        .code(2)
        .stderr_has("cannot be used with");
    sota(["inspect"]).run().code(2).stderr_is(
        "error: no credentials archive: give it as CREDENTIALS, with --credentials FILE, or in \
         SOTA_PACKED_CREDENTIALS\n",
    );
}
