//! meta-layer-snippets with a real BitBake: the real `sota-stage.bbclass`,
//! `sota-credentials.bb`, `sota-credentials-host-native.bb` and the
//! meta-updater `.bbappend`s, run by the `bitbake` named in `BITBAKE`.
//!
//! The build folder comes from `tests/bitbake/`: `meta-test` stands in for
//! OE-core (its task names and order, OE-core's signature settings, a
//! stand-in sstate cache and installed-vs-shipped check) and provides
//! `sota-stage-native` as the binary cargo just built; the real
//! `sota-stage_*.bb` is parsed with stub cargo classes and skips itself (no
//! source URL). `meta-updater-standin` holds meta-updater's provisioning
//! recipes reduced to their SRC_URI, DEPENDS, do_install and FILES.
//!
//! Every test here needs a BitBake and is `#[ignore = "needs BITBAKE"]`, so
//! a plain `cargo test` lists them as ignored, never as passed. `.ci/run`
//! sets `BITBAKE` and runs them with `--include-ignored`; run that way
//! without `BITBAKE`, they fail and say how to get one.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use common::{
    bitbake, copy_tree, repo, run_bitbake, upstream, walk, Creds, KeyAlg, P12Form, Pki, TestDir,
    Validity, HOST_FILES, OAUTH2_SECRET,
};
use sha2::{Digest, Sha256};

const EPOCH: u64 = 1_700_000_000;

/// Writes `bytes` and gives the file an mtime no other write in this process
/// gets: bitbake's checksum cache keys on the mtime in whole seconds.
fn write_input(path: &Path, bytes: impl AsRef<[u8]>) {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, bytes).unwrap();
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let when = SystemTime::UNIX_EPOCH + Duration::from_secs(1_600_000_000 + 10 * n);
    fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(when)
        .unwrap();
}

/// A build folder: the stand-in layers, the real meta-layer-snippets, a
/// local.conf made from `conf`, and an `inputs` folder outside the build.
struct Build {
    dir: TestDir,
    bitbake: PathBuf,
    conf: BTreeMap<String, String>,
}

impl Build {
    fn new(bitbake: &Path, meta_updater: bool) -> Build {
        let dir = TestDir::new();
        let src = repo().join("tests/bitbake");
        let mut layers = vec![dir.join("meta-test"), repo().join("meta-layer-snippets")];
        copy_tree(&src.join("meta-test"), &dir.join("meta-test"));
        if meta_updater {
            copy_tree(
                &src.join("meta-updater-standin"),
                &dir.join("meta-updater-standin"),
            );
            layers.push(dir.join("meta-updater-standin"));
        }
        let layers: Vec<String> = layers.iter().map(|p| p.display().to_string()).collect();
        dir.write(
            "build/conf/bblayers.conf",
            format!(
                "BBPATH = \"${{TOPDIR}}\"\nBBFILES ?= \"\"\nBBLAYERS = \"{}\"\n",
                layers.join(" ")
            ),
        );
        let mut conf = BTreeMap::new();
        conf.insert(
            "SOTA_STAGE_TEST_BINARY".into(),
            env!("CARGO_BIN_EXE_sota-stage").into(),
        );
        conf.insert("SOTA_HARDWARE_ID".into(), "test-board".into());
        if meta_updater {
            // The dynamic layer's switch-over is opt-in.
            conf.insert("DISTRO_FEATURES".into(), "sota-stage".into());
        }
        conf.insert("SOURCE_DATE_EPOCH".into(), EPOCH.to_string());
        Build {
            dir,
            bitbake: bitbake.to_owned(),
            conf,
        }
    }

    fn set(&mut self, key: &str, value: impl AsRef<Path>) {
        self.conf
            .insert(key.into(), value.as_ref().display().to_string());
    }

    fn input(&self, rel: &str) -> PathBuf {
        self.dir.join("inputs").join(rel)
    }

    fn top(&self) -> PathBuf {
        self.dir.join("build")
    }

    fn image(&self, pf: &str) -> PathBuf {
        self.top().join("tmp/work").join(pf).join("image")
    }

    fn host_files(&self) -> PathBuf {
        self.top().join("tmp/sysroots/native/usr/share/sota-stage")
    }

    /// Runs bitbake on `targets` with the current local.conf.
    fn run(&self, targets: &[&str]) -> Outcome {
        let (code, log) = run_bitbake(&self.bitbake, &self.dir, &self.conf, targets);
        Outcome {
            what: format!("bitbake {}", targets.join(" ")),
            success: code == 0,
            ran: ran_tasks(&log),
            log,
        }
    }

    /// Every file under the build folder a reader of the build could see
    /// (signature files, task scripts and logs, caches, the stand-in sstate
    /// cache, scratch space), decompressed where bitbake compresses: the
    /// places secrets must never reach. The staged outputs themselves
    /// (image, package, sysroot, deploy folders) are left out: they are
    /// meant to hold the device's and the host's secrets.
    fn readable_leftovers(&self) -> Vec<(PathBuf, Vec<u8>)> {
        let top = self.top();
        let outputs = ["image", "packages-split", "deploy-ipks", "sysroot-destdir"];
        let is_output = |rel: &Path| {
            rel.file_name()
                .is_some_and(|name| outputs.iter().any(|o| name == *o))
                || rel == Path::new("tmp/sysroots")
                || rel == Path::new("tmp/deploy")
        };
        let mut found = Vec::new();
        for (rel, entry) in walk(&top, is_output) {
            if !entry.file_type().is_file() {
                continue;
            }
            let name = entry.file_name().to_string_lossy();
            let bytes = if name.contains(".sigdata.") || name.contains(".siginfo") {
                zstd_decompress(entry.path())
            } else if name.starts_with("fifo.") || name.ends_with(".sock") {
                continue;
            } else {
                fs::read(entry.path()).unwrap()
            };
            found.push((rel, bytes));
        }
        found
    }

    /// The decompressed JSON of the signature file of `pf`'s `task`.
    fn sigdata(&self, pf: &str, task: &str) -> serde_json::Value {
        let prefix = format!("{pf}.{task}.sigdata.");
        let stamps = self.top().join("tmp/stamps");
        let mut matches: Vec<PathBuf> = fs::read_dir(&stamps)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| {
                p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with(&prefix)
            })
            .collect();
        // The newest one: a task re-run with another hash writes another.
        matches.sort_by_key(|p| fs::metadata(p).unwrap().modified().unwrap());
        let newest = matches
            .last()
            .unwrap_or_else(|| panic!("no {prefix}* in {}", stamps.display()));
        serde_json::from_slice(&zstd_decompress(newest)).unwrap()
    }
}

fn zstd_decompress(path: &Path) -> Vec<u8> {
    let out = Command::new("zstd")
        .args(["-d", "-c", "-q"])
        .arg(path)
        .output()
        .unwrap_or_else(|e| panic!("zstd (bitbake needs it too) cannot run: {e}"));
    assert!(
        out.status.success(),
        "zstd -d {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// The tasks bitbake ran (noexec ones included: they ran because their
/// signature changed), as `recipe:do_task` with the recipe file's name
/// without version.
fn ran_tasks(log: &str) -> BTreeSet<String> {
    log.lines()
        .filter(|l| l.contains("Running task ") || l.contains("Running noexec task "))
        .filter_map(|l| {
            let inner = &l[l.rfind('(')? + 1..l.rfind(')')?];
            let (file, task) = inner.rsplit_once(':')?;
            let stem = Path::new(file).file_stem()?.to_string_lossy().into_owned();
            let recipe = stem.split('_').next()?.to_owned();
            Some(format!("{recipe}:{task}"))
        })
        .collect()
}

struct Outcome {
    what: String,
    success: bool,
    ran: BTreeSet<String>,
    log: String,
}

impl Outcome {
    #[track_caller]
    fn fail(&self, why: &str) -> ! {
        let lines: Vec<&str> = self.log.lines().collect();
        let tail = lines[lines.len().saturating_sub(120)..].join("\n");
        panic!(
            "{}: {why}\ntasks run: {:?}\n--- bitbake output (end) ---\n{tail}\n--- end ---",
            self.what, self.ran
        )
    }

    #[track_caller]
    fn ok(&self) -> &Outcome {
        if !self.success {
            self.fail("bitbake failed");
        }
        self
    }

    #[track_caller]
    fn failed(&self) -> &Outcome {
        if self.success {
            self.fail("bitbake succeeded, but it should have failed");
        }
        self
    }

    #[track_caller]
    fn log_has(&self, needle: &str) -> &Outcome {
        if !self.log.contains(needle) {
            self.fail(&format!("the output lacks {needle:?}"));
        }
        self
    }

    #[track_caller]
    fn log_lacks(&self, needle: &str) -> &Outcome {
        if self.log.contains(needle) {
            self.fail(&format!("the output has {needle:?}"));
        }
        self
    }

    #[track_caller]
    fn ran_nothing(&self) -> &Outcome {
        if !self.ran.is_empty() {
            self.fail("expected no task to run");
        }
        self
    }

    #[track_caller]
    fn ran_exactly(&self, expected: &BTreeSet<String>) -> &Outcome {
        if &self.ran != expected {
            let extra: Vec<_> = self.ran.difference(expected).collect();
            let missing: Vec<_> = expected.difference(&self.ran).collect();
            self.fail(&format!(
                "ran other tasks than expected: extra {extra:?}, missing {missing:?}"
            ));
        }
        self
    }
}

/// The recipes with an entry in the stand-in sstate cache, sorted.
fn sstate_recipes(build: &Build) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(build.top().join("sstate-cache"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// `recipe:do_task` for each task.
fn tasks(recipe: &str, names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|t| format!("{recipe}:do_{t}")).collect()
}

/// The tasks of a target recipe of this layer that depend on the archive:
/// the check and everything after it.
const TARGET_TASKS_AFTER_CHECK: &[&str] = &[
    "sota_check",
    "configure",
    "compile",
    "install",
    "sota_verify",
    "populate_sysroot",
    "package",
    "package_write_ipk",
    "build",
];
const NATIVE_TASKS_AFTER_CHECK: &[&str] = &[
    "sota_check",
    "configure",
    "compile",
    "install",
    "sota_verify",
    "populate_sysroot",
    "build",
];

/// Relative path -> (mode, is_dir) of everything under `root`.
fn tree(root: &Path) -> BTreeMap<String, (u32, bool)> {
    assert!(root.is_dir(), "cannot read {}", root.display());
    common::tree(root)
        .into_iter()
        .filter(|(rel, _)| !rel.is_empty())
        .map(|(rel, node)| (rel, (node.mode & 0o7777, node.bytes.is_none())))
        .collect()
}

/// Asserts that `root` holds exactly these files (path, mode) and these
/// folders with a mode given (others must be 0755), all files dated
/// SOURCE_DATE_EPOCH.
#[track_caller]
fn assert_tree(root: &Path, files: &[(&str, u32)], dirs: &[(&str, u32)]) {
    let found = tree(root);
    let found_files: BTreeMap<&str, u32> = found
        .iter()
        .filter(|(_, (_, is_dir))| !is_dir)
        .map(|(p, (m, _))| (p.as_str(), *m))
        .collect();
    let wanted: BTreeMap<&str, u32> = files.iter().copied().collect();
    assert_eq!(
        found_files
            .iter()
            .map(|(p, m)| format!("{p} {m:o}"))
            .collect::<Vec<_>>(),
        wanted
            .iter()
            .map(|(p, m)| format!("{p} {m:o}"))
            .collect::<Vec<_>>(),
        "files and modes under {}",
        root.display()
    );
    for (path, (mode, is_dir)) in &found {
        if *is_dir {
            let want = dirs
                .iter()
                .find(|(d, _)| d == path)
                .map_or(0o755, |(_, m)| *m);
            assert_eq!(
                *mode,
                want,
                "mode of folder {path} under {}: {mode:o}",
                root.display()
            );
        } else {
            let mtime = fs::metadata(root.join(path)).unwrap().mtime();
            assert_eq!(mtime, EPOCH as i64, "mtime of {path} (SOURCE_DATE_EPOCH)");
        }
    }
}

/// The entry names of a zip file.
fn zip_names(path: &Path) -> Vec<String> {
    let file = fs::File::open(path).unwrap();
    let mut zip = zip::ZipArchive::new(file)
        .unwrap_or_else(|e| panic!("{} is not a zip: {e}", path.display()));
    let mut names: Vec<String> = (0..zip.len())
        .map(|i| zip.by_index(i).unwrap().name().to_owned())
        .collect();
    names.sort();
    names
}

fn read(path: impl AsRef<Path>) -> String {
    let path = path.as_ref();
    fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn md5_hex(dir: &TestDir, bytes: &[u8]) -> String {
    let file = dir.write("md5-input", bytes);
    let out = common::openssl(dir.path(), ["dgst", "-md5", "-r", file.to_str().unwrap()]);
    fs::remove_file(file).unwrap();
    String::from_utf8(out).unwrap()[..32].to_owned()
}

/// What must never be found outside the staged outputs: each secret, and
/// the digests (sha256, md5) of the short ones, which a dictionary reverses.
fn secret_needles(
    dir: &TestDir,
    secrets: &[(&str, &str)],
    short: &[(&str, &str)],
) -> Vec<(String, String)> {
    let mut needles: Vec<(String, String)> = secrets
        .iter()
        .chain(short)
        .map(|(what, value)| ((*what).to_owned(), (*value).to_owned()))
        .collect();
    for (what, value) in short {
        for variant in [value.to_string(), format!("{value}\n")] {
            needles.push((format!("sha256 of {what}"), sha256_hex(variant.as_bytes())));
            needles.push((format!("md5 of {what}"), md5_hex(dir, variant.as_bytes())));
        }
    }
    needles
}

#[track_caller]
fn assert_no_leak(build: &Build, needles: &[(String, String)]) -> Vec<(PathBuf, String)> {
    let started = Instant::now();
    let files = build.readable_leftovers();
    let sigdata = files
        .iter()
        .filter(|(p, _)| p.to_string_lossy().contains(".sigdata."))
        .count();
    assert!(sigdata > 20, "the scan found only {sigdata} sigdata files");
    // The needles are ASCII: a lossy conversion keeps every match, and
    // str::contains is fast even in a debug build.
    let files: Vec<(PathBuf, String)> = files
        .into_iter()
        .map(|(path, bytes)| (path, String::from_utf8_lossy(&bytes).into_owned()))
        .collect();
    for (path, text) in &files {
        for (what, needle) in needles {
            assert!(
                !text.contains(needle.as_str()),
                "{what} leaked into {}",
                path.display()
            );
        }
    }
    eprintln!(
        "scan: {} files, {:.1} s",
        files.len(),
        started.elapsed().as_secs_f64()
    );
    files
}

/// A line of base64 from the body of a PEM text: a piece of key material.
fn pem_body_line(pem: &str) -> String {
    pem.lines()
        .find(|l| l.len() >= 40 && !l.starts_with("-----"))
        .unwrap()
        .to_owned()
}

const P12_PASSWORD: &str = "TEST-ONLY-p12-pass-7319";
const PIN: &str = "TEST-ONLY-pin-8642";
const PIN_2: &str = "TEST-ONLY-pin-5150";

#[test]
#[ignore = "needs BITBAKE"]
fn shared_cred_device_and_host_files_and_their_signatures() {
    let bitbake = bitbake("bitbake");
    let mut build = Build::new(&bitbake, false);
    let pki = Pki::new(&build.dir);
    let client = pki.client(KeyAlg::Ec, Validity::Normal);
    let p12 = pki.p12(&client, P12_PASSWORD, P12Form::Aes, 1);
    let (targets_pub, targets_sec) = pki.targets_rsa();
    let rsa_pem = serde_json::from_str::<serde_json::Value>(&targets_sec).unwrap()["keyval"]
        ["private"]
        .as_str()
        .unwrap()
        .to_owned();
    let creds_at = |tufrepo: &str, url: &str| {
        Creds::typical(&pki)
            .p12(p12.clone())
            .file("targets.pub", targets_pub.as_str())
            .file("targets.sec", targets_sec.as_str())
            .tufrepo_url(tufrepo)
            .url(url)
            .build()
    };
    let device_url = format!("https://{}.device-gateway.example.test:443", pki.uuid());
    let creds = |tufrepo: &str| creds_at(tufrepo, &device_url);

    let archive = build.input("a/credentials.zip");
    write_input(&archive, creds("https://tuf.example.test/api/v1/user_repo"));
    write_input(&build.input("p12-password"), format!("{P12_PASSWORD}\n"));
    build.set("SOTA_PACKED_CREDENTIALS", &archive);
    build.set("SOTA_P12_PASSWORD_FILE", build.input("p12-password"));
    build.set("SOTA_CLIENT_PROV", "aktualizr-shared-prov");
    let both = ["sota-credentials", "sota-credentials-host-native"];

    // The device files in ${D}, packaged; the host files in the native sysroot.
    build.run(&both).ok();
    let image = build.image("sota-credentials-1.0-r0");
    assert_tree(
        &image,
        &[
            ("var/sota/sota_provisioning_credentials.zip", 0o600),
            ("var/sota/import/repo/root.json", 0o644),
            // It holds the p12 password.
            ("usr/lib/sota/conf.d/20-sota-shared-cred.toml", 0o600),
            ("usr/lib/sota/conf.d/40-hardware-id.toml", 0o644),
        ],
        &[("var/sota", 0o700), ("var/sota/import", 0o700)],
    );
    assert_eq!(
        zip_names(&image.join("var/sota/sota_provisioning_credentials.zip")),
        ["autoprov.url", "autoprov_credentials.p12"]
    );
    let fragment = read(image.join("usr/lib/sota/conf.d/20-sota-shared-cred.toml"));
    assert!(
        fragment.contains("provision_path = \"/var/sota/sota_provisioning_credentials.zip\""),
        "{fragment}"
    );
    assert!(
        fragment.contains(&format!("p12_password = \"{P12_PASSWORD}\"")),
        "{fragment}"
    );
    assert!(read(image.join("usr/lib/sota/conf.d/40-hardware-id.toml"))
        .contains("primary_ecu_hardware_id = \"test-board\""));
    let packaged = build
        .top()
        .join("tmp/work/sota-credentials-1.0-r0/packages-split/sota-credentials");
    assert_eq!(
        tree(&packaged),
        tree(&image),
        "the package ships all of ${{D}}"
    );
    assert!(
        build
            .top()
            .join("tmp/work/sota-credentials-1.0-r0/deploy-ipks/qemux86_64/sota-credentials.tar")
            .is_file(),
        "PACKAGE_ARCH is MACHINE_ARCH"
    );

    assert_tree(&build.host_files(), &HOST_FILES, &[]);
    assert_eq!(
        zip_names(&build.host_files().join("credentials.zip")),
        [
            "root.json",
            "targets.pub",
            "targets.sec",
            "treehub.json",
            "tufrepo.url"
        ],
        "the host-only archive has no device secret"
    );
    // The stand-in sstate cache: the tool is cached, the credentials never.
    assert_eq!(sstate_recipes(&build), ["sota-stage-prebuilt-native"]);
    let target_sysroot = build.top().join("tmp/sysroots/qemux86-64");
    assert!(
        !target_sysroot.exists() || tree(&target_sysroot).is_empty(),
        "nothing of the device recipe in a sysroot"
    );

    // An unrelated setting, an unrelated file, the same bytes rewritten: nothing re-runs.
    let sig_before = build.sigdata("sota-credentials-1.0-r0", "do_install");
    build.set("UNRELATED_SETTING", "1");
    write_input(&build.input("a/notes.txt"), "unrelated");
    write_input(&archive, creds("https://tuf.example.test/api/v1/user_repo"));
    build.run(&both).ok().ran_nothing();

    // The same bytes at another path (and the password file moved too): nothing re-runs.
    let moved = build.input("elsewhere/renamed.zip");
    fs::create_dir_all(moved.parent().unwrap()).unwrap();
    fs::rename(&archive, &moved).unwrap();
    fs::rename(build.input("p12-password"), build.input("elsewhere/pw")).unwrap();
    build.set("SOTA_PACKED_CREDENTIALS", &moved);
    build.set("SOTA_P12_PASSWORD_FILE", build.input("elsewhere/pw"));
    build.run(&both).ok().ran_nothing();

    // Other content at the same path, host side only (tufrepo.url): exactly
    // the host recipe's tasks that read it, and those after them, re-run;
    // the device recipe's signatures follow only the device's entries.
    let digest = |sig: &serde_json::Value| sig["varvals"]["SOTA_STAGE_CONTENT_DIGEST"].to_string();
    write_input(
        &moved,
        creds("https://tuf.example.test/api/v1/another_repo"),
    );
    build.run(&both).ok().ran_exactly(&tasks(
        "sota-credentials-host-native",
        NATIVE_TASKS_AFTER_CHECK,
    ));
    assert_eq!(
        read(build.host_files().join("tufrepo.url")),
        "https://tuf.example.test/api/v1/another_repo"
    );
    let sig_host_change = build.sigdata("sota-credentials-1.0-r0", "do_install");
    assert_eq!(digest(&sig_before), digest(&sig_host_change));

    // Device side (autoprov.url): the device recipe re-runs from its check on,
    // the host recipe (which never gets autoprov.url) and the tool do not.
    write_input(
        &moved,
        creds_at(
            "https://tuf.example.test/api/v1/another_repo",
            &format!("https://{}.other-gateway.example.test:443", pki.uuid()),
        ),
    );
    build
        .run(&both)
        .ok()
        .ran_exactly(&tasks("sota-credentials", TARGET_TASKS_AFTER_CHECK));
    let sig_after = build.sigdata("sota-credentials-1.0-r0", "do_install");
    assert!(
        digest(&sig_before).len() > 60,
        "the side's content digest is in the signature: {}",
        digest(&sig_before)
    );
    assert_ne!(
        digest(&sig_before),
        digest(&sig_after),
        "the content is in the signature"
    );

    // No secret in any signature file, task script, log, cache or sstate
    // archive; no input's path in any signature.
    let needles = secret_needles(
        &build.dir,
        &[
            ("the OAuth2 client secret", OAUTH2_SECRET),
            ("targets.sec's RSA key", &pem_body_line(&rsa_pem)),
            ("the p12 client key", &pem_body_line(&client.key_pem())),
        ],
        &[("the p12 password", P12_PASSWORD)],
    );
    let inputs = build.dir.join("inputs").display().to_string();
    for (path, text) in assert_no_leak(&build, &needles) {
        if path.to_string_lossy().contains(".sigdata.") {
            assert!(
                !text.contains(&inputs),
                "an input's path is in the signature {}",
                path.display()
            );
        }
    }
}

#[test]
#[ignore = "needs BITBAKE"]
fn device_cred_and_hsm_files_and_the_pin_file() {
    let bitbake = bitbake("bitbake");
    let mut build = Build::new(&bitbake, false);
    let pki = Pki::new(&build.dir);
    let archive = build.input("credentials.zip");
    write_input(&archive, Creds::typical(&pki).build());
    build.set("SOTA_PACKED_CREDENTIALS", &archive);
    build.set("SOTA_CLIENT_PROV", "device-cred");
    let image = build.image("sota-credentials-1.0-r0");

    build.run(&["sota-credentials"]).ok();
    let device_cred_files = |fragment: (&'static str, u32)| {
        vec![
            ("var/sota/import/gateway.url", 0o644),
            ("var/sota/import/root.crt", 0o644),
            ("var/sota/import/repo/root.json", 0o644),
            fragment,
            ("usr/lib/sota/conf.d/40-hardware-id.toml", 0o644),
        ]
    };
    assert_tree(
        &image,
        &device_cred_files(("usr/lib/sota/conf.d/20-sota-device-cred.toml", 0o644)),
        &[("var/sota", 0o700), ("var/sota/import", 0o700)],
    );
    assert_eq!(
        read(image.join("var/sota/import/gateway.url")).trim(),
        format!("https://{}.device-gateway.example.test:443", pki.uuid())
    );
    assert!(read(image.join("var/sota/import/root.crt")).contains("BEGIN CERTIFICATE"));

    // device-cred-hsm by meta-updater's name, the PIN from a file, an id changed.
    write_input(&build.input("pin"), format!("{PIN}\n"));
    build.set("SOTA_CLIENT_PROV", "aktualizr-device-prov-hsm");
    build.set("SOTA_HSM_PIN_FILE", build.input("pin"));
    build.set("SOTA_HSM_UPTANE_KEY_ID", "07");
    build.run(&["sota-credentials"]).ok();
    let fragment_path = "usr/lib/sota/conf.d/20-sota-device-cred-hsm.toml";
    assert_tree(
        &image,
        &device_cred_files((fragment_path, 0o600)),
        &[("var/sota", 0o700), ("var/sota/import", 0o700)],
    );
    let fragment = read(image.join(fragment_path));
    for line in [
        format!("pass = \"{PIN}\""),
        // The stand-in's libdir is /usr/lib64, as on a multilib machine.
        "module = \"/usr/lib64/softhsm/libsofthsm2.so\"".to_owned(),
        "uptane_key_id = \"07\"".to_owned(),
        "tls_clientcert_id = \"01\"".to_owned(),
    ] {
        assert!(fragment.contains(&line), "{line} in\n{fragment}");
    }

    // Another PIN in the same file re-runs the tasks that read it ...
    write_input(&build.input("pin"), format!("{PIN_2}\n"));
    build
        .run(&["sota-credentials"])
        .ok()
        .ran_exactly(&tasks("sota-credentials", TARGET_TASKS_AFTER_CHECK));
    assert!(read(image.join(fragment_path)).contains(&format!("pass = \"{PIN_2}\"")));
    // ... the same PIN in another file re-runs nothing.
    fs::rename(build.input("pin"), build.input("pin-moved")).unwrap();
    build.set("SOTA_HSM_PIN_FILE", build.input("pin-moved"));
    build.run(&["sota-credentials"]).ok().ran_nothing();

    let needles = secret_needles(
        &build.dir,
        &[],
        &[("the first PIN", PIN), ("the second PIN", PIN_2)],
    );
    assert_no_leak(&build, &needles);
}

/// `SOTA_STAGE_REPORT_CONFIG` reaches the tool: by default a fragment
/// with a PIN tells aktualizr not to send its configuration (which holds
/// the PIN) to the server and one without a secret leaves aktualizr's
/// default; `off` writes it into every fragment; `on` leaves it out, and
/// `do_sota_verify` then fails on the PIN that would be sent.
#[test]
#[ignore = "needs BITBAKE"]
fn sota_stage_report_config_decides_what_aktualizr_sends() {
    let bitbake = bitbake("bitbake");
    let mut build = Build::new(&bitbake, false);
    let pki = Pki::new(&build.dir);
    let archive = build.input("credentials.zip");
    write_input(&archive, Creds::typical(&pki).build());
    build.set("SOTA_PACKED_CREDENTIALS", &archive);
    write_input(&build.input("pin"), format!("{PIN}\n"));
    build.set("SOTA_HSM_PIN_FILE", build.input("pin"));
    let image = build.image("sota-credentials-1.0-r0");
    let off = "[telemetry]\nreport_config = false\n";
    let fragment =
        |method: &str| read(image.join(format!("usr/lib/sota/conf.d/20-sota-{method}.toml")));

    build.set("SOTA_CLIENT_PROV", "device-cred-hsm");
    build.run(&["sota-credentials"]).ok();
    assert!(fragment("device-cred-hsm").ends_with(off));
    build.set("SOTA_CLIENT_PROV", "device-cred");
    build.run(&["sota-credentials"]).ok();
    assert!(!fragment("device-cred").contains("[telemetry]"));

    build.set("SOTA_STAGE_REPORT_CONFIG", "off");
    build.run(&["sota-credentials"]).ok();
    assert!(fragment("device-cred").ends_with(off));

    build.set("SOTA_STAGE_REPORT_CONFIG", "on");
    build.set("SOTA_CLIENT_PROV", "device-cred-hsm");
    build
        .run(&["sota-credentials"])
        .failed()
        .log_has("`[telemetry] report_config` is true (aktualizr's default): aktualizr sends its whole configuration, this `p11.pass` included");
}

#[test]
#[ignore = "needs BITBAKE"]
fn an_unusable_archive_fails_the_check_with_the_tools_message() {
    let bitbake = bitbake("bitbake");
    let mut build = Build::new(&bitbake, false);

    // Not a zip: do_sota_check fails, do_install never runs.
    let bad = build.input("bad.zip");
    write_input(&bad, "this is not a zip archive");
    build.set("SOTA_PACKED_CREDENTIALS", &bad);
    let run = build.run(&["sota-credentials"]);
    run.failed()
        .log_has("error: bad.zip: not a zip archive")
        .log_has("sota-credentials.bb:do_sota_check) failed");
    assert!(
        !run.ran.contains("sota-credentials:do_install"),
        "{:?}",
        run.ran
    );

    // aktualizr's sample: its shared client certificate expired in 2018.
    let expired = build.input("expired/credentials.zip");
    write_input(
        &expired,
        fs::read(upstream("aktualizr-credentials.zip")).unwrap(),
    );
    build.set("SOTA_PACKED_CREDENTIALS", &expired);
    build
        .run(&["sota-credentials-host-native"])
        .failed()
        .log_has("error: credentials.zip: cannot stage for shared-cred")
        .log_has("expired on 2018-07-18")
        .log_has("sota-credentials-host-native.bb:do_sota_check) failed");

    // A relative path is refused when the recipes are parsed.
    build.set("SOTA_PACKED_CREDENTIALS", "inputs/credentials.zip");
    build
        .run(&["sota-credentials"])
        .failed()
        .log_has("SOTA_PACKED_CREDENTIALS must be an absolute path");
}

/// meta-updater's recipes for shared credentials, switched over by the
/// dynamic layer's .bbappends.
#[test]
#[ignore = "needs BITBAKE"]
fn meta_updater_shared_cred_recipes_stage_with_sota_stage() {
    let bitbake = bitbake("bitbake");
    let mut build = Build::new(&bitbake, true);
    let pki = Pki::new(&build.dir);
    let archive = build.input("credentials.zip");
    write_input(&archive, Creds::typical(&pki).build());
    build.set("SOTA_PACKED_CREDENTIALS", &archive);
    let recipes = [
        "aktualizr-shared-prov-creds",
        "aktualizr-shared-prov",
        "aktualizr-hwid",
    ];

    let run = build.run(&recipes);
    run.ok();
    assert!(
        run.ran
            .iter()
            .all(|t| !t.starts_with("aktualizr:") && !t.starts_with("zip-native:")),
        "aktualizr and zip-native are not needed any more: {:?}",
        run.ran
    );
    let creds = build.image("aktualizr-shared-prov-creds-1.0-r0");
    assert_tree(
        &creds,
        &[
            ("var/sota/sota_provisioning_credentials.zip", 0o600),
            ("var/sota/import/repo/root.json", 0o644),
        ],
        &[("var/sota", 0o700), ("var/sota/import", 0o700)],
    );
    assert_eq!(
        zip_names(&creds.join("var/sota/sota_provisioning_credentials.zip")),
        ["autoprov.url", "autoprov_credentials.p12"]
    );
    assert!(
        !build
            .top()
            .join("tmp/work/aktualizr-shared-prov-creds-1.0-r0/credentials.zip")
            .exists(),
        "meta-updater's SRC_URI entry for the archive is gone"
    );
    assert_eq!(
        sstate_recipes(&build),
        ["aktualizr-hwid", "sota-stage-prebuilt-native"],
        "only the recipes without secrets are in the sstate cache"
    );
    let shared = build.image("aktualizr-shared-prov-1.0-r0");
    assert_tree(
        &shared,
        &[("usr/lib/sota/conf.d/20-sota-shared-cred.toml", 0o644)],
        &[],
    );
    assert!(
        read(shared.join("usr/lib/sota/conf.d/20-sota-shared-cred.toml"))
            .contains("provision_path = \"/var/sota/sota_provisioning_credentials.zip\"")
    );
    let hwid = build.image("aktualizr-hwid-1.0-r0");
    assert_tree(
        &hwid,
        &[("usr/lib/sota/conf.d/40-hardware-id.toml", 0o644)],
        &[],
    );
    assert_eq!(
        read(hwid.join("usr/lib/sota/conf.d/40-hardware-id.toml")),
        "# The hardware ID of the primary ECU (sota-stage).\n[provision]\nprimary_ecu_hardware_id = \"test-board\"\n"
    );

    // Moving the archive re-runs nothing; other content re-runs only the
    // recipe that stages it.
    let moved = build.input("moved/credentials.zip");
    fs::create_dir_all(moved.parent().unwrap()).unwrap();
    fs::rename(&archive, &moved).unwrap();
    build.set("SOTA_PACKED_CREDENTIALS", &moved);
    build.run(&recipes).ok().ran_nothing();
    write_input(
        &moved,
        Creds::typical(&pki)
            .tufrepo_url("https://tuf.example.test/other")
            .build(),
    );
    build.run(&recipes).ok().ran_exactly(&tasks(
        "aktualizr-shared-prov-creds",
        TARGET_TASKS_AFTER_CHECK,
    ));
    // meta-updater copied the whole archive into WORKDIR: no more.
    let needles = secret_needles(
        &build.dir,
        &[("the OAuth2 client secret", OAUTH2_SECRET)],
        &[],
    );
    assert_no_leak(&build, &needles);
}

/// meta-updater's recipes for device credentials (with and without an HSM),
/// switched over by the dynamic layer's .bbappends.
#[test]
#[ignore = "needs BITBAKE"]
fn meta_updater_device_cred_recipes_stage_with_sota_stage() {
    let bitbake = bitbake("bitbake");
    let mut build = Build::new(&bitbake, true);
    let pki = Pki::new(&build.dir);
    let recipes = ["aktualizr-device-prov", "aktualizr-device-prov-hsm"];
    let dirs = [("var/sota", 0o700), ("var/sota/import", 0o700)];

    // Without an archive: the fragments only, as meta-updater does.
    let run = build.run(&recipes);
    run.ok().log_has("SOTA_HSM_PIN_FILE is not set");
    assert_tree(
        &build.image("aktualizr-device-prov-1.0-r0"),
        &[("usr/lib/sota/conf.d/20-sota-device-cred.toml", 0o644)],
        &[],
    );
    assert_tree(
        &build.image("aktualizr-device-prov-hsm-1.0-r0"),
        &[("usr/lib/sota/conf.d/20-sota-device-cred-hsm.toml", 0o600)],
        &[],
    );

    // With one: the server URL, its CA and the pinned root too.
    let archive = build.input("credentials.zip");
    write_input(&archive, Creds::typical(&pki).build());
    write_input(&build.input("pin"), PIN);
    build.set("SOTA_PACKED_CREDENTIALS", &archive);
    build.set("SOTA_HSM_PIN_FILE", build.input("pin"));
    build
        .run(&recipes)
        .ok()
        .log_lacks("SOTA_HSM_PIN_FILE is not set");
    let common_files = [
        ("var/sota/import/gateway.url", 0o644),
        ("var/sota/import/root.crt", 0o644),
        ("var/sota/import/repo/root.json", 0o644),
    ];
    let mut files = common_files.to_vec();
    files.push(("usr/lib/sota/conf.d/20-sota-device-cred.toml", 0o644));
    assert_tree(&build.image("aktualizr-device-prov-1.0-r0"), &files, &dirs);
    let mut files = common_files.to_vec();
    files.push(("usr/lib/sota/conf.d/20-sota-device-cred-hsm.toml", 0o600));
    let hsm = build.image("aktualizr-device-prov-hsm-1.0-r0");
    assert_tree(&hsm, &files, &dirs);
    assert!(
        read(hsm.join("usr/lib/sota/conf.d/20-sota-device-cred-hsm.toml"))
            .contains(&format!("pass = \"{PIN}\""))
    );

    assert_eq!(
        sstate_recipes(&build),
        ["aktualizr-device-prov", "sota-stage-prebuilt-native"],
        "the HSM fragment (PIN) is not in the sstate cache"
    );
    let needles = secret_needles(&build.dir, &[], &[("the PIN", PIN)]);
    assert_no_leak(&build, &needles);
}

/// The real tool recipe parses (with stub cargo classes), takes its crates
/// from the generated .inc and, out of the box, its sources from the checkout
/// the layer sits in; `SOTA_STAGE_SRC_URI` overrides that for a release; a
/// layer copied out of its checkout skips the recipe and says what it needs.
#[test]
#[ignore = "needs BITBAKE"]
fn the_tool_recipe_parses_and_says_what_it_needs() {
    let bitbake = bitbake("bitbake");
    let mut build = Build::new(&bitbake, false);
    let env = build.run(&["-e", "sota-stage"]);
    env.ok()
        .log_has("file://Cargo.lock;subdir=${BP}")
        .log_has("file://src;subdir=${BP}")
        .log_has("crate://crates.io/serde/")
        .log_has("[serde-1.")
        .log_has(".sha256sum] \"")
        .log_has("\nLICENSE=\"MIT | Apache-2.0\"")
        .log_has("\nBBCLASSEXTEND=\"native\"")
        .log_has("\nS=\"")
        .log_has("/sota-stage-0.1.0\"");

    build.set(
        "SOTA_STAGE_SRC_URI",
        "git://git.example.test/sota-stage.git;protocol=https;branch=main;destsuffix=${BP}",
    );
    build.set(
        "SOTA_STAGE_SRCREV",
        "0123456789abcdef0123456789abcdef01234567",
    );
    build
        .run(&["-e", "sota-stage"])
        .ok()
        .log_has("\nSRC_URI=\"git://git.example.test/sota-stage.git");

    // The layer alone, outside a sota-stage checkout.
    let lone = build.dir.join("lone/meta-layer-snippets");
    copy_tree(&repo().join("meta-layer-snippets"), &lone);
    let bblayers = build.dir.join("build/conf/bblayers.conf");
    let layers = fs::read_to_string(&bblayers).unwrap().replace(
        &repo().join("meta-layer-snippets").display().to_string(),
        &lone.display().to_string(),
    );
    fs::write(&bblayers, layers).unwrap();
    build.conf.remove("SOTA_STAGE_SRC_URI");
    build
        .run(&["sota-stage"])
        .failed()
        .log_has("meta-layer-snippets is not inside a sota-stage checkout: set SOTA_STAGE_SRC_URI and SOTA_STAGE_SRCREV");
}

/// An append that edits or adds a staged file after the class staged it
/// fails `do_sota_verify`, before anything is packaged, with verify's report;
/// the staging manifest is in `${WORKDIR}`, never in `${D}`.
#[test]
#[ignore = "needs BITBAKE"]
fn a_staged_file_changed_after_staging_fails_before_packaging() {
    let bitbake = bitbake("bitbake");
    let mut build = Build::new(&bitbake, false);
    let pki = Pki::new(&build.dir);
    let archive = build.input("credentials.zip");
    write_input(&archive, Creds::typical(&pki).build());
    build.set("SOTA_PACKED_CREDENTIALS", &archive);
    build.run(&["sota-credentials"]).ok();
    let image = build.image("sota-credentials-1.0-r0");
    assert!(
        tree(&image).keys().all(|p| !p.contains("manifest")),
        "no manifest in ${{D}}: {:?}",
        tree(&image).keys()
    );
    assert!(build
        .top()
        .join("tmp/work/sota-credentials-1.0-r0/sota-stage-manifests/0-device.json")
        .is_file());

    // A layer whose append edits the staged fragment.
    let appends = build.dir.join("meta-appends");
    build.dir.write(
        "meta-appends/conf/layer.conf",
        "BBPATH .= \":${LAYERDIR}\"\nBBFILES += \"${LAYERDIR}/*.bbappend\"\n\
         BBFILE_COLLECTIONS += \"extras\"\nBBFILE_PATTERN_extras = \"^${LAYERDIR}/\"\n",
    );
    let bblayers = build.dir.join("build/conf/bblayers.conf");
    let layers = fs::read_to_string(&bblayers).unwrap().replace(
        "BBLAYERS = \"",
        &format!("BBLAYERS = \"{} ", appends.display()),
    );
    fs::write(&bblayers, layers).unwrap();
    build.dir.write(
        "meta-appends/sota-credentials.bbappend",
        "do_install:append() {\n    echo '# edited' >> ${D}/usr/lib/sota/conf.d/20-sota-shared-cred.toml\n}\n",
    );
    let run = build.run(&["sota-credentials"]);
    run.failed()
        .log_has("sota-stage verify failed for sota-credentials")
        .log_has("usr/lib/sota/conf.d/20-sota-shared-cred.toml")
        .log_has("do_sota_verify) failed");
    assert!(
        !run.ran.contains("sota-credentials:do_package"),
        "{:?}",
        run.ran
    );

    // One that adds a file next to the staged ones.
    build.dir.write(
        "meta-appends/sota-credentials.bbappend",
        "do_install:append() {\n    echo x > ${D}/var/sota/import/extra.pem\n}\n",
    );
    build
        .run(&["sota-credentials"])
        .failed()
        .log_has("extra: device:var/sota/import/extra.pem is not in the manifest")
        .log_has("do_sota_verify) failed");

    // Without the append, the build passes again.
    build
        .dir
        .write("meta-appends/sota-credentials.bbappend", "");
    build.run(&["sota-credentials"]).ok();
}
