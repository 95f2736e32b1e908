//! `audit` on the repositories an image build ships (issue 18): OSTree
//! repositories as meta-updater makes them (`archive` for garage-push,
//! `bare-user` without root), with a secret committed once and removed in
//! a later commit, and in a static delta; each found and named by the
//! commit and path that hold it. Made by Debian's `ostree` in the test.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::fs;
use std::path::PathBuf;

use common::audit::{sh, Setup};

/// An OSTree repository of `mode` with two commits on `main`: the first
/// has `usr/share/app/treehub.json` (the archive's), the second removes
/// it. Returns the repository and the first commit.
fn ostree_repo(s: &Setup, mode: &str, with_secret: bool) -> (PathBuf, String) {
    let work = s.dir.join(format!("ostree-{mode}-{with_secret}"));
    let tree = work.join("tree");
    s.motd_tree(&tree, with_secret);
    let repo = work.join("repo");
    sh(
        &work,
        &format!(
            "ostree --repo=repo init --mode={mode}
             ostree --repo=repo commit --branch=main --subject=one --tree=dir=tree >/dev/null
             rm tree/usr/share/app/treehub.json
             ostree --repo=repo commit --branch=main --subject=two --tree=dir=tree >/dev/null"
        ),
    );
    let first = sh(&work, "ostree --repo=repo rev-parse main^")
        .stdout
        .trim()
        .to_owned();
    (repo, first)
}

#[test]
fn a_secret_in_an_earlier_commit_of_an_archive_repository_is_found_and_named_by_its_commit() {
    let s = Setup::new();
    let (repo, first) = ostree_repo(&s, "archive", true);
    // The objects are raw deflate: the secret is not in their bytes.
    for entry in walkdir::WalkDir::new(&repo) {
        let entry = entry.unwrap();
        if entry.file_type().is_file() {
            let bytes = fs::read(entry.path()).unwrap();
            assert!(
                !bytes.windows(s.treehub.len()).any(|w| w == s.treehub),
                "{} holds the secret as is",
                entry.path().display()
            );
        }
    }
    let audit = s.audit(repo.parent().unwrap());
    s.assert_silent(&audit.run);
    let named = format!("commit:{first}!/usr/share/app/treehub.json");
    let hit = audit.findings.iter().find(|f| {
        f.path.starts_with("repo/objects/") && f.path.ends_with(".filez") && f.member == named
    });
    assert!(
        hit.is_some(),
        "no finding at an object named {named}: {:#?}",
        audit.findings
    );
    assert_eq!(hit.unwrap().kind, "host-file");
    // The same tree without the secret: clean.
    let (clean, _) = ostree_repo(&s, "archive", false);
    s.audit(clean.parent().unwrap()).clean();
}

#[test]
fn a_bare_user_repository_and_a_static_delta_are_searched() {
    let s = Setup::new();
    let (repo, first) = ostree_repo(&s, "bare-user", true);
    let audit = s.audit(&repo);
    let named = format!("commit:{first}!/usr/share/app/treehub.json");
    assert!(
        audit
            .findings
            .iter()
            .any(|f| f.path.ends_with(".file") && f.member == named && f.kind == "host-file"),
        "{:#?}",
        audit.findings
    );
    // A static delta from nothing to the first commit, in an archive
    // repository whose objects are then removed: only the delta holds it.
    let (archive, first) = ostree_repo(&s, "archive", true);
    let work = archive.parent().unwrap();
    sh(
        work,
        &format!("ostree --repo=repo static-delta generate --empty --to={first} >/dev/null"),
    );
    let delta_only = work.join("delta-only");
    fs::create_dir_all(&delta_only).unwrap();
    sh(work, "cp -r repo/deltas delta-only/");
    let audit = s.audit(&delta_only);
    assert!(
        audit
            .findings
            .iter()
            .any(|f| f.path.starts_with("deltas/") && f.severity == "error"),
        "the delta part was not searched: {:#?}",
        audit.findings
    );
    s.assert_silent(&audit.run);
}

/// A repository whose `etc/app.conf` held the client secret in its first
/// commit, then grew without it over 20 commits, all packed with deltas
/// (`repack -adf`): the secret survives only in the pack's objects.
fn git_repo(s: &Setup, name: &str, leak: bool) -> PathBuf {
    let work = s.dir.join(name);
    fs::create_dir_all(&work).unwrap();
    let secret = if leak {
        common::OAUTH2_SECRET.to_owned()
    } else {
        "not-a-secret-at-all-0000".to_owned()
    };
    sh(
        &work,
        &format!(
            "git init -q repo
             g() {{ git -C repo -c user.name=t -c user.email=t@example.test -c gc.auto=0 -c commit.gpgsign=false \"$@\"; }}
             mkdir -p repo/etc
             seq 1 200 > repo/etc/app.conf
             echo 'client_secret={secret}' >> repo/etc/app.conf
             g add etc && g commit -q -m one
             for i in $(seq 2 20); do
                 seq 1 200 > repo/etc/app.conf
                 seq 1000 $((1000 + i * 10)) >> repo/etc/app.conf
                 g commit -q -am \"commit $i\"
             done
             g repack -q -adf --depth=50
             g prune-packed
             test -z \"$(find repo/.git/objects -path '*/objects/??/*' -type f)\""
        ),
    );
    work.join("repo")
}

#[test]
fn a_secret_removed_from_a_packed_git_history_is_found_and_named_by_its_commit() {
    let s = Setup::new();
    let repo = git_repo(&s, "git-leak", true);
    let pack: Vec<u8> = fs::read_dir(repo.join(".git/objects/pack"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "pack"))
        .flat_map(|p| fs::read(p).unwrap())
        .collect();
    assert!(
        !pack
            .windows(common::OAUTH2_SECRET.len())
            .any(|w| w == common::OAUTH2_SECRET.as_bytes()),
        "the pack's raw bytes hold the secret: no test of the pack reader"
    );
    let audit = s.audit(repo.parent().unwrap());
    audit.leak_at("repo/.git", ":etc/app.conf)");
    s.assert_silent(&audit.run);
    // A bare clone of it, anywhere in an image.
    sh(
        repo.parent().unwrap(),
        "git clone -q --bare repo srv/app.git",
    );
    s.audit(&repo.parent().unwrap().join("srv"))
        .leak_at("app.git", ":etc/app.conf)");
    let clean = git_repo(&s, "git-clean", false);
    s.audit(clean.parent().unwrap()).clean();
}

#[test]
fn ostree_ref_audits_only_what_that_commit_reaches() {
    let s = Setup::new();
    // main's head no longer has the secret; its parent did.
    let (repo, first) = ostree_repo(&s, "archive", true);
    let only = |name: &str| {
        common::audit::Audit::of(
            s.cmd(&repo, true)
                .args(["--ostree-ref", name])
                .timeout(std::time::Duration::from_secs(120))
                .run(),
        )
    };
    only("main").clean();
    // The earlier commit, by its id: found and named by it.
    let audit = only(&first);
    let named = format!("{first}!/usr/share/app/treehub.json");
    assert!(
        audit
            .findings
            .iter()
            .any(|f| f.member == named && f.kind == "host-file" && f.path.ends_with(".filez")),
        "{:#?}",
        audit.findings
    );
    // A new commit that has it again: what an image build would push.
    let work = repo.parent().unwrap();
    fs::write(work.join("tree/usr/share/app/treehub.json"), &s.treehub).unwrap();
    sh(
        work,
        "ostree --repo=repo commit --branch=main --subject=three --tree=dir=tree >/dev/null",
    );
    let audit = only("main");
    audit.leak_at(
        &audit
            .findings
            .iter()
            .find(|f| f.severity == "error")
            .map(|f| f.path.clone())
            .unwrap_or_default(),
        "main!/usr/share/app/treehub.json",
    );
    s.assert_silent(&audit.run);
    // Not a repository, or no such ref: refused, exit 1.
    let run = s
        .cmd(&work.join("tree"), true)
        .args(["--ostree-ref", "main"])
        .run();
    run.code(1);
    run.stderr_has("is not an OSTree repository");
    let run = s.cmd(&repo, true).args(["--ostree-ref", "nope"]).run();
    run.code(1);
    run.stderr_has("no ref and no commit `nope`");
}
