//! The BitBake the harness tests drive, named by `BITBAKE`, and the
//! repository they build layers from; a build folder of stand-in layers and
//! the real meta-layer-snippets ([`Build`]) and what a run of it did
//! ([`Outcome`]), for `tests/bitbake*.rs`.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

use super::dir::TestDir;
use super::sota::Cmd;
use super::tree::copy_tree;

/// The `bitbake` named by `BITBAKE`. Fails the test when there is none:
/// the tests that call it are ignored unless asked for, and once asked for
/// they must run. `test` names the test file, for the hint.
#[track_caller]
pub fn bitbake(test: &str) -> PathBuf {
    let how = format!(
        "BITBAKE=<your Yocto checkout>/bitbake/bin/bitbake \
         cargo test --locked --test {test} -- --include-ignored \
         (CI uses ../shared/tools/bitbake/setup.sh, see .ci/run)"
    );
    let path = std::env::var_os("BITBAKE")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| panic!("BITBAKE is not set: this test needs a bitbake; run {how}"));
    assert!(
        path.is_file(),
        "BITBAKE={} is not a file; run {how}",
        path.display()
    );
    path
}

/// The checkout the tests run in.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `bitbake` (from [`bitbake`]) on `targets` in the build folder
/// `dir/build`, after writing its `conf/local.conf` from `conf` (`NAME =
/// "VALUE"` lines), with bitbake's own folder first on PATH, a UTF-8
/// locale, and none of a developer's own bitbake environment (an
/// oe-init-build-env shell), for at most 4 minutes. Returns the exit code
/// and the output, which it also keeps in `build/last-run.log` for a
/// post-mortem with KEEP_TEST_DIRS.
pub fn run_bitbake<'a>(
    bitbake: &Path,
    dir: &TestDir,
    conf: impl IntoIterator<Item = (&'a String, &'a String)>,
    targets: &[&str],
) -> (i32, String) {
    let local: String = conf
        .into_iter()
        .map(|(k, v)| format!("{k} = \"{v}\"\n"))
        .collect();
    dir.write("build/conf/local.conf", local);
    let bindir = bitbake.parent().unwrap();
    let path = format!(
        "{}:{}",
        bindir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let started = Instant::now();
    let run = [
        "BBPATH",
        "BBSERVER",
        "BB_ENV_PASSTHROUGH_ADDITIONS",
        "BB_ENV_PASSTHROUGH",
        "BUILDDIR",
    ]
    .into_iter()
    .fold(Cmd::new(bitbake), Cmd::env_remove)
    .args(targets)
    .current_dir(dir.join("build"))
    .env("PATH", path)
    .env("LANG", "C.UTF-8")
    .env("LC_ALL", "C.UTF-8")
    .timeout(Duration::from_secs(240))
    .run();
    eprintln!(
        "bitbake {}: {:.1} s",
        targets.join(" "),
        started.elapsed().as_secs_f64()
    );
    let log = format!("{}{}", run.stdout, run.stderr);
    dir.write("build/last-run.log", &log);
    (run.code, log)
}

/// Writes `bytes` to `path` (making its folders) and dates it `when`:
/// BitBake's caches key files on their mtime, so a test that rewrites an
/// input gives it a time no earlier write had.
pub fn write_dated(path: &Path, bytes: impl AsRef<[u8]>, when: SystemTime) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, bytes).unwrap();
    fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(when)
        .unwrap();
}

/// A build folder of the harness: the layers, a `conf/bblayers.conf` naming
/// them, and the local.conf settings each run writes ([`run_bitbake`]).
pub struct Build {
    pub dir: TestDir,
    bitbake: PathBuf,
    pub conf: BTreeMap<String, String>,
}

impl Build {
    /// `layers` are folders of the repository, in BBLAYERS order: those
    /// under `tests/` (the stand-ins) are copied into the test folder, the
    /// others (the real `meta-layer-snippets`) are used where they are. The
    /// local.conf starts with `SOTA_STAGE_TEST_BINARY`, the binary cargo built.
    pub fn new(bitbake: &Path, layers: &[&str]) -> Build {
        let dir = TestDir::new();
        let layers: Vec<String> = layers
            .iter()
            .map(|rel| {
                let src = repo().join(rel);
                let at = if rel.starts_with("tests/") {
                    let to = dir.join(src.file_name().unwrap());
                    copy_tree(&src, &to);
                    to
                } else {
                    src
                };
                at.display().to_string()
            })
            .collect();
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
        Build {
            dir,
            bitbake: bitbake.to_owned(),
            conf,
        }
    }

    /// Sets `key` in local.conf for the next runs.
    pub fn set(&mut self, key: &str, value: impl AsRef<Path>) {
        self.conf
            .insert(key.into(), value.as_ref().display().to_string());
    }

    /// A path under the test's `inputs` folder, outside the build folder.
    pub fn input(&self, rel: &str) -> PathBuf {
        self.dir.join("inputs").join(rel)
    }

    /// The build folder (TOPDIR).
    pub fn top(&self) -> PathBuf {
        self.dir.join("build")
    }

    /// `${D}` of the recipe whose work folder is `pf` (`name-version-revision`).
    pub fn image(&self, pf: &str) -> PathBuf {
        self.top().join("tmp/work").join(pf).join("image")
    }

    /// Where the stand-in's native sysroot holds the host files.
    pub fn host_files(&self) -> PathBuf {
        self.top().join("tmp/sysroots/native/usr/share/sota-stage")
    }

    /// Runs bitbake on `targets` with the current local.conf.
    pub fn run(&self, targets: &[&str]) -> Outcome {
        let (code, log) = run_bitbake(&self.bitbake, &self.dir, &self.conf, targets);
        Outcome {
            what: format!("bitbake {}", targets.join(" ")),
            success: code == 0,
            ran: ran_tasks(&log),
            log,
        }
    }

    /// The decompressed JSON of the newest signature file of `pf`'s `task`.
    pub fn sigdata(&self, pf: &str, task: &str) -> serde_json::Value {
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

    /// `bitbake -g TARGET`: the recipes of its graph, in `pn-buildlist` order.
    pub fn graph(&self, target: &str) -> Vec<String> {
        self.run(&["-g", target]).ok();
        fs::read_to_string(self.top().join("pn-buildlist"))
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

/// A file bitbake compressed with zstd (signature files), decompressed.
pub fn zstd_decompress(path: &Path) -> Vec<u8> {
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

/// One run of bitbake: whether it succeeded, the tasks it ran, its output.
/// The checks panic with the end of the output.
pub struct Outcome {
    pub what: String,
    pub success: bool,
    pub ran: BTreeSet<String>,
    pub log: String,
}

impl Outcome {
    #[track_caller]
    pub fn fail(&self, why: &str) -> ! {
        let lines: Vec<&str> = self.log.lines().collect();
        let tail = lines[lines.len().saturating_sub(120)..].join("\n");
        panic!(
            "{}: {why}\ntasks run: {:?}\n--- bitbake output (end) ---\n{tail}\n--- end ---",
            self.what, self.ran
        )
    }

    #[track_caller]
    pub fn ok(&self) -> &Outcome {
        if !self.success {
            self.fail("bitbake failed");
        }
        self
    }

    #[track_caller]
    pub fn failed(&self) -> &Outcome {
        if self.success {
            self.fail("bitbake succeeded, but it should have failed");
        }
        self
    }

    #[track_caller]
    pub fn log_has(&self, needle: &str) -> &Outcome {
        if !self.log.contains(needle) {
            self.fail(&format!("the output lacks {needle:?}"));
        }
        self
    }

    #[track_caller]
    pub fn log_lacks(&self, needle: &str) -> &Outcome {
        if self.log.contains(needle) {
            self.fail(&format!("the output has {needle:?}"));
        }
        self
    }

    #[track_caller]
    pub fn ran_nothing(&self) -> &Outcome {
        if !self.ran.is_empty() {
            self.fail("expected no task to run");
        }
        self
    }

    #[track_caller]
    pub fn ran_exactly(&self, expected: &BTreeSet<String>) -> &Outcome {
        if &self.ran != expected {
            let extra: Vec<_> = self.ran.difference(expected).collect();
            let missing: Vec<_> = expected.difference(&self.ran).collect();
            self.fail(&format!(
                "ran other tasks than expected: extra {extra:?}, missing {missing:?}"
            ));
        }
        self
    }

    /// Whether a task named `task` (`do_x`, of any recipe) ran with a
    /// "Running task" line: noexec tasks do not count.
    pub fn ran_task(&self, task: &str) -> bool {
        self.log
            .lines()
            .any(|l| l.contains("Running task") && l.contains(&format!(":{task})")))
    }

    #[track_caller]
    pub fn task_ran(&self, task: &str) -> &Outcome {
        if !self.ran_task(task) {
            self.fail(&format!("{task} did not run"));
        }
        self
    }

    #[track_caller]
    pub fn task_not_run(&self, task: &str) -> &Outcome {
        if self.ran_task(task) {
            self.fail(&format!("{task} ran"));
        }
        self
    }
}
