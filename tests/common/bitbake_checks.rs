//! What the tests of the layer's own recipes with the BitBake harness
//! (`tests/bitbake.rs`, `tests/bitbake_meta_updater.rs`) share: their build
//! folder ([`credentials_build`]), the trees they stage and the tasks that
//! re-run ([`assert_tree`], [`tasks`]), and the scan for secrets in what a
//! build leaves readable ([`assert_no_leak`]).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use sha2::{Digest, Sha256};

use super::creds::Creds;
use super::dir::TestDir;
use super::harness::{write_dated, zstd_decompress, Build};
use super::openssl::openssl;
use super::pki::Pki;
use super::tree::{tree, walk};

/// SOURCE_DATE_EPOCH of the builds: every staged file's mtime.
pub const EPOCH: u64 = 1_700_000_000;
pub const PIN: &str = "TEST-ONLY-pin-8642";

/// Writes `bytes` and gives the file an mtime no other write in this process
/// gets: bitbake's checksum cache keys on the mtime in whole seconds.
pub fn write_input(path: &Path, bytes: impl AsRef<[u8]>) {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let when = SystemTime::UNIX_EPOCH + Duration::from_secs(1_600_000_000 + 10 * n);
    write_dated(path, bytes, when);
}

/// A build folder: the stand-in OE-core (`tests/bitbake/meta-test`), the
/// real meta-layer-snippets, with `meta_updater` the stand-in meta-updater
/// and the dynamic layer's opt-in; an `inputs` folder outside the build.
pub fn credentials_build(bitbake: &Path, meta_updater: bool) -> Build {
    let mut layers = vec!["tests/bitbake/meta-test", "meta-layer-snippets"];
    if meta_updater {
        layers.push("tests/bitbake/meta-updater-standin");
    }
    let mut build = Build::new(bitbake, &layers);
    build.set("SOTA_HARDWARE_ID", "test-board");
    if meta_updater {
        // The dynamic layer's switch-over is opt-in.
        build.set("DISTRO_FEATURES", "sota-stage");
    }
    build.set("SOURCE_DATE_EPOCH", EPOCH.to_string());
    build
}

/// [`credentials_build`] with a typical archive at `inputs/credentials.zip`
/// set as `SOTA_PACKED_CREDENTIALS`: the build, its PKI and the archive.
pub fn with_typical_archive(bitbake: &Path, meta_updater: bool) -> (Build, Pki, PathBuf) {
    let mut build = credentials_build(bitbake, meta_updater);
    let pki = Pki::new(&build.dir);
    let archive = build.input("credentials.zip");
    write_input(&archive, Creds::typical(&pki).build());
    build.set("SOTA_PACKED_CREDENTIALS", &archive);
    (build, pki, archive)
}

/// Every file under the build folder a reader of the build could see
/// (signature files, task scripts and logs, caches, the stand-in sstate
/// cache, scratch space), decompressed where bitbake compresses: the
/// places secrets must never reach. The staged outputs themselves
/// (image, package, sysroot, deploy folders) are left out: they are
/// meant to hold the device's and the host's secrets.
fn readable_leftovers(build: &Build) -> Vec<(PathBuf, Vec<u8>)> {
    let top = build.top();
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

/// The recipes with an entry in the stand-in sstate cache, sorted.
pub fn sstate_recipes(build: &Build) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(build.top().join("sstate-cache"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// The tasks of `recipe`, a recipe of this layer, that depend on the
/// archive, as `recipe:do_task`: the check and everything after it; a
/// native recipe has no package tasks.
pub fn tasks_after_check(recipe: &str) -> BTreeSet<String> {
    let native = recipe.ends_with("-native");
    [
        "sota_check",
        "configure",
        "compile",
        "install",
        "sota_verify",
        "populate_sysroot",
        "package",
        "package_write_ipk",
        "build",
    ]
    .iter()
    .filter(|task| !(native && task.starts_with("package")))
    .map(|task| format!("{recipe}:do_{task}"))
    .collect()
}

/// Relative path -> (mode, is_dir) of everything under `root`.
pub fn tree_modes(root: &Path) -> BTreeMap<String, (u32, bool)> {
    assert!(root.is_dir(), "cannot read {}", root.display());
    tree(root)
        .into_iter()
        .filter(|(rel, _)| !rel.is_empty())
        .map(|(rel, node)| (rel, (node.mode & 0o7777, node.bytes.is_none())))
        .collect()
}

/// Asserts that `root` holds exactly these files (path, mode) and these
/// folders with a mode given (others must be 0755), all files dated
/// SOURCE_DATE_EPOCH.
#[track_caller]
pub fn assert_tree(root: &Path, files: &[(&str, u32)], dirs: &[(&str, u32)]) {
    let found = tree_modes(root);
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
pub fn zip_names(path: &Path) -> Vec<String> {
    let file = fs::File::open(path).unwrap();
    let mut zip = zip::ZipArchive::new(file)
        .unwrap_or_else(|e| panic!("{} is not a zip: {e}", path.display()));
    let mut names: Vec<String> = (0..zip.len())
        .map(|i| zip.by_index(i).unwrap().name().to_owned())
        .collect();
    names.sort();
    names
}

pub fn read(path: impl AsRef<Path>) -> String {
    let path = path.as_ref();
    fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn md5_hex(dir: &TestDir, bytes: &[u8]) -> String {
    let file = dir.write("md5-input", bytes);
    let out = openssl(dir.path(), ["dgst", "-md5", "-r", file.to_str().unwrap()]);
    fs::remove_file(file).unwrap();
    String::from_utf8(out).unwrap()[..32].to_owned()
}

/// What must never be found outside the staged outputs: each secret, and
/// the digests (sha256, md5) of the short ones, which a dictionary reverses.
pub fn secret_needles(
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
pub fn assert_no_leak(build: &Build, needles: &[(String, String)]) -> Vec<(PathBuf, String)> {
    let started = Instant::now();
    let files = readable_leftovers(build);
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
pub fn pem_body_line(pem: &str) -> String {
    pem.lines()
        .find(|l| l.len() >= 40 && !l.starts_with("-----"))
        .unwrap()
        .to_owned()
}
