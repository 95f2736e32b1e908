//! The shared fixtures beside the checkout, `../shared/fixtures/upstream`,
//! found from the crate's folder and used unchanged. The unit tests include
//! this file too (`src/test_support.rs`).

use std::path::{Path, PathBuf};

/// `rel` under `../shared/fixtures/upstream` beside the crate. Fails the test
/// with the path it looked at when it is missing: a missing fixture is never
/// a skipped test.
#[track_caller]
pub fn upstream_path(rel: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/fixtures/upstream")
        .join(rel);
    assert!(
        path.exists(),
        "upstream fixture not found: `{}` does not exist; check out `shared` beside the crate",
        path.display()
    );
    path
}

/// The upstream sample archive `name` (`credentials/`).
#[track_caller]
pub fn upstream(name: &str) -> PathBuf {
    upstream_path(&format!("credentials/{name}"))
}

/// aktualizr's example config `name` (`aktualizr-config/`); "" for the
/// folder.
#[track_caller]
pub fn upstream_config(name: &str) -> PathBuf {
    upstream_path(&format!("aktualizr-config/{name}"))
}
