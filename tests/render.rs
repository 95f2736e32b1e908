//! `sota-stage render`: every fragment against its snapshot, the values that
//! must be refused rather than mangled, secrets kept off standard output,
//! and the fragments compared with aktualizr's own example configs.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::*;

/// Compares `actual` with `tests/snapshots/<name>` byte for byte; with
/// `UPDATE_SNAPSHOTS=1` rewrites it instead. A missing snapshot fails.
#[track_caller]
fn assert_snapshot(name: &str, actual: &[u8]) {
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

/// `render` to a file; returns its bytes and mode.
fn render_to_file(dir: &TestDir, args: &[&str]) -> (Vec<u8>, u32) {
    use std::os::unix::fs::PermissionsExt;
    let out: PathBuf = dir.join("fragment.toml");
    let _ = fs::remove_file(&out);
    sota(["render"])
        .args(args)
        .arg("--output")
        .arg(&out)
        .run()
        .success();
    let mode = fs::metadata(&out).unwrap().permissions().mode() & 0o7777;
    (fs::read(&out).unwrap(), mode)
}

#[test]
fn device_cred_fragments_render() {
    // aktualizr reads the [import] file names relative to base_path: the
    // templates once wrote them with the absolute-path helper, so neither
    // device-credential method could be rendered or staged at all.
    let run = sota(["render", "--method", "device-cred"]).run();
    run.success();
    assert_snapshot("20-sota-device-cred.toml", run.stdout.as_bytes());
    let dir = TestDir::new();
    let (hsm, mode) = render_to_file(&dir, &["--method", "device-cred-hsm"]);
    assert_eq!(mode, 0o600, "the HSM fragment holds the PIN");
    assert_snapshot("20-sota-device-cred-hsm.toml", &hsm);
}
