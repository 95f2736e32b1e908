//! `sota-stage stage` run after run: identical trees whatever the folder,
//! time and umask, all-or-nothing writes that leave a refused run's roots
//! untouched, and the options that shape the split (design.md 5-6).

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use common::staged::*;
use common::*;

// --- reproducible --------------------------------------------------------------

/// Runs `stage` with `umask`, in `cwd`, with `TZ`.
fn stage_with_umask(umask: u32, cwd: &Path, tz: &str, args: &[&std::ffi::OsStr]) {
    sota(args)
        .umask(umask)
        .current_dir(cwd)
        .env("TZ", tz)
        .env("SOURCE_DATE_EPOCH", EPOCH.to_string())
        .run()
        .success();
}

#[test]
fn two_runs_in_different_folders_times_and_umasks_give_identical_trees() {
    let one = TestDir::new();
    let two = TestDir::new();
    let pki = Pki::new(&one);
    let device = pki.client(KeyAlg::Ec, Validity::Normal);
    let zip_bytes = Creds::typical(&pki).server_ca().build();
    let zip_one = one.write("in/credentials.zip", &zip_bytes);
    let zip_two = two.write("elsewhere/deeper/c.zip", &zip_bytes);
    let cert_two = two.write("d.pem", device.cert_pem());
    let key_two = two.write("d.key", device.key_pem());
    let methods: [(&str, Vec<&std::ffi::OsStr>, Vec<&std::ffi::OsStr>); 3] = [
        ("shared-cred", vec![], vec![]),
        (
            "device-cred",
            vec![
                os("--device-cert"),
                device.cert.as_os_str(),
                os("--device-key"),
                device.key.as_os_str(),
            ],
            vec![
                os("--device-cert"),
                cert_two.as_os_str(),
                os("--device-key"),
                key_two.as_os_str(),
            ],
        ),
        ("device-cred-hsm", vec![], vec![]),
    ];
    let run = |dir: &TestDir,
               umask: u32,
               tz: &str,
               zip: &Path,
               method: &str,
               extra: &[&std::ffi::OsStr],
               relative: bool| {
        // Roots the tool creates, given as absolute paths in one run and
        // relative to the working folder in the other.
        let base = if relative {
            PathBuf::from(method)
        } else {
            dir.join("build").join(method)
        };
        let cwd = if relative {
            dir.mkdir("build")
        } else {
            dir.path().to_path_buf()
        };
        let (dev, host, manifest) = (base.join("image"), base.join("native"), base.join("m.json"));
        let mut args: Vec<&std::ffi::OsStr> = vec![
            os("stage"),
            os("--method"),
            os(method),
            os("--credentials"),
            zip.as_os_str(),
        ];
        args.extend([
            os("--device-root"),
            dev.as_os_str(),
            os("--host-root"),
            host.as_os_str(),
            os("--hardware-id"),
            os("rpi4"),
        ]);
        fs::create_dir_all(cwd.join(&base)).unwrap();
        args.extend([os("--manifest"), manifest.as_os_str()]);
        args.extend(extra);
        stage_with_umask(umask, &cwd, tz, &args);
        let base = cwd.join(base);
        (
            tree(&base.join("image")),
            tree(&base.join("native")),
            fs::read(base.join("m.json")).unwrap(),
        )
    };
    let mut first = Vec::new();
    for (method, extra, _) in &methods {
        first.push(run(&one, 0o022, "UTC", &zip_one, method, extra, false));
    }
    // A later wall clock: the times in the tree must not follow it.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    for ((method, _, extra), (dev, host, manifest)) in methods.iter().zip(first) {
        let (dev2, host2, manifest2) =
            run(&two, 0o077, "Asia/Kolkata", &zip_two, method, extra, true);
        assert_eq!(dev, dev2, "{method}: device tree");
        assert_eq!(host, host2, "{method}: host tree");
        assert_eq!(manifest, manifest2, "{method}: manifest");
        assert_times(&dev, EPOCH);
        // The roots the tool made have the folder mode, whatever the umask.
        assert_eq!(dev[""].mode & 0o7777, 0o755, "{method}: device root");
        assert_eq!(host[""].mode & 0o7777, 0o755, "{method}: host root");
        let text = String::from_utf8(manifest).unwrap();
        for path in [one.path(), two.path()] {
            assert!(
                !text.contains(path.to_str().unwrap()),
                "{method}: no path in the manifest"
            );
        }
    }
}

// --- all or nothing --------------------------------------------------------------

/// A device root and a host root that already hold the recipe's own files.
fn populated() -> (Roots, PathBuf) {
    let roots = Roots::new();
    fs::create_dir_all(roots.dev.join("etc")).unwrap();
    fs::write(roots.dev.join("etc/hostname"), "rpi\n").unwrap();
    fs::create_dir_all(roots.dev.join("var")).unwrap();
    fs::create_dir_all(&roots.host).unwrap();
    fs::write(roots.host.join("README"), "host things\n").unwrap();
    let pki = Pki::new(&roots.dir);
    let zip = Creds::typical(&pki).write_to(&roots.dir, "c.zip");
    (roots, zip)
}

/// Runs `stage`, expects it to fail with `code` and `message`, and checks
/// that nothing under the test folder changed, the manifest included.
#[track_caller]
fn fails_untouched(
    roots: &Roots,
    zip: &Path,
    method: &str,
    extra: &[&str],
    code: i32,
    message: &str,
) {
    let before = tree(roots.dir.path());
    roots
        .stage(zip, method, extra)
        .code(code)
        .stderr_has(message);
    assert_eq!(
        tree(roots.dir.path()),
        before,
        "{method} {extra:?}: {message}"
    );
    assert!(!roots.manifest.is_file());
}

#[test]
fn a_refused_archive_changes_nothing() {
    let (roots, _) = populated();
    let pki = Pki::new(&roots.dir);
    let expired = pki.client(KeyAlg::Ec, Validity::Expired);
    let zip = Creds::typical(&pki)
        .p12(pki.p12(&expired, "", P12Form::Legacy, 1))
        .write_to(&roots.dir, "expired.zip");
    fails_untouched(&roots, &zip, "shared-cred", &[], 1, "expired on 2020-01-01");
    let not_zip = roots.dir.write("not.zip", "not a zip\n");
    fails_untouched(&roots, &not_zip, "device-cred", &[], 1, "not a zip archive");
    let http = Creds::typical(&pki)
        .url("http://gw.example.test")
        .write_to(&roots.dir, "http.zip");
    fails_untouched(&roots, &http, "shared-cred", &[], 1, "autoprov.url");
    let missing = roots.dir.join("missing.zip");
    fails_untouched(&roots, &missing, "shared-cred", &[], 3, "missing.zip");
}

#[test]
fn a_file_where_a_folder_must_be_changes_nothing() {
    // Tests run as root, so a read-only folder would not stop a write: a
    // regular file where a folder goes does.
    let (roots, zip) = populated();
    fs::write(roots.dev.join("var/sota"), "in the way\n").unwrap();
    fails_untouched(
        &roots,
        &zip,
        "shared-cred",
        &[],
        1,
        "device:var/sota exists and is not a folder; remove it",
    );
    fs::remove_file(roots.dev.join("var/sota")).unwrap();

    // A host root that is a file.
    let (roots, zip) = populated();
    fs::remove_file(roots.host.join("README")).unwrap();
    fs::remove_dir(&roots.host).unwrap();
    fs::write(&roots.host, "a file\n").unwrap();
    fails_untouched(&roots, &zip, "device-cred", &[], 3, "native");

    // A folder where the fragment goes.
    let (roots, zip) = populated();
    fs::create_dir_all(roots.dev.join(SHARED_FRAGMENT)).unwrap();
    fails_untouched(
        &roots,
        &zip,
        "shared-cred",
        &[],
        1,
        "exists and is not a regular file",
    );

    // A manifest that cannot be written: found before the roots change.
    let (mut roots, zip) = populated();
    roots.manifest = roots.dir.join("no-such-folder/manifest.json");
    fails_untouched(
        &roots,
        &zip,
        "shared-cred",
        &[],
        3,
        "cannot write the manifest in `",
    );
    roots.manifest = roots.dir.mkdir("a-folder");
    fails_untouched(
        &roots,
        &zip,
        "shared-cred",
        &[],
        3,
        "a-folder`: it is a folder",
    );
}

#[test]
fn a_manifest_beside_roots_that_staging_creates_is_written() {
    // `--device-root out/image --manifest out/manifest.json` in a fresh
    // folder: `out` does not exist until the roots are made.
    let dir = TestDir::new();
    let pki = Pki::new(&dir);
    let zip = Creds::typical(&pki).write_to(&dir, "c.zip");
    sota(["stage", "--method", "shared-cred", "--credentials"])
        .arg(&zip)
        .args(["--device-root", "out/image", "--host-root", "out/native"])
        .args(["--manifest", "out/manifest.json"])
        .current_dir(dir.path())
        .run()
        .success();
    assert!(dir.join("out/manifest.json").is_file());
    assert_eq!(
        fs::metadata(dir.join("out")).unwrap().mode() & 0o7777,
        0o755
    );
    // A missing folder that is no root's parent is still refused up front.
    sota(["stage", "--method", "shared-cred", "--credentials"])
        .arg(&zip)
        .args([
            "--device-root",
            "out2/image",
            "--manifest",
            "elsewhere/m.json",
        ])
        .current_dir(dir.path())
        .run()
        .code(3)
        .stderr_is(
            "error: cannot write the manifest in `elsewhere`: No such file or directory (os error 2)\n",
        );
    assert!(!dir.join("out2").exists());
}

#[test]
fn an_existing_different_file_is_refused_unless_forced() {
    let (roots, zip) = populated();
    // verify would report it as an extra file of the host root.
    fs::remove_file(roots.host.join("README")).unwrap();
    roots.stage(&zip, "shared-cred", &[]).success();
    let staged = tree(roots.dir.path());
    let verify = || roots.verify_cmd().run();
    verify().success();
    fs::remove_file(&roots.manifest).unwrap();

    // Different content.
    fs::write(
        roots.dev.join(SHARED_FRAGMENT),
        "[provision]\nprovision_path = \"/x\"\n",
    )
    .unwrap();
    fails_untouched(
        &roots,
        &zip,
        "shared-cred",
        &[],
        1,
        "staging would change files that are already there; nothing was written (pass --force to replace them):\n  - device:usr/lib/sota/conf.d/20-sota-shared-cred.toml exists with different content",
    );
    // A different mode on a file, and on a folder of the recipe's (the
    // tool's own folders are repaired on every run: see
    // `its_own_folder_modes_are_repaired_without_force`).
    fs::set_permissions(
        roots.host.join("treehub.json"),
        fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    fs::set_permissions(roots.dev.join("usr/lib"), fs::Permissions::from_mode(0o700)).unwrap();
    let before = tree(roots.dir.path());
    roots.stage(&zip, "shared-cred", &[]).code(1).stderr_is(
        "error: staging would change files that are already there; nothing was written \
             (pass --force to replace them):\n\
             \x20 - device:usr/lib exists with mode 0700, not 0755\n\
             \x20 - device:usr/lib/sota/conf.d/20-sota-shared-cred.toml exists with different \
             content\n\
             \x20 - host:treehub.json exists with mode 0644, not 0600\n",
    );
    assert_eq!(tree(roots.dir.path()), before);

    // --force puts everything back as staged.
    roots
        .stage(&zip, "shared-cred", &["--force"])
        .success()
        .stderr_is("staged c.zip for shared-cred: 2 files written, 7 already in place\n");
    verify().success();
    let mut after = tree(roots.dir.path());
    let mut expected = staged;
    // Folders whose entries changed have a new mtime; files do not.
    for t in [&mut after, &mut expected] {
        t.retain(|_, n| n.bytes.is_some());
    }
    assert_eq!(after, expected);
    assert_eq!(
        fs::metadata(roots.dev.join("usr/lib")).unwrap().mode() & 0o7777,
        0o755
    );
}

// --- options that shape the split --------------------------------------------------

#[test]
fn unknown_entries_are_refused_unless_told_where() {
    let roots = Roots::new();
    let pki = Pki::new(&roots.dir);
    let zip = Creds::typical(&pki)
        .file("notes.txt", "keep me\n")
        .file("extra.bin", "0")
        .write_to(&roots.dir, "c.zip");
    roots.stage(&zip, "shared-cred", &[]).code(1).stderr_is(
        "error: c.zip: cannot stage for shared-cred:\n  - unknown entries 'notes.txt', \
             'extra.bin': say what to do with them with --unknown host (stage them with the host \
             files) or --unknown drop\n",
    );
    assert!(!roots.dev.exists() && !roots.host.exists());
    roots
        .stage(&zip, "shared-cred", &["--unknown", "refuse"])
        .code(2);

    roots
        .stage(&zip, "shared-cred", &["--unknown", "host"])
        .success();
    let host = files_of(&roots.host);
    // Nothing says they are not secrets: 0600.
    assert_eq!(host["notes.txt"], (0o600, b"keep me\n".to_vec()));
    assert_eq!(host["extra.bin"].0, 0o600);
    assert!(zip_entries(&host["credentials.zip"].1).contains_key("notes.txt"));
    let manifest = roots.manifest();
    assert!(manifest["files"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["path"] == "notes.txt" && f["secret"] == true && f["root"] == "host"));

    let dropped = Roots::new();
    dropped
        .stage(&zip, "shared-cred", &["--unknown", "drop"])
        .success();
    let host = files_of(&dropped.host);
    assert!(!host.contains_key("notes.txt") && !host.contains_key("extra.bin"));
    assert!(!zip_entries(&host["credentials.zip"].1).contains_key("notes.txt"));
    // On the device either way: only what the method stages.
    assert_eq!(
        files_of(&roots.dev).keys().collect::<Vec<_>>(),
        files_of(&dropped.dev).keys().collect::<Vec<_>>()
    );
}

#[test]
fn root_metadata_is_pinned_unless_turned_off() {
    let pki_dir = TestDir::new();
    let pki = Pki::new(&pki_dir);
    let director = ROOT_JSON.replace("\"version\":1", "\"version\":2");
    let creds = Creds::typical(&pki).file("director.root.json", director.as_str());
    let zip = creds.write_to(&pki_dir, "c.zip");
    for method in ["shared-cred", "device-cred", "device-cred-hsm"] {
        let roots = Roots::new();
        roots.stage(&zip, method, &[]).success();
        let dev = files_of(&roots.dev);
        assert_eq!(
            dev["var/sota/import/repo/root.json"],
            (0o644, ROOT_JSON.as_bytes().to_vec())
        );
        assert_eq!(
            dev["var/sota/import/director/root.json"],
            (0o644, director.as_bytes().to_vec())
        );
        let host = files_of(&roots.host);
        assert_eq!(host["director.root.json"].1, director.as_bytes());
        assert_eq!(host["root.json"].1, ROOT_JSON.as_bytes());

        let off = Roots::new();
        off.stage(&zip, method, &["--no-root-pinning"]).success();
        let dev = tree(&off.dev);
        assert!(
            dev.keys().all(|p| !p.contains("root.json")
                && !p.contains("/repo")
                && !p.contains("/director")),
            "{method}: {:?}",
            dev.keys().collect::<Vec<_>>()
        );
        if method == "shared-cred" {
            assert!(!dev.contains_key("var/sota/import"), "nothing to import");
        }
        // The host tools still get them.
        assert!(files_of(&off.host).contains_key("director.root.json"));
    }
}

#[test]
fn plain_http_device_url_only_with_allow_http() {
    let roots = Roots::new();
    let pki = Pki::new(&roots.dir);
    let zip = Creds::typical(&pki)
        .server_ca()
        .url("http://gw.example.test:8080")
        .write_to(&roots.dir, "c.zip");
    roots.stage(&zip, "device-cred", &[]).code(1).stderr_is(
        "error: c.zip: cannot stage for device-cred:\n  - the archive does not support \
             device-cred: it lacks a valid `autoprov.url`\n  - entry 'autoprov.url' is plain \
             http: devices would provision over an unencrypted connection; use https, or pass \
             --allow-http for a local test server\n",
    );
    assert!(!roots.dev.exists());
    roots
        .stage(&zip, "device-cred", &["--allow-http"])
        .success();
    assert_eq!(
        fs::read(roots.dev.join("var/sota/import/gateway.url")).unwrap(),
        b"http://gw.example.test:8080"
    );
}

#[test]
fn the_example_archive_manifests() {
    // examples/credentials.zip is committed: its manifests are stable.
    let zip = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/credentials.zip");
    for method in ["shared-cred", "device-cred", "device-cred-hsm"] {
        let roots = Roots::new();
        roots
            .stage_cmd(&zip, method, &["--hardware-id", "qemux86-64"])
            .run()
            .success();
        assert_snapshot(
            &format!("manifest-example-{method}.json"),
            &fs::read(&roots.manifest).unwrap(),
        );
        assert_times(&tree(&roots.dev), DEFAULT_EPOCH);
        assert_eq!(
            fs::metadata(&roots.manifest).unwrap().mtime(),
            DEFAULT_EPOCH
        );
    }
}
