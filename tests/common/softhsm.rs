//! SoftHSM 2 tokens of a test's own: the configuration file that points
//! `SOFTHSM2_CONF` at a token folder in the test's folder.

use std::path::PathBuf;

use super::dir::TestDir;

/// A new token folder `dir/tokens` and the SoftHSM configuration file
/// `dir/softhsm2.conf` that keeps its tokens there (file backend, errors
/// only in the log); returns the configuration file.
#[track_caller]
pub fn softhsm2_conf(dir: &TestDir, tokens: &str) -> PathBuf {
    let tokens = dir.mkdir(tokens);
    dir.write(
        "softhsm2.conf",
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
            tokens.display()
        ),
    )
}
