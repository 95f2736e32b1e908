//! The BitBake the harness tests drive, named by `BITBAKE`, and the
//! repository they build layers from.

use std::path::PathBuf;

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
