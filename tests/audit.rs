//! `sota-stage audit`: a tree staged by `stage` is clean for every method;
//! each kind of leak planted into one is found at its path (and member),
//! in a folder and in a .tar, .tar.gz and .tar.xz of it; nothing secret is
//! ever printed.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use common::staged::stage_device_cmd;
use common::{
    Cmd, Creds, KeyAlg, P12Form, Pki, RawZip, TestDir, Validity, ZipEntry, HSM_OPTIONS,
    OAUTH2_SECRET,
};

/// The secret values of an archive, to plant and to look for in output.
struct Secrets {
    zip: Vec<u8>,
    treehub: Vec<u8>,
    targets_sec: Vec<u8>,
    /// `keyval.private` as written.
    private_text: String,
    shared_p12: Vec<u8>,
}

fn secrets_of(creds: &Creds) -> Secrets {
    let raw = creds.raw();
    let entry = |name: &str| {
        raw.entries
            .iter()
            .find(|e| e.name == name.as_bytes())
            .map(|e| e.data.clone())
            .unwrap()
    };
    let targets_sec = entry("targets.sec");
    let v: serde_json::Value = serde_json::from_slice(&targets_sec).unwrap();
    Secrets {
        zip: creds.build(),
        treehub: entry("treehub.json"),
        private_text: v["keyval"]["private"].as_str().unwrap().to_owned(),
        targets_sec,
        shared_p12: entry("autoprov_credentials.p12"),
    }
}

fn stage(zip: &Path, method: &str, dev: &Path) {
    let mut cmd = stage_device_cmd(zip, method, dev);
    if method == "device-cred-hsm" {
        cmd = cmd.args(HSM_OPTIONS).args(["--p11-pin", "4321-test"]);
    }
    cmd.run().success();
}

/// `creds` written to `credentials.zip` in `dir` and staged for shared-cred
/// into `rootfs`: (the archive, the root).
fn staged_rootfs(dir: &TestDir, creds: &Creds) -> (PathBuf, PathBuf) {
    let zip = creds.write_to(dir, "credentials.zip");
    let root = dir.join("rootfs");
    stage(&zip, "shared-cred", &root);
    (zip, root)
}

/// `audit` of `root` in text form.
fn audit_text(zip: &Path, root: &Path) -> common::Run {
    common::sota(["audit", "--credentials"])
        .arg(zip)
        .arg(root)
        .run()
}

/// `tar -C folder -cf tar what`.
fn tar_of(folder: &Path, what: &str, tar: &Path) {
    Cmd::new("tar")
        .arg("-C")
        .arg(folder)
        .arg("-cf")
        .arg(tar)
        .arg(what)
        .run()
        .success();
}

fn audit(zip: &Path, roots: &[&Path]) -> Cmd {
    let mut cmd = common::sota(["audit", "--format", "json", "--credentials"]).arg(zip);
    for r in roots {
        cmd = cmd.arg(r);
    }
    cmd
}

/// (path, member, kind) of every finding.
fn found(json: &serde_json::Value) -> BTreeSet<(String, String, String)> {
    json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["path"].as_str().unwrap().to_owned(),
                f["member"].as_str().unwrap_or("").to_owned(),
                f["kind"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn set(items: &[(&str, &str, &str)]) -> BTreeSet<(String, String, String)> {
    items
        .iter()
        .map(|(a, b, c)| ((*a).to_owned(), (*b).to_owned(), (*c).to_owned()))
        .collect()
}

fn plant(root: &Path, rel: &str, bytes: impl AsRef<[u8]>) {
    let path = root.join(rel);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, bytes).unwrap();
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

/// Nothing of any secret in what the tool printed.
fn assert_silent(run: &common::Run, s: &Secrets) {
    run.output_lacks(OAUTH2_SECRET);
    run.output_lacks(&s.private_text);
    run.output_lacks(&s.private_text[..64]);
    for line in s.private_text.lines().filter(|l| !l.starts_with("-----")) {
        run.output_lacks(line);
    }
}

#[test]
fn a_tree_staged_by_stage_is_clean_for_every_method() {
    let dir = TestDir::new();
    let pki = Pki::new(&dir);
    let zip = Creds::typical(&pki).write_to(&dir, "credentials.zip");
    for method in ["shared-cred", "device-cred", "device-cred-hsm"] {
        let dev = dir.join(format!("rootfs-{method}"));
        stage(&zip, method, &dev);
        let run = audit(&zip, &[&dev]).run();
        run.success();
        let json = run.json();
        assert_eq!(json["ok"], true, "{method}: {}", run.stdout);
        assert_eq!(json["findings"], serde_json::json!([]), "{method}");
        assert!(json["files"].as_u64().unwrap() >= 2, "{method}");
        audit_text(&zip, &dev)
            .success()
            .stdout_has("ok: ")
            .stdout_has("0 errors, 0 warnings");
    }
    // device-cred with the device's own certificate and key (pkey.pem 0600).
    let device = pki.client(KeyAlg::Ec, Validity::Normal);
    let dev = dir.join("rootfs-device-cert");
    stage_device_cmd(&zip, "device-cred", &dev)
        .arg("--device-cert")
        .arg(&device.cert)
        .arg("--device-key")
        .arg(&device.key)
        .run()
        .success();
    assert!(dev.join("var/sota/import/pkey.pem").is_file());
    let run = audit(&zip, &[&dev]).run();
    run.success();
    assert_eq!(run.json()["findings"], serde_json::json!([]));
    // The same key readable by all: a finding.
    fs::set_permissions(
        dev.join("var/sota/import/pkey.pem"),
        fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let run = audit(&zip, &[&dev]).run();
    run.code(1);
    assert_eq!(
        found(&run.json()),
        set(&[("var/sota/import/pkey.pem", "", "mode")])
    );
}

/// A staged shared-cred tree with one leak of every kind planted; returns
/// the findings expected.
fn leaky_tree(
    dir: &TestDir,
    creds: &Creds,
    s: &Secrets,
) -> (PathBuf, BTreeSet<(String, String, String)>) {
    let (_, root) = staged_rootfs(dir, creds);
    // The archive, a host entry byte for byte, the shared p12 misplaced.
    plant(&root, "etc/sota/credentials.zip", &s.zip);
    plant(&root, "usr/share/garage/treehub.json", &s.treehub);
    plant(&root, "usr/lib/sota/old.p12", &s.shared_p12);
    // The client secret in a config, the key in a script's text.
    plant(
        &root,
        "etc/app.conf",
        format!("[auth]\nsecret = {OAUTH2_SECRET}\n"),
    );
    plant(
        &root,
        "opt/sign/key.txt",
        format!("KEY={}\n", s.private_text.to_ascii_uppercase()),
    );
    // The whole targets.sec inside a larger file.
    let mut blob = vec![0u8; 5000];
    blob.extend_from_slice(&s.targets_sec);
    blob.extend_from_slice(&[7u8; 3000]);
    plant(&root, "usr/lib/blob.bin", &blob);
    // Inside a zip (deflated), inside a gzip, inside a tar.gz in a zip.
    let inner = RawZip {
        entries: vec![
            ZipEntry::file("readme.txt", "nothing here, nothing at all"),
            ZipEntry::deflated("deep/treehub.json", &s.treehub),
        ],
        ..RawZip::default()
    }
    .finish();
    plant(&root, "usr/share/bundle.zip", &inner);
    plant(
        &root,
        "var/log/setup.log.gz",
        gzip(format!("token exchange with {OAUTH2_SECRET} ok\n").as_bytes()),
    );
    // The staged folder opened up.
    fs::set_permissions(root.join("var/sota"), fs::Permissions::from_mode(0o755)).unwrap();
    let expected = set(&[
        ("etc/sota/credentials.zip", "", "credentials-archive"),
        ("usr/share/garage/treehub.json", "", "host-file"),
        ("usr/lib/sota/old.p12", "", "device-secret-misplaced"),
        ("etc/app.conf", "", "host-secret"),
        ("opt/sign/key.txt", "", "host-secret"),
        ("usr/lib/blob.bin", "", "host-secret"),
        ("usr/share/bundle.zip", "deep/treehub.json", "host-file"),
        ("var/log/setup.log.gz", "(gzip content)", "host-secret"),
        ("var/sota", "", "mode"),
    ]);
    (root, expected)
}

/// A [`leaky_tree`] of a typical archive, its secrets and the findings
/// expected.
struct Leaky {
    dir: TestDir,
    s: Secrets,
    root: PathBuf,
    expected: BTreeSet<(String, String, String)>,
    zip: PathBuf,
}

impl Leaky {
    fn new() -> Leaky {
        let dir = TestDir::new();
        let pki = Pki::new(&dir);
        let creds = Creds::typical(&pki);
        let s = secrets_of(&creds);
        let (root, expected) = leaky_tree(&dir, &creds, &s);
        let zip = dir.join("credentials.zip");
        Leaky {
            dir,
            s,
            root,
            expected,
            zip,
        }
    }
}

#[test]
fn each_planted_leak_is_found_at_its_path_and_nothing_secret_is_printed() {
    let Leaky {
        dir: _dir,
        s,
        root,
        expected,
        zip,
    } = Leaky::new();
    let run = audit(&zip, &[&root]).run();
    run.code(1);
    assert_silent(&run, &s);
    let json = run.json();
    assert_eq!(json["schema"], 1);
    assert_eq!(json["ok"], false);
    assert_eq!(found(&json), expected, "{}", run.stdout);
    // The secret is named, never shown.
    let messages: Vec<&str> = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["message"].as_str().unwrap())
        .collect();
    assert!(
        messages
            .iter()
            .any(|m| m.contains(r#"the value of "oauth2.client_secret" in treehub.json"#)),
        "{messages:?}"
    );
    assert!(
        messages
            .iter()
            .any(|m| m.contains("the private key of targets.sec (hex)")),
        "{messages:?}"
    );
    // Text output names each path.
    let text = audit_text(&zip, &root);
    text.code(1).stdout_has("not ok: ");
    assert_silent(&text, &s);
    for (path, _, _) in &expected {
        text.stdout_has(&format!("error: {path}"));
    }
}

#[test]
fn the_same_leaks_are_found_in_a_tar_a_tar_gz_and_a_tar_xz() {
    let Leaky {
        dir,
        s,
        root,
        expected,
        zip,
    } = Leaky::new();
    let tar = dir.join("rootfs.tar");
    tar_of(&root, ".", &tar);
    let gz = dir.join("rootfs.tar.gz");
    fs::write(&gz, gzip(&fs::read(&tar).unwrap())).unwrap();
    Cmd::new("xz").args(["-k", "-T1"]).arg(&tar).run().success();
    let xz = dir.join("rootfs.tar.xz");
    for input in [&tar, &gz, &xz] {
        let run = audit(&zip, &[input]).run();
        run.code(1);
        assert_silent(&run, &s);
        assert_eq!(
            found(&run.json()),
            expected,
            "{}: {}",
            input.display(),
            run.stdout
        );
    }
    // Several roots: each finding says which.
    let run = audit(&zip, &[&root, &tar]).run();
    run.code(1);
    let json = run.json();
    let roots: BTreeSet<&str> = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["root"].as_str().unwrap())
        .collect();
    assert_eq!(roots.len(), 2);
}

#[test]
fn an_rsa_targets_key_is_found_as_pem_with_any_line_ending_and_as_der() {
    let dir = TestDir::new();
    let pki = Pki::new(&dir);
    let creds = Creds::typical(&pki).targets_rsa();
    let s = secrets_of(&creds);
    let (zip, root) = staged_rootfs(&dir, &creds);
    plant(
        &root,
        "etc/ssl/crlf.pem",
        s.private_text.replace('\n', "\r\n"),
    );
    let der_dir = TestDir::new();
    der_dir.write("k.pem", &s.private_text);
    common::openssl(
        der_dir.path(),
        [
            "rsa",
            "-in",
            "k.pem",
            "-outform",
            "DER",
            "-traditional",
            "-out",
            "k.der",
        ],
    );
    let mut der = b"prefix".to_vec();
    der.extend(der_dir.read("k.der"));
    plant(&root, "usr/lib/key.der.bin", der);
    let run = audit(&zip, &[&root]).run();
    run.code(1);
    assert_silent(&run, &s);
    assert_eq!(
        found(&run.json()),
        set(&[
            ("etc/ssl/crlf.pem", "", "host-secret"),
            ("usr/lib/key.der.bin", "", "host-secret"),
        ]),
        "{}",
        run.stdout
    );
    run.stdout_has("the private key of targets.sec (base64)")
        .stdout_has("the private key of targets.sec (raw bytes)");
}

#[test]
fn a_file_expanding_past_its_budget_is_a_warning_not_searched() {
    let dir = TestDir::new();
    let pki = Pki::new(&dir);
    let creds = Creds::typical(&pki);
    let (zip, root) = staged_rootfs(&dir, &creds);
    let bomb = RawZip {
        // 257 MiB: over the 256 MiB a file of the image may expand to.
        entries: vec![ZipEntry::zeros("zeros.bin", 257 * 1024 * 1024)],
        ..RawZip::default()
    }
    .finish();
    plant(&root, "usr/share/big.zip", bomb);
    let run = audit(&zip, &[&root]).run();
    run.success();
    let json = run.json();
    assert_eq!(json["ok"], true);
    assert_eq!(
        found(&json),
        set(&[("usr/share/big.zip", "zeros.bin", "not-searched")])
    );
    assert_eq!(json["findings"][0]["severity"], "warning");
}

#[test]
fn counts_in_the_summary_are_singular_for_one() {
    let dir = TestDir::new();
    let pki = Pki::new(&dir);
    let creds = Creds::typical(&pki);
    let zip = creds.write_to(&dir, "credentials.zip");
    let root = dir.join("rootfs");
    plant(&root, "etc/hostname", "device\n");
    let text = |root: &Path| audit_text(&zip, root);
    text(&root)
        .success()
        .stdout_is("ok: 1 file audited against credentials.zip, 0 errors, 0 warnings\n");
    plant(&root, "etc/treehub.json", secrets_of(&creds).treehub);
    let run = text(&root);
    run.code(1);
    assert!(
        run.stdout
            .ends_with("not ok: 2 files audited against credentials.zip, 1 error, 0 warnings\n"),
        "{}",
        run.stdout
    );
}

#[test]
fn links_are_not_followed_and_a_missing_root_is_an_error() {
    let dir = TestDir::new();
    let pki = Pki::new(&dir);
    let creds = Creds::typical(&pki);
    let (zip, root) = staged_rootfs(&dir, &creds);
    // A rootfs is full of absolute links; one to the archive on the host
    // is not the archive in the image.
    std::os::unix::fs::symlink(&zip, root.join("creds-link.zip")).unwrap();
    audit(&zip, &[&root]).run().success();
    audit_text(&zip, &dir.join("nowhere"))
        .code(3)
        .stderr_has("nowhere");
    common::sota(["audit", "--credentials"])
        .arg(&zip)
        .run()
        .code(2);
}

#[test]
fn client_auth_p12_and_provision_json_are_found_inside_a_tar_inside_a_gzip() {
    let dir = TestDir::new();
    let pki = Pki::new(&dir);
    let client = pki.client(KeyAlg::Ec, Validity::Normal);
    let client_auth = pki.p12(&client, "", P12Form::Aes, 1);
    let provision_secret = "TEST-ONLY-provision-secret-77";
    let creds = Creds::typical(&pki)
        .file("client_auth.p12", client_auth.clone())
        .file(
            "provision.json",
            format!(r#"{{"client_id":"x","client_secret":"{provision_secret}"}}"#),
        );
    let (zip, root) = staged_rootfs(&dir, &creds);
    // A backup of the host side, as some recipe might ship it.
    let backup = TestDir::new();
    backup.write("host/client_auth.p12", &client_auth);
    backup.write(
        "host/notes.txt",
        format!("provisioning: {provision_secret}\n"),
    );
    let tar = backup.join("backup.tar");
    tar_of(backup.path(), "host", &tar);
    plant(
        &root,
        "usr/share/backup.tar.gz",
        gzip(&fs::read(&tar).unwrap()),
    );
    let run = audit(&zip, &[&root]).run();
    run.code(1);
    run.output_lacks(provision_secret);
    assert_eq!(
        found(&run.json()),
        set(&[
            (
                "usr/share/backup.tar.gz",
                "host/client_auth.p12",
                "host-file"
            ),
            ("usr/share/backup.tar.gz", "host/notes.txt", "host-secret"),
        ]),
        "{}",
        run.stdout
    );
    run.stdout_has(r#"the value of \"client_secret\" in provision.json"#);
}
