//! The documentation a user reads, checked against the tool: one page
//! per command in docs/, linked from the README's command table and its
//! documentation index, naming every option the command's `--help` lists;
//! and every relative link of the README and docs/ leads to a file.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use std::fs;
use std::path::Path;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The subcommands `sota-stage --help` lists, without `help`.
fn commands() -> Vec<String> {
    let run = sota(["--help"]).run();
    run.success();
    let listed: Vec<String> = run
        .stdout
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .filter(|c| c != "help")
        .collect();
    assert!(listed.len() >= 7, "commands in --help: {listed:?}");
    listed
}

/// The `--flags` a command's `--help` lists, without `--help`.
fn flags(command: &str) -> Vec<String> {
    let run = sota([command, "--help"]).run();
    run.success();
    let mut out: Vec<String> = run
        .stdout
        .lines()
        .filter_map(|l| {
            let l = l.trim_start();
            // A short form first (`-q, --quiet`): the long one is named.
            let l = match l.as_bytes() {
                [b'-', c, b',', b' ', ..] if c.is_ascii_alphabetic() => &l[4..],
                _ => l,
            };
            let flag = l.strip_prefix("--")?;
            let name: String = flag
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                .collect();
            Some(format!("--{name}"))
        })
        .filter(|f| f != "--help")
        .collect();
    out.sort();
    out.dedup();
    out
}

#[test]
fn every_command_has_its_page_linked_from_the_readme() {
    let readme = fs::read_to_string(root().join("README.md")).unwrap();
    let table: String = readme
        .lines()
        .skip_while(|l| !l.starts_with("## Commands"))
        .take_while(|l| !l.starts_with("Exit status"))
        .collect::<Vec<_>>()
        .join("\n");
    let index: String = readme
        .lines()
        .skip_while(|l| !l.starts_with("## Documentation"))
        .collect::<Vec<_>>()
        .join("\n");
    for command in commands() {
        let page = format!("docs/{command}.md");
        let text = fs::read_to_string(root().join(&page))
            .unwrap_or_else(|e| panic!("`{command}` has no page {page}: {e}"));
        assert!(
            text.starts_with(&format!("# `{command}`")),
            "{page} does not start with the heading \"# `{command}`\""
        );
        let link = format!("]({page})");
        assert!(
            table.contains(&format!("[`sota-stage {command} ")) && table.contains(&link),
            "the README's command table does not link `{command}` to {page}"
        );
        assert!(
            index.contains(&format!("- [{page}]({page})")),
            "the README's documentation index does not list {page}"
        );
    }
}

#[test]
fn every_option_of_a_command_is_on_its_page() {
    for command in commands() {
        let page = format!("docs/{command}.md");
        let text = fs::read_to_string(root().join(&page)).unwrap();
        let missing: Vec<String> = flags(&command)
            .into_iter()
            .filter(|f| {
                // The whole flag, not a longer one that starts with it.
                !text.match_indices(f.as_str()).any(|(i, _)| {
                    !text[i + f.len()..]
                        .starts_with(|c: char| c.is_ascii_alphanumeric() || c == '-')
                })
            })
            .collect();
        assert!(
            missing.is_empty(),
            "{page} does not name these options of `{command} --help`: {missing:?}"
        );
    }
}

#[test]
fn every_relative_link_leads_to_a_file() {
    let mut pages = vec![root().join("README.md"), root().join("DEVELOPERS.md")];
    for entry in fs::read_dir(root().join("docs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            pages.push(path);
        }
    }
    let mut broken = Vec::new();
    for page in &pages {
        let text = fs::read_to_string(page).unwrap();
        for (i, _) in text.match_indices("](") {
            let rest = &text[i + 2..];
            let Some(end) = rest.find(')') else { continue };
            let target = &rest[..end];
            if target.contains("://") || target.starts_with('#') || target.starts_with("mailto:") {
                continue;
            }
            let file = target.split('#').next().unwrap();
            if !page.parent().unwrap().join(file).exists() {
                broken.push(format!(
                    "{}: {target}",
                    page.strip_prefix(root()).unwrap().display()
                ));
            }
        }
    }
    assert!(broken.is_empty(), "links to nothing: {broken:?}");
}
