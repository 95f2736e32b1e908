//! meta-layer-snippets with the real OpenEmbedded-Core, BitBake,
//! meta-updater and meta-openembedded of scarthgap and wrynose, offline
//! (`../shared/tools/oe`), without building anything: `bitbake -p`, `-e`,
//! `-g` and `-S none` (signatures of every task, no task run).
//!
//! Build folders come from `scripts/oe/oe-build-dir.sh`, one per release and
//! kind, under `target/oe/<release>/<kind>`, kept between runs. Each masks
//! every recipe of OE-core, meta-openembedded and meta-updater outside the
//! task graphs checked here (`tests/oe/keep-recipes`, written by
//! `scripts/oe/oe-keep-recipes.sh`): a cold parse of about 130 recipes takes
//! 20 s here instead of 4 minutes for all 2771, a warm one 3 s.
//! - `plain`: OE-core and meta-updater with the layers it needs, no
//!   meta-layer-snippets: what a meta-updater build is before the layer;
//! - `layer`: plus meta-layer-snippets and a test layer of bbappends
//!   (`meta-sota-stage-test`) the tests fill in for single recipes;
//! - `opt-in`: plus `DISTRO_FEATURES:append = " sota-stage"` and
//!   `SOTA_STAGE_TOOL = "host"` (`scripts/oe/oe-build-check.sh` builds there).
//!
//! OE-core refuses to run as root: bitbake runs as `OE_TEST_USER` (`.ci/run`
//! makes the user `oe` and installs the Debian packages OE-core's sanity
//! check wants). The host-tool mode's `sota-stage` is the binary cargo built,
//! copied to `target/oe/hostbin` and put first on bitbake's PATH. Every test
//! here is `#[ignore = "needs OE_TEST_USER"]`; run them with
//! `OE_TEST_USER=oe cargo test --locked --test oe -- --ignored` as root
//! (`.ci/run` does).
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use common::{walk, Cmd, Creds, KeyAlg, P12Form, Pki, Run, TestDir, Validity, OAUTH2_SECRET};
use sha2::{Digest, Sha256};

const HOW: &str = "OE_TEST_USER=oe cargo test --locked --test oe -- --ignored, as root, \
                   with the user and the Debian packages that .ci/run installs";
/// A cold parse takes about 5 minutes here, more when the machine is busy.
const RUN_TIMEOUT: Duration = Duration::from_secs(40 * 60);
const P12_PASSWORD: &str = "TEST-ONLY-p12-pass-7f3a";

/// meta-updater's recipes that the dynamic layer switches over.
const SWITCHED: [&str; 5] = [
    "aktualizr-shared-prov-creds",
    "aktualizr-shared-prov",
    "aktualizr-device-prov",
    "aktualizr-device-prov-hsm",
    "aktualizr-hwid",
];
/// Recipes that build Rust.
const RUST: [&str; 4] = [
    "rust-native",
    "cargo-native",
    "rust-llvm-native",
    "sota-stage-native",
];

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[track_caller]
fn oe_user() -> String {
    std::env::var("OE_TEST_USER")
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| panic!("OE_TEST_USER is not set: run {HOW}"))
}

/// The folder whose `sota-stage` is the host tool: the binary cargo built.
fn host_bin() -> PathBuf {
    static DONE: OnceLock<PathBuf> = OnceLock::new();
    DONE.get_or_init(|| {
        let dir = repo().join("target/oe/hostbin");
        fs::create_dir_all(&dir).unwrap();
        let built = fs::read(env!("CARGO_BIN_EXE_sota-stage")).unwrap();
        let tool = dir.join("sota-stage");
        // Only a new binary is copied: the recipes are re-parsed when it changes.
        if fs::read(&tool).ok().as_deref() != Some(&built[..]) {
            let tmp = dir.join(".sota-stage.new");
            fs::copy(env!("CARGO_BIN_EXE_sota-stage"), &tmp).unwrap();
            fs::rename(&tmp, &tool).unwrap();
        }
        dir
    })
    .clone()
}

/// A modification time no earlier write of this test run (or of an earlier
/// run) has: BitBake's parse cache keys files on their mtime.
fn fresh_mtime(path: &Path) {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let when = SystemTime::now() + Duration::from_secs(2 * n + 2);
    fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(when)
        .unwrap();
}

fn write_fresh(path: &Path, bytes: impl AsRef<[u8]>) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, bytes).unwrap();
    fresh_mtime(path);
}

const KINDS: [&str; 3] = ["plain", "layer", "opt-in"];
const RELEASES: [&str; 2] = ["scarthgap", "wrynose"];

/// One build folder, held by one test at a time.
struct Oe {
    release: &'static str,
    dir: PathBuf,
    _guard: MutexGuard<'static, ()>,
}

impl Oe {
    #[track_caller]
    fn open(release: &'static str, kind: &'static str) -> Oe {
        static LOCKS: [Mutex<()>; 6] = [
            Mutex::new(()),
            Mutex::new(()),
            Mutex::new(()),
            Mutex::new(()),
            Mutex::new(()),
            Mutex::new(()),
        ];
        let user = oe_user();
        let r = RELEASES.iter().position(|r| *r == release).unwrap();
        let k = KINDS.iter().position(|k| *k == kind).unwrap();
        let guard = LOCKS[r * 3 + k]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let dir = repo().join("target/oe").join(release).join(kind);
        let args: Vec<std::ffi::OsString> = vec![
            release.into(),
            dir.clone().into_os_string(),
            kind.into(),
            repo().join("examples/credentials.zip").into_os_string(),
        ];
        Cmd::new(repo().join("scripts/oe/oe-build-dir.sh"))
            .args(args)
            .env("OE_TEST_USER", &user)
            .timeout(RUN_TIMEOUT)
            .run()
            .success();
        Oe {
            release,
            dir,
            _guard: guard,
        }
    }

    /// Runs a command of the build environment (`bitbake ...`).
    ///
    /// A fault of BitBake's parse cache, seen here with wrynose (BitBake
    /// 2.18) after a bbappend changed: `-S none` fails with "Basehash
    /// mismatch A versus B" for that recipe's tasks, because the signature
    /// values the cache restores (`bb_cache_SiggenRecipeInfo.dat`) are not
    /// the ones its basehashes were computed from (seen: the values of the
    /// new bbappend, the basehash of the old one). The fault stays in the
    /// cache until the recipe is parsed again; a fresh parse gives no
    /// mismatch. The cache de-duplicates those values by process id
    /// (`SiggenRecipeInfo._restore`, the same code in BitBake 2.8), and pids
    /// wrap at 32768 here: a parser reusing the pid recorded in the cache is
    /// the likely cause. So such a run is repeated once without the cache.
    fn run(&self, args: &[&str]) -> Run {
        let mut run = self.run_once(args);
        if run.code != 0 && format!("{}{}", run.stdout, run.stderr).contains("Basehash mismatch") {
            eprintln!("BitBake's parse cache gave a basehash mismatch: parsing again without it");
            for tmp in ["tmp-glibc", "tmp"] {
                for (_, entry) in walk(&self.dir.join(tmp).join("cache"), |_| false) {
                    let name = entry.file_name().to_string_lossy();
                    if entry.file_type().is_file() && name.starts_with("bb_cache") {
                        fs::remove_file(entry.path()).unwrap();
                    }
                }
            }
            run = self.run_once(args);
        }
        run
    }

    fn run_once(&self, args: &[&str]) -> Run {
        let started = Instant::now();
        let run = Cmd::new(repo().join("scripts/oe/oe-bitbake.sh"))
            .arg(self.release)
            .arg(&self.dir)
            .args(args)
            .env("OE_TEST_USER", oe_user())
            .env("OE_TEST_HOST_BIN", host_bin())
            .timeout(RUN_TIMEOUT)
            .run();
        eprintln!(
            "{} {}: {} in {:.0} s",
            self.dir.display(),
            args.join(" "),
            run.code,
            started.elapsed().as_secs_f64()
        );
        run
    }

    #[track_caller]
    fn ok(&self, args: &[&str]) -> Run {
        let run = self.run(args);
        if run.code != 0 {
            run.fail(&format!("{} failed", args.join(" ")));
        }
        run
    }

    /// Replaces the test layer's bbappend for `recipe`.
    fn append(&self, recipe: &str, text: &str) {
        let path = self
            .dir
            .join("meta-sota-stage-test/recipes")
            .join(format!("{recipe}.bbappend"));
        if fs::read_to_string(&path).ok().as_deref() != Some(text) {
            write_fresh(&path, text);
        }
    }

    /// Empties the test layer's bbappends (a failed test may have left some).
    fn reset_appends(&self) {
        for recipe in [
            "sota-credentials",
            "sota-credentials-host-native",
            "sota-stage_%",
        ] {
            self.append(recipe, "");
        }
    }

    fn stamps(&self) -> Vec<PathBuf> {
        ["tmp-glibc/stamps", "tmp/stamps"]
            .iter()
            .map(|s| self.dir.join(s))
            .collect()
    }

    /// `bitbake -S none TARGETS`: recipe -> task -> hash, for every task
    /// in the targets' graph.
    #[track_caller]
    fn sigs(&self, targets: &[&str]) -> BTreeMap<String, BTreeMap<String, String>> {
        for stamps in self.stamps() {
            let _ = fs::remove_dir_all(stamps);
        }
        let mut args = vec!["bitbake", "-S", "none"];
        args.extend_from_slice(targets);
        self.ok(&args);
        let mut sigs: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        for (path, name) in self.sigdata_files() {
            let Some((stem, hash)) = name.rsplit_once(".sigdata.") else {
                continue;
            };
            let task = stem.rsplit_once('.').map_or(stem, |(_, t)| t);
            let recipe = path
                .parent()
                .and_then(|p| p.file_name())
                .unwrap()
                .to_string_lossy()
                .into_owned();
            sigs.entry(recipe)
                .or_default()
                .insert(task.to_owned(), hash.to_owned());
        }
        assert!(!sigs.is_empty(), "no sigdata under {:?}", self.stamps());
        sigs
    }

    fn sigdata_files(&self) -> Vec<(PathBuf, String)> {
        let mut files = Vec::new();
        for stamps in self.stamps().iter().filter(|s| s.is_dir()) {
            for (_, entry) in walk(stamps, |_| false) {
                let name = entry.file_name().to_string_lossy().into_owned();
                if entry.file_type().is_file() && name.contains(".sigdata.") {
                    files.push((entry.path().to_owned(), name));
                }
            }
        }
        files
    }

    /// Every sigdata file of the last `sigs`, decompressed.
    fn sigdata_texts(&self) -> Vec<(PathBuf, String)> {
        self.sigdata_files()
            .into_iter()
            .map(|(path, _)| {
                let run = Cmd::new("zstd").arg("-dcq").arg(&path).run();
                run.success();
                (path, run.stdout)
            })
            .collect()
    }

    /// The decompressed sigdata of one task of the last `sigs`.
    fn sigdata(&self, recipe: &str, task: &str) -> serde_json::Value {
        let needle = format!(".{task}.sigdata.");
        let (path, text) = self
            .sigdata_texts()
            .into_iter()
            .find(|(p, _)| {
                p.parent().and_then(|d| d.file_name()).map(|n| n == recipe) == Some(true)
                    && p.to_string_lossy().contains(&needle)
            })
            .unwrap_or_else(|| panic!("no sigdata for {recipe}:{task}"));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    /// `bitbake -g TARGET`: the recipes in its graph.
    fn graph(&self, target: &str) -> BTreeSet<String> {
        self.ok(&["bitbake", "-g", target]);
        fs::read_to_string(self.dir.join("pn-buildlist"))
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

/// Tasks whose hash differs between two `sigs` results, as `recipe:task`,
/// over the recipes in `recipes` (all when empty) that both hold.
fn changed(
    a: &BTreeMap<String, BTreeMap<String, String>>,
    b: &BTreeMap<String, BTreeMap<String, String>>,
    recipes: &[&str],
) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (recipe, tasks) in a {
        if !recipes.is_empty() && !recipes.contains(&recipe.as_str()) {
            continue;
        }
        let Some(other) = b.get(recipe) else { continue };
        for (task, hash) in tasks {
            if other.get(task).is_some_and(|h| h != hash) {
                out.insert(format!("{recipe}:{task}"));
            }
        }
    }
    out
}

fn read_entry(zip: &[u8], name: &str) -> String {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip)).unwrap();
    let mut text = String::new();
    archive
        .by_name(name)
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    text
}

/// The layer parses with meta-updater and meta-openembedded: no error, no
/// warning that names it; meta-updater's five recipes get its bbappends.
fn parses_with_meta_updater(release: &'static str) {
    let oe = Oe::open(release, "layer");
    oe.reset_appends();
    let run = oe.ok(&["bitbake", "-p"]);
    let out = format!("{}{}", run.stdout, run.stderr);
    assert!(!out.contains("ERROR:"), "{out}");
    for line in out.lines().filter(|l| l.contains("WARNING:")) {
        assert!(
            !line.contains("meta-layer-snippets") && !line.contains("sota-stage"),
            "a warning from the layer: {line}"
        );
    }
    let appends = oe.ok(&["bitbake-layers", "show-appends"]).stdout;
    for recipe in SWITCHED {
        assert!(
            appends.contains(&format!(
                "meta-layer-snippets/dynamic-layers/sota/recipes-sota/aktualizr/{recipe}.bbappend"
            )),
            "{recipe}'s bbappend is not applied:\n{appends}"
        );
    }
}

/// Out of the box (the layer added, SOTA_* set, nothing else):
/// sota-credentials resolves, sota-stage-native builds from the checkout
/// around the layer, whose path is in no signature and whose content is.
fn out_of_the_box(release: &'static str) {
    let oe = Oe::open(release, "layer");
    oe.reset_appends();
    let env = oe.ok(&["bitbake", "-e", "sota-credentials"]).stdout;
    assert!(env.contains("\nDEPENDS=\"") && env.contains("sota-stage-native"));
    let graph = oe.graph("sota-credentials");
    assert!(graph.contains("sota-stage-native"), "{graph:?}");
    let env = oe.ok(&["bitbake", "-e", "sota-stage-native"]).stdout;
    let src_uri = env
        .lines()
        .find(|l| l.starts_with("SRC_URI=\""))
        .unwrap()
        .to_owned();
    assert!(
        src_uri.contains("file://src;subdir=sota-stage-0.1.0")
            && src_uri.contains("file://Cargo.lock;subdir=sota-stage-0.1.0"),
        "{src_uri}"
    );

    let checkout = repo().display().to_string();
    let here = oe.sigs(&["sota-stage-native"]);
    let fetch = oe.sigdata("sota-stage-native", "do_fetch");
    let checksums = fetch["file_checksum_values"].to_string();
    assert!(
        checksums.contains("main.rs") && checksums.contains("Cargo.lock"),
        "the checkout's files are in do_fetch's signature: {checksums}"
    );
    for (path, text) in oe.sigdata_texts() {
        let name = path.to_string_lossy();
        if name.contains("/sota-stage-native/") {
            assert!(
                !text.contains(&checkout),
                "the checkout's path is in {name}"
            );
        }
    }

    // The same sources in another folder: the same signatures.
    let copy = TestDir::new();
    for part in ["Cargo.toml", "Cargo.lock", "LICENSE-APACHE", "LICENSE-MIT"] {
        fs::copy(repo().join(part), copy.join(part)).unwrap();
    }
    for part in ["src", "templates"] {
        for (rel, entry) in walk(&repo().join(part), |_| false) {
            let to = copy.join(part).join(rel);
            if entry.file_type().is_dir() {
                fs::create_dir_all(&to).unwrap();
            } else {
                fs::copy(entry.path(), &to).unwrap();
            }
        }
    }
    oe.append(
        "sota-stage_%",
        &format!("SOTA_STAGE_CHECKOUT = \"{}\"\n", copy.path().display()),
    );
    let moved = oe.sigs(&["sota-stage-native"]);
    assert_eq!(
        changed(&here, &moved, &["sota-stage-native"]),
        BTreeSet::new(),
        "the checkout's path is in a signature"
    );
    // Other content: do_fetch and everything after it.
    let main = copy.join("src/main.rs");
    let mut text = fs::read_to_string(&main).unwrap();
    text.push_str("// another line\n");
    write_fresh(&main, text);
    let edited = oe.sigs(&["sota-stage-native"]);
    let diff = changed(&here, &edited, &["sota-stage-native"]);
    for task in ["do_fetch", "do_unpack", "do_compile", "do_install"] {
        assert!(
            diff.contains(&format!("sota-stage-native:{task}")),
            "{task} does not follow the sources: {diff:?}"
        );
    }
    oe.append("sota-stage_%", "");
}

/// Adding the layer changes no signature of meta-updater's recipes, nor of
/// anything they build on.
fn adding_the_layer_changes_no_signature(release: &'static str) {
    let mut targets = vec!["aktualizr"];
    targets.extend(SWITCHED);
    let plain = Oe::open(release, "plain").sigs(&targets);
    let layer = Oe::open(release, "layer");
    layer.reset_appends();
    let with = layer.sigs(&targets);
    assert_eq!(
        plain.keys().collect::<Vec<_>>(),
        with.keys().collect::<Vec<_>>(),
        "the same recipes"
    );
    assert_eq!(changed(&plain, &with, &[]), BTreeSet::new());
    let tasks: usize = plain.values().map(BTreeMap::len).sum();
    assert!(tasks > 500, "only {tasks} tasks compared");
}

/// `DISTRO_FEATURES:append = " sota-stage"` switches meta-updater's five
/// recipes over (they no longer depend on aktualizr) and changes nothing
/// of aktualizr.
fn the_opt_in_switches_meta_updater_over(release: &'static str) {
    let mut targets = vec!["aktualizr"];
    targets.extend(SWITCHED);
    let plain = Oe::open(release, "plain").sigs(&targets);
    let opt_in = Oe::open(release, "opt-in");
    let with = opt_in.sigs(&targets);
    let diff = changed(&plain, &with, &[]);
    for recipe in SWITCHED {
        assert!(
            diff.contains(&format!("{recipe}:do_install")),
            "{recipe} is not switched over: {diff:?}"
        );
    }
    // aktualizr's own build is unchanged; only its tasks that follow its
    // runtime dependencies (meta-updater makes it recommend the switched
    // recipes: do_package_qa, do_package_write_rpm, do_build, runtime SPDX)
    // follow them.
    for task in [
        "do_fetch",
        "do_unpack",
        "do_patch",
        "do_configure",
        "do_compile",
        "do_install",
        "do_package",
        "do_packagedata",
        "do_populate_sysroot",
    ] {
        assert!(
            with["aktualizr"].contains_key(task) && !diff.contains(&format!("aktualizr:{task}")),
            "aktualizr:{task} changed: {diff:?}"
        );
    }
    for recipe in ["aktualizr-shared-prov", "aktualizr-device-prov"] {
        let env = opt_in.ok(&["bitbake", "-e", recipe]).stdout;
        let depends = env.lines().find(|l| l.starts_with("DEPENDS=")).unwrap();
        assert!(
            !depends
                .trim_start_matches("DEPENDS=")
                .trim_matches('"')
                .split_whitespace()
                .any(|d| d == "aktualizr"),
            "{recipe} still depends on aktualizr: {depends}"
        );
    }
}

/// `SOTA_STAGE_TOOL = "host"`: no Rust recipe in the graph; the host tool's
/// version is in the signatures, its path is not; a too old one stops the
/// parse with what to do.
fn host_tool_mode(release: &'static str) {
    let oe = Oe::open(release, "layer");
    oe.reset_appends();
    oe.append("sota-credentials", "SOTA_STAGE_TOOL = \"host\"\n");
    let graph = oe.graph("sota-credentials");
    for rust in RUST {
        assert!(!graph.contains(rust), "{rust} in {graph:?}");
    }
    assert!(graph.contains("sota-credentials"));
    oe.sigs(&["sota-credentials"]);
    let install = oe.sigdata("sota-credentials", "do_install");
    assert_eq!(
        install["varvals"]["SOTA_STAGE_TOOL_VERSION"],
        env!("CARGO_PKG_VERSION"),
        "{}",
        install["varvals"]
    );
    let bin = host_bin().display().to_string();
    for (path, text) in oe.sigdata_texts() {
        assert!(
            !text.contains(&bin),
            "{} names the host tool's path",
            path.display()
        );
    }

    oe.append(
        "sota-credentials",
        "SOTA_STAGE_TOOL = \"host\"\nSOTA_STAGE_HOST_MIN_VERSION = \"99.0\"\n",
    );
    let run = oe.run(&["bitbake", "-e", "sota-credentials"]);
    assert_ne!(run.code, 0);
    let out = format!("{}{}", run.stdout, run.stderr);
    assert!(
        out.contains(&format!(
            "the host's sota-stage is {}, older than 99.0",
            env!("CARGO_PKG_VERSION")
        )) && out.contains("cargo install --path . --locked"),
        "{out}"
    );
    oe.append(
        "sota-credentials",
        "SOTA_STAGE_TOOL = \"host\"\nHOSTTOOLS_DIR = \"/nonexistent\"\n",
    );
    let run = oe.run(&["bitbake", "-e", "sota-credentials"]);
    assert_ne!(run.code, 0);
    let out = format!("{}{}", run.stdout, run.stderr);
    assert!(
        out.contains("SOTA_STAGE_TOOL is \"host\" but the tasks have no sota-stage")
            && out.contains("HOSTTOOLS += \"sota-stage\""),
        "{out}"
    );
    oe.append("sota-credentials", "");
}

/// sota-credentials and sota-credentials-host-native: the archive's content
/// change re-runs from do_sota_check, each side following only its own
/// entries; a move or rename changes nothing; no secret (OAuth2 secret,
/// key text, p12 password) and no input's path in any sigdata.
fn credentials_signatures(release: &'static str) {
    let dir = TestDir::new();
    let pki = Pki::new(&dir);
    let client = pki.client(KeyAlg::Ec, Validity::Normal);
    let p12 = pki.p12(&client, P12_PASSWORD, P12Form::Aes, 1);
    let (targets_pub, targets_sec) = pki.targets_ed25519();
    let url = format!("https://{}.device-gateway.example.test:443", pki.uuid());
    let base = || {
        Creds::typical(&pki)
            .p12(p12.clone())
            .url(&url)
            .file("targets.pub", targets_pub.as_str())
            .file("targets.sec", targets_sec.as_str())
    };
    let password = dir.join("secrets/p12-password");
    write_fresh(&password, format!("{P12_PASSWORD}\n"));
    let archive = dir.join("a/credentials.zip");
    write_fresh(&archive, base().build());
    let oe = Oe::open(release, "layer");
    oe.reset_appends();
    let settings = |archive: &Path| {
        format!(
            "SOTA_STAGE_TOOL = \"host\"\nSOTA_PACKED_CREDENTIALS = \"{}\"\nSOTA_P12_PASSWORD_FILE = \"{}\"\n",
            archive.display(),
            password.display()
        )
    };
    oe.append("sota-credentials", &settings(&archive));
    oe.append("sota-credentials-host-native", &settings(&archive));
    oe.append("sota-stage_%", "");
    let targets = ["sota-credentials", "sota-credentials-host-native"];
    let device = ["sota-credentials"];
    let host = ["sota-credentials-host-native"];
    let first = oe.sigs(&targets);

    // No secret and no input's path in any sigdata file.
    let targets_key = serde_json::from_str::<serde_json::Value>(&targets_sec).unwrap()["keyval"]
        ["private"]
        .as_str()
        .unwrap()
        .to_owned();
    let treehub = read_entry(&base().build(), "treehub.json");
    assert!(treehub.contains(OAUTH2_SECRET));
    let pem_line = client.key_pem().lines().nth(1).unwrap().to_owned();
    let sha = |s: &str| format!("{:x}", Sha256::digest(s.as_bytes()));
    let needles = [
        ("the OAuth2 secret", OAUTH2_SECRET.to_owned()),
        ("targets.sec's key", targets_key.clone()),
        ("the p12 client key", pem_line),
        ("the p12 password", P12_PASSWORD.to_owned()),
        ("the p12 password's sha256", sha(P12_PASSWORD)),
        (
            "the p12 password file's sha256",
            sha(&format!("{P12_PASSWORD}\n")),
        ),
        ("an input's path", dir.path().display().to_string()),
    ];
    let texts = oe.sigdata_texts();
    assert!(texts.len() > 20, "only {} sigdata files", texts.len());
    for (path, text) in &texts {
        for (what, needle) in &needles {
            assert!(
                !text.contains(needle.as_str()),
                "{what} is in {}",
                path.display()
            );
        }
    }

    // The same bytes moved and renamed: no signature changes.
    let moved = dir.join("elsewhere/renamed.zip");
    fs::create_dir_all(moved.parent().unwrap()).unwrap();
    fs::rename(&archive, &moved).unwrap();
    oe.append("sota-credentials", &settings(&moved));
    oe.append("sota-credentials-host-native", &settings(&moved));
    let after_move = oe.sigs(&targets);
    assert_eq!(
        changed(&first, &after_move, &[]),
        BTreeSet::new(),
        "a move changed signatures"
    );

    // Host-only content (treehub.json's OAuth2 secret, targets.sec): no
    // device signature changes; the host recipe re-runs from its check on.
    let from_check = |sigs: &BTreeMap<String, BTreeMap<String, String>>, recipe: &str| {
        let diff = changed(&first, sigs, &[recipe]);
        for task in ["do_sota_check", "do_install", "do_build"] {
            assert!(
                diff.contains(&format!("{recipe}:{task}")),
                "{recipe}:{task} not in {diff:?}"
            );
        }
        for task in [
            "do_fetch",
            "do_unpack",
            "do_patch",
            "do_prepare_recipe_sysroot",
        ] {
            assert!(
                !diff.contains(&format!("{recipe}:{task}")),
                "{recipe}:{task} in {diff:?}"
            );
        }
    };
    let (_, other_sec) = pki.targets_ed25519();
    let variants: [(&str, Vec<u8>); 2] = [
        (
            "treehub.json",
            base()
                .treehub_json(&treehub.replace(OAUTH2_SECRET, "TEST-ONLY-rotated-secret"))
                .build(),
        ),
        (
            "targets.sec",
            base().file("targets.sec", other_sec.as_str()).build(),
        ),
    ];
    for (what, bytes) in variants {
        write_fresh(&moved, bytes);
        let sigs = oe.sigs(&targets);
        assert_eq!(
            changed(&first, &sigs, &device),
            BTreeSet::new(),
            "a change of {what} changed device signatures"
        );
        from_check(&sigs, host[0]);
    }

    // Device content (autoprov.url, the p12): the device recipe re-runs from
    // do_sota_check on; the host recipe never gets them.
    let other_p12 = pki.p12(
        &pki.client(KeyAlg::Ec, Validity::Normal),
        P12_PASSWORD,
        P12Form::Aes,
        1,
    );
    let variants: [(&str, Vec<u8>); 2] = [
        (
            "autoprov.url",
            base()
                .url(&format!(
                    "https://{}.other-gateway.example.test:443",
                    pki.uuid()
                ))
                .build(),
        ),
        ("the p12", base().p12(other_p12).build()),
    ];
    for (what, bytes) in variants {
        write_fresh(&moved, bytes);
        let sigs = oe.sigs(&targets);
        assert_eq!(
            changed(&first, &sigs, &host),
            BTreeSet::new(),
            "a change of {what} changed host signatures"
        );
        from_check(&sigs, device[0]);
    }
    oe.append("sota-credentials", "");
    oe.append("sota-credentials-host-native", "");
}

/// The image QA class `sota-stage-audit` with OE-core's real image classes:
/// an image recipe with `IMAGE_CLASSES += "sota-stage-audit"` parses, gets
/// `do_sota_audit` after `do_rootfs` and before `do_image`, reads the
/// archive's content through `file-checksums` (the path excluded from the
/// signature), and builds on `sota-stage-native`; with `SOTA_STAGE_TOOL =
/// "host"` it does not, the host tool's version is in `do_sota_audit`'s
/// signature, and a too old tool stops the parse. `bitbake-getvar` parses
/// only the recipe: the image's own graph (kernel, rootfs tools) is masked.
fn audit_class_in_an_image(release: &'static str) {
    let oe = Oe::open(release, "layer");
    oe.reset_appends();
    let recipe = oe
        .dir
        .join("meta-sota-stage-test/recipes/sota-audit-test-image.bb");
    let text = "SUMMARY = \"An image the sota-stage-audit class checks (tests/oe.rs)\"\n\
                LICENSE = \"MIT\"\n\
                IMAGE_CLASSES += \"sota-stage-audit\"\n\
                IMAGE_INSTALL = \"sota-credentials\"\n\
                IMAGE_LINGUAS = \"\"\n\
                inherit core-image\n";
    if fs::read_to_string(&recipe).ok().as_deref() != Some(text) {
        write_fresh(&recipe, text);
    }
    // Its settings (a failed run may have left some); never without the
    // recipe, which would make it a dangling bbappend.
    oe.append("sota-audit-test-image", "");
    let value = |args: &[&str]| {
        let mut all = vec!["bitbake-getvar", "-r", "sota-audit-test-image", "--value"];
        all.extend_from_slice(args);
        let run = oe.ok(&all);
        assert!(!run.stderr.contains("ERROR"), "{}", run.stderr);
        run.stdout.trim().to_owned()
    };
    let tasks = value(&["__BBTASKS"]);
    assert!(tasks.contains("'do_sota_audit'"), "{tasks}");
    assert_eq!(value(&["-f", "deps", "do_sota_audit"]), "['do_rootfs']");
    let image = value(&["-f", "deps", "do_image"]);
    assert!(image.contains("'do_sota_audit'"), "{image}");
    let archive = repo().join("examples/credentials.zip");
    assert_eq!(
        value(&["-f", "file-checksums", "do_sota_audit"]),
        format!("{}:True", archive.display())
    );
    let excluded = value(&["-f", "vardepsexclude", "do_sota_audit"]);
    assert!(
        excluded
            .split_whitespace()
            .any(|v| v == "SOTA_PACKED_CREDENTIALS"),
        "{excluded}"
    );
    let depends = value(&["DEPENDS"]);
    assert!(
        depends.split_whitespace().any(|d| d == "sota-stage-native"),
        "{depends}"
    );
    let audit = value(&["do_sota_audit"]);
    assert!(
        audit.contains("sota-stage audit") && audit.contains("--credentials"),
        "{audit}"
    );

    // Host-tool mode: no sota-stage-native (so no Rust), the tool's version
    // in the task's signature.
    oe.append("sota-audit-test-image", "SOTA_STAGE_TOOL = \"host\"\n");
    let depends = value(&["DEPENDS"]);
    assert!(
        !depends.split_whitespace().any(|d| d == "sota-stage-native"),
        "{depends}"
    );
    let vardeps = value(&["-f", "vardeps", "do_sota_audit"]);
    assert!(
        vardeps
            .split_whitespace()
            .any(|v| v == "SOTA_STAGE_TOOL_VERSION"),
        "{vardeps}"
    );
    assert_eq!(
        value(&["SOTA_STAGE_TOOL_VERSION"]),
        env!("CARGO_PKG_VERSION")
    );
    oe.append(
        "sota-audit-test-image",
        "SOTA_STAGE_TOOL = \"host\"\nSOTA_STAGE_HOST_MIN_VERSION = \"99.0\"\n",
    );
    let run = oe.run(&[
        "bitbake-getvar",
        "-r",
        "sota-audit-test-image",
        "--value",
        "DEPENDS",
    ]);
    assert_ne!(run.code, 0);
    let out = format!("{}{}", run.stdout, run.stderr);
    assert!(
        out.contains(&format!(
            "SOTA_STAGE_TOOL is \"host\" but the host's sota-stage is {}, older than 99.0",
            env!("CARGO_PKG_VERSION")
        )),
        "{out}"
    );
    oe.append("sota-audit-test-image", "");
}

/// The class's audits of what meta-updater's image types make, with the
/// real OE-core and meta-updater classes (`image_types_ostree`,
/// `image_types_ota`, OE-core's `wic` and conversions): an image of
/// `ostreecommit ostreepush garagesign ota-ext4 wic.gz ext4.xz` gets
/// `do_sota_audit_ostree` after `do_image_ostreecommit` and before
/// `do_image_ostreepush`, `do_image_garagesign` and `do_image_complete`,
/// under meta-updater's `${OSTREE_REPO}/ostree.lock`, auditing the commit
/// named in `${WORKDIR}/ostree_manifest`; and `do_sota_audit_images` after
/// the image types it reads (the compressed ones by their base type) and
/// before `do_image_complete`. The archive and each
/// `SOTA_STAGE_AUDIT_SECRET_FILES` file are in every audit task's
/// signature by content (`file-checksums`), never by path. meta-updater's
/// image types need `usrmerge`, which its distro sets: the recipe adds it.
/// What the tasks' shell does is run for real by tests/bitbake_audit.rs
/// (a real OSTree repository and real images); a real image build needs
/// natives that cannot be built offline.
fn audit_class_with_meta_updater_images(release: &'static str) {
    let oe = Oe::open(release, "layer");
    oe.reset_appends();
    let recipe = oe
        .dir
        .join("meta-sota-stage-test/recipes/sota-audit-ota-image.bb");
    let text = "SUMMARY = \"An OTA image the sota-stage-audit class checks (tests/oe.rs)\"\n\
                LICENSE = \"MIT\"\n\
                DISTRO_FEATURES:append = \" usrmerge\"\n\
                IMAGE_CLASSES += \"image_types_ostree image_types_ota sota-stage-audit\"\n\
                IMAGE_INSTALL = \"sota-credentials\"\n\
                IMAGE_LINGUAS = \"\"\n\
                inherit core-image\n\
                IMAGE_FSTYPES = \"ostreecommit ostreepush garagesign ota-ext4 wic.gz ext4.xz\"\n";
    if fs::read_to_string(&recipe).ok().as_deref() != Some(text) {
        write_fresh(&recipe, text);
    }
    let secret = oe.dir.join("meta-sota-stage-test/fleet-ca.key");
    if !secret.exists() {
        write_fresh(&secret, "TEST-ONLY not a key\n");
    }
    oe.append(
        "sota-audit-ota-image",
        &format!("SOTA_STAGE_AUDIT_SECRET_FILES = \"{}\"\n", secret.display()),
    );
    let value = |args: &[&str]| {
        let mut all = vec!["bitbake-getvar", "-r", "sota-audit-ota-image", "--value"];
        all.extend_from_slice(args);
        let run = oe.ok(&all);
        assert!(!run.stderr.contains("ERROR"), "{}", run.stderr);
        run.stdout.trim().to_owned()
    };
    let deps = |task: &str| -> BTreeSet<String> {
        value(&["-f", "deps", task])
            .trim_matches(|c| c == '[' || c == ']')
            .split(',')
            .map(|t| t.trim().trim_matches('\'').to_owned())
            .filter(|t| !t.is_empty())
            .collect()
    };
    let has = |set: &BTreeSet<String>, task: &str| set.contains(task);

    // The OSTree commit: after it is made, before it is pushed or signed.
    assert_eq!(
        deps("do_sota_audit_ostree"),
        BTreeSet::from(["do_image_ostreecommit".to_owned()])
    );
    for later in [
        "do_image_ostreepush",
        "do_image_garagesign",
        "do_image_complete",
    ] {
        let d = deps(later);
        assert!(has(&d, "do_sota_audit_ostree"), "{later}: {d:?}");
    }
    assert_eq!(
        value(&["-f", "lockfiles", "do_sota_audit_ostree"]).trim(),
        "${OSTREE_REPO}/ostree.lock"
    );
    assert_eq!(
        value(&["-f", "lockfiles", "do_image_ostreecommit"]).trim(),
        "${OSTREE_REPO}/ostree.lock",
        "meta-updater's own lock, which the audit must share"
    );
    let body = value(&["do_sota_audit_ostree"]);
    assert!(
        body.contains("--ostree-ref") && body.contains("/ostree_manifest"),
        "{body}"
    );

    // The image files: after the types it reads, before do_image_complete.
    assert_eq!(
        deps("do_sota_audit_images"),
        BTreeSet::from(["do_image_ext4", "do_image_ota_ext4", "do_image_wic"].map(str::to_owned))
    );
    assert!(has(&deps("do_image_complete"), "do_sota_audit_images"));
    assert_eq!(
        value(&["SOTA_STAGE_AUDIT_IMAGES"]),
        "ota-ext4 wic.gz ext4.xz"
    );

    // Every audit task: the archive and the secret file by content, their
    // paths out of the signature.
    let archive = repo().join("examples/credentials.zip");
    for task in [
        "do_sota_audit",
        "do_sota_audit_ostree",
        "do_sota_audit_images",
    ] {
        let sums: BTreeSet<String> = value(&["-f", "file-checksums", task])
            .split_whitespace()
            .map(str::to_owned)
            .collect();
        assert_eq!(
            sums,
            BTreeSet::from([
                format!("{}:True", archive.display()),
                format!("{}:True", secret.display())
            ]),
            "{task}"
        );
        let excluded = value(&["-f", "vardepsexclude", task]);
        for var in ["SOTA_PACKED_CREDENTIALS", "SOTA_STAGE_AUDIT_SECRET_FILES"] {
            assert!(
                excluded.split_whitespace().any(|v| v == var),
                "{task}: {excluded}"
            );
        }
    }

    // Without meta-updater's types there is nothing more to audit.
    oe.append("sota-audit-ota-image", "IMAGE_FSTYPES = \"tar.bz2\"\n");
    let tasks = value(&["__BBTASKS"]);
    assert!(tasks.contains("'do_sota_audit'"), "{tasks}");
    assert!(!tasks.contains("do_sota_audit_ostree"), "{tasks}");
    assert!(!tasks.contains("do_sota_audit_images"), "{tasks}");
    oe.append("sota-audit-ota-image", "");
}

macro_rules! release_tests {
    ($release:ident) => {
        mod $release {
            #[test]
            #[ignore = "needs OE_TEST_USER"]
            fn parses_with_meta_updater() {
                super::parses_with_meta_updater(stringify!($release));
            }
            #[test]
            #[ignore = "needs OE_TEST_USER"]
            fn out_of_the_box() {
                super::out_of_the_box(stringify!($release));
            }
            #[test]
            #[ignore = "needs OE_TEST_USER"]
            fn adding_the_layer_changes_no_signature() {
                super::adding_the_layer_changes_no_signature(stringify!($release));
            }
            #[test]
            #[ignore = "needs OE_TEST_USER"]
            fn the_opt_in_switches_meta_updater_over() {
                super::the_opt_in_switches_meta_updater_over(stringify!($release));
            }
            #[test]
            #[ignore = "needs OE_TEST_USER"]
            fn host_tool_mode() {
                super::host_tool_mode(stringify!($release));
            }
            #[test]
            #[ignore = "needs OE_TEST_USER"]
            fn credentials_signatures() {
                super::credentials_signatures(stringify!($release));
            }
            #[test]
            #[ignore = "needs OE_TEST_USER"]
            fn audit_class_with_meta_updater_images() {
                super::audit_class_with_meta_updater_images(stringify!($release));
            }
            #[test]
            #[ignore = "needs OE_TEST_USER"]
            fn audit_class_in_an_image() {
                super::audit_class_in_an_image(stringify!($release));
            }
        }
    };
}

release_tests!(scarthgap);
release_tests!(wrynose);
