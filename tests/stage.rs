//! `sota-stage stage`: the exact trees each method stages (files, modes,
//! contents, times), the device zip byte by byte, host secrets kept off the
//! device, reproducibility, and all-or-nothing writes (design.md 4-6).

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

/// The time every staged file and zip entry gets in these tests, odd on
/// purpose: zip times count seconds in twos.
const EPOCH: i64 = 1_700_000_001;

const SHARED_FRAGMENT: &str = "usr/lib/sota/conf.d/20-sota-shared-cred.toml";
const DEVICE_FRAGMENT: &str = "usr/lib/sota/conf.d/20-sota-device-cred.toml";
const HSM_FRAGMENT: &str = "usr/lib/sota/conf.d/20-sota-device-cred-hsm.toml";

// --- the kit of this file ---------------------------------------------------

/// What is at one path: a folder or a file, with its mode and mtime.
#[derive(Clone, PartialEq, Eq)]
struct Node {
    mode: u32,
    mtime: (i64, i64),
    /// `None` for a folder, the target for a link.
    bytes: Option<Vec<u8>>,
}

/// Short, so a failed tree comparison stays readable: mode in octal, and
/// the size and digest of the bytes.
impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use sha2::Digest;
        write!(
            f,
            "{:o} mtime {}.{:09}",
            self.mode, self.mtime.0, self.mtime.1
        )?;
        if let Some(b) = &self.bytes {
            let digest = sha2::Sha256::digest(b);
            write!(f, " {} bytes sha256 {}", b.len(), &hex(&digest)[..16])?;
        }
        Ok(())
    }
}

/// Every path under `root` (and `root` itself, as ""), links not followed.
/// An absent root is an empty map.
fn tree(root: &Path) -> BTreeMap<String, Node> {
    let mut out = BTreeMap::new();
    if fs::symlink_metadata(root).is_ok() {
        walk(root, "", &mut out);
    }
    out
}

fn walk(path: &Path, rel: &str, out: &mut BTreeMap<String, Node>) {
    let m = fs::symlink_metadata(path).unwrap();
    let bytes = if m.is_file() {
        Some(fs::read(path).unwrap())
    } else if m.file_type().is_symlink() {
        Some(
            fs::read_link(path)
                .unwrap()
                .into_os_string()
                .into_encoded_bytes(),
        )
    } else {
        None
    };
    out.insert(
        rel.to_string(),
        Node {
            mode: m.mode(),
            mtime: (m.mtime(), m.mtime_nsec()),
            bytes,
        },
    );
    if m.is_dir() {
        let mut names: Vec<_> = fs::read_dir(path)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        for name in names {
            let child = if rel.is_empty() {
                name.clone()
            } else {
                format!("{rel}/{name}")
            };
            walk(&path.join(&name), &child, out);
        }
    }
}

/// The files of a tree: path -> (permission bits, bytes).
fn files(tree: &BTreeMap<String, Node>) -> BTreeMap<String, (u32, Vec<u8>)> {
    tree.iter()
        .filter_map(|(p, n)| n.bytes.clone().map(|b| (p.clone(), (n.mode & 0o7777, b))))
        .collect()
}

/// The file names of `files`, sorted, with their modes.
fn listing(files: &BTreeMap<String, (u32, Vec<u8>)>) -> Vec<(&str, u32)> {
    files.iter().map(|(p, (m, _))| (p.as_str(), *m)).collect()
}

/// One test's folders: the device root, the host root, the manifest path.
struct Roots {
    dir: TestDir,
    dev: PathBuf,
    host: PathBuf,
    manifest: PathBuf,
}

impl Roots {
    fn new() -> Roots {
        let dir = TestDir::new();
        Roots {
            dev: dir.join("image"),
            host: dir.join("native"),
            manifest: dir.join("manifest.json"),
            dir,
        }
    }

    /// `stage` with both roots and the manifest, `SOURCE_DATE_EPOCH` =
    /// [`EPOCH`].
    fn stage(&self, zip: &Path, method: &str, extra: &[&str]) -> Run {
        self.stage_cmd(zip, method, extra)
            .env("SOURCE_DATE_EPOCH", EPOCH.to_string())
            .run()
    }

    fn stage_cmd(&self, zip: &Path, method: &str, extra: &[&str]) -> Sota {
        sota(["stage", "--method", method, "--credentials"])
            .arg(zip)
            .arg("--device-root")
            .arg(&self.dev)
            .arg("--host-root")
            .arg(&self.host)
            .arg("--manifest")
            .arg(&self.manifest)
            .args(extra)
    }
}

/// Every mtime in the tree (folders and files) is `epoch`.
#[track_caller]
fn assert_times(tree: &BTreeMap<String, Node>, epoch: i64) {
    for (path, node) in tree {
        assert_eq!(node.mtime, (epoch, 0), "mtime of `{path}`");
    }
}

/// Name -> bytes of every entry of a zip, through the zip crate.
fn zip_entries(bytes: &[u8]) -> BTreeMap<String, Vec<u8>> {
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
    let mut out = BTreeMap::new();
    for i in 0..zip.len() {
        let mut f = zip.by_index(i).unwrap();
        let mut data = Vec::new();
        f.read_to_end(&mut data).unwrap();
        out.insert(f.name().to_string(), data);
    }
    out
}

/// The PEM blocks in `text`, in order.
fn pem_blocks(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN CERTIFICATE-----") {
        let end_marker = "-----END CERTIFICATE-----";
        let end = rest[start..].find(end_marker).unwrap() + start + end_marker.len();
        out.push(format!("{}\n", &rest[start..end]));
        rest = &rest[end..];
    }
    out
}

fn upstream_entry(name: &str, entry: &str) -> Vec<u8> {
    zip_entries(&fs::read(upstream(name)).unwrap())
        .remove(entry)
        .unwrap()
}

// --- the upstream samples -----------------------------------------------------

#[test]
fn upstream_credentials_zip_refused_for_shared_cred_staged_for_device_cred() {
    // Its shared client certificate expired in 2018.
    let roots = Roots::new();
    let zip = upstream("aktualizr-credentials.zip");
    roots
        .stage(&zip, "shared-cred", &[])
        .code(1)
        .stderr_has("aktualizr-credentials.zip: cannot stage for shared-cred:\n  - entry 'autoprov_credentials.p12': the client certificate `47ff9a99-7a8d-42f9-ae28-f7f0332016b5` expired on 2018-07-18");
    assert!(!roots.dev.exists() && !roots.host.exists() && !roots.manifest.exists());

    // device-cred uses only its URL and the CA inside the p12 (still valid).
    for (method, fragment) in [
        ("device-cred", DEVICE_FRAGMENT),
        ("device-cred-hsm", HSM_FRAGMENT),
    ] {
        let roots = Roots::new();
        let run = roots.stage(&zip, method, &[]);
        run.success()
            .stderr_has("warning: entry 'autoprov_credentials.p12': the client certificate `47ff9a99-7a8d-42f9-ae28-f7f0332016b5` expired on 2018-07-18")
            .stderr_lacks("error")
            .stderr_has(&format!("staged aktualizr-credentials.zip for {method}: 5 files written, 0 already in place"));
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

fn os(s: &str) -> &std::ffi::OsStr {
    std::ffi::OsStr::new(s)
}

fn files_of(root: &Path) -> BTreeMap<String, (u32, Vec<u8>)> {
    files(&tree(root))
}

// --- reproducible --------------------------------------------------------------

/// Runs `stage` through `sh` with `umask`, in `cwd`, with `TZ`.
fn stage_with_umask(umask: &str, cwd: &Path, tz: &str, args: &[&std::ffi::OsStr]) {
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(format!("umask {umask}; exec \"$0\" \"$@\""))
        .arg(env!("CARGO_BIN_EXE_sota-stage"))
        .args(args)
        .current_dir(cwd)
        .env("TZ", tz)
        .env("SOURCE_DATE_EPOCH", EPOCH.to_string());
    for name in HERMETIC_ENV {
        if name != "SOURCE_DATE_EPOCH" {
            cmd.env_remove(name);
        }
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "umask {umask}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
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
               umask: &str,
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
        first.push(run(&one, "022", "UTC", &zip_one, method, extra, false));
    }
    // A later wall clock: the times in the tree must not follow it.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    for ((method, _, extra), (dev, host, manifest)) in methods.iter().zip(first) {
        let (dev2, host2, manifest2) =
            run(&two, "077", "Asia/Kolkata", &zip_two, method, extra, true);
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
