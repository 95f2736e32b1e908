//! The bitbake recipe builds with `--frozen` from the crates listed in
//! `meta-layer-snippets/recipes-sota/sota-stage/sota-stage-crates.inc`: the
//! list must be exactly Cargo.lock's, and the recipe's version Cargo.toml's.
//! `scripts/gen-crates-inc.py --check` decides; this test runs it.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::path::Path;

use common::TestDir;
use std::process::Command;

const REGENERATE: &str = "python3 scripts/gen-crates-inc.py";

#[test]
fn the_recipe_lists_exactly_the_crates_of_cargo_lock() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new("python3")
        .arg(root.join("scripts/gen-crates-inc.py"))
        .arg("--check")
        .current_dir(root)
        .output()
        .unwrap_or_else(|e| panic!("cannot run python3 (the test needs it): {e}"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Warnings (a licence file the recipe names that is not in the tree yet)
    // are shown, not failed on.
    if !stderr.is_empty() {
        eprintln!("{stderr}");
    }
    assert!(
        out.status.success(),
        "the sota-stage recipe is stale; regenerate the crate list with `{REGENERATE}` \
         and commit it:\n{stderr}"
    );
}

#[test]
fn the_check_catches_a_stale_list() {
    // A copy of the tree whose Cargo.lock has one crate more: --check fails
    // and names the command that fixes it.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = TestDir::new();
    let copy = dir.path();
    let recipe_dir = copy.join("meta-layer-snippets/recipes-sota/sota-stage");
    std::fs::create_dir_all(&recipe_dir).unwrap();
    let src_dir = root.join("meta-layer-snippets/recipes-sota/sota-stage");
    for entry in std::fs::read_dir(&src_dir).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), recipe_dir.join(entry.file_name())).unwrap();
    }
    std::fs::copy(root.join("Cargo.toml"), copy.join("Cargo.toml")).unwrap();
    let mut lock = std::fs::read_to_string(root.join("Cargo.lock")).unwrap();
    lock.push_str(
        "\n[[package]]\nname = \"zzz-new-crate\"\nversion = \"1.2.3\"\n\
         source = \"registry+https://github.com/rust-lang/crates.io-index\"\n\
         checksum = \"0000000000000000000000000000000000000000000000000000000000000000\"\n",
    );
    std::fs::write(copy.join("Cargo.lock"), lock).unwrap();

    let out = Command::new("python3")
        .arg(root.join("scripts/gen-crates-inc.py"))
        .args(["--check", "--root"])
        .arg(copy)
        .output()
        .unwrap_or_else(|e| panic!("cannot run python3 (the test needs it): {e}"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("is stale"), "{stderr}");
    assert!(stderr.contains(REGENERATE), "{stderr}");
    assert!(
        stderr.contains("+    crate://crates.io/zzz-new-crate/1.2.3 \\"),
        "{stderr}"
    );
}
