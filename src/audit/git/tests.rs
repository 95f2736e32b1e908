//! Repositories made by the real `git` in a temporary folder.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::*;
use crate::audit::decode::tests::{sample, Rng};

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sota-git-{}-{name}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs git in `dir`, isolated from the user's and system's config.
fn git(dir: &Path, args: &[&str]) -> Vec<u8> {
    git_in(dir, args, None)
}

fn git_in(dir: &Path, args: &[&str], stdin: Option<&[u8]>) -> Vec<u8> {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
        .args(["-c", "init.defaultBranch=main", "-c", "gc.auto=0"])
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_DATE", "2026-01-01T00:00:00Z")
        .env("GIT_COMMITTER_DATE", "2026-01-01T00:00:00Z")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("`git` is needed by this test ({e}); install it"));
    let mut input = child.stdin.take().unwrap();
    if let Some(data) = stdin {
        input.write_all(data).unwrap();
    }
    drop(input);
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "git {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn commit_file(dir: &Path, path: &str, content: &[u8], message: &str) {
    let file = dir.join(path);
    fs::create_dir_all(file.parent().unwrap()).unwrap();
    fs::write(&file, content).unwrap();
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "-m", message]);
}

/// A 200-character secret of letters and digits.
fn secret(seed: u64) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = Rng(seed | 1);
    (0..200)
        .map(|_| ALPHABET[(rng.next() % ALPHABET.len() as u64) as usize])
        .collect()
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Every object, `Err` items as their messages.
fn read_all(dir: &Path, limits: &Limits) -> (Vec<Object>, Vec<Skipped>) {
    let repo = Repo::open(dir).unwrap();
    let mut objects = Vec::new();
    let mut skipped = Vec::new();
    for item in repo.objects(limits) {
        match item {
            Ok(o) => objects.push(o),
            Err(s) => skipped.push(s),
        }
    }
    (objects, skipped)
}

/// git's own list: id -> (kind, content), from `cat-file --batch`.
fn git_objects(dir: &Path) -> HashMap<[u8; 20], (Kind, Vec<u8>)> {
    let out = git(dir, &["cat-file", "--batch-all-objects", "--batch"]);
    let mut map = HashMap::new();
    let mut rest = &out[..];
    while !rest.is_empty() {
        let nl = rest.iter().position(|&b| b == b'\n').unwrap();
        let line = std::str::from_utf8(&rest[..nl]).unwrap();
        let mut parts = line.split(' ');
        let id = parse_hex(parts.next().unwrap().as_bytes()).unwrap();
        let kind = Kind::from_name(parts.next().unwrap().as_bytes()).unwrap();
        let size: usize = parts.next().unwrap().parse().unwrap();
        let data = rest[nl + 1..nl + 1 + size].to_vec();
        rest = &rest[nl + 2 + size..];
        map.insert(id, (kind, data));
    }
    map
}

/// Our objects: id -> (kind, content).
fn by_id(objects: Vec<Object>) -> HashMap<[u8; 20], (Kind, Vec<u8>)> {
    objects
        .into_iter()
        .map(|o| (o.id, (o.kind, o.data)))
        .collect()
}

fn assert_same_as_git(dir: &Path, objects: &[Object]) {
    let theirs = git_objects(dir);
    let ours: HashMap<[u8; 20], (Kind, Vec<u8>)> = objects
        .iter()
        .map(|o| (o.id, (o.kind, o.data.clone())))
        .collect();
    assert_eq!(ours.len(), objects.len(), "an object was given twice");
    let a: HashSet<_> = ours.keys().collect();
    let b: HashSet<_> = theirs.keys().collect();
    assert_eq!(a, b, "the ids differ from git's");
    for (id, theirs) in &theirs {
        assert!(ours.get(id) == Some(theirs), "object {} differs", hex(id));
    }
}

/// The repository of the delta test: a secret committed, then removed
/// while the file grew, then more commits; packed with deltas.
fn secret_repo(name: &str) -> (PathBuf, Vec<u8>) {
    let dir = scratch(name);
    git(&dir, &["init", "-q"]);
    let secret = secret(42);
    let text = sample(7, 20_000);
    let mut first = text.clone();
    first.extend_from_slice(b"\ntoken = ");
    first.extend_from_slice(&secret);
    first.extend_from_slice(b"\n");
    commit_file(&dir, "etc/app.conf", &first, "add the app config");
    let mut grown = text.clone();
    grown.extend_from_slice(&sample(8, 5_000));
    commit_file(&dir, "etc/app.conf", &grown, "drop the token");
    for i in 0..3u64 {
        grown.extend_from_slice(&sample(9 + i, 1_000));
        commit_file(&dir, "etc/app.conf", &grown, "more");
    }
    git(&dir, &["repack", "-adf", "--depth=50", "--window=250"]);
    (dir, secret)
}

fn pack_files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = fs::read_dir(dir.join(".git/objects/pack"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    out.sort();
    out
}

#[test]
fn a_removed_secret_lives_only_across_delta_instructions_and_is_read() {
    let (dir, secret) = secret_repo("delta");
    let packs = pack_files(&dir, "pack");
    assert_eq!(packs.len(), 1);
    assert!(loose::list(&dir.join(".git"), 1000).0.is_empty());
    let raw = fs::read(&packs[0]).unwrap();
    // This is the point: neither the pack's bytes nor any zlib stream in
    // it, inflated, holds the whole secret.
    assert!(!contains(&raw, &secret));
    let mut streams = 0;
    let mut partial = false;
    for at in 0..raw.len() - 2 {
        let (cmf, flg) = (raw[at], raw[at + 1]);
        if cmf != 0x78 || (u16::from(cmf) << 8 | u16::from(flg)) % 31 != 0 {
            continue;
        }
        let mut out = Vec::new();
        let mut z = flate2::read::ZlibDecoder::new(&raw[at..]).take(1 << 20);
        if z.read_to_end(&mut out).is_err() && out.is_empty() {
            continue;
        }
        streams += 1;
        assert!(
            !contains(&out, &secret),
            "a zlib stream at {at} holds the secret"
        );
        partial |= contains(&out, &secret[..100]);
    }
    assert!(streams >= 5, "{streams}");
    assert!(partial, "the secret's first part is not in any stream");

    let (objects, skipped) = read_all(&dir, &Limits::default());
    assert!(skipped.is_empty(), "{skipped:?}");
    let holders: Vec<&Object> = objects
        .iter()
        .filter(|o| contains(&o.data, &secret))
        .collect();
    assert_eq!(holders.len(), 1);
    assert_eq!(holders[0].kind, Kind::Blob);
    assert_same_as_git(&dir, &objects);

    // A base cache that holds nothing: every base read again by offset.
    let tiny = Limits {
        base_cache: 0,
        ..Limits::default()
    };
    let (again, skipped) = read_all(&dir, &tiny);
    assert!(skipped.is_empty(), "{skipped:?}");
    assert_same_as_git(&dir, &again);

    // The removed blob is named by the first commit and its path.
    let removed = holders[0].id;
    let repo = Repo::open(&dir).unwrap();
    let wanted: HashSet<[u8; 20]> = [removed, [7; 20]].into_iter().collect();
    let named = paths(&repo, &wanted, &Limits::default());
    let first = String::from_utf8(git(&dir, &["rev-list", "--max-parents=0", "HEAD"])).unwrap();
    assert_eq!(
        named.get(&removed),
        Some(&(first.trim().to_string(), "etc/app.conf".to_string()))
    );
    assert_eq!(named.len(), 1, "an unknown id got a path");
}

#[test]
fn limits_are_kept_and_what_is_not_read_is_named() {
    let (dir, _) = secret_repo("limits");
    let all = git_objects(&dir);
    // A delta chain allowed no link: every delta is an `Err` naming it.
    let (objects, skipped) = read_all(
        &dir,
        &Limits {
            delta_depth: 0,
            base_cache: 0,
            ..Limits::default()
        },
    );
    assert!(!skipped.is_empty());
    assert!(
        skipped
            .iter()
            .all(|s| s.id.is_some() && s.why.contains("deeper")),
        "{skipped:?}"
    );
    assert_eq!(objects.len() + skipped.len(), all.len());
    // Objects over the size cap, packed and loose.
    commit_file(&dir, "big", &sample(3, 50_000), "big");
    let (_, skipped) = read_all(
        &dir,
        &Limits {
            object_bytes: 10_000,
            ..Limits::default()
        },
    );
    let loose_big = skipped
        .iter()
        .find(|s| s.place.starts_with("objects/") && !s.place.contains("pack"));
    let loose_big = loose_big.unwrap_or_else(|| panic!("{skipped:?}"));
    assert!(
        loose_big.why.contains("over the 10000-byte cap"),
        "{loose_big}"
    );
    let big_id = String::from_utf8(git(&dir, &["hash-object", "big"])).unwrap();
    assert_eq!(
        loose_big.id.map(|id| hex(&id)),
        Some(big_id.trim().to_string())
    );
    assert!(skipped
        .iter()
        .any(|s| s.place.contains(".pack at offset") && s.id.is_some()));
    // The object count and the bytes inflated.
    let (objects, skipped) = read_all(
        &dir,
        &Limits {
            objects: 3,
            ..Limits::default()
        },
    );
    assert_eq!(objects.len(), 3);
    assert!(
        skipped
            .iter()
            .any(|s| s.why.contains("more than 3 objects")),
        "{skipped:?}"
    );
    let (_, skipped) = read_all(
        &dir,
        &Limits {
            inflated_bytes: 30_000,
            ..Limits::default()
        },
    );
    assert!(
        skipped.iter().any(|s| s.why.contains("inflated")),
        "{skipped:?}"
    );
}

#[test]
fn loose_and_packed_objects_are_read_once_each_as_git_reads_them() {
    let dir = scratch("mixed");
    git(&dir, &["init", "-q"]);
    for i in 0..6u64 {
        commit_file(
            &dir,
            &format!("d{}/f{i}", i % 3),
            &sample(2 * i, 3_000 + 500 * i as usize),
            "c",
        );
        commit_file(&dir, "shared", &sample(100 + 2 * i, 8_000), "c");
    }
    git(&dir, &["tag", "-a", "-m", "a tag", "v1"]);
    // One object loose and packed both.
    let head_tree = String::from_utf8(git(&dir, &["rev-parse", "HEAD^{tree}"])).unwrap();
    let head_tree = head_tree.trim();
    let loose_path = dir
        .join(".git/objects")
        .join(&head_tree[..2])
        .join(&head_tree[2..]);
    let kept = fs::read(&loose_path).unwrap();
    git(&dir, &["repack", "-adf", "--depth=50"]);
    fs::create_dir_all(loose_path.parent().unwrap()).unwrap();
    fs::write(&loose_path, kept).unwrap();
    // Later commits stay loose; an unreachable blob too.
    commit_file(&dir, "shared", &sample(200, 9_000), "loose");
    git_in(&dir, &["hash-object", "-w", "--stdin"], Some(b"dangling"));
    let (objects, skipped) = read_all(&dir, &Limits::default());
    assert!(skipped.is_empty(), "{skipped:?}");
    assert_same_as_git(&dir, &objects);
    let kinds: HashSet<Kind> = objects.iter().map(|o| o.kind).collect();
    assert_eq!(kinds.len(), 4, "{kinds:?}");

    // A bare clone is a repository too; a plain folder is not.
    let bare = dir.join("bare.git");
    git(&dir, &["clone", "-q", "--bare", ".", "bare.git"]);
    assert!(is_repo(&dir) && is_repo(&bare) && !is_repo(&dir.join("d0")));
    assert!(Repo::open(&dir.join("d0")).is_err());
    let (objects, skipped) = read_all(&bare, &Limits::default());
    assert!(skipped.is_empty(), "{skipped:?}");
    assert_same_as_git(&bare, &objects);
}

/// The types of a pack's entries, by the `.idx`'s offsets.
fn entry_types(pack: &Path) -> Vec<u8> {
    let raw = fs::read(pack).unwrap();
    let idx = pack::tests_offsets(&pack.with_extension("idx"), raw.len() as u64);
    idx.iter().map(|&o| (raw[o as usize] >> 4) & 7).collect()
}

#[test]
fn ref_deltas_are_read_with_and_without_the_idx() {
    let (dir, secret) = secret_repo("ref");
    for p in pack_files(&dir, "pack") {
        fs::remove_file(&p).unwrap();
        fs::remove_file(p.with_extension("idx")).unwrap();
    }
    // The same objects, packed with REF_DELTA bases.
    let (dir2, _) = secret_repo("ref-source");
    let list = git(&dir2, &["rev-list", "--objects", "--all"]);
    let ids: Vec<u8> = list
        .split(|&b| b == b'\n')
        .filter(|l| l.len() >= 40)
        .flat_map(|l| l[..40].iter().copied().chain([b'\n']))
        .collect();
    git_in(
        &dir2,
        &[
            "pack-objects",
            "-q",
            "--no-delta-base-offset",
            "--depth=50",
            "--window=250",
            ".git/objects/pack/ref",
        ],
        Some(&ids),
    );
    let made: Vec<PathBuf> = fs::read_dir(dir2.join(".git/objects/pack"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("ref-"))
        .collect();
    for p in &made {
        let name = p
            .file_name()
            .unwrap()
            .to_string_lossy()
            .replacen("ref-", "pack-", 1);
        fs::copy(p, dir.join(".git/objects/pack").join(name)).unwrap();
    }
    let pack = pack_files(&dir, "pack").remove(0);
    let types = entry_types(&pack);
    assert!(types.contains(&7) && !types.contains(&6), "{types:?}");
    let (objects, skipped) = read_all(&dir, &Limits::default());
    assert!(skipped.is_empty(), "{skipped:?}");
    assert_same_as_git(&dir, &objects);
    assert!(objects.iter().any(|o| contains(&o.data, &secret)));

    // Without the `.idx`: bases from the entries read, loose objects
    // (none here), or after the walk.
    let expected = git_objects(&dir);
    fs::remove_file(pack.with_extension("idx")).unwrap();
    let (objects, skipped) = read_all(
        &dir,
        &Limits {
            base_cache: 0,
            ..Limits::default()
        },
    );
    assert!(skipped.is_empty(), "{skipped:?}");
    let ours = by_id(objects);
    assert_eq!(ours, expected);
    // The path walk reads the pack through its own walk then.
    let removed = ours
        .iter()
        .find(|(_, (_, d))| contains(d, &secret))
        .map(|(id, _)| *id)
        .unwrap();
    let named = paths(
        &Repo::open(&dir).unwrap(),
        &[removed].into_iter().collect(),
        &Limits::default(),
    );
    assert_eq!(
        named.get(&removed).map(|(_, p)| p.as_str()),
        Some("etc/app.conf")
    );
}

#[test]
fn a_thin_pack_fixed_by_index_pack_is_read() {
    let (dir, secret) = secret_repo("thin-source");
    let target = scratch("thin");
    git(&target, &["init", "-q", "--bare"]);
    // The first commit goes over whole; the rest as a thin pack whose
    // REF_DELTAs name bases in the first.
    let first = String::from_utf8(git(&dir, &["rev-list", "--max-parents=0", "HEAD"])).unwrap();
    let first = first.trim().to_string();
    let whole = git_in(
        &dir,
        &["pack-objects", "--stdout", "--revs"],
        Some(format!("{first}\n").as_bytes()),
    );
    git_in(&target, &["index-pack", "--stdin"], Some(&whole));
    let thin = git_in(
        &dir,
        &["pack-objects", "--stdout", "--revs", "--thin"],
        Some(format!("HEAD\n^{first}\n").as_bytes()),
    );
    git_in(
        &target,
        &["index-pack", "--stdin", "--fix-thin"],
        Some(&thin),
    );
    let (objects, skipped) = read_all(&target, &Limits::default());
    assert!(skipped.is_empty(), "{skipped:?}");
    assert_same_as_git(&target, &objects);
    assert!(objects.iter().any(|o| contains(&o.data, &secret)));

    // index-pack appended the bases after the deltas that name them:
    // without the `.idx`, those deltas wait for the end of the walk.
    let fixed: Vec<PathBuf> = fs::read_dir(target.join("objects/pack"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "idx"))
        .collect();
    let expected = git_objects(&target);
    let mut forward = 0;
    for idx in &fixed {
        let raw = fs::read(idx.with_extension("pack")).unwrap();
        let offsets = pack::tests_offsets(idx, raw.len() as u64);
        forward += offsets
            .iter()
            .filter(|&&o| (raw[o as usize] >> 4) & 7 == 7)
            .count();
        fs::remove_file(idx).unwrap();
    }
    assert!(forward > 0);
    let (objects, skipped) = read_all(&target, &Limits::default());
    assert!(skipped.is_empty(), "{skipped:?}");
    let ours = by_id(objects);
    assert_eq!(ours, expected);
}

/// Runs the reader and the path walk over `dir`: they must end.
fn survive(dir: &Path) -> usize {
    let Ok(repo) = Repo::open(dir) else {
        return 0;
    };
    let limits = Limits {
        base_cache: 4096,
        ..Limits::default()
    };
    let mut ids = HashSet::new();
    let mut n = 0;
    for item in repo.objects(&limits) {
        n += 1;
        if let Ok(o) = item {
            ids.insert(o.id);
        }
        assert!(n < 100_000, "the walk does not end");
    }
    ids.insert([0xab; 20]);
    let _ = paths(&repo, &ids, &limits);
    n
}

#[test]
fn hostile_packs_idx_and_loose_objects_never_panic() {
    let (dir, _) = secret_repo("hostile-source");
    // A loose commit, too.
    commit_file(&dir, "x", b"x", "loose");
    let pack = pack_files(&dir, "pack").remove(0);
    let idx = pack.with_extension("idx");
    let good_pack = fs::read(&pack).unwrap();
    let good_idx = fs::read(&idx).unwrap();
    let head = String::from_utf8(git(&dir, &["rev-parse", "HEAD"])).unwrap();
    let head = head.trim();
    let loose_path = dir.join(".git/objects").join(&head[..2]).join(&head[2..]);
    let good_loose = fs::read(&loose_path).unwrap();
    assert!(survive(&dir) > 10);

    let mut rng = Rng(0x5eed);
    let mutate = |rng: &mut Rng, valid: &[u8]| -> Vec<u8> {
        match rng.next() % 4 {
            0 => valid[..(rng.next() as usize) % (valid.len() + 1)].to_vec(),
            1 | 2 => {
                let mut bad = valid.to_vec();
                for _ in 0..=(rng.next() % 6) {
                    let at = (rng.next() as usize) % bad.len();
                    bad[at] = match rng.next() % 3 {
                        0 => bad[at] ^ (1 << (rng.next() % 8)),
                        1 => rng.next() as u8,
                        _ => 0xff,
                    };
                }
                bad
            }
            _ => {
                let keep = (rng.next() as usize) % valid.len().min(64);
                let mut bad = valid[..keep].to_vec();
                bad.extend((0..rng.next() % 2000).map(|_| rng.next() as u8));
                bad
            }
        }
    };
    for round in 0..300 {
        let (p, i, l) = match round % 3 {
            0 => (
                mutate(&mut rng, &good_pack),
                good_idx.clone(),
                good_loose.clone(),
            ),
            1 => (
                good_pack.clone(),
                mutate(&mut rng, &good_idx),
                good_loose.clone(),
            ),
            _ => (
                mutate(&mut rng, &good_pack),
                mutate(&mut rng, &good_idx),
                mutate(&mut rng, &good_loose),
            ),
        };
        fs::write(&pack, &p).unwrap();
        fs::write(&idx, &i).unwrap();
        fs::write(&loose_path, &l).unwrap();
        survive(&dir);
    }
    // The pack with its `.idx` gone, damaged.
    fs::remove_file(&idx).unwrap();
    for _ in 0..50 {
        fs::write(&pack, mutate(&mut rng, &good_pack)).unwrap();
        survive(&dir);
    }
}

#[test]
fn deep_delta_chains_are_read_again_by_offset_when_their_bases_are_evicted() {
    let dir = scratch("chains");
    git(&dir, &["init", "-q"]);
    // Small edits in the middle of a file: each version a delta of the
    // next, in chains.
    let mut text = sample(11, 30_000);
    for i in 0..24usize {
        let at = 1_000 + i * 1_100;
        text.splice(at..at + 5, sample(50 + 2 * i as u64, 40));
        commit_file(&dir, "f", &text, "edit");
    }
    git(&dir, &["repack", "-adf", "--depth=50", "--window=250"]);
    let pack = pack_files(&dir, "pack").remove(0);
    let verify =
        String::from_utf8(git(&dir, &["verify-pack", "-v", pack.to_str().unwrap()])).unwrap();
    let deepest = verify
        .lines()
        .filter_map(|l| l.strip_prefix("chain length = "))
        .filter_map(|l| l.split(':').next()?.parse::<u32>().ok())
        .max()
        .unwrap_or(0);
    assert!(deepest >= 5, "{verify}");
    for base_cache in [0, 40_000, 32 << 20] {
        let limits = Limits {
            base_cache,
            ..Limits::default()
        };
        let (objects, skipped) = read_all(&dir, &limits);
        assert!(skipped.is_empty(), "{skipped:?}");
        assert_same_as_git(&dir, &objects);
    }
    // A chain one link deeper than allowed is named, not read.
    let (_, skipped) = read_all(
        &dir,
        &Limits {
            delta_depth: deepest - 1,
            base_cache: 0,
            ..Limits::default()
        },
    );
    assert!(!skipped.is_empty() && skipped.iter().all(|s| s.why.contains("deeper")));
}
