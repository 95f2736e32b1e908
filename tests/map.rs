//! The map of the code, checked against the code: every folder of `src/`
//! has a charter (the `//!` of its `mod.rs`, of `lib.rs`, or of the file
//! beside the folder, as `patterns.rs` is for `patterns/`) naming each of
//! its modules, and DEVELOPERS.md's layout names every source file.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::path::{Path, PathBuf};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The module names of `dir`'s children: `x` for `x.rs` and for a folder
/// `x/`; not `mod`, `lib`, `main`, nor `tests` (a module's unit tests).
fn children(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter_map(|p| {
            let name = p.file_name()?.to_str()?.to_string();
            if p.is_dir() {
                Some(name)
            } else {
                name.strip_suffix(".rs").map(str::to_string)
            }
        })
        .filter(|n| !matches!(n.as_str(), "mod" | "lib" | "main" | "tests"))
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The `//!` lines at the top of `file`, joined.
fn charter(file: &Path) -> String {
    fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("//!"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `text` names module `name`: `` `name` ``, `name.rs` or `name/`, or an
/// item path starting with it (`` `name::Thing` ``).
fn names(text: &str, name: &str) -> bool {
    [
        format!("`{name}`"),
        format!("`{name}::"),
        format!("{name}.rs"),
        format!("{name}/"),
    ]
    .iter()
    .any(|n| {
        // The whole name: `device_certs_csr.rs` does not name `csr`.
        text.match_indices(n.as_str())
            .any(|(i, _)| !text[..i].ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_'))
    })
}

/// Every folder under `src/`.
fn folders() -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root().join("src")];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            }
        }
        out.push(dir);
    }
    out.sort();
    out
}

/// The file whose `//!` is `dir`'s charter.
fn charter_file(dir: &Path) -> PathBuf {
    if dir == root().join("src") {
        return dir.join("lib.rs");
    }
    let mod_rs = dir.join("mod.rs");
    if mod_rs.exists() {
        return mod_rs;
    }
    dir.with_extension("rs")
}

#[test]
fn every_folder_charter_names_each_of_its_modules() {
    let mut missing = Vec::new();
    for dir in folders() {
        let file = charter_file(&dir);
        let text = charter(&file);
        let rel = file.strip_prefix(root()).unwrap().display().to_string();
        if text.trim().is_empty() {
            missing.push(format!("{rel}: no `//!` charter"));
            continue;
        }
        for child in children(&dir) {
            if !names(&text, &child) {
                missing.push(format!("{rel} does not name `{child}`"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "say in one line of the folder's `//!` what each module holds: {missing:#?}"
    );
}

#[test]
fn developers_md_maps_every_source_file() {
    let text = fs::read_to_string(root().join("DEVELOPERS.md")).unwrap();
    let layout: String = text
        .lines()
        .skip_while(|l| !l.starts_with("## Layout"))
        .skip(1)
        .take_while(|l| !l.starts_with("## "))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(!layout.is_empty(), "DEVELOPERS.md has no \"## Layout\"");
    let mut missing = Vec::new();
    for dir in folders() {
        for child in children(&dir) {
            if !names(&layout, &child) {
                let rel = dir.join(&child);
                missing.push(rel.strip_prefix(root()).unwrap().display().to_string());
            }
        }
    }
    assert!(
        missing.is_empty(),
        "DEVELOPERS.md's layout does not name these modules (`name.rs` or `name/`): {missing:#?}"
    );
}

#[test]
fn the_checker_sees_a_module_left_out() {
    assert!(names("- [`scan`]: one file", "scan"));
    assert!(names("`decode/` the decompressors", "decode"));
    assert!(names("with `patterns/encode.rs` (the", "encode"));
    assert!(!names("a scanner and its scans", "scan"));
    assert!(!names("`scanner` and `scan_all`", "scan"));
    assert!(!names("`device_certs_csr.rs` (requests)", "csr"));
    assert!(names("`csr.rs` (a request)", "csr"));
}

/// Files too long to read in one sitting: a source file over `source`
/// lines, a test file (`tests/*.rs`, `tests/common/*.rs`,
/// `tests/aktualizr/*.rs`) over `test`, unless `exceptions` (DEVELOPERS.md's
/// "Long files" paragraph) names it (`` `path` ``, then its reason).
fn too_long(exceptions: &str, source: usize, test: usize) -> Vec<String> {
    let mut files: Vec<(PathBuf, usize)> = Vec::new();
    for dir in folders() {
        for entry in fs::read_dir(&dir).unwrap() {
            files.push((entry.unwrap().path(), source));
        }
    }
    for dir in ["tests", "tests/common", "tests/aktualizr"] {
        for entry in fs::read_dir(root().join(dir)).unwrap() {
            files.push((entry.unwrap().path(), test));
        }
    }
    let mut out = Vec::new();
    for (path, limit) in files {
        if path.extension().map_or(true, |e| e != "rs") {
            continue;
        }
        let lines = fs::read_to_string(&path).unwrap().lines().count();
        let rel = path.strip_prefix(root()).unwrap().display().to_string();
        if lines > limit && !exceptions.contains(&format!("`{rel}`")) {
            out.push(format!("{rel}: {lines} lines, over {limit}"));
        }
    }
    out.sort();
    out
}

#[test]
fn no_file_is_too_long_to_read_in_one_sitting() {
    let text = fs::read_to_string(root().join("DEVELOPERS.md")).unwrap();
    let exceptions: String = text
        .lines()
        .skip_while(|l| !l.starts_with("Long files"))
        .take_while(|l| !l.trim().is_empty())
        .collect::<Vec<_>>()
        .join("\n");
    let long = too_long(&exceptions, 800, 1000);
    assert!(
        long.is_empty(),
        "split these by concern (or list each in DEVELOPERS.md's \"Long files\" paragraph with its reason): {long:#?}"
    );
    // The checker sees a long file, and its exception.
    let seen = too_long("", 700, 700);
    assert!(seen.iter().any(|l| l.starts_with("src/")), "{seen:?}");
    assert!(seen.iter().any(|l| l.starts_with("tests/")), "{seen:?}");
    let first = seen[0].split(':').next().unwrap();
    assert!(!too_long(&format!("`{first}` because"), 700, 700)
        .iter()
        .any(|l| l.starts_with(&format!("{first}:"))));
}
