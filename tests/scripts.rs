//! scripts/ is grouped by concern (DEVELOPERS.md, "Layout"): a folder per
//! concern, no script lying flat, and every `scripts/...` path the project
//! names (CI, docs, tests, the scripts themselves) is a file that exists, so
//! a moved script cannot leave a caller behind.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::fs;
use std::path::{Path, PathBuf};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Every file below `dir`, skipping build output and git's own folder.
fn files_below(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if path.is_dir() {
            if !matches!(name.as_str(), "target" | ".git") {
                files_below(&path, out);
            }
        } else {
            out.push(path);
        }
    }
}

/// The `scripts/<...>.sh` and `.py` paths a text names, except those of
/// other projects (`openembedded-core/scripts/...`).
fn script_paths(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for (at, _) in text.match_indices("scripts/") {
        if text[..at].ends_with("openembedded-core/") {
            continue;
        }
        let rest = &text[at..];
        let end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || "/._-".contains(c)))
            .unwrap_or(rest.len());
        let path = rest[..end].trim_end_matches('.');
        if path.ends_with(".sh") || path.ends_with(".py") {
            found.push(path.to_string());
        }
    }
    found
}

#[test]
fn every_script_path_the_project_names_exists() {
    let mut files = Vec::new();
    for top in [
        ".ci",
        "docs",
        "examples",
        "fuzz",
        "meta-layer-snippets",
        "scripts",
        "src",
        "tests",
    ] {
        files_below(&root().join(top), &mut files);
    }
    files.extend(["README.md", "DEVELOPERS.md"].map(|f| root().join(f)));
    let mut missing = Vec::new();
    for file in &files {
        // Binary files (archives, fuzz inputs) name no script.
        let Ok(text) = fs::read_to_string(file) else {
            continue;
        };
        for path in script_paths(&text) {
            if !root().join(&path).is_file() {
                let rel = file.strip_prefix(root()).unwrap();
                missing.push(format!("{}: {path}", rel.display()));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "paths to scripts that do not exist (a script moved, a caller not updated):\n{}",
        missing.join("\n")
    );
}

#[test]
fn scripts_live_in_a_folder_per_concern_and_find_the_root_two_up() {
    let scripts = root().join("scripts");
    for entry in fs::read_dir(&scripts).unwrap() {
        let path = entry.unwrap().path();
        assert!(
            path.is_dir(),
            "{} lies flat in scripts/: move it into the folder of its concern (DEVELOPERS.md)",
            path.display()
        );
    }
    let mut files = Vec::new();
    files_below(&scripts, &mut files);
    for file in files
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "sh"))
    {
        let text = fs::read_to_string(file).unwrap();
        for line in text.lines().filter(|l| l.contains("dirname \"$0\")/..")) {
            assert!(
                line.contains("dirname \"$0\")/../..\""),
                "{}: the repository root is two folders up from a script: {line}",
                file.display()
            );
        }
    }
}

#[test]
fn the_finder_sees_script_paths() {
    // A flat path, written in two pieces so that this file names no
    // missing script itself.
    let flat = ["scripts", "gone.sh"].join("/");
    let text = format!(
        "run `scripts/oe/oe-bitbake.sh`, then \"$repo/scripts/bench/bench-stage.sh\".\n\
         not openembedded-core/scripts/x.py nor scripts/ alone; {flat}."
    );
    assert_eq!(
        script_paths(&text),
        [
            "scripts/oe/oe-bitbake.sh",
            "scripts/bench/bench-stage.sh",
            flat.as_str()
        ]
    );
}
