//! Issue 10, "untrusted input everywhere": archives whose parts disagree,
//! names and certificate fields that try to forge output, operator files
//! that never end, templates that recurse or leak, values past their limits.
//! Each test names the defect it covers.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use common::*;

const URL: &[u8] = b"https://gw.example.test:443";

/// `inspect` on an archive given as bytes.
fn inspect_bytes(dir: &TestDir, bytes: &[u8]) -> Run {
    let zip = dir.write("credentials.zip", bytes);
    sota(["inspect"]).arg(&zip).run()
}

/// Asserts a refusal: exit 1, nothing on stdout, `message` on stderr.
fn refused(bytes: &[u8], message: &str) {
    let dir = TestDir::new();
    let run = inspect_bytes(&dir, bytes);
    run.code(1)
        .stderr_is(&format!("error: credentials.zip: {message}\n"));
    assert!(run.stdout.is_empty(), "nothing on stdout: {}", run.stdout);
}

/// Eight small entries, as many as a typical archive.
fn eight_entries() -> RawZip {
    let mut zip = RawZip::new().file("autoprov.url", URL);
    for name in ["a", "b", "c", "d", "e", "f", "g"] {
        zip = zip.file(format!("{name}.txt"), name.as_bytes().to_vec());
    }
    zip
}

/// [`eight_entries`] with an end record that counts `declared`: refused,
/// and the message says both counts.
#[track_caller]
fn refused_with_count(declared: u16) {
    refused(
        &eight_entries().declared_count(declared).finish(),
        &format!(
            "the end record counts {declared} entries, but the central directory holds 8; zip \
             readers would disagree on what the archive holds: download the credentials again"
        ),
    );
}

// --- defect 2 and 10: the end record's count --------------------------------

#[test]
fn an_end_record_counting_too_few_entries_is_refused() {
    refused_with_count(3);
}

#[test]
fn an_end_record_counting_too_many_entries_says_so() {
    refused_with_count(10);
}

#[test]
fn stage_writes_nothing_from_an_archive_whose_count_lies() {
    let dir = TestDir::new();
    let pki = Pki::new(&dir);
    let mut raw = Creds::typical(&pki).raw();
    let real = u16::try_from(raw.entries.len()).unwrap();
    raw = raw.declared_count(real - 2);
    let zip = raw.write_to(&dir, "credentials.zip");
    staged::stage_device_cmd(&zip, "shared-cred", &dir.join("image"))
        .run()
        .code(1)
        .stderr_has("the end record counts");
    assert!(!dir.join("image").exists(), "nothing staged");
}

// --- defect 3: the local header's name ---------------------------------------

#[test]
fn a_local_header_with_another_name_is_refused() {
    for local in ["autoprov.urm", "../../../../tmp/x"] {
        let bytes = RawZip::new()
            .entry(ZipEntry::file("autoprov.url", URL).local_name(local))
            .finish();
        refused(
            &bytes,
            &format!(
                "entry 'autoprov.url' is named '{local}' in its local header; zip readers would \
                 disagree on its name: download the credentials again"
            ),
        );
    }
}

// --- defect 4: data before the zip ------------------------------------------

#[test]
fn data_before_the_zip_is_refused_with_or_without_adjusted_offsets() {
    let prefix = b"#!/bin/sh\necho self-extracting\nexit 0\n";
    for adjusted in [false, true] {
        let bytes = RawZip::new()
            .file("autoprov.url", URL)
            .prefix(prefix.to_vec(), adjusted)
            .finish();
        refused(
            &bytes,
            &format!(
                "not a zip archive ({} bytes of other data before the zip); pass the \
                 credentials.zip your OTA server gave you",
                prefix.len()
            ),
        );
    }
}

#[test]
fn data_after_the_zip_is_refused() {
    let mut bytes = RawZip::new().file("autoprov.url", URL).finish();
    bytes.extend_from_slice(b"trailing data");
    refused(
        &bytes,
        "not a zip archive (other data follows the end of the zip); pass the credentials.zip \
         your OTA server gave you",
    );
}

// --- defect 10: encrypted and unknown compression methods --------------------

#[test]
fn aes_entries_are_refused_as_encrypted_with_or_without_their_extra_field() {
    let message = "entry 'autoprov.url' is encrypted; sota-stage reads only unencrypted \
                   archives: re-pack it without a password";
    let with_extra = RawZip::new()
        .entry(ZipEntry::file("autoprov.url", URL).aes())
        .finish();
    refused(&with_extra, message);
    let without_extra = RawZip::new()
        .entry(ZipEntry::file("autoprov.url", URL).method(99))
        .finish();
    refused(&without_extra, message);
}

#[test]
fn an_unknown_compression_method_is_named() {
    let bytes = RawZip::new()
        .entry(ZipEntry::file("autoprov.url", URL).method(12))
        .finish();
    refused(
        &bytes,
        "entry 'autoprov.url' uses compression method 12; sota-stage reads stored and deflated \
         entries only: re-pack the archive with plain zip",
    );
}

// --- defect 6: names with invisible or control characters -------------------

#[test]
fn names_with_c1_bidi_or_zero_width_characters_are_refused_and_shown_escaped() {
    let cases = [
        ("autoprov.url\u{200b}", "autoprov.url\\u{200b}"),
        ("x\u{202e}lru.vorpotua", "x\\u{202e}lru.vorpotua"),
        ("next\u{85}line", "next\\u{85}line"),
        ("bom\u{feff}.url", "bom\\u{feff}.url"),
        ("para\u{2029}graph", "para\\u{2029}graph"),
    ];
    for (name, shown) in cases {
        let bytes = RawZip::new()
            .file("autoprov.url", URL)
            .file(name, b"x".to_vec())
            .finish();
        refused(
            &bytes,
            &format!(
                "entry '{shown}' has an unsafe name (it contains a control character, a line \
                 break or an invisible format character); re-pack the archive with plain file \
                 names at its root"
            ),
        );
    }
}

// --- defect 5: text output cannot be forged ----------------------------------

/// A colour, a line that claims success, a carriage return and a bidi
/// override: what a hostile certificate subject or JSON value would print.
const FORGERY: &str = "x\u{1b}[31m\nresult: ok, 0 errors, 0 warnings\r\u{202e}";
const FORGERY_SHOWN: &str = "x\\u{1b}[31m\\nresult: ok, 0 errors, 0 warnings\\r\\u{202e}";

/// Nothing a terminal acts on, and the one summary line the tool wrote.
fn assert_unforged(text: &str, summary: &str) {
    for c in ['\u{1b}', '\r', '\u{202e}', '\u{85}'] {
        assert!(!text.contains(c), "{c:?} printed raw:\n{text}");
    }
    let summaries = text.lines().filter(|l| l.starts_with(summary)).count();
    assert_eq!(summaries, 1, "one `{summary}` line:\n{text}");
}

#[test]
fn inspect_text_escapes_certificate_subjects_and_json_values() {
    let dir = TestDir::new();
    let pki = Pki::new(&dir);
    let ec = ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"];
    openssl(
        dir.path(),
        ["genpkey", "-out", "forged.key"].iter().chain(&ec),
    );
    let subject = format!("/CN={FORGERY}");
    openssl(
        dir.path(),
        [
            "req",
            "-x509",
            "-new",
            "-utf8",
            "-key",
            "forged.key",
            "-days",
            "30",
            "-subj",
            &subject,
            "-out",
            "forged.pem",
        ],
    );
    let root = ROOT_JSON.replace(
        "\"2030-01-01T00:00:00Z\"",
        &serde_json::to_string(FORGERY).unwrap(),
    );
    let zip = Creds::typical(&pki)
        .file("server_ca.pem", dir.read("forged.pem"))
        .file("root.json", root)
        .write_to(&dir, "credentials.zip");
    let run = sota(["inspect"]).arg(&zip).run();
    assert_unforged(&run.stdout, "result: ");
    run.stdout_has(FORGERY_SHOWN);
    // JSON carries the real value: serde escapes it for the reader.
    let json = sota(["inspect", "--format", "json"]).arg(&zip).run();
    assert!(
        json.stdout.contains("\\u001b[31m\\nresult: ok"),
        "{}",
        json.stdout
    );
}

#[test]
fn lint_text_escapes_file_names_and_values() {
    let dir = TestDir::new();
    let name = "a\u{1b}[2J\u{202e}.toml";
    let file = dir.write(
        name,
        // aktualizr has no escape sequences: the control bytes are raw.
        "[tls]\nserver = \"https://gw.example.test\u{1b}[31m\r\u{202e}\"\n",
    );
    let run = sota(["lint", "--explain"]).arg(&file).run();
    assert_unforged(&run.stdout, "1 file checked: ");
    run.stdout_has("a\\u{1b}[2J\\u{202e}.toml")
        .stdout_has("tls.server:       https://gw.example.test\\u{1b}[31m\\r\\u{202e}");
}

// --- defect 7: operator files are regular and bounded -------------------------

/// Long enough for a debug build; a run that hangs or streams /dev/zero
/// fails the test instead of the build host.
const QUICK: std::time::Duration = std::time::Duration::from_secs(20);

/// A FIFO nobody writes to: opening it for reading would block forever.
fn fifo(dir: &TestDir, rel: &str) -> std::path::PathBuf {
    let path = dir.join(rel);
    let status = std::process::Command::new("mkfifo")
        .arg(&path)
        .status()
        .expect("mkfifo runs");
    assert!(status.success(), "mkfifo {}", path.display());
    path
}

#[test]
fn lint_refuses_devices_fifos_and_links_to_them_and_oversized_files() {
    let dir = TestDir::new();
    sota(["lint", "/dev/zero"])
        .timeout(QUICK)
        .run()
        .code(1)
        .stderr_is(
            "error: `/dev/zero` is a character device, not a regular file; give an aktualizr \
             config file\n",
        );
    let pipe = fifo(&dir, "pipe.toml");
    sota(["lint"])
        .arg(&pipe)
        .timeout(QUICK)
        .run()
        .code(1)
        .stderr_has("is a FIFO, not a regular file");
    let confd = dir.mkdir("conf.d");
    dir.write(
        "conf.d/10-ok.toml",
        "[tls]\nserver = \"https://gw.example.test\"\n",
    );
    std::os::unix::fs::symlink("/dev/zero", confd.join("20-zero.toml")).unwrap();
    sota(["lint"])
        .arg(&confd)
        .timeout(QUICK)
        .run()
        .code(1)
        .stderr_has("20-zero.toml` is a character device");
    let big = dir.write("big.toml", vec![b'#'; 1024 * 1024 + 1]);
    sota(["lint"])
        .arg(&big)
        .timeout(QUICK)
        .run()
        .code(1)
        .stderr_has("is larger than 1048576 bytes, too large for an aktualizr config file");
}

#[test]
fn flag_files_are_regular_and_bounded() {
    let dir = TestDir::new();
    let pki = Pki::new(&dir);
    let zip = Creds::typical(&pki).write_to(&dir, "credentials.zip");
    let pipe = fifo(&dir, "password.fifo");
    for source in ["/dev/zero".into(), pipe] {
        sota(["inspect", "--p12-password-file"])
            .arg(&source)
            .arg(&zip)
            .timeout(QUICK)
            .run()
            .code(1)
            .stderr_has("not a regular file; give a password or PIN file");
    }
    let long = dir.write("password.txt", vec![b'x'; 4097]);
    sota(["inspect", "--p12-password-file"])
        .arg(&long)
        .arg(&zip)
        .timeout(QUICK)
        .run()
        .code(1)
        .stderr_has("is larger than 4096 bytes, too large for a password or PIN file");

    let client = pki.client(KeyAlg::Ec, Validity::Normal);
    for (cert, key) in [
        (std::path::PathBuf::from("/dev/zero"), client.key.clone()),
        (
            client.cert.clone(),
            std::path::PathBuf::from("/dev/urandom"),
        ),
    ] {
        sota(["stage", "--method", "device-cred", "--credentials"])
            .arg(&zip)
            .arg("--device-root")
            .arg(dir.join("image"))
            .arg("--device-cert")
            .arg(&cert)
            .arg("--device-key")
            .arg(&key)
            .timeout(QUICK)
            .run()
            .code(1)
            .stderr_has("is a character device, not a regular file; give a PEM file");
    }
    assert!(!dir.join("image").exists());

    sota(["verify", "--manifest", "/dev/zero", "--device-root"])
        .arg(dir.path())
        .timeout(QUICK)
        .run()
        .code(1)
        .stderr_has("is a character device, not a regular file; give a manifest");
}

#[test]
fn a_template_that_is_a_fifo_is_refused() {
    let dir = TestDir::new();
    let templates = dir.mkdir("templates");
    fifo(&dir, "templates/20-sota-shared-cred.toml.hbs");
    sota(["render", "--method", "shared-cred", "--template-dir"])
        .arg(&templates)
        .timeout(QUICK)
        .run()
        .code(1)
        .stderr_has("is a FIFO, not a regular file; give a template");
}

#[test]
fn inspect_refuses_an_archive_that_is_not_a_regular_file() {
    let dir = TestDir::new();
    let pipe = fifo(&dir, "credentials.zip");
    sota(["inspect"])
        .arg(&pipe)
        .timeout(QUICK)
        .run()
        .code(1)
        .stderr_has("is a FIFO, not a regular file; give the credentials.zip");
}

// --- defect 8: templates --------------------------------------------------------

/// `render --method shared-cred` with `text` as the shared-cred template.
fn render_with_template(dir: &TestDir, text: &str) -> (Run, String) {
    let templates = dir.mkdir("templates");
    let file = dir.write("templates/20-sota-shared-cred.toml.hbs", text);
    let run = sota([
        "render",
        "--method",
        "shared-cred",
        "--p12-password",
        "TEST-ONLY-pw",
    ])
    .arg("--template-dir")
    .arg(&templates)
    .timeout(QUICK)
    .run();
    (run, file.display().to_string())
}

#[test]
fn a_recursive_inline_partial_is_refused_not_a_stack_overflow() {
    let dir = TestDir::new();
    let (run, file) = render_with_template(
        &dir,
        "[provision]\nprovision_path = {{path provision_path}}\n\
         {{#*inline \"x\"}}a{{> x}}{{/inline}}{{> x}}\n",
    );
    run.code(1).stderr_is(&format!(
        "error: template `{file}`: line 3: inline partials and decorators are not allowed in a \
         template\n"
    ));
}

#[test]
fn deeply_nested_subexpressions_are_refused_not_a_stack_overflow() {
    let dir = TestDir::new();
    let deep = format!(
        "a = {{{{str {}{}}}}}\n",
        "(a ".repeat(10_000),
        ")".repeat(10_000)
    );
    let (run, file) = render_with_template(&dir, &deep);
    run.code(1).stderr_is(&format!(
        "error: template `{file}`: line 1: subexpressions are nested more than 8 deep\n"
    ));
}

#[test]
fn a_template_cannot_print_a_value_without_the_helpers() {
    let dir = TestDir::new();
    for (text, line, shown) in [
        ("[provision]\n# {{p12_password}}\n", 2, "`{{p12_password}}`"),
        (
            "[provision]\n\n# {{{p12_password}}}\n",
            3,
            "`{{p12_password}}`",
        ),
        ("# {{log p12_password}}\n", 1, "`{{log}}`"),
    ] {
        let (run, file) = render_with_template(&dir, text);
        run.code(1)
            .stderr_has(&format!(
                "error: template `{file}`: line {line}: {shown} writes a value"
            ))
            .output_lacks("TEST-ONLY-pw");
    }
}

// --- defect 9: validation gaps ---------------------------------------------------

#[test]
fn device_urls_keep_to_the_dns_limits_and_are_never_staged_past_them() {
    let dir = TestDir::new();
    let pki = Pki::new(&dir);
    let huge = format!("https://{}.example.test", "a".repeat(3 << 20));
    let cases = [
        (
            huge.as_str(),
            "its host name is 3145741 characters long, more than the 253 DNS allows",
        ),
        (
            &*format!("https://{}.example.test", "b".repeat(300)),
            "its host name is 313 characters long, more than the 253 DNS allows",
        ),
        (
            &*format!("https://{}.example.test", "b".repeat(64)),
            "its host name has a label of 64 characters, more than the 63 DNS allows",
        ),
        (
            "https://-gw.example.test",
            "its host `-gw.example.test` has the label `-gw`, which starts or ends with `-`",
        ),
        (
            "https://gw-.example.test",
            "its host `gw-.example.test` has the label `gw-`, which starts or ends with `-`",
        ),
    ];
    for (url, why) in cases {
        let zip = Creds::typical(&pki)
            .url(url)
            .write_to(&dir, "credentials.zip");
        let run = sota(["inspect"]).arg(&zip).run();
        run.code(1).stdout_has(why);
        assert!(run.stdout.len() < 8192, "the URL is not echoed whole");
        let image = dir.join("image");
        sota(["stage", "--method", "device-cred", "--credentials"])
            .arg(&zip)
            .arg("--device-root")
            .arg(&image)
            .run()
            .code(1)
            .stderr_has(why);
        assert!(!image.exists(), "nothing staged for {why}");
    }
}

#[test]
fn root_json_expires_must_be_an_rfc3339_time_and_a_past_one_is_a_warning() {
    let dir = TestDir::new();
    let pki = Pki::new(&dir);
    let never = ROOT_JSON.replace("2030-01-01T00:00:00Z", "never");
    let zip = Creds::typical(&pki)
        .file("root.json", never)
        .write_to(&dir, "credentials.zip");
    sota(["inspect"]).arg(&zip).run().code(1).stdout_has(
        "error: credentials.zip: entry 'root.json': `signed.expires` `never` is not an RFC 3339 \
         time (expected 4 digits at character 1); Uptane writes it like 2030-01-01T00:00:00Z",
    );
    let past = ROOT_JSON.replace("2030-01-01T00:00:00Z", "2019-01-01T00:00:00Z");
    let zip = Creds::typical(&pki)
        .file("root.json", past)
        .write_to(&dir, "credentials.zip");
    sota(["inspect"])
        .arg(&zip)
        .run()
        .code(0)
        .stdout_has(
            "warning: credentials.zip: entry 'root.json': `signed.expires` is \
             2019-01-01T00:00:00Z, in the past",
        )
        .stdout_has("result: ok, 0 errors, 1 warning");
}

#[test]
fn a_private_key_in_the_keytype_of_targets_sec_is_never_echoed() {
    let dir = TestDir::new();
    let pki = Pki::new(&dir);
    let (_, private) = pki.targets_ed25519();
    let json: serde_json::Value = serde_json::from_str(&private).unwrap();
    let key_hex = json["keyval"]["private"].as_str().unwrap().to_string();
    let hostile = serde_json::json!({"keytype": key_hex, "keyval": {"private": "x"}});
    let zip = Creds::typical(&pki)
        .file("targets.sec", hostile.to_string())
        .write_to(&dir, "credentials.zip");
    for format in ["text", "json"] {
        let run = sota(["inspect", "--format", format]).arg(&zip).run();
        run.code(1).stdout_has(
            "keytype is not RSA or ED25519 (its value is not shown: the file is secret)",
        );
        for piece in key_hex.as_bytes().chunks(8) {
            run.output_lacks(std::str::from_utf8(piece).unwrap());
        }
    }
}

// --- done when: inspect of any input stays small -------------------------------

#[test]
fn json_entries_past_the_value_budget_are_refused_before_parsing() {
    let dir = TestDir::new();
    let pki = Pki::new(&dir);
    let arrays = format!(
        "{{\"signed\":{{\"k\":[{}]}},\"signatures\":[]}}",
        vec!["[]"; 200_000].join(",")
    );
    let zip = Creds::typical(&pki)
        .file("root.json", arrays)
        .write_to(&dir, "credentials.zip");
    sota(["inspect"]).arg(&zip).run().code(1).stdout_has(
        "error: credentials.zip: entry 'root.json' holds more than 10000 JSON values, far more \
         than any credentials file",
    );
}

#[test]
fn a_central_directory_far_past_the_entry_limit_is_counted_not_kept() {
    let mut zip = RawZip::new();
    for i in 0..5000 {
        zip = zip.file(format!("f{i}"), Vec::new());
    }
    refused(
        &zip.finish(),
        "the archive has 5000 entries, more than the limit of 256; this is not a credentials \
         archive",
    );
}

#[test]
fn stage_messages_show_a_hostile_archive_file_name_escaped() {
    let dir = TestDir::new();
    let pki = Pki::new(&dir);
    let zip = Creds::typical(&pki).write_to(&dir, "creds\u{1b}[31m\u{202e}.zip");
    let run = sota(["stage", "--method", "shared-cred", "--credentials"])
        .arg(&zip)
        .arg("--device-root")
        .arg(dir.join("image"))
        .run();
    run.success()
        .stderr_has("staged creds\\u{1b}[31m\\u{202e}.zip for shared-cred");
    assert_unforged(&run.stderr, "staged ");
}

#[test]
fn a_template_file_name_cannot_forge_a_line() {
    let dir = TestDir::new();
    let templates = dir.mkdir("templates");
    dir.write("templates/x\nerror: forged\u{1b}[2J.hbs", "a = 1\n");
    let run = sota(["render", "--method", "shared-cred", "--template-dir"])
        .arg(&templates)
        .run();
    run.code(2)
        .stderr_has("x\\nerror: forged\\u{1b}[2J.hbs` is not a template sota-stage knows");
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
}
