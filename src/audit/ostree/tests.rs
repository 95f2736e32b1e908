//! Repositories made by Debian's `ostree` (archive, bare-user, a static
//! delta), and hostile forms of their objects.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::process::Command;

use super::*;
use crate::audit::decode::{self, Codec};
use crate::audit::formats::testkit::{scratch, sh, variants, Scratch};

/// A test secret (not a real one), committed first, removed by the second
/// commit.
const SECRET: &str = "ostree-test-secret-5f0c2a9e";

/// An archive repository `repo` with two commits on `main`: the first has
/// `usr/share/app/treehub.json` holding [`SECRET`], the second removes it.
/// Also a symlink, a small and a large file. Returns (folder, rev1, rev2).
fn archive_repo(name: &str) -> (Scratch, String, String) {
    let dir = scratch(&format!("ostree-{name}"));
    sh(
        &dir,
        &format!(
            "set -e
            mkdir -p t1/usr/share/app t1/etc
            printf '{{\"oauth2\":\"{SECRET}\"}}\\n' > t1/usr/share/app/treehub.json
            printf 'hello\\n' > t1/etc/motd
            head -c 200000 /dev/zero | tr '\\0' A > t1/etc/big
            ln -s ../usr/share/app/treehub.json t1/etc/link
            ostree init --repo=repo --mode=archive
            ostree commit --repo=repo -b main -s first t1 > rev1
            cp -a t1 t2
            rm t2/usr/share/app/treehub.json
            ostree commit --repo=repo -b main -s second t2 > rev2"
        ),
    );
    let read = |f: &str| fs::read_to_string(dir.join(f)).unwrap().trim().to_owned();
    let (rev1, rev2) = (read("rev1"), read("rev2"));
    (dir, rev1, rev2)
}

fn ostree(args: &[&str]) -> Vec<u8> {
    let out = Command::new("ostree").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "ostree {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// `ostree ls -R -C` of a commit: checksum -> (type char, path, symlink
/// target).
fn listing(repo: &Path, rev: &str) -> HashMap<String, (char, String, String)> {
    let repo = format!("--repo={}", repo.display());
    let text = String::from_utf8(ostree(&["ls", &repo, "-R", "-C", rev])).unwrap();
    let mut out = HashMap::new();
    for line in text.lines() {
        let kind = line.chars().next().unwrap();
        if kind == 'd' {
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (sum, path) = (fields[4], fields[5]);
        let target = line.split_once(" -> ").map(|x| x.1).unwrap_or("");
        out.insert(sum.to_owned(), (kind, path.to_owned(), target.to_owned()));
    }
    out
}

/// Every object file of the repository with its checksum and type.
fn object_files(repo: &Path) -> Vec<(PathBuf, [u8; 32], ObjectType)> {
    let mut out = Vec::new();
    for dir in fs::read_dir(repo.join("objects")).unwrap() {
        for file in fs::read_dir(dir.unwrap().path()).unwrap() {
            let path = file.unwrap().path();
            if let Some((sum, kind)) = object_id(&path) {
                out.push((path, sum, kind));
            }
        }
    }
    out.sort();
    out
}

fn inflate(data: &[u8]) -> io::Result<Vec<u8>> {
    let mut d = decode::open(Codec::Deflate, Box::new(data), 64 << 20)
        .map_err(|_| io::Error::other("refused"))?;
    let mut out = Vec::new();
    d.read_to_end(&mut out)?;
    Ok(out)
}

fn sum_of(text: &str) -> [u8; 32] {
    parse_hex(text.as_bytes()).unwrap()
}

#[test]
fn every_filez_object_inflates_to_what_ostree_cat_gives() {
    let (dir, rev1, rev2) = archive_repo("filez");
    let repo = dir.join("repo");
    let repo_arg = format!("--repo={}", repo.display());
    let mut known = listing(&repo, &rev2);
    let first = listing(&repo, &rev1);
    known.extend(first);
    let mut seen = 0;
    for (path, sum, kind) in object_files(&repo) {
        assert_ne!(kind, ObjectType::File, "archive mode has no .file");
        if kind != ObjectType::Filez {
            continue;
        }
        let (ls_kind, name, target) = &known[&hex(&sum)];
        let bytes = fs::read(&path).unwrap();
        let mut src = &bytes[..];
        let header = filez(&mut src).unwrap();
        if *ls_kind == 'l' {
            assert!(header.is_symlink());
            assert_eq!(header.symlink_target, target.as_bytes());
            assert!(src.is_empty(), "a symlink has no data");
        } else {
            assert!(!header.is_symlink());
            assert_eq!(header.mode & 0o777, 0o644);
            let content = inflate(src).unwrap();
            let want = ostree(&["cat", &repo_arg, &rev1, name]);
            assert_eq!(content.len() as u64, header.size, "{name}");
            assert!(content == want, "{name}: content differs from `ostree cat`");
        }
        seen += 1;
    }
    // motd, big, link, treehub.json.
    assert_eq!(seen, 4);
}

#[test]
fn paths_name_a_removed_file_by_the_commit_that_had_it() {
    let (dir, rev1, rev2) = archive_repo("paths");
    let repo = dir.join("repo");
    assert_eq!(is_repo(&repo), Some(Mode::Archive));
    assert_eq!(is_repo(&dir), None);
    assert_eq!(refs(&repo), vec![("main".to_owned(), sum_of(&rev2))]);
    let all: Vec<[u8; 32]> = commits(&repo).into_iter().collect();
    let mut want = vec![sum_of(&rev1), sum_of(&rev2)];
    want.sort();
    assert_eq!(all, want);

    let by_path: HashMap<String, String> = listing(&repo, &rev1)
        .into_iter()
        .map(|(sum, (_, path, _))| (path, sum))
        .collect();
    let secret = sum_of(&by_path["/usr/share/app/treehub.json"]);
    let motd = sum_of(&by_path["/etc/motd"]);
    let unknown = [7u8; 32];
    let wanted: HashSet<[u8; 32]> = [secret, motd, unknown].into_iter().collect();
    let names = paths(&repo, &wanted);
    assert_eq!(
        names.get(&secret),
        Some(&(
            format!("commit:{rev1}"),
            "/usr/share/app/treehub.json".to_owned()
        ))
    );
    // Still in the tip: named by the ref.
    assert_eq!(
        names.get(&motd),
        Some(&("main".to_owned(), "/etc/motd".to_owned()))
    );
    assert_eq!(names.len(), 2);
    assert!(paths(&repo, &HashSet::new()).is_empty());
}

#[test]
fn refs_of_remotes_and_mirrors_are_named_and_junk_is_skipped() {
    let dir = scratch("ostree-refs");
    let rev = "ab".repeat(32);
    for (path, text) in [
        ("refs/heads/a/b", format!("{rev}\n")),
        ("refs/remotes/origin/x/y", rev.clone()),
        ("refs/mirrors/org.example.Os/main", rev.clone()),
        ("refs/heads/short", "abc".to_owned()),
        ("refs/remotes/stray", rev.clone()),
    ] {
        let path = dir.join(path);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }
    std::os::unix::fs::symlink("a/b", dir.join("refs/heads/alias")).unwrap();
    let names: Vec<String> = refs(&dir).into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["a/b", "mirrors/org.example.Os/main", "origin:x/y"]);
}

#[test]
fn is_repo_needs_a_core_mode_and_objects() {
    let dir = scratch("ostree-isrepo");
    fs::create_dir(dir.join("objects")).unwrap();
    for (config, want) in [
        (
            "[core]\nrepo_version=1\nmode=bare-user\n",
            Some(Mode::BareUser),
        ),
        ("[core]\nmode = archive-z2\n", Some(Mode::Archive)),
        (
            "[core]\nmode=bare-split-xattrs\n",
            Some(Mode::BareSplitXattrs),
        ),
        ("[remote \"x\"]\nmode=bare\n", None),
        ("[core]\nmode=zip\n", None),
        ("mode=bare\n", None),
    ] {
        fs::write(dir.join("config"), config).unwrap();
        assert_eq!(is_repo(&dir), want, "{config}");
    }
    fs::remove_dir(dir.join("objects")).unwrap();
    assert_eq!(is_repo(&dir), None);
}

#[test]
fn a_bare_user_repository_holds_plain_files_and_symlinks_as_files() {
    let (dir, rev1, _) = archive_repo("bareuser");
    sh(
        &dir,
        "ostree init --repo=bu --mode=bare-user && ostree pull-local --repo=bu --depth=-1 repo main",
    );
    let repo = dir.join("bu");
    assert_eq!(is_repo(&repo), Some(Mode::BareUser));
    let known = listing(&repo, &rev1);
    let mut files = 0;
    for (path, sum, kind) in object_files(&repo) {
        assert_ne!(kind, ObjectType::Filez);
        if kind != ObjectType::File {
            continue;
        }
        files += 1;
        let meta = fs::symlink_metadata(&path).unwrap();
        assert!(meta.is_file(), "bare-user stores every content as a file");
        let data = fs::read(&path).unwrap();
        match known.get(&hex(&sum)) {
            Some(('l', _, target)) => assert!(data.starts_with(target.as_bytes())),
            Some((_, name, _)) if name == "/usr/share/app/treehub.json" => {
                assert!(String::from_utf8_lossy(&data).contains(SECRET));
                let wanted = [sum].into_iter().collect();
                assert_eq!(
                    paths(&repo, &wanted)[&sum],
                    (format!("commit:{rev1}"), name.clone())
                );
            }
            _ => {}
        }
    }
    assert_eq!(files, 4);
}

#[test]
fn a_static_delta_part_holds_the_secret_after_xz() {
    let (dir, rev1, _) = archive_repo("delta");
    let repo = dir.join("repo");
    let repo_arg = format!("--repo={}", repo.display());
    ostree(&[
        "static-delta",
        "generate",
        &repo_arg,
        "--empty",
        &format!("--to={rev1}"),
    ]);
    let mut parts = Vec::new();
    let mut stack = vec![repo.join("deltas")];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if is_delta_part(&p) {
                parts.push(p);
            } else {
                assert!(p.ends_with("superblock"));
            }
        }
    }
    assert!(!parts.is_empty());
    let mut found = false;
    for part in parts {
        let bytes = fs::read(part).unwrap();
        let mut src = &bytes[..];
        let codec = delta_part(&mut src).unwrap();
        assert_eq!(codec, Some(Codec::Xz));
        let mut d = decode::open(Codec::Xz, Box::new(src), 64 << 20).unwrap();
        let mut out = Vec::new();
        d.read_to_end(&mut out).unwrap();
        found |= out.windows(SECRET.len()).any(|w| w == SECRET.as_bytes());
    }
    assert!(found, "the secret is in a delta part");
}

#[test]
fn hostile_filez_objects_end_in_ok_or_err() {
    let (dir, _, _) = archive_repo("hostile-filez");
    let mut inflated = 0;
    for (path, _, kind) in object_files(&dir.join("repo")) {
        if kind != ObjectType::Filez {
            continue;
        }
        let good = fs::read(path).unwrap();
        for v in variants(&good, good.len() as u64, 300) {
            let mut src = &v[..];
            if let Ok(header) = filez(&mut src) {
                let _ = format!("{header:?}");
                if let Ok(Ok(out)) =
                    decode::open(Codec::Deflate, Box::new(src), 64 << 20).map(|mut d| {
                        let mut out = Vec::new();
                        d.by_ref().take(1 << 20).read_to_end(&mut out).map(|_| out)
                    })
                {
                    inflated += usize::from(!out.is_empty());
                }
            }
        }
    }
    assert!(inflated > 0, "some variants keep a valid header");
}

#[test]
fn hostile_commit_dirtree_and_dirmeta_objects_end_in_ok_or_err() {
    let (dir, rev1, _) = archive_repo("hostile-meta");
    let repo = dir.join("repo");
    let mut kinds = HashSet::new();
    for (path, _, kind) in object_files(&repo) {
        let good = fs::read(&path).unwrap();
        let parse = |data: &[u8]| match kind {
            ObjectType::Commit => commit(data).is_ok(),
            ObjectType::DirTree => dirtree(data).is_ok(),
            ObjectType::DirMeta => dirmeta(data).is_ok(),
            _ => true,
        };
        assert!(parse(&good), "{kind:?} of the real tool reads");
        kinds.insert(kind);
        for v in variants(&good, good.len() as u64 ^ 0x5eed, 300) {
            parse(&v);
        }
    }
    assert!(kinds.contains(&ObjectType::Commit) && kinds.contains(&ObjectType::DirMeta));

    // The same mutations in place: the walk skips what it cannot read.
    let wanted: HashSet<[u8; 32]> = object_files(&repo)
        .into_iter()
        .filter(|(_, _, k)| *k == ObjectType::Filez)
        .map(|(_, s, _)| s)
        .collect();
    let c = commit(&read_object(&repo, &rev1, "commit")).unwrap();
    let root = hex(&c.root_tree);
    for (name, ext) in [(rev1.as_str(), "commit"), (root.as_str(), "dirtree")] {
        let path = repo
            .join("objects")
            .join(&name[..2])
            .join(format!("{}.{ext}", &name[2..]));
        let good = fs::read(&path).unwrap();
        for v in variants(&good, 99, 120) {
            fs::write(&path, &v).unwrap();
            let names = paths(&repo, &wanted);
            assert!(names.len() <= wanted.len());
        }
        fs::write(&path, &good).unwrap();
    }
    assert_eq!(paths(&repo, &wanted).len(), wanted.len());
}

fn read_object(repo: &Path, sum: &str, ext: &str) -> Vec<u8> {
    fs::read(
        repo.join("objects")
            .join(&sum[..2])
            .join(format!("{}.{ext}", &sum[2..])),
    )
    .unwrap()
}

/// GVariant framing for the tests' hand-made objects: `body` then `ends`
/// in the smallest offset width that holds the whole.
fn framed(mut body: Vec<u8>, ends: &[usize]) -> Vec<u8> {
    let width = [1usize, 2, 4, 8]
        .into_iter()
        .find(|w| body.len() + ends.len() * w < (1usize << (8 * w).min(63)))
        .unwrap();
    for &end in ends {
        body.extend_from_slice(&end.to_le_bytes()[..width]);
    }
    body
}

/// A dirtree `(a(say)a(sayay))` (every member aligned to 1).
fn make_dirtree(files: &[(&[u8], [u8; 32])], dirs: &[(&[u8], [u8; 32])]) -> Vec<u8> {
    let array = |elems: Vec<Vec<u8>>| {
        let mut body = Vec::new();
        let mut ends = Vec::new();
        for e in elems {
            body.extend(e);
            ends.push(body.len());
        }
        framed(body, &ends)
    };
    let files = array(
        files
            .iter()
            .map(|(name, sum)| {
                let mut b = name.to_vec();
                b.push(0);
                let end = b.len();
                b.extend_from_slice(sum);
                framed(b, &[end])
            })
            .collect(),
    );
    let dirs = array(
        dirs.iter()
            .map(|(name, sum)| {
                let mut b = name.to_vec();
                b.push(0);
                let first = b.len();
                b.extend_from_slice(sum);
                let second = b.len();
                b.extend_from_slice(&[9; 32]);
                // Tuple offsets are stored last member first.
                framed(b, &[second, first])
            })
            .collect(),
    );
    let end = files.len();
    let mut body = files;
    body.extend(dirs);
    framed(body, &[end])
}

fn put(repo: &Path, sum: &[u8; 32], ext: &str, data: &[u8]) {
    let name = hex(sum);
    let dir = repo.join("objects").join(&name[..2]);
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join(format!("{}.{ext}", &name[2..])), data).unwrap();
}

#[test]
fn hand_made_dirtrees_read_back() {
    let tree = make_dirtree(&[(b"a", [1; 32])], &[(b"sub", [2; 32])]);
    let listing = dirtree(&tree).unwrap();
    assert_eq!(listing.files, vec![(&b"a"[..], [1; 32])]);
    assert_eq!(listing.dirs, vec![(&b"sub"[..], [2; 32], [9; 32])]);
    assert_eq!(
        dirtree(&make_dirtree(&[], &[])).unwrap(),
        DirTree::default()
    );
}

#[test]
fn a_dirtree_that_lists_itself_or_goes_too_deep_ends() {
    let (dir, rev1, _) = archive_repo("loop");
    let repo = dir.join("repo");
    let root = commit(&read_object(&repo, &rev1, "commit"))
        .unwrap()
        .root_tree;
    // The root lists a file, itself, and a chain of 300 folders.
    let (near, far) = ([0xaa; 32], [0xbb; 32]);
    let chain = |i: usize| {
        let mut s = [0xcc; 32];
        s[..8].copy_from_slice(&(i as u64).to_be_bytes());
        s
    };
    put(
        &repo,
        &root,
        "dirtree",
        &make_dirtree(
            &[(b"f", near)],
            &[(b"..", chain(0)), (b"self", root), (b"x/y", root)],
        ),
    );
    for i in 0..300 {
        let files: &[(&[u8], [u8; 32])] = match i {
            9 => &[(b"near9", near)],
            299 => &[(b"far", far)],
            _ => &[],
        };
        put(
            &repo,
            &chain(i),
            "dirtree",
            &make_dirtree(files, &[(b"d", chain(i + 1))]),
        );
    }
    let wanted: HashSet<[u8; 32]> = [near, far].into_iter().collect();
    let names = paths(&repo, &wanted);
    assert_eq!(names[&near], (format!("commit:{rev1}"), "/f".to_owned()));
    assert!(!names.contains_key(&far), "deeper than the bound");
    // A name made of dots or slashes cannot forge a path.
    put(
        &repo,
        &root,
        "dirtree",
        &make_dirtree(&[], &[(b"..", chain(0))]),
    );
    let mut chain9 = "/\\u{2e}\\u{2e}".to_owned();
    for _ in 0..9 {
        chain9.push_str("/d");
    }
    let names = paths(&repo, &[near].into_iter().collect());
    assert_eq!(names[&near].1, format!("{chain9}/near9"));
}

#[test]
fn a_filez_header_gives_its_extended_attributes() {
    let dir = scratch("ostree-xattrs");
    sh(
        &dir,
        "set -e
        mkdir t && printf 'hi\\n' > t/f
        python3 -c \"import os; os.setxattr('t/f', 'user.token', b'xattr-test-value')\"
        ostree init --repo=repo --mode=archive
        ostree commit --repo=repo -b main t >/dev/null",
    );
    let files: Vec<_> = object_files(&dir.join("repo"))
        .into_iter()
        .filter(|(_, _, k)| *k == ObjectType::Filez)
        .collect();
    assert_eq!(files.len(), 1);
    let bytes = fs::read(&files[0].0).unwrap();
    let mut src = &bytes[..];
    let header = filez(&mut src).unwrap();
    assert_eq!(
        header.xattrs,
        vec![(b"user.token".to_vec(), b"xattr-test-value".to_vec())]
    );
    assert_eq!(inflate(src).unwrap(), b"hi\n");
}

#[test]
fn partial_commits_are_listed() {
    let dir = scratch("ostree-partial");
    let rev = "0f".repeat(32);
    fs::create_dir_all(dir.join("state")).unwrap();
    fs::create_dir_all(dir.join("objects/zz")).unwrap();
    fs::write(dir.join(format!("state/{rev}.commitpartial")), "").unwrap();
    fs::write(dir.join("state/junk.commitpartial"), "").unwrap();
    assert_eq!(
        commits(&dir).into_iter().collect::<Vec<_>>(),
        vec![sum_of(&rev)]
    );
}

/// The benchmark's baseline (scripts/bench/bench-audit-repos.sh): every `.filez`
/// under `BENCH_FILEZ_DIR` inflated with the audit's own inflater, nothing
/// searched, and the time it took printed. Release build: `cargo test
/// --release --lib bench_inflate_filez -- --ignored --nocapture`. Without
/// `BENCH_FILEZ_DIR` (as CI runs every ignored test), on a repository
/// made here: every object must inflate to its header's size.
#[test]
#[ignore = "a benchmark (scripts/bench/bench-audit-repos.sh); CI runs it on a small repository"]
fn bench_inflate_filez() {
    let (_scratch, dir) = match std::env::var_os("BENCH_FILEZ_DIR") {
        Some(dir) => (None, PathBuf::from(dir)),
        None => {
            let (scratch, _, _) = archive_repo("bench");
            let dir = scratch.join("repo");
            (Some(scratch), dir)
        }
    };
    let start = std::time::Instant::now();
    let (mut objects, mut bytes) = (0u64, 0u64);
    let mut out = vec![0u8; 256 * 1024];
    for entry in walkdir::WalkDir::new(&dir) {
        let entry = entry.unwrap();
        if !entry.path().to_string_lossy().ends_with(".filez") {
            continue;
        }
        let mut file = File::open(entry.path()).unwrap();
        let header = filez(&mut file).unwrap();
        objects += 1;
        if header.is_symlink() {
            continue;
        }
        let mut d = decode::open(Codec::Deflate, Box::new(file), 1 << 30).unwrap();
        let mut got = 0u64;
        loop {
            let n = d.read(&mut out).unwrap();
            if n == 0 {
                break;
            }
            got += n as u64;
        }
        assert_eq!(got, header.size, "{}", entry.path().display());
        bytes += got;
    }
    assert!(objects > 0, "no .filez object under {}", dir.display());
    println!(
        "inflate-only: {objects} objects, {bytes} bytes out, {:.3} s",
        start.elapsed().as_secs_f64()
    );
}
