//! Snapshots of what users read (fragments, manifests), compared byte for
//! byte with files under `tests/snapshots/`.

#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::Path;

/// Compares `actual` with `tests/snapshots/<name>` byte for byte; with
/// `UPDATE_SNAPSHOTS=1` rewrites it instead. A missing snapshot fails.
#[track_caller]
pub fn assert_snapshot(name: &str, actual: &[u8]) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/snapshots")
        .join(name);
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some_and(|v| v == "1") {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, actual).unwrap();
        return;
    }
    let expected = fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "snapshot `{}` cannot be read ({e}); run with UPDATE_SNAPSHOTS=1 and review the new file",
            path.display()
        )
    });
    assert!(
        expected == actual,
        "snapshot `{name}` differs (UPDATE_SNAPSHOTS=1 rewrites it)\n--- expected ---\n{}\n--- actual ---\n{}",
        String::from_utf8_lossy(&expected),
        String::from_utf8_lossy(actual)
    );
}
