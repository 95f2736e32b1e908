//! The BitBake the harness tests drive, named by `BITBAKE`, and the
//! repository they build layers from.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::dir::TestDir;
use super::sota::Cmd;

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
