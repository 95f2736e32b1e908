//! The real OpenEmbedded-Core build folders of `tests/oe.rs` and
//! `tests/oe_audit.rs` (that file's opening comment tells them): [`Oe`], one
//! folder made by `scripts/oe/oe-build-dir.sh` and held by one test at a
//! time, bitbake run in it as `OE_TEST_USER`, its signatures read back;
//! [`changed`] compares two sets of signatures.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use super::harness::{repo, write_dated};
use super::sota::{Cmd, Run};
use super::tree::walk;

/// How to run the test file that uses this (`CARGO_CRATE_NAME`, its name).
const HOW: &str = concat!(
    "OE_TEST_USER=oe cargo test --locked --test ",
    env!("CARGO_CRATE_NAME"),
    " -- --ignored, as root, with the user and the Debian packages that .ci/run installs"
);
/// A cold parse takes about 5 minutes here, more when the machine is busy.
const RUN_TIMEOUT: Duration = Duration::from_secs(40 * 60);

#[track_caller]
fn oe_user() -> String {
    std::env::var("OE_TEST_USER")
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| panic!("OE_TEST_USER is not set: run {HOW}"))
}

/// The folder whose `sota-stage` is the host tool: the binary cargo built.
pub fn host_bin() -> PathBuf {
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

/// Writes `bytes` to `path` with a modification time no earlier write of
/// this test run (or of an earlier run) has: BitBake's parse cache keys
/// files on their mtime.
pub fn write_fresh(path: &Path, bytes: impl AsRef<[u8]>) {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    write_dated(
        path,
        bytes,
        SystemTime::now() + Duration::from_secs(2 * n + 2),
    );
}

/// Asserts that `diff` (`recipe:task`, from [`changed`]) holds each of
/// `recipe`'s `tasks` (`want`: their signatures changed) or none of them.
#[track_caller]
pub fn assert_tasks_changed(diff: &BTreeSet<String>, recipe: &str, tasks: &[&str], want: bool) {
    for task in tasks {
        let name = format!("{recipe}:{task}");
        let what = if want { "did not change" } else { "changed" };
        assert_eq!(diff.contains(&name), want, "{name} {what}: {diff:?}");
    }
}

/// Writes `text` to `path` with [`write_fresh`] unless it holds it already.
fn write_if_changed(path: &Path, text: &str) {
    if fs::read_to_string(path).ok().as_deref() != Some(text) {
        write_fresh(path, text);
    }
}

const KINDS: [&str; 3] = ["plain", "layer", "opt-in"];
const RELEASES: [&str; 2] = ["scarthgap", "wrynose"];

/// One build folder, held by one test at a time.
pub struct Oe {
    release: &'static str,
    pub dir: PathBuf,
    _guard: MutexGuard<'static, ()>,
}

impl Oe {
    #[track_caller]
    pub fn open(release: &'static str, kind: &'static str) -> Oe {
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
    pub fn run(&self, args: &[&str]) -> Run {
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
    pub fn ok(&self, args: &[&str]) -> Run {
        let run = self.run(args);
        if run.code != 0 {
            run.fail(&format!("{} failed", args.join(" ")));
        }
        run
    }

    /// Runs `args`, which must fail: the output, stdout then stderr.
    #[track_caller]
    pub fn fails(&self, args: &[&str]) -> String {
        let run = self.run(args);
        assert_ne!(run.code, 0, "{} succeeded", args.join(" "));
        format!("{}{}", run.stdout, run.stderr)
    }

    /// Replaces the test layer's bbappend for `recipe`.
    pub fn append(&self, recipe: &str, text: &str) {
        let path = self
            .dir
            .join("meta-sota-stage-test/recipes")
            .join(format!("{recipe}.bbappend"));
        write_if_changed(&path, text);
    }

    /// Writes the test layer's recipe `name` (`name.bb`), unless it holds
    /// `text` already (a new mtime makes BitBake parse it again); its path.
    pub fn recipe(&self, name: &str, text: &str) -> PathBuf {
        let path = self
            .dir
            .join("meta-sota-stage-test/recipes")
            .join(format!("{name}.bb"));
        write_if_changed(&path, text);
        path
    }

    /// `bitbake-getvar -r RECIPE --value ARGS`, which must succeed without
    /// an error: the value, trimmed.
    #[track_caller]
    pub fn getvar(&self, recipe: &str, args: &[&str]) -> String {
        let mut all = vec!["bitbake-getvar", "-r", recipe, "--value"];
        all.extend_from_slice(args);
        let run = self.ok(&all);
        assert!(!run.stderr.contains("ERROR"), "{}", run.stderr);
        run.stdout.trim().to_owned()
    }

    /// Empties the test layer's bbappends (a failed test may have left some).
    pub fn reset_appends(&self) {
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
    pub fn sigs(&self, targets: &[&str]) -> BTreeMap<String, BTreeMap<String, String>> {
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
    pub fn sigdata_texts(&self) -> Vec<(PathBuf, String)> {
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
    pub fn sigdata(&self, recipe: &str, task: &str) -> serde_json::Value {
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
    pub fn graph(&self, target: &str) -> BTreeSet<String> {
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
pub fn changed(
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

/// The tests of each release, a module named after it: for each name, an
/// ignored test that calls the test file's function of that name with the
/// release, `release_tests!(scarthgap, wrynose: [out_of_the_box, ...])`.
/// Only the real-OE-core test files use it.
#[allow(unused_macros)]
macro_rules! release_tests {
    ($($release:ident),+ : $names:tt) => {
        $(release_tests!(@one $release $names);)+
    };
    (@one $release:ident [$($name:ident),+ $(,)?]) => {
        mod $release {
            $(
                #[test]
                #[ignore = "needs OE_TEST_USER"]
                fn $name() {
                    super::$name(stringify!($release));
                }
            )+
        }
    };
}
pub(crate) use release_tests;
