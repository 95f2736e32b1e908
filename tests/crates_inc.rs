//! The bitbake recipe builds with `--frozen` from the crates listed in
//! `meta-layer-snippets/recipes-sota/sota-stage/sota-stage-crates.inc`: the
//! list must be exactly Cargo.lock's, and the recipe's version Cargo.toml's.
//! `scripts/crates/gen-crates-inc.py --check` decides; this test runs it.
//!
//! OE-core's `bitbake -c update_crates` reads every Cargo.lock under the
//! source tree: the fuzz workspace's `fuzz/Cargo.lock` (libFuzzer's crates)
//! must never be in it. The check fails on any Cargo.lock but the top-level
//! one that git tracks (or, outside git, that exists), and on a
//! `fuzz/Cargo.lock` git does not ignore; the tests below prove each.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::path::Path;

use common::TestDir;
use std::process::{Command, Output};

const REGENERATE: &str = "python3 scripts/crates/gen-crates-inc.py";

/// The repository.
fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `gen-crates-inc.py ARGS`, run in the repository.
fn gen_crates_inc(args: &[&std::ffi::OsStr]) -> Output {
    Command::new("python3")
        .arg(root().join("scripts/crates/gen-crates-inc.py"))
        .args(args)
        .current_dir(root())
        .output()
        .unwrap_or_else(|e| panic!("cannot run python3 (the test needs it): {e}"))
}

#[test]
fn the_recipe_lists_exactly_the_crates_of_cargo_lock() {
    let out = gen_crates_inc(&["--check".as_ref()]);
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

/// A copy of what the check reads: the recipe folder, Cargo.toml and
/// Cargo.lock.
fn copy_of_the_tree(copy: &Path) {
    let recipe_dir = copy.join("meta-layer-snippets/recipes-sota/sota-stage");
    std::fs::create_dir_all(&recipe_dir).unwrap();
    let src_dir = root().join("meta-layer-snippets/recipes-sota/sota-stage");
    for entry in std::fs::read_dir(&src_dir).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), recipe_dir.join(entry.file_name())).unwrap();
    }
    for file in ["Cargo.toml", "Cargo.lock"] {
        std::fs::copy(root().join(file), copy.join(file)).unwrap();
    }
}

/// [`copy_of_the_tree`] in a git repository of its own, with an empty
/// `fuzz/`.
fn git_copy_with_fuzz(copy: &Path) {
    copy_of_the_tree(copy);
    git(copy, &["init", "-q"]);
    std::fs::create_dir(copy.join("fuzz")).unwrap();
}

/// `gen-crates-inc.py --check --root copy`: exit status and stderr.
fn check(copy: &Path) -> (Option<i32>, String) {
    let out = gen_crates_inc(&["--check".as_ref(), "--root".as_ref(), copy.as_os_str()]);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run git (the test needs it): {e}"));
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

const FUZZ_LOCK: &str = "[[package]]\nname = \"libfuzzer-sys\"\nversion = \"0.4.10\"\n";

#[test]
fn git_tracks_no_cargo_lock_but_the_top_level_one() {
    let listed = git(
        root(),
        &["ls-files", "--cached", "--", ":(glob)**/Cargo.lock"],
    );
    assert_eq!(
        listed.lines().collect::<Vec<_>>(),
        ["Cargo.lock"],
        "only the top-level Cargo.lock may be committed: `bitbake -c update_crates` \
         reads every one in the tree"
    );
    // fuzz/.gitignore keeps the fuzz workspace's lock out of `git add -A`.
    git(
        root(),
        &["check-ignore", "-q", "--no-index", "fuzz/Cargo.lock"],
    );
}

#[test]
fn the_recipe_lists_no_crate_of_the_fuzz_workspace() {
    let inc = std::fs::read_to_string(
        root().join("meta-layer-snippets/recipes-sota/sota-stage/sota-stage-crates.inc"),
    )
    .unwrap();
    // (arbitrary is not a fuzz-only crate: the main Cargo.lock has it.)
    assert!(
        !inc.contains("crate://crates.io/libfuzzer-sys/"),
        "the recipe lists libfuzzer-sys, a crate of the fuzz workspace"
    );
}

#[test]
fn the_check_catches_a_second_lock_tracked_by_git() {
    let dir = TestDir::new();
    let copy = dir.path();
    git_copy_with_fuzz(copy);
    std::fs::write(copy.join("fuzz/.gitignore"), "/Cargo.lock\n").unwrap();
    std::fs::write(copy.join("fuzz/Cargo.lock"), FUZZ_LOCK).unwrap();
    git(copy, &["add", "Cargo.lock", "fuzz/.gitignore"]);
    let (code, stderr) = check(copy);
    assert_eq!(code, Some(0), "{stderr}");

    // Forced in past the ignore rule: refused.
    git(copy, &["add", "-f", "fuzz/Cargo.lock"]);
    let (code, stderr) = check(copy);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("fuzz/Cargo.lock is tracked by git")
            && stderr.contains("bitbake -c update_crates"),
        "{stderr}"
    );
}

#[test]
fn the_check_catches_a_fuzz_lock_git_does_not_ignore() {
    let dir = TestDir::new();
    let copy = dir.path();
    git_copy_with_fuzz(copy);
    let (code, stderr) = check(copy);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("fuzz/Cargo.lock is not ignored by git"),
        "{stderr}"
    );
}

#[test]
fn outside_git_the_check_catches_any_second_lock() {
    // A release tarball: no git, every Cargo.lock in it is read.
    let dir = TestDir::new();
    let copy = dir.path();
    copy_of_the_tree(copy);
    // A build's own output is not the source tree.
    std::fs::create_dir_all(copy.join("target/x")).unwrap();
    std::fs::write(copy.join("target/x/Cargo.lock"), FUZZ_LOCK).unwrap();
    let (code, stderr) = check(copy);
    // The copy lies under this repository's target/, which git ignores:
    // it is not a git work tree of its own.
    assert_eq!(code, Some(0), "{stderr}");

    std::fs::create_dir(copy.join("fuzz")).unwrap();
    std::fs::write(copy.join("fuzz/Cargo.lock"), FUZZ_LOCK).unwrap();
    let (code, stderr) = check(copy);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("fuzz/Cargo.lock is in the source tree"),
        "{stderr}"
    );
}

#[test]
fn the_check_catches_a_stale_list() {
    // A copy of the tree whose Cargo.lock has one crate more: --check fails
    // and names the command that fixes it.
    let dir = TestDir::new();
    let copy = dir.path();
    copy_of_the_tree(copy);
    let mut lock = std::fs::read_to_string(root().join("Cargo.lock")).unwrap();
    lock.push_str(
        "\n[[package]]\nname = \"zzz-new-crate\"\nversion = \"1.2.3\"\n\
         source = \"registry+https://github.com/rust-lang/crates.io-index\"\n\
         checksum = \"0000000000000000000000000000000000000000000000000000000000000000\"\n",
    );
    std::fs::write(copy.join("Cargo.lock"), lock).unwrap();

    let (code, stderr) = check(copy);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("is stale"), "{stderr}");
    assert!(stderr.contains(REGENERATE), "{stderr}");
    assert!(
        stderr.contains("+    crate://crates.io/zzz-new-crate/1.2.3 \\"),
        "{stderr}"
    );
}
